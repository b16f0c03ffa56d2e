package model

import "time"

// Region levels, from the top of the tree down.
const (
	LevelProvince  = "province"
	LevelCity      = "city"
	LevelDistrict  = "district"
	LevelTown      = "town"
	LevelCommunity = "community"
)

// Region is a node of the administrative tree. Path is the materialized path
// of ancestor ids ("/<district>/<town>/"), so a subtree is one prefix query.
type Region struct {
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

// Organization is a social organization that delivers sessions.
type Organization struct {
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

// Organization statuses.
const (
	OrgActive    = "active"
	OrgSuspended = "suspended"
)

// User is anyone who logged in through WeChat. OpenID, UnionID and the
// encrypted session key never leave the server.
type User struct {
	ID                    string  `gorm:"primaryKey;size:26"`
	OpenID                string  `gorm:"column:open_id;size:64;not null;uniqueIndex"`
	UnionID               *string `gorm:"column:union_id;size:64;index"`
	Nickname              string  `gorm:"size:64"`
	PhoneEnc              string  `gorm:"size:255"`
	PhoneIndex            *string `gorm:"size:64;index"`
	SessionKeyEnc         string  `gorm:"size:255"`
	Status                string  `gorm:"size:16;not null"`
	PrivacyConsentVersion string  `gorm:"size:32"`
	PrivacyConsentAt      *time.Time
	LastLoginAt           *time.Time
	CreatedAt             time.Time
	UpdatedAt             time.Time
}

// User statuses.
const (
	UserActive   = "active"
	UserDisabled = "disabled"
)

// Roles (DESIGN.md §2).
const (
	RoleResident        = "resident"
	RoleWorker          = "worker"
	RoleOrgAdmin        = "org_admin"
	RoleStationReviewer = "station_reviewer"
	RoleBureauReviewer  = "bureau_reviewer"
	RoleBureauAdmin     = "bureau_admin"
	RoleAuditor         = "auditor"
)

// AllRoles lists every role in a stable order.
var AllRoles = []string{RoleResident, RoleWorker, RoleOrgAdmin, RoleStationReviewer, RoleBureauReviewer, RoleBureauAdmin, RoleAuditor}

// OrgScoped reports whether a role is scoped to an organization (otherwise
// to a region node).
func OrgScoped(role string) bool { return role == RoleWorker || role == RoleOrgAdmin }

// RoleBinding grants a user a role within a scope: a region subtree or one
// organization. ScopeKey ("region:<id>" / "org:<id>") makes the
// (user, role, scope) triple unique without nullable unique columns.
type RoleBinding struct {
	ID        string  `gorm:"primaryKey;size:26"`
	UserID    string  `gorm:"size:26;not null;uniqueIndex:ux_binding,priority:1"`
	Role      string  `gorm:"size:32;not null;uniqueIndex:ux_binding,priority:2"`
	ScopeKey  string  `gorm:"size:40;not null;uniqueIndex:ux_binding,priority:3"`
	RegionID  *string `gorm:"size:26;index"`
	OrgID     *string `gorm:"size:26;index"`
	GrantedBy string  `gorm:"size:26"`
	CreatedAt time.Time
}

// AuthSession is one login: the family of refresh tokens rotated from it.
// Revoking it logs that device out and invalidates its access tokens.
type AuthSession struct {
	ID           string `gorm:"primaryKey;size:26"`
	UserID       string `gorm:"size:26;not null;index"`
	UserAgent    string `gorm:"size:255"`
	IP           string `gorm:"size:64"`
	RevokedAt    *time.Time
	RevokeReason string `gorm:"size:32"`
	CreatedAt    time.Time
}

// RefreshToken is one link of a session's rotation chain, stored hashed.
type RefreshToken struct {
	ID        string `gorm:"primaryKey;size:26"`
	SessionID string `gorm:"size:26;not null;index"`
	TokenHash string `gorm:"size:64;not null;uniqueIndex"`
	ExpiresAt time.Time
	UsedAt    *time.Time
	CreatedAt time.Time
}

// Invite is a single-use, expiring code an org_admin hands a worker.
type Invite struct {
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

// AuditEvent is one append-only, hash-chained entry of the audit log.
// Hash = sha256(PrevHash || canonical fields); Seq orders the chain.
type AuditEvent struct {
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

// AuditHead is the tip of the audit chain.
type AuditHead struct {
	ID   int `gorm:"primaryKey;autoIncrement:false"`
	Seq  int64
	Hash string
}
