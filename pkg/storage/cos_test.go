package storage_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	cos "github.com/tencentyun/cos-go-sdk-v5"

	"qjmz/pkg/storage"
	"qjmz/pkg/storage/fakecos"
	"qjmz/pkg/storage/storagetest"
)

const (
	fakeSecretID  = "AKIDqjmzTESTexample000000000000000"
	fakeSecretKey = "qjmzTESTsecretKEYexample00000000"
)

func newFakeCOS(t *testing.T) *fakecos.Server {
	t.Helper()
	f := fakecos.New(fakecos.Config{SecretID: fakeSecretID, SecretKey: fakeSecretKey})
	t.Cleanup(f.Close)
	return f
}

func newCOS(t *testing.T, bucketURL, secretID, secretKey string) *storage.COS {
	t.Helper()
	c, err := storage.NewCOS(storage.COSConfig{
		BucketURL:  bucketURL,
		SecretID:   secretID,
		SecretKey:  secretKey,
		HTTPClient: &http.Client{Timeout: 30 * time.Second},
	})
	if err != nil {
		t.Fatalf("NewCOS: %v", err)
	}
	return c
}

func TestCOSContract(t *testing.T) {
	fake := newFakeCOS(t)
	storagetest.RunContract(t, func(t *testing.T) storage.Storage {
		return newCOS(t, fake.URL(), fakeSecretID, fakeSecretKey)
	}, &http.Client{Timeout: 30 * time.Second})
}

// TestCOSRealBucket runs the contract against a real bucket when one is
// configured, to catch the fake drifting from COS. It writes only under a
// random contract-test/ prefix and deletes what it wrote.
func TestCOSRealBucket(t *testing.T) {
	bucketURL := os.Getenv("QJMZ_TEST_COS_BUCKET_URL")
	id, key := os.Getenv("QJMZ_TEST_COS_SECRET_ID"), os.Getenv("QJMZ_TEST_COS_SECRET_KEY")
	if bucketURL == "" || id == "" || key == "" {
		t.Skip("set QJMZ_TEST_COS_BUCKET_URL, QJMZ_TEST_COS_SECRET_ID and QJMZ_TEST_COS_SECRET_KEY to run against real COS")
	}
	storagetest.RunContract(t, func(t *testing.T) storage.Storage {
		return newCOS(t, bucketURL, id, key)
	}, &http.Client{Timeout: time.Minute})
}

func TestCOSRejectsWrongCredentials(t *testing.T) {
	tests := []struct {
		name, secretID, secretKey, wantCode string
	}{
		{"wrong secret key", fakeSecretID, "not-the-right-key-at-all-000000", fakecos.CodeSignatureDoesNotMatch},
		{"unknown secret id", "AKIDsomeoneelse0000000000000000000", fakeSecretKey, fakecos.CodeInvalidAccessKeyID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeCOS(t)
			good := newCOS(t, fake.URL(), fakeSecretID, fakeSecretKey)
			bad := newCOS(t, fake.URL(), tt.secretID, tt.secretKey)
			ctx := context.Background()

			err := bad.Put(ctx, "evidence/a.jpg", strings.NewReader("jpeg"), 4, "image/jpeg")
			assertCOSCode(t, "Put", err, tt.wantCode)
			if fake.Len() != 0 {
				t.Fatalf("bucket holds %d objects after a rejected upload", fake.Len())
			}

			mustPutCOS(t, good, "evidence/b.jpg", "jpeg")
			_, err = bad.Head(ctx, "evidence/b.jpg")
			if errors.Is(err, storage.ErrNotFound) || !storage.IsAccessError(err) {
				t.Fatalf("Head with bad credentials = %v, want an access error, not ErrNotFound", err)
			}
			_, _, err = bad.Get(ctx, "evidence/b.jpg")
			assertCOSCode(t, "Get", err, tt.wantCode)
			_, err = bad.List(ctx, "evidence/", 10)
			assertCOSCode(t, "List", err, tt.wantCode)
			err = bad.Delete(ctx, "evidence/b.jpg")
			assertCOSCode(t, "Delete", err, tt.wantCode)
			if _, err := good.Head(ctx, "evidence/b.jpg"); err != nil {
				t.Fatalf("object gone after a rejected delete: %v", err)
			}

			// URLs signed with the wrong key are refused too, with the
			// COS XML error body a client can log.
			u, err := bad.SignedGetURL(ctx, "evidence/b.jpg", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			status, code := fetchCOSError(t, u)
			if status != http.StatusForbidden || code != tt.wantCode {
				t.Fatalf("GET with badly signed URL = %d %q, want 403 %q", status, code, tt.wantCode)
			}
		})
	}
}

func mustPutCOS(t *testing.T, s storage.Storage, key, body string) {
	t.Helper()
	if err := s.Put(context.Background(), key, strings.NewReader(body), int64(len(body)), "image/jpeg"); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func assertCOSCode(t *testing.T, op string, err error, want string) {
	t.Helper()
	var er *cos.ErrorResponse
	if !errors.As(err, &er) || er.Code != want || !storage.IsAccessError(err) {
		t.Fatalf("%s = %v, want COS error %s", op, err, want)
	}
}

func fetchCOSError(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Code string }
	b, _ := io.ReadAll(resp.Body)
	_ = xml.Unmarshal(b, &body)
	return resp.StatusCode, body.Code
}

func TestCOSErrNotFoundKeepsSDKError(t *testing.T) {
	s := newCOS(t, newFakeCOS(t).URL(), fakeSecretID, fakeSecretKey)
	_, _, err := s.Get(context.Background(), "nope.jpg")
	var er *cos.ErrorResponse
	if !errors.Is(err, storage.ErrNotFound) || !errors.As(err, &er) || er.Code != fakecos.CodeNoSuchKey {
		t.Fatalf("Get of missing key = %v, want ErrNotFound wrapping the NoSuchKey response", err)
	}
}

func TestCOSListPagesPastOneThousand(t *testing.T) {
	fake := newFakeCOS(t)
	s := newCOS(t, fake.URL(), fakeSecretID, fakeSecretKey)
	for i := range 1203 {
		fake.Seed(fmt.Sprintf("orphans/%05d", i), []byte("x"), "image/jpeg")
	}
	fake.Seed("orphans-not/1", []byte("x"), "image/jpeg")
	fake.Seed("orphans/dir/", nil, "") // a console "folder": not an object key
	tests := []struct {
		limit, want int
		last        string
	}{
		{0, 1000, "orphans/00999"},
		{1100, 1100, "orphans/01099"},
		{5000, 1203, "orphans/01202"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("limit %d", tt.limit), func(t *testing.T) {
			objs, err := s.List(context.Background(), "orphans/", tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(objs) != tt.want || objs[len(objs)-1].Key != tt.last {
				t.Fatalf("got %d objects ending %q, want %d ending %q", len(objs), objs[len(objs)-1].Key, tt.want, tt.last)
			}
			for i := 1; i < len(objs); i++ {
				if objs[i-1].Key >= objs[i].Key {
					t.Fatalf("keys out of order at %d: %q then %q", i, objs[i-1].Key, objs[i].Key)
				}
			}
		})
	}
}

func TestNewCOSRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  storage.COSConfig
	}{
		{"no URL", storage.COSConfig{SecretID: "id", SecretKey: "key"}},
		{"path-style URL", storage.COSConfig{BucketURL: "http://127.0.0.1:9000/bucket-1250000000", SecretID: "id", SecretKey: "key"}},
		{"no scheme", storage.COSConfig{BucketURL: "qjmz-1250000000.cos.ap-chongqing.myqcloud.com", SecretID: "id", SecretKey: "key"}},
		{"no secret id", storage.COSConfig{BucketURL: "https://qjmz-1250000000.cos.ap-chongqing.myqcloud.com", SecretKey: "key"}},
		{"secret key with a trailing space", storage.COSConfig{BucketURL: "https://qjmz-1250000000.cos.ap-chongqing.myqcloud.com", SecretID: "id", SecretKey: "key "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := storage.NewCOS(tt.cfg); !errors.Is(err, storage.ErrInvalid) {
				t.Fatalf("NewCOS = %v, want ErrInvalid", err)
			}
		})
	}
}

func BenchmarkCOSPutThroughSDK(b *testing.B) {
	fake := fakecos.New(fakecos.Config{SecretID: fakeSecretID, SecretKey: fakeSecretKey})
	defer fake.Close()
	s, err := storage.NewCOS(storage.COSConfig{BucketURL: fake.URL(), SecretID: fakeSecretID, SecretKey: fakeSecretKey})
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 1<<20)
	ctx := context.Background()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := s.Put(ctx, "bench/photo.jpg", bytes.NewReader(body), int64(len(body)), "image/jpeg"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCOSPresignPut(b *testing.B) {
	s, err := storage.NewCOS(storage.COSConfig{BucketURL: "https://qjmz-1250000000.cos.ap-chongqing.myqcloud.com", SecretID: fakeSecretID, SecretKey: fakeSecretKey})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		if _, err := s.PresignPut(ctx, "evidence/2024/05/photo.jpg", "image/jpeg", 10<<20, 15*time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}
