package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"time"

	"qjmz/model"
	"qjmz/pkg/apperr"
	"qjmz/pkg/ids"
	"qjmz/repository"
)

// ReviewMedia is one file of a record with signed URLs: the watermarked
// display copy, the original as uploaded, and the thumbnail.
type ReviewMedia struct {
	Upload      model.Upload
	DisplayURL  string
	OriginalURL string
	ThumbURL    string
}

// ReviewFlag is a risk flag with its evidence; for duplicate photos the
// record's photo and the earlier matched one side by side.
type ReviewFlag struct {
	Flag            model.RiskFlag
	Evidence        map[string]any
	UploadThumbURL  string
	MatchedThumbURL string
	MatchedRecordID string
}

// FieldChange is one field that changed between consecutive versions.
type FieldChange struct {
	Field  string
	Before any
	After  any
}

// ReviewVersion is one submitted snapshot and what changed since the one
// before it.
type ReviewVersion struct {
	Version     model.RecordVersion
	Snapshot    json.RawMessage
	Changes     []FieldChange
	FlagCodes   []string
	SubmittedBy string // nickname
}

// ReviewDecisionView is one earlier decision.
type ReviewDecisionView struct {
	Review       model.Review
	ReviewerName string
	ReasonLabel  string
}

// ReviewDetail is everything a reviewer decides on.
type ReviewDetail struct {
	Summary       ReviewSummary
	Order         model.Order
	Item          model.ServiceItem
	WorkerName    string
	Media         []ReviewMedia
	Flags         []ReviewFlag
	Versions      []ReviewVersion
	Beneficiaries []RecordBeneficiaryView
	Decisions     []ReviewDecisionView
	LeaseHolder   string // "me", "other" or ""
	LeaseUntil    *time.Time
	CanDecide     bool
}

// Detail returns one record with its evidence for a reviewer in scope.
func (s *Review) Detail(ctx context.Context, id string) (ReviewDetail, error) {
	rec, town, err := s.rvScoped(ctx, id)
	if err != nil {
		return ReviewDetail{}, err
	}
	p := PrincipalFrom(ctx)
	var d ReviewDetail
	sums, err := s.summaries(ctx, []model.SessionRecord{rec})
	if err != nil {
		return d, err
	}
	d.Summary = sums[0]
	d.CanDecide = rvCanDecide(p, rec, town.Path) == nil
	if d.Order, err = s.c.Records.GetOrder(ctx, rec.OrderID); err != nil {
		return d, err
	}
	if d.Item, err = s.c.Records.GetItem(ctx, rec.ItemID); err != nil {
		return d, err
	}
	if err := s.detailMedia(ctx, rec, &d); err != nil {
		return d, err
	}
	if err := s.detailPeople(ctx, rec, &d); err != nil {
		return d, err
	}
	if level := rvLevelOf(rec.Status); level > 0 {
		holder, until, err := s.c.Queue.Lease(ctx, rec.TownID, level, rec.ID, s.c.Now())
		switch {
		case err != nil:
			s.c.Logger.WarnContext(ctx, "review: lease lookup", "record_id", rec.ID, "err", err)
		case holder == p.UserID:
			d.LeaseHolder, d.LeaseUntil = "me", &until
		case holder != "":
			d.LeaseHolder, d.LeaseUntil = "other", &until
		}
	}
	return d, nil
}

func (s *Review) sign(ctx context.Context, key string) string {
	if key == "" || s.c.Media == nil {
		return ""
	}
	u, err := s.c.Media.SignedGetURL(ctx, key, s.c.URLTTL)
	if err != nil {
		s.c.Logger.WarnContext(ctx, "review: sign media url", "err", err)
		return ""
	}
	return u
}

func (s *Review) detailMedia(ctx context.Context, rec model.SessionRecord, d *ReviewDetail) error {
	media, err := s.c.Records.Media(ctx, rec.ID)
	if err != nil {
		return err
	}
	own := map[string]model.Upload{}
	for _, u := range media {
		own[u.ID] = u
		if u.Status != model.UploadReady {
			continue
		}
		display := u.DisplayKey
		if display == "" {
			display = u.StorageKey
		}
		d.Media = append(d.Media, ReviewMedia{Upload: u, DisplayURL: s.sign(ctx, display),
			OriginalURL: s.sign(ctx, u.StorageKey), ThumbURL: s.sign(ctx, u.ThumbKey)})
	}
	flags, err := s.c.Records.Flags(ctx, rec.ID)
	if err != nil {
		return err
	}
	var current []model.RiskFlag
	var matchedIDs []string
	evs := map[string]map[string]any{}
	for _, f := range flags {
		if f.Version != rec.Version {
			continue
		}
		current = append(current, f)
		ev := map[string]any{}
		if f.Evidence != "" {
			_ = json.Unmarshal([]byte(f.Evidence), &ev)
		}
		evs[f.ID] = ev
		if m, ok := ev["matched_upload_id"].(string); ok && ids.Valid(m) {
			matchedIDs = append(matchedIDs, m)
		}
	}
	matched, err := s.c.Records.UploadsByID(ctx, rvUnique(matchedIDs))
	if err != nil {
		return err
	}
	for _, f := range current {
		v := ReviewFlag{Flag: f, Evidence: evs[f.ID]}
		if up, ok := v.Evidence["upload_id"].(string); ok {
			if u, ok := own[up]; ok {
				v.UploadThumbURL = s.sign(ctx, rvThumbKey(u))
			}
		}
		if m, ok := v.Evidence["matched_upload_id"].(string); ok {
			if u, ok := matched[m]; ok {
				v.MatchedThumbURL = s.sign(ctx, rvThumbKey(u))
				if u.RecordID != nil {
					v.MatchedRecordID = *u.RecordID
				}
			}
		}
		d.Flags = append(d.Flags, v)
	}
	return nil
}

func rvThumbKey(u model.Upload) string {
	switch {
	case u.ThumbKey != "":
		return u.ThumbKey
	case u.DisplayKey != "":
		return u.DisplayKey
	}
	return u.StorageKey
}

func (s *Review) detailPeople(ctx context.Context, rec model.SessionRecord, d *ReviewDetail) error {
	bids, err := s.c.Records.BeneficiaryIDs(ctx, rec.ID)
	if err != nil {
		return err
	}
	bens, err := s.c.Records.GetBeneficiaries(ctx, bids)
	if err != nil {
		return err
	}
	for _, b := range bens {
		d.Beneficiaries = append(d.Beneficiaries, maskRecordBeneficiary(s.c.Cipher, b))
	}
	versions, err := s.c.Records.Versions(ctx, rec.ID)
	if err != nil {
		return err
	}
	decisions, err := s.c.Reviews.OfRecord(ctx, rec.ID)
	if err != nil {
		return err
	}
	reasons, err := s.c.Reviews.Reasons(ctx, true)
	if err != nil {
		return err
	}
	userIDs := []string{rec.WorkerID}
	for _, v := range versions {
		userIDs = append(userIDs, v.SubmittedBy)
	}
	for _, r := range decisions {
		userIDs = append(userIDs, r.ReviewerID)
	}
	users, err := s.c.Users.GetMany(ctx, rvUnique(userIDs))
	if err != nil {
		return err
	}
	d.WorkerName = users[rec.WorkerID].Nickname
	flags, err := s.c.Records.Flags(ctx, rec.ID)
	if err != nil {
		return err
	}
	var prev map[string]any
	for _, v := range versions {
		snap := map[string]any{}
		_ = json.Unmarshal([]byte(v.Snapshot), &snap)
		rv := ReviewVersion{Version: v, Snapshot: json.RawMessage(v.Snapshot), SubmittedBy: users[v.SubmittedBy].Nickname}
		if prev != nil {
			rv.Changes = SnapshotDiff(prev, snap)
		}
		for _, f := range flags {
			if f.Version == v.Version && !slices.Contains(rv.FlagCodes, f.Code) {
				rv.FlagCodes = append(rv.FlagCodes, f.Code)
			}
		}
		d.Versions = append(d.Versions, rv)
		prev = snap
	}
	labels := map[string]string{}
	for _, r := range reasons {
		labels[r.Code] = r.Label
	}
	for _, r := range decisions {
		d.Decisions = append(d.Decisions, ReviewDecisionView{Review: r, ReviewerName: users[r.ReviewerID].Nickname, ReasonLabel: labels[r.ReasonCode]})
	}
	return nil
}

// rvDiffSkip are snapshot fields that differ on every resubmission.
var rvDiffSkip = map[string]bool{"version": true, "status": true, "submitted_at": true}

// SnapshotDiff lists the fields that differ between two version snapshots,
// nested objects flattened to dotted names ("venue.name"), sorted.
func SnapshotDiff(before, after map[string]any) []FieldChange {
	a, b := map[string]any{}, map[string]any{}
	rvFlatten("", before, a)
	rvFlatten("", after, b)
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var out []FieldChange
	for k := range keys {
		if rvDiffSkip[k] || reflect.DeepEqual(a[k], b[k]) {
			continue
		}
		out = append(out, FieldChange{Field: k, Before: a[k], After: b[k]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out
}

func rvFlatten(prefix string, in map[string]any, out map[string]any) {
	for k, v := range in {
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		if m, ok := v.(map[string]any); ok {
			rvFlatten(name, m, out)
			continue
		}
		out[name] = v
	}
}

// ---- stats ----

// ReviewerStat is one reviewer's decisions in a period.
type ReviewerStat struct {
	ReviewerID    string
	Name          string
	Decisions     int
	Approved      int
	Returned      int
	Rejected      int
	MedianSeconds *int64 // from claim (else submission) to decision
}

// ReviewStats is the review timeliness report for a period.
type ReviewStats struct {
	From, To  time.Time
	Reviewers []ReviewerStat
	Escalated int64
}

// Stats reports, per reviewer with decisions on records in the caller's
// towns, the count of decisions and the median time to decision.
func (s *Review) Stats(ctx context.Context, from, to time.Time) (ReviewStats, error) {
	if to.IsZero() {
		to = s.c.Now()
	}
	if from.IsZero() {
		from = to.Add(-30 * 24 * time.Hour)
	}
	if !from.Before(to) || to.Sub(from) > rvMaxStatsRange {
		return ReviewStats{}, apperr.New(apperr.ErrInvalid, "INVALID_RANGE", "统计区间须在一年以内且起点早于终点").
			WithFields(apperr.FieldError{Field: "from", Reason: "range_max_366d"})
	}
	paths := PrincipalFrom(ctx).RegionPaths(rvReviewerRoles...)
	rows, err := s.c.Reviews.Decisions(ctx, paths, from, to)
	if err != nil {
		return ReviewStats{}, err
	}
	st := ReviewStats{From: from, To: to}
	if st.Escalated, err = s.c.Reviews.CountEscalated(ctx, paths, from, to); err != nil {
		return st, err
	}
	byReviewer := map[string]*ReviewerStat{}
	durations := map[string][]int64{}
	var order []string
	for _, r := range rows {
		rs := byReviewer[r.ReviewerID]
		if rs == nil {
			rs = &ReviewerStat{ReviewerID: r.ReviewerID}
			byReviewer[r.ReviewerID] = rs
			order = append(order, r.ReviewerID)
		}
		rs.Decisions++
		switch r.Decision {
		case model.DecisionApprove:
			rs.Approved++
		case model.DecisionReturn:
			rs.Returned++
		case model.DecisionReject:
			rs.Rejected++
		}
		start := r.ClaimedAt
		if start == nil {
			start = r.SubmittedAt
		}
		if start != nil && !r.CreatedAt.Before(*start) {
			durations[r.ReviewerID] = append(durations[r.ReviewerID], int64(r.CreatedAt.Sub(*start)/time.Second))
		}
	}
	users, err := s.c.Users.GetMany(ctx, order)
	if err != nil {
		return st, err
	}
	for _, id := range order {
		rs := byReviewer[id]
		rs.Name = users[id].Nickname
		if m, ok := Median(durations[id]); ok {
			rs.MedianSeconds = &m
		}
		st.Reviewers = append(st.Reviewers, *rs)
	}
	sort.SliceStable(st.Reviewers, func(i, j int) bool { return st.Reviewers[i].Decisions > st.Reviewers[j].Decisions })
	return st, nil
}

// Median of whole seconds (mean of the two middle values, rounded down,
// for an even count).
func Median(xs []int64) (int64, bool) {
	if len(xs) == 0 {
		return 0, false
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2], true
	}
	return (s[n/2-1] + s[n/2]) / 2, true
}

// ---- dead letters ----

// DeadLetter is a record parked after too many deliveries without a
// decision.
type DeadLetter struct {
	Summary ReviewSummary
	Level   int
}

// DeadLetters lists the parked records of every queue in the bureau
// admin's towns.
func (s *Review) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	p := PrincipalFrom(ctx)
	var towns []model.Region
	for _, path := range p.RegionPaths(model.RoleBureauAdmin) {
		ts, err := s.c.Regions.Subtree(ctx, path, model.LevelTown)
		if err != nil {
			return nil, err
		}
		towns = append(towns, ts...)
	}
	levelOf := map[string]int{}
	var recIDs []string
	for _, t := range towns {
		for _, level := range []int{1, 2} {
			dead, err := s.c.Queue.DeadLetters(ctx, t.ID, level)
			if err != nil {
				return nil, errRVQueue(err)
			}
			for _, id := range dead {
				if _, dup := levelOf[id]; !dup {
					levelOf[id] = level
					recIDs = append(recIDs, id)
				}
			}
		}
	}
	recs, err := s.c.Reviews.RecordsByID(ctx, recIDs)
	if err != nil {
		return nil, err
	}
	var live []model.SessionRecord
	for _, id := range recIDs {
		if r, ok := recs[id]; ok && rvLevelOf(r.Status) == levelOf[id] {
			live = append(live, r)
		}
	}
	sums, err := s.summaries(ctx, live)
	if err != nil {
		return nil, err
	}
	out := make([]DeadLetter, 0, len(sums))
	for _, sm := range sums {
		out = append(out, DeadLetter{Summary: sm, Level: sm.Level})
	}
	return out, nil
}

// Requeue puts a dead letter back in its queue with a fresh delivery count.
func (s *Review) Requeue(ctx context.Context, id string) error {
	rec, err := s.c.Records.Get(ctx, id)
	if err != nil {
		return notFound("服务记录", err)
	}
	town, err := s.c.Regions.Get(ctx, rec.TownID)
	if err != nil || !PrincipalFrom(ctx).CanRegion(town.Path, model.RoleBureauAdmin) {
		return notFound("服务记录", err)
	}
	level := rvLevelOf(rec.Status)
	if level == 0 {
		return errRVNotPending()
	}
	flagged, err := s.flagged(ctx, rec)
	if err != nil {
		return err
	}
	if err := s.c.Queue.Requeue(ctx, rec.TownID, level, rec.ID, rvPriority(rec.RiskLevel, flagged, rec.SubmittedAt)); err != nil {
		return errRVQueue(err)
	}
	return s.c.Tx.InTx(ctx, func(ctx context.Context) error {
		return s.c.Audit.Record(ctx, AuditEntry{Action: "review.requeue", ObjectType: "session_record", ObjectID: rec.ID,
			After: map[string]any{"level": level}})
	})
}

// ---- jobs ----

// Reconcile makes every review queue equal to the pending records in the
// database, gives records a due date the first time they are seen, and
// aligns review_level with the status. Run at start and every minute.
func (s *Review) Reconcile(ctx context.Context) error {
	if err := s.c.Reviews.AlignLevels(ctx); err != nil {
		return err
	}
	queues, err := s.c.Reviews.PendingQueues(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, q := range queues {
		if err := s.reconcileQueue(ctx, q.TownID, q.Status); err != nil {
			errs = append(errs, fmt.Errorf("queue %s/%s: %w", q.TownID, q.Status, err))
		}
	}
	return errors.Join(errs...)
}

// Submitted queues a record for level-1 review right after its submit
// committed, so reviewers need not wait for the reconcile job.
func (s *Review) Submitted(ctx context.Context, recordID string) error {
	rec, err := s.c.Records.Get(ctx, recordID)
	if err != nil {
		return err
	}
	if err := s.reconcileQueue(ctx, rec.TownID, model.RecordSubmitted); err != nil {
		s.c.Logger.Warn("review: queueing a submitted record failed; the reconcile job retries", "record_id", recordID, "err", err)
		return err
	}
	return nil
}

func (s *Review) reconcileQueue(ctx context.Context, town, status string) error {
	rows, err := s.c.Reviews.PendingIn(ctx, town, status)
	if err != nil {
		return err
	}
	entries := make([]repository.QueueEntry, 0, len(rows))
	for _, r := range rows {
		if r.DueAt == nil && r.SubmittedAt != nil {
			if err := s.c.Reviews.SetDueIfEmpty(ctx, r.ID, DueDate(*r.SubmittedAt)); err != nil {
				return err
			}
		}
		entries = append(entries, repository.QueueEntry{RecordID: r.ID, Priority: rvPriority(r.RiskLevel, r.Flagged != 0, r.SubmittedAt)})
	}
	if _, _, err := s.c.Queue.Reconcile(ctx, town, rvLevelOf(status), entries); err != nil {
		return errRVQueue(err)
	}
	return nil
}

// EscalateOverdue marks pending records past their due date as escalated
// to the bureau (audited, one short transaction each) and reports how many.
func (s *Review) EscalateOverdue(ctx context.Context) (int, error) {
	now := s.c.Now()
	n := 0
	for {
		recs, err := s.c.Reviews.DueForEscalation(ctx, now, rvEscalationBatch)
		if err != nil {
			return n, err
		}
		marked := 0
		for _, r := range recs {
			done := false
			err := s.c.Tx.InTx(ctx, func(ctx context.Context) error {
				ok, err := s.c.Reviews.MarkEscalated(ctx, r.ID, r.Version, now)
				if err != nil || !ok {
					return err
				}
				done = true
				return s.c.Audit.Record(ctx, AuditEntry{Action: "review.escalate", ObjectType: "session_record", ObjectID: r.ID,
					ActorID: "system", After: map[string]any{"status": r.Status, "version": r.Version, "due_at": r.DueAt, "escalated_at": now}})
			})
			if err != nil {
				return n, err
			}
			if done {
				marked++
			}
		}
		n += marked
		if marked == 0 {
			return n, nil
		}
		if len(recs) < rvEscalationBatch {
			return n, nil
		}
	}
}
