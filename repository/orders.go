package repository

import (
	"context"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"qjmz/model"
)

// Orders stores purchases of sessions (organization × item × town × period).
type Orders struct{ s *Store }

// NewOrders builds the order repository.
func NewOrders(s *Store) *Orders { return &Orders{s: s} }

// Create inserts an order.
func (r *Orders) Create(ctx context.Context, o *model.Order) error {
	return translate("orders.create", r.s.conn(ctx).Create(o).Error)
}

// Get finds an order by id.
func (r *Orders) Get(ctx context.Context, id string) (model.Order, error) {
	var o model.Order
	return o, translate("orders.get", r.s.conn(ctx).Where("id = ?", id).Take(&o).Error)
}

// Lock reads an order for update inside the caller's transaction.
func (r *Orders) Lock(ctx context.Context, id string) (model.Order, error) {
	var o model.Order
	err := r.s.conn(ctx).Clauses(clause.Locking{Strength: "UPDATE"}).Where("id = ?", id).Take(&o).Error
	return o, translate("orders.lock", err)
}

// GetMany loads orders by id, keyed by id.
func (r *Orders) GetMany(ctx context.Context, ids []string) (map[string]model.Order, error) {
	out := make(map[string]model.Order, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []model.Order
	if err := r.s.conn(ctx).Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, translate("orders.get_many", err)
	}
	for _, x := range rows {
		out[x.ID] = x
	}
	return out, nil
}

// OrderFilter narrows an order listing. RegionIDs and OrgIDs are scopes
// (empty = no restriction by that dimension); the caller always sets at
// least one of them.
type OrderFilter struct {
	RegionIDs []string
	OrgIDs    []string
	OrgID     string
	ItemID    string
	RegionID  string
	Status    string
	Before    string // keyset cursor: id of the last row of the previous page
	Limit     int
}

// List returns orders newest first.
func (r *Orders) List(ctx context.Context, f OrderFilter) ([]model.Order, error) {
	q := r.s.conn(ctx).Order("id DESC").Limit(f.Limit)
	if len(f.RegionIDs) > 0 {
		q = q.Where("region_id IN ?", f.RegionIDs)
	}
	if len(f.OrgIDs) > 0 {
		q = q.Where("org_id IN ?", f.OrgIDs)
	}
	if f.OrgID != "" {
		q = q.Where("org_id = ?", f.OrgID)
	}
	if f.ItemID != "" {
		q = q.Where("item_id = ?", f.ItemID)
	}
	if f.RegionID != "" {
		q = q.Where("region_id = ?", f.RegionID)
	}
	if f.Status != "" {
		q = q.Where("status = ?", f.Status)
	}
	if f.Before != "" {
		q = q.Where("id < ?", f.Before)
	}
	var rows []model.Order
	return rows, translate("orders.list", q.Find(&rows).Error)
}

// UpdateGuarded writes cols only while the order still has the status the
// caller read and no more than maxUsed sessions consumed; it reports false
// when a concurrent change got there first (the guard is what protects
// SQLite, which ignores FOR UPDATE).
func (r *Orders) UpdateGuarded(ctx context.Context, id string, cols map[string]any, status string, maxUsed int) (bool, error) {
	res := r.s.conn(ctx).Model(&model.Order{}).Where("id = ? AND status = ? AND used_count <= ?", id, status, maxUsed).Updates(cols)
	return res.RowsAffected == 1, translate("orders.update", res.Error)
}

// AddUsed moves an order's used count by delta (an approved session adds
// one, a reversal subtracts one) and returns the order after the change.
// It does not refuse going past the quantity: such sessions are flagged and
// held unpaid by the caller, not lost.
func (r *Orders) AddUsed(ctx context.Context, id string, delta int) (model.Order, error) {
	var o model.Order
	err := r.s.InTx(ctx, func(ctx context.Context) error {
		db := r.s.conn(ctx)
		res := db.Model(&model.Order{}).Where("id = ? AND used_count + ? >= 0", id, delta).
			Update("used_count", gorm.Expr("used_count + ?", delta))
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return gorm.ErrRecordNotFound
		}
		return db.Where("id = ?", id).Take(&o).Error
	})
	return o, translate("orders.add_used", err)
}

// TownsOfOrgs lists the distinct towns where any of the organizations holds
// an order of any status: the reach of their workers for beneficiaries.
func (r *Orders) TownsOfOrgs(ctx context.Context, orgIDs []string) ([]string, error) {
	if len(orgIDs) == 0 {
		return nil, nil
	}
	var out []string
	err := r.s.conn(ctx).Model(&model.Order{}).Distinct("region_id").Where("org_id IN ?", orgIDs).Pluck("region_id", &out).Error
	return out, translate("orders.towns_of_orgs", err)
}
