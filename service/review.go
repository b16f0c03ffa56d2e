package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"qjmz/model"
	"qjmz/pkg/apperr"
	"qjmz/pkg/ids"
	"qjmz/repository"
)

// ReviewRecordStore is the slice of the session-record repository review
// reads and changes records through (repository.Records satisfies it).
type ReviewRecordStore interface {
	Get(ctx context.Context, id string) (model.SessionRecord, error)
	Lock(ctx context.Context, id string) (model.SessionRecord, error)
	UpdateIf(ctx context.Context, id string, version int, statuses []string, cols map[string]any) (bool, error)
	BeneficiaryIDs(ctx context.Context, recordID string) ([]string, error)
	GetBeneficiaries(ctx context.Context, ids []string) ([]model.Beneficiary, error)
	Versions(ctx context.Context, recordID string) ([]model.RecordVersion, error)
	Flags(ctx context.Context, recordID string) ([]model.RiskFlag, error)
	Media(ctx context.Context, recordID string) ([]model.Upload, error)
	UploadsByID(ctx context.Context, ids []string) (map[string]model.Upload, error)
	GetOrder(ctx context.Context, id string) (model.Order, error)
	GetItem(ctx context.Context, id string) (model.ServiceItem, error)
	GetItems(ctx context.Context, ids []string) (map[string]model.ServiceItem, error)
}

// ReviewStore is decisions, reason codes and review questions about records.
type ReviewStore interface {
	Add(ctx context.Context, rv *model.Review) error
	OfRecord(ctx context.Context, recordID string) ([]model.Review, error)
	Reasons(ctx context.Context, all bool) ([]model.ReviewReason, error)
	ApprovedOnOrder(ctx context.Context, orderID string) ([]model.SessionRecord, error)
	SetPayable(ctx context.Context, ids []string, payable bool) error
	SetPublicMedia(ctx context.Context, recordID string, uploadIDs []string) error
	PendingQueues(ctx context.Context) ([]repository.QueueRef, error)
	PendingIn(ctx context.Context, townID, status string) ([]repository.PendingRow, error)
	SetDueIfEmpty(ctx context.Context, id string, due time.Time) error
	AlignLevels(ctx context.Context) error
	Pending(ctx context.Context, f repository.PendingFilter) ([]model.SessionRecord, error)
	PendingTowns(ctx context.Context, paths []string, status string) ([]string, error)
	FlagsOf(ctx context.Context, recordIDs []string) ([]model.RiskFlag, error)
	DueForEscalation(ctx context.Context, now time.Time, limit int) ([]model.SessionRecord, error)
	MarkEscalated(ctx context.Context, id string, version int, now time.Time) (bool, error)
	Decisions(ctx context.Context, paths []string, from, to time.Time) ([]repository.DecisionRow, error)
	CountEscalated(ctx context.Context, paths []string, from, to time.Time) (int64, error)
	RecordsByID(ctx context.Context, ids []string) (map[string]model.SessionRecord, error)
}

// ReviewQueueStore is the Redis review queue (repository.ReviewQueue).
type ReviewQueueStore interface {
	Enqueue(ctx context.Context, town string, level int, recordID string, priority float64) error
	Claim(ctx context.Context, town string, level int, reviewer string, now time.Time, ttl time.Duration) (repository.Claimed, bool, error)
	Lease(ctx context.Context, town string, level int, recordID string, now time.Time) (string, time.Time, error)
	Release(ctx context.Context, town string, level int, recordID string) error
	Unclaim(ctx context.Context, town string, level int, recordID, reviewer string) error
	Reconcile(ctx context.Context, town string, level int, pending []repository.QueueEntry) (int, int, error)
	DeadLetters(ctx context.Context, town string, level int) ([]string, error)
	Requeue(ctx context.Context, town string, level int, recordID string, priority float64) error
	NoteClaim(ctx context.Context, town string, level int, c repository.Claimed, reviewer string, now time.Time) (time.Time, error)
	ClaimStart(ctx context.Context, town string, level int, recordID, reviewer string) (time.Time, error)
	ForgetClaim(ctx context.Context, town string, level int, recordID string) error
}

// OrderUsage moves an order's used count (repository.Orders).
type OrderUsage interface {
	AddUsed(ctx context.Context, id string, delta int) (model.Order, error)
	Lock(ctx context.Context, id string) (model.Order, error)
}

// UserDirectory resolves user ids to display names.
type UserDirectory interface {
	GetMany(ctx context.Context, ids []string) (map[string]model.User, error)
}

// MediaURLSigner hands out short-lived download URLs (storage.Storage).
type MediaURLSigner interface {
	SignedGetURL(ctx context.Context, key string, ttl time.Duration) (string, error)
}

// Publisher puts a finally approved record on the public feed when it
// qualifies (the feed slice's Feed.TryPublish).
type Publisher interface {
	TryPublish(ctx context.Context, recordID string) error
}

// ReviewConfig wires the review use cases.
type ReviewConfig struct {
	Tx      TxRunner
	Records ReviewRecordStore
	Reviews ReviewStore
	Queue   ReviewQueueStore
	Orders  OrderUsage
	Regions RegionStore
	Orgs    OrgStore
	Users   UserDirectory
	Cipher  Cipher
	Media   MediaURLSigner
	Audit   *Auditor
	Notify  *Notifier
	// Publisher is optional (nil: nothing is published from here).
	Publisher Publisher
	// TemplateID is the WeChat subscribe template for review results.
	TemplateID string
	// LeaseTTL is how long a claim lasts without a decision.
	LeaseTTL time.Duration
	// URLTTL is how long signed media URLs in the detail view live.
	URLTTL time.Duration
	Now    func() time.Time
	Logger *slog.Logger
}

// Review runs the review queue, the reviewer views, decisions and the
// weekly cycle (DESIGN.md §4.4; docs/review.md).
type Review struct{ c ReviewConfig }

// NewReview builds the review use cases.
func NewReview(c ReviewConfig) *Review {
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 15 * time.Minute
	}
	if c.URLTTL <= 0 {
		c.URLTTL = 15 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return &Review{c: c}
}

var (
	rvStationRoles  = []string{model.RoleStationReviewer}
	rvBureauRoles   = []string{model.RoleBureauReviewer, model.RoleBureauAdmin}
	rvReviewerRoles = []string{model.RoleStationReviewer, model.RoleBureauReviewer, model.RoleBureauAdmin}
)

const (
	rvMaxBulk         = 50
	rvMaxComment      = 500
	rvMaxStatsRange   = 366 * 24 * time.Hour
	rvEscalationBatch = 200
	rvMaxStalePops    = 50
)

// rvLevelOf is the level a pending status waits for (0: not pending).
func rvLevelOf(status string) int {
	switch status {
	case model.RecordSubmitted:
		return 1
	case model.RecordLevel1OK:
		return 2
	}
	return 0
}

func rvStatusOf(level int) string {
	if level == 2 {
		return model.RecordLevel1OK
	}
	return model.RecordSubmitted
}

func rvLevelRoles(level int) []string {
	if level == 2 {
		return rvBureauRoles
	}
	return rvStationRoles
}

// DueDate is the end (Sunday 24:00 Beijing time) of the week after the one
// in which a record was submitted.
func DueDate(submitted time.Time) time.Time {
	t := submitted.In(beijing)
	monday := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, beijing).AddDate(0, 0, -((int(t.Weekday()) + 6) % 7))
	return monday.AddDate(0, 0, 14).UTC()
}

// ISOWeek parses "YYYY-Www" into the Monday 00:00 (Beijing) that starts it
// and the Monday after.
func ISOWeek(s string) (time.Time, time.Time, error) {
	var y, w int
	if n, err := fmt.Sscanf(s, "%4d-W%2d", &y, &w); err != nil || n != 2 || len(s) != 8 || y < 2000 || y > 2100 || w < 1 || w > 53 {
		return time.Time{}, time.Time{}, apperr.New(apperr.ErrInvalid, "INVALID_WEEK", "周的格式应为 2026-W05").
			WithFields(apperr.FieldError{Field: "week", Reason: "format_YYYY-Www"})
	}
	jan4 := time.Date(y, 1, 4, 0, 0, 0, 0, beijing)
	week1 := jan4.AddDate(0, 0, -((int(jan4.Weekday()) + 6) % 7))
	start := week1.AddDate(0, 0, 7*(w-1))
	if _, wk := start.ISOWeek(); wk != w {
		return time.Time{}, time.Time{}, apperr.New(apperr.ErrInvalid, "INVALID_WEEK", "该年没有这一周").
			WithFields(apperr.FieldError{Field: "week", Reason: "no_such_week"})
	}
	return start.UTC(), start.AddDate(0, 0, 7).UTC(), nil
}

// rvPriority orders a pending record in its queue: flagged ones first,
// then by submission time.
func rvPriority(riskLevel string, flagged bool, submitted *time.Time) float64 {
	rank := 1
	if flagged || riskLevel == model.SeverityWarn {
		rank = 0
	}
	var at time.Time
	if submitted != nil {
		at = *submitted
	}
	return repository.Priority(rank, at)
}

// ---- scope ----

// rvScoped loads a record the caller may review-read: a reviewer over its
// town, once it has been submitted. Anything else is 404.
func (s *Review) rvScoped(ctx context.Context, id string) (model.SessionRecord, model.Region, error) {
	rec, err := s.c.Records.Get(ctx, id)
	if err != nil {
		return rec, model.Region{}, notFound("服务记录", err)
	}
	town, err := s.c.Regions.Get(ctx, rec.TownID)
	if err != nil && !errors.Is(err, apperr.ErrNotFound) {
		return rec, town, err
	}
	if rec.Status == model.RecordDraft || !PrincipalFrom(ctx).CanRegion(town.Path, rvReviewerRoles...) {
		return rec, town, apperr.NotFound("服务记录")
	}
	return rec, town, nil
}

// rvCanDecide: level 1 belongs to the town's station; the bureau takes a
// level-1 record over once it is escalated; level 2 is the bureau's.
func rvCanDecide(p *Principal, rec model.SessionRecord, townPath string) error {
	switch rvLevelOf(rec.Status) {
	case 0:
		return errRVNotPending()
	case 1:
		if p.CanRegion(townPath, rvStationRoles...) || (rec.EscalatedAt != nil && p.CanRegion(townPath, rvBureauRoles...)) {
			return nil
		}
	case 2:
		if p.CanRegion(townPath, rvBureauRoles...) {
			return nil
		}
	}
	return apperr.New(apperr.ErrForbidden, "REVIEW_LEVEL_FORBIDDEN", "该记录当前不在您的审核层级")
}

func errRVNotPending() error {
	return apperr.New(apperr.ErrConflict, "DECISION_CONFLICT", "记录已被处理，请刷新后查看")
}

func errRVVersion() error {
	return apperr.New(apperr.ErrConflict, "VERSION_CONFLICT", "记录已更新，请刷新后重新审核")
}

func errRVClaimed() error {
	return apperr.New(apperr.ErrConflict, "RECORD_CLAIMED", "该记录正由其他审核员处理")
}

func errRVQueue(err error) error {
	return apperr.Wrap(apperr.ErrUnavailable, "QUEUE_UNAVAILABLE", "审核队列暂时不可用，请稍后重试", err)
}

// ---- summaries ----

// ReviewSummary is one record in a reviewer's list.
type ReviewSummary struct {
	Record        model.SessionRecord
	Level         int
	ItemName      string
	OrgName       string
	TownName      string
	CommunityName string
	FlagCodes     []string // of the current version
}

func (s *Review) summaries(ctx context.Context, recs []model.SessionRecord) ([]ReviewSummary, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	var itemIDs, orgIDs, regionIDs, recIDs []string
	for _, r := range recs {
		itemIDs = append(itemIDs, r.ItemID)
		orgIDs = append(orgIDs, r.OrgID)
		regionIDs = append(regionIDs, r.TownID, r.CommunityID)
		recIDs = append(recIDs, r.ID)
	}
	items, err := s.c.Records.GetItems(ctx, rvUnique(itemIDs))
	if err != nil {
		return nil, err
	}
	orgs, err := s.c.Orgs.GetMany(ctx, rvUnique(orgIDs))
	if err != nil {
		return nil, err
	}
	regs, err := s.c.Regions.GetMany(ctx, rvUnique(regionIDs))
	if err != nil {
		return nil, err
	}
	flags, err := s.c.Reviews.FlagsOf(ctx, recIDs)
	if err != nil {
		return nil, err
	}
	byRec := map[string][]string{}
	version := map[string]int{}
	for _, r := range recs {
		version[r.ID] = r.Version
	}
	for _, f := range flags {
		if f.Version == version[f.RecordID] && !slices.Contains(byRec[f.RecordID], f.Code) {
			byRec[f.RecordID] = append(byRec[f.RecordID], f.Code)
		}
	}
	out := make([]ReviewSummary, 0, len(recs))
	for _, r := range recs {
		out = append(out, ReviewSummary{Record: r, Level: rvLevelOf(r.Status), ItemName: items[r.ItemID].Name,
			OrgName: orgs[r.OrgID].Name, TownName: regs[r.TownID].Name, CommunityName: regs[r.CommunityID].Name,
			FlagCodes: byRec[r.ID]})
	}
	return out, nil
}

func rvUnique(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}

// ---- claim ----

// ClaimInput asks for the next record of a level, optionally in one town.
type ClaimInput struct {
	Level  int
	TownID string
}

// ClaimResult is the leased record (nil when there is nothing to review).
type ClaimResult struct {
	Record     *ReviewSummary
	LeaseUntil time.Time
	Deliveries int
}

// Claim leases the next record to the caller: risky first, then oldest.
// A reviewer over several towns is served from the town whose oldest
// pending record is oldest. An empty queue is rebuilt from the database
// once before answering "nothing to review", so a Redis flush or a record
// submitted through another replica is never missed.
func (s *Review) Claim(ctx context.Context, in ClaimInput) (ClaimResult, error) {
	p := PrincipalFrom(ctx)
	if in.Level != 1 && in.Level != 2 {
		return ClaimResult{}, apperr.New(apperr.ErrInvalid, "UNKNOWN_ENUM_VALUE", "审核层级只能是1或2").
			WithFields(apperr.FieldError{Field: "level", Reason: "oneof:1 2"})
	}
	roles := rvLevelRoles(in.Level)
	paths := p.RegionPaths(roles...)
	if len(paths) == 0 {
		return ClaimResult{}, apperr.New(apperr.ErrForbidden, "REVIEW_LEVEL_FORBIDDEN", "您没有该层级的审核权限")
	}
	status := rvStatusOf(in.Level)
	var towns []string
	if in.TownID != "" {
		town, err := s.c.Regions.Get(ctx, in.TownID)
		if err != nil || town.Level != model.LevelTown || !p.CanRegion(town.Path, roles...) {
			return ClaimResult{}, notFound("街道乡镇", err)
		}
		towns = []string{town.ID}
	} else {
		var err error
		if towns, err = s.c.Reviews.PendingTowns(ctx, paths, status); err != nil {
			return ClaimResult{}, err
		}
	}
	for _, town := range towns {
		res, ok, err := s.claimIn(ctx, town, in.Level, p.UserID)
		if err != nil || ok {
			return res, err
		}
	}
	return ClaimResult{}, nil
}

func (s *Review) claimIn(ctx context.Context, town string, level int, reviewer string) (ClaimResult, bool, error) {
	status := rvStatusOf(level)
	for attempt := range 2 {
		for range rvMaxStalePops {
			now := s.c.Now()
			c, ok, err := s.c.Queue.Claim(ctx, town, level, reviewer, now, s.c.LeaseTTL)
			if err != nil {
				return ClaimResult{}, false, errRVQueue(err)
			}
			if !ok {
				break
			}
			rec, err := s.c.Records.Get(ctx, c.RecordID)
			if err != nil && !errors.Is(err, apperr.ErrNotFound) {
				return ClaimResult{}, false, err
			}
			if err != nil || rec.Status != status || rec.TownID != town {
				// Stale entry (decided elsewhere, or the queue outlived a
				// database restore): drop it and take the next.
				if err := s.c.Queue.Release(ctx, town, level, c.RecordID); err != nil {
					return ClaimResult{}, false, errRVQueue(err)
				}
				continue
			}
			if rec.DueAt == nil && rec.SubmittedAt != nil {
				due := DueDate(*rec.SubmittedAt)
				if err := s.c.Reviews.SetDueIfEmpty(ctx, rec.ID, due); err != nil {
					return ClaimResult{}, false, err
				}
				rec.DueAt = &due
			}
			if _, err := s.c.Queue.NoteClaim(ctx, town, level, c, reviewer, now); err != nil {
				s.c.Logger.WarnContext(ctx, "review: note claim", "record_id", rec.ID, "err", err)
			}
			sums, err := s.summaries(ctx, []model.SessionRecord{rec})
			if err != nil {
				return ClaimResult{}, false, err
			}
			return ClaimResult{Record: &sums[0], LeaseUntil: c.LeaseUntil, Deliveries: c.Deliveries}, true, nil
		}
		if attempt == 0 {
			if err := s.reconcileQueue(ctx, town, status); err != nil {
				return ClaimResult{}, false, err
			}
		}
	}
	return ClaimResult{}, false, nil
}

// ReleaseLease gives the caller's lease on a record back to the queue.
func (s *Review) ReleaseLease(ctx context.Context, id string) error {
	rec, _, err := s.rvScoped(ctx, id)
	if err != nil {
		return err
	}
	level := rvLevelOf(rec.Status)
	if level == 0 {
		return errRVNotPending()
	}
	me := PrincipalFrom(ctx).UserID
	holder, _, err := s.c.Queue.Lease(ctx, rec.TownID, level, rec.ID, s.c.Now())
	if err != nil {
		return errRVQueue(err)
	}
	if holder != me {
		return apperr.New(apperr.ErrConflict, "LEASE_NOT_HELD", "您没有领取该记录")
	}
	if err := s.c.Queue.Unclaim(ctx, rec.TownID, level, rec.ID, me); err != nil {
		return errRVQueue(err)
	}
	return nil
}

// ---- lists ----

// PendingQuery filters the pending list.
type PendingQuery struct {
	TownID, OrgID, ItemID, Flag, Week string
	Level                             int
	Cursor                            string
	Limit                             int
}

// Pending lists records awaiting a decision in the caller's towns, oldest
// submission first (a database query, not the queue).
func (s *Review) Pending(ctx context.Context, q PendingQuery) ([]ReviewSummary, string, error) {
	f := repository.PendingFilter{TownID: q.TownID, OrgID: q.OrgID, ItemID: q.ItemID, Flag: q.Flag, Limit: q.Limit + 1}
	switch q.Level {
	case 0:
		f.Statuses = repository.PendingStatuses
	case 1, 2:
		f.Statuses = []string{rvStatusOf(q.Level)}
	default:
		return nil, "", apperr.New(apperr.ErrInvalid, "UNKNOWN_ENUM_VALUE", "审核层级只能是1或2").
			WithFields(apperr.FieldError{Field: "level", Reason: "oneof:1 2"})
	}
	if q.Week != "" {
		from, to, err := ISOWeek(q.Week)
		if err != nil {
			return nil, "", err
		}
		f.From, f.To = from, to
	}
	return s.list(ctx, f, q.Cursor, false)
}

// OverdueQuery filters the overdue list.
type OverdueQuery struct {
	TownID string
	Cursor string
	Limit  int
}

// Overdue lists records still undecided after their due date in the
// caller's towns, earliest due first.
func (s *Review) Overdue(ctx context.Context, q OverdueQuery) ([]ReviewSummary, string, error) {
	f := repository.PendingFilter{TownID: q.TownID, Statuses: repository.PendingStatuses, OverdueAt: s.c.Now(), Limit: q.Limit + 1}
	return s.list(ctx, f, q.Cursor, true)
}

func (s *Review) list(ctx context.Context, f repository.PendingFilter, cursor string, byDue bool) ([]ReviewSummary, string, error) {
	f.Paths = PrincipalFrom(ctx).RegionPaths(rvReviewerRoles...)
	for name, v := range map[string]string{"town_id": f.TownID, "organization_id": f.OrgID, "item_id": f.ItemID} {
		if v != "" && !ids.Valid(v) {
			return nil, "", apperr.Invalid("筛选条件不正确", apperr.FieldError{Field: name, Reason: "invalid_id"})
		}
	}
	if cursor != "" {
		ms, id, ok := strings.Cut(cursor, ".")
		var n int64
		if _, err := fmt.Sscan(ms, &n); err != nil || !ok || !ids.Valid(id) {
			return nil, "", apperr.Invalid("游标无效", apperr.FieldError{Field: "cursor", Reason: "invalid"})
		}
		f.AfterKey, f.AfterID = time.UnixMilli(n).UTC(), id
	}
	limit := f.Limit - 1
	rows, err := s.c.Reviews.Pending(ctx, f)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		last := rows[len(rows)-1]
		key := last.SubmittedAt
		if byDue {
			key = last.DueAt
		}
		if key != nil {
			next = fmt.Sprintf("%d.%s", key.UnixMilli(), last.ID)
		}
	}
	out, err := s.summaries(ctx, rows)
	return out, next, err
}

// Reasons lists the active reason codes.
func (s *Review) Reasons(ctx context.Context) ([]model.ReviewReason, error) {
	return s.c.Reviews.Reasons(ctx, false)
}

var (
	_ ReviewRecordStore = (*repository.Records)(nil)
	_ ReviewStore       = (*repository.Reviews)(nil)
	_ ReviewQueueStore  = (*repository.ReviewQueue)(nil)
	_ OrderUsage        = (*repository.Orders)(nil)
	_ UserDirectory     = (*repository.Users)(nil)
)
