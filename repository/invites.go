package repository

import (
	"context"
	"time"

	"gorm.io/gorm/clause"

	"qjmz/model"
)

// Invites stores organization invite codes (hashed).
type Invites struct{ s *Store }

// NewInvites builds the invite repository.
func NewInvites(s *Store) *Invites { return &Invites{s: s} }

// Create stores an invite.
func (r *Invites) Create(ctx context.Context, inv *model.Invite) error {
	return translate("invites.create", r.s.conn(ctx).Create(inv).Error)
}

// LockByCodeHash finds an invite and locks it so only one redeemer wins.
func (r *Invites) LockByCodeHash(ctx context.Context, hash string) (model.Invite, error) {
	var inv model.Invite
	err := r.s.conn(ctx).Clauses(clause.Locking{Strength: "UPDATE"}).Where("code_hash = ?", hash).Take(&inv).Error
	return inv, translate("invites.lock", err)
}

// MarkUsed consumes an invite; it reports false when another redeemer
// consumed it first (the conditional update is the real guard on SQLite,
// which ignores FOR UPDATE).
func (r *Invites) MarkUsed(ctx context.Context, id, userID string, at time.Time) (bool, error) {
	res := r.s.conn(ctx).Model(&model.Invite{}).Where("id = ? AND used_at IS NULL", id).
		Updates(map[string]any{"used_at": at, "used_by": userID})
	return res.RowsAffected == 1, translate("invites.mark_used", res.Error)
}
