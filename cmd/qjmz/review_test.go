package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"qjmz/model"
	"qjmz/pkg/ids"
	"qjmz/pkg/pii"
	"qjmz/pkg/wechat"
	"qjmz/repository"
	"qjmz/service"
)

// reviewFixture is an item and an order of 黔江好心情公益服务中心 in 城南街道
// (青社社区), with records put straight into the database in status
// submitted, as the records slice leaves them.
type reviewFixture struct {
	h                          *harness
	town, community, org, item string
	order, worker              string
}

func newReviewFixture(t *testing.T, h *harness, levels, quantity int) *reviewFixture {
	t.Helper()
	f := &reviewFixture{h: h, town: h.regionID("城南街道"), community: h.regionID("青社社区"), org: h.orgID("黔江好心情公益服务中心")}
	h.app.DB.Raw("SELECT id FROM users WHERE open_id = ?", wechat.DevOpenID("worker-haoxinqing")).Scan(&f.worker)
	it := model.ServiceItem{ID: ids.New(), Code: "RV" + ids.New()[20:], Name: "助浴（测试）", Category: "为老服务", UnitPriceFen: 40000,
		Visibility: model.VisibilityPublic, ReviewLevels: levels, Active: true}
	now := time.Now().UTC()
	o := model.Order{ID: ids.New(), OrgID: f.org, ItemID: it.ID, RegionID: f.town, PeriodStart: now.AddDate(0, -1, 0), PeriodEnd: now.AddDate(0, 2, 0),
		Quantity: quantity, UnitPriceFen: 40000, BudgetFen: int64(quantity) * 40000, Status: model.OrderOpen, CreatedBy: "test"}
	if err := h.app.DB.Create(&it).Error; err != nil {
		t.Fatal(err)
	}
	if err := h.app.DB.Create(&o).Error; err != nil {
		t.Fatal(err)
	}
	f.item, f.order = it.ID, o.ID
	return f
}

type rvRecOpt struct {
	title     string
	ago       time.Duration
	flags     []string
	town      string // default: the fixture's
	community string
}

// record inserts a submitted record (version 1) with its snapshot and flags.
func (f *reviewFixture) record(t *testing.T, o rvRecOpt) model.SessionRecord {
	t.Helper()
	if o.title == "" {
		o.title = "助浴服务"
	}
	if o.town == "" {
		o.town, o.community = f.town, f.community
	}
	sub := time.Now().UTC().Add(-o.ago).Truncate(time.Millisecond)
	r := model.SessionRecord{ID: ids.New(), OrgID: f.org, OrderID: f.order, ItemID: f.item, TownID: o.town, CommunityID: o.community,
		WorkerID: f.worker, StartAt: sub.Add(-2 * time.Hour), EndAt: sub.Add(-time.Hour), Title: o.title, Description: "为王奶奶助浴",
		ParticipantCount: 1, Status: model.RecordSubmitted, Version: 1, RiskLevel: "none", SubmittedAt: &sub}
	if len(o.flags) > 0 {
		r.RiskLevel = model.SeverityWarn
	}
	db := f.h.app.DB
	if err := db.Create(&r).Error; err != nil {
		t.Fatal(err)
	}
	f.snapshot(t, r, 1, map[string]any{"title": r.Title, "venue": map[string]any{"name": "青社社区活动室"}})
	for _, code := range o.flags {
		if err := db.Create(&model.RiskFlag{ID: ids.New(), RecordID: r.ID, Version: 1, Code: code, Severity: model.SeverityWarn,
			Evidence: `{"note":"test"}`, CreatedAt: sub}).Error; err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func (f *reviewFixture) snapshot(t *testing.T, r model.SessionRecord, version int, snap map[string]any) {
	t.Helper()
	snap["version"] = version
	b, _ := json.Marshal(snap)
	if err := f.h.app.DB.Create(&model.RecordVersion{ID: ids.New(), RecordID: r.ID, Version: version, Snapshot: string(b),
		SubmittedBy: f.worker, SubmittedAt: time.Now().UTC()}).Error; err != nil {
		t.Fatal(err)
	}
}

// reviewerToken logs in a new account and makes it a station reviewer of
// the town (a second reviewer for the same queue).
func reviewerToken(t *testing.T, h *harness, name, townID string) string {
	t.Helper()
	tok := h.token(name)
	var uid string
	h.app.DB.Raw("SELECT id FROM users WHERE open_id = ?", wechat.DevOpenID(name)).Scan(&uid)
	if err := h.app.Users.AddBinding(context.Background(), &model.RoleBinding{ID: ids.New(), UserID: uid, Role: model.RoleStationReviewer,
		RegionID: &townID, ScopeKey: "region:" + townID, GrantedBy: "test"}); err != nil {
		t.Fatal(err)
	}
	return tok
}

func claimed(r resp) string {
	rec, _ := r.Body["record"].(map[string]any)
	if rec == nil {
		return ""
	}
	id, _ := rec["id"].(string)
	return id
}

func decide(h *harness, tok, id string, body map[string]any) resp {
	return h.do("POST", "/api/v1/review/records/"+id+"/decision", tok, body)
}

func approve(version int) map[string]any {
	return map[string]any{"decision": "approve", "expected_version": version}
}

func (h *harness) runJob(t *testing.T, name string) {
	t.Helper()
	for _, j := range h.app.Jobs {
		if j.Name == name {
			if err := j.Run(context.Background()); err != nil {
				t.Fatalf("job %s: %v", name, err)
			}
			return
		}
	}
	t.Fatalf("no job %s", name)
}

func recordRow(t *testing.T, h *harness, id string) model.SessionRecord {
	t.Helper()
	var r model.SessionRecord
	if err := h.app.DB.Where("id = ?", id).Take(&r).Error; err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReviewClaimOrderLeasesAndScope(t *testing.T) {
	h := newHarness(t, nil)
	f := newReviewFixture(t, h, 1, 10)
	cleanOld := f.record(t, rvRecOpt{ago: 3 * time.Hour})
	risky := f.record(t, rvRecOpt{ago: time.Hour, flags: []string{"NEAR_DUPLICATE"}})
	f.record(t, rvRecOpt{ago: time.Minute})

	chengnan := h.token("reviewer-chengnan")
	chengxi := h.token("reviewer-chengxi")
	second := reviewerToken(t, h, "reviewer-chengnan-2", f.town)

	// A worker has no business in review.
	h.expect(h.do("POST", "/api/v1/review/claim", h.token("worker-haoxinqing"), map[string]any{"level": 1}), 403, "FORBIDDEN_ROLE")
	h.expect(h.do("GET", "/api/v1/review/pending", h.token("worker-haoxinqing"), nil), 403, "FORBIDDEN_ROLE")
	// A station reviewer cannot take level 2, nor another town's queue.
	h.expect(h.do("POST", "/api/v1/review/claim", chengnan, map[string]any{"level": 2}), 403, "REVIEW_LEVEL_FORBIDDEN")
	h.expect(h.do("POST", "/api/v1/review/claim", chengxi, map[string]any{"level": 1, "town_id": f.town}), 404, "NOT_FOUND")
	r := h.do("POST", "/api/v1/review/claim", chengxi, map[string]any{"level": 1})
	h.expect(r, 200, "")
	if claimed(r) != "" {
		t.Fatalf("城西 reviewer was handed a 城南 record: %s", r.Raw)
	}

	// Risky first, then oldest; a double tap returns the same lease.
	r = h.do("POST", "/api/v1/review/claim", chengnan, map[string]any{"level": 1})
	h.expect(r, 200, "")
	if claimed(r) != risky.ID || r.str("lease_until") == "" {
		t.Fatalf("first claim = %s, want the flagged record %s with a lease", r.Raw, risky.ID)
	}
	if again := h.do("POST", "/api/v1/review/claim", chengnan, map[string]any{"level": 1}); claimed(again) != risky.ID {
		t.Fatalf("repeat claim = %s", again.Raw)
	}
	r = h.do("POST", "/api/v1/review/claim", second, map[string]any{"level": 1, "town_id": f.town})
	if claimed(r) != cleanOld.ID {
		t.Fatalf("second reviewer got %s, want the oldest clean record", r.Raw)
	}
	// Someone else's live lease: the decision is refused.
	h.expect(decide(h, second, risky.ID, approve(1)), 409, "RECORD_CLAIMED")
	// Another town's reviewer sees nothing of it.
	h.expect(h.do("GET", "/api/v1/review/records/"+risky.ID, chengxi, nil), 404, "NOT_FOUND")
	h.expect(decide(h, chengxi, risky.ID, approve(1)), 404, "NOT_FOUND")
	h.expect(h.do("POST", "/api/v1/review/records/"+risky.ID+"/release", chengxi, nil), 404, "NOT_FOUND")

	// Releasing hands the record to the next reviewer who asks.
	h.expect(h.do("POST", "/api/v1/review/records/"+risky.ID+"/release", second, nil), 409, "LEASE_NOT_HELD")
	h.expect(h.do("POST", "/api/v1/review/records/"+risky.ID+"/release", chengnan, nil), 204, "")
	h.expect(decide(h, second, cleanOld.ID, approve(1)), 200, "")
	if r := h.do("POST", "/api/v1/review/claim", second, map[string]any{"level": 1}); claimed(r) != risky.ID {
		t.Fatalf("released record not handed out again: %s", r.Raw)
	}

	// Pending list (database): filters and keyset pages.
	r = h.do("GET", "/api/v1/review/pending?flag=NEAR_DUPLICATE", chengnan, nil)
	h.expect(r, 200, "")
	if items := r.items(); len(items) != 1 || items[0]["id"] != risky.ID {
		t.Fatalf("flag filter = %s", r.Raw)
	}
	r = h.do("GET", "/api/v1/review/pending?limit=1&town_id="+f.town, chengnan, nil)
	if len(r.items()) != 1 || r.str("next_cursor") == "" {
		t.Fatalf("page 1 = %s", r.Raw)
	}
	r2 := h.do("GET", "/api/v1/review/pending?limit=1&town_id="+f.town+"&cursor="+r.str("next_cursor"), chengnan, nil)
	if len(r2.items()) != 1 || r2.items()[0]["id"] == r.items()[0]["id"] {
		t.Fatalf("page 2 = %s", r2.Raw)
	}
	y, w := time.Now().In(time.FixedZone("CST", 8*3600)).AddDate(0, 0, -14).ISOWeek()
	r = h.do("GET", fmt.Sprintf("/api/v1/review/pending?week=%d-W%02d", y, w), chengnan, nil)
	if h.expect(r, 200, ""); len(r.items()) != 0 {
		t.Fatalf("records of two weeks ago: %s", r.Raw)
	}
	h.expect(h.do("GET", "/api/v1/review/pending?week=2026-13", chengnan, nil), 400, "INVALID_WEEK")
	if r := h.do("GET", "/api/v1/review/pending", chengxi, nil); len(r.items()) != 0 {
		t.Fatalf("城西 sees 城南 records: %s", r.Raw)
	}
}

// TestReviewTwoReviewersNeverShareARecord: many reviewers claim at once.
func TestReviewTwoReviewersNeverShareARecord(t *testing.T) {
	h := newHarness(t, nil)
	f := newReviewFixture(t, h, 1, 10)
	for i := range 4 {
		f.record(t, rvRecOpt{ago: time.Duration(i+1) * time.Minute})
	}
	toks := []string{h.token("reviewer-chengnan")}
	for i := range 5 {
		toks = append(toks, reviewerToken(t, h, fmt.Sprintf("reviewer-cn-%d", i), f.town))
	}
	var mu sync.Mutex
	holders := map[string]int{}
	var wg sync.WaitGroup
	for _, tok := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := h.do("POST", "/api/v1/review/claim", tok, map[string]any{"level": 1})
			if id := claimed(r); id != "" {
				mu.Lock()
				holders[id]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(holders) != 4 {
		t.Fatalf("4 records, 6 reviewers: %d records handed out (%v)", len(holders), holders)
	}
	for id, n := range holders {
		if n != 1 {
			t.Fatalf("record %s handed to %d reviewers", id, n)
		}
	}
}

func TestReviewLeaseExpiryAndDeadLetters(t *testing.T) {
	h := newHarness(t, map[string]string{"QJMZ_REVIEW_LEASE_TTL": "1s", "QJMZ_REVIEW_MAX_DELIVERIES": "2"})
	f := newReviewFixture(t, h, 1, 10)
	rec := f.record(t, rvRecOpt{})
	chengnan := h.token("reviewer-chengnan")
	second := reviewerToken(t, h, "reviewer-chengnan-2", f.town)
	admin := h.token("admin")

	if r := h.do("POST", "/api/v1/review/claim", chengnan, map[string]any{"level": 1}); claimed(r) != rec.ID {
		t.Fatalf("claim = %s", r.Raw)
	}
	if r := h.do("POST", "/api/v1/review/claim", second, map[string]any{"level": 1}); claimed(r) != "" {
		t.Fatalf("a leased record was handed out twice: %s", r.Raw)
	}
	time.Sleep(1100 * time.Millisecond)
	// The first reviewer walked away: the record comes back.
	r := h.do("POST", "/api/v1/review/claim", second, map[string]any{"level": 1})
	if claimed(r) != rec.ID || r.Body["deliveries"] != float64(2) {
		t.Fatalf("abandoned lease not returned: %s", r.Raw)
	}
	time.Sleep(1100 * time.Millisecond)
	// A third delivery is past the limit: parked, not handed out.
	if r := h.do("POST", "/api/v1/review/claim", chengnan, map[string]any{"level": 1}); claimed(r) != "" {
		t.Fatalf("record delivered past the limit: %s", r.Raw)
	}
	h.expect(h.do("GET", "/api/v1/review/dead-letters", h.token("bureau-reviewer"), nil), 403, "FORBIDDEN_ROLE")
	r = h.do("GET", "/api/v1/review/dead-letters", admin, nil)
	h.expect(r, 200, "")
	if items := r.items(); len(items) != 1 || items[0]["id"] != rec.ID || items[0]["queue_level"] != float64(1) {
		t.Fatalf("dead letters = %s", r.Raw)
	}
	// The reconcile job keeps it parked; the admin puts it back.
	h.runJob(t, "review-reconcile")
	if r := h.do("POST", "/api/v1/review/claim", chengnan, map[string]any{"level": 1}); claimed(r) != "" {
		t.Fatalf("reconcile revived a dead letter: %s", r.Raw)
	}
	h.expect(h.do("POST", "/api/v1/review/dead-letters/"+rec.ID+"/requeue", admin, nil), 204, "")
	if r := h.do("POST", "/api/v1/review/claim", chengnan, map[string]any{"level": 1}); claimed(r) != rec.ID {
		t.Fatalf("requeued record not claimable: %s", r.Raw)
	}
	if r := h.do("GET", "/api/v1/review/dead-letters", admin, nil); len(r.items()) != 0 {
		t.Fatalf("dead letter still listed after requeue: %s", r.Raw)
	}
}

func TestReviewConcurrentDecisionsOneWins(t *testing.T) {
	h := newHarness(t, nil)
	f := newReviewFixture(t, h, 1, 10)
	rec := f.record(t, rvRecOpt{})
	chengnan := h.token("reviewer-chengnan")
	bodies := []map[string]any{approve(1), {"decision": "reject", "reason_code": "SUSPECTED_FRAUD", "comment": "照片与现场不符", "expected_version": 1}}
	statuses := make([]int, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = decide(h, chengnan, rec.ID, bodies[i]).Status
		}()
	}
	wg.Wait()
	if !(statuses[0] == 200 && statuses[1] == 409) && !(statuses[0] == 409 && statuses[1] == 200) {
		t.Fatalf("statuses = %v, want exactly one 200 and one 409", statuses)
	}
	var n int64
	h.app.DB.Model(&model.Review{}).Where("record_id = ?", rec.ID).Count(&n)
	if n != 1 {
		t.Fatalf("%d decisions stored, want 1", n)
	}
	// Stale version, and a decided record.
	other := f.record(t, rvRecOpt{})
	h.expect(decide(h, chengnan, other.ID, approve(2)), 409, "VERSION_CONFLICT")
	h.expect(decide(h, chengnan, rec.ID, approve(1)), 409, "DECISION_CONFLICT")
}

func TestReviewReasonsAndNotification(t *testing.T) {
	h := newHarness(t, nil)
	f := newReviewFixture(t, h, 1, 10)
	rec := f.record(t, rvRecOpt{title: "青社社区助浴"})
	chengnan := h.token("reviewer-chengnan")

	r := h.do("GET", "/api/v1/review/reasons", chengnan, nil)
	h.expect(r, 200, "")
	if len(r.items()) < 5 {
		t.Fatalf("reasons = %s", r.Raw)
	}
	ret := func(body map[string]any) resp {
		body["decision"], body["expected_version"] = "return", 1
		return decide(h, chengnan, rec.ID, body)
	}
	h.expect(ret(map[string]any{"comment": "补拍"}), 400, "REASON_REQUIRED")
	h.expect(ret(map[string]any{"reason_code": "EVIDENCE_INSUFFICIENT"}), 400, "COMMENT_REQUIRED")
	h.expect(ret(map[string]any{"reason_code": "EVIDENCE_INSUFFICIENT", "comment": "   "}), 400, "COMMENT_REQUIRED")
	h.expect(ret(map[string]any{"reason_code": "NO_SUCH_CODE", "comment": "补拍"}), 400, "UNKNOWN_REASON_CODE")
	h.expect(ret(map[string]any{"reason_code": "DUPLICATE_EVIDENCE", "comment": "补拍"}), 400, "UNKNOWN_REASON_CODE") // reject only
	h.expect(decide(h, chengnan, rec.ID, map[string]any{"decision": "maybe", "expected_version": 1}), 400, "UNKNOWN_ENUM_VALUE")

	r = ret(map[string]any{"reason_code": "EVIDENCE_INSUFFICIENT", "comment": "请补拍助浴前后照片"})
	h.expect(r, 200, "")
	row := recordRow(t, h, rec.ID)
	if row.Status != model.RecordReturned || row.DecidedAt == nil || row.DueAt != nil {
		t.Fatalf("returned record = %+v", row)
	}
	// The worker's subscribe message is in the outbox, in the same commit.
	var payloads []string
	h.app.DB.Model(&model.OutboxMessage{}).Where("kind = ?", service.KindSubscribe).Pluck("payload", &payloads)
	if len(payloads) != 1 || !strings.Contains(payloads[0], f.worker) || !strings.Contains(payloads[0], "退回修改") ||
		!strings.Contains(payloads[0], "请补拍助浴前后照片") {
		t.Fatalf("outbox = %v", payloads)
	}
	var audits int64
	h.app.DB.Model(&model.AuditEvent{}).Where("action = ? AND object_id = ?", "review.return", rec.ID).Count(&audits)
	if audits != 1 {
		t.Fatalf("audit rows for the return = %d", audits)
	}
}

func TestReviewTwoLevelsAndPayable(t *testing.T) {
	h := newHarness(t, nil)
	chengnan := h.token("reviewer-chengnan")
	bureau := h.token("bureau-reviewer")

	// An item reviewed twice: station, then bureau.
	two := newReviewFixture(t, h, 2, 5)
	rec := two.record(t, rvRecOpt{})
	r := decide(h, chengnan, rec.ID, approve(1))
	h.expect(r, 200, "")
	if r.Body["next_level"] != float64(2) || recordRow(t, h, rec.ID).Status != model.RecordLevel1OK {
		t.Fatalf("level 1 approval = %s", r.Raw)
	}
	h.expect(decide(h, chengnan, rec.ID, approve(1)), 403, "REVIEW_LEVEL_FORBIDDEN")
	r = h.do("POST", "/api/v1/review/claim", bureau, map[string]any{"level": 2})
	if claimed(r) != rec.ID {
		t.Fatalf("bureau claim = %s", r.Raw)
	}
	h.expect(decide(h, bureau, rec.ID, approve(1)), 200, "")
	if row := recordRow(t, h, rec.ID); row.Status != model.RecordApproved || !row.Payable {
		t.Fatalf("after level 2 = %+v", row)
	}
	var levels []int
	h.app.DB.Model(&model.Review{}).Where("record_id = ?", rec.ID).Order("level").Pluck("level", &levels)
	if fmt.Sprint(levels) != "[1 2]" {
		t.Fatalf("review levels = %v", levels)
	}

	// One unit left on a one-level order: the second approval is past it.
	one := newReviewFixture(t, h, 1, 1)
	a, b := one.record(t, rvRecOpt{ago: 2 * time.Minute}), one.record(t, rvRecOpt{ago: time.Minute})
	h.expect(decide(h, chengnan, a.ID, approve(1)), 200, "")
	r = decide(h, chengnan, b.ID, approve(1))
	h.expect(r, 200, "")
	rec2, _ := r.Body["record"].(map[string]any)
	if rec2["status"] != "approved" || rec2["payable"] != false {
		t.Fatalf("approval past quantity = %s", r.Raw)
	}
	var used int
	h.app.DB.Raw("SELECT used_count FROM orders WHERE id = ?", one.order).Scan(&used)
	if used != 2 || !recordRow(t, h, a.ID).Payable || recordRow(t, h, b.ID).Payable {
		t.Fatalf("used=%d a.payable=%v b.payable=%v", used, recordRow(t, h, a.ID).Payable, recordRow(t, h, b.ID).Payable)
	}
	// The bureau raises the quantity through the orders API: the held
	// record becomes payable in the same transaction.
	h.expect(h.do("PATCH", "/api/v1/admin/orders/"+one.order, h.token("admin"), map[string]any{"quantity": 2}), 200, "")
	if !recordRow(t, h, b.ID).Payable {
		t.Fatal("raising the order quantity did not make the held record payable")
	}
	// Recomputing again changes nothing.
	if n, err := reviewService(t, h).RecomputePayable(context.Background(), one.order); err != nil || n != 0 {
		t.Fatalf("second recompute: changed=%d err=%v", n, err)
	}
}

// reviewService builds a second review service on the harness's backends
// (for use cases other slices call, such as RecomputePayable).
func reviewService(t *testing.T, h *harness) *service.Review {
	t.Helper()
	keys, err := pii.NewKeys(h.app.Cfg.PIIEncKey, h.app.Cfg.PIIIndexKey)
	if err != nil {
		t.Fatal(err)
	}
	return service.NewReview(service.ReviewConfig{Tx: h.app.Store, Records: repository.NewRecords(h.app.Store),
		Reviews: repository.NewReviews(h.app.Store), Queue: repository.NewReviewQueue(h.app.Redis, h.app.Cfg.RedisPrefix, 5),
		Orders: repository.NewOrders(h.app.Store), Regions: h.app.Regions, Orgs: h.app.Orgs, Users: h.app.Users, Cipher: keys,
		Media: h.app.Media, Audit: h.app.Auditor, Notify: h.app.Notify, Now: h.app.Now})
}

func TestReviewBulkApproveSkipsFlagged(t *testing.T) {
	h := newHarness(t, nil)
	f := newReviewFixture(t, h, 1, 10)
	c1, c2 := f.record(t, rvRecOpt{}), f.record(t, rvRecOpt{})
	flagged := f.record(t, rvRecOpt{flags: []string{"NO_EXIF"}})
	r := h.do("POST", "/api/v1/review/bulk-approve", h.token("reviewer-chengnan"), map[string]any{"items": []map[string]any{
		{"record_id": c1.ID, "expected_version": 1}, {"record_id": c2.ID, "expected_version": 1},
		{"record_id": flagged.ID, "expected_version": 1}, {"record_id": ids.New(), "expected_version": 1},
	}})
	h.expect(r, 200, "")
	approved, _ := r.Body["approved"].([]any)
	skipped, _ := r.Body["skipped"].([]any)
	if len(approved) != 2 || len(skipped) != 2 {
		t.Fatalf("bulk = %s", r.Raw)
	}
	codes := map[string]string{}
	for _, s := range skipped {
		m := s.(map[string]any)
		codes[m["record_id"].(string)] = m["code"].(string)
	}
	if codes[flagged.ID] != "RECORD_FLAGGED" {
		t.Fatalf("flagged record skipped with %q", codes[flagged.ID])
	}
	if recordRow(t, h, flagged.ID).Status != model.RecordSubmitted || recordRow(t, h, c1.ID).Status != model.RecordApproved {
		t.Fatal("bulk approval touched the wrong records")
	}
}

func TestReviewQueueSurvivesRedisFlush(t *testing.T) {
	h := newHarness(t, nil)
	f := newReviewFixture(t, h, 1, 10)
	rec := f.record(t, rvRecOpt{})
	h.runJob(t, "review-reconcile")
	if row := recordRow(t, h, rec.ID); row.DueAt == nil || !row.DueAt.Equal(service.DueDate(*row.SubmittedAt)) || row.ReviewLevel != 1 {
		t.Fatalf("reconcile did not set the due date / level: %+v", row)
	}
	// Lose every key of this test (a flush or a restart of the embedded
	// server); the database still knows the record is pending.
	ctx := context.Background()
	keys, err := h.app.Redis.Keys(ctx, h.app.Cfg.RedisPrefix+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys = %v %v", keys, err)
	}
	h.app.Redis.Del(ctx, keys...)
	if r := h.do("POST", "/api/v1/review/claim", h.token("reviewer-chengnan"), map[string]any{"level": 1}); claimed(r) != rec.ID {
		t.Fatalf("claim after flush = %s", r.Raw)
	}
}

func TestReviewOverdueEscalationAndStats(t *testing.T) {
	h := newHarness(t, nil)
	f := newReviewFixture(t, h, 1, 10)
	late := f.record(t, rvRecOpt{ago: 20 * 24 * time.Hour})
	fresh := f.record(t, rvRecOpt{})
	bureau := h.token("bureau-reviewer")
	h.expect(decide(h, bureau, late.ID, approve(1)), 403, "REVIEW_LEVEL_FORBIDDEN") // still the station's
	h.runJob(t, "review-reconcile")
	h.runJob(t, "review-escalate")
	if row := recordRow(t, h, late.ID); row.EscalatedAt == nil {
		t.Fatal("overdue record not escalated")
	}
	if row := recordRow(t, h, fresh.ID); row.EscalatedAt != nil {
		t.Fatal("fresh record escalated")
	}
	r := h.do("GET", "/api/v1/review/overdue", bureau, nil)
	h.expect(r, 200, "")
	if items := r.items(); len(items) != 1 || items[0]["id"] != late.ID || items[0]["escalated_at"] == nil {
		t.Fatalf("overdue = %s", r.Raw)
	}
	var audits int64
	h.app.DB.Model(&model.AuditEvent{}).Where("action = ? AND object_id = ?", "review.escalate", late.ID).Count(&audits)
	if audits != 1 {
		t.Fatalf("escalation audit rows = %d", audits)
	}
	// Once escalated, the bureau may decide it.
	h.expect(decide(h, bureau, late.ID, approve(1)), 200, "")

	// Median time to decision: 60 s, 120 s and 600 s from claim.
	var reviewerID string
	h.app.DB.Raw("SELECT id FROM users WHERE open_id = ?", wechat.DevOpenID("reviewer-chengnan")).Scan(&reviewerID)
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	for _, secs := range []int{60, 600, 120} {
		claim := base
		if err := h.app.DB.Create(&model.Review{ID: ids.New(), RecordID: fresh.ID, Version: 1, Level: 1, ReviewerID: reviewerID,
			Decision: model.DecisionApprove, ClaimedAt: &claim, CreatedAt: base.Add(time.Duration(secs) * time.Second)}).Error; err != nil {
			t.Fatal(err)
		}
	}
	r = h.do("GET", "/api/v1/review/stats", h.token("admin"), nil)
	h.expect(r, 200, "")
	reviewers, _ := r.Body["reviewers"].([]any)
	found := false
	for _, x := range reviewers {
		m := x.(map[string]any)
		if m["reviewer_id"] == reviewerID {
			found = true
			if m["decisions"] != float64(3) || m["median_seconds"] != float64(120) || m["name"] != "城南街道社工站" {
				t.Fatalf("stats row = %v", m)
			}
		}
	}
	if !found || r.Body["escalated"] != float64(1) {
		t.Fatalf("stats = %s", r.Raw)
	}
	h.expect(h.do("GET", "/api/v1/review/stats?from=2020-01-01&to=2026-01-01", bureau, nil), 400, "INVALID_RANGE")
}

func TestReviewDetailShowsEvidenceVersionsAndMaskedPeople(t *testing.T) {
	h := newHarness(t, nil)
	f := newReviewFixture(t, h, 1, 10)
	rec := f.record(t, rvRecOpt{title: "助浴（第二次提交）"})
	db := h.app.DB
	// Version 2 changed the title and the venue.
	db.Exec("UPDATE session_records SET version = 2 WHERE id = ?", rec.ID)
	f.snapshot(t, rec, 2, map[string]any{"title": "助浴（第二次提交）", "venue": map[string]any{"name": "王奶奶家"}})
	// An earlier record's photo, and this record's near-duplicate of it.
	earlierRec := f.record(t, rvRecOpt{ago: 30 * 24 * time.Hour})
	old := model.Upload{ID: ids.New(), UploaderID: f.worker, OrgID: f.org, RecordID: &earlierRec.ID, Kind: model.KindImage,
		ContentType: "image/jpeg", StorageKey: "evidence/old.jpg", ThumbKey: "evidence/old-thumb.jpg", Status: model.UploadReady}
	mine := model.Upload{ID: ids.New(), UploaderID: f.worker, OrgID: f.org, RecordID: &rec.ID, Kind: model.KindImage,
		ContentType: "image/jpeg", StorageKey: "evidence/new.jpg", DisplayKey: "evidence/new-display.jpg", ThumbKey: "evidence/new-thumb.jpg",
		Status: model.UploadReady, SHA256: strings.Repeat("a", 64)}
	for _, u := range []*model.Upload{&old, &mine} {
		if err := db.Create(u).Error; err != nil {
			t.Fatal(err)
		}
	}
	ev := fmt.Sprintf(`{"upload_id":%q,"matched_upload_id":%q,"matched_record_id":%q,"distance":3}`, mine.ID, old.ID, earlierRec.ID)
	db.Create(&model.RiskFlag{ID: ids.New(), RecordID: rec.ID, Version: 2, Code: "NEAR_DUPLICATE", Severity: model.SeverityWarn, Evidence: ev})
	var benID string
	db.Raw("SELECT id FROM beneficiaries ORDER BY id LIMIT 1").Scan(&benID)
	db.Create(&model.RecordBeneficiary{RecordID: rec.ID, BeneficiaryID: benID})

	r := h.do("GET", "/api/v1/review/records/"+rec.ID, h.token("reviewer-chengnan"), nil)
	h.expect(r, 200, "")
	media, _ := r.Body["media"].([]any)
	if len(media) != 1 {
		t.Fatalf("media = %s", r.Raw)
	}
	m := media[0].(map[string]any)
	if !strings.Contains(m["display_url"].(string), "new-display") || !strings.Contains(m["original_url"].(string), "new.jpg") {
		t.Fatalf("media urls = %v", m)
	}
	flags, _ := r.Body["risk_flags"].([]any)
	if len(flags) != 1 {
		t.Fatalf("flags = %s", r.Raw)
	}
	fl := flags[0].(map[string]any)
	if !strings.Contains(fl["matched_thumb_url"].(string), "old-thumb") || !strings.Contains(fl["upload_thumb_url"].(string), "new-thumb") ||
		fl["matched_record_id"] != earlierRec.ID {
		t.Fatalf("near-duplicate side by side = %v", fl)
	}
	versions, _ := r.Body["versions"].([]any)
	if len(versions) != 2 {
		t.Fatalf("versions = %s", r.Raw)
	}
	changes := fmt.Sprint(versions[1].(map[string]any)["changes"])
	if !strings.Contains(changes, "venue.name") || !strings.Contains(changes, "王奶奶家") {
		t.Fatalf("diff v1→v2 = %s", changes)
	}
	bens, _ := r.Body["beneficiaries"].([]any)
	if len(bens) != 1 {
		t.Fatalf("beneficiaries = %s", r.Raw)
	}
	b := bens[0].(map[string]any)
	if !strings.Contains(b["name"].(string), "*") || !strings.Contains(b["id_number"].(string), "*") ||
		strings.Contains(string(r.Raw), "演示") {
		t.Fatalf("beneficiary not masked: %v", b)
	}
	if r.Body["can_decide"] != true {
		t.Fatalf("can_decide = %v", r.Body["can_decide"])
	}
	// After a return, the decision shows in the history.
	h.expect(decide(h, h.token("reviewer-chengnan"), rec.ID, map[string]any{"decision": "return", "reason_code": "OTHER",
		"comment": "请说明照片来源", "expected_version": 2}), 200, "")
	r = h.do("GET", "/api/v1/review/records/"+rec.ID, h.token("bureau-reviewer"), nil)
	decisions, _ := r.Body["decisions"].([]any)
	if len(decisions) != 1 || decisions[0].(map[string]any)["reason_label"] == "" {
		t.Fatalf("decisions = %s", r.Raw)
	}
}
