package storage_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"qjmz/pkg/storage"
	"qjmz/pkg/storage/storagetest"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// fakeClock is a settable clock for expiry tests without sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type localEnv struct {
	store *storage.Local
	root  string
	srv   *httptest.Server
}

// newLocalEnv serves a fresh Local under /media/ on a loopback server, the
// way cmd wiring mounts it.
func newLocalEnv(t *testing.T, now func() time.Time) localEnv {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	root := t.TempDir()
	l, err := storage.NewLocal(storage.LocalConfig{
		Root:          root,
		PublicBaseURL: "http://" + srv.Listener.Addr().String() + "/media",
		Secret:        testSecret,
		Now:           now,
	})
	if err != nil {
		t.Fatalf("NewLocal: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/media/", l.Handler())
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	return localEnv{store: l, root: root, srv: srv}
}

func TestLocalContract(t *testing.T) {
	storagetest.RunContract(t, func(t *testing.T) storage.Storage {
		return newLocalEnv(t, nil).store
	}, &http.Client{Timeout: 30 * time.Second})
}

func send(t *testing.T, method, url string, header http.Header, body io.Reader, contentLength int64) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = contentLength
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestLocalPresignedPutEnforcesMaxBytes(t *testing.T) {
	const maxBytes = 64 << 10
	tests := []struct {
		name       string
		size       int
		chunked    bool // no Content-Length, so only counting the body can catch it
		wantStatus int
	}{
		{"exactly the limit", maxBytes, false, http.StatusOK},
		{"one byte over, declared", maxBytes + 1, false, http.StatusRequestEntityTooLarge},
		{"one byte over, chunked", maxBytes + 1, true, http.StatusRequestEntityTooLarge},
		{"far over, chunked", 4 * maxBytes, true, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newLocalEnv(t, nil)
			ctx := context.Background()
			ticket, err := env.store.PresignPut(ctx, "evidence/v.mp4", "video/mp4", maxBytes, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			var body io.Reader = bytes.NewReader(make([]byte, tt.size))
			length := int64(tt.size)
			if tt.chunked {
				body = io.MultiReader(body) // hides the length from net/http
				length = -1
			}
			resp := send(t, ticket.Method, ticket.URL, http.Header{"Content-Type": {"video/mp4"}}, body, length)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			info, err := env.store.Head(ctx, "evidence/v.mp4")
			if tt.wantStatus == http.StatusOK {
				if err != nil || info.Size != int64(tt.size) {
					t.Fatalf("Head = %+v, %v; want the %d bytes stored", info, err, tt.size)
				}
				return
			}
			if !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("Head after rejected upload = %v, want ErrNotFound", err)
			}
			if left, _ := os.ReadDir(filepath.Join(env.root, "tmp")); len(left) != 0 {
				t.Fatalf("rejected upload left %d temporary files", len(left))
			}
		})
	}
}

func TestLocalHandlerRejectsBadRequests(t *testing.T) {
	env := newLocalEnv(t, nil)
	ctx := context.Background()
	if err := env.store.Put(ctx, "secret.txt", strings.NewReader("top secret"), 10, "text/plain"); err != nil {
		t.Fatal(err)
	}
	good, err := env.store.SignedGetURL(ctx, "secret.txt", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	query := good[strings.Index(good, "?"):]
	tests := []struct {
		name, method, path string
		want               int
	}{
		{"valid signed get", http.MethodGet, "/media/secret.txt" + query, http.StatusOK},
		{"no signature", http.MethodGet, "/media/secret.txt", http.StatusForbidden},
		{"signature for another key", http.MethodGet, "/media/other.txt" + query, http.StatusForbidden},
		{"parent traversal", http.MethodGet, "/media/../../etc/passwd" + query, http.StatusBadRequest},
		{"encoded traversal", http.MethodGet, "/media/a/%2e%2e/secret.txt" + query, http.StatusBadRequest},
		{"outside the base path", http.MethodGet, "/other/secret.txt" + query, http.StatusNotFound},
		{"unsupported method", http.MethodDelete, "/media/secret.txt" + query, http.StatusMethodNotAllowed},
	}
	h := env.store.Handler()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Straight to the handler: a ServeMux in front would clean
			// the traversal paths before the handler saw them.
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d", rec.Code, tt.want)
			}
			if tt.want != http.StatusOK && strings.Contains(rec.Body.String(), "top secret") {
				t.Fatal("rejected request was served the object")
			}
		})
	}
}

func TestLocalSignedURLsFollowTheClock(t *testing.T) {
	clock := &fakeClock{t: time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)}
	env := newLocalEnv(t, clock.Now)
	ctx := context.Background()
	if err := env.store.Put(ctx, "a.jpg", strings.NewReader("jpeg"), 4, "image/jpeg"); err != nil {
		t.Fatal(err)
	}
	getURL, err := env.store.SignedGetURL(ctx, "a.jpg", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ticket, err := env.store.PresignPut(ctx, "b.jpg", "image/jpeg", 100, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if want := clock.Now().Add(10 * time.Minute); !ticket.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", ticket.ExpiresAt, want)
	}
	steps := []struct {
		advance time.Duration
		want    int
	}{
		{9*time.Minute + 59*time.Second, http.StatusOK},
		{time.Second, http.StatusForbidden},
	}
	hdr := http.Header{"Content-Type": {"image/jpeg"}}
	for _, st := range steps {
		clock.Advance(st.advance)
		if got := send(t, http.MethodGet, getURL, nil, nil, 0).StatusCode; got != st.want {
			t.Errorf("GET at %v: %d, want %d", clock.Now(), got, st.want)
		}
		if got := send(t, http.MethodPut, ticket.URL, hdr, strings.NewReader("jpeg"), 4).StatusCode; got != st.want {
			t.Errorf("PUT at %v: %d, want %d", clock.Now(), got, st.want)
		}
	}
}

func TestLocalServesMediaSafely(t *testing.T) {
	env := newLocalEnv(t, nil)
	ctx := context.Background()
	video := bytes.Repeat([]byte("0123456789"), 1000)
	if err := env.store.Put(ctx, "v.mp4", bytes.NewReader(video), int64(len(video)), "video/mp4"); err != nil {
		t.Fatal(err)
	}
	if err := env.store.Put(ctx, "x.html", strings.NewReader("<script>"), 8, "text/html"); err != nil {
		t.Fatal(err)
	}

	t.Run("range requests let the player seek", func(t *testing.T) {
		u, _ := env.store.SignedGetURL(ctx, "v.mp4", time.Minute)
		resp := send(t, http.MethodGet, u, http.Header{"Range": {"bytes=100-109"}}, nil, 0)
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusPartialContent || string(got) != "0123456789" {
			t.Fatalf("range GET = %d %q, want 206 with the ten requested bytes", resp.StatusCode, got)
		}
	})
	t.Run("uploaded html cannot run as a page", func(t *testing.T) {
		u, _ := env.store.SignedGetURL(ctx, "x.html", time.Minute)
		resp := send(t, http.MethodGet, u, nil, nil, 0)
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Content-Security-Policy") != "sandbox" {
			t.Fatalf("headers %v lack nosniff and a sandbox policy", resp.Header)
		}
	})
}

func TestNewLocalRejectsBadConfig(t *testing.T) {
	root := t.TempDir()
	tests := []struct {
		name string
		cfg  storage.LocalConfig
	}{
		{"no root", storage.LocalConfig{PublicBaseURL: "http://127.0.0.1/media", Secret: testSecret}},
		{"short secret", storage.LocalConfig{Root: root, PublicBaseURL: "http://127.0.0.1/media", Secret: []byte("short")}},
		{"relative base URL", storage.LocalConfig{Root: root, PublicBaseURL: "/media", Secret: testSecret}},
		{"base URL with query", storage.LocalConfig{Root: root, PublicBaseURL: "http://127.0.0.1/media?x=1", Secret: testSecret}},
		{"non-http scheme", storage.LocalConfig{Root: root, PublicBaseURL: "ftp://127.0.0.1/media", Secret: testSecret}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := storage.NewLocal(tt.cfg); !errors.Is(err, storage.ErrInvalid) {
				t.Fatalf("NewLocal = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestNewLocalRemovesStaleTempFiles(t *testing.T) {
	root := t.TempDir()
	tmp := filepath.Join(root, "tmp")
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	files := map[string]time.Time{"put-crashed": now.Add(-2 * time.Hour), "put-in-progress": now.Add(-time.Minute)}
	for name, mtime := range files {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := storage.NewLocal(storage.LocalConfig{Root: root, PublicBaseURL: "http://127.0.0.1/media", Secret: testSecret}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(tmp, "put-crashed")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp file from a crash two hours ago survived: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tmp, "put-in-progress")); err != nil {
		t.Errorf("recent temp file was removed: %v", err)
	}
}

func BenchmarkLocalPresignedPut(b *testing.B) {
	srv := httptest.NewUnstartedServer(nil)
	l, err := storage.NewLocal(storage.LocalConfig{
		Root: b.TempDir(), PublicBaseURL: "http://" + srv.Listener.Addr().String() + "/media", Secret: testSecret,
	})
	if err != nil {
		b.Fatal(err)
	}
	srv.Config.Handler = l.Handler()
	srv.Start()
	defer srv.Close()
	body := make([]byte, 1<<20)
	ctx := context.Background()
	b.SetBytes(int64(len(body)))
	for i := 0; b.Loop(); i++ {
		ticket, err := l.PresignPut(ctx, "bench/photo.jpg", "image/jpeg", 2<<20, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		req, _ := http.NewRequest(ticket.Method, ticket.URL, bytes.NewReader(body))
		req.Header.Set("Content-Type", "image/jpeg")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("PUT: %v %v", resp, err)
		}
		resp.Body.Close()
	}
}
