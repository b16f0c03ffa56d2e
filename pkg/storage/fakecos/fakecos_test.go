package fakecos_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"hash/crc64"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cos "github.com/tencentyun/cos-go-sdk-v5"

	"qjmz/pkg/storage/fakecos"
)

const (
	testID  = "AKIDfakecosTEST0000000000000000000"
	testKey = "fakecosTESTsecretKEY000000000000"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func start(t *testing.T, id, key string, now func() time.Time) *fakecos.Server {
	t.Helper()
	s := fakecos.New(fakecos.Config{SecretID: id, SecretKey: key, Now: now})
	t.Cleanup(s.Close)
	return s
}

type cosError struct {
	Code      string
	Message   string
	RequestID string `xml:"RequestId"`
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte, cosError) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var e cosError
	if resp.StatusCode >= 300 {
		if err := xml.Unmarshal(body, &e); err != nil {
			t.Fatalf("status %d with a body that is not COS XML: %q", resp.StatusCode, body)
		}
	}
	return resp, body, e
}

// TestAcceptsPublishedSDKVector replays the signed request from the SDK's own
// auth_test.go (host, headers, times and expected signature fixed there), so
// the fake's canonicalisation is pinned to the SDK, not to itself.
func TestAcceptsPublishedSDKVector(t *testing.T) {
	const (
		id   = "QmFzZTY0IGlzIGEgZ2VuZXJp"
		key  = "AKIDZfbOA78asKUYBcXFrJD0a1ICvR98JM"
		host = "testbucket-125000000.cos.ap-guangzhou.myqcloud.com"
		auth = "q-sign-algorithm=sha1&q-ak=QmFzZTY0IGlzIGEgZ2VuZXJp&q-sign-time=1480932292;1481012292&q-key-time=1480932292;1481012292&q-header-list=host;x-cos-content-sha1;x-cos-stroage-class&q-url-param-list=&q-signature=ce4ac0ecbcdb30538b3fee0a97cc6389694ce53a"
	)
	httpString := "put\n/testfile2\n\nhost=" + host + "&x-cos-content-sha1=db8ac1c259eb89d4a131b253bacfca5f319d54f2&x-cos-stroage-class=nearline\n"
	if got := hex.EncodeToString(fakecos.Sign(key, "1480932292;1481012292", httpString)); got != "ce4ac0ecbcdb30538b3fee0a97cc6389694ce53a" {
		t.Fatalf("Sign = %s, want the SDK's published signature", got)
	}

	s := start(t, id, key, func() time.Time { return time.Unix(1480932300, 0) })
	req, _ := http.NewRequest(http.MethodPut, s.URL()+"/testfile2", strings.NewReader("hello"))
	req.Host = host
	req.Header.Set("Authorization", auth)
	req.Header.Set("x-cos-content-sha1", "db8ac1c259eb89d4a131b253bacfca5f319d54f2")
	req.Header.Set("x-cos-stroage-class", "nearline")
	if resp, body, _ := do(t, req); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT with the SDK's vector = %d %s, want 200", resp.StatusCode, body)
	}
	if data, _, ok := s.Object("testfile2"); !ok || string(data) != "hello" {
		t.Fatalf("object not stored: %q %v", data, ok)
	}
}

func TestRefusesBadSignatures(t *testing.T) {
	now := time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)
	window := func(from, to time.Duration) *cos.AuthTime {
		return &cos.AuthTime{SignStartTime: now.Add(from), SignEndTime: now.Add(to), KeyStartTime: now.Add(from), KeyEndTime: now.Add(to)}
	}
	tests := []struct {
		name      string
		id, key   string
		at        *cos.AuthTime
		after     func(*http.Request) // changes made after signing
		status    int
		code      string
		inMessage string
	}{
		{"valid request", testID, testKey, window(-time.Minute, time.Hour), nil, http.StatusOK, "", ""},
		{"no signature", "", "", nil, nil, http.StatusForbidden, fakecos.CodeAccessDenied, ""},
		{"unknown secret id", "AKIDnobody", testKey, window(-time.Minute, time.Hour), nil, http.StatusForbidden, fakecos.CodeInvalidAccessKeyID, ""},
		{"wrong secret key", testID, "wrong", window(-time.Minute, time.Hour), nil, http.StatusForbidden, fakecos.CodeSignatureDoesNotMatch, ""},
		{"expired", testID, testKey, window(-2*time.Hour, -time.Hour), nil, http.StatusForbidden, fakecos.CodeAccessDenied, "Request has expired"},
		{"starts far in the future", testID, testKey, window(time.Hour, 2*time.Hour), nil, http.StatusForbidden, fakecos.CodeRequestTimeTooSkewed, ""},
		{"signed header changed", testID, testKey, window(-time.Minute, time.Hour),
			func(r *http.Request) { r.Header.Set("x-cos-meta-record", "999") }, http.StatusForbidden, fakecos.CodeSignatureDoesNotMatch, ""},
		{"signed query changed", testID, testKey, window(-time.Minute, time.Hour),
			func(r *http.Request) { r.URL.RawQuery = "prefix=other%2F" }, http.StatusForbidden, fakecos.CodeSignatureDoesNotMatch, ""},
		{"other host", testID, testKey, window(-time.Minute, time.Hour),
			func(r *http.Request) { r.Host = "evil.example" }, http.StatusForbidden, fakecos.CodeSignatureDoesNotMatch, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, testID, testKey, func() time.Time { return now })
			req, _ := http.NewRequest(http.MethodGet, s.URL()+"/?prefix=evidence%2F", nil)
			req.Header.Set("x-cos-meta-record", "42")
			if tt.at != nil {
				cos.AddAuthorizationHeader(tt.id, tt.key, "", req, tt.at)
			}
			if tt.after != nil {
				tt.after(req)
			}
			resp, body, e := do(t, req)
			if resp.StatusCode != tt.status || e.Code != tt.code {
				t.Fatalf("= %d %q, want %d %q; body %s", resp.StatusCode, e.Code, tt.status, tt.code, body)
			}
			if !strings.Contains(e.Message, tt.inMessage) {
				t.Errorf("message %q lacks %q", e.Message, tt.inMessage)
			}
			if tt.code != "" && (e.RequestID == "" || resp.Header.Get("x-cos-request-id") != e.RequestID) {
				t.Errorf("request id %q in body vs %q in header", e.RequestID, resp.Header.Get("x-cos-request-id"))
			}
		})
	}
}

func TestPresignedURLExpiresOnTheFakeClock(t *testing.T) {
	c := &clock{t: time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)}
	s := start(t, testID, testKey, c.Now)
	s.Seed("evidence/a.jpg", []byte("jpeg"), "image/jpeg")
	u, _ := url.Parse(s.URL())
	client := cos.NewClient(&cos.BaseURL{BucketURL: u}, nil)
	at := &cos.AuthTime{SignStartTime: c.Now(), SignEndTime: c.Now().Add(10 * time.Minute), KeyStartTime: c.Now(), KeyEndTime: c.Now().Add(10 * time.Minute)}
	signed, err := client.Object.GetPresignedURL(context.Background(), http.MethodGet, "evidence/a.jpg", testID, testKey, 0, &cos.PresignedURLOptions{AuthTime: at})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		at     time.Duration
		status int
	}{
		{9 * time.Minute, http.StatusOK},
		{10 * time.Minute, http.StatusOK}, // the end second itself is still valid
		{10*time.Minute + time.Second, http.StatusForbidden},
	}
	base := c.Now()
	for _, st := range steps {
		c.Set(base.Add(st.at))
		req, _ := http.NewRequest(http.MethodGet, signed.String(), nil)
		resp, body, _ := do(t, req)
		if resp.StatusCode != st.status {
			t.Fatalf("GET %v after signing = %d %s, want %d", st.at, resp.StatusCode, body, st.status)
		}
	}
}

func TestPutAnswersWithCRC64AndMD5(t *testing.T) {
	s := start(t, testID, testKey, nil)
	body := "证据照片 bytes"
	req, _ := http.NewRequest(http.MethodPut, s.URL()+"/e/1.jpg", strings.NewReader(body))
	req.Header.Set("Content-Type", "image/jpeg")
	cos.AddAuthorizationHeader(testID, testKey, "", req, cos.NewAuthTime(time.Minute))
	resp, b, _ := do(t, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT = %d %s", resp.StatusCode, b)
	}
	wantCRC := strconv.FormatUint(crc64.Checksum([]byte(body), crc64.MakeTable(crc64.ECMA)), 10)
	if got := resp.Header.Get("x-cos-hash-crc64ecma"); got != wantCRC {
		t.Errorf("x-cos-hash-crc64ecma = %q, want %q (the SDK refuses uploads without it)", got, wantCRC)
	}
	sum := md5.Sum([]byte(body))
	if got, want := resp.Header.Get("ETag"), `"`+hex.EncodeToString(sum[:])+`"`; got != want {
		t.Errorf("ETag = %q, want the quoted MD5 %q", got, want)
	}
}

func TestRefusesSubresourcesItDoesNotSpeak(t *testing.T) {
	s := start(t, testID, testKey, nil)
	for _, target := range []string{"/e/1.jpg?acl", "/e/1.jpg?uploads", "/?delimiter=%2F"} {
		req, _ := http.NewRequest(http.MethodGet, s.URL()+target, nil)
		cos.AddAuthorizationHeader(testID, testKey, "", req, cos.NewAuthTime(time.Minute))
		if resp, _, e := do(t, req); resp.StatusCode != http.StatusNotImplemented || e.Code != fakecos.CodeNotImplemented {
			t.Errorf("GET %s = %d %q, want 501 NotImplemented", target, resp.StatusCode, e.Code)
		}
	}
}
