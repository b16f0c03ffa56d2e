package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"qjmz/model"
	"qjmz/pkg/apperr"
	"qjmz/pkg/ids"
	"qjmz/pkg/pii"
	"qjmz/repository"
)

// RecordStore is session records and the neighbouring rows they are checked
// against.
type RecordStore interface {
	Create(ctx context.Context, rec *model.SessionRecord, beneficiaryIDs []string) error
	Get(ctx context.Context, id string) (model.SessionRecord, error)
	Lock(ctx context.Context, id string) (model.SessionRecord, error)
	UpdateIf(ctx context.Context, id string, version int, statuses []string, cols map[string]any) (bool, error)
	SetBeneficiaries(ctx context.Context, recordID string, beneficiaryIDs []string) error
	BeneficiaryIDs(ctx context.Context, recordID string) ([]string, error)
	List(ctx context.Context, f repository.RecordFilter) ([]model.SessionRecord, error)
	AddVersion(ctx context.Context, v *model.RecordVersion) error
	Versions(ctx context.Context, recordID string) ([]model.RecordVersion, error)
	ReplaceFlags(ctx context.Context, recordID string, version int, flags []model.RiskFlag) error
	Flags(ctx context.Context, recordID string) ([]model.RiskFlag, error)
	GetOrder(ctx context.Context, id string) (model.Order, error)
	GetItem(ctx context.Context, id string) (model.ServiceItem, error)
	LockItem(ctx context.Context, id string) (model.ServiceItem, error)
	GetItems(ctx context.Context, ids []string) (map[string]model.ServiceItem, error)
	GetBeneficiaries(ctx context.Context, ids []string) ([]model.Beneficiary, error)
	Media(ctx context.Context, recordID string) ([]model.Upload, error)
}

// NearDupSyncer brings the near-duplicate index up to date.
type NearDupSyncer interface {
	Sync(ctx context.Context) error
}

// RecordsConfig wires the session-record use cases.
type RecordsConfig struct {
	Tx      TxRunner
	Records RecordStore
	Regions RegionStore
	Risk    *RiskChecker
	NearDup NearDupSyncer
	Cipher  Cipher
	Audit   *Auditor
	Now     func() time.Time
}

// Records lets workers draft, edit and submit session records, and lets
// reviewers in scope read them with their risk flags and versions.
type Records struct {
	c        RecordsConfig
	onSubmit SubmitListener
}

// SubmitListener hears about a record right after its submit committed (the
// review queue); best effort — the queue is reconciled from the database.
type SubmitListener interface {
	Submitted(ctx context.Context, recordID string) error
}

// NewRecords builds the session-record use cases.
func NewRecords(c RecordsConfig) *Records { return &Records{c: c} }

// SetSubmitListener connects the review queue, built after records; called
// once while wiring.
func (s *Records) SetSubmitListener(l SubmitListener) { s.onSubmit = l }

const (
	// srClockSkew tolerates phones whose clocks run a little ahead.
	srClockSkew        = 5 * time.Minute
	srMaxSession       = 24 * time.Hour
	srMaxBeneficiaries = 200
	srMaxParticipants  = 100000
	srMaxDescription   = 2000
)

var (
	srEditableStatuses = []string{model.RecordDraft, model.RecordReturned}
	srAllStatuses      = []string{model.RecordDraft, model.RecordSubmitted, model.RecordLevel1OK, model.RecordApproved, model.RecordReturned, model.RecordRejected}
	srReaders          = []string{model.RoleStationReviewer, model.RoleBureauReviewer, model.RoleBureauAdmin, model.RoleAuditor}
	srWriters          = []string{model.RoleWorker, model.RoleOrgAdmin}
)

// RecordInput creates a record (required fields checked) or patches one
// (nil = unchanged). BeneficiaryIDs replaces the set when not nil.
type RecordInput struct {
	OrderID          string
	CommunityID      *string
	VenueName        *string
	VenueLat         *float64
	VenueLng         *float64
	StartAt          *time.Time
	EndAt            *time.Time
	Title            *string
	Description      *string
	ParticipantCount *int
	BeneficiaryIDs   *[]string
}

// RecordBeneficiaryView is a person served, masked for display.
type RecordBeneficiaryView struct {
	ID              string
	Name            string
	IDNumber        string
	Phone           string
	Household       string
	CommunityID     string
	Categories      string
	GuardianConsent bool
	PublicConsent   bool
}

// RecordDetail is one record as its organization and its reviewers see it.
type RecordDetail struct {
	Record        model.SessionRecord
	Order         model.Order
	Item          model.ServiceItem
	Town          model.Region
	Community     model.Region
	Beneficiaries []RecordBeneficiaryView
	Media         []model.Upload
	Flags         []model.RiskFlag // of the current version
}

// RecordSummary is one line of a listing.
type RecordSummary struct {
	Record        model.SessionRecord
	ItemName      string
	CommunityName string
}

// RecordVersionView is one submitted snapshot with the flags raised then.
type RecordVersionView struct {
	Version     model.RecordVersion
	Flags       []model.RiskFlag
	SnapshotRaw json.RawMessage
}

// ---- access ----

func srCanWrite(p *Principal, rec model.SessionRecord) bool {
	return p.CanOrg(rec.OrgID, srWriters...)
}

// srCanRead: the organization sees its records in every state; staff
// over the community see them once submitted — a draft is a worker's
// unfinished note, not yet a claim.
func srCanRead(p *Principal, rec model.SessionRecord, communityPath string) bool {
	if srCanWrite(p, rec) {
		return true
	}
	return rec.Status != model.RecordDraft && p.CanRegion(communityPath, srReaders...)
}

func (s *Records) readable(ctx context.Context, id string) (model.SessionRecord, model.Region, error) {
	rec, err := s.c.Records.Get(ctx, id)
	if err != nil {
		return model.SessionRecord{}, model.Region{}, notFound("服务记录", err)
	}
	com, err := s.c.Regions.Get(ctx, rec.CommunityID)
	if err != nil && !errors.Is(err, apperr.ErrNotFound) {
		return model.SessionRecord{}, model.Region{}, err
	}
	if !srCanRead(PrincipalFrom(ctx), rec, com.Path) {
		return model.SessionRecord{}, model.Region{}, apperr.NotFound("服务记录")
	}
	return rec, com, nil
}

// ---- create, edit ----

// Create drafts a record against an open order of the caller's organization.
func (s *Records) Create(ctx context.Context, in RecordInput) (RecordDetail, error) {
	p := PrincipalFrom(ctx)
	order, err := s.c.Records.GetOrder(ctx, in.OrderID)
	if err != nil || !p.CanOrg(order.OrgID, srWriters...) {
		return RecordDetail{}, notFound("订单", err)
	}
	if order.Status != model.OrderOpen {
		return RecordDetail{}, apperr.New(apperr.ErrConflict, "ORDER_NOT_OPEN", "订单已关闭，不能新建服务记录")
	}
	var fe []apperr.FieldError
	for name, missing := range map[string]bool{
		"community_id": in.CommunityID == nil, "start_at": in.StartAt == nil, "end_at": in.EndAt == nil, "title": in.Title == nil,
	} {
		if missing {
			fe = append(fe, apperr.FieldError{Field: name, Reason: "required"})
		}
	}
	if len(fe) > 0 {
		slices.SortFunc(fe, func(a, b apperr.FieldError) int { return strings.Compare(a.Field, b.Field) })
		return RecordDetail{}, apperr.Invalid("服务记录信息不完整", fe...)
	}
	rec := model.SessionRecord{ID: ids.New(), OrgID: order.OrgID, OrderID: order.ID, ItemID: order.ItemID, WorkerID: p.UserID,
		Status: model.RecordDraft, Version: 1}
	bids := []string{}
	if in.BeneficiaryIDs != nil {
		bids = *in.BeneficiaryIDs
	}
	in.BeneficiaryIDs = &bids
	if bids, err = s.apply(ctx, &rec, order, in); err != nil {
		return RecordDetail{}, err
	}
	err = s.c.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.c.Records.Create(ctx, &rec, bids); err != nil {
			return err
		}
		return s.c.Audit.Record(ctx, AuditEntry{Action: "record.create", ObjectType: "session_record", ObjectID: rec.ID,
			After: srAudit(rec, bids)})
	})
	if err != nil {
		return RecordDetail{}, err
	}
	return s.detail(ctx, rec)
}

// Update edits a draft or a returned record.
func (s *Records) Update(ctx context.Context, id string, in RecordInput) (RecordDetail, error) {
	p := PrincipalFrom(ctx)
	rec, err := s.c.Records.Get(ctx, id)
	if err != nil || !srCanWrite(p, rec) {
		return RecordDetail{}, notFound("服务记录", err)
	}
	if !slices.Contains(srEditableStatuses, rec.Status) {
		return RecordDetail{}, errSRNotEditable()
	}
	order, err := s.c.Records.GetOrder(ctx, rec.OrderID)
	if err != nil {
		return RecordDetail{}, err
	}
	before := rec
	beforeBids, err := s.c.Records.BeneficiaryIDs(ctx, id)
	if err != nil {
		return RecordDetail{}, err
	}
	bids, err := s.apply(ctx, &rec, order, in)
	if err != nil {
		return RecordDetail{}, err
	}
	cols := map[string]any{
		"community_id": rec.CommunityID, "town_id": rec.TownID, "venue_name": rec.VenueName, "venue_lat": rec.VenueLat,
		"venue_lng": rec.VenueLng, "start_at": rec.StartAt, "end_at": rec.EndAt, "title": rec.Title,
		"description": rec.Description, "participant_count": rec.ParticipantCount,
	}
	err = s.c.Tx.InTx(ctx, func(ctx context.Context) error {
		cur, err := s.c.Records.Lock(ctx, id)
		if err != nil {
			return err
		}
		// Submitted (or decided) by another device since we read it.
		if cur.Version != before.Version || !slices.Contains(srEditableStatuses, cur.Status) {
			return errSRNotEditable()
		}
		ok, err := s.c.Records.UpdateIf(ctx, id, cur.Version, srEditableStatuses, cols)
		if err != nil {
			return err
		}
		if !ok {
			return errSRNotEditable()
		}
		if in.BeneficiaryIDs != nil {
			if err := s.c.Records.SetBeneficiaries(ctx, id, bids); err != nil {
				return err
			}
		} else {
			bids = beforeBids
		}
		return s.c.Audit.Record(ctx, AuditEntry{Action: "record.update", ObjectType: "session_record", ObjectID: id,
			Before: srAudit(before, beforeBids), After: srAudit(rec, bids)})
	})
	if err != nil {
		return RecordDetail{}, err
	}
	return s.Get(ctx, id)
}

func errSRNotEditable() error {
	return apperr.New(apperr.ErrConflict, "RECORD_NOT_EDITABLE", "记录已提交或已审核，不能修改")
}

// apply validates the input against the order and writes it into rec;
// it returns the beneficiary ids to link (nil when unchanged).
func (s *Records) apply(ctx context.Context, rec *model.SessionRecord, order model.Order, in RecordInput) ([]string, error) {
	var fe []apperr.FieldError
	if in.Title != nil {
		rec.Title = strings.TrimSpace(*in.Title)
		if n := len([]rune(rec.Title)); n == 0 || n > 128 {
			fe = append(fe, apperr.FieldError{Field: "title", Reason: "length_1_128"})
		}
	}
	if in.Description != nil {
		rec.Description = strings.TrimSpace(*in.Description)
		if len([]rune(rec.Description)) > srMaxDescription {
			fe = append(fe, apperr.FieldError{Field: "description", Reason: "max_2000"})
		}
	}
	if in.VenueName != nil {
		rec.VenueName = strings.TrimSpace(*in.VenueName)
		if len([]rune(rec.VenueName)) > 128 {
			fe = append(fe, apperr.FieldError{Field: "venue_name", Reason: "max_128"})
		}
	}
	if in.ParticipantCount != nil {
		rec.ParticipantCount = *in.ParticipantCount
		if rec.ParticipantCount < 0 || rec.ParticipantCount > srMaxParticipants {
			fe = append(fe, apperr.FieldError{Field: "participant_count", Reason: "range_0_100000"})
		}
	}
	if (in.VenueLat == nil) != (in.VenueLng == nil) {
		fe = append(fe, apperr.FieldError{Field: "venue_lat", Reason: "lat_and_lng_together"})
	} else if in.VenueLat != nil {
		if *in.VenueLat < 3 || *in.VenueLat > 54 || *in.VenueLng < 73 || *in.VenueLng > 136 {
			fe = append(fe, apperr.FieldError{Field: "venue_lat", Reason: "outside_china"})
		}
		rec.VenueLat, rec.VenueLng = *in.VenueLat, *in.VenueLng
	}
	if in.StartAt != nil {
		rec.StartAt = in.StartAt.UTC().Truncate(time.Second)
	}
	if in.EndAt != nil {
		rec.EndAt = in.EndAt.UTC().Truncate(time.Second)
	}
	if !rec.EndAt.After(rec.StartAt) {
		fe = append(fe, apperr.FieldError{Field: "end_at", Reason: "after_start_at"})
	} else if rec.EndAt.Sub(rec.StartAt) > srMaxSession {
		fe = append(fe, apperr.FieldError{Field: "end_at", Reason: "max_24h"})
	}
	if len(fe) > 0 {
		return nil, apperr.Invalid("服务记录信息不正确", fe...)
	}
	now := s.c.Now()
	if rec.StartAt.After(now.Add(srClockSkew)) || rec.EndAt.After(now.Add(srClockSkew)) {
		return nil, apperr.New(apperr.ErrInvalid, "SESSION_IN_FUTURE", "服务时间不能晚于当前时间").
			WithFields(apperr.FieldError{Field: "end_at", Reason: "not_in_future"})
	}
	// PeriodEnd is the period's last calendar day, inclusive (OrderInput):
	// sessions may run until the end of that day.
	if rec.StartAt.Before(order.PeriodStart) || rec.EndAt.After(order.PeriodEnd.AddDate(0, 0, 1)) {
		return nil, apperr.New(apperr.ErrInvalid, "OUTSIDE_ORDER_PERIOD", "服务时间不在订单期限内")
	}
	orderRegion, err := s.c.Regions.Get(ctx, order.RegionID)
	if err != nil {
		return nil, err
	}
	if in.CommunityID != nil || rec.TownID == "" {
		com, err := s.c.Regions.Get(ctx, srDerefOr(in.CommunityID, rec.CommunityID))
		if err != nil && !errors.Is(err, apperr.ErrNotFound) {
			return nil, err
		}
		if err != nil || com.Level != model.LevelCommunity || com.ParentID == nil || !strings.HasPrefix(com.Path, orderRegion.Path) {
			return nil, apperr.New(apperr.ErrInvalid, "COMMUNITY_OUTSIDE_ORDER", "所选社区不在订单服务范围内").
				WithFields(apperr.FieldError{Field: "community_id", Reason: "outside_order_region"})
		}
		// The town is the community's parent, which is the order's region
		// for a town-level order and still right for a wider one.
		rec.CommunityID, rec.TownID = com.ID, *com.ParentID
		if in.VenueLat == nil && !riskHasPoint(rec.VenueLat, rec.VenueLng) {
			// No venue point given: the community centre stands in, so the
			// double-booking check still has a place to compare.
			rec.VenueLat, rec.VenueLng = com.Lat, com.Lng
		}
	}
	if in.BeneficiaryIDs == nil {
		return nil, nil
	}
	return s.checkBeneficiaries(ctx, *in.BeneficiaryIDs, orderRegion)
}

func srDerefOr(p *string, def string) string {
	if p != nil {
		return *p
	}
	return def
}

// checkBeneficiaries: every person must exist and live inside the order's
// region; anything else is refused without saying which one exists.
func (s *Records) checkBeneficiaries(ctx context.Context, in []string, orderRegion model.Region) ([]string, error) {
	if len(in) > srMaxBeneficiaries {
		return nil, apperr.Invalid("服务对象过多", apperr.FieldError{Field: "beneficiary_ids", Reason: "max_200"})
	}
	out := make([]string, 0, len(in))
	for i, id := range in {
		if !ids.Valid(id) {
			return nil, errSRBeneficiary(i)
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	rows, err := s.c.Records.GetBeneficiaries(ctx, out)
	if err != nil {
		return nil, err
	}
	byID := map[string]model.Beneficiary{}
	var comIDs []string
	for _, b := range rows {
		byID[b.ID] = b
		comIDs = append(comIDs, b.CommunityID)
	}
	coms, err := s.c.Regions.GetMany(ctx, comIDs)
	if err != nil {
		return nil, err
	}
	for i, id := range in {
		b, ok := byID[id]
		if !ok || !strings.HasPrefix(coms[b.CommunityID].Path, orderRegion.Path) || coms[b.CommunityID].Path == "" {
			return nil, errSRBeneficiary(i)
		}
	}
	slices.Sort(out)
	return out, nil
}

func errSRBeneficiary(i int) error {
	return apperr.New(apperr.ErrInvalid, "BENEFICIARY_INVALID", "服务对象不存在或不在订单服务范围内").
		WithFields(apperr.FieldError{Field: fmt.Sprintf("beneficiary_ids[%d]", i), Reason: "unknown_or_outside_order_region"})
}

func srAudit(r model.SessionRecord, bids []string) map[string]any {
	return map[string]any{"order_id": r.OrderID, "community_id": r.CommunityID, "venue_name": r.VenueName,
		"venue_lat": r.VenueLat, "venue_lng": r.VenueLng, "start_at": r.StartAt, "end_at": r.EndAt, "title": r.Title,
		"participant_count": r.ParticipantCount, "status": r.Status, "version": r.Version, "beneficiary_ids": bids}
}

// ---- read ----

// Get returns one record the caller may see.
func (s *Records) Get(ctx context.Context, id string) (RecordDetail, error) {
	rec, _, err := s.readable(ctx, id)
	if err != nil {
		return RecordDetail{}, err
	}
	return s.detail(ctx, rec)
}

func (s *Records) detail(ctx context.Context, rec model.SessionRecord) (RecordDetail, error) {
	d := RecordDetail{Record: rec}
	var err error
	if d.Order, err = s.c.Records.GetOrder(ctx, rec.OrderID); err != nil {
		return d, err
	}
	if d.Item, err = s.c.Records.GetItem(ctx, rec.ItemID); err != nil {
		return d, err
	}
	regs, err := s.c.Regions.GetMany(ctx, []string{rec.TownID, rec.CommunityID})
	if err != nil {
		return d, err
	}
	d.Town, d.Community = regs[rec.TownID], regs[rec.CommunityID]
	bids, err := s.c.Records.BeneficiaryIDs(ctx, rec.ID)
	if err != nil {
		return d, err
	}
	bens, err := s.c.Records.GetBeneficiaries(ctx, bids)
	if err != nil {
		return d, err
	}
	for _, b := range bens {
		d.Beneficiaries = append(d.Beneficiaries, maskRecordBeneficiary(s.c.Cipher, b))
	}
	if d.Media, err = s.c.Records.Media(ctx, rec.ID); err != nil {
		return d, err
	}
	flags, err := s.c.Records.Flags(ctx, rec.ID)
	if err != nil {
		return d, err
	}
	for _, f := range flags {
		if f.Version == rec.Version {
			d.Flags = append(d.Flags, f)
		}
	}
	return d, nil
}

// maskRecordBeneficiary decrypts and masks at once, so plaintext never
// leaves this function. A value that will not decrypt shows as
// masked-empty. Records and review detail both show people this way.
func maskRecordBeneficiary(c Cipher, b model.Beneficiary) RecordBeneficiaryView {
	v := RecordBeneficiaryView{ID: b.ID, Household: b.Household, CommunityID: b.CommunityID, Categories: b.Categories,
		GuardianConsent: b.GuardianConsent, PublicConsent: b.PublicConsent}
	if name, err := c.Decrypt(b.NameEnc, fieldBenName); err == nil {
		v.Name = pii.MaskName(name)
	}
	if idn, err := c.Decrypt(b.IDNumberEnc, fieldBenIDNumber); err == nil {
		v.IDNumber = pii.MaskIDNumber(idn)
	}
	if b.PhoneEnc != "" {
		if ph, err := c.Decrypt(b.PhoneEnc, fieldBenPhone); err == nil {
			v.Phone = pii.MaskPhone(ph)
		}
	}
	return v
}

// RecordQuery filters the organization's listing.
type RecordQuery struct {
	Status string
	Cursor string
	Limit  int
}

// List returns the records of the caller's organizations, newest first.
func (s *Records) List(ctx context.Context, q RecordQuery) ([]RecordSummary, string, error) {
	p := PrincipalFrom(ctx)
	orgIDs := p.OrgIDs(srWriters...)
	if len(orgIDs) == 0 {
		return nil, "", apperr.New(apperr.ErrForbidden, "FORBIDDEN", "只有机构成员可以查看本机构的服务记录")
	}
	if q.Status != "" && !slices.Contains(srAllStatuses, q.Status) {
		return nil, "", apperr.New(apperr.ErrInvalid, "UNKNOWN_ENUM_VALUE", "状态取值不正确").
			WithFields(apperr.FieldError{Field: "status", Reason: "one_of:" + strings.Join(srAllStatuses, ",")})
	}
	if q.Cursor != "" && !ids.Valid(q.Cursor) {
		return nil, "", apperr.Invalid("游标无效", apperr.FieldError{Field: "cursor", Reason: "invalid"})
	}
	rows, err := s.c.Records.List(ctx, repository.RecordFilter{OrgIDs: orgIDs, Status: q.Status, Before: q.Cursor, Limit: q.Limit + 1})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(rows) > q.Limit {
		rows, next = rows[:q.Limit], rows[q.Limit-1].ID
	}
	var itemIDs, regionIDs []string
	for _, r := range rows {
		itemIDs = append(itemIDs, r.ItemID)
		regionIDs = append(regionIDs, r.CommunityID)
	}
	items, err := s.c.Records.GetItems(ctx, itemIDs)
	if err != nil {
		return nil, "", err
	}
	regs, err := s.c.Regions.GetMany(ctx, regionIDs)
	if err != nil {
		return nil, "", err
	}
	out := make([]RecordSummary, 0, len(rows))
	for _, r := range rows {
		out = append(out, RecordSummary{Record: r, ItemName: items[r.ItemID].Name, CommunityName: regs[r.CommunityID].Name})
	}
	return out, next, nil
}

// Versions lists a record's submitted snapshots, oldest first, each with
// the warn flags raised when it was submitted.
func (s *Records) Versions(ctx context.Context, id string) ([]RecordVersionView, error) {
	rec, _, err := s.readable(ctx, id)
	if err != nil {
		return nil, err
	}
	vs, err := s.c.Records.Versions(ctx, rec.ID)
	if err != nil {
		return nil, err
	}
	flags, err := s.c.Records.Flags(ctx, rec.ID)
	if err != nil {
		return nil, err
	}
	out := make([]RecordVersionView, 0, len(vs))
	for _, v := range vs {
		view := RecordVersionView{Version: v, SnapshotRaw: json.RawMessage(v.Snapshot)}
		for _, f := range flags {
			if f.Version == v.Version {
				view.Flags = append(view.Flags, f)
			}
		}
		out = append(out, view)
	}
	return out, nil
}

// ---- submit ----

// Submit runs the risk checks and, unless one blocks, moves the record to
// submitted: a returned record comes back as a new version, and every
// submitted version is kept as a snapshot. expectedVersion is the version
// the client saw; anything else is VERSION_CONFLICT.
//
// A blocked attempt changes nothing but the audit log: its flags are
// returned in the error's details and not stored, so the stored flags of a
// version are always those the reviewer's copy was checked with.
func (s *Records) Submit(ctx context.Context, id string, expectedVersion int) (RecordDetail, error) {
	p := PrincipalFrom(ctx)
	if rec, err := s.c.Records.Get(ctx, id); err != nil || !srCanWrite(p, rec) {
		return RecordDetail{}, notFound("服务记录", err)
	}
	// Outside the transaction: it reads the uploads table, maybe at length
	// on the first call, and needs no lock.
	if err := s.c.NearDup.Sync(ctx); err != nil {
		return RecordDetail{}, err
	}
	var blocked []RiskFinding
	err := s.c.Tx.InTx(ctx, func(ctx context.Context) error {
		rec, err := s.c.Records.Lock(ctx, id)
		if err != nil {
			return err
		}
		if rec.Version != expectedVersion {
			return errSRVersionConflict()
		}
		if !slices.Contains(srEditableStatuses, rec.Status) {
			return errSRNotEditable()
		}
		// Caps, same-day and double-booking checks add up other records of
		// the same item: submits of one item take turns on its row. The lock
		// comes before any plain read, because InnoDB fixes a transaction's
		// snapshot at its first plain read and a later lock would not make
		// the other submit's rows visible. (SQLite serialises anyway.)
		if _, err := s.c.Records.LockItem(ctx, rec.ItemID); err != nil {
			return err
		}
		in, bids, err := s.riskInput(ctx, rec)
		if err != nil {
			return err
		}
		flags, err := s.c.Risk.Check(ctx, in)
		if err != nil {
			return err
		}
		if RiskBlocks(flags) {
			blocked = flags
			// Kept in the audit log: repeated attempts to pass a reused file
			// are themselves worth seeing.
			return s.c.Audit.Record(ctx, AuditEntry{Action: "record.submit_blocked", ObjectType: "session_record", ObjectID: id,
				After: map[string]any{"version": rec.Version, "flags": srFlagCodes(flags)}})
		}
		return s.commitSubmit(ctx, rec, in, bids, flags)
	})
	if err != nil {
		return RecordDetail{}, err
	}
	if blocked != nil {
		return RecordDetail{}, apperr.New(apperr.ErrUnprocessable, "RECORD_BLOCKED", "记录未通过提交检查，请按提示补充或更正").
			WithDetails(map[string]any{"flags": srFlagsDetail(blocked)})
	}
	if s.onSubmit != nil {
		// Errors are logged by the listener; the minute reconcile job will
		// queue the record and the submit stands either way.
		_ = s.onSubmit.Submitted(ctx, id)
	}
	return s.Get(ctx, id)
}

func errSRVersionConflict() error {
	return apperr.New(apperr.ErrConflict, "VERSION_CONFLICT", "记录已被更新，请刷新后重试")
}

func (s *Records) commitSubmit(ctx context.Context, rec model.SessionRecord, in RiskInput, bids []string, flags []RiskFinding) error {
	version := rec.Version
	if rec.Status == model.RecordReturned {
		version++
	}
	now := s.c.Now()
	level := "none"
	if len(flags) > 0 {
		level = model.SeverityWarn
	}
	ok, err := s.c.Records.UpdateIf(ctx, rec.ID, rec.Version, srEditableStatuses, map[string]any{
		"status": model.RecordSubmitted, "version": version, "submitted_at": now, "risk_level": level, "decided_at": nil,
	})
	if err != nil {
		return err
	}
	if !ok {
		return errSRVersionConflict()
	}
	after := rec
	after.Status, after.Version, after.SubmittedAt, after.RiskLevel = model.RecordSubmitted, version, &now, level
	snap, err := json.Marshal(srSnapshot(after, bids, in.Media, flags))
	if err != nil {
		return fmt.Errorf("records: snapshot: %w", err)
	}
	v := model.RecordVersion{ID: ids.New(), RecordID: rec.ID, Version: version, Snapshot: string(snap),
		SubmittedBy: PrincipalFrom(ctx).UserID, SubmittedAt: now}
	if err := s.c.Records.AddVersion(ctx, &v); err != nil {
		if errors.Is(err, apperr.ErrConflict) {
			return errSRVersionConflict()
		}
		return err
	}
	rows := make([]model.RiskFlag, 0, len(flags))
	for _, f := range flags {
		ev, err := json.Marshal(f.Evidence)
		if err != nil {
			return fmt.Errorf("records: flag evidence: %w", err)
		}
		rows = append(rows, model.RiskFlag{ID: ids.New(), RecordID: rec.ID, Version: version, Code: f.Code,
			Severity: f.Severity, Evidence: string(ev), CreatedAt: now})
	}
	if err := s.c.Records.ReplaceFlags(ctx, rec.ID, version, rows); err != nil {
		return err
	}
	return s.c.Audit.Record(ctx, AuditEntry{Action: "record.submit", ObjectType: "session_record", ObjectID: rec.ID,
		Before: map[string]any{"status": rec.Status, "version": rec.Version},
		After:  map[string]any{"status": model.RecordSubmitted, "version": version, "risk_level": level, "flags": srFlagCodes(flags)}})
}

func (s *Records) riskInput(ctx context.Context, rec model.SessionRecord) (RiskInput, []string, error) {
	in := RiskInput{Record: rec, Now: s.c.Now()}
	var err error
	if in.Order, err = s.c.Records.GetOrder(ctx, rec.OrderID); err != nil {
		return in, nil, err
	}
	if in.Item, err = s.c.Records.GetItem(ctx, rec.ItemID); err != nil {
		return in, nil, err
	}
	if in.Community, err = s.c.Regions.Get(ctx, rec.CommunityID); err != nil {
		return in, nil, err
	}
	if in.Media, err = s.c.Records.Media(ctx, rec.ID); err != nil {
		return in, nil, err
	}
	bids, err := s.c.Records.BeneficiaryIDs(ctx, rec.ID)
	if err != nil {
		return in, nil, err
	}
	in.Beneficiaries, err = s.c.Records.GetBeneficiaries(ctx, bids)
	return in, bids, err
}

// srSnapshot is the frozen copy of a submitted version: every field the
// reviewer decided on, and the files by digest so a later swap shows.
func srSnapshot(r model.SessionRecord, bids []string, media []model.Upload, flags []RiskFinding) map[string]any {
	files := []map[string]any{}
	for _, u := range media {
		if u.Status != model.UploadReady {
			continue
		}
		f := map[string]any{"id": u.ID, "kind": u.Kind, "sha256": u.SHA256, "size": u.Size}
		if u.CaptureTime != nil {
			f["capture_time"] = riskTime(*u.CaptureTime)
		}
		files = append(files, f)
	}
	if bids == nil {
		bids = []string{}
	}
	return map[string]any{
		"id": r.ID, "version": r.Version, "status": r.Status, "order_id": r.OrderID, "item_id": r.ItemID, "org_id": r.OrgID,
		"town_id": r.TownID, "community_id": r.CommunityID, "worker_id": r.WorkerID,
		"venue":    map[string]any{"name": r.VenueName, "lat": r.VenueLat, "lng": r.VenueLng},
		"start_at": riskTime(r.StartAt), "end_at": riskTime(r.EndAt), "title": r.Title, "description": r.Description,
		"participant_count": r.ParticipantCount, "beneficiary_ids": bids, "media": files,
		"risk_level": r.RiskLevel, "flags": srFlagCodes(flags), "submitted_at": riskTime(*r.SubmittedAt),
	}
}

func srFlagCodes(flags []RiskFinding) []string {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		out = append(out, f.Code)
	}
	return out
}

func srFlagsDetail(flags []RiskFinding) []map[string]any {
	out := make([]map[string]any, 0, len(flags))
	for _, f := range flags {
		out = append(out, map[string]any{"code": f.Code, "severity": f.Severity, "evidence": f.Evidence})
	}
	return out
}
