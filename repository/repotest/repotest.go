// Package repotest gives tests real backends: a fresh MySQL/MariaDB database
// per test when QJMZ_TEST_MYSQL_DSN is set (else a fresh SQLite file), and
// Redis at QJMZ_TEST_REDIS_ADDR with a unique key prefix (else an in-process
// server). Nothing here is a mock.
package repotest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"path/filepath"
	"testing"

	"github.com/alicebob/miniredis/v2"
	gomysql "github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"qjmz/repository"
)

// Env names the suite reads.
const (
	EnvMySQL = "QJMZ_TEST_MYSQL_DSN"
	EnvRedis = "QJMZ_TEST_REDIS_ADDR"
)

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// FreshMySQLDSN creates an empty database for this test and returns a DSN
// for it ("" when QJMZ_TEST_MYSQL_DSN is unset). It is dropped at cleanup.
func FreshMySQLDSN(t testing.TB) string {
	t.Helper()
	base := lookupEnv(EnvMySQL)
	if base == "" {
		return ""
	}
	cfg, err := gomysql.ParseDSN(base)
	if err != nil {
		t.Fatalf("%s: %v", EnvMySQL, err)
	}
	name := "qjmz_t_" + randHex(6)
	admin := cfg.Clone()
	admin.DBName = ""
	db, err := sql.Open("mysql", admin.FormatDSN())
	if err != nil {
		t.Fatalf("open mysql: %v", err)
	}
	defer func() { _ = db.Close() }()
	if _, err := db.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("mysql", admin.FormatDSN())
		if err == nil {
			_, _ = db.Exec("DROP DATABASE IF EXISTS " + name)
			_ = db.Close()
		}
	})
	cfg.DBName = name
	cfg.ParseTime = true
	return cfg.FormatDSN()
}

// Options for a test database.
type Options struct {
	SkipMigrate bool
	LogAllSQL   bool
}

// DB opens a fresh, migrated database for the test.
func DB(t testing.TB, o Options) *gorm.DB {
	t.Helper()
	dsn := FreshMySQLDSN(t)
	db, err := repository.OpenDB(repository.DBOptions{MySQLDSN: dsn, SQLitePath: filepath.Join(t.TempDir(), "test.db"),
		MaxOpenConns: 10, MaxIdleConns: 5, LogAllSQL: o.LogAllSQL})
	if err != nil {
		t.Fatalf("open db: %v", err)
	}
	sqlDB, _ := db.DB()
	t.Cleanup(func() { _ = sqlDB.Close() })
	if !o.SkipMigrate {
		if err := repository.Migrate(context.Background(), db); err != nil {
			t.Fatalf("migrate: %v", err)
		}
	}
	return db
}

// UsingMySQL reports whether the suite runs against real MySQL.
func UsingMySQL() bool { return lookupEnv(EnvMySQL) != "" }

// UsingRedis reports whether the suite runs against real Redis.
func UsingRedis() bool { return lookupEnv(EnvRedis) != "" }

// Redis returns a client and a unique key prefix for the test. With the
// in-process server, mr is non-nil so tests can move its clock.
func Redis(t testing.TB) (rdb redis.UniversalClient, prefix string, mr *miniredis.Miniredis) {
	t.Helper()
	prefix = "qjmzt:" + randHex(4) + ":"
	if addr := lookupEnv(EnvRedis); addr != "" {
		c := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{addr}})
		if err := c.Ping(context.Background()).Err(); err != nil {
			t.Fatalf("redis %s: %v", addr, err)
		}
		t.Cleanup(func() {
			ctx := context.Background()
			iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
			for iter.Next(ctx) {
				c.Del(ctx, iter.Val())
			}
			_ = c.Close()
		})
		return c, prefix, nil
	}
	mr = miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return c, prefix, mr
}
