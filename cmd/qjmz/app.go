package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"gorm.io/gorm"

	"qjmz/api"
	"qjmz/pkg/authtoken"
	"qjmz/pkg/config"
	"qjmz/pkg/pii"
	"qjmz/pkg/provenance"
	"qjmz/pkg/redisx"
	"qjmz/pkg/schedule"
	"qjmz/pkg/storage"
	"qjmz/pkg/wechat"
	"qjmz/repository"
	"qjmz/service"
	"qjmz/service/demo"
)

// App is the wired service: every dependency built once, here, and closed
// in reverse order.
type App struct {
	Cfg     config.Config
	Log     *slog.Logger
	DB      *gorm.DB
	Store   *repository.Store
	Redis   *redisx.Client
	Keys    *repository.Keyspace
	WeChat  *wechat.Client
	Media   storage.Storage
	Regions *repository.Regions
	Orgs    *repository.Organizations
	Users   *repository.Users
	Auditor *service.Auditor
	Auth    *service.Auth
	Notify  *service.Notifier
	// Jobs run periodically on one replica at a time (see serve).
	Jobs    []schedule.Job
	Handler http.Handler
	Now     func() time.Time
	closers []func() error
}

type buildOptions struct {
	operator   bool   // an operator command: no demo data, no queue rebuild
	sqlitePath string // tests: a fresh file per test
	logAllSQL  bool
}

// Close releases everything build opened.
func (a *App) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil {
			a.Log.Warn("close", "err", err)
		}
	}
}

func build(ctx context.Context, cfg config.Config, log *slog.Logger, opt buildOptions) (_ *App, err error) {
	a := &App{Cfg: cfg, Log: log, Now: func() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }}
	// On failure close what was opened, through the local: the named result
	// is nil by then.
	defer func() {
		if err != nil {
			a.Close()
		}
	}()

	a.DB, err = repository.OpenDB(repository.DBOptions{MySQLDSN: cfg.MySQLDSN, DataDir: cfg.DataDir, SQLitePath: opt.sqlitePath,
		MaxOpenConns: cfg.DBMaxOpenConns, MaxIdleConns: cfg.DBMaxIdleConns, ConnMaxLifetime: cfg.DBConnMaxLifetime,
		Logger: log, LogAllSQL: opt.logAllSQL})
	if err != nil {
		return nil, err
	}
	if sqlDB, e := a.DB.DB(); e == nil {
		a.closers = append(a.closers, sqlDB.Close)
	}
	if err = repository.Migrate(ctx, a.DB); err != nil {
		return nil, err
	}
	a.Store = repository.NewStore(a.DB)
	a.Regions = repository.NewRegions(a.Store)
	a.Orgs = repository.NewOrganizations(a.Store)
	a.Users = repository.NewUsers(a.Store)
	sessions := repository.NewSessions(a.Store)
	invites := repository.NewInvites(a.Store)
	auditRepo := repository.NewAudit(a.Store)

	a.Redis, err = redisx.Open(ctx, redisx.Options{Addrs: cfg.RedisAddrs, MasterName: cfg.RedisMasterName, Password: cfg.RedisPassword, DB: cfg.RedisDB})
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.Redis.Close)
	a.Keys = repository.NewKeyspace(a.Redis, cfg.RedisPrefix)

	a.WeChat, err = wechat.New(wechat.Config{AppID: cfg.WeChatAppID, AppSecret: cfg.WeChatAppSecret, DevMode: cfg.WeChatDevLogin,
		PushToken: cfg.WeChatPushToken}, a.Redis, log)
	if err != nil {
		return nil, fmt.Errorf("wechat: %w", err)
	}

	cipher, err := pii.NewKeys(cfg.PIIEncKey, cfg.PIIIndexKey)
	if err != nil {
		return nil, fmt.Errorf("pii keys: %w", err)
	}

	var mediaHandler http.Handler
	if cfg.COSBucketURL != "" {
		a.Media, err = storage.NewCOS(storage.COSConfig{BucketURL: cfg.COSBucketURL, SecretID: cfg.COSSecretID, SecretKey: cfg.COSSecretKey,
			HTTPClient: &http.Client{Timeout: 60 * time.Second}})
	} else {
		var local *storage.Local
		local, err = storage.NewLocal(storage.LocalConfig{Root: filepath.Join(cfg.DataDir, "media"), PublicBaseURL: cfg.PublicBaseURL + "/media",
			Secret: []byte(cfg.MediaSecret), Logger: log})
		a.Media, mediaHandler = local, local.Handler()
	}
	if err != nil {
		return nil, fmt.Errorf("media storage: %w", err)
	}

	a.Auditor = service.NewAuditor(auditRepo, a.Now)
	a.Notify = service.NewNotifier(repository.NewOutbox(a.Store), a.Users, a.WeChat, a.Now, log)
	a.Jobs = append(a.Jobs, schedule.Job{Name: "outbox-relay", Every: 10 * time.Second, Run: func(ctx context.Context) error {
		_, err := a.Notify.Relay(ctx, 200)
		return err
	}})
	a.Auth = service.NewAuth(service.AuthConfig{Tx: a.Store, Users: a.Users, Sessions: sessions, Regions: a.Regions, Orgs: a.Orgs,
		Once: a.Keys, WeChat: a.WeChat, Cipher: cipher, Tokens: authtoken.NewIssuer(cfg.TokenSecret, cfg.AccessTokenTTL, nil),
		Audit: a.Auditor, RefreshTTL: cfg.RefreshTTL, DevCodes: cfg.WeChatDevLogin, Now: a.Now, Logger: log})
	directory := service.NewDirectory(service.DirectoryConfig{Tx: a.Store, Regions: a.Regions, Orgs: a.Orgs, Users: a.Users,
		Cipher: cipher, Audit: a.Auditor, Now: a.Now})
	inviteSvc := service.NewInvites(service.InvitesConfig{Tx: a.Store, Invites: invites, Orgs: a.Orgs, Regions: a.Regions,
		Users: a.Users, Audit: a.Auditor, Now: a.Now})

	// -- wiring: catalogue, orders, beneficiaries --
	itemRepo := repository.NewServiceItems(a.Store)
	orderRepo := repository.NewOrders(a.Store)
	beneficiaryRepo := repository.NewBeneficiaries(a.Store)
	catalogueSvc := service.NewCatalogue(service.CatalogueConfig{Tx: a.Store, Items: itemRepo, Audit: a.Auditor, Now: a.Now})
	orderSvc := service.NewOrders(service.OrdersConfig{Tx: a.Store, Orders: orderRepo, Items: itemRepo, Regions: a.Regions,
		Orgs: a.Orgs, Audit: a.Auditor, Now: a.Now})
	beneficiarySvc := service.NewBeneficiaries(service.BeneficiariesConfig{Tx: a.Store, Beneficiaries: beneficiaryRepo,
		Orders: orderRepo, Regions: a.Regions, Cipher: cipher, Audit: a.Auditor, Now: a.Now})
	// -- wiring: uploads, media --
	provSigner, err := provenance.NewSigner(cfg.ProvenanceSeed)
	if err != nil {
		return nil, fmt.Errorf("provenance key: %w", err)
	}
	uploadSvc := service.NewUploads(service.UploadsConfig{Tx: a.Store, Uploads: repository.NewUploads(a.Store), Regions: a.Regions,
		Users: a.Users, Objects: a.Media, Checker: a.WeChat, Signer: provSigner, Audit: a.Auditor, Now: a.Now, Logger: log})
	a.Jobs = append(a.Jobs, schedule.Job{Name: "upload-orphans", Every: 10 * time.Minute, Run: func(ctx context.Context) error {
		_, err := uploadSvc.CleanupOrphans(ctx, a.Now())
		return err
	}})
	// -- wiring: session records --
	recordRepo := repository.NewRecords(a.Store)
	nearDup := service.NewNearDupIndex(recordRepo, a.Now)
	recordSvc := service.NewRecords(service.RecordsConfig{Tx: a.Store, Records: recordRepo, Regions: a.Regions,
		Risk: service.NewRiskChecker(recordRepo, nearDup), NearDup: nearDup, Cipher: cipher, Audit: a.Auditor, Now: a.Now})
	// -- wiring: review, feed --
	// Feed
	feedSvc := service.NewFeed(service.FeedConfig{Tx: a.Store, Store: repository.NewFeed(a.Store),
		Cache:   repository.NewFeedCache(a.feedRedis(), cfg.RedisPrefix, repository.FeedCacheOptions{Logger: log}),
		Regions: a.Regions, Users: a.Users, Checker: a.WeChat, Push: a.WeChat, Objects: a.Media, Audit: a.Auditor,
		AppID: cfg.WeChatAppID, Now: a.Now, Logger: log})
	a.Jobs = append(a.Jobs, schedule.Job{Name: "feed-recheck", Every: time.Minute, Run: func(ctx context.Context) error {
		_, err := feedSvc.Recheck(ctx)
		return err
	}})

	// Review (after the feed: final approvals publish through it)
	reviewSvc := a.wireReview(ctx, cfg, log, recordRepo, orderRepo, cipher, feedSvc, !opt.operator)
	orderSvc.SetPayableRecomputer(reviewSvc)
	recordSvc.SetSubmitListener(reviewSvc)

	demoLoaded := false
	if cfg.LoadDemoData && !opt.operator {
		if demoLoaded, err = demo.LoadIfEmpty(ctx, demo.Stores{Store: a.Store, Regions: a.Regions, Orgs: a.Orgs, Users: a.Users,
			Items: itemRepo, Orders: orderRepo, Beneficiaries: beneficiaryRepo, Cipher: cipher, Now: a.Now}, log); err != nil {
			return nil, err
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.Handler = api.NewRouter(api.Deps{
		Config: api.Config{MaxBodyBytes: cfg.MaxBodyBytes, LoginRatePerMinute: cfg.LoginRatePerMinute,
			WriteRatePerMinute: cfg.WriteRatePerMinute, RedisPrefix: cfg.RedisPrefix, TrustedProxies: cfg.TrustedProxies,
			MetricsToken: cfg.MetricsToken},
		Logger: log, Auth: a.Auth, Directory: directory, Invites: inviteSvc, Auditor: a.Auditor,
		Limiter: redis_rate.NewLimiter(a.Redis), Idempotency: a.Redis, Registry: reg, Media: mediaHandler,
		// -- deps: catalogue, orders, beneficiaries --
		Catalogue: catalogueSvc, Orders: orderSvc, Beneficiaries: beneficiarySvc,
		// -- deps: uploads, media --
		Uploads: uploadSvc,
		// -- deps: session records --
		Records: recordSvc,
		// -- deps: review, feed --
		// Review
		Review: reviewSvc,
		// Feed
		Feed: feedSvc,
		Ready: []api.Checker{
			{Name: "database", Check: a.Store.Ping},
			{Name: "redis", Check: func(ctx context.Context) error { return a.Redis.Ping(ctx).Err() }},
		},
	})
	if a.Handler == nil {
		return nil, errors.New("router not built")
	}
	if demoLoaded && cfg.DemoSessions {
		seedDemoSessions(ctx, a)
	}
	return a, nil
}
