package storage

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Signed local URLs look like
//
//	{base}/{key}?op=put&exp=UNIX&ct=TYPE&max=BYTES&sig=HEX
//	{base}/{key}?op=get&exp=UNIX&sig=HEX
//
// sig is HMAC-SHA256 over a versioned, newline-separated string of every
// field. Keys and content types cannot contain line breaks (ValidateKey,
// validatePresign), so no two field sets produce the same string.
const (
	opGet = "get"
	opPut = "put"
)

func (l *Local) sign(op, key string, exp int64, contentType string, maxBytes int64) string {
	mac := hmac.New(sha256.New, l.secret)
	fmt.Fprintf(mac, "qjmz-local-v1\n%s\n%s\n%d\n%s\n%d", op, key, exp, contentType, maxBytes)
	return hex.EncodeToString(mac.Sum(nil))
}

func (l *Local) objectURL(key string, q url.Values) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return l.base + "/" + strings.Join(segs, "/") + "?" + q.Encode()
}

// PresignPut implements Storage.
func (l *Local) PresignPut(_ context.Context, key, contentType string, maxBytes int64, ttl time.Duration) (PutTicket, error) {
	if err := validatePresign(key, contentType, maxBytes); err != nil {
		return PutTicket{}, err
	}
	expires := time.Unix(l.now().Add(ttl).Unix(), 0)
	exp := expires.Unix()
	q := url.Values{
		"op":  {opPut},
		"exp": {strconv.FormatInt(exp, 10)},
		"ct":  {contentType},
		"max": {strconv.FormatInt(maxBytes, 10)},
		"sig": {l.sign(opPut, key, exp, contentType, maxBytes)},
	}
	return PutTicket{
		Method:    http.MethodPut,
		URL:       l.objectURL(key, q),
		Headers:   map[string]string{"Content-Type": contentType},
		ExpiresAt: expires,
		MaxBytes:  maxBytes,
	}, nil
}

// SignedGetURL implements Storage. It does not check that the object exists:
// a URL for a missing object answers 404, like COS.
func (l *Local) SignedGetURL(_ context.Context, key string, ttl time.Duration) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	exp := l.now().Add(ttl).Unix()
	q := url.Values{
		"op":  {opGet},
		"exp": {strconv.FormatInt(exp, 10)},
		"sig": {l.sign(opGet, key, exp, "", 0)},
	}
	return l.objectURL(key, q), nil
}

// Handler serves the URLs made by PresignPut and SignedGetURL. Mount it so
// that requests for PublicBaseURL's path and everything below reach it
// unchanged (for net/http: mux.Handle("/media/", l.Handler())); it strips
// the base path itself.
//
// Bad or expired signatures get 403, a body over the signed limit 413, and
// nothing is stored unless the whole body arrived within the limit.
func (l *Local) Handler() http.Handler {
	return http.HandlerFunc(l.serveHTTP)
}

func (l *Local) serveHTTP(w http.ResponseWriter, r *http.Request) {
	key, ok := strings.CutPrefix(r.URL.Path, l.basePath+"/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if ValidateKey(key) != nil {
		http.Error(w, "invalid object key", http.StatusBadRequest)
		return
	}
	var op string
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		op = opGet
	case http.MethodPut:
		op = opPut
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	exp, err := strconv.ParseInt(q.Get("exp"), 10, 64)
	malformed := err != nil
	maxBytes := int64(0)
	contentType := ""
	if op == opPut {
		maxBytes, err = strconv.ParseInt(q.Get("max"), 10, 64)
		malformed = malformed || err != nil || maxBytes <= 0
		contentType = q.Get("ct")
	}
	// One answer for every signature problem, so a prober learns nothing
	// about which field was wrong.
	got, hexErr := hex.DecodeString(q.Get("sig"))
	want, _ := hex.DecodeString(l.sign(op, key, exp, contentType, maxBytes))
	if malformed || hexErr != nil || q.Get("op") != op || !hmac.Equal(got, want) {
		http.Error(w, "signature does not match", http.StatusForbidden)
		return
	}
	remaining := time.Unix(exp, 0).Sub(l.now())
	if remaining <= 0 {
		http.Error(w, "signed URL has expired", http.StatusForbidden)
		return
	}
	if op == opPut {
		l.servePut(w, r, key, contentType, maxBytes)
		return
	}
	l.serveGet(w, r, key, remaining)
}

func (l *Local) servePut(w http.ResponseWriter, r *http.Request, key, contentType string, maxBytes int64) {
	// The content type is part of what was signed: the server decided what
	// kind of file may land under this key, and the bytes are served back
	// with it.
	if r.Header.Get("Content-Type") != contentType {
		http.Error(w, "content type does not match the signed one", http.StatusForbidden)
		return
	}
	if r.ContentLength > maxBytes {
		http.Error(w, "body larger than allowed", http.StatusRequestEntityTooLarge)
		return
	}
	etag, err := l.write(r.Context(), key, r.Body, r.ContentLength, maxBytes, contentType)
	switch {
	case errors.Is(err, errTooLarge):
		http.Error(w, "body larger than allowed", http.StatusRequestEntityTooLarge)
		return
	case errors.Is(err, ErrInvalid):
		http.Error(w, "incomplete body", http.StatusBadRequest)
		return
	case err != nil:
		l.log.ErrorContext(r.Context(), "local storage: presigned put failed", "key", key, "err", err)
		http.Error(w, "could not store object", http.StatusInternalServerError)
		return
	}
	w.Header().Set("ETag", `"`+etag+`"`)
	w.WriteHeader(http.StatusOK)
}

func (l *Local) serveGet(w http.ResponseWriter, r *http.Request, key string, remaining time.Duration) {
	rc, info, err := l.Get(r.Context(), key)
	if errors.Is(err, ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		l.log.ErrorContext(r.Context(), "local storage: signed get failed", "key", key, "err", err)
		http.Error(w, "could not read object", http.StatusInternalServerError)
		return
	}
	defer rc.Close()
	h := w.Header()
	h.Set("Content-Type", info.ContentType)
	if info.ETag != "" {
		h.Set("ETag", `"`+info.ETag+`"`)
	}
	// Uploaded bytes are served from the API's own origin: never let a
	// browser sniff them into HTML or run them as a page.
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox")
	h.Set("Cache-Control", "private, max-age="+strconv.Itoa(int(remaining/time.Second)))
	if rs, ok := rc.(io.ReadSeeker); ok {
		http.ServeContent(w, r, "", info.LastModified, rs)
		return
	}
	http.Error(w, "could not read object", http.StatusInternalServerError)
}
