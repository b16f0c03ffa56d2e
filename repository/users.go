package repository

import (
	"context"
	"fmt"

	"gorm.io/gorm/clause"

	"qjmz/model"
	"qjmz/pkg/apperr"
)

// Users reads and writes users and their role bindings.
type Users struct{ s *Store }

// NewUsers builds the user repository.
func NewUsers(s *Store) *Users { return &Users{s: s} }

// Get finds a user by id.
func (r *Users) Get(ctx context.Context, id string) (model.User, error) {
	var u model.User
	return u, translate("users.get", r.s.conn(ctx).Where("id = ?", id).Take(&u).Error)
}

// GetByOpenID finds a user by WeChat openid.
func (r *Users) GetByOpenID(ctx context.Context, openID string) (model.User, error) {
	var u model.User
	return u, translate("users.get_by_openid", r.s.conn(ctx).Where("open_id = ?", openID).Take(&u).Error)
}

// Create inserts a user; a duplicate openid is ErrConflict.
func (r *Users) Create(ctx context.Context, u *model.User) error {
	return translate("users.create", r.s.conn(ctx).Create(u).Error)
}

// Update writes the given columns.
func (r *Users) Update(ctx context.Context, id string, cols map[string]any) error {
	return translate("users.update", r.s.conn(ctx).Model(&model.User{}).Where("id = ?", id).Updates(cols).Error)
}

// GetMany loads users by id, keyed by id.
func (r *Users) GetMany(ctx context.Context, ids []string) (map[string]model.User, error) {
	out := make(map[string]model.User, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []model.User
	if err := r.s.conn(ctx).Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, translate("users.get_many", err)
	}
	for _, x := range rows {
		out[x.ID] = x
	}
	return out, nil
}

// Bindings lists a user's role bindings.
func (r *Users) Bindings(ctx context.Context, userID string) ([]model.RoleBinding, error) {
	var rows []model.RoleBinding
	err := r.s.conn(ctx).Where("user_id = ?", userID).Order("created_at, id").Find(&rows).Error
	return rows, translate("users.bindings", err)
}

// GetBinding finds one binding by id.
func (r *Users) GetBinding(ctx context.Context, id string) (model.RoleBinding, error) {
	var b model.RoleBinding
	return b, translate("users.get_binding", r.s.conn(ctx).Where("id = ?", id).Take(&b).Error)
}

// AddBinding inserts a binding; granting the same role and scope twice is
// ErrConflict.
func (r *Users) AddBinding(ctx context.Context, b *model.RoleBinding) error {
	return translate("users.add_binding", r.s.conn(ctx).Create(b).Error)
}

// EnsureBinding inserts a binding unless the same one exists (idempotent).
func (r *Users) EnsureBinding(ctx context.Context, b *model.RoleBinding) error {
	err := r.s.conn(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "user_id"}, {Name: "role"}, {Name: "scope_key"}},
		DoNothing: true,
	}).Create(b).Error
	return translate("users.ensure_binding", err)
}

// DeleteBinding removes a binding.
func (r *Users) DeleteBinding(ctx context.Context, id string) error {
	res := r.s.conn(ctx).Where("id = ?", id).Delete(&model.RoleBinding{})
	if res.Error != nil {
		return translate("users.delete_binding", res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("users.delete_binding: %w", apperr.ErrNotFound)
	}
	return nil
}

// UsersWithBindingIn lists users holding any binding scoped to one of the
// regions or organizations given, newest first.
func (r *Users) UsersWithBindingIn(ctx context.Context, regionIDs, orgIDs []string, after string, limit int) ([]model.User, error) {
	sub := r.s.conn(ctx).Model(&model.RoleBinding{}).Select("user_id")
	switch {
	case len(regionIDs) > 0 && len(orgIDs) > 0:
		sub = sub.Where("region_id IN ? OR org_id IN ?", regionIDs, orgIDs)
	case len(regionIDs) > 0:
		sub = sub.Where("region_id IN ?", regionIDs)
	case len(orgIDs) > 0:
		sub = sub.Where("org_id IN ?", orgIDs)
	default:
		return nil, nil
	}
	q := r.s.conn(ctx).Where("id IN (?)", sub).Order("id DESC").Limit(limit)
	if after != "" {
		q = q.Where("id < ?", after)
	}
	var rows []model.User
	return rows, translate("users.with_binding_in", q.Find(&rows).Error)
}

// BindingsOf loads bindings for many users at once, keyed by user id.
func (r *Users) BindingsOf(ctx context.Context, userIDs []string) (map[string][]model.RoleBinding, error) {
	out := map[string][]model.RoleBinding{}
	if len(userIDs) == 0 {
		return out, nil
	}
	var rows []model.RoleBinding
	if err := r.s.conn(ctx).Where("user_id IN ?", userIDs).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, translate("users.bindings_of", err)
	}
	for _, b := range rows {
		out[b.UserID] = append(out[b.UserID], b)
	}
	return out, nil
}
