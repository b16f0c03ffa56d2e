package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"qjmz/model"
	"qjmz/pkg/ids"
	"qjmz/pkg/provenance"
	"qjmz/pkg/storage"
	"qjmz/pkg/storage/fakecos"
	"qjmz/pkg/wechat"
	"qjmz/repository"
	"qjmz/service"
)

// uplEnv is a harness with the demo accounts an evidence test needs.
type uplEnv struct {
	t                                                      *testing.T
	h                                                      *harness
	worker, orgAdmin, zhishan, chengnan, chengxi, resident string
	bureau                                                 string
	orgID                                                  string // 黔江好心情公益服务中心
}

func newUplEnv(t *testing.T, env map[string]string) *uplEnv {
	h := newHarness(t, env)
	return &uplEnv{t: t, h: h, worker: h.token("worker-haoxinqing"), orgAdmin: h.token("orgadmin-haoxinqing"),
		zhishan: h.token("worker-zhishan"), chengnan: h.token("reviewer-chengnan"), chengxi: h.token("reviewer-chengxi"),
		resident: h.token("resident"), bureau: h.token("bureau-reviewer"), orgID: h.orgID("黔江好心情公益服务中心")}
}

func (e *uplEnv) userID(devName string) string {
	e.t.Helper()
	var id string
	e.h.app.DB.Raw("SELECT id FROM users WHERE open_id = ?", wechat.DevOpenID(devName)).Scan(&id)
	if id == "" {
		e.t.Fatalf("no user %s", devName)
	}
	return id
}

// record inserts a session record directly (the records API is another
// slice): 好心情 in 城南街道/青社社区, or 至善 in 城东街道/书院社区.
func (e *uplEnv) record(org, status string) string {
	e.t.Helper()
	rec := model.SessionRecord{ID: ids.New(), OrderID: ids.New(), ItemID: ids.New(), Title: "助浴服务", ParticipantCount: 3,
		StartAt: time.Now().Add(-3 * time.Hour).UTC(), EndAt: time.Now().Add(-2 * time.Hour).UTC(), Status: status, Version: 1}
	switch org {
	case "好心情":
		rec.OrgID, rec.TownID, rec.CommunityID, rec.WorkerID = e.orgID, e.h.regionID("城南街道"), e.h.regionID("青社社区"), e.userID("worker-haoxinqing")
	case "至善":
		rec.OrgID, rec.TownID, rec.CommunityID, rec.WorkerID = e.h.orgID("至善社会工作服务中心"), e.h.regionID("城东街道"), e.h.regionID("书院社区"), e.userID("worker-zhishan")
	default:
		e.t.Fatalf("unknown org %s", org)
	}
	if err := e.h.app.DB.Create(&rec).Error; err != nil {
		e.t.Fatalf("insert record: %v", err)
	}
	return rec.ID
}

func (e *uplEnv) ticket(tok, recordID, kind, ct string, size int) resp {
	e.t.Helper()
	return e.h.do("POST", "/api/v1/uploads", tok, map[string]any{"record_id": recordID, "kind": kind, "content_type": ct, "size": size})
}

// put sends body to the ticket's URL with the ticket's headers, as the
// mini-program does, and returns the storage's status.
func (e *uplEnv) put(ticket resp, body []byte) int {
	e.t.Helper()
	return e.putTo(ticket.str("url"), ticket, body)
}

func (e *uplEnv) putTo(u string, ticket resp, body []byte) int {
	e.t.Helper()
	req, err := http.NewRequest(ticket.str("method"), u, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range ticket.Body["headers"].(map[string]any) {
		req.Header.Set(k, v.(string))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("put: %v", err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	return res.StatusCode
}

// upload gets a ticket for body and PUTs it; it returns the upload id.
func (e *uplEnv) upload(tok, recordID, kind, ct string, body []byte) string {
	e.t.Helper()
	tk := e.ticket(tok, recordID, kind, ct, len(body))
	e.h.expect(tk, 201, "")
	if st := e.put(tk, body); st != 200 {
		e.t.Fatalf("PUT to ticket URL: %d", st)
	}
	return tk.str("upload_id")
}

func (e *uplEnv) complete(tok, id string, body any) resp {
	e.t.Helper()
	return e.h.do("POST", "/api/v1/uploads/"+id+"/complete", tok, body)
}

var qingshe = map[string]any{"latitude": 29.5185, "longitude": 108.7702, "accuracy_m": 15.0}

func (e *uplEnv) row(id string) model.Upload {
	e.t.Helper()
	var u model.Upload
	if err := e.h.app.DB.Where("id = ?", id).Take(&u).Error; err != nil {
		e.t.Fatalf("upload %s: %v", id, err)
	}
	return u
}

// objectsOf lists every stored object of an upload, wherever it lives.
func (e *uplEnv) objectsOf(id string) []string {
	e.t.Helper()
	var out []string
	for _, prefix := range []string{"incoming/", "evidence/"} {
		objs, err := e.h.app.Media.List(context.Background(), prefix, 10000)
		if err != nil {
			e.t.Fatalf("list %s: %v", prefix, err)
		}
		for _, o := range objs {
			if strings.Contains(o.Key, id) {
				out = append(out, o.Key)
			}
		}
	}
	return out
}

func (e *uplEnv) auditCount(action, objectID string) int {
	var n int
	e.h.app.DB.Raw("SELECT COUNT(*) FROM audit_events WHERE action = ? AND object_id = ?", action, objectID).Scan(&n)
	return n
}

func fetch(t *testing.T, u string) (int, []byte) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func urls(r resp) map[string]any {
	m, _ := r.Body["urls"].(map[string]any)
	return m
}

// meanLuma is the average brightness of the bottom fraction of an image.
func meanLuma(img image.Image, bottomFraction float64) float64 {
	b := img.Bounds()
	y0 := b.Max.Y - int(float64(b.Dy())*bottomFraction)
	var sum float64
	var n int
	for y := y0; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			sum += 0.299*float64(r>>8) + 0.587*float64(g>>8) + 0.114*float64(bl>>8)
			n++
		}
	}
	return sum / float64(n)
}

func TestUploadEvidenceFlow(t *testing.T) {
	e := newUplEnv(t, nil)
	h := e.h
	rec := e.record("好心情", model.RecordDraft)
	photo := uplPhoto(t, 1)

	tk := e.ticket(e.worker, rec, "image", "image/jpeg", len(photo))
	h.expect(tk, 201, "")
	if tk.str("method") != "PUT" || !strings.HasPrefix(tk.str("url"), h.srv.URL+"/media/incoming/") ||
		tk.Body["max_bytes"].(float64) != float64(len(photo)) || !strings.HasSuffix(tk.str("expires_at"), "+08:00") {
		t.Fatalf("ticket: %s", tk.Raw)
	}
	id := tk.str("upload_id")
	if st := e.put(tk, photo); st != 200 {
		t.Fatalf("PUT: %d", st)
	}
	done := e.complete(e.worker, id, qingshe)
	h.expect(done, 200, "")

	t.Run("the completed photo carries its facts", func(t *testing.T) {
		b := done.Body
		if b["status"] != "ready" || b["sha256"] != sha(photo) || b["size"].(float64) != float64(len(photo)) ||
			b["capture_time"] != "2026-03-18T09:30:00+08:00" || b["has_exif"] != true || b["content_check"] != "pass" ||
			b["width"].(float64) != 640 || b["height"].(float64) != 480 || len(done.str("phash")) != 16 ||
			!strings.HasSuffix(done.str("received_at"), "+08:00") || b["record_id"] != rec {
			t.Fatalf("detail: %s", done.Raw)
		}
		gps := b["file_gps"].(map[string]any)
		if d := gps["latitude"].(float64) - 29.53; d > 1e-6 || d < -1e-6 {
			t.Fatalf("file gps: %v", gps)
		}
		cl := b["client_location"].(map[string]any)
		if cl["latitude"] != 29.5185 || cl["accuracy_m"] != 15.0 {
			t.Fatalf("client location: %v", cl)
		}
	})

	t.Run("original is byte-identical, display is watermarked, thumbnail is small", func(t *testing.T) {
		u := urls(done)
		st, orig := fetch(t, u["original"].(string))
		if st != 200 || !bytes.Equal(orig, photo) {
			t.Fatalf("original: %d, %d bytes", st, len(orig))
		}
		_, disp := fetch(t, u["display"].(string))
		_, thumb := fetch(t, u["thumb"].(string))
		di, err1 := jpeg.Decode(bytes.NewReader(disp))
		ti, err2 := jpeg.Decode(bytes.NewReader(thumb))
		if err1 != nil || err2 != nil {
			t.Fatalf("derived copies are not JPEGs: %v %v", err1, err2)
		}
		if ti.Bounds().Dx() > 320 || di.Bounds().Dx() != 640 {
			t.Fatalf("sizes: display %v thumb %v", di.Bounds(), ti.Bounds())
		}
		// The watermark band darkens the bottom of the display copy; the
		// thumbnail of the same photo has no band.
		if d, th := meanLuma(di, 0.05), meanLuma(ti, 0.05); d > 0.8*th {
			t.Fatalf("no watermark band: display bottom %.0f vs thumb bottom %.0f", d, th)
		}
	})

	t.Run("visible to the organization and reviewers in scope only", func(t *testing.T) {
		for _, c := range []struct {
			name, tok string
			status    int
		}{
			{"worker", e.worker, 200}, {"org admin", e.orgAdmin, 200}, {"town reviewer", e.chengnan, 200},
			{"bureau reviewer", e.bureau, 200}, {"other town's reviewer", e.chengxi, 404},
			{"other organization", e.zhishan, 404}, {"resident", e.resident, 404}, {"anonymous", "", 401},
		} {
			r := h.do("GET", "/api/v1/uploads/"+id, c.tok, nil)
			if r.Status != c.status {
				t.Errorf("%s: want %d, got %d %s", c.name, c.status, r.Status, r.Raw)
			}
		}
		h.expect(h.do("GET", "/api/v1/uploads/"+id+"/provenance", e.chengxi, nil), 404, "NOT_FOUND")
	})

	t.Run("provenance verifies with the published key, a tampered payload does not", func(t *testing.T) {
		key := h.do("GET", "/api/v1/provenance/public-key", "", nil)
		h.expect(key, 200, "")
		pub, err := provenance.ParsePublicKeyPEM(key.str("public_key_pem"))
		if err != nil || key.str("algorithm") != "Ed25519" || key.str("key_id") != provenance.KeyIDOf(pub) {
			t.Fatalf("public key: %v %s", err, key.Raw)
		}
		pv := h.do("GET", "/api/v1/uploads/"+id+"/provenance", e.chengnan, nil)
		h.expect(pv, 200, "")
		payload, _ := base64.StdEncoding.DecodeString(pv.str("payload_b64"))
		sig, _ := base64.StdEncoding.DecodeString(pv.str("signature_b64"))
		got, err := provenance.Verify(pub, payload, sig)
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		if got.UploadID != id || got.SHA256 != sha(photo) || got.Uploader != e.userID("worker-haoxinqing") ||
			*got.ClientLat != 29.5185 || got.CaptureTime == nil || got.PHash != done.str("phash") || pv.str("key_id") != key.str("key_id") {
			t.Fatalf("signed record: %+v", got)
		}
		if rec := pv.Body["record"].(map[string]any); rec["sha256"] != sha(photo) {
			t.Fatalf("readable record: %v", rec)
		}
		tampered := bytes.Replace(payload, []byte(`"size":`), []byte(`"size":1`), 1)
		if _, err := provenance.Verify(pub, tampered, sig); !errors.Is(err, provenance.ErrBadSignature) {
			t.Fatalf("tampered payload verified: %v", err)
		}
	})

	t.Run("completing again returns the same result without reprocessing", func(t *testing.T) {
		before := e.row(id)
		again := e.complete(e.worker, id, map[string]any{})
		h.expect(again, 200, "")
		after := e.row(id)
		if again.str("sha256") != done.str("sha256") || after.StorageKey != before.StorageKey || after.DisplayKey != before.DisplayKey ||
			e.auditCount("upload.complete", id) != 1 || len(e.objectsOf(id)) != 3 {
			t.Fatalf("reprocessed: %+v vs %+v, objects %v", before, after, e.objectsOf(id))
		}
	})

	t.Run("re-using the PUT URL after completion cannot change the evidence", func(t *testing.T) {
		other := uplPhoto(t, 99)[:len(photo)]
		if st := e.put(tk, other); st != 200 {
			t.Fatalf("the URL should still accept bytes until it expires: %d", st)
		}
		_, orig := fetch(t, urls(h.do("GET", "/api/v1/uploads/"+id, e.worker, nil))["original"].(string))
		if !bytes.Equal(orig, photo) {
			t.Fatal("evidence bytes changed after completion")
		}
	})

	t.Run("the same file again anywhere on the platform is refused", func(t *testing.T) {
		rec2 := e.record("好心情", model.RecordDraft)
		dup := e.upload(e.worker, rec2, "image", "image/jpeg", photo)
		for range 2 { // and the same answer when asked again
			r := e.complete(e.worker, dup, qingshe)
			h.expect(r, 409, "MEDIA_DUPLICATE")
			d, _ := r.Body["details"].(map[string]any)
			if d["duplicate_of"] != id || d["record_id"] != rec {
				t.Fatalf("details: %s", r.Raw)
			}
		}
		if u := e.row(dup); u.Status != model.UploadRejected || u.RejectCode != "MEDIA_DUPLICATE" || len(e.objectsOf(dup)) != 0 {
			t.Fatalf("duplicate not cleaned: %+v %v", u, e.objectsOf(dup))
		}
	})

	t.Run("two completes at once process once", func(t *testing.T) {
		p := uplPhoto(t, 7)
		cid := e.upload(e.worker, rec, "image", "image/jpeg", p)
		var wg sync.WaitGroup
		results := make([]string, 3)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = rawComplete(h.srv.URL, e.worker, cid)
			}()
		}
		wg.Wait()
		for _, r := range results {
			if r != "200 "+sha(p) {
				t.Fatalf("concurrent completes: %v", results)
			}
		}
		if n := e.auditCount("upload.complete", cid); n != 1 || len(e.objectsOf(cid)) != 3 {
			t.Fatalf("processed %d times, objects %v", n, e.objectsOf(cid))
		}
	})

	t.Run("video keeps duration and creation time, has no display copy", func(t *testing.T) {
		created := time.Date(2026, 3, 18, 1, 30, 0, 0, time.UTC)
		vid := uplMP4(t, created, 90, 0x42)
		vidID := e.upload(e.worker, rec, "video", "video/mp4", vid)
		r := e.complete(e.worker, vidID, qingshe)
		h.expect(r, 200, "")
		if r.Body["duration_ms"].(float64) != 90000 || r.str("capture_time") != "2026-03-18T09:30:00+08:00" ||
			r.str("content_check") != "none" || r.str("sha256") != sha(vid) || r.str("phash") != "" {
			t.Fatalf("video: %s", r.Raw)
		}
		u := urls(r)
		if u["display"] != nil || u["thumb"] != nil {
			t.Fatalf("video has derived copies: %v", u)
		}
		if st, b := fetch(t, u["original"].(string)); st != 200 || !bytes.Equal(b, vid) {
			t.Fatalf("video original: %d", st)
		}
	})

	t.Run("the record repository sees the ready uploads", func(t *testing.T) {
		repo := repository.NewUploads(h.app.Store)
		ready, err := repo.ReadyByRecord(context.Background(), rec)
		if err != nil || len(ready) != 3 {
			t.Fatalf("ready uploads of record: %d %v", len(ready), err)
		}
		same, _ := repo.FindBySHA256(context.Background(), sha(photo), "")
		other, _ := repo.FindBySHA256(context.Background(), sha(photo), rec)
		imgs, _ := repo.ImagesSince(context.Background(), 0, 100)
		if len(same) != 1 || len(other) != 0 || len(imgs) != 2 {
			t.Fatalf("by sha256: %d, excluding record: %d, images: %d", len(same), len(other), len(imgs))
		}
	})
	if e.auditCount("upload.ticket", id) != 1 {
		t.Fatal("ticket not audited")
	}
}

// rawComplete is for goroutines, which must not call t.Fatal.
func rawComplete(base, tok, id string) string {
	req, _ := http.NewRequest("POST", base+"/api/v1/uploads/"+id+"/complete", strings.NewReader(`{"latitude":29.5185,"longitude":108.7702}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer res.Body.Close()
	var body struct {
		SHA256 string `json:"sha256"`
	}
	_ = json.NewDecoder(res.Body).Decode(&body)
	return fmt.Sprintf("%d %s", res.StatusCode, body.SHA256)
}

func TestUploadRejectsBadFiles(t *testing.T) {
	e := newUplEnv(t, nil)
	rec := e.record("好心情", model.RecordDraft)
	photo := uplPhoto(t, 2)
	cases := []struct {
		name, kind, ct string
		body           []byte
		declared       int // 0: len(body)
		status         int
		code           string
	}{
		{"PNG declared as JPEG", "image", "image/jpeg", uplPNG(t, uplScene(64, 48, 3)), 0, 400, "MEDIA_TYPE_MISMATCH"},
		{"truncated JPEG", "image", "image/jpeg", photo[:len(photo)/2], 0, 400, "MEDIA_CORRUPT"},
		{"decompression bomb PNG", "image", "image/png", uplBombPNG(50000, 50000), 0, 413, "MEDIA_TOO_MANY_PIXELS"},
		{"text declared as JPEG", "image", "image/jpeg", []byte("this is not a photo, it is a note to the reviewer"), 0, 400, "UNSUPPORTED_MEDIA_TYPE"},
		{"fewer bytes than declared", "image", "image/jpeg", photo[:1000], 5000, 400, "UPLOAD_SIZE_MISMATCH"},
		{"video over ten minutes", "video", "video/mp4", uplMP4(t, time.Now(), 700, 1), 0, 400, "VIDEO_TOO_LONG"},
		{"photo declared as video", "video", "video/mp4", photo, 0, 400, "UNSUPPORTED_MEDIA_TYPE"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			size := c.declared
			if size == 0 {
				size = len(c.body)
			}
			tk := e.ticket(e.worker, rec, c.kind, c.ct, size)
			e.h.expect(tk, 201, "")
			if st := e.put(tk, c.body); st != 200 {
				t.Fatalf("PUT: %d", st)
			}
			id := tk.str("upload_id")
			e.h.expect(e.complete(e.worker, id, qingshe), c.status, c.code)
			// Nothing half-written: the row says why, no bytes are kept.
			u := e.row(id)
			if u.Status != model.UploadRejected || u.RejectCode != c.code || u.DisplayKey != "" || u.Provenance != "" {
				t.Fatalf("row: %+v", u)
			}
			if objs := e.objectsOf(id); len(objs) != 0 {
				t.Fatalf("objects left: %v", objs)
			}
			// A retry answers the same; it does not process again.
			e.h.expect(e.complete(e.worker, id, qingshe), c.status, c.code)
			if e.auditCount("upload.reject", id) != 1 {
				t.Fatal("rejection not audited exactly once")
			}
		})
	}
}

func TestUploadGuards(t *testing.T) {
	e := newUplEnv(t, nil)
	h := e.h
	draft := e.record("好心情", model.RecordDraft)
	photo := uplPhoto(t, 3)

	t.Run("ticket requests", func(t *testing.T) {
		returned := e.record("好心情", model.RecordReturned)
		submitted := e.record("好心情", model.RecordSubmitted)
		foreign := e.record("至善", model.RecordDraft)
		var before int64
		h.app.DB.Model(&model.Upload{}).Count(&before)
		cases := []struct {
			name, tok, rec, kind, ct string
			size                     int
			status                   int
			code                     string
		}{
			{"another organization's record", e.worker, foreign, "image", "image/jpeg", 1000, 404, "NOT_FOUND"},
			{"record that does not exist", e.worker, ids.New(), "image", "image/jpeg", 1000, 404, "NOT_FOUND"},
			{"malformed record id", e.worker, "../../etc/passwd", "image", "image/jpeg", 1000, 404, "NOT_FOUND"},
			{"submitted record", e.worker, submitted, "image", "image/jpeg", 1000, 409, "RECORD_NOT_EDITABLE"},
			{"video over 200 MiB", e.worker, draft, "video", "video/mp4", 200<<20 + 1, 413, "MEDIA_TOO_LARGE"},
			{"photo over 20 MiB", e.worker, draft, "image", "image/jpeg", 20<<20 + 1, 413, "MEDIA_TOO_LARGE"},
			{"GIF", e.worker, draft, "image", "image/gif", 1000, 400, "UNSUPPORTED_MEDIA_TYPE"},
			{"audio kind", e.worker, draft, "audio", "audio/mpeg", 1000, 400, "UNSUPPORTED_MEDIA_TYPE"},
			{"video type for a photo", e.worker, draft, "image", "video/mp4", 1000, 400, "UNSUPPORTED_MEDIA_TYPE"},
			{"empty file", e.worker, draft, "image", "image/jpeg", 0, 400, "VALIDATION_FAILED"},
			{"resident", e.resident, draft, "image", "image/jpeg", 1000, 403, "FORBIDDEN_ROLE"},
			{"station reviewer", e.chengnan, draft, "image", "image/jpeg", 1000, 403, "FORBIDDEN_ROLE"},
		}
		for _, c := range cases {
			h.expect(e.ticket(c.tok, c.rec, c.kind, c.ct, c.size), c.status, c.code)
		}
		var after int64
		h.app.DB.Model(&model.Upload{}).Count(&after)
		if after != before {
			t.Fatalf("refused tickets wrote %d upload rows", after-before)
		}
		h.expect(e.ticket(e.worker, returned, "image", "image/jpeg", 1000), 201, "")
		h.expect(e.ticket(e.orgAdmin, draft, "video", "video/quicktime", 200<<20), 201, "")
	})

	t.Run("storage refuses a tampered, mistyped or oversized PUT", func(t *testing.T) {
		tk := e.ticket(e.worker, draft, "image", "image/jpeg", len(photo))
		h.expect(tk, 201, "")
		u, _ := url.Parse(tk.str("url"))
		q := u.Query()
		sig := []byte(q.Get("sig"))
		sig[0] ^= 1
		q.Set("sig", string(sig))
		u.RawQuery = q.Encode()
		if st := e.putTo(u.String(), tk, photo); st != 403 {
			t.Fatalf("tampered signature: %d", st)
		}
		u, _ = url.Parse(tk.str("url"))
		u.Path = strings.Replace(u.Path, tk.str("upload_id"), ids.New(), 1)
		if st := e.putTo(u.String(), tk, photo); st != 403 {
			t.Fatalf("ticket used for another key: %d", st)
		}
		bigger := append(append([]byte{}, photo...), 0)
		if st := e.put(tk, bigger); st != 413 {
			t.Fatalf("more bytes than declared: %d", st)
		}
		wrongType := tk
		wrongType.Body = map[string]any{"method": "PUT", "url": tk.str("url"), "headers": map[string]any{"Content-Type": "text/html"}}
		if st := e.put(wrongType, photo); st != 403 {
			t.Fatalf("other content type: %d", st)
		}
		if objs := e.objectsOf(tk.str("upload_id")); len(objs) != 0 {
			t.Fatalf("refused PUTs stored %v", objs)
		}
	})

	t.Run("only the uploader completes", func(t *testing.T) {
		id := e.upload(e.worker, draft, "image", "image/jpeg", photo)
		h.expect(e.complete(e.orgAdmin, id, qingshe), 404, "NOT_FOUND") // same organization, other user
		h.expect(e.complete(e.zhishan, id, qingshe), 404, "NOT_FOUND")
		h.expect(e.complete(e.worker, ids.New(), qingshe), 404, "NOT_FOUND")
		if e.row(id).Status != model.UploadPending {
			t.Fatal("someone else's complete changed the upload")
		}
		h.expect(e.complete(e.worker, id, qingshe), 200, "")
	})

	t.Run("complete before the bytes arrive, then retry", func(t *testing.T) {
		p := uplPhoto(t, 4)
		tk := e.ticket(e.worker, draft, "image", "image/jpeg", len(p))
		id := tk.str("upload_id")
		h.expect(e.complete(e.worker, id, qingshe), 409, "UPLOAD_NOT_RECEIVED")
		if e.row(id).Status != model.UploadPending {
			t.Fatal("upload not left pending")
		}
		e.put(tk, p)
		h.expect(e.complete(e.worker, id, qingshe), 200, "")
	})

	t.Run("location must be a real place", func(t *testing.T) {
		id := e.upload(e.worker, draft, "image", "image/jpeg", uplPhoto(t, 5))
		for _, body := range []map[string]any{
			{"latitude": 91.0, "longitude": 108.77},
			{"latitude": 29.53},
			{"latitude": 29.53, "longitude": 181.0},
			{"latitude": 29.53, "longitude": 108.77, "accuracy_m": -1.0},
		} {
			h.expect(e.complete(e.worker, id, body), 400, "VALIDATION_FAILED")
		}
		h.expect(e.complete(e.worker, id, map[string]any{}), 200, "") // no fix at all is allowed
	})

	t.Run("expired ticket", func(t *testing.T) {
		id := e.upload(e.worker, draft, "image", "image/jpeg", uplPhoto(t, 6))
		h.app.DB.Model(&model.Upload{}).Where("id = ?", id).Update("expires_at", time.Now().Add(-time.Hour).UTC())
		h.expect(e.complete(e.worker, id, qingshe), 410, "UPLOAD_EXPIRED")
		h.expect(e.complete(e.worker, id, qingshe), 410, "UPLOAD_EXPIRED")
		if u := e.row(id); u.Status != model.UploadExpired || len(e.objectsOf(id)) != 0 {
			t.Fatalf("expired upload kept: %+v %v", u, e.objectsOf(id))
		}
	})

	t.Run("record submitted between ticket and complete", func(t *testing.T) {
		rec := e.record("好心情", model.RecordDraft)
		id := e.upload(e.worker, rec, "image", "image/jpeg", uplPhoto(t, 8))
		h.app.DB.Model(&model.SessionRecord{}).Where("id = ?", rec).Update("status", model.RecordSubmitted)
		h.expect(e.complete(e.worker, id, qingshe), 409, "RECORD_NOT_EDITABLE")
		if objs := e.objectsOf(id); len(objs) != 1 || !strings.HasPrefix(objs[0], "incoming/") {
			t.Fatalf("derived copies left behind: %v", objs)
		}
	})

	t.Run("provenance of an upload that is not ready", func(t *testing.T) {
		tk := e.ticket(e.worker, draft, "image", "image/jpeg", 100)
		h.expect(h.do("GET", "/api/v1/uploads/"+tk.str("upload_id")+"/provenance", e.worker, nil), 409, "UPLOAD_NOT_READY")
		// Reviewers do not see uploads that are not evidence yet.
		h.expect(h.do("GET", "/api/v1/uploads/"+tk.str("upload_id"), e.chengnan, nil), 404, "NOT_FOUND")
	})
}

func TestUploadCleanupOrphans(t *testing.T) {
	e := newUplEnv(t, nil)
	h := e.h
	signer, err := provenance.NewSigner(h.app.Cfg.ProvenanceSeed)
	if err != nil {
		t.Fatal(err)
	}
	svc := service.NewUploads(service.UploadsConfig{Tx: h.app.Store, Uploads: repository.NewUploads(h.app.Store), Regions: h.app.Regions,
		Users: h.app.Users, Objects: h.app.Media, Checker: h.app.WeChat, Signer: signer, Audit: h.app.Auditor, Now: h.app.Now})
	rec := e.record("好心情", model.RecordDraft)

	never := e.ticket(e.worker, rec, "image", "image/jpeg", 1234).str("upload_id") // no bytes ever sent
	p1 := uplPhoto(t, 11)
	abandoned := e.upload(e.worker, rec, "image", "image/jpeg", p1) // bytes sent, never completed
	p2 := uplPhoto(t, 12)
	tk := e.ticket(e.worker, rec, "image", "image/jpeg", len(p2))
	e.put(tk, p2)
	kept := tk.str("upload_id")
	h.expect(e.complete(e.worker, kept, qingshe), 200, "")
	e.put(tk, p2) // the PUT URL re-used after completion: a stray object
	fresh := e.upload(e.worker, rec, "image", "image/jpeg", uplPhoto(t, 13))

	ctx := context.Background()
	if n, err := svc.CleanupOrphans(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("cleanup touched live tickets: %d %v", n, err)
	}
	// Two hours on, every ticket is long expired.
	n, err := svc.CleanupOrphans(ctx, time.Now().Add(2*time.Hour))
	if err != nil || n != 4 { // never, abandoned, fresh expired; the stray object deleted
		t.Fatalf("cleanup: %d %v", n, err)
	}
	for _, id := range []string{never, abandoned, fresh} {
		if u := e.row(id); u.Status != model.UploadExpired || len(e.objectsOf(id)) != 0 {
			t.Fatalf("%s: %s, objects %v", id, u.Status, e.objectsOf(id))
		}
		if e.auditCount("upload.expire", id) != 1 {
			t.Fatalf("%s: expiry not audited", id)
		}
	}
	if u := e.row(kept); u.Status != model.UploadReady || len(e.objectsOf(kept)) != 3 {
		t.Fatalf("ready upload touched: %s %v", u.Status, e.objectsOf(kept))
	}
	if _, b := fetch(t, urls(h.do("GET", "/api/v1/uploads/"+kept, e.worker, nil))["original"].(string)); !bytes.Equal(b, p2) {
		t.Fatal("evidence lost by cleanup")
	}
	if n, err := svc.CleanupOrphans(ctx, time.Now().Add(2*time.Hour)); err != nil || n != 0 {
		t.Fatalf("second run: %d %v", n, err)
	}
}

// TestUploadOnCOS runs the whole pipeline against COS through the real SDK:
// presigned PUT straight to the (fake) bucket, and the size the presigned
// URL could not cap enforced at completion.
func TestUploadOnCOS(t *testing.T) {
	const id, secret = "AKIDqjmzUPLOADtest0000000000000000", "qjmzUPLOADtestSECRETkey000000000"
	fake := fakecos.New(fakecos.Config{SecretID: id, SecretKey: secret})
	t.Cleanup(fake.Close)
	e := newUplEnv(t, map[string]string{"QJMZ_COS_BUCKET_URL": fake.URL(), "QJMZ_COS_SECRET_ID": id, "QJMZ_COS_SECRET_KEY": secret})
	if _, ok := e.h.app.Media.(*storage.COS); !ok {
		t.Fatalf("app is not on COS: %T", e.h.app.Media)
	}
	rec := e.record("好心情", model.RecordDraft)
	photo := uplPhoto(t, 21)

	tk := e.ticket(e.worker, rec, "image", "image/jpeg", len(photo))
	e.h.expect(tk, 201, "")
	if !strings.HasPrefix(tk.str("url"), fake.URL()+"/incoming/") {
		t.Fatalf("ticket does not point at the bucket: %s", tk.str("url"))
	}
	if st := e.put(tk, photo); st != 200 {
		t.Fatalf("presigned PUT to COS: %d", st)
	}
	done := e.complete(e.worker, tk.str("upload_id"), qingshe)
	e.h.expect(done, 200, "")
	u := e.row(tk.str("upload_id"))
	stored, ct, ok := fake.Object(u.StorageKey)
	if !ok || !bytes.Equal(stored, photo) || ct != "image/jpeg" || done.str("content_check") != "pass" {
		t.Fatalf("evidence in bucket: %v %q %s", ok, ct, done.Raw)
	}
	if _, _, ok := fake.Object(incomingKey(u)); ok {
		t.Fatal("incoming object not removed after completion")
	}
	if st, b := fetch(t, urls(done)["display"].(string)); st != 200 || len(b) == 0 {
		t.Fatalf("display via presigned GET: %d", st)
	}

	t.Run("COS cannot cap a presigned PUT: completion enforces the declared size", func(t *testing.T) {
		small := uplPhoto(t, 22)
		tk := e.ticket(e.worker, rec, "image", "image/jpeg", 2000)
		if st := e.put(tk, small); st != 200 { // COS takes it
			t.Fatalf("PUT: %d", st)
		}
		e.h.expect(e.complete(e.worker, tk.str("upload_id"), qingshe), 400, "UPLOAD_SIZE_MISMATCH")
		if _, _, ok := fake.Object("incoming/" + e.orgID + "/" + tk.str("upload_id")); ok {
			t.Fatal("oversized object left in the bucket")
		}
	})
}

func incomingKey(u model.Upload) string { return "incoming/" + u.OrgID + "/" + u.ID }
