package repository

import (
	"context"
	"time"

	"gorm.io/gorm/clause"

	"qjmz/model"
)

// Sessions stores login sessions and their refresh-token chains.
type Sessions struct{ s *Store }

// NewSessions builds the session repository.
func NewSessions(s *Store) *Sessions { return &Sessions{s: s} }

// Create inserts a login session.
func (r *Sessions) Create(ctx context.Context, sess *model.AuthSession) error {
	return translate("sessions.create", r.s.conn(ctx).Create(sess).Error)
}

// Get finds a session by id.
func (r *Sessions) Get(ctx context.Context, id string) (model.AuthSession, error) {
	var s model.AuthSession
	return s, translate("sessions.get", r.s.conn(ctx).Where("id = ?", id).Take(&s).Error)
}

// Revoke marks a session revoked (idempotent: the first reason stays).
func (r *Sessions) Revoke(ctx context.Context, id, reason string, at time.Time) error {
	err := r.s.conn(ctx).Model(&model.AuthSession{}).
		Where("id = ? AND revoked_at IS NULL", id).
		Updates(map[string]any{"revoked_at": at, "revoke_reason": reason}).Error
	return translate("sessions.revoke", err)
}

// AddRefreshToken stores a refresh token hash.
func (r *Sessions) AddRefreshToken(ctx context.Context, t *model.RefreshToken) error {
	return translate("sessions.add_refresh", r.s.conn(ctx).Create(t).Error)
}

// LockRefreshToken finds a refresh token by hash and locks it for the rest of
// the transaction, so two refreshes with the same token cannot both rotate.
func (r *Sessions) LockRefreshToken(ctx context.Context, hash string) (model.RefreshToken, error) {
	var t model.RefreshToken
	err := r.s.conn(ctx).Clauses(clause.Locking{Strength: "UPDATE"}).Where("token_hash = ?", hash).Take(&t).Error
	return t, translate("sessions.lock_refresh", err)
}

// MarkRefreshUsed records that a token was rotated.
func (r *Sessions) MarkRefreshUsed(ctx context.Context, id string, at time.Time) error {
	return translate("sessions.mark_used", r.s.conn(ctx).Model(&model.RefreshToken{}).
		Where("id = ?", id).Update("used_at", at).Error)
}
