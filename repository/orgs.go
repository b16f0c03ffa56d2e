package repository

import (
	"context"

	"qjmz/model"
)

// Organizations reads and writes social organizations.
type Organizations struct{ s *Store }

// NewOrganizations builds the organization repository.
func NewOrganizations(s *Store) *Organizations { return &Organizations{s: s} }

// Create inserts an organization; a duplicate credit code is ErrConflict.
func (r *Organizations) Create(ctx context.Context, o *model.Organization) error {
	return translate("orgs.create", r.s.conn(ctx).Create(o).Error)
}

// Get finds an organization by id.
func (r *Organizations) Get(ctx context.Context, id string) (model.Organization, error) {
	var o model.Organization
	return o, translate("orgs.get", r.s.conn(ctx).Where("id = ?", id).Take(&o).Error)
}

// GetMany loads organizations by id, keyed by id.
func (r *Organizations) GetMany(ctx context.Context, ids []string) (map[string]model.Organization, error) {
	out := make(map[string]model.Organization, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []model.Organization
	if err := r.s.conn(ctx).Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, translate("orgs.get_many", err)
	}
	for _, x := range rows {
		out[x.ID] = x
	}
	return out, nil
}

// ListInRegions lists organizations whose home region is one of regionIDs,
// newest first, keyset-paginated by id.
func (r *Organizations) ListInRegions(ctx context.Context, regionIDs []string, after string, limit int) ([]model.Organization, error) {
	q := r.s.conn(ctx).Where("region_id IN ?", regionIDs).Order("id DESC").Limit(limit)
	if after != "" {
		q = q.Where("id < ?", after)
	}
	var rows []model.Organization
	return rows, translate("orgs.list", q.Find(&rows).Error)
}

// Update writes the given columns.
func (r *Organizations) Update(ctx context.Context, id string, cols map[string]any) error {
	return translate("orgs.update", r.s.conn(ctx).Model(&model.Organization{}).Where("id = ?", id).Updates(cols).Error)
}
