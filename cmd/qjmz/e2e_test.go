package main

import (
	"strings"
	"testing"
	"time"
)

// TestEndToEndSubmitReviewFeed is the whole life of one session, through
// the HTTP API only, as the mini-program drives it: a social worker records
// a 助餐 session with three stamped photos, submits it, the 城南 station
// reviewer claims and approves it, and a resident sees it on the public
// feed — without any beneficiary's name. In CI this runs on MariaDB and
// Redis.
func TestEndToEndSubmitReviewFeed(t *testing.T) {
	e := newUplEnv(t, nil)
	h := e.h

	// The worker's open 助餐 order in 城南街道.
	orders := h.do("GET", "/api/v1/orders", e.worker, nil)
	h.expect(orders, 200, "")
	var orderID string
	for _, o := range orders.items() {
		if item, _ := o["item"].(map[string]any); item["code"] == "MEAL" {
			orderID, _ = o["id"].(string)
		}
	}
	if orderID == "" {
		t.Fatalf("no MEAL order for the worker: %s", orders.Raw)
	}
	qs := h.regionID("青社社区")
	bens := h.do("GET", "/api/v1/beneficiaries?community_id="+qs, e.worker, nil)
	h.expect(bens, 200, "")
	var benIDs, names []string
	for _, b := range bens.items() {
		if age, _ := b["age"].(float64); age < 18 {
			continue // adults only, so the session needs no guardian consent
		}
		benIDs = append(benIDs, b["id"].(string))
	}
	if len(benIDs) < 2 {
		t.Fatalf("demo beneficiaries in 青社社区: %s", bens.Raw)
	}
	h.app.DB.Raw("SELECT name FROM (SELECT '王演示' AS name UNION SELECT '李演示' UNION SELECT '陈示例') x").Scan(&names)

	// A session that ended an hour ago, at the community centre.
	start := time.Now().Add(-3 * time.Hour).Truncate(time.Minute)
	end := start.Add(90 * time.Minute)
	rec := h.do("POST", "/api/v1/records", e.worker, map[string]any{
		"order_id": orderID, "community_id": qs, "venue_name": "青社社区老年食堂", "venue_lat": 29.5186, "venue_lng": 108.7703,
		"start_at": start.Format(time.RFC3339), "end_at": end.Format(time.RFC3339), "title": "青社社区助餐服务",
		"description": "为社区高龄老人送餐并陪伴用餐", "participant_count": 8, "beneficiary_ids": benIDs[:2]})
	h.expect(rec, 201, "")
	recordID := rec.str("id")

	// Three photos taken during the session, stamped with time and place.
	shot := start.Add(30 * time.Minute).In(time.FixedZone("CST", 8*3600)).Format("2006:01:02 15:04:05")
	var mediaIDs []string
	for i := range 3 {
		jpg := uplWithEXIF(t, uplJPEG(t, uplScene(640, 480, uint32(7000+i*977))),
			uplEXIF(t, shot, "+08:00", uplDMS(29, 31, 660), uplDMS(108, 46, 1300)))
		id := e.upload(e.worker, recordID, "image", "image/jpeg", jpg)
		h.expect(e.complete(e.worker, id, qingshe), 200, "")
		mediaIDs = append(mediaIDs, id)
	}

	sub := h.do("POST", "/api/v1/records/"+recordID+"/submit", e.worker, map[string]any{"expected_version": 1})
	h.expect(sub, 200, "")
	if sub.str("status") != "submitted" {
		t.Fatalf("after submit: %s", sub.Raw)
	}
	// Not on the feed before review.
	h.expect(h.do("GET", "/api/v1/feed/"+recordID, "", nil), 404, "NOT_FOUND")

	claim := h.do("POST", "/api/v1/review/claim", e.chengnan, map[string]any{"level": 1})
	h.expect(claim, 200, "")
	claimed, _ := claim.Body["record"].(map[string]any)
	if claimed == nil || claimed["id"] != recordID {
		t.Fatalf("claim = %s", claim.Raw)
	}
	version := int(claimed["version"].(float64))
	dec := h.do("POST", "/api/v1/review/records/"+recordID+"/decision", e.chengnan, map[string]any{
		"decision": "approve", "expected_version": version, "public_media_ids": mediaIDs})
	h.expect(dec, 200, "")

	feed := h.do("GET", "/api/v1/feed", e.resident, nil)
	h.expect(feed, 200, "")
	var found map[string]any
	for _, it := range feed.items() {
		if it["id"] == recordID {
			found = it
		}
	}
	if found == nil {
		t.Fatalf("approved record not on the feed: %s", feed.Raw)
	}
	if media, _ := found["media"].([]any); len(media) != 3 {
		t.Fatalf("feed shows %d photos, want 3: %v", len(media), found["media"])
	}
	detail := h.do("GET", "/api/v1/feed/"+recordID, "", nil)
	h.expect(detail, 200, "")
	for _, n := range names {
		if strings.Contains(string(feed.Raw)+string(detail.Raw), n) {
			t.Fatalf("beneficiary name %s on the public feed", n)
		}
	}
	// The worker was told, through the outbox.
	var queued int
	h.app.DB.Raw("SELECT COUNT(*) FROM outbox_messages").Scan(&queued)
	if queued == 0 {
		t.Fatal("no notification queued for the worker")
	}
	// And one approved session consumed one unit of the order.
	var used int
	h.app.DB.Raw("SELECT used_count FROM orders WHERE id = ?", orderID).Scan(&used)
	if used != 1 {
		t.Fatalf("order used_count = %d", used)
	}
}

// TestDemoSessionsFillTheFeed: a fresh `make run` shows residents a feed
// with the three demo sessions, each with its three watermarked photos,
// recorded and approved through the same API the mini-program uses.
func TestDemoSessionsFillTheFeed(t *testing.T) {
	h := newHarness(t, map[string]string{"QJMZ_DEMO_SESSIONS": "true"})
	feed := h.do("GET", "/api/v1/feed", "", nil)
	h.expect(feed, 200, "")
	items := feed.items()
	if len(items) != len(demoSessions) {
		t.Fatalf("feed has %d items, want %d: %s", len(items), len(demoSessions), feed.Raw)
	}
	if items[0]["title"] != demoSessions[len(demoSessions)-1].title {
		t.Fatalf("newest demo session not on top: %v", items[0]["title"])
	}
	for _, it := range items {
		if media, _ := it["media"].([]any); len(media) != 3 {
			t.Fatalf("%v has %d photos on the feed", it["title"], len(media))
		}
	}
	if strings.Contains(string(feed.Raw), "演示") {
		t.Fatal("a demo beneficiary's name is on the feed")
	}
}
