package service

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"qjmz/model"
	"qjmz/pkg/apperr"
	"qjmz/pkg/ids"
)

// DecisionInput is a reviewer's decision on the version they saw.
type DecisionInput struct {
	Decision        string
	ReasonCode      string
	Comment         string
	ExpectedVersion int
	// PublicMediaIDs, when not nil, are exactly the photos cleared for the
	// public feed. On final approval nil means: keep an earlier clearance,
	// else every photo when every beneficiary consented to appear publicly.
	PublicMediaIDs []string
}

// DecisionResult is the record after a decision.
type DecisionResult struct {
	Record ReviewSummary
	Review model.Review
	// NextLevel is 2 when the record moved on to the bureau.
	NextLevel int
}

// rvOutcome is what a committed decision leaves for after the commit.
type rvOutcome struct {
	rec       model.SessionRecord
	review    model.Review
	level     int
	nextLevel int
	final     bool
}

// Decide records approve / return / reject on a pending record. Exactly one
// of two concurrent decisions wins: the record is updated only while it
// still has the status and version the reviewer saw; the other gets 409.
func (s *Review) Decide(ctx context.Context, id string, in DecisionInput) (DecisionResult, error) {
	out, err := s.decide(ctx, id, in, false)
	if err != nil {
		return DecisionResult{}, err
	}
	rec, err := s.c.Records.Get(ctx, id)
	if err != nil {
		return DecisionResult{}, err
	}
	sums, err := s.summaries(ctx, []model.SessionRecord{rec})
	if err != nil {
		return DecisionResult{}, err
	}
	return DecisionResult{Record: sums[0], Review: out.review, NextLevel: out.nextLevel}, nil
}

func (s *Review) checkInput(ctx context.Context, in *DecisionInput) (model.ReviewReason, error) {
	in.Comment = strings.TrimSpace(in.Comment)
	in.ReasonCode = strings.TrimSpace(in.ReasonCode)
	if utf8.RuneCountInString(in.Comment) > rvMaxComment {
		return model.ReviewReason{}, apperr.Invalid("说明不能超过500字", apperr.FieldError{Field: "comment", Reason: "max:500"})
	}
	switch in.Decision {
	case model.DecisionApprove:
		if in.ReasonCode != "" {
			return model.ReviewReason{}, apperr.New(apperr.ErrInvalid, "UNKNOWN_REASON_CODE", "通过时无需填写原因").
				WithFields(apperr.FieldError{Field: "reason_code", Reason: "not_for_approve"})
		}
		return model.ReviewReason{}, nil
	case model.DecisionReturn, model.DecisionReject:
	default:
		return model.ReviewReason{}, apperr.New(apperr.ErrInvalid, "UNKNOWN_ENUM_VALUE", "审核结论只能是通过、退回或不通过").
			WithFields(apperr.FieldError{Field: "decision", Reason: "oneof:approve return reject"})
	}
	if in.ReasonCode == "" {
		return model.ReviewReason{}, apperr.New(apperr.ErrInvalid, "REASON_REQUIRED", "请选择退回或不通过的原因").
			WithFields(apperr.FieldError{Field: "reason_code", Reason: "required"})
	}
	if in.Comment == "" {
		return model.ReviewReason{}, apperr.New(apperr.ErrInvalid, "COMMENT_REQUIRED", "请填写说明，告诉社工需要怎么改").
			WithFields(apperr.FieldError{Field: "comment", Reason: "required"})
	}
	reasons, err := s.c.Reviews.Reasons(ctx, false)
	if err != nil {
		return model.ReviewReason{}, err
	}
	for _, r := range reasons {
		if r.Code == in.ReasonCode && slices.Contains(strings.Split(r.Decisions, ","), in.Decision) {
			return r, nil
		}
	}
	return model.ReviewReason{}, apperr.New(apperr.ErrInvalid, "UNKNOWN_REASON_CODE", "原因不在可选范围内").
		WithFields(apperr.FieldError{Field: "reason_code", Reason: "unknown_for_" + in.Decision})
}

// decide is one decision in its own short transaction; onlyClean refuses
// records whose current version carries any flag (bulk approval).
func (s *Review) decide(ctx context.Context, id string, in DecisionInput, onlyClean bool) (rvOutcome, error) {
	p := PrincipalFrom(ctx)
	reason, err := s.checkInput(ctx, &in)
	if err != nil {
		return rvOutcome{}, err
	}
	rec, town, err := s.rvScoped(ctx, id)
	if err != nil {
		return rvOutcome{}, err
	}
	if err := rvCanDecide(p, rec, town.Path); err != nil {
		return rvOutcome{}, err
	}
	if in.ExpectedVersion != rec.Version {
		return rvOutcome{}, errRVVersion()
	}
	level := rvLevelOf(rec.Status)
	// The lease is checked before the transaction (no Redis inside one).
	// If Redis is down the decision still goes through: the conditional
	// update below is what guarantees a single winner.
	var claimedAt *time.Time
	holder, _, err := s.c.Queue.Lease(ctx, rec.TownID, level, rec.ID, s.c.Now())
	switch {
	case err != nil:
		s.c.Logger.WarnContext(ctx, "review: lease check skipped", "record_id", rec.ID, "err", err)
	case holder != "" && holder != p.UserID:
		return rvOutcome{}, errRVClaimed()
	case holder == p.UserID:
		if t, err := s.c.Queue.ClaimStart(ctx, rec.TownID, level, rec.ID, p.UserID); err == nil && !t.IsZero() {
			claimedAt = &t
		}
	}

	var out rvOutcome
	err = s.c.Tx.InTx(ctx, func(ctx context.Context) error {
		var err error
		out, err = s.commitDecision(ctx, id, in, reason, level, claimedAt, onlyClean)
		return err
	})
	if err != nil {
		return rvOutcome{}, err
	}
	s.afterDecision(ctx, out)
	return out, nil
}

func (s *Review) commitDecision(ctx context.Context, id string, in DecisionInput, reason model.ReviewReason, level int,
	claimedAt *time.Time, onlyClean bool) (rvOutcome, error) {
	p := PrincipalFrom(ctx)
	now := s.c.Now()
	rec, err := s.c.Records.Lock(ctx, id)
	if err != nil {
		return rvOutcome{}, err
	}
	if rvLevelOf(rec.Status) != level {
		return rvOutcome{}, errRVNotPending()
	}
	if rec.Version != in.ExpectedVersion {
		return rvOutcome{}, errRVVersion()
	}
	item, err := s.c.Records.GetItem(ctx, rec.ItemID)
	if err != nil {
		return rvOutcome{}, err
	}
	if onlyClean {
		if flagged, err := s.flagged(ctx, rec); err != nil || flagged {
			if err == nil {
				err = apperr.New(apperr.ErrConflict, "RECORD_FLAGGED", "记录有风险提示，需逐条审核")
			}
			return rvOutcome{}, err
		}
	}
	media, err := s.c.Records.Media(ctx, rec.ID)
	if err != nil {
		return rvOutcome{}, err
	}
	if err := rvCheckMedia(media, in.PublicMediaIDs); err != nil {
		return rvOutcome{}, err
	}
	if level == 2 {
		// Four eyes: the bureau's decision is not the station's again.
		earlier, err := s.c.Reviews.OfRecord(ctx, rec.ID)
		if err != nil {
			return rvOutcome{}, err
		}
		for _, r := range earlier {
			if r.Version == rec.Version && r.Level == 1 && r.ReviewerID == p.UserID {
				return rvOutcome{}, apperr.New(apperr.ErrForbidden, "SAME_REVIEWER", "同一人不能同时完成两级审核")
			}
		}
	}

	out := rvOutcome{level: level}
	cols := map[string]any{}
	action := "review." + in.Decision
	switch in.Decision {
	case model.DecisionApprove:
		if level == 1 && item.ReviewLevels >= 2 {
			cols["status"], cols["review_level"] = model.RecordLevel1OK, 2
			out.nextLevel = 2
			action = "review.approve_level1"
		} else {
			cols["status"], cols["decided_at"] = model.RecordApproved, now
			out.final = true
		}
	case model.DecisionReturn:
		// The resubmission is a fresh review: level 1 again, a new due date.
		cols["status"], cols["decided_at"], cols["review_level"] = model.RecordReturned, now, 1
		cols["due_at"], cols["escalated_at"] = nil, nil
	case model.DecisionReject:
		cols["status"], cols["decided_at"] = model.RecordRejected, now
	}
	if out.final {
		order, err := s.c.Orders.AddUsed(ctx, rec.OrderID, 1)
		if err != nil {
			return rvOutcome{}, err
		}
		cols["payable"] = order.UsedCount <= order.Quantity
	}
	ok, err := s.c.Records.UpdateIf(ctx, rec.ID, rec.Version, []string{rec.Status}, cols)
	if err != nil {
		return rvOutcome{}, err
	}
	if !ok {
		return rvOutcome{}, apperr.New(apperr.ErrConflict, "DECISION_CONFLICT", "记录已被其他审核员处理，请刷新后查看")
	}
	if in.Decision == model.DecisionApprove {
		if err := s.clearPublicMedia(ctx, rec, item, media, in.PublicMediaIDs, out.final); err != nil {
			return rvOutcome{}, err
		}
	}
	rv := model.Review{ID: ids.New(), RecordID: rec.ID, Version: rec.Version, Level: level, ReviewerID: p.UserID,
		Decision: in.Decision, ReasonCode: in.ReasonCode, Comment: in.Comment, ClaimedAt: claimedAt, CreatedAt: now}
	if err := s.c.Reviews.Add(ctx, &rv); err != nil {
		return rvOutcome{}, err
	}
	after := map[string]any{"level": level, "decision": in.Decision, "reason_code": in.ReasonCode, "status": cols["status"]}
	if v, ok := cols["payable"]; ok {
		after["payable"] = v
	}
	if err := s.c.Audit.Record(ctx, AuditEntry{Action: action, ObjectType: "session_record", ObjectID: rec.ID,
		Before: map[string]any{"status": rec.Status, "version": rec.Version, "level": level}, After: after, Reason: in.Comment}); err != nil {
		return rvOutcome{}, err
	}
	if out.nextLevel == 0 {
		if err := s.notifyWorker(ctx, rec, in.Decision, reason, in.Comment, now); err != nil {
			return rvOutcome{}, err
		}
	}
	out.rec, out.review = rec, rv
	out.rec.Status, _ = cols["status"].(string)
	return out, nil
}

// flagged reports whether the record's current version carries any flag.
func (s *Review) flagged(ctx context.Context, rec model.SessionRecord) (bool, error) {
	if rec.RiskLevel == model.SeverityWarn || rec.RiskLevel == model.SeverityBlock {
		return true, nil
	}
	flags, err := s.c.Records.Flags(ctx, rec.ID)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(flags, func(f model.RiskFlag) bool { return f.Version == rec.Version }), nil
}

func rvCheckMedia(media []model.Upload, wanted []string) error {
	for i, id := range wanted {
		if !slices.ContainsFunc(media, func(u model.Upload) bool { return u.ID == id && u.Kind == model.KindImage }) {
			return apperr.New(apperr.ErrInvalid, "UNKNOWN_MEDIA", "所选照片不属于该记录").
				WithFields(apperr.FieldError{Field: "public_media_ids[" + strconv.Itoa(i) + "]", Reason: "not_an_image_of_record"})
		}
	}
	return nil
}

// clearPublicMedia decides which photos the feed may show. Internal items
// never show any.
func (s *Review) clearPublicMedia(ctx context.Context, rec model.SessionRecord, item model.ServiceItem, media []model.Upload,
	wanted []string, final bool) error {
	if item.Visibility == model.VisibilityInternal {
		return s.c.Reviews.SetPublicMedia(ctx, rec.ID, nil)
	}
	if wanted != nil {
		return s.c.Reviews.SetPublicMedia(ctx, rec.ID, wanted)
	}
	if !final || slices.ContainsFunc(media, func(u model.Upload) bool { return u.PublicOK }) {
		return nil
	}
	bids, err := s.c.Records.BeneficiaryIDs(ctx, rec.ID)
	if err != nil {
		return err
	}
	bens, err := s.c.Records.GetBeneficiaries(ctx, bids)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(bens, func(b model.Beneficiary) bool { return !b.PublicConsent }) {
		return nil
	}
	var all []string
	for _, u := range media {
		if u.Kind == model.KindImage && u.Status == model.UploadReady {
			all = append(all, u.ID)
		}
	}
	return s.c.Reviews.SetPublicMedia(ctx, rec.ID, all)
}

var rvDecisionLabel = map[string]string{
	model.DecisionApprove: "审核通过",
	model.DecisionReturn:  "退回修改",
	model.DecisionReject:  "审核不通过",
}

// notifyWorker queues the subscribe message with the result for the
// worker who submitted the record (sent after commit by the relay).
func (s *Review) notifyWorker(ctx context.Context, rec model.SessionRecord, decision string, reason model.ReviewReason, comment string, now time.Time) error {
	if s.c.Notify == nil {
		return nil
	}
	note := reason.Label
	if note == "" {
		note = "感谢您的服务"
	}
	if comment != "" {
		note = comment
	}
	return s.c.Notify.Queue(ctx, SubscribePayload{
		ToUserID: rec.WorkerID, TemplateID: s.c.TemplateID, Page: "pages/records/detail?id=" + rec.ID,
		Data: map[string]string{
			"thing1":  rvClip(rec.Title, 20),
			"phrase2": rvDecisionLabel[decision],
			"thing3":  rvClip(note, 20),
			"time4":   now.In(beijing).Format("2006-01-02 15:04"),
		},
	})
}

// rvClip shortens to n runes: WeChat refuses longer "thing" values.
func rvClip(s string, n int) string {
	r := []rune(strings.TrimSpace(s))
	if len(r) <= n {
		return string(r)
	}
	return string(r[:n-1]) + "…"
}

// afterDecision does the side effects that must wait for the commit:
// queue moves and publishing. Failures are logged; the reconcile job
// repairs the queue from the database.
func (s *Review) afterDecision(ctx context.Context, out rvOutcome) {
	log := s.c.Logger
	rec := out.rec
	if err := s.c.Queue.Release(ctx, rec.TownID, out.level, rec.ID); err != nil {
		log.WarnContext(ctx, "review: release after decision", "record_id", rec.ID, "err", err)
	}
	if err := s.c.Queue.ForgetClaim(ctx, rec.TownID, out.level, rec.ID); err != nil {
		log.WarnContext(ctx, "review: forget claim", "record_id", rec.ID, "err", err)
	}
	if out.nextLevel == 2 {
		flagged, _ := s.flagged(ctx, rec)
		if err := s.c.Queue.Enqueue(ctx, rec.TownID, 2, rec.ID, rvPriority(rec.RiskLevel, flagged, rec.SubmittedAt)); err != nil {
			log.WarnContext(ctx, "review: enqueue level 2", "record_id", rec.ID, "err", err)
		}
	}
	if out.final && s.c.Publisher != nil {
		if err := s.c.Publisher.TryPublish(ctx, rec.ID); err != nil {
			log.WarnContext(ctx, "review: publish after approval", "record_id", rec.ID, "err", err)
		}
	}
}

// ---- bulk ----

// BulkItem is one record of a bulk approval with the version seen.
type BulkItem struct {
	RecordID        string
	ExpectedVersion int
}

// BulkSkip is a record a bulk approval left alone, and why.
type BulkSkip struct {
	RecordID string
	Code     string
	Message  string
}

// BulkResult reports a bulk approval.
type BulkResult struct {
	Approved []string
	Skipped  []BulkSkip
}

// BulkApprove approves, one transaction each, the listed records whose
// current version has no flag at all; every other record is reported as
// skipped with the code it would have failed with.
func (s *Review) BulkApprove(ctx context.Context, items []BulkItem) (BulkResult, error) {
	if len(items) == 0 || len(items) > rvMaxBulk {
		return BulkResult{}, apperr.New(apperr.ErrInvalid, "BULK_SIZE", "一次可批量通过1到50条记录").
			WithFields(apperr.FieldError{Field: "items", Reason: "range_1_50"})
	}
	res := BulkResult{Approved: []string{}, Skipped: []BulkSkip{}}
	seen := map[string]bool{}
	for _, it := range items {
		if seen[it.RecordID] {
			continue
		}
		seen[it.RecordID] = true
		if !ids.Valid(it.RecordID) {
			res.Skipped = append(res.Skipped, BulkSkip{RecordID: it.RecordID, Code: "NOT_FOUND", Message: "服务记录不存在"})
			continue
		}
		_, err := s.decide(ctx, it.RecordID, DecisionInput{Decision: model.DecisionApprove, ExpectedVersion: it.ExpectedVersion}, true)
		var ae *apperr.Error
		switch {
		case err == nil:
			res.Approved = append(res.Approved, it.RecordID)
		case errors.As(err, &ae):
			res.Skipped = append(res.Skipped, BulkSkip{RecordID: it.RecordID, Code: ae.Code, Message: ae.Message})
		default:
			return res, err
		}
	}
	return res, nil
}

// ---- payable ----

// RecomputePayable re-marks the approved records of an order: the first
// `quantity` by decision time are payable, the rest are not. Call it when
// the bureau changes an order's quantity (orders slice, PATCH
// /api/v1/admin/orders/{id}); it joins the caller's transaction if any.
func (s *Review) RecomputePayable(ctx context.Context, orderID string) (int, error) {
	changed := 0
	err := s.c.Tx.InTx(ctx, func(ctx context.Context) error {
		order, err := s.c.Orders.Lock(ctx, orderID)
		if err != nil {
			return err
		}
		recs, err := s.c.Reviews.ApprovedOnOrder(ctx, orderID)
		if err != nil {
			return err
		}
		var nowPayable, nowUnpayable []string
		for i, r := range recs {
			want := i < order.Quantity
			switch {
			case want && !r.Payable:
				nowPayable = append(nowPayable, r.ID)
			case !want && r.Payable:
				nowUnpayable = append(nowUnpayable, r.ID)
			}
		}
		if err := s.c.Reviews.SetPayable(ctx, nowPayable, true); err != nil {
			return err
		}
		if err := s.c.Reviews.SetPayable(ctx, nowUnpayable, false); err != nil {
			return err
		}
		changed = len(nowPayable) + len(nowUnpayable)
		if changed == 0 {
			return nil
		}
		return s.c.Audit.Record(ctx, AuditEntry{Action: "review.payable_recompute", ObjectType: "order", ObjectID: orderID,
			After: map[string]any{"quantity": order.Quantity, "now_payable": nowPayable, "now_unpayable": nowUnpayable}})
	})
	return changed, err
}
