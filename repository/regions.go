package repository

import (
	"context"

	"qjmz/model"
)

// Regions reads and writes the region tree.
type Regions struct{ s *Store }

// NewRegions builds the region repository.
func NewRegions(s *Store) *Regions { return &Regions{s: s} }

// Create inserts a region; a duplicate code is ErrConflict.
func (r *Regions) Create(ctx context.Context, reg *model.Region) error {
	return translate("regions.create", r.s.conn(ctx).Create(reg).Error)
}

// Get finds a region by id.
func (r *Regions) Get(ctx context.Context, id string) (model.Region, error) {
	var reg model.Region
	err := r.s.conn(ctx).Where("id = ?", id).Take(&reg).Error
	return reg, translate("regions.get", err)
}

// GetByCode finds a region by its administrative code.
func (r *Regions) GetByCode(ctx context.Context, code string) (model.Region, error) {
	var reg model.Region
	err := r.s.conn(ctx).Where("code = ?", code).Take(&reg).Error
	return reg, translate("regions.get_by_code", err)
}

// GetMany loads regions by id, keyed by id (no N+1 in list views).
func (r *Regions) GetMany(ctx context.Context, ids []string) (map[string]model.Region, error) {
	out := make(map[string]model.Region, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []model.Region
	if err := r.s.conn(ctx).Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, translate("regions.get_many", err)
	}
	for _, x := range rows {
		out[x.ID] = x
	}
	return out, nil
}

// Children lists the direct children of parentID ("" = roots), by code.
func (r *Regions) Children(ctx context.Context, parentID string) ([]model.Region, error) {
	q := r.s.conn(ctx).Order("code")
	if parentID == "" {
		q = q.Where("parent_id IS NULL")
	} else {
		q = q.Where("parent_id = ?", parentID)
	}
	var rows []model.Region
	return rows, translate("regions.children", q.Find(&rows).Error)
}

// Subtree lists every region under path (inclusive), by path; one indexed
// prefix scan.
func (r *Regions) Subtree(ctx context.Context, path string, level string) ([]model.Region, error) {
	// Paths are built by the server from ULIDs and slashes only, so they hold
	// no LIKE wildcards to escape.
	q := r.s.conn(ctx).Where("path LIKE ?", path+"%").Order("path")
	if level != "" {
		q = q.Where("level = ?", level)
	}
	var rows []model.Region
	return rows, translate("regions.subtree", q.Find(&rows).Error)
}

// Update writes the given columns (explicit map: zero values are written).
func (r *Regions) Update(ctx context.Context, id string, cols map[string]any) error {
	res := r.s.conn(ctx).Model(&model.Region{}).Where("id = ?", id).Updates(cols)
	if res.Error != nil {
		return translate("regions.update", res.Error)
	}
	return nil
}

// Count returns how many regions exist (demo loader: empty database?).
func (r *Regions) Count(ctx context.Context) (int64, error) {
	var n int64
	return n, translate("regions.count", r.s.conn(ctx).Model(&model.Region{}).Count(&n).Error)
}
