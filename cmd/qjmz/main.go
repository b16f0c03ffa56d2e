// Command qjmz is the 数字黔江民政 API server and its operator commands:
//
//	qjmz [serve]                      run the HTTP server (default)
//	qjmz migrate                      apply database migrations and exit
//	qjmz grant-admin -openid X [-region 500114]
//	                                  make a WeChat user a bureau_admin
//	qjmz create-root-region -code 500114 -name 黔江区 [-level district -lat -lng]
//	                                  create the top region of a fresh database
//	qjmz verify-audit                 check the audit hash chain, exit 1 if broken
//	qjmz config                       print the effective configuration (secrets masked)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/silenceper/wechat/v2/util"

	"qjmz/pkg/config"
	"qjmz/pkg/schedule"
	"qjmz/pkg/wechat"
	"qjmz/repository"
	"qjmz/service"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "qjmz:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	cfg, err := config.Load(os.LookupEnv)
	if err != nil {
		return err
	}
	log := newLogger(cfg.LogLevel)
	// Release mode everywhere: operator commands build the router too, and
	// debug mode would print the route table on stdout.
	gin.SetMode(gin.ReleaseMode)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	switch cmd {
	case "serve":
		return serve(ctx, cfg, log)
	case "config":
		fmt.Println(cfg.String())
		return nil
	case "migrate":
		a, err := build(ctx, cfg, log, buildOptions{operator: true})
		if err != nil {
			return err
		}
		defer a.Close()
		log.Info("migrations applied", "latest", repository.LatestMigration())
		return nil
	case "grant-admin":
		fs := flag.NewFlagSet("grant-admin", flag.ContinueOnError)
		openID := fs.String("openid", "", "WeChat openid of the user (dev mode: dev_<name>)")
		region := fs.String("region", "500114", "administrative code of the region to administer")
		if err := fs.Parse(args); err != nil {
			return err
		}
		a, err := build(ctx, cfg, log, buildOptions{operator: true})
		if err != nil {
			return err
		}
		defer a.Close()
		uid, err := service.GrantFirstAdmin(ctx, service.BootstrapConfig{Tx: a.Store, Users: a.Users, Regions: a.Regions,
			Audit: a.Auditor, Now: a.Now}, *openID, *region)
		if err != nil {
			return err
		}
		fmt.Printf("user %s is now bureau_admin of region %s\n", uid, *region)
		return nil
	case "create-root-region":
		fs := flag.NewFlagSet("create-root-region", flag.ContinueOnError)
		level := fs.String("level", "district", "province, city or district")
		code := fs.String("code", "", "administrative code, e.g. 500114")
		name := fs.String("name", "", "name, e.g. 黔江区")
		lat := fs.Float64("lat", 0, "centre latitude")
		lng := fs.Float64("lng", 0, "centre longitude")
		radius := fs.Int("radius-m", 20000, "geofence radius in metres")
		if err := fs.Parse(args); err != nil {
			return err
		}
		a, err := build(ctx, cfg, log, buildOptions{operator: true})
		if err != nil {
			return err
		}
		defer a.Close()
		r, err := service.CreateRootRegion(ctx, service.BootstrapConfig{Tx: a.Store, Users: a.Users, Regions: a.Regions,
			Audit: a.Auditor, Now: a.Now}, *level, *code, *name, *lat, *lng, *radius)
		if err != nil {
			return err
		}
		fmt.Printf("region %s (%s %s) created\n", r.ID, r.Code, r.Name)
		return nil
	case "verify-audit":
		a, err := build(ctx, cfg, log, buildOptions{operator: true})
		if err != nil {
			return err
		}
		defer a.Close()
		res, err := a.Auditor.Verify(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("checked %d audit events\n", res.Checked)
		for _, p := range res.Problems {
			fmt.Printf("BROKEN seq=%d reason=%s\n", p.Seq, p.Reason)
		}
		if !res.OK {
			return errors.New("audit chain is broken")
		}
		fmt.Println("audit chain intact")
		return nil
	}
	return fmt.Errorf("unknown command %q (serve, migrate, grant-admin, create-root-region, verify-audit, config)", cmd)
}

func newLogger(level string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: lv}))
}

func serve(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if cfg.Embedded() {
		log.Warn("*** EMBEDDED MODE — NOT FOR PRODUCTION: SQLite file, in-process Redis, local-disk media, WeChat dev login (codes dev:<name>), development secrets ***",
			"data_dir", cfg.DataDir)
	}
	log.Info("configuration", "config", cfg.String())
	if !cfg.WeChatDevLogin {
		// silenceper/wechat sends every call through this package variable,
		// which is http.DefaultClient (no timeout) unless replaced: once, here.
		util.DefaultHTTPClient = wechat.NewHTTPClient(10 * time.Second)
	}
	a, err := build(ctx, cfg, log, buildOptions{})
	if err != nil {
		return err
	}
	defer a.Close()

	sched, err := schedule.New(schedule.NewRedisLocker(a.Redis, cfg.RedisPrefix, 10*time.Minute, 5*time.Second), log, a.Jobs...)
	if err != nil {
		return err
	}
	sched.Start()
	defer func() {
		if err := sched.Stop(); err != nil {
			log.Warn("scheduler stop", "err", err)
		}
	}()

	srv := &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           a.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	errc := make(chan error, 1)
	go func() {
		log.Info("listening", "addr", cfg.HTTPAddr, "public_base_url", cfg.PublicBaseURL)
		errc <- srv.ListenAndServe()
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	// SIGTERM: stop accepting, let in-flight requests finish.
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}
