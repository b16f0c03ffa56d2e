package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"gorm.io/gorm"

	"qjmz/model"
	"qjmz/pkg/ids"
	"qjmz/pkg/wechat"
	"qjmz/pkg/wechat/wechattest"
	"qjmz/repository"
	"qjmz/service"
)

// feedFix is demo data plus a Feed use case built on the same database and
// Redis keys as the server under test, standing in for the review slice
// that calls TryPublish after a final approval.
type feedFix struct {
	t      *testing.T
	h      *harness
	feed   *service.Feed
	towns  [2]string
	comms  [2]string
	org    string
	worker string
	order  string
	public [2]string // two public items
	intern string    // an internal item
}

func newFeedFix(t *testing.T, h *harness) *feedFix {
	t.Helper()
	f := &feedFix{t: t, h: h}
	f.feed = service.NewFeed(service.FeedConfig{Tx: h.app.Store, Store: repository.NewFeed(h.app.Store),
		Cache:   repository.NewFeedCache(h.app.Redis, h.app.Cfg.RedisPrefix, repository.FeedCacheOptions{Logger: h.app.Log}),
		Regions: h.app.Regions, Users: h.app.Users, Checker: h.app.WeChat, Push: h.app.WeChat, Objects: h.app.Media,
		Audit: h.app.Auditor, AppID: h.app.Cfg.WeChatAppID, Now: h.app.Now, Logger: h.app.Log})
	var comms []struct{ ID, ParentID string }
	h.app.DB.Raw("SELECT id, parent_id FROM regions WHERE level = 'community' ORDER BY code").Scan(&comms)
	for _, c := range comms {
		if f.comms[0] == "" {
			f.comms[0], f.towns[0] = c.ID, c.ParentID
		} else if c.ParentID != f.towns[0] {
			f.comms[1], f.towns[1] = c.ID, c.ParentID
			break
		}
	}
	h.app.DB.Raw("SELECT id FROM users WHERE open_id = 'dev_worker-haoxinqing'").Scan(&f.worker)
	f.org = h.orgID("黔江好心情公益服务中心")
	h.app.DB.Raw("SELECT id FROM orders LIMIT 1").Scan(&f.order)
	h.app.DB.Raw("SELECT id FROM service_items WHERE code = 'LECTURE'").Scan(&f.public[0])
	h.app.DB.Raw("SELECT id FROM service_items WHERE code = 'MEAL'").Scan(&f.public[1])
	h.app.DB.Raw("SELECT id FROM service_items WHERE code = 'CASE_MANAGEMENT'").Scan(&f.intern)
	for _, v := range []string{f.comms[1], f.worker, f.org, f.order, f.public[0], f.public[1], f.intern} {
		if v == "" {
			t.Fatalf("demo data incomplete: %+v", f)
		}
	}
	return f
}

type recOpt struct {
	item   string
	place  int // 0 or 1: which town/community
	status string
}

// record inserts a session record as the records and review slices would
// leave it.
func (f *feedFix) record(title string, o recOpt) string {
	f.t.Helper()
	if o.item == "" {
		o.item = f.public[0]
	}
	if o.status == "" {
		o.status = model.RecordApproved
	}
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Millisecond)
	rec := model.SessionRecord{ID: ids.New(), OrgID: f.org, OrderID: f.order, ItemID: o.item, TownID: f.towns[o.place],
		CommunityID: f.comms[o.place], WorkerID: f.worker, VenueName: "社区活动室", StartAt: start, EndAt: start.Add(time.Hour),
		Title: title, Description: "为辖区老人开展" + title, ParticipantCount: 12, Status: o.status, Version: 1, ReviewLevel: 1}
	if err := f.h.app.DB.Create(&rec).Error; err != nil {
		f.t.Fatalf("insert record: %v", err)
	}
	return rec.ID
}

// image attaches a ready image to a record.
func (f *feedFix) image(recordID string, publicOK bool, check, trace string) string {
	f.t.Helper()
	id := ids.New()
	u := model.Upload{ID: id, UploaderID: f.worker, OrgID: f.org, RecordID: &recordID, Kind: model.KindImage,
		ContentType: "image/jpeg", DeclaredSize: 1000, StorageKey: "evidence/" + id + "/original.jpg", Status: model.UploadReady,
		ExpiresAt: time.Now().UTC(), PublicOK: publicOK, DisplayKey: "evidence/" + id + "/display.jpg",
		ThumbKey: "evidence/" + id + "/thumb.jpg", ContentCheck: check, CheckTraceID: trace}
	if err := f.h.app.DB.Create(&u).Error; err != nil {
		f.t.Fatalf("insert upload: %v", err)
	}
	return id
}

func (f *feedFix) publish(id string) {
	f.t.Helper()
	if err := f.feed.TryPublish(context.Background(), id); err != nil {
		f.t.Fatalf("TryPublish %s: %v", id, err)
	}
}

func (f *feedFix) published(id string) bool {
	var key string
	f.h.app.DB.Raw("SELECT feed_key FROM session_records WHERE id = ?", id).Scan(&key)
	return key != ""
}

func feedIDs(r resp) []string {
	var out []string
	for _, it := range r.items() {
		out = append(out, it["id"].(string))
	}
	return out
}

func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

func TestFeedPublicationPagingAndFilters(t *testing.T) {
	h := newHarness(t, nil)
	f := newFeedFix(t, h)

	// Five publishable records, published in this order.
	var pub []string
	for i, o := range []recOpt{{}, {place: 1}, {item: f.public[1]}, {item: f.public[1], place: 1}, {}} {
		id := f.record(fmt.Sprintf("第%d场讲座", i+1), o)
		f.publish(id)
		pub = append(pub, id)
	}
	internal := f.record("个案服务记录", recOpt{item: f.intern})
	submitted := f.record("待审核的活动", recOpt{status: model.RecordSubmitted})
	rejected := f.record("被驳回的活动", recOpt{status: model.RecordRejected})
	for _, id := range []string{internal, submitted, rejected} {
		f.publish(id)
		if f.published(id) {
			t.Fatalf("record %s must not be published", id)
		}
	}
	var tc string
	h.app.DB.Raw("SELECT text_check FROM session_records WHERE id = ?", internal).Scan(&tc)
	if tc != service.TextCheckSkipped {
		t.Fatalf("internal record text_check = %q, want skipped", tc)
	}

	// Only the published ones, newest first.
	r := h.do("GET", "/api/v1/feed", "", nil)
	h.expect(r, 200, "")
	if got, want := feedIDs(r), reversed(pub); !slices.Equal(got, want) {
		t.Fatalf("feed = %v, want %v", got, want)
	}
	if r.str("next_cursor") != "" {
		t.Fatalf("single page has a next_cursor: %s", r.Raw)
	}

	// Keyset pages of two: no repeats, nothing missing.
	var seen []string
	cursor := ""
	for page := 0; ; page++ {
		if page > 5 {
			t.Fatal("pagination does not end")
		}
		r := h.do("GET", "/api/v1/feed?limit=2&cursor="+cursor, "", nil)
		h.expect(r, 200, "")
		seen = append(seen, feedIDs(r)...)
		if cursor = r.str("next_cursor"); cursor == "" {
			break
		}
	}
	if !slices.Equal(seen, reversed(pub)) {
		t.Fatalf("paged feed = %v, want %v", seen, reversed(pub))
	}

	// Filters.
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"town_id=" + f.towns[1], []string{pub[3], pub[1]}},
		{"community_id=" + f.comms[0], []string{pub[4], pub[2], pub[0]}},
		{"item_id=" + f.public[1], []string{pub[3], pub[2]}},
		{"item_id=" + f.public[1] + "&town_id=" + f.towns[0], []string{pub[2]}},
		{"item_id=" + f.intern, nil},
	} {
		r := h.do("GET", "/api/v1/feed?"+c.query, "", nil)
		h.expect(r, 200, "")
		if got := feedIDs(r); !slices.Equal(got, c.want) {
			t.Errorf("feed?%s = %v, want %v", c.query, got, c.want)
		}
	}

	// Detail: published 200; unapproved, internal, rejected, unknown,
	// malformed: the same 404.
	d := h.do("GET", "/api/v1/feed/"+pub[0], "", nil)
	h.expect(d, 200, "")
	if d.str("title") != "第1场讲座" || d.Body["item"].(map[string]any)["code"] != "LECTURE" ||
		d.Body["organization"].(map[string]any)["name"] != "黔江好心情公益服务中心" || !strings.HasSuffix(d.str("published_at"), "+08:00") {
		t.Fatalf("detail = %s", d.Raw)
	}
	resident := h.token("resident")
	for _, id := range []string{submitted, internal, rejected, ids.New(), "not-an-id"} {
		h.expect(h.do("GET", "/api/v1/feed/"+id, resident, nil), 404, "NOT_FOUND")
	}

	// Bad input.
	h.expect(h.do("GET", "/api/v1/feed?limit=51", "", nil), 400, "LIMIT_OUT_OF_RANGE")
	h.expect(h.do("GET", "/api/v1/feed?limit=0", "", nil), 400, "LIMIT_OUT_OF_RANGE")
	h.expect(h.do("GET", "/api/v1/feed?cursor=abc", "", nil), 400, "CURSOR_INVALID")
	h.expect(h.do("GET", "/api/v1/feed?town_id=1%27%20OR%201=1", "", nil), 400, "FEED_FILTER_INVALID")
}

func TestFeedShowsNoPersonalDataAndOnlyClearedDisplayCopies(t *testing.T) {
	h := newHarness(t, nil)
	// Registered before the server handles anything; counts only while on.
	var counting atomic.Bool
	var queries atomic.Int64
	if err := h.app.DB.Callback().Query().After("gorm:query").Register("feedtest:count", func(*gorm.DB) {
		if counting.Load() {
			queries.Add(1)
		}
	}); err != nil {
		t.Fatal(err)
	}
	f := newFeedFix(t, h)
	id := f.record("助餐服务", recOpt{item: f.public[1]})
	shown := f.image(id, true, "pass", "")
	notCleared := f.image(id, false, "pass", "") // reviewer did not clear it (a face without consent)
	// A beneficiary linked to the record.
	ben := model.Beneficiary{ID: ids.New(), NameEnc: "enc:王秀英", IDNumberEnc: "enc:500114194001010028", IDIndex: ids.New(),
		PhoneEnc: "enc:13800001111", Household: "HH-TEST-42", CommunityID: f.comms[0], Categories: "高龄失能", CreatedBy: f.worker}
	if err := h.app.DB.Create(&ben).Error; err != nil {
		t.Fatal(err)
	}
	if err := h.app.DB.Create(&model.RecordBeneficiary{RecordID: id, BeneficiaryID: ben.ID}).Error; err != nil {
		t.Fatal(err)
	}
	f.publish(id)

	// One query for the page and one per batched lookup, whatever the
	// page holds (no N+1). Counted on a cache miss: a fresh filter.
	for i := range 6 {
		f.publish(f.record(fmt.Sprintf("活动%d", i), recOpt{place: i % 2}))
	}
	counting.Store(true)
	r := h.do("GET", "/api/v1/feed?limit=50", "", nil)
	h.expect(r, 200, "")
	if n := queries.Load(); n != 5 {
		t.Fatalf("an uncached feed page took %d queries, want 5 (page, items, regions, orgs, media)", n)
	}
	if len(r.items()) != 7 {
		t.Fatalf("want 7 entries: %s", r.Raw)
	}
	queries.Store(0)
	h.expect(h.do("GET", "/api/v1/feed?limit=50", "", nil), 200, "")
	if n := queries.Load(); n != 0 {
		t.Fatalf("a cached feed page took %d queries", n)
	}

	d := h.do("GET", "/api/v1/feed/"+id, "", nil)
	h.expect(d, 200, "")
	media := d.Body["media"].([]any)
	if len(media) != 1 {
		t.Fatalf("want only the cleared, checked image: %s", d.Raw)
	}
	m := media[0].(map[string]any)
	if !strings.Contains(m["display_url"].(string), shown+"/display.jpg") || !strings.Contains(m["thumb_url"].(string), shown+"/thumb.jpg") ||
		m["kind"] != "image" {
		t.Fatalf("media = %v", m)
	}
	// The signed URL really serves (display copy absent here: 404, not 403).
	if res, err := http.Get(m["display_url"].(string)); err != nil || res.StatusCode == http.StatusForbidden {
		t.Fatalf("signed display URL refused: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	all := string(r.Raw) + string(d.Raw)
	for _, secret := range []string{"original.jpg", notCleared, ben.ID, "王秀英", "500114194001010028", "13800001111", "HH-TEST-42",
		"高龄失能", "beneficiar", f.worker, "dev_worker", "open_id", "venue_lat"} {
		if strings.Contains(all, secret) {
			t.Errorf("feed JSON contains %q", secret)
		}
	}
}

func TestFeedCacheAndTakedown(t *testing.T) {
	h := newHarness(t, nil)
	f := newFeedFix(t, h)
	first := f.record("重阳节助浴", recOpt{})
	f.publish(first)
	r := h.do("GET", "/api/v1/feed", "", nil)
	h.expect(r, 200, "")

	// A change behind the feed's back is not seen: the page is cached.
	h.app.DB.Exec("UPDATE session_records SET title = ? WHERE id = ?", "改过的标题", first)
	r = h.do("GET", "/api/v1/feed", "", nil)
	if r.items()[0]["title"] != "重阳节助浴" {
		t.Fatalf("second request not served from the cache: %s", r.Raw)
	}
	// Publishing invalidates every page. The edited record drops out: its
	// text is no longer the text WeChat passed.
	second := f.record("健康讲座", recOpt{})
	f.publish(second)
	r = h.do("GET", "/api/v1/feed", "", nil)
	if got := feedIDs(r); !slices.Equal(got, []string{second}) {
		t.Fatalf("after publish: %s", r.Raw)
	}
	// Re-evaluating checks the new text, and it is shown again.
	f.publish(first)
	r = h.do("GET", "/api/v1/feed", "", nil)
	if got := feedIDs(r); !slices.Equal(got, []string{second, first}) || r.items()[1]["title"] != "改过的标题" {
		t.Fatalf("after the re-check: %s", r.Raw)
	}

	// Takedown by a bureau admin: audited, immediate, sticky.
	admin := h.token("admin")
	h.expect(h.do("POST", "/api/v1/admin/feed/"+second+"/unpublish", h.token("resident"), map[string]string{"reason": "x"}), 403, "FORBIDDEN_ROLE")
	h.expect(h.do("POST", "/api/v1/admin/feed/"+second+"/unpublish", admin, map[string]string{}), 400, "VALIDATION_FAILED")
	h.expect(h.do("POST", "/api/v1/admin/feed/"+ids.New()+"/unpublish", admin, map[string]string{"reason": "x"}), 404, "NOT_FOUND")
	u := h.do("POST", "/api/v1/admin/feed/"+second+"/unpublish", admin, map[string]string{"reason": "照片含未授权人像"})
	h.expect(u, 200, "")
	if u.Body["published"] != false || u.str("hidden_at") == "" {
		t.Fatalf("unpublish = %s", u.Raw)
	}
	if got := feedIDs(h.do("GET", "/api/v1/feed", "", nil)); !slices.Equal(got, []string{first}) {
		t.Fatalf("after unpublish the feed = %v", got)
	}
	h.expect(h.do("GET", "/api/v1/feed/"+second, "", nil), 404, "NOT_FOUND")
	var audits int64
	h.app.DB.Raw("SELECT COUNT(*) FROM audit_events WHERE action = 'feed.unpublish' AND object_id = ? AND reason = ?", second, "照片含未授权人像").Scan(&audits)
	if audits != 1 {
		t.Fatalf("unpublish audit rows = %d", audits)
	}
	// Neither the review slice nor the job brings it back.
	f.publish(second)
	if _, err := f.feed.Recheck(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.published(second) {
		t.Fatal("a taken-down record was republished automatically")
	}
	// Republish puts it back on top.
	rp := h.do("POST", "/api/v1/admin/feed/"+second+"/republish", admin, nil)
	h.expect(rp, 200, "")
	if rp.Body["published"] != true {
		t.Fatalf("republish = %s", rp.Raw)
	}
	if got := feedIDs(h.do("GET", "/api/v1/feed", "", nil)); !slices.Equal(got, []string{second, first}) {
		t.Fatalf("after republish the feed = %v", got)
	}
	// A record that stops being approved leaves the feed on re-evaluation.
	h.app.DB.Exec("UPDATE session_records SET status = ? WHERE id = ?", model.RecordReturned, first)
	f.publish(first)
	if f.published(first) {
		t.Fatal("a returned record stayed on the feed")
	}
}

func TestFeedServesFromDatabaseWhenRedisIsDown(t *testing.T) {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, map[string]string{"QJMZ_REDIS_ADDRS": mr.Addr()})
	f := newFeedFix(t, h)
	id := f.record("防汛演练", recOpt{})
	f.publish(id)
	h.expect(h.do("GET", "/api/v1/feed", "", nil), 200, "")

	mr.Close()
	start := time.Now()
	for range 5 {
		r := h.do("GET", "/api/v1/feed", "", nil)
		h.expect(r, 200, "")
		if got := feedIDs(r); !slices.Equal(got, []string{id}) {
			t.Fatalf("feed with Redis down = %s", r.Raw)
		}
		h.expect(h.do("GET", "/api/v1/feed/"+id, "", nil), 200, "")
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("10 requests with Redis down took %v", el)
	}
	// Publishing still works; the invalidation is remembered.
	second := f.record("第二场演练", recOpt{})
	f.publish(second)
	if got := feedIDs(h.do("GET", "/api/v1/feed", "", nil)); !slices.Equal(got, []string{second, id}) {
		t.Fatalf("feed after publishing with Redis down = %v", got)
	}
	if !strings.Contains(h.logs.String(), "feed cache: Redis unavailable") {
		t.Fatal("no warning logged while Redis was down")
	}
}

// TestFeedContentChecks runs the real WeChat client against the local fake:
// msgSecCheck verdicts, mediaCheckAsync verdicts arriving by signed push.
func TestFeedContentChecks(t *testing.T) {
	appID := "wx" + strings.ToLower(ids.New()[:16])
	const pushToken = "push-token-for-tests"
	fakeWeChat.RegisterApp(appID, "secret-"+appID)
	h := newHarness(t, map[string]string{
		"QJMZ_WECHAT_APP_ID": appID, "QJMZ_WECHAT_APP_SECRET": "secret-" + appID, "QJMZ_WECHAT_DEV_LOGIN": "false",
		"QJMZ_WECHAT_PUSH_TOKEN": pushToken,
	})
	f := newFeedFix(t, h)
	signed := func(ts int64) string {
		s, n := strconv.FormatInt(ts, 10), "nonce"+ids.New()[:8]
		return "timestamp=" + s + "&nonce=" + n + "&signature=" + wechat.PushSignature(pushToken, s, n)
	}

	// Text WeChat finds risky: never shown.
	risky := f.record("违规内容的活动", recOpt{})
	f.publish(risky)
	var tc string
	h.app.DB.Raw("SELECT text_check FROM session_records WHERE id = ?", risky).Scan(&tc)
	if tc != "risky" || f.published(risky) {
		t.Fatalf("risky text: text_check=%q published=%v", tc, f.published(risky))
	}
	h.expect(h.do("GET", "/api/v1/feed/"+risky, "", nil), 404, "NOT_FOUND")

	// WeChat unreachable: fail closed, pending; the job retries.
	fakeWeChat.FailNext(appID, "/wxa/msg_sec_check", http.StatusBadGateway)
	flaky := f.record("社区义诊", recOpt{})
	f.publish(flaky)
	h.app.DB.Raw("SELECT text_check FROM session_records WHERE id = ?", flaky).Scan(&tc)
	if tc != "pending" || f.published(flaky) {
		t.Fatalf("failed check: text_check=%q published=%v", tc, f.published(flaky))
	}
	if _, err := f.feed.Recheck(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !f.published(flaky) {
		t.Fatal("the recheck job did not publish after the text check passed")
	}

	// An image still waiting for WeChat holds the record back.
	rec := f.record("敬老院慰问", recOpt{})
	f.image(rec, true, "pending", "trace-ok-"+rec)
	f.image(rec, false, "pending", "trace-hidden-"+rec) // not cleared for the public: does not hold it back
	f.publish(rec)
	if f.published(rec) {
		t.Fatal("published with an image check pending")
	}
	h.expect(h.do("GET", "/api/v1/feed/"+rec, "", nil), 404, "NOT_FOUND")

	// Forged, unsigned and stale pushes: 403, nothing changes.
	body := wechattest.MediaCheckPushBody(appID, "trace-ok-"+rec, "pass")
	now := time.Now().Unix()
	for _, q := range []string{
		"", // unsigned
		"timestamp=" + strconv.FormatInt(now, 10) + "&nonce=n1&signature=" + wechat.PushSignature("wrong-token", strconv.FormatInt(now, 10), "n1"),
		signed(now - 600), // correctly signed but 10 minutes old
	} {
		h.expect(h.do("POST", "/api/v1/wechat/push?"+q, "", body), 403, "PUSH_SIGNATURE_INVALID")
	}
	if f.published(rec) {
		t.Fatal("a forged push published the record")
	}

	// WeChat's URL verification.
	v := h.do("GET", "/api/v1/wechat/push?"+signed(now)+"&echostr=abc123", "", nil)
	if v.Status != 200 || string(v.Raw) != "abc123" {
		t.Fatalf("echostr check = %d %s", v.Status, v.Raw)
	}
	h.expect(h.do("GET", "/api/v1/wechat/push?echostr=abc123&timestamp=1&nonce=2&signature=3", "", nil), 403, "PUSH_SIGNATURE_INVALID")

	// The signed verdict publishes the record.
	p := h.do("POST", "/api/v1/wechat/push?"+signed(now), "", body)
	if p.Status != 200 || string(p.Raw) != "success" {
		t.Fatalf("push = %d %s", p.Status, p.Raw)
	}
	if !f.published(rec) {
		t.Fatal("the pass verdict did not publish the record")
	}
	d := h.do("GET", "/api/v1/feed/"+rec, "", nil)
	h.expect(d, 200, "")
	if len(d.Body["media"].([]any)) != 1 {
		t.Fatalf("media = %s", d.Raw)
	}
	// A replay changes nothing and is still acknowledged.
	p = h.do("POST", "/api/v1/wechat/push?"+signed(now), "", body)
	if p.Status != 200 || !f.published(rec) {
		t.Fatalf("replayed push = %d %s", p.Status, p.Raw)
	}

	// A risky image keeps its record off the feed.
	bad := f.record("广场舞展演", recOpt{})
	f.image(bad, true, "pending", "trace-bad-"+bad)
	f.publish(bad)
	p = h.do("POST", "/api/v1/wechat/push?"+signed(now), "", wechattest.MediaCheckPushBody(appID, "trace-bad-"+bad, "risky"))
	if p.Status != 200 || f.published(bad) {
		t.Fatalf("risky image: push %d, published %v", p.Status, f.published(bad))
	}
	// Pushes for another app, or other events, are acknowledged and ignored.
	p = h.do("POST", "/api/v1/wechat/push?"+signed(now), "", wechattest.MediaCheckPushBody("wxother", "trace-bad-"+bad, "pass"))
	if p.Status != 200 || f.published(bad) {
		t.Fatalf("other app's push: %d, published %v", p.Status, f.published(bad))
	}
	p = h.do("POST", "/api/v1/wechat/push?"+signed(now), "", `{"MsgType":"event","Event":"subscribe_msg_popup_event"}`)
	if p.Status != 200 {
		t.Fatalf("other event: %d %s", p.Status, p.Raw)
	}

	// Only the checked records are on the feed.
	if got := feedIDs(h.do("GET", "/api/v1/feed", "", nil)); !slices.Equal(got, []string{rec, flaky}) {
		t.Fatalf("feed = %v, want [%s %s]", got, rec, flaky)
	}
}
