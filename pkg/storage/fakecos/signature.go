package fakecos

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// COS v5 request signing, as documented at
// https://cloud.tencent.com/document/product/436/7778 and implemented by
// cos-go-sdk-v5's auth.go:
//
//	SignKey      = hex(HMAC-SHA1(SecretKey, KeyTime))
//	HttpString   = lower(method) \n path \n params \n headers \n
//	StringToSign = "sha1" \n KeyTime \n hex(SHA1(HttpString)) \n
//	Signature    = hex(HMAC-SHA1(SignKey, StringToSign))
//
// params and headers are "k=v" pairs joined by "&", with k lower-cased and
// both sides URL-encoded, sorted by key; only the names the client listed in
// q-url-param-list and q-header-list take part.

// Error codes the fake answers with, as real COS does.
const (
	CodeAccessDenied          = "AccessDenied"
	CodeInvalidAccessKeyID    = "InvalidAccessKeyId"
	CodeSignatureDoesNotMatch = "SignatureDoesNotMatch"
	CodeRequestTimeTooSkewed  = "RequestTimeTooSkewed"
	CodeNoSuchKey             = "NoSuchKey"
	CodeMethodNotAllowed      = "MethodNotAllowed"
	CodeNotImplemented        = "NotImplemented"
	CodeInvalidArgument       = "InvalidArgument"
)

// maxClockSkew is how far in the future a signature may start; COS allows
// roughly this much difference between client and server clocks.
const maxClockSkew = 15 * time.Minute

// isSignParam reports whether a query parameter carries a presigned
// signature and so is not itself signed.
func isSignParam(k string) bool {
	switch k {
	case "q-sign-algorithm", "q-ak", "q-sign-time", "q-key-time",
		"q-header-list", "q-url-param-list", "q-signature":
		return true
	}
	return false
}

type authParams struct {
	algorithm, ak, signTime, keyTime, headerList, paramList, signature string
	fromQuery                                                          bool
}

// authError is a refusal with the COS error code to report.
type authError struct{ code, msg string }

func (e *authError) Error() string { return e.code + ": " + e.msg }

func parseAuth(r *http.Request) (authParams, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		var p authParams
		for pair := range strings.SplitSeq(h, "&") {
			k, v, _ := strings.Cut(pair, "=")
			p.set(k, v)
		}
		return p, true
	}
	q := r.URL.Query()
	if !q.Has("q-signature") {
		return authParams{}, false
	}
	p := authParams{fromQuery: true}
	for k := range q {
		if isSignParam(k) {
			p.set(k, q.Get(k))
		}
	}
	return p, true
}

func (p *authParams) set(k, v string) {
	switch k {
	case "q-sign-algorithm":
		p.algorithm = v
	case "q-ak":
		p.ak = v
	case "q-sign-time":
		p.signTime = v
	case "q-key-time":
		p.keyTime = v
	case "q-header-list":
		p.headerList = v
	case "q-url-param-list":
		p.paramList = v
	case "q-signature":
		p.signature = v
	}
}

// verify checks the request's signature against the one key pair the fake
// knows, in the order COS reports problems: credentials, time, signature.
func (s *Server) verify(r *http.Request) *authError {
	p, ok := parseAuth(r)
	if !ok {
		return &authError{CodeAccessDenied, "Access Denied."}
	}
	if p.ak != s.cfg.SecretID {
		return &authError{CodeInvalidAccessKeyID, "The access key Id format you provided is invalid or does not exist."}
	}
	if p.algorithm != "sha1" {
		return &authError{CodeSignatureDoesNotMatch, "q-sign-algorithm must be sha1."}
	}
	now := s.now()
	for _, window := range []string{p.signTime, p.keyTime} {
		start, end, err := parseWindow(window)
		if err != nil {
			return &authError{CodeAccessDenied, "Invalid sign time: " + err.Error()}
		}
		if now.Unix() > end {
			return &authError{CodeAccessDenied, "Request has expired"}
		}
		if time.Unix(start, 0).After(now.Add(maxClockSkew)) {
			return &authError{CodeRequestTimeTooSkewed, "The difference between the request time and the server's time is too large."}
		}
	}
	want := Sign(s.cfg.SecretKey, p.keyTime, httpString(r, p))
	got, err := hex.DecodeString(p.signature)
	if err != nil || !hmac.Equal(got, want) {
		return &authError{CodeSignatureDoesNotMatch, "The Signature you specified does not match."}
	}
	return nil
}

func parseWindow(w string) (start, end int64, err error) {
	a, b, ok := strings.Cut(w, ";")
	if !ok {
		return 0, 0, fmt.Errorf("want start;end, got %q", w)
	}
	if start, err = strconv.ParseInt(a, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("start: %w", err)
	}
	if end, err = strconv.ParseInt(b, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("end: %w", err)
	}
	return start, end, nil
}

// Sign returns the raw COS v5 signature of httpString under secretKey and
// keyTime. It is exported so tests can forge requests the SDK would not make.
func Sign(secretKey, keyTime, httpString string) []byte {
	signKey := hmacSHA1([]byte(secretKey), keyTime)
	sum := sha1.Sum([]byte(httpString))
	stringToSign := "sha1\n" + keyTime + "\n" + hex.EncodeToString(sum[:]) + "\n"
	return hmacSHA1([]byte(hex.EncodeToString(signKey)), stringToSign)
}

func hmacSHA1(key []byte, msg string) []byte {
	m := hmac.New(sha1.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// httpString rebuilds the canonical request from what actually arrived, so
// any change in transit (another key, another content type, another host)
// changes the signature.
func httpString(r *http.Request, p authParams) string {
	params := map[string][]string{}
	for k, vs := range r.URL.Query() {
		if p.fromQuery && isSignParam(k) {
			continue
		}
		lk := strings.ToLower(encode(k))
		params[lk] = append(params[lk], vs...)
	}
	headers := map[string][]string{}
	for _, name := range splitList(p.headerList) {
		if name == "host" {
			headers[name] = []string{r.Host}
			continue
		}
		headers[name] = r.Header.Values(name)
	}
	signed := map[string][]string{}
	for _, name := range splitList(p.paramList) {
		signed[name] = params[name]
	}
	return fmt.Sprintf("%s\n%s\n%s\n%s\n",
		strings.ToLower(r.Method), r.URL.Path, formatPairs(signed), formatPairs(headers))
}

// splitList splits a q-header-list or q-url-param-list; the SDK repeats a
// name once per value, so duplicates are dropped.
func splitList(s string) []string {
	var out []string
	for name := range strings.SplitSeq(s, ";") {
		if name != "" && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

func formatPairs(m map[string][]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var pairs []string
	for _, k := range keys {
		vs := slices.Clone(m[k])
		if len(vs) == 0 {
			vs = []string{""}
		}
		slices.Sort(vs)
		for _, v := range vs {
			pairs = append(pairs, k+"="+encode(v))
		}
	}
	return strings.Join(pairs, "&")
}

// encode is the SDK's safeURLEncode: everything but RFC 3986 unreserved
// characters becomes %XX with upper-case hex.
func encode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}
