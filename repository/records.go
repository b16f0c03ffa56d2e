package repository

import (
	"context"
	"time"

	"gorm.io/gorm/clause"

	"qjmz/model"
)

// Records reads and writes session records, their beneficiary links,
// versions and risk flags, and answers the platform-wide questions the
// submit checks ask. It reads orders, service items, beneficiaries and
// uploads through their models directly: those tables belong to other
// slices, but the checks need a few indexed lookups on them, not their
// use cases.
type Records struct{ s *Store }

// NewRecords builds the session-record repository.
func NewRecords(s *Store) *Records { return &Records{s: s} }

// ClaimedStatuses are the statuses of records that claim a session: every
// record except drafts (not yet claimed) and rejected ones (claim refused).
// Returned records count because they normally come back.
var ClaimedStatuses = []string{model.RecordSubmitted, model.RecordLevel1OK, model.RecordApproved, model.RecordReturned}

// ---- records ----

// Create inserts a record and its beneficiary links.
func (r *Records) Create(ctx context.Context, rec *model.SessionRecord, beneficiaryIDs []string) error {
	return r.s.InTx(ctx, func(ctx context.Context) error {
		if err := r.s.conn(ctx).Create(rec).Error; err != nil {
			return translate("records.create", err)
		}
		return r.SetBeneficiaries(ctx, rec.ID, beneficiaryIDs)
	})
}

// Get finds a record by id.
func (r *Records) Get(ctx context.Context, id string) (model.SessionRecord, error) {
	var rec model.SessionRecord
	return rec, translate("records.get", r.s.conn(ctx).Where("id = ?", id).Take(&rec).Error)
}

// LockItem reads a catalogue item and locks its row for the transaction:
// submits of capped items take turns.
func (r *Records) LockItem(ctx context.Context, id string) (model.ServiceItem, error) {
	var it model.ServiceItem
	err := r.s.conn(ctx).Clauses(clause.Locking{Strength: "UPDATE"}).Where("id = ?", id).Take(&it).Error
	return it, translate("records.lock_item", err)
}

// Lock reads a record FOR UPDATE; callers also update conditionally,
// because SQLite ignores the lock (its transactions are serialised instead).
func (r *Records) Lock(ctx context.Context, id string) (model.SessionRecord, error) {
	var rec model.SessionRecord
	err := r.s.conn(ctx).Clauses(clause.Locking{Strength: "UPDATE"}).Where("id = ?", id).Take(&rec).Error
	return rec, translate("records.lock", err)
}

// UpdateIf writes cols only while the record still has the given version
// and one of the statuses; it reports whether it did.
func (r *Records) UpdateIf(ctx context.Context, id string, version int, statuses []string, cols map[string]any) (bool, error) {
	res := r.s.conn(ctx).Model(&model.SessionRecord{}).
		Where("id = ? AND version = ? AND status IN ?", id, version, statuses).Updates(cols)
	return res.RowsAffected == 1, translate("records.update_if", res.Error)
}

// SetBeneficiaries replaces the record's beneficiary links.
func (r *Records) SetBeneficiaries(ctx context.Context, recordID string, beneficiaryIDs []string) error {
	db := r.s.conn(ctx)
	if err := db.Where("record_id = ?", recordID).Delete(&model.RecordBeneficiary{}).Error; err != nil {
		return translate("records.clear_beneficiaries", err)
	}
	if len(beneficiaryIDs) == 0 {
		return nil
	}
	links := make([]model.RecordBeneficiary, 0, len(beneficiaryIDs))
	for _, b := range beneficiaryIDs {
		links = append(links, model.RecordBeneficiary{RecordID: recordID, BeneficiaryID: b})
	}
	return translate("records.set_beneficiaries", db.Create(&links).Error)
}

// BeneficiaryIDs lists the ids linked to a record, sorted.
func (r *Records) BeneficiaryIDs(ctx context.Context, recordID string) ([]string, error) {
	var out []string
	err := r.s.conn(ctx).Model(&model.RecordBeneficiary{}).Where("record_id = ?", recordID).
		Order("beneficiary_id").Pluck("beneficiary_id", &out).Error
	return out, translate("records.beneficiary_ids", err)
}

// RecordFilter selects records for a listing, newest first.
type RecordFilter struct {
	OrgIDs []string
	Status string
	Before string // keyset cursor: ids sort by creation time
	Limit  int
}

// List returns records of the given organizations (index ix_rec_org).
func (r *Records) List(ctx context.Context, f RecordFilter) ([]model.SessionRecord, error) {
	if len(f.OrgIDs) == 0 {
		return nil, nil
	}
	q := r.s.conn(ctx).Where("org_id IN ?", f.OrgIDs).Order("id DESC").Limit(f.Limit)
	if f.Status != "" {
		q = q.Where("status = ?", f.Status)
	}
	if f.Before != "" {
		q = q.Where("id < ?", f.Before)
	}
	var rows []model.SessionRecord
	return rows, translate("records.list", q.Find(&rows).Error)
}

// ---- versions and flags ----

// AddVersion stores a submitted snapshot; a second snapshot of the same
// version is ErrConflict (unique record_id, version).
func (r *Records) AddVersion(ctx context.Context, v *model.RecordVersion) error {
	return translate("records.add_version", r.s.conn(ctx).Create(v).Error)
}

// Versions lists a record's snapshots, oldest first.
func (r *Records) Versions(ctx context.Context, recordID string) ([]model.RecordVersion, error) {
	var rows []model.RecordVersion
	err := r.s.conn(ctx).Where("record_id = ?", recordID).Order("version").Find(&rows).Error
	return rows, translate("records.versions", err)
}

// ReplaceFlags stores the flags of one version of a record, replacing any
// stored earlier for that version.
func (r *Records) ReplaceFlags(ctx context.Context, recordID string, version int, flags []model.RiskFlag) error {
	db := r.s.conn(ctx)
	if err := db.Where("record_id = ? AND version = ?", recordID, version).Delete(&model.RiskFlag{}).Error; err != nil {
		return translate("records.clear_flags", err)
	}
	if len(flags) == 0 {
		return nil
	}
	return translate("records.add_flags", db.Create(&flags).Error)
}

// Flags lists a record's flags of every version (index ix_flag_rec).
func (r *Records) Flags(ctx context.Context, recordID string) ([]model.RiskFlag, error) {
	var rows []model.RiskFlag
	err := r.s.conn(ctx).Where("record_id = ?", recordID).Order("version, severity, code, id").Find(&rows).Error
	return rows, translate("records.flags", err)
}

// ---- neighbours owned by other slices ----

// GetOrder finds an order.
func (r *Records) GetOrder(ctx context.Context, id string) (model.Order, error) {
	var o model.Order
	return o, translate("records.get_order", r.s.conn(ctx).Where("id = ?", id).Take(&o).Error)
}

// GetItem finds a catalogue entry.
func (r *Records) GetItem(ctx context.Context, id string) (model.ServiceItem, error) {
	var it model.ServiceItem
	return it, translate("records.get_item", r.s.conn(ctx).Where("id = ?", id).Take(&it).Error)
}

// GetItems loads catalogue entries by id, keyed by id.
func (r *Records) GetItems(ctx context.Context, ids []string) (map[string]model.ServiceItem, error) {
	out := make(map[string]model.ServiceItem, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []model.ServiceItem
	if err := r.s.conn(ctx).Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, translate("records.get_items", err)
	}
	for _, x := range rows {
		out[x.ID] = x
	}
	return out, nil
}

// GetBeneficiaries loads beneficiaries by id, in id order.
func (r *Records) GetBeneficiaries(ctx context.Context, ids []string) ([]model.Beneficiary, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var rows []model.Beneficiary
	err := r.s.conn(ctx).Where("id IN ?", ids).Order("id").Find(&rows).Error
	return rows, translate("records.get_beneficiaries", err)
}

// Media lists the uploads attached to a record, oldest first.
func (r *Records) Media(ctx context.Context, recordID string) ([]model.Upload, error) {
	var rows []model.Upload
	err := r.s.conn(ctx).Where("record_id = ?", recordID).Order("seq").Find(&rows).Error
	return rows, translate("records.media", err)
}

// ---- platform-wide questions of the submit checks ----

// SameSHA256 lists uploads anywhere on the platform, outside recordID,
// whose file has one of the digests (index on sha256). Rejected and expired
// tickets are left out: their bytes never became evidence.
func (r *Records) SameSHA256(ctx context.Context, digests []string, recordID string) ([]model.Upload, error) {
	if len(digests) == 0 {
		return nil, nil
	}
	var rows []model.Upload
	err := r.s.conn(ctx).
		Where("sha256 IN ? AND status NOT IN ? AND (record_id IS NULL OR record_id <> ?)",
			digests, []string{model.UploadRejected, model.UploadExpired}, recordID).
		Order("seq").Find(&rows).Error
	return rows, translate("records.same_sha256", err)
}

// UploadsByID loads uploads by id, keyed by id.
func (r *Records) UploadsByID(ctx context.Context, ids []string) (map[string]model.Upload, error) {
	out := make(map[string]model.Upload, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []model.Upload
	if err := r.s.conn(ctx).Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, translate("records.uploads_by_id", err)
	}
	for _, x := range rows {
		out[x.ID] = x
	}
	return out, nil
}

// ImageHashesAfter returns image uploads with seq > after, in seq order,
// with only the columns the near-duplicate index needs (unique seq index).
func (r *Records) ImageHashesAfter(ctx context.Context, after int64, limit int) ([]model.Upload, error) {
	var rows []model.Upload
	err := r.s.conn(ctx).Select("id, seq, record_id, status, expires_at, p_hash, d_hash, top_p_hash, top_d_hash").
		Where("seq > ? AND kind = ?", after, model.KindImage).Order("seq").Limit(limit).Find(&rows).Error
	return rows, translate("records.image_hashes_after", err)
}

// CapUse is one claimed record that served a beneficiary (or someone of the
// same household) under an item, with the price it claims.
type CapUse struct {
	RecordID      string
	BeneficiaryID string
	Household     string
	UnitPriceFen  int64
}

// CapUses lists, for an item, the claimed records other than recordID that
// served any of the beneficiaries or anyone of the households, with the
// order's locked unit price. Callers de-duplicate per record.
func (r *Records) CapUses(ctx context.Context, itemID, recordID string, beneficiaryIDs, households []string) ([]CapUse, error) {
	if len(beneficiaryIDs) == 0 && len(households) == 0 {
		return nil, nil
	}
	q := r.s.conn(ctx).Table("session_records AS r").
		Select("r.id AS record_id, rb.beneficiary_id AS beneficiary_id, b.household AS household, o.unit_price_fen AS unit_price_fen").
		Joins("JOIN record_beneficiaries rb ON rb.record_id = r.id").
		Joins("JOIN beneficiaries b ON b.id = rb.beneficiary_id").
		Joins("JOIN orders o ON o.id = r.order_id").
		Where("r.item_id = ? AND r.id <> ? AND r.status IN ?", itemID, recordID, ClaimedStatuses)
	switch {
	case len(beneficiaryIDs) > 0 && len(households) > 0:
		q = q.Where("(rb.beneficiary_id IN ? OR b.household IN ?)", beneficiaryIDs, households)
	case len(beneficiaryIDs) > 0:
		q = q.Where("rb.beneficiary_id IN ?", beneficiaryIDs)
	default:
		q = q.Where("b.household IN ?", households)
	}
	var rows []CapUse
	return rows, translate("records.cap_uses", q.Order("r.id").Scan(&rows).Error)
}

// WorkerOverlaps lists the worker's claimed records, other than recordID,
// whose time overlaps [start, end) (index ix_rec_worker).
func (r *Records) WorkerOverlaps(ctx context.Context, workerID, recordID string, start, end time.Time) ([]model.SessionRecord, error) {
	var rows []model.SessionRecord
	err := r.s.conn(ctx).
		Where("worker_id = ? AND id <> ? AND status IN ? AND start_at < ? AND end_at > ?", workerID, recordID, ClaimedStatuses, end, start).
		Order("start_at").Find(&rows).Error
	return rows, translate("records.worker_overlaps", err)
}

// SameDay is one claimed record that served a beneficiary under an item
// within a time range.
type SameDay struct {
	RecordID      string
	BeneficiaryID string
	StartAt       time.Time
}

// BeneficiarySameDay lists claimed records of the item, other than
// recordID, serving one of the beneficiaries with a start in [from, to).
func (r *Records) BeneficiarySameDay(ctx context.Context, itemID, recordID string, beneficiaryIDs []string, from, to time.Time) ([]SameDay, error) {
	if len(beneficiaryIDs) == 0 {
		return nil, nil
	}
	var rows []SameDay
	err := r.s.conn(ctx).Table("session_records AS r").
		Select("r.id AS record_id, rb.beneficiary_id AS beneficiary_id, r.start_at AS start_at").
		Joins("JOIN record_beneficiaries rb ON rb.record_id = r.id").
		Where("rb.beneficiary_id IN ? AND r.item_id = ? AND r.id <> ? AND r.status IN ? AND r.start_at >= ? AND r.start_at < ?",
			beneficiaryIDs, itemID, recordID, ClaimedStatuses, from, to).
		Order("r.id").Scan(&rows).Error
	return rows, translate("records.beneficiary_same_day", err)
}

// PendingOnOrder counts the order's records awaiting a decision (submitted
// or past level 1), other than recordID: each will consume a unit if
// approved.
func (r *Records) PendingOnOrder(ctx context.Context, orderID, recordID string) (int, error) {
	var n int64
	err := r.s.conn(ctx).Model(&model.SessionRecord{}).
		Where("order_id = ? AND id <> ? AND status IN ?", orderID, recordID, []string{model.RecordSubmitted, model.RecordLevel1OK}).
		Count(&n).Error
	return int(n), translate("records.pending_on_order", err)
}
