package repository

import (
	"context"
	"strings"
	"time"

	"gorm.io/gorm"

	"qjmz/model"
)

// Reviews is the database side of review: decisions, reason codes, and the
// questions the queue, the reviewer views and the weekly cycle ask about
// session records. Records themselves are read and changed through Records
// (the conditional update lives there); what is here is review-only.
type Reviews struct{ s *Store }

// NewReviews builds the review repository.
func NewReviews(s *Store) *Reviews { return &Reviews{s: s} }

// PendingStatuses are the statuses awaiting a decision: submitted waits for
// level 1, level1_approved for level 2.
var PendingStatuses = []string{model.RecordSubmitted, model.RecordLevel1OK}

// ---- decisions and reasons ----

// Add inserts a decision.
func (r *Reviews) Add(ctx context.Context, rv *model.Review) error {
	return translate("reviews.add", r.s.conn(ctx).Create(rv).Error)
}

// OfRecord lists a record's decisions, oldest first (index ix_review_rec).
func (r *Reviews) OfRecord(ctx context.Context, recordID string) ([]model.Review, error) {
	var rows []model.Review
	err := r.s.conn(ctx).Where("record_id = ?", recordID).Order("created_at, id").Find(&rows).Error
	return rows, translate("reviews.of_record", err)
}

// Reasons lists the reason codes, active ones only unless all.
func (r *Reviews) Reasons(ctx context.Context, all bool) ([]model.ReviewReason, error) {
	q := r.s.conn(ctx).Order("sort_order, code")
	if !all {
		q = q.Where("active = ?", true)
	}
	var rows []model.ReviewReason
	return rows, translate("reviews.reasons", q.Find(&rows).Error)
}

// ---- payable ----

// ApprovedOnOrder lists the approved records of an order in the order they
// consumed its units (decision time, then id).
func (r *Reviews) ApprovedOnOrder(ctx context.Context, orderID string) ([]model.SessionRecord, error) {
	var rows []model.SessionRecord
	err := r.s.conn(ctx).Select("id, payable, decided_at, worker_id, version").
		Where("order_id = ? AND status = ?", orderID, model.RecordApproved).
		Order("decided_at, id").Find(&rows).Error
	return rows, translate("reviews.approved_on_order", err)
}

// SetPayable sets the payable mark of approved records.
func (r *Reviews) SetPayable(ctx context.Context, ids []string, payable bool) error {
	if len(ids) == 0 {
		return nil
	}
	err := r.s.conn(ctx).Model(&model.SessionRecord{}).Where("id IN ? AND status = ?", ids, model.RecordApproved).
		Update("payable", payable).Error
	return translate("reviews.set_payable", err)
}

// SetPublicMedia clears exactly the listed images of a record for the
// public feed; its other images are not cleared.
func (r *Reviews) SetPublicMedia(ctx context.Context, recordID string, uploadIDs []string) error {
	err := r.s.conn(ctx).Model(&model.Upload{}).Where("record_id = ? AND kind = ?", recordID, model.KindImage).
		Update("public_ok", false).Error
	if err != nil || len(uploadIDs) == 0 {
		return translate("reviews.public_media", err)
	}
	err = r.s.conn(ctx).Model(&model.Upload{}).Where("record_id = ? AND kind = ? AND id IN ?", recordID, model.KindImage, uploadIDs).
		Update("public_ok", true).Error
	return translate("reviews.public_media", err)
}

// ---- queue source ----

// QueueRef names one review queue that has pending records in the database.
type QueueRef struct {
	TownID string
	Status string
}

// PendingQueues lists the (town, status) pairs that have records awaiting a
// decision (index ix_rec_town is (town_id, status)).
func (r *Reviews) PendingQueues(ctx context.Context) ([]QueueRef, error) {
	var rows []QueueRef
	err := r.s.conn(ctx).Model(&model.SessionRecord{}).Distinct("town_id", "status").
		Where("status IN ?", PendingStatuses).Scan(&rows).Error
	return rows, translate("reviews.pending_queues", err)
}

// PendingRow is one record awaiting a decision, as the queue needs it.
type PendingRow struct {
	ID          string
	Version     int
	SubmittedAt *time.Time
	DueAt       *time.Time
	RiskLevel   string
	Flagged     int
}

// PendingIn lists the records of one town in one pending status, with
// whether their current version carries any flag.
func (r *Reviews) PendingIn(ctx context.Context, townID, status string) ([]PendingRow, error) {
	var rows []PendingRow
	err := r.s.conn(ctx).Table("session_records AS r").
		Select("r.id, r.version, r.submitted_at, r.due_at, r.risk_level, "+
			"CASE WHEN EXISTS (SELECT 1 FROM risk_flags f WHERE f.record_id = r.id AND f.version = r.version) THEN 1 ELSE 0 END AS flagged").
		Where("r.town_id = ? AND r.status = ?", townID, status).Order("r.id").Scan(&rows).Error
	return rows, translate("reviews.pending_in", err)
}

// SetDueIfEmpty sets a pending record's due date unless it has one.
func (r *Reviews) SetDueIfEmpty(ctx context.Context, id string, due time.Time) error {
	err := r.s.conn(ctx).Model(&model.SessionRecord{}).Where("id = ? AND due_at IS NULL AND status IN ?", id, PendingStatuses).
		Update("due_at", due).Error
	return translate("reviews.set_due", err)
}

// AlignLevels makes review_level follow the status for pending records
// (the records slice submits without touching it).
func (r *Reviews) AlignLevels(ctx context.Context) error {
	db := r.s.conn(ctx).Model(&model.SessionRecord{})
	if err := db.Where("status = ? AND review_level <> ?", model.RecordSubmitted, 1).Update("review_level", 1).Error; err != nil {
		return translate("reviews.align_levels", err)
	}
	err := r.s.conn(ctx).Model(&model.SessionRecord{}).Where("status = ? AND review_level <> ?", model.RecordLevel1OK, 2).
		Update("review_level", 2).Error
	return translate("reviews.align_levels", err)
}

// ---- reviewer views ----

// scopeJoin restricts a query over session_records AS r to towns under any
// of the region paths (materialized-path prefix on regions.path).
func scopeJoin(q *gorm.DB, paths []string) *gorm.DB {
	q = q.Joins("JOIN regions t ON t.id = r.town_id")
	conds := make([]string, 0, len(paths))
	args := make([]any, 0, len(paths))
	for _, p := range paths {
		conds = append(conds, "t.path LIKE ?")
		args = append(args, p+"%")
	}
	return q.Where("("+strings.Join(conds, " OR ")+")", args...)
}

// PendingFilter selects records awaiting a decision for a reviewer.
type PendingFilter struct {
	Paths                 []string // region scopes of the caller (required)
	Statuses              []string // pending statuses the caller may see
	TownID, OrgID, ItemID string
	Flag                  string
	From, To              time.Time // submitted_at range (zero = open)
	OverdueAt             time.Time // non-zero: only due_at < OverdueAt
	AfterKey              time.Time // keyset: (sort time, id) > (AfterKey, AfterID)
	AfterID               string
	Limit                 int
}

// Pending lists records awaiting a decision in scope, oldest submission
// first (or, for overdue listings, earliest due date first).
func (r *Reviews) Pending(ctx context.Context, f PendingFilter) ([]model.SessionRecord, error) {
	if len(f.Paths) == 0 || len(f.Statuses) == 0 {
		return nil, nil
	}
	col := "r.submitted_at"
	if !f.OverdueAt.IsZero() {
		col = "r.due_at"
	}
	q := scopeJoin(r.s.conn(ctx).Table("session_records AS r").Select("r.*"), f.Paths).
		Where("r.status IN ?", f.Statuses)
	if f.TownID != "" {
		q = q.Where("r.town_id = ?", f.TownID)
	}
	if f.OrgID != "" {
		q = q.Where("r.org_id = ?", f.OrgID)
	}
	if f.ItemID != "" {
		q = q.Where("r.item_id = ?", f.ItemID)
	}
	if f.Flag != "" {
		q = q.Where("EXISTS (SELECT 1 FROM risk_flags f WHERE f.record_id = r.id AND f.version = r.version AND f.code = ?)", f.Flag)
	}
	if !f.From.IsZero() {
		q = q.Where("r.submitted_at >= ?", f.From)
	}
	if !f.To.IsZero() {
		q = q.Where("r.submitted_at < ?", f.To)
	}
	if !f.OverdueAt.IsZero() {
		q = q.Where("r.due_at IS NOT NULL AND r.due_at < ?", f.OverdueAt)
	}
	if f.AfterID != "" {
		q = q.Where("("+col+" > ? OR ("+col+" = ? AND r.id > ?))", f.AfterKey, f.AfterKey, f.AfterID)
	}
	var rows []model.SessionRecord
	err := q.Order(col + ", r.id").Limit(f.Limit).Find(&rows).Error
	return rows, translate("reviews.pending", err)
}

// PendingTowns lists the towns in scope with records in status, oldest
// submission first, so a reviewer over many towns is served the oldest
// work first.
func (r *Reviews) PendingTowns(ctx context.Context, paths []string, status string) ([]string, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	var out []string
	err := scopeJoin(r.s.conn(ctx).Table("session_records AS r"), paths).
		Where("r.status = ?", status).Group("r.town_id").Order("MIN(r.submitted_at)").Pluck("r.town_id", &out).Error
	return out, translate("reviews.pending_towns", err)
}

// FlagsOf lists the flags of the given records (every version).
func (r *Reviews) FlagsOf(ctx context.Context, recordIDs []string) ([]model.RiskFlag, error) {
	if len(recordIDs) == 0 {
		return nil, nil
	}
	var rows []model.RiskFlag
	err := r.s.conn(ctx).Where("record_id IN ?", recordIDs).Order("record_id, version, code, id").Find(&rows).Error
	return rows, translate("reviews.flags_of", err)
}

// ---- weekly cycle ----

// DueForEscalation lists pending records past their due date that have not
// been escalated yet (index ix_rec_due).
func (r *Reviews) DueForEscalation(ctx context.Context, now time.Time, limit int) ([]model.SessionRecord, error) {
	var rows []model.SessionRecord
	err := r.s.conn(ctx).Where("due_at IS NOT NULL AND due_at < ? AND escalated_at IS NULL AND status IN ?", now, PendingStatuses).
		Order("due_at, id").Limit(limit).Find(&rows).Error
	return rows, translate("reviews.due_for_escalation", err)
}

// MarkEscalated sets escalated_at while the record is still the pending
// version seen; it reports whether it did.
func (r *Reviews) MarkEscalated(ctx context.Context, id string, version int, now time.Time) (bool, error) {
	res := r.s.conn(ctx).Model(&model.SessionRecord{}).
		Where("id = ? AND version = ? AND escalated_at IS NULL AND status IN ?", id, version, PendingStatuses).
		Update("escalated_at", now)
	return res.RowsAffected == 1, translate("reviews.mark_escalated", res.Error)
}

// DecisionRow is one decision with the times its reviewer's speed is
// measured from.
type DecisionRow struct {
	ReviewerID  string
	Decision    string
	Level       int
	ClaimedAt   *time.Time
	SubmittedAt *time.Time
	CreatedAt   time.Time
}

// Decisions lists decisions made in [from, to) on records in scope, with
// the submission time of the version decided.
func (r *Reviews) Decisions(ctx context.Context, paths []string, from, to time.Time) ([]DecisionRow, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	var rows []DecisionRow
	q := r.s.conn(ctx).Table("reviews AS v").
		Select("v.reviewer_id, v.decision, v.level, v.claimed_at, rv.submitted_at, v.created_at").
		Joins("JOIN session_records r ON r.id = v.record_id").
		Joins("LEFT JOIN record_versions rv ON rv.record_id = v.record_id AND rv.version = v.version")
	err := scopeJoin(q, paths).Where("v.created_at >= ? AND v.created_at < ?", from, to).
		Order("v.reviewer_id, v.created_at").Scan(&rows).Error
	return rows, translate("reviews.decisions", err)
}

// CountEscalated counts records in scope escalated in [from, to).
func (r *Reviews) CountEscalated(ctx context.Context, paths []string, from, to time.Time) (int64, error) {
	if len(paths) == 0 {
		return 0, nil
	}
	var n int64
	err := scopeJoin(r.s.conn(ctx).Table("session_records AS r"), paths).
		Where("r.escalated_at >= ? AND r.escalated_at < ?", from, to).Count(&n).Error
	return n, translate("reviews.count_escalated", err)
}

// RecordsByID loads records by id, keyed by id.
func (r *Reviews) RecordsByID(ctx context.Context, ids []string) (map[string]model.SessionRecord, error) {
	out := make(map[string]model.SessionRecord, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []model.SessionRecord
	if err := r.s.conn(ctx).Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, translate("reviews.records_by_id", err)
	}
	for _, x := range rows {
		out[x.ID] = x
	}
	return out, nil
}
