// Package repository is the data layer: it opens the database, applies the
// versioned migrations, owns transactions (InTx puts the transaction in the
// context so every repository method joins it) and translates driver errors
// into apperr kinds.
package repository

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/glebarez/sqlite"
	gomysql "github.com/go-sql-driver/mysql"
	"gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"qjmz/pkg/apperr"
)

// DBOptions selects and tunes the database.
type DBOptions struct {
	MySQLDSN        string // empty: SQLite file in DataDir
	DataDir         string
	SQLitePath      string // overrides DataDir/qjmz.db (tests)
	MaxOpenConns    int
	MaxIdleConns    int
	ConnMaxLifetime time.Duration
	Logger          *slog.Logger
	// LogAllSQL logs every statement at debug level (tests count queries).
	LogAllSQL bool
}

// OpenDB opens MySQL or the embedded SQLite file.
func OpenDB(o DBOptions) (*gorm.DB, error) {
	var dial gorm.Dialector
	if o.MySQLDSN != "" {
		cfg, err := gomysql.ParseDSN(o.MySQLDSN)
		if err != nil {
			return nil, fmt.Errorf("repository: parse mysql dsn: %w", err)
		}
		// Times are stored in UTC and scanned as time.Time whatever the DSN says.
		cfg.ParseTime = true
		cfg.Loc = time.UTC
		if cfg.Params == nil {
			cfg.Params = map[string]string{}
		}
		cfg.Params["charset"] = "utf8mb4"
		cfg.Collation = "utf8mb4_unicode_ci"
		dial = mysql.New(mysql.Config{DSNConfig: cfg})
	} else {
		path := o.SQLitePath
		if path == "" {
			if err := os.MkdirAll(o.DataDir, 0o750); err != nil {
				return nil, fmt.Errorf("repository: data dir: %w", err)
			}
			path = filepath.Join(o.DataDir, "qjmz.db")
		}
		// WAL + busy_timeout + immediate transactions: concurrent writers wait
		// instead of failing with SQLITE_BUSY (INTEGRATION-NOTES).
		dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
		dial = sqlite.Open(dsn)
	}
	lg := o.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	level := logger.Warn
	if o.LogAllSQL {
		level = logger.Info
	}
	db, err := gorm.Open(dial, &gorm.Config{
		TranslateError: true,
		NowFunc:        func() time.Time { return time.Now().UTC().Truncate(time.Millisecond) },
		Logger: logger.NewSlogLogger(lg, logger.Config{
			SlowThreshold:             200 * time.Millisecond,
			LogLevel:                  level,
			IgnoreRecordNotFoundError: true,
			ParameterizedQueries:      true, // never log personal data bound as parameters
		}),
	})
	if err != nil {
		return nil, fmt.Errorf("repository: open database: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("repository: sql handle: %w", err)
	}
	if o.MySQLDSN != "" {
		sqlDB.SetMaxOpenConns(o.MaxOpenConns)
		sqlDB.SetMaxIdleConns(o.MaxIdleConns)
		sqlDB.SetConnMaxLifetime(o.ConnMaxLifetime)
	} else {
		sqlDB.SetMaxOpenConns(8)
	}
	return db, nil
}

// IsMySQL reports whether db talks to MySQL/MariaDB.
func IsMySQL(db *gorm.DB) bool { return db.Name() == "mysql" }

type txKey struct{}

// Store is the handle every repository hangs off.
type Store struct {
	db *gorm.DB
}

// NewStore wraps an opened database.
func NewStore(db *gorm.DB) *Store { return &Store{db: db} }

// DB exposes the handle for health checks and tests.
func (s *Store) DB() *gorm.DB { return s.db }

// InTx runs fn in one transaction; repository calls made with the ctx given
// to fn join it. Nested calls reuse the outer transaction.
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if _, ok := ctx.Value(txKey{}).(*gorm.DB); ok {
		return fn(ctx)
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return fn(context.WithValue(ctx, txKey{}, tx))
	})
}

func (s *Store) conn(ctx context.Context) *gorm.DB {
	if tx, ok := ctx.Value(txKey{}).(*gorm.DB); ok {
		return tx
	}
	return s.db.WithContext(ctx)
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}

// translate maps driver errors to apperr kinds; everything else passes
// through wrapped with the operation name.
func translate(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gorm.ErrRecordNotFound):
		return fmt.Errorf("%s: %w", op, apperr.ErrNotFound)
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return fmt.Errorf("%s: %w", op, apperr.ErrConflict)
	case errors.Is(err, gorm.ErrForeignKeyViolated):
		return fmt.Errorf("%s: %w: %w", op, apperr.ErrInvalid, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
