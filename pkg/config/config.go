// Package config loads the one typed configuration of the service: defaults,
// then an optional YAML file (QJMZ_CONFIG_FILE), then QJMZ_* environment
// variables. It validates the result and prints it with secrets masked.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"gopkg.in/yaml.v3"
)

// Modes the server runs in.
const (
	ModeEmbedded   = "embedded"
	ModeProduction = "production"
)

// Dev defaults: usable on a laptop, refused in production. They are public
// (they are in this file), so nothing protected by them is secret.
const (
	devTokenSecret    = "dev-only-token-secret-do-not-use-in-production"
	devMediaSecret    = "dev-only-media-secret-do-not-use-in-production"
	devPIIEncKey      = "PR5Xgyl1kwXIFW/mHyo+UrYTKJB8IZEPxdPNMKzwI9s="
	devPIIIndexKey    = "wUW6ba/Z3W1tFDWaKnp1kY7QkxaeNFMSxFwZRWqlI8A="
	devProvenanceSeed = "eMcikbxoqgY/Fho9Bs0J3a1bqlApXwGZlp7H8PVZDZM="
	devPushToken      = "dev-push-token"
)

// Config is every setting of the service. `secret:"true"` fields are masked
// when printed.
type Config struct {
	Mode          string `env:"MODE" yaml:"mode"`
	HTTPAddr      string `env:"HTTP_ADDR" yaml:"http_addr"`
	DataDir       string `env:"DATA_DIR" yaml:"data_dir"`
	PublicBaseURL string `env:"PUBLIC_BASE_URL" yaml:"public_base_url"`
	LogLevel      string `env:"LOG_LEVEL" yaml:"log_level"`
	LoadDemoData  bool   `env:"DEMO_DATA" yaml:"demo_data"`
	// DemoSessions also records, reviews and publishes a few demo sessions
	// through the API when the demo data is loaded, so the feed is not empty.
	DemoSessions bool `env:"DEMO_SESSIONS" yaml:"demo_sessions"`

	MySQLDSN          string        `env:"MYSQL_DSN" yaml:"mysql_dsn" secret:"true"`
	DBMaxOpenConns    int           `env:"DB_MAX_OPEN_CONNS" yaml:"db_max_open_conns"`
	DBMaxIdleConns    int           `env:"DB_MAX_IDLE_CONNS" yaml:"db_max_idle_conns"`
	DBConnMaxLifetime time.Duration `env:"DB_CONN_MAX_LIFETIME" yaml:"db_conn_max_lifetime"`

	RedisAddrs      []string `env:"REDIS_ADDRS" envSeparator:"," yaml:"redis_addrs"`
	RedisMasterName string   `env:"REDIS_MASTER_NAME" yaml:"redis_master_name"`
	RedisPassword   string   `env:"REDIS_PASSWORD" yaml:"redis_password" secret:"true"`
	RedisDB         int      `env:"REDIS_DB" yaml:"redis_db"`
	RedisPrefix     string   `env:"REDIS_PREFIX" yaml:"redis_prefix"`

	COSBucketURL string `env:"COS_BUCKET_URL" yaml:"cos_bucket_url"`
	COSSecretID  string `env:"COS_SECRET_ID" yaml:"cos_secret_id" secret:"true"`
	COSSecretKey string `env:"COS_SECRET_KEY" yaml:"cos_secret_key" secret:"true"`

	WeChatAppID     string `env:"WECHAT_APP_ID" yaml:"wechat_app_id"`
	WeChatAppSecret string `env:"WECHAT_APP_SECRET" yaml:"wechat_app_secret" secret:"true"`
	WeChatDevLogin  bool   `env:"WECHAT_DEV_LOGIN" yaml:"wechat_dev_login"`
	WeChatPushToken string `env:"WECHAT_PUSH_TOKEN" yaml:"wechat_push_token" secret:"true"`
	// WeChatTplReview is the subscribe-message template for review results
	// (empty in embedded mode: the dev client only logs).
	WeChatTplReview string `env:"WECHAT_TPL_REVIEW" yaml:"wechat_tpl_review"`

	// ReviewLeaseTTL is how long a claimed record stays with its reviewer;
	// ReviewMaxDeliveries how often it may be claimed without a decision
	// before it is parked as a dead letter.
	ReviewLeaseTTL      time.Duration `env:"REVIEW_LEASE_TTL" yaml:"review_lease_ttl"`
	ReviewMaxDeliveries int           `env:"REVIEW_MAX_DELIVERIES" yaml:"review_max_deliveries"`

	TokenSecret    string        `env:"TOKEN_SECRET" yaml:"token_secret" secret:"true"`
	AccessTokenTTL time.Duration `env:"ACCESS_TOKEN_TTL" yaml:"access_token_ttl"`
	RefreshTTL     time.Duration `env:"REFRESH_TOKEN_TTL" yaml:"refresh_token_ttl"`

	PIIEncKey      string `env:"PII_ENC_KEY" yaml:"pii_enc_key" secret:"true"`
	PIIIndexKey    string `env:"PII_INDEX_KEY" yaml:"pii_index_key" secret:"true"`
	ProvenanceSeed string `env:"PROVENANCE_SEED" yaml:"provenance_seed" secret:"true"`
	MediaSecret    string `env:"MEDIA_SECRET" yaml:"media_secret" secret:"true"`

	// MetricsToken, when set, is required as a bearer token on /metrics.
	MetricsToken string `env:"METRICS_TOKEN" yaml:"metrics_token" secret:"true"`

	// TrustedProxies are the load balancers whose X-Forwarded-For is
	// believed; empty means the client address is the TCP peer.
	TrustedProxies []string `env:"TRUSTED_PROXIES" envSeparator:"," yaml:"trusted_proxies"`

	MaxBodyBytes       int64 `env:"MAX_BODY_BYTES" yaml:"max_body_bytes"`
	LoginRatePerMinute int   `env:"LOGIN_RATE_PER_MINUTE" yaml:"login_rate_per_minute"`
	WriteRatePerMinute int   `env:"WRITE_RATE_PER_MINUTE" yaml:"write_rate_per_minute"`

	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" yaml:"shutdown_timeout"`
}

// Defaults returns the configuration used when nothing is set.
func Defaults() Config {
	return Config{
		HTTPAddr:            ":8080",
		DataDir:             "./data",
		LogLevel:            "info",
		DBMaxOpenConns:      50,
		DBMaxIdleConns:      10,
		DBConnMaxLifetime:   30 * time.Minute,
		RedisPrefix:         "qjmz:",
		AccessTokenTTL:      15 * time.Minute,
		RefreshTTL:          30 * 24 * time.Hour,
		MaxBodyBytes:        1 << 20,
		LoginRatePerMinute:  20,
		WriteRatePerMinute:  120,
		ShutdownTimeout:     20 * time.Second,
		ReviewLeaseTTL:      15 * time.Minute,
		ReviewMaxDeliveries: 5,
	}
}

// Load reads defaults, the optional YAML file named by QJMZ_CONFIG_FILE and
// the environment (lookup is injectable for tests), fills mode-dependent
// defaults and validates.
func Load(lookup func(string) (string, bool)) (Config, error) {
	cfg := Defaults()
	if path, ok := lookup("QJMZ_CONFIG_FILE"); ok && path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("config: read %s: %w", path, err)
		}
		if err := yaml.Unmarshal(b, &cfg); err != nil {
			return Config{}, fmt.Errorf("config: parse %s: %w", path, err)
		}
	}
	environ := map[string]string{}
	for _, k := range envNames() {
		if v, ok := lookup("QJMZ_" + k); ok {
			environ["QJMZ_"+k] = v
		}
	}
	if err := env.ParseWithOptions(&cfg, env.Options{Prefix: "QJMZ_", Environment: environ}); err != nil {
		return Config{}, fmt.Errorf("config: environment: %w", err)
	}
	cfg.fill(lookup)
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func envNames() []string {
	t := reflect.TypeOf(Config{})
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		if n := t.Field(i).Tag.Get("env"); n != "" {
			names = append(names, n)
		}
	}
	return names
}

func (c *Config) fill(lookup func(string) (string, bool)) {
	if c.Mode == "" {
		c.Mode = ModeEmbedded
		if c.MySQLDSN != "" {
			c.Mode = ModeProduction
		}
	}
	if c.PublicBaseURL == "" {
		host := c.HTTPAddr
		if strings.HasPrefix(host, ":") {
			host = "127.0.0.1" + host
		}
		c.PublicBaseURL = "http://" + host
	}
	c.PublicBaseURL = strings.TrimRight(c.PublicBaseURL, "/")
	if c.Mode != ModeEmbedded {
		return
	}
	// Embedded mode: everything works with nothing configured.
	if _, set := lookup("QJMZ_WECHAT_DEV_LOGIN"); !set && c.WeChatAppID == "" {
		c.WeChatDevLogin = true
	}
	if _, set := lookup("QJMZ_DEMO_DATA"); !set {
		c.LoadDemoData = true
	}
	if _, set := lookup("QJMZ_DEMO_SESSIONS"); !set {
		c.DemoSessions = c.LoadDemoData
	}
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&c.TokenSecret, devTokenSecret)
	def(&c.MediaSecret, devMediaSecret)
	def(&c.PIIEncKey, devPIIEncKey)
	def(&c.PIIIndexKey, devPIIIndexKey)
	def(&c.ProvenanceSeed, devProvenanceSeed)
	def(&c.WeChatPushToken, devPushToken)
}

// Validate refuses configurations that would be unsafe or cannot work.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Mode != ModeEmbedded && c.Mode != ModeProduction {
		bad("QJMZ_MODE must be %q or %q", ModeEmbedded, ModeProduction)
	}
	if c.HTTPAddr == "" {
		bad("QJMZ_HTTP_ADDR is empty")
	}
	if _, err := url.Parse(c.PublicBaseURL); err != nil {
		bad("QJMZ_PUBLIC_BASE_URL: %v", err)
	}
	if c.AccessTokenTTL < time.Minute || c.AccessTokenTTL > 2*time.Hour {
		bad("QJMZ_ACCESS_TOKEN_TTL must be between 1m and 2h")
	}
	if c.RefreshTTL < time.Hour {
		bad("QJMZ_REFRESH_TOKEN_TTL must be at least 1h")
	}
	if c.MaxBodyBytes < 1024 {
		bad("QJMZ_MAX_BODY_BYTES must be at least 1024")
	}
	if c.ReviewLeaseTTL < time.Second || c.ReviewLeaseTTL > 24*time.Hour {
		bad("QJMZ_REVIEW_LEASE_TTL must be between 1s and 24h")
	}
	if c.ReviewMaxDeliveries < 1 || c.ReviewMaxDeliveries > 100 {
		bad("QJMZ_REVIEW_MAX_DELIVERIES must be between 1 and 100")
	}
	if c.LoginRatePerMinute < 1 || c.WriteRatePerMinute < 1 {
		bad("rate limits must be positive")
	}
	if len(c.TokenSecret) < 32 {
		bad("QJMZ_TOKEN_SECRET must be at least 32 characters")
	}
	if c.Mode == ModeProduction {
		if c.MySQLDSN == "" {
			bad("production: QJMZ_MYSQL_DSN is required")
		}
		if len(c.RedisAddrs) == 0 {
			bad("production: QJMZ_REDIS_ADDRS is required")
		}
		if c.COSBucketURL == "" || c.COSSecretID == "" || c.COSSecretKey == "" {
			bad("production: QJMZ_COS_BUCKET_URL, QJMZ_COS_SECRET_ID and QJMZ_COS_SECRET_KEY are required")
		}
		if c.WeChatAppID == "" || c.WeChatAppSecret == "" {
			bad("production: QJMZ_WECHAT_APP_ID and QJMZ_WECHAT_APP_SECRET are required")
		}
		if c.WeChatDevLogin {
			bad("production: QJMZ_WECHAT_DEV_LOGIN must be off")
		}
		if c.LoadDemoData {
			bad("production: QJMZ_DEMO_DATA must be off")
		}
		for name, v := range map[string]string{
			"QJMZ_TOKEN_SECRET": c.TokenSecret,
			"QJMZ_PII_ENC_KEY":  c.PIIEncKey, "QJMZ_PII_INDEX_KEY": c.PIIIndexKey,
			"QJMZ_PROVENANCE_SEED": c.ProvenanceSeed, "QJMZ_WECHAT_PUSH_TOKEN": c.WeChatPushToken,
		} {
			if v == "" {
				bad("production: %s is required", name)
			}
			if isDevDefault(v) {
				bad("production: %s is the development default", name)
			}
		}
	}
	return errors.Join(errs...)
}

func isDevDefault(v string) bool {
	switch v {
	case devTokenSecret, devMediaSecret, devPIIEncKey, devPIIIndexKey, devProvenanceSeed, devPushToken:
		return true
	}
	return false
}

// UsesDevSecrets reports whether any secret is a development default; the
// embedded banner says so.
func (c Config) UsesDevSecrets() bool {
	for _, v := range []string{c.TokenSecret, c.MediaSecret, c.PIIEncKey, c.PIIIndexKey, c.ProvenanceSeed} {
		if isDevDefault(v) {
			return true
		}
	}
	return false
}

// Embedded reports whether the server runs on its embedded backends.
func (c Config) Embedded() bool { return c.Mode == ModeEmbedded }

// String prints every setting with secrets masked, for the startup log.
func (c Config) String() string {
	var b strings.Builder
	v := reflect.ValueOf(c)
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		val := fmt.Sprint(v.Field(i).Interface())
		if f.Tag.Get("secret") == "true" {
			val = Mask(val)
		}
		fmt.Fprintf(&b, "%s=%s ", f.Tag.Get("env"), val)
	}
	return strings.TrimSpace(b.String())
}

// Mask hides a secret but says whether it is set.
func Mask(s string) string {
	if s == "" {
		return "(unset)"
	}
	return "****"
}
