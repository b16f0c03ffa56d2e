// Package fakecos is an in-memory Tencent COS bucket on an httptest server,
// speaking enough of the COS XML API for pkg/storage: PUT, HEAD, GET and
// DELETE of objects and GET bucket (list with prefix, marker, max-keys).
//
// Unlike general S3 fakes it checks the COS v5 signature of every request,
// from the Authorization header or from presigned query parameters, against
// the one key pair it is configured with, and refuses with the same status
// and XML error codes as COS (InvalidAccessKeyId, SignatureDoesNotMatch,
// AccessDenied "Request has expired"). A client with the wrong key therefore
// fails here as it would in production.
//
// Addressing: the SDK keeps only the scheme and host of BaseURL.BucketURL,
// so the fake serves a single bucket at its root, as a virtual-host COS
// endpoint does. Pass URL() as the bucket URL; no host rewriting is needed,
// and the Host header the SDK signs is the fake's own.
package fakecos

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash/crc64"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a fake bucket.
type Config struct {
	// SecretID and SecretKey are the only credentials the fake accepts.
	SecretID, SecretKey string
	// Bucket is the name reported in list results; it does not affect
	// addressing. Empty means "fake-1250000000".
	Bucket string
	// Now is the fake's clock for signature expiry and Last-Modified; nil
	// means time.Now.
	Now func() time.Time
}

// Server is a running fake bucket. It is safe for concurrent use.
type Server struct {
	cfg      Config
	now      func() time.Time
	srv      *httptest.Server
	crcTable *crc64.Table
	reqSeq   atomic.Uint64

	mu      sync.Mutex
	objects map[string]object
}

// object is immutable once stored, so readers may use it without the lock.
type object struct {
	data        []byte
	contentType string
	etag        string
	crc         uint64
	modified    time.Time
}

// New starts a fake bucket on a loopback port. Close it when done.
func New(cfg Config) *Server {
	if cfg.Bucket == "" {
		cfg.Bucket = "fake-1250000000"
	}
	s := &Server{
		cfg:      cfg,
		now:      cfg.Now,
		crcTable: crc64.MakeTable(crc64.ECMA),
		objects:  map[string]object{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.srv = httptest.NewServer(s)
	return s
}

// URL is the bucket endpoint to use as storage.COSConfig.BucketURL.
func (s *Server) URL() string { return s.srv.URL }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Object returns a stored object's bytes and content type, for assertions
// that must not go through the code under test.
func (s *Server) Object(key string) (data []byte, contentType string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects[key]
	return slices.Clone(o.data), o.contentType, ok
}

// Seed stores an object directly, bypassing HTTP and signatures, for tests
// that need more objects than are worth uploading one by one.
func (s *Server) Seed(key string, data []byte, contentType string) {
	s.store(key, slices.Clone(data), contentType)
}

func (s *Server) store(key string, data []byte, contentType string) object {
	sum := md5.Sum(data)
	o := object{
		data:        data,
		contentType: contentType,
		etag:        hex.EncodeToString(sum[:]),
		crc:         crc64.Checksum(data, s.crcTable),
		modified:    s.now().UTC().Truncate(time.Second),
	}
	if o.contentType == "" {
		o.contentType = "application/octet-stream"
	}
	s.mu.Lock()
	s.objects[key] = o
	s.mu.Unlock()
	return o
}

// Len returns how many objects the bucket holds.
func (s *Server) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.objects)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := "fakecos-" + strconv.FormatUint(s.reqSeq.Add(1), 10)
	w.Header().Set("x-cos-request-id", reqID)
	if err := s.verify(r); err != nil {
		s.writeError(w, r, http.StatusForbidden, err.code, err.msg, reqID)
		return
	}
	key := strings.TrimPrefix(r.URL.Path, "/")
	if key == "" {
		if r.Method != http.MethodGet {
			s.writeError(w, r, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "The specified method is not allowed against this resource.", reqID)
			return
		}
		s.list(w, r, reqID)
		return
	}
	// Sub-resources (?acl, ?uploads, ?tagging …) are other APIs the fake
	// does not speak; failing loudly beats silently treating them as a
	// plain object request.
	for k := range r.URL.Query() {
		if !isSignParam(k) {
			s.writeError(w, r, http.StatusNotImplemented, CodeNotImplemented, "fakecos does not implement ?"+k, reqID)
			return
		}
	}
	switch r.Method {
	case http.MethodPut:
		s.put(w, r, key, reqID)
	case http.MethodGet, http.MethodHead:
		s.get(w, r, key, reqID)
	case http.MethodDelete:
		s.mu.Lock()
		delete(s.objects, key)
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		s.writeError(w, r, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "The specified method is not allowed against this resource.", reqID)
	}
}

func (s *Server) put(w http.ResponseWriter, r *http.Request, key, reqID string) {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, "IncompleteBody", "Could not read the request body.", reqID)
		return
	}
	o := s.store(key, data, r.Header.Get("Content-Type"))
	// The SDK checks this against its own CRC of what it sent (EnableCRC).
	w.Header().Set("x-cos-hash-crc64ecma", strconv.FormatUint(o.crc, 10))
	w.Header().Set("ETag", `"`+o.etag+`"`)
	w.WriteHeader(http.StatusOK)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, key, reqID string) {
	s.mu.Lock()
	o, ok := s.objects[key]
	s.mu.Unlock()
	if !ok {
		s.writeError(w, r, http.StatusNotFound, CodeNoSuchKey, "The specified key does not exist.", reqID)
		return
	}
	h := w.Header()
	h.Set("Content-Type", o.contentType)
	h.Set("ETag", `"`+o.etag+`"`)
	h.Set("x-cos-hash-crc64ecma", strconv.FormatUint(o.crc, 10))
	// ServeContent answers HEAD, Range and conditional requests as COS does.
	http.ServeContent(w, r, "", o.modified, bytes.NewReader(o.data))
}

type listResult struct {
	XMLName     xml.Name      `xml:"ListBucketResult"`
	Name        string        `xml:"Name"`
	Prefix      string        `xml:"Prefix"`
	Marker      string        `xml:"Marker"`
	MaxKeys     int           `xml:"MaxKeys"`
	IsTruncated bool          `xml:"IsTruncated"`
	NextMarker  string        `xml:"NextMarker,omitempty"`
	Contents    []listContent `xml:"Contents"`
}

type listContent struct {
	Key          string `xml:"Key"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`
	StorageClass string `xml:"StorageClass"`
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, reqID string) {
	q := r.URL.Query()
	for k := range q {
		switch {
		case isSignParam(k), k == "prefix", k == "marker", k == "max-keys":
		default:
			s.writeError(w, r, http.StatusNotImplemented, CodeNotImplemented, "fakecos does not implement bucket ?"+k, reqID)
			return
		}
	}
	maxKeys := 1000
	if v := q.Get("max-keys"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			s.writeError(w, r, http.StatusBadRequest, CodeInvalidArgument, "max-keys must be a non-negative integer.", reqID)
			return
		}
		maxKeys = min(n, 1000)
	}
	prefix, marker := q.Get("prefix"), q.Get("marker")

	s.mu.Lock()
	var keys []string
	for k := range s.objects {
		if strings.HasPrefix(k, prefix) && k > marker {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	res := listResult{Name: s.cfg.Bucket, Prefix: prefix, Marker: marker, MaxKeys: maxKeys}
	if len(keys) > maxKeys {
		keys = keys[:maxKeys]
		res.IsTruncated = true
		if maxKeys > 0 {
			res.NextMarker = keys[maxKeys-1]
		}
	}
	for _, k := range keys {
		o := s.objects[k]
		res.Contents = append(res.Contents, listContent{
			Key:          k,
			LastModified: o.modified.Format("2006-01-02T15:04:05.000Z"),
			ETag:         `"` + o.etag + `"`,
			Size:         int64(len(o.data)),
			StorageClass: "STANDARD",
		})
	}
	s.mu.Unlock()
	writeXML(w, http.StatusOK, res)
}

type errorBody struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Resource  string   `xml:"Resource"`
	RequestID string   `xml:"RequestId"`
	TraceID   string   `xml:"TraceId"`
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, status int, code, msg, reqID string) {
	if r.Method == http.MethodHead {
		// HEAD responses have no body; COS reports the code in a header.
		w.Header().Set("x-cos-error-code", code)
		w.WriteHeader(status)
		return
	}
	writeXML(w, status, errorBody{
		Code:      code,
		Message:   msg,
		Resource:  r.Host + r.URL.Path,
		RequestID: reqID,
		TraceID:   reqID,
	})
}

func writeXML(w http.ResponseWriter, status int, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, fmt.Sprintf("fakecos: encode response: %v", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, xml.Header)
	_, _ = w.Write(b)
}
