package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"qjmz/model"
	"qjmz/pkg/ids"
	"qjmz/pkg/pii"
)

// recordFixture is an order of 黔江好心情 for 城南街道 with its own catalogue
// entry (household cap 1,000 yuan at 500 yuan a session) and one
// beneficiary of 青社社区, created straight in the database so these tests
// do not depend on the catalogue slice's demo data.
type recordFixture struct {
	h                   *harness
	worker, workerID    string
	orgID, townID       string
	qingshe, shuijingwa string
	order               model.Order
	item                model.ServiceItem
	benID               string
	now                 time.Time
}

func newRecordFixture(t *testing.T) *recordFixture {
	t.Helper()
	h := newHarness(t, nil)
	f := &recordFixture{h: h, worker: h.token("worker-haoxinqing"), orgID: h.orgID("黔江好心情公益服务中心"),
		townID: h.regionID("城南街道"), qingshe: h.regionID("青社社区"), shuijingwa: h.regionID("水井湾社区"), now: time.Now()}
	h.app.DB.Raw("SELECT id FROM users WHERE open_id = 'dev_worker-haoxinqing'").Scan(&f.workerID)
	f.item = model.ServiceItem{ID: ids.New(), Code: "T_REC_" + ids.New()[20:], Name: "测试适老化改造", Category: "为老服务",
		UnitPriceFen: 50000, MinPhotos: 2, MinParticipants: 1, MinDurationMinutes: 45, CapScope: model.CapHousehold, CapFen: 100000,
		Visibility: model.VisibilityPublic, ReviewLevels: 1, Active: true}
	f.order = model.Order{ID: ids.New(), OrgID: f.orgID, ItemID: f.item.ID, RegionID: f.townID,
		PeriodStart: f.now.AddDate(0, 0, -30).UTC().Truncate(time.Second), PeriodEnd: f.now.AddDate(0, 0, 30).UTC().Truncate(time.Second),
		Quantity: 10, UnitPriceFen: 50000, BudgetFen: 500000, Status: model.OrderOpen, CreatedBy: f.workerID}
	keys, err := pii.NewKeys(h.app.Cfg.PIIEncKey, h.app.Cfg.PIIIndexKey)
	if err != nil {
		t.Fatal(err)
	}
	idn := "50011419460101" + ids.New()[22:] // unique per test; never decoded as a real number
	b := model.Beneficiary{ID: ids.New(), IDIndex: keys.BlindIndex("beneficiaries.id_number", idn), Household: "QS-T-0101",
		CommunityID: f.qingshe, BirthDate: time.Date(1946, 1, 1, 0, 0, 0, 0, time.UTC), CreatedBy: f.workerID}
	b.NameEnc, _ = keys.Encrypt("张小三", "beneficiaries.name")
	b.IDNumberEnc, _ = keys.Encrypt("500114194601011234", "beneficiaries.id_number")
	b.PhoneEnc, _ = keys.Encrypt("13800001234", "beneficiaries.phone")
	for _, row := range []any{&f.item, &f.order, &b} {
		if err := h.app.DB.Create(row).Error; err != nil {
			t.Fatal(err)
		}
	}
	f.benID = b.ID
	return f
}

// draft creates a record of the fixture's order starting hoursAgo hours ago.
func (f *recordFixture) draft(t *testing.T, hoursAgo float64, title string) map[string]any {
	t.Helper()
	start := f.now.Add(-time.Duration(hoursAgo * float64(time.Hour)))
	r := f.h.do("POST", "/api/v1/records", f.worker, map[string]any{
		"order_id": f.order.ID, "community_id": f.qingshe, "venue_name": "青社社区活动室", "venue_lat": 29.5186, "venue_lng": 108.7703,
		"start_at": start.Format(time.RFC3339), "end_at": start.Add(time.Hour).Format(time.RFC3339), "title": title,
		"description": "上门评估并安装扶手", "participant_count": 2, "beneficiary_ids": []string{f.benID}})
	f.h.expect(r, 201, "")
	return r.Body
}

// photo stores a ready image of the record as the uploads slice would.
func (f *recordFixture) photo(t *testing.T, recordID string, edit func(u *model.Upload)) model.Upload {
	t.Helper()
	var rec model.SessionRecord
	if err := f.h.app.DB.Where("id = ?", recordID).Take(&rec).Error; err != nil {
		t.Fatal(err)
	}
	id := ids.New()
	sum := sha256.Sum256([]byte(id))
	capture := rec.StartAt.Add(10 * time.Minute)
	lat, lng := 29.5186, 108.7703
	done := f.now
	u := model.Upload{ID: id, UploaderID: f.workerID, OrgID: f.orgID, RecordID: &recordID, Kind: model.KindImage,
		ContentType: "image/jpeg", DeclaredSize: 2048, StorageKey: "test/" + id, Status: model.UploadReady,
		ExpiresAt: f.now.Add(time.Hour), CompletedAt: &done, Size: 2048, SHA256: hex.EncodeToString(sum[:]),
		// Unrelated photos: four independent random 64-bit hashes.
		PHash: int64(binary.BigEndian.Uint64(sum[0:])), DHash: int64(binary.BigEndian.Uint64(sum[8:])),
		TopPHash: int64(binary.BigEndian.Uint64(sum[16:])), TopDHash: int64(binary.BigEndian.Uint64(sum[24:])), Width: 1280, Height: 960,
		HasEXIF: true, CaptureTime: &capture, CaptureOffset: true, FileLat: &lat, FileLng: &lng}
	if edit != nil {
		edit(&u)
	}
	if err := f.h.app.DB.Create(&u).Error; err != nil {
		t.Fatal(err)
	}
	return u
}

func recFlagCodes(body map[string]any) []string {
	var out []string
	raw, _ := body["flags"].([]any)
	if d, ok := body["details"].(map[string]any); ok {
		raw, _ = d["flags"].([]any)
	}
	for _, x := range raw {
		out = append(out, x.(map[string]any)["code"].(string))
	}
	slices.Sort(out)
	return out
}

func recFlagEvidence(body map[string]any, code string) map[string]any {
	raw, _ := body["flags"].([]any)
	if d, ok := body["details"].(map[string]any); ok {
		raw, _ = d["flags"].([]any)
	}
	for _, x := range raw {
		if m := x.(map[string]any); m["code"] == code {
			ev, _ := m["evidence"].(map[string]any)
			return ev
		}
	}
	return nil
}

func TestRecordDraftSubmitAndVersions(t *testing.T) {
	f := newRecordFixture(t)
	h := f.h
	zhishan := h.token("worker-zhishan")
	chengnan := h.token("reviewer-chengnan")
	chengxi := h.token("reviewer-chengxi")

	rec := f.draft(t, 3, "为张大爷家安装扶手")
	id := rec["id"].(string)
	path := "/api/v1/records/" + id

	t.Run("draft carries the order's town and item, beneficiaries masked", func(t *testing.T) {
		if rec["status"] != "draft" || rec["version"].(float64) != 1 {
			t.Fatalf("new record: %v", rec)
		}
		if rec["town"].(map[string]any)["id"] != f.townID || rec["item"].(map[string]any)["id"] != f.item.ID ||
			rec["organization_id"] != f.orgID || rec["worker_id"] != f.workerID {
			t.Fatalf("copied from the order: %v", rec)
		}
		b := rec["beneficiaries"].([]any)[0].(map[string]any)
		if b["name"] != "张*三" || b["id_number"] != "5001**********1234" || b["phone"] != "138****1234" {
			t.Fatalf("beneficiary not masked: %v", b)
		}
		if s := rec["start_at"].(string); s[len(s)-6:] != "+08:00" {
			t.Fatalf("time not in +08:00: %s", s)
		}
	})

	t.Run("create refuses what the order does not cover", func(t *testing.T) {
		start := f.now.Add(-3 * time.Hour)
		base := func() map[string]any {
			return map[string]any{"order_id": f.order.ID, "community_id": f.qingshe, "title": "x",
				"start_at": start.Format(time.RFC3339), "end_at": start.Add(time.Hour).Format(time.RFC3339)}
		}
		tests := []struct {
			name   string
			token  string
			edit   func(m map[string]any)
			status int
			code   string
		}{
			{"another organization's order", zhishan, func(map[string]any) {}, 404, "NOT_FOUND"},
			{"unknown order", f.worker, func(m map[string]any) { m["order_id"] = ids.New() }, 404, "NOT_FOUND"},
			{"community in another town", f.worker, func(m map[string]any) { m["community_id"] = f.shuijingwa }, 400, "COMMUNITY_OUTSIDE_ORDER"},
			{"before the order period", f.worker, func(m map[string]any) {
				s := f.order.PeriodStart.Add(-2 * time.Hour)
				m["start_at"], m["end_at"] = s.Format(time.RFC3339), s.Add(time.Hour).Format(time.RFC3339)
			}, 400, "OUTSIDE_ORDER_PERIOD"},
			{"in the future", f.worker, func(m map[string]any) {
				s := f.now.Add(2 * time.Hour)
				m["start_at"], m["end_at"] = s.Format(time.RFC3339), s.Add(time.Hour).Format(time.RFC3339)
			}, 400, "SESSION_IN_FUTURE"},
			{"end before start", f.worker, func(m map[string]any) { m["end_at"] = start.Add(-time.Minute).Format(time.RFC3339) }, 400, "VALIDATION_FAILED"},
			{"unknown beneficiary", f.worker, func(m map[string]any) { m["beneficiary_ids"] = []string{ids.New()} }, 400, "BENEFICIARY_INVALID"},
			{"reviewer cannot draft", chengnan, func(map[string]any) {}, 403, "FORBIDDEN_ROLE"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				m := base()
				tc.edit(m)
				h.expect(h.do("POST", "/api/v1/records", tc.token, m), tc.status, tc.code)
			})
		}
	})

	t.Run("worker edits the draft", func(t *testing.T) {
		r := h.do("PATCH", path, f.worker, map[string]any{"title": "为张大爷家安装扶手和防滑垫", "participant_count": 3})
		h.expect(r, 200, "")
		if r.str("title") != "为张大爷家安装扶手和防滑垫" || r.Body["participant_count"].(float64) != 3 || r.Body["venue"].(map[string]any)["name"] != "青社社区活动室" {
			t.Fatalf("edit not saved: %s", r.Raw)
		}
		h.expect(h.do("PATCH", path, f.worker, map[string]any{"order_id": ids.New()}), 400, "VALIDATION_FAILED")
	})

	t.Run("drafts are hidden from reviewers and other organizations", func(t *testing.T) {
		h.expect(h.do("GET", path, chengnan, nil), 404, "NOT_FOUND")
		h.expect(h.do("GET", path, zhishan, nil), 404, "NOT_FOUND")
		h.expect(h.do("PATCH", path, zhishan, map[string]any{"title": "改"}), 404, "NOT_FOUND")
		h.expect(h.do("POST", path+"/submit", zhishan, map[string]any{"expected_version": 1}), 404, "NOT_FOUND")
	})

	t.Run("submit without photos is blocked and changes nothing", func(t *testing.T) {
		r := h.do("POST", path+"/submit", f.worker, map[string]any{"expected_version": 1})
		h.expect(r, 422, "RECORD_BLOCKED")
		if got := recFlagCodes(r.Body); !slices.Equal(got, []string{"EVIDENCE_MIN_PHOTOS"}) {
			t.Fatalf("flags %v, want [EVIDENCE_MIN_PHOTOS]: %s", got, r.Raw)
		}
		if ev := recFlagEvidence(r.Body, "EVIDENCE_MIN_PHOTOS"); ev["required"].(float64) != 2 || ev["ready_photos"].(float64) != 0 {
			t.Fatalf("evidence %v", ev)
		}
		g := h.do("GET", path, f.worker, nil)
		if g.str("status") != "draft" || len(g.Body["flags"].([]any)) != 0 {
			t.Fatalf("blocked submit changed the record: %s", g.Raw)
		}
	})

	// One photo on the spot without EXIF, one whose GPS is 3 km away.
	f.photo(t, id, func(u *model.Upload) { u.HasEXIF, u.CaptureTime = false, nil })
	far := f.photo(t, id, func(u *model.Upload) { lat := 29.5455; u.FileLat = &lat })

	t.Run("stale version is a conflict", func(t *testing.T) {
		h.expect(h.do("POST", path+"/submit", f.worker, map[string]any{"expected_version": 2}), 409, "VERSION_CONFLICT")
		h.expect(h.do("POST", path+"/submit", f.worker, map[string]any{}), 400, "VALIDATION_FAILED")
	})

	t.Run("submit passes with warn flags stored for the reviewer", func(t *testing.T) {
		r := h.do("POST", path+"/submit", f.worker, map[string]any{"expected_version": 1})
		h.expect(r, 200, "")
		if r.str("status") != "submitted" || r.Body["version"].(float64) != 1 || r.str("risk_level") != "warn" || r.Body["submitted_at"] == nil {
			t.Fatalf("submitted record: %s", r.Raw)
		}
		if got := recFlagCodes(r.Body); !slices.Equal(got, []string{"NO_EXIF", "OUTSIDE_GEOFENCE"}) {
			t.Fatalf("flags %v: %s", got, r.Raw)
		}
		ev := recFlagEvidence(r.Body, "OUTSIDE_GEOFENCE")
		if ev["upload_id"] != far.ID || ev["source"] != "file_gps" || ev["outside_m"].(float64) < 2000 {
			t.Fatalf("geofence evidence %v", ev)
		}
		if len(r.Body["media"].([]any)) != 2 {
			t.Fatalf("media not listed: %s", r.Raw)
		}
	})

	t.Run("submitted record cannot be edited or submitted again", func(t *testing.T) {
		h.expect(h.do("PATCH", path, f.worker, map[string]any{"title": "改"}), 409, "RECORD_NOT_EDITABLE")
		h.expect(h.do("POST", path+"/submit", f.worker, map[string]any{"expected_version": 1}), 409, "RECORD_NOT_EDITABLE")
	})

	t.Run("reviewers in scope read it; others get 404", func(t *testing.T) {
		r := h.do("GET", path, chengnan, nil)
		h.expect(r, 200, "")
		if got := recFlagCodes(r.Body); len(got) != 2 {
			t.Fatalf("reviewer does not see the flags: %s", r.Raw)
		}
		h.expect(h.do("GET", path, chengxi, nil), 404, "NOT_FOUND")
		h.expect(h.do("GET", path, zhishan, nil), 404, "NOT_FOUND")
		h.expect(h.do("GET", path+"/versions", zhishan, nil), 404, "NOT_FOUND")
		h.expect(h.do("PATCH", path, chengnan, map[string]any{"title": "改"}), 403, "FORBIDDEN_ROLE")
	})

	t.Run("organization lists its records, others do not see them", func(t *testing.T) {
		r := h.do("GET", "/api/v1/records?status=submitted", f.worker, nil)
		h.expect(r, 200, "")
		if items := r.items(); len(items) != 1 || items[0]["id"] != id {
			t.Fatalf("list: %s", r.Raw)
		}
		if items := h.do("GET", "/api/v1/records", zhishan, nil).items(); len(items) != 0 {
			t.Fatalf("another organization sees %d records", len(items))
		}
		h.expect(h.do("GET", "/api/v1/records?status=bogus", f.worker, nil), 400, "UNKNOWN_ENUM_VALUE")
		h.expect(h.do("GET", "/api/v1/records?limit=500", f.worker, nil), 400, "LIMIT_OUT_OF_RANGE")
	})

	t.Run("returned record is fixed and resubmitted as version 2", func(t *testing.T) {
		// The review slice returns records; here the row is moved directly.
		if err := h.app.DB.Model(&model.SessionRecord{}).Where("id = ?", id).Update("status", model.RecordReturned).Error; err != nil {
			t.Fatal(err)
		}
		h.expect(h.do("PATCH", path, f.worker, map[string]any{"title": "补充说明后重新提交"}), 200, "")
		r := h.do("POST", path+"/submit", f.worker, map[string]any{"expected_version": 1})
		h.expect(r, 200, "")
		if r.Body["version"].(float64) != 2 || r.str("status") != "submitted" {
			t.Fatalf("resubmitted: %s", r.Raw)
		}
		v := h.do("GET", path+"/versions", chengnan, nil)
		h.expect(v, 200, "")
		items := v.items()
		if len(items) != 2 {
			t.Fatalf("versions: %s", v.Raw)
		}
		var s1, s2 map[string]any
		_ = json.Unmarshal(recMustJSON(items[0]["snapshot"]), &s1)
		_ = json.Unmarshal(recMustJSON(items[1]["snapshot"]), &s2)
		if s1["title"] != "为张大爷家安装扶手和防滑垫" || s2["title"] != "补充说明后重新提交" || items[1]["version"].(float64) != 2 {
			t.Fatalf("snapshots do not keep each version: %v / %v", s1["title"], s2["title"])
		}
		if media := s2["media"].([]any); len(media) != 2 || media[0].(map[string]any)["sha256"] == "" {
			t.Fatalf("snapshot media: %v", s2["media"])
		}
		if len(items[0]["flags"].([]any)) != 2 || len(items[1]["flags"].([]any)) != 2 {
			t.Fatalf("each version keeps its flags: %s", v.Raw)
		}
		h.expect(h.do("GET", path+"/versions", f.worker, nil), 200, "")
	})
}

func recMustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func TestRecordPlatformWideChecks(t *testing.T) {
	f := newRecordFixture(t)
	h := f.h

	first := f.draft(t, 6, "第一次上门")["id"].(string)
	earlier := f.photo(t, first, nil)
	f.photo(t, first, nil)
	h.expect(h.do("POST", "/api/v1/records/"+first+"/submit", f.worker, map[string]any{"expected_version": 1}), 200, "")

	second := f.draft(t, 3, "第二次上门")["id"].(string)
	f.photo(t, second, nil)
	dup := f.photo(t, second, func(u *model.Upload) { u.SHA256 = earlier.SHA256 })

	t.Run("the same file in another record blocks", func(t *testing.T) {
		r := h.do("POST", "/api/v1/records/"+second+"/submit", f.worker, map[string]any{"expected_version": 1})
		h.expect(r, 422, "RECORD_BLOCKED")
		ev := recFlagEvidence(r.Body, "EXACT_DUPLICATE")
		if ev == nil || ev["upload_id"] != dup.ID || ev["matched_upload_id"] != earlier.ID || ev["matched_record_id"] != first {
			t.Fatalf("exact duplicate evidence %v: %s", ev, r.Raw)
		}
		if slices.Contains(recFlagCodes(r.Body), "NEAR_DUPLICATE") {
			t.Fatalf("an exact copy is reported twice: %v", recFlagCodes(r.Body))
		}
	})

	t.Run("a re-encoded copy warns with the earlier photo", func(t *testing.T) {
		// Replace the copy with a look-alike: different bytes, hashes a few
		// bits away from the earlier photo.
		h.app.DB.Model(&model.Upload{}).Where("id = ?", dup.ID).Update("status", model.UploadRejected)
		near := f.photo(t, second, func(u *model.Upload) {
			// Whole frame 3+3 bits off, top region 1 bit: distance 1.
			u.PHash, u.DHash, u.TopPHash, u.TopDHash = earlier.PHash^0b1011, earlier.DHash^0b111, earlier.TopPHash^0b1, earlier.TopDHash
		})
		r := h.do("POST", "/api/v1/records/"+second+"/submit", f.worker, map[string]any{"expected_version": 1})
		h.expect(r, 200, "")
		codes := recFlagCodes(r.Body)
		if !slices.Contains(codes, "NEAR_DUPLICATE") {
			t.Fatalf("flags %v: %s", codes, r.Raw)
		}
		// Both sessions served the same person; whether that was the same
		// Beijing day depends on when the test runs.
		if sameDay := recSameBeijingDay(f.now.Add(-6*time.Hour), f.now.Add(-3*time.Hour)); slices.Contains(codes, "BENEFICIARY_SAME_DAY") != sameDay {
			t.Fatalf("BENEFICIARY_SAME_DAY raised = %v, same day = %v", !sameDay, sameDay)
		}
		ev := recFlagEvidence(r.Body, "NEAR_DUPLICATE")
		if ev["upload_id"] != near.ID || ev["matched_upload_id"] != earlier.ID || ev["matched_record_id"] != first || ev["distance"].(float64) != 1 {
			t.Fatalf("near duplicate evidence %v", ev)
		}
	})

	t.Run("a third session for the household passes the cap and blocks", func(t *testing.T) {
		third := f.draft(t, 1.5, "第三次上门")["id"].(string)
		f.photo(t, third, nil)
		f.photo(t, third, nil)
		r := h.do("POST", "/api/v1/records/"+third+"/submit", f.worker, map[string]any{"expected_version": 1})
		h.expect(r, 422, "RECORD_BLOCKED")
		ev := recFlagEvidence(r.Body, "HOUSEHOLD_CAP_EXCEEDED")
		if ev == nil || ev["household"] != "QS-T-0101" || ev["spent_fen"].(float64) != 100000 || ev["cap_fen"].(float64) != 100000 {
			t.Fatalf("cap evidence %v: %s", ev, r.Raw)
		}
	})
}

func recSameBeijingDay(a, b time.Time) bool {
	tz := time.FixedZone("CST", 8*3600)
	return a.In(tz).Format(time.DateOnly) == b.In(tz).Format(time.DateOnly)
}

// TestRecordCapHoldsUnderConcurrentSubmits: the household may have two
// sessions of the capped item (2 × 500 yuan = the 1,000 yuan cap); three
// submitted at the same instant must not all pass.
func TestRecordCapHoldsUnderConcurrentSubmits(t *testing.T) {
	f := newRecordFixture(t)
	h := f.h
	var recs []string
	for i := range 3 {
		id := f.draft(t, 8-2*float64(i), fmt.Sprintf("并发上门%d", i))["id"].(string)
		f.photo(t, id, nil)
		f.photo(t, id, nil)
		recs = append(recs, id)
	}
	statuses := make(chan int, len(recs))
	var wg sync.WaitGroup
	for _, id := range recs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- h.do("POST", "/api/v1/records/"+id+"/submit", f.worker, map[string]any{"expected_version": 1}).Status
		}()
	}
	wg.Wait()
	close(statuses)
	ok, blocked := 0, 0
	for st := range statuses {
		switch st {
		case 200:
			ok++
		case 422:
			blocked++
		default:
			t.Fatalf("unexpected status %d", st)
		}
	}
	if ok != 2 || blocked != 1 {
		t.Fatalf("concurrent submits: %d passed, %d blocked; want 2 and 1", ok, blocked)
	}
}
