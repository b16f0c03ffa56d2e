package repository

import (
	"context"

	"gorm.io/gorm/clause"

	"qjmz/model"
)

// ServiceItems is the catalogue of purchasable session kinds.
type ServiceItems struct{ s *Store }

// NewServiceItems builds the catalogue repository.
func NewServiceItems(s *Store) *ServiceItems { return &ServiceItems{s: s} }

// Create inserts an item; a duplicate code is ErrConflict.
func (r *ServiceItems) Create(ctx context.Context, it *model.ServiceItem) error {
	return translate("service_items.create", r.s.conn(ctx).Create(it).Error)
}

// Get finds an item by id.
func (r *ServiceItems) Get(ctx context.Context, id string) (model.ServiceItem, error) {
	var it model.ServiceItem
	return it, translate("service_items.get", r.s.conn(ctx).Where("id = ?", id).Take(&it).Error)
}

// Lock reads an item for update inside the caller's transaction.
func (r *ServiceItems) Lock(ctx context.Context, id string) (model.ServiceItem, error) {
	var it model.ServiceItem
	err := r.s.conn(ctx).Clauses(clause.Locking{Strength: "UPDATE"}).Where("id = ?", id).Take(&it).Error
	return it, translate("service_items.lock", err)
}

// GetMany loads items by id, keyed by id (list views and other slices).
func (r *ServiceItems) GetMany(ctx context.Context, ids []string) (map[string]model.ServiceItem, error) {
	out := make(map[string]model.ServiceItem, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []model.ServiceItem
	if err := r.s.conn(ctx).Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, translate("service_items.get_many", err)
	}
	for _, x := range rows {
		out[x.ID] = x
	}
	return out, nil
}

// ItemFilter narrows a catalogue listing.
type ItemFilter struct {
	PublicOnly bool
	ActiveOnly bool
	Category   string
	AfterCode  string // keyset cursor: codes are unique and the list is by code
	Limit      int
}

// List returns items by code.
func (r *ServiceItems) List(ctx context.Context, f ItemFilter) ([]model.ServiceItem, error) {
	q := r.s.conn(ctx).Order("code").Limit(f.Limit)
	if f.PublicOnly {
		q = q.Where("visibility = ?", model.VisibilityPublic)
	}
	if f.ActiveOnly {
		q = q.Where("active = ?", true)
	}
	if f.Category != "" {
		q = q.Where("category = ?", f.Category)
	}
	if f.AfterCode != "" {
		q = q.Where("code > ?", f.AfterCode)
	}
	var rows []model.ServiceItem
	return rows, translate("service_items.list", q.Find(&rows).Error)
}

// Update writes the given columns (explicit map: zero values are written).
func (r *ServiceItems) Update(ctx context.Context, id string, cols map[string]any) error {
	return translate("service_items.update", r.s.conn(ctx).Model(&model.ServiceItem{}).Where("id = ?", id).Updates(cols).Error)
}
