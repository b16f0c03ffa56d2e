// Package storagetest holds the behaviour every storage.Storage backend must
// share, as one test suite run against each of them, so the embedded mode
// (local disk) and production (COS) cannot drift apart.
package storagetest

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"qjmz/pkg/storage"
)

// RunContract runs the shared suite. newStore is called once per subtest and
// may return the same backend every time: every subtest works under its own
// random key prefix and deletes what it wrote, so the suite can also run
// against a real, shared bucket. client makes the plain HTTP requests a
// mini-program would make with presigned URLs.
func RunContract(t *testing.T, newStore func(t *testing.T) storage.Storage, client *http.Client) {
	t.Helper()
	c := contract{newStore: newStore, client: client}
	t.Run("put then head and get return the stored bytes and type", c.putHeadGet)
	t.Run("put with unknown size stores the whole body", c.putUnknownSize)
	t.Run("put replaces an existing object", c.putOverwrites)
	t.Run("put with a body shorter than declared stores nothing", c.putShortBody)
	t.Run("missing object is ErrNotFound", c.missing)
	t.Run("delete removes the object and is idempotent", c.deleteIdempotent)
	t.Run("invalid keys are rejected", c.invalidKeys)
	t.Run("presigned put by a plain client is stored", c.presignedPut)
	t.Run("presigned put with another content type is rejected", c.presignedPutWrongType)
	t.Run("presigned put cannot be redirected to another key", c.presignedPutOtherKey)
	t.Run("signed get url serves the bytes", c.signedGet)
	t.Run("expired urls are rejected", c.expired)
	t.Run("tampered signatures are rejected", c.tampered)
	t.Run("list returns keys under the prefix in order", c.list)
	t.Run("concurrent puts of different keys all land", c.concurrentPuts)
}

type contract struct {
	newStore func(t *testing.T) storage.Storage
	client   *http.Client
}

// setup returns a store and a key prefix nobody else uses; everything under
// the prefix is deleted when the subtest ends.
func (c contract) setup(t *testing.T) (storage.Storage, string) {
	t.Helper()
	s := c.newStore(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "contract-test/" + hex.EncodeToString(b[:]) + "/"
	t.Cleanup(func() {
		ctx := context.Background()
		objs, err := s.List(ctx, prefix, 0)
		if err != nil {
			t.Logf("cleanup list %s: %v", prefix, err)
			return
		}
		for _, o := range objs {
			if err := s.Delete(ctx, o.Key); err != nil {
				t.Logf("cleanup delete %s: %v", o.Key, err)
			}
		}
	})
	return s, prefix
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func md5Hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

func mustPut(t *testing.T, s storage.Storage, key string, body []byte, contentType string) {
	t.Helper()
	if err := s.Put(context.Background(), key, bytes.NewReader(body), int64(len(body)), contentType); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func mustGet(t *testing.T, s storage.Storage, key string) ([]byte, storage.ObjectInfo) {
	t.Helper()
	rc, info, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return b, info
}

func assertMissing(t *testing.T, s storage.Storage, key string) {
	t.Helper()
	if _, err := s.Head(context.Background(), key); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Head(%q) = %v, want ErrNotFound", key, err)
	}
}

type response struct {
	status      int
	body        []byte
	contentType string
}

func (c contract) do(t *testing.T, method, rawURL string, headers map[string]string, body []byte) response {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("build %s %s: %v", method, rawURL, err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response of %s %s: %v", method, rawURL, err)
	}
	return response{status: resp.StatusCode, body: b, contentType: resp.Header.Get("Content-Type")}
}

func (c contract) putHeadGet(t *testing.T) {
	s, p := c.setup(t)
	tests := []struct {
		name, key, contentType string
		body                   []byte
	}{
		{"small text", "notes/plain.txt", "text/plain; charset=utf-8", []byte("服务记录 ok")},
		{"binary photo", "photo/2024/05/a.jpg", "image/jpeg", randomBytes(t, 300<<10)},
		{"empty object", "empty.bin", "application/octet-stream", []byte{}},
		{"key with spaces, plus and Chinese", "照片/现场 1+2=3 (副本)&x.jpg", "image/jpeg", []byte("jpeg")},
		{"key with percent sign", "weird/100%done.mp4", "video/mp4", []byte("mp4")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			key := p + tt.key
			mustPut(t, s, key, tt.body, tt.contentType)

			info, err := s.Head(ctx, key)
			if err != nil {
				t.Fatalf("Head: %v", err)
			}
			if info.Key != key || info.Size != int64(len(tt.body)) || info.ContentType != tt.contentType {
				t.Errorf("Head = {%q %d %q}, want {%q %d %q}", info.Key, info.Size, info.ContentType, key, len(tt.body), tt.contentType)
			}
			if info.ETag != md5Hex(tt.body) {
				t.Errorf("ETag = %q, want MD5 %q", info.ETag, md5Hex(tt.body))
			}
			if info.LastModified.IsZero() {
				t.Error("LastModified is zero")
			}

			got, ginfo := mustGet(t, s, key)
			if !bytes.Equal(got, tt.body) {
				t.Errorf("Get returned %d bytes that differ from the %d put", len(got), len(tt.body))
			}
			if ginfo.Size != int64(len(tt.body)) || ginfo.ContentType != tt.contentType {
				t.Errorf("Get info = {%d %q}, want {%d %q}", ginfo.Size, ginfo.ContentType, len(tt.body), tt.contentType)
			}
		})
	}
}

// onlyReader hides the concrete type so backends cannot learn the length.
type onlyReader struct{ io.Reader }

func (c contract) putUnknownSize(t *testing.T) {
	s, p := c.setup(t)
	body := randomBytes(t, 70<<10)
	key := p + "unknown-size.bin"
	if err := s.Put(context.Background(), key, onlyReader{bytes.NewReader(body)}, -1, "application/octet-stream"); err != nil {
		t.Fatalf("Put: %v", err)
	}
	got, info := mustGet(t, s, key)
	if !bytes.Equal(got, body) || info.Size != int64(len(body)) {
		t.Fatalf("stored %d bytes (size %d), want the %d put", len(got), info.Size, len(body))
	}
}

func (c contract) putOverwrites(t *testing.T) {
	s, p := c.setup(t)
	key := p + "doc"
	mustPut(t, s, key, []byte("first version"), "text/plain")
	mustPut(t, s, key, []byte(`{"v":2}`), "application/json")
	got, info := mustGet(t, s, key)
	if string(got) != `{"v":2}` || info.ContentType != "application/json" {
		t.Fatalf("after overwrite got %q (%s), want the second version", got, info.ContentType)
	}
}

func (c contract) putShortBody(t *testing.T) {
	s, p := c.setup(t)
	key := p + "short.bin"
	err := s.Put(context.Background(), key, onlyReader{strings.NewReader("12345")}, 10, "application/octet-stream")
	if err == nil {
		t.Fatal("Put of 5 bytes declared as 10 succeeded")
	}
	assertMissing(t, s, key)
}

func (c contract) missing(t *testing.T) {
	s, p := c.setup(t)
	ctx := context.Background()
	key := p + "never-written"
	if _, err := s.Head(ctx, key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Head = %v, want ErrNotFound", err)
	}
	rc, _, err := s.Get(ctx, key)
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get = %v, want ErrNotFound", err)
	}
	if rc != nil {
		t.Error("Get of a missing object returned a reader")
		_ = rc.Close()
	}
}

func (c contract) deleteIdempotent(t *testing.T) {
	s, p := c.setup(t)
	ctx := context.Background()
	key := p + "to-delete.jpg"
	mustPut(t, s, key, []byte("x"), "image/jpeg")
	for i := range 2 {
		if err := s.Delete(ctx, key); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
		assertMissing(t, s, key)
	}
	if err := s.Delete(ctx, p+"never-existed"); err != nil {
		t.Fatalf("Delete of a key never written: %v", err)
	}
}

func (c contract) invalidKeys(t *testing.T) {
	s, p := c.setup(t)
	ctx := context.Background()
	keys := map[string]string{
		"empty":            "",
		"absolute":         "/etc/passwd",
		"parent escape":    "../outside",
		"inner parent":     p + "a/../../b",
		"dot segment":      p + "a/./b",
		"empty segment":    p + "a//b",
		"trailing slash":   p + "dir/",
		"backslash":        p + `a\..\b`,
		"newline":          p + "a\nb",
		"too long":         p + strings.Repeat("k", storage.MaxKeyBytes),
		"invalid encoding": p + "\xff\xfe",
	}
	for name, key := range keys {
		t.Run(name, func(t *testing.T) {
			ops := map[string]error{}
			ops["Put"] = s.Put(ctx, key, strings.NewReader("x"), 1, "text/plain")
			_, ops["Head"] = s.Head(ctx, key)
			_, _, ops["Get"] = s.Get(ctx, key)
			ops["Delete"] = s.Delete(ctx, key)
			_, ops["SignedGetURL"] = s.SignedGetURL(ctx, key, time.Minute)
			_, ops["PresignPut"] = s.PresignPut(ctx, key, "text/plain", 10, time.Minute)
			for op, err := range ops {
				if !errors.Is(err, storage.ErrInvalid) {
					t.Errorf("%s(%q) = %v, want ErrInvalid", op, key, err)
				}
			}
		})
	}
}

func (c contract) presignedPut(t *testing.T) {
	s, p := c.setup(t)
	ctx := context.Background()
	key := p + "upload/现场照片 1.jpg"
	body := randomBytes(t, 200<<10)
	before := time.Now()
	ticket, err := s.PresignPut(ctx, key, "image/jpeg", 1<<20, 5*time.Minute)
	if err != nil {
		t.Fatalf("PresignPut: %v", err)
	}
	if ticket.Method != http.MethodPut || ticket.MaxBytes != 1<<20 || ticket.Headers["Content-Type"] != "image/jpeg" {
		t.Errorf("ticket = %+v, want PUT, MaxBytes 1MiB and the Content-Type header", ticket)
	}
	if ticket.ExpiresAt.Before(before.Add(4*time.Minute)) || ticket.ExpiresAt.After(time.Now().Add(5*time.Minute+time.Second)) {
		t.Errorf("ExpiresAt = %v, want about 5 minutes from %v", ticket.ExpiresAt, before)
	}
	if r := c.do(t, ticket.Method, ticket.URL, ticket.Headers, body); r.status != http.StatusOK {
		t.Fatalf("PUT to presigned URL: %d %s", r.status, r.body)
	}
	info, err := s.Head(ctx, key)
	if err != nil {
		t.Fatalf("Head after presigned PUT: %v", err)
	}
	if info.Size != int64(len(body)) || info.ContentType != "image/jpeg" {
		t.Errorf("Head = {%d %q}, want {%d image/jpeg}", info.Size, info.ContentType, len(body))
	}
	if got, _ := mustGet(t, s, key); !bytes.Equal(got, body) {
		t.Error("stored bytes differ from the uploaded ones")
	}
}

func (c contract) presignedPutWrongType(t *testing.T) {
	s, p := c.setup(t)
	key := p + "upload/b.jpg"
	ticket, err := s.PresignPut(context.Background(), key, "image/jpeg", 1<<20, 5*time.Minute)
	if err != nil {
		t.Fatalf("PresignPut: %v", err)
	}
	r := c.do(t, ticket.Method, ticket.URL, map[string]string{"Content-Type": "text/html"}, []byte("<script>alert(1)</script>"))
	if r.status != http.StatusForbidden {
		t.Fatalf("PUT with another content type: %d, want 403", r.status)
	}
	assertMissing(t, s, key)
}

func (c contract) presignedPutOtherKey(t *testing.T) {
	s, p := c.setup(t)
	key, other := p+"upload/mine.jpg", p+"upload/theirs.jpg"
	ticket, err := s.PresignPut(context.Background(), key, "image/jpeg", 1<<20, 5*time.Minute)
	if err != nil {
		t.Fatalf("PresignPut: %v", err)
	}
	redirected := strings.Replace(ticket.URL, "mine.jpg", "theirs.jpg", 1)
	if redirected == ticket.URL {
		t.Fatalf("key not found in URL %s", ticket.URL)
	}
	if r := c.do(t, ticket.Method, redirected, ticket.Headers, []byte("x")); r.status != http.StatusForbidden {
		t.Fatalf("PUT to another key: %d, want 403", r.status)
	}
	assertMissing(t, s, key)
	assertMissing(t, s, other)
}

func (c contract) signedGet(t *testing.T) {
	s, p := c.setup(t)
	ctx := context.Background()
	body := randomBytes(t, 64<<10)
	key := p + "media/视频 1.mp4"
	mustPut(t, s, key, body, "video/mp4")
	u, err := s.SignedGetURL(ctx, key, 5*time.Minute)
	if err != nil {
		t.Fatalf("SignedGetURL: %v", err)
	}
	r := c.do(t, http.MethodGet, u, nil, nil)
	if r.status != http.StatusOK || !bytes.Equal(r.body, body) || r.contentType != "video/mp4" {
		t.Fatalf("GET signed URL = %d, %d bytes, %q; want 200, the %d bytes put, video/mp4", r.status, len(r.body), r.contentType, len(body))
	}

	missing, err := s.SignedGetURL(ctx, p+"media/gone.mp4", 5*time.Minute)
	if err != nil {
		t.Fatalf("SignedGetURL of a missing key: %v", err)
	}
	if r := c.do(t, http.MethodGet, missing, nil, nil); r.status != http.StatusNotFound {
		t.Fatalf("GET signed URL of a missing object = %d, want 404", r.status)
	}
}

func (c contract) expired(t *testing.T) {
	s, p := c.setup(t)
	ctx := context.Background()
	existing := p + "old.jpg"
	mustPut(t, s, existing, []byte("jpeg"), "image/jpeg")
	for _, ttl := range []time.Duration{0, -time.Second, -time.Hour} {
		t.Run(fmt.Sprintf("ttl %v", ttl), func(t *testing.T) {
			key := p + "late.jpg"
			ticket, err := s.PresignPut(ctx, key, "image/jpeg", 1<<20, ttl)
			if err != nil {
				t.Fatalf("PresignPut: %v", err)
			}
			if !ticket.ExpiresAt.Before(time.Now()) {
				t.Errorf("ExpiresAt = %v, want in the past", ticket.ExpiresAt)
			}
			if r := c.do(t, ticket.Method, ticket.URL, ticket.Headers, []byte("jpeg")); r.status != http.StatusForbidden {
				t.Errorf("PUT with expired URL = %d, want 403", r.status)
			}
			assertMissing(t, s, key)

			u, err := s.SignedGetURL(ctx, existing, ttl)
			if err != nil {
				t.Fatalf("SignedGetURL: %v", err)
			}
			if r := c.do(t, http.MethodGet, u, nil, nil); r.status != http.StatusForbidden {
				t.Errorf("GET with expired URL = %d, want 403", r.status)
			}
		})
	}
}

// tamperSignature flips one hex digit of the signature parameter, whatever
// the backend calls it ("sig", "q-signature").
func tamperSignature(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for name, vs := range q {
		if !strings.Contains(name, "sig") || len(vs) != 1 || len(vs[0]) < 16 {
			continue
		}
		if _, err := hex.DecodeString(vs[0]); err != nil {
			continue
		}
		b := []byte(vs[0])
		if b[0] == '0' {
			b[0] = '1'
		} else {
			b[0] = '0'
		}
		// Edit the raw query in place so nothing but the signature changes.
		return strings.Replace(raw, name+"="+vs[0], name+"="+string(b), 1)
	}
	t.Fatalf("no hex signature parameter in %s", raw)
	return ""
}

func (c contract) tampered(t *testing.T) {
	s, p := c.setup(t)
	ctx := context.Background()
	key := p + "signed.jpg"
	mustPut(t, s, key, []byte("jpeg"), "image/jpeg")

	getURL, err := s.SignedGetURL(ctx, key, 5*time.Minute)
	if err != nil {
		t.Fatalf("SignedGetURL: %v", err)
	}
	if r := c.do(t, http.MethodGet, tamperSignature(t, getURL), nil, nil); r.status != http.StatusForbidden {
		t.Errorf("GET with tampered signature = %d, want 403", r.status)
	}

	upKey := p + "upload.jpg"
	ticket, err := s.PresignPut(ctx, upKey, "image/jpeg", 1<<20, 5*time.Minute)
	if err != nil {
		t.Fatalf("PresignPut: %v", err)
	}
	if r := c.do(t, ticket.Method, tamperSignature(t, ticket.URL), ticket.Headers, []byte("jpeg")); r.status != http.StatusForbidden {
		t.Errorf("PUT with tampered signature = %d, want 403", r.status)
	}
	assertMissing(t, s, upKey)

	// A download URL must not double as an upload URL.
	if r := c.do(t, http.MethodPut, getURL, map[string]string{"Content-Type": "image/jpeg"}, []byte("overwrite")); r.status != http.StatusForbidden {
		t.Errorf("PUT with a GET URL = %d, want 403", r.status)
	}
	if got, _ := mustGet(t, s, key); string(got) != "jpeg" {
		t.Errorf("object changed to %q through a GET URL", got)
	}
}

func (c contract) list(t *testing.T) {
	s, p := c.setup(t)
	ctx := context.Background()
	sizes := map[string]int{"a/1": 1, "a/2": 22, "a/sub/3": 333, "a-b": 4, "b/1": 5}
	for k, n := range sizes {
		mustPut(t, s, p+k, bytes.Repeat([]byte("x"), n), "application/octet-stream")
	}
	tests := []struct {
		name   string
		prefix string
		limit  int
		want   []string
	}{
		{"directory prefix", "a/", 0, []string{"a/1", "a/2", "a/sub/3"}},
		{"partial name prefix in byte order", "a", 0, []string{"a-b", "a/1", "a/2", "a/sub/3"}},
		{"limit keeps the first keys", "a", 2, []string{"a-b", "a/1"}},
		{"nested prefix", "a/sub/", 10, []string{"a/sub/3"}},
		{"no match", "zzz/", 10, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := s.List(ctx, p+tt.prefix, tt.limit)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			var got []string
			for _, o := range objs {
				k := strings.TrimPrefix(o.Key, p)
				got = append(got, k)
				if o.Size != int64(sizes[k]) {
					t.Errorf("%s: size %d, want %d", k, o.Size, sizes[k])
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("List(%q, %d) = %q, want %q", tt.prefix, tt.limit, got, tt.want)
			}
		})
	}
}

func (c contract) concurrentPuts(t *testing.T) {
	s, p := c.setup(t)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			body := fmt.Appendf(nil, "object %d", i)
			errs[i] = s.Put(context.Background(), fmt.Sprintf("%sc/%d", p, i), bytes.NewReader(body), int64(len(body)), "text/plain")
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
		got, _ := mustGet(t, s, fmt.Sprintf("%sc/%d", p, i))
		if want := fmt.Sprintf("object %d", i); string(got) != want {
			t.Errorf("object %d = %q, want %q", i, got, want)
		}
	}
}
