package repository

import (
	"context"

	"gorm.io/gorm/clause"

	"qjmz/model"
)

// Beneficiaries stores the people served (服务对象). Personal fields arrive
// already encrypted; this layer never sees plaintext.
type Beneficiaries struct{ s *Store }

// NewBeneficiaries builds the beneficiary repository.
func NewBeneficiaries(s *Store) *Beneficiaries { return &Beneficiaries{s: s} }

// Create inserts a beneficiary; an ID number already registered (same blind
// index) is ErrConflict.
func (r *Beneficiaries) Create(ctx context.Context, b *model.Beneficiary) error {
	return translate("beneficiaries.create", r.s.conn(ctx).Create(b).Error)
}

// Get finds a beneficiary by id.
func (r *Beneficiaries) Get(ctx context.Context, id string) (model.Beneficiary, error) {
	var b model.Beneficiary
	return b, translate("beneficiaries.get", r.s.conn(ctx).Where("id = ?", id).Take(&b).Error)
}

// Lock reads a beneficiary for update inside the caller's transaction.
func (r *Beneficiaries) Lock(ctx context.Context, id string) (model.Beneficiary, error) {
	var b model.Beneficiary
	err := r.s.conn(ctx).Clauses(clause.Locking{Strength: "UPDATE"}).Where("id = ?", id).Take(&b).Error
	return b, translate("beneficiaries.lock", err)
}

// GetByIDIndex finds the person with this ID-number blind index.
func (r *Beneficiaries) GetByIDIndex(ctx context.Context, idx string) (model.Beneficiary, error) {
	var b model.Beneficiary
	return b, translate("beneficiaries.get_by_index", r.s.conn(ctx).Where("id_index = ?", idx).Take(&b).Error)
}

// GetMany loads beneficiaries by id, keyed by id (session records, review
// and the feed load the people of many records at once).
func (r *Beneficiaries) GetMany(ctx context.Context, ids []string) (map[string]model.Beneficiary, error) {
	out := make(map[string]model.Beneficiary, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []model.Beneficiary
	if err := r.s.conn(ctx).Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, translate("beneficiaries.get_many", err)
	}
	for _, x := range rows {
		out[x.ID] = x
	}
	return out, nil
}

// ListInCommunity lists a community's beneficiaries newest first,
// keyset-paginated by id.
func (r *Beneficiaries) ListInCommunity(ctx context.Context, communityID, before string, limit int) ([]model.Beneficiary, error) {
	q := r.s.conn(ctx).Where("community_id = ?", communityID).Order("id DESC").Limit(limit)
	if before != "" {
		q = q.Where("id < ?", before)
	}
	var rows []model.Beneficiary
	return rows, translate("beneficiaries.list", q.Find(&rows).Error)
}

// Update writes the given columns.
func (r *Beneficiaries) Update(ctx context.Context, id string, cols map[string]any) error {
	return translate("beneficiaries.update", r.s.conn(ctx).Model(&model.Beneficiary{}).Where("id = ?", id).Updates(cols).Error)
}
