package repository

import (
	"context"
	"time"

	"gorm.io/gorm/clause"

	"qjmz/model"
)

// Uploads stores evidence upload tickets and, once completed, the facts of
// the media file. It also reads the session record an upload belongs to, so
// the upload use cases do not depend on the records slice's repository.
type Uploads struct{ s *Store }

// NewUploads builds the upload repository.
func NewUploads(s *Store) *Uploads { return &Uploads{s: s} }

// Create inserts a pending upload.
func (r *Uploads) Create(ctx context.Context, u *model.Upload) error {
	return translate("uploads.create", r.s.conn(ctx).Create(u).Error)
}

// Get finds an upload by id.
func (r *Uploads) Get(ctx context.Context, id string) (model.Upload, error) {
	var u model.Upload
	return u, translate("uploads.get", r.s.conn(ctx).Where("id = ?", id).Take(&u).Error)
}

// Transition writes cols and moves the upload out of status from, only if it
// is still in from. It reports false when another request moved it first:
// the condition is the real guard on SQLite, which ignores FOR UPDATE, and
// it keeps the whole processing of a file outside any transaction.
func (r *Uploads) Transition(ctx context.Context, id, from string, cols map[string]any) (bool, error) {
	res := r.s.conn(ctx).Model(&model.Upload{}).Where("id = ? AND status = ?", id, from).Updates(cols)
	return res.RowsAffected == 1, translate("uploads.transition", res.Error)
}

// Update writes the given columns of a ready upload (content-check results).
func (r *Uploads) Update(ctx context.Context, id string, cols map[string]any) error {
	return translate("uploads.update", r.s.conn(ctx).Model(&model.Upload{}).Where("id = ?", id).Updates(cols).Error)
}

// CountActiveByRecord counts the pending and ready uploads of a record, to
// cap how much storage one record can claim.
func (r *Uploads) CountActiveByRecord(ctx context.Context, recordID string) (int64, error) {
	var n int64
	err := r.s.conn(ctx).Model(&model.Upload{}).
		Where("record_id = ? AND status IN ?", recordID, []string{model.UploadPending, model.UploadReady}).Count(&n).Error
	return n, translate("uploads.count_active", err)
}

// ReadyByRecord lists the ready uploads of a record in upload order. Used by
// the records slice to check evidence rules on submit and to show media.
func (r *Uploads) ReadyByRecord(ctx context.Context, recordID string) ([]model.Upload, error) {
	var rows []model.Upload
	err := r.s.conn(ctx).Where("record_id = ? AND status = ?", recordID, model.UploadReady).Order("seq").Find(&rows).Error
	return rows, translate("uploads.ready_by_record", err)
}

// FindBySHA256 lists ready uploads anywhere on the platform with exactly
// these bytes, oldest first, except those of excludeRecordID ("" excludes
// nothing). Served by the index on sha256.
func (r *Uploads) FindBySHA256(ctx context.Context, sha, excludeRecordID string) ([]model.Upload, error) {
	q := r.s.conn(ctx).Where("sha256 = ? AND status = ?", sha, model.UploadReady)
	if excludeRecordID != "" {
		q = q.Where("(record_id IS NULL OR record_id <> ?)", excludeRecordID)
	}
	var rows []model.Upload
	return rows, translate("uploads.find_by_sha256", q.Order("seq").Limit(20).Find(&rows).Error)
}

// ImagesSince lists ready image uploads with seq > seq in seq order, for
// building the near-duplicate index incrementally.
//
// Seq is allocated when the ticket is issued, not when the file becomes
// ready, so a slow upload can turn ready after a later one was already
// returned here. A consumer must therefore not advance its high-water mark
// past PendingFloor()-1: everything at or above the floor may still change.
func (r *Uploads) ImagesSince(ctx context.Context, seq int64, limit int) ([]model.Upload, error) {
	var rows []model.Upload
	err := r.s.conn(ctx).Where("seq > ? AND kind = ? AND status = ?", seq, model.KindImage, model.UploadReady).
		Order("seq").Limit(limit).Find(&rows).Error
	return rows, translate("uploads.images_since", err)
}

// PendingFloor returns the smallest seq of an upload that is still pending
// (0 when none is): see ImagesSince.
func (r *Uploads) PendingFloor(ctx context.Context) (int64, error) {
	var floor *int64
	err := r.s.conn(ctx).Model(&model.Upload{}).Where("status = ?", model.UploadPending).Select("MIN(seq)").Scan(&floor).Error
	if err != nil || floor == nil {
		return 0, translate("uploads.pending_floor", err)
	}
	return *floor, nil
}

// ExpiredPending lists pending uploads whose ticket expired before cutoff,
// oldest first.
func (r *Uploads) ExpiredPending(ctx context.Context, cutoff time.Time, limit int) ([]model.Upload, error) {
	var rows []model.Upload
	err := r.s.conn(ctx).Where("status = ? AND expires_at < ?", model.UploadPending, cutoff).
		Order("expires_at").Limit(limit).Find(&rows).Error
	return rows, translate("uploads.expired_pending", err)
}

// Record reads the session record an upload is for.
func (r *Uploads) Record(ctx context.Context, id string) (model.SessionRecord, error) {
	var rec model.SessionRecord
	return rec, translate("uploads.record", r.s.conn(ctx).Where("id = ?", id).Take(&rec).Error)
}

// LockRecord reads the record and locks it until the transaction ends, so
// a submit running at the same moment cannot slip between the editable
// check and the new evidence.
func (r *Uploads) LockRecord(ctx context.Context, id string) (model.SessionRecord, error) {
	var rec model.SessionRecord
	err := r.s.conn(ctx).Clauses(clause.Locking{Strength: "UPDATE"}).Where("id = ?", id).Take(&rec).Error
	return rec, translate("uploads.lock_record", err)
}
