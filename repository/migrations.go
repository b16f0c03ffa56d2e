package repository

import (
	"context"
	"fmt"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// Migrations are versioned and append-only: a shipped migration is never
// edited. Each one declares the table shapes *as of that version*, so running
// them in order on an old database reproduces today's schema on SQLite and on
// MySQL alike.
func migrations() []*gormigrate.Migration {
	return []*gormigrate.Migration{
		{ID: "0001_identity", Migrate: migrate0001},
		{ID: "0002_consent_and_audit", Migrate: migrate0002},
		{ID: "0003_evidence", Migrate: migrate0003},
		{ID: "0004_review_outbox_feed", Migrate: migrate0004},
	}
}

// LatestMigration is the id of the newest migration.
func LatestMigration() string {
	m := migrations()
	return m[len(m)-1].ID
}

// Migrate applies every pending migration. On MySQL a named lock makes
// replicas that start together take turns.
func Migrate(ctx context.Context, db *gorm.DB) error { return MigrateTo(ctx, db, "") }

// MigrateTo applies migrations up to and including id ("" = all). Tests use
// it to build an older schema and upgrade it.
func MigrateTo(ctx context.Context, db *gorm.DB, id string) error {
	run := func(tx *gorm.DB) error {
		m := gormigrate.New(tx, &gormigrate.Options{
			TableName: "schema_migrations", IDColumnName: "id", IDColumnSize: 64,
			ValidateUnknownMigrations: true,
		}, migrations())
		if id == "" {
			return m.Migrate()
		}
		return m.MigrateTo(id)
	}
	db = db.WithContext(ctx)
	if !IsMySQL(db) {
		if err := run(db); err != nil {
			return fmt.Errorf("repository: migrate: %w", err)
		}
		return nil
	}
	return db.Connection(func(conn *gorm.DB) error {
		var got int
		// Named locks are server-wide: name it after the database so other
		// databases on the same server (staging, tests) do not queue.
		lock := "SELECT GET_LOCK(CONCAT('qjmz_migrate_', DATABASE()), 120)"
		if err := conn.Raw(lock).Scan(&got).Error; err != nil || got != 1 {
			return fmt.Errorf("repository: migrate lock (got %d): %w", got, err)
		}
		defer conn.Exec("SELECT RELEASE_LOCK(CONCAT('qjmz_migrate_', DATABASE()))")
		// A fresh session on the same connection: gormigrate chains many
		// statements on the handle it is given.
		if err := run(conn.Session(&gorm.Session{NewDB: true})); err != nil {
			return fmt.Errorf("repository: migrate: %w", err)
		}
		return nil
	})
}

// ---- 0001: regions, organizations, users, bindings, sessions, invites ----

type region0001 struct {
	ID           string  `gorm:"primaryKey;size:26"`
	ParentID     *string `gorm:"size:26;index"`
	Level        string  `gorm:"size:16;not null"`
	Code         string  `gorm:"size:32;not null;uniqueIndex"`
	Name         string  `gorm:"size:64;not null"`
	Path         string  `gorm:"size:255;not null;index"`
	Lat          float64
	Lng          float64
	RadiusM      int
	CoordsApprox bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

func (region0001) TableName() string { return "regions" }

type organization0001 struct {
	ID              string `gorm:"primaryKey;size:26"`
	Name            string `gorm:"size:128;not null"`
	CreditCode      string `gorm:"size:18;not null;uniqueIndex"`
	Rating          string `gorm:"size:8"`
	ContactName     string `gorm:"size:64"`
	ContactPhoneEnc string `gorm:"size:255"`
	RegionID        string `gorm:"size:26;not null;index"`
	Status          string `gorm:"size:16;not null"`
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

func (organization0001) TableName() string { return "organizations" }

type user0001 struct {
	ID            string  `gorm:"primaryKey;size:26"`
	OpenID        string  `gorm:"column:open_id;size:64;not null;uniqueIndex"`
	UnionID       *string `gorm:"column:union_id;size:64;index"`
	Nickname      string  `gorm:"size:64"`
	PhoneEnc      string  `gorm:"size:255"`
	PhoneIndex    *string `gorm:"size:64;index"`
	SessionKeyEnc string  `gorm:"size:255"`
	Status        string  `gorm:"size:16;not null"`
	LastLoginAt   *time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

func (user0001) TableName() string { return "users" }

type roleBinding0001 struct {
	ID        string  `gorm:"primaryKey;size:26"`
	UserID    string  `gorm:"size:26;not null;uniqueIndex:ux_binding,priority:1"`
	Role      string  `gorm:"size:32;not null;uniqueIndex:ux_binding,priority:2"`
	ScopeKey  string  `gorm:"size:40;not null;uniqueIndex:ux_binding,priority:3"`
	RegionID  *string `gorm:"size:26;index"`
	OrgID     *string `gorm:"size:26;index"`
	GrantedBy string  `gorm:"size:26"`
	CreatedAt time.Time
}

func (roleBinding0001) TableName() string { return "role_bindings" }

type authSession0001 struct {
	ID           string `gorm:"primaryKey;size:26"`
	UserID       string `gorm:"size:26;not null;index"`
	UserAgent    string `gorm:"size:255"`
	IP           string `gorm:"size:64"`
	RevokedAt    *time.Time
	RevokeReason string `gorm:"size:32"`
	CreatedAt    time.Time
}

func (authSession0001) TableName() string { return "auth_sessions" }

type refreshToken0001 struct {
	ID        string `gorm:"primaryKey;size:26"`
	SessionID string `gorm:"size:26;not null;index"`
	TokenHash string `gorm:"size:64;not null;uniqueIndex"`
	ExpiresAt time.Time
	UsedAt    *time.Time
	CreatedAt time.Time
}

func (refreshToken0001) TableName() string { return "refresh_tokens" }

type invite0001 struct {
	ID        string `gorm:"primaryKey;size:26"`
	CodeHash  string `gorm:"size:64;not null;uniqueIndex"`
	OrgID     string `gorm:"size:26;not null;index"`
	Role      string `gorm:"size:32;not null"`
	CreatedBy string `gorm:"size:26;not null"`
	ExpiresAt time.Time
	UsedAt    *time.Time
	UsedBy    *string `gorm:"size:26"`
	CreatedAt time.Time
}

func (invite0001) TableName() string { return "invites" }

func migrate0001(tx *gorm.DB) error {
	return tx.AutoMigrate(&region0001{}, &organization0001{}, &user0001{}, &roleBinding0001{},
		&authSession0001{}, &refreshToken0001{}, &invite0001{})
}

// ---- 0002: privacy consent on users; the hash-chained audit log ----

type user0002 struct {
	PrivacyConsentVersion string `gorm:"size:32"`
	PrivacyConsentAt      *time.Time
}

func (user0002) TableName() string { return "users" }

type auditEvent0002 struct {
	Seq        int64     `gorm:"primaryKey;autoIncrement"`
	ID         string    `gorm:"size:26;not null;uniqueIndex"`
	ActorID    string    `gorm:"size:26;index"`
	ActorRole  string    `gorm:"size:32"`
	Action     string    `gorm:"size:64;not null;index"`
	ObjectType string    `gorm:"size:32;not null"`
	ObjectID   string    `gorm:"size:64;index"`
	Before     string    `gorm:"type:text"`
	After      string    `gorm:"type:text"`
	Reason     string    `gorm:"size:255"`
	RequestID  string    `gorm:"size:64"`
	IP         string    `gorm:"size:64"`
	CreatedAt  time.Time `gorm:"index"`
	PrevHash   string    `gorm:"size:64;not null"`
	Hash       string    `gorm:"size:64;not null"`
}

func (auditEvent0002) TableName() string { return "audit_events" }

// auditHead0002 is the single row that serialises appends to the chain: an
// appender locks it, links to its hash and moves it forward.
type auditHead0002 struct {
	ID   int    `gorm:"primaryKey;autoIncrement:false"`
	Seq  int64  `gorm:"not null"`
	Hash string `gorm:"size:64;not null"`
}

func (auditHead0002) TableName() string { return "audit_heads" }

func migrate0002(tx *gorm.DB) error {
	for _, col := range []string{"PrivacyConsentVersion", "PrivacyConsentAt"} {
		if !tx.Migrator().HasColumn(&user0002{}, col) {
			if err := tx.Migrator().AddColumn(&user0002{}, col); err != nil {
				return err
			}
		}
	}
	if err := tx.AutoMigrate(&auditEvent0002{}, &auditHead0002{}); err != nil {
		return err
	}
	return tx.Where(auditHead0002{ID: 1}).FirstOrCreate(&auditHead0002{ID: 1, Seq: 0, Hash: GenesisHash}).Error
}
