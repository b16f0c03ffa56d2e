package service

import (
	"context"
	"time"

	"qjmz/model"
	"qjmz/pkg/wechat"
	"qjmz/repository"
)

// The interfaces below are what the use cases need from the data layer and
// the outside world; repository and pkg types satisfy them, tests may fake
// them.

// TxRunner runs a closure in one database transaction.
type TxRunner interface {
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
}

// RegionStore is the region tree.
type RegionStore interface {
	Create(ctx context.Context, r *model.Region) error
	Get(ctx context.Context, id string) (model.Region, error)
	GetByCode(ctx context.Context, code string) (model.Region, error)
	GetMany(ctx context.Context, ids []string) (map[string]model.Region, error)
	Children(ctx context.Context, parentID string) ([]model.Region, error)
	Subtree(ctx context.Context, path, level string) ([]model.Region, error)
	Update(ctx context.Context, id string, cols map[string]any) error
}

// OrgStore is the organization table.
type OrgStore interface {
	Create(ctx context.Context, o *model.Organization) error
	Get(ctx context.Context, id string) (model.Organization, error)
	GetMany(ctx context.Context, ids []string) (map[string]model.Organization, error)
	ListInRegions(ctx context.Context, regionIDs []string, after string, limit int) ([]model.Organization, error)
	Update(ctx context.Context, id string, cols map[string]any) error
}

// UserStore is users and role bindings.
type UserStore interface {
	Get(ctx context.Context, id string) (model.User, error)
	GetByOpenID(ctx context.Context, openID string) (model.User, error)
	Create(ctx context.Context, u *model.User) error
	Update(ctx context.Context, id string, cols map[string]any) error
	Bindings(ctx context.Context, userID string) ([]model.RoleBinding, error)
	BindingsOf(ctx context.Context, userIDs []string) (map[string][]model.RoleBinding, error)
	GetBinding(ctx context.Context, id string) (model.RoleBinding, error)
	AddBinding(ctx context.Context, b *model.RoleBinding) error
	EnsureBinding(ctx context.Context, b *model.RoleBinding) error
	DeleteBinding(ctx context.Context, id string) error
	UsersWithBindingIn(ctx context.Context, regionIDs, orgIDs []string, after string, limit int) ([]model.User, error)
}

// SessionStore is login sessions and refresh tokens.
type SessionStore interface {
	Create(ctx context.Context, s *model.AuthSession) error
	Get(ctx context.Context, id string) (model.AuthSession, error)
	Revoke(ctx context.Context, id, reason string, at time.Time) error
	AddRefreshToken(ctx context.Context, t *model.RefreshToken) error
	LockRefreshToken(ctx context.Context, hash string) (model.RefreshToken, error)
	MarkRefreshUsed(ctx context.Context, id string, at time.Time) error
}

// InviteStore is organization invites.
type InviteStore interface {
	Create(ctx context.Context, inv *model.Invite) error
	LockByCodeHash(ctx context.Context, hash string) (model.Invite, error)
	MarkUsed(ctx context.Context, id, userID string, at time.Time) (bool, error)
}

// AuditStore is the hash-chained audit log.
type AuditStore interface {
	Append(ctx context.Context, e *model.AuditEvent) error
	List(ctx context.Context, f repository.AuditFilter) ([]model.AuditEvent, error)
	Verify(ctx context.Context) (int64, []repository.ChainProblem, error)
}

// OnceGuard detects replays of one-time values.
type OnceGuard interface {
	FirstUse(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// WeChatAuth is the slice of the WeChat client login needs.
type WeChatAuth interface {
	Code2Session(ctx context.Context, code string) (wechat.Session, error)
	PhoneNumber(ctx context.Context, code string) (string, error)
}

// Cipher encrypts personal data for storage.
type Cipher interface {
	Encrypt(plain, field string) (string, error)
	Decrypt(ct, field string) (string, error)
	BlindIndex(field, normalized string) string
}
