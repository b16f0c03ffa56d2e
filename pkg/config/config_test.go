package config

import (
	"strings"
	"testing"
)

func lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestEmbeddedDefaults(t *testing.T) {
	c, err := Load(lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != ModeEmbedded || c.HTTPAddr != ":8080" || c.DataDir != "./data" || !c.WeChatDevLogin || !c.LoadDemoData {
		t.Fatalf("embedded defaults: %+v", c)
	}
	if !c.UsesDevSecrets() {
		t.Fatal("embedded mode should say it runs on development secrets")
	}
}

func prodEnv() map[string]string {
	return map[string]string{
		"QJMZ_MYSQL_DSN": "app:pw@tcp(db:3306)/qjmz", "QJMZ_REDIS_ADDRS": "r1:6379,r2:6379",
		"QJMZ_COS_BUCKET_URL": "https://b-1250000000.cos.ap-chongqing.myqcloud.com", "QJMZ_COS_SECRET_ID": "AKIDxx", "QJMZ_COS_SECRET_KEY": "cos-secret-key",
		"QJMZ_WECHAT_APP_ID": "wx123", "QJMZ_WECHAT_APP_SECRET": "wechat-app-secret", "QJMZ_WECHAT_PUSH_TOKEN": "push-token-1",
		"QJMZ_TOKEN_SECRET": strings.Repeat("t", 40), "QJMZ_MEDIA_SECRET": strings.Repeat("m", 40),
		"QJMZ_PII_ENC_KEY": "k1", "QJMZ_PII_INDEX_KEY": "k2", "QJMZ_PROVENANCE_SEED": "k3",
	}
}

func TestProductionConfig(t *testing.T) {
	c, err := Load(lookup(prodEnv()))
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != ModeProduction || len(c.RedisAddrs) != 2 || c.WeChatDevLogin || c.LoadDemoData {
		t.Fatalf("production config: %+v", c)
	}
	s := c.String()
	for _, secret := range []string{"app:pw", "cos-secret-key", "wechat-app-secret", strings.Repeat("t", 40), "push-token-1"} {
		if strings.Contains(s, secret) {
			t.Fatalf("printed config leaks %q: %s", secret, s)
		}
	}
	if !strings.Contains(s, "WECHAT_APP_ID=wx123") {
		t.Fatalf("non-secret settings should print: %s", s)
	}
}

func TestProductionRefusesUnsafeSettings(t *testing.T) {
	cases := []struct {
		name, key, value, want string
	}{
		{"dev login on", "QJMZ_WECHAT_DEV_LOGIN", "true", "DEV_LOGIN must be off"},
		{"demo data on", "QJMZ_DEMO_DATA", "true", "DEMO_DATA must be off"},
		{"default token secret", "QJMZ_TOKEN_SECRET", devTokenSecret, "QJMZ_TOKEN_SECRET is the development default"},
		{"default pii key", "QJMZ_PII_ENC_KEY", devPIIEncKey, "QJMZ_PII_ENC_KEY is the development default"},
		{"missing cos", "QJMZ_COS_SECRET_KEY", "", "QJMZ_COS_SECRET_KEY"},
		{"missing redis", "QJMZ_REDIS_ADDRS", "", "QJMZ_REDIS_ADDRS is required"},
		{"short token secret", "QJMZ_TOKEN_SECRET", "short", "at least 32"},
		{"bad duration", "QJMZ_ACCESS_TOKEN_TTL", "10h", "ACCESS_TOKEN_TTL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := prodEnv()
			env[tc.key] = tc.value
			_, err := Load(lookup(env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error containing %q, got %v", tc.want, err)
			}
		})
	}
}

func TestYAMLFileThenEnvironment(t *testing.T) {
	path := t.TempDir() + "/qjmz.yaml"
	if err := writeFile(path, "http_addr: \":9090\"\nlog_level: debug\nwrite_rate_per_minute: 7\n"); err != nil {
		t.Fatal(err)
	}
	c, err := Load(lookup(map[string]string{"QJMZ_CONFIG_FILE": path, "QJMZ_LOG_LEVEL": "warn"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":9090" || c.WriteRatePerMinute != 7 || c.LogLevel != "warn" {
		t.Fatalf("file then env: addr=%s rate=%d level=%s", c.HTTPAddr, c.WriteRatePerMinute, c.LogLevel)
	}
}
