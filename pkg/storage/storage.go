// Package storage keeps evidence media (photos, videos, derived copies) in an
// object store and hands out short-lived signed URLs so the mini-program can
// upload and download bytes without passing them through the API.
//
// Two implementations satisfy one contract (see storagetest.RunContract):
// Local, which keeps files on disk and serves its own HMAC-signed URLs (the
// embedded default), and COS, which talks to Tencent Cloud Object Storage
// through the official SDK (production).
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrNotFound is returned by Head and Get when no object has the key.
var ErrNotFound = errors.New("storage: object not found")

// ErrInvalid is returned for arguments no backend could honour: a malformed
// key, a missing content type, a non-positive size limit. It always means a
// bug or hostile input on the caller's side, never a storage outage.
var ErrInvalid = errors.New("storage: invalid argument")

// MaxKeyBytes is the longest key accepted. COS allows 850 bytes; using the same
// limit everywhere keeps keys portable between the two backends.
const MaxKeyBytes = 850

// defaultContentType is what an object without a declared type is served as;
// browsers and WeChat treat it as an opaque download, which is the safe choice.
const defaultContentType = "application/octet-stream"

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key         string
	Size        int64
	ContentType string
	// ETag is the backend's entity tag without surrounding quotes. For a
	// single-part upload on both backends it is the hex MD5 of the bytes.
	ETag         string
	LastModified time.Time
}

// PutTicket tells a client how to upload one object directly to storage.
// The client must send exactly Method to URL with every header in Headers.
type PutTicket struct {
	Method  string
	URL     string
	Headers map[string]string
	// ExpiresAt is when the URL stops being accepted.
	ExpiresAt time.Time
	// MaxBytes is the size limit the caller asked for. Local refuses larger
	// bodies itself (413). A COS presigned PUT cannot carry an upper bound,
	// so with COS the caller must Head the object when the client reports
	// completion and delete it if Size exceeds MaxBytes.
	MaxBytes int64
}

// Storage is the object store as the application needs it.
type Storage interface {
	// PresignPut returns a ticket for one direct upload of key with the
	// given content type, valid for ttl. A ttl of zero or less yields a
	// ticket that is already expired, never one that lasts forever.
	PresignPut(ctx context.Context, key, contentType string, maxBytes int64, ttl time.Duration) (PutTicket, error)
	// Put stores size bytes from r under key, replacing any earlier object.
	// A size of -1 means unknown.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	// Head returns the object's metadata or ErrNotFound.
	Head(ctx context.Context, key string) (ObjectInfo, error)
	// Get returns the object's bytes, which the caller must close, or
	// ErrNotFound.
	Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error)
	// Delete removes the object; deleting a missing object is not an error.
	Delete(ctx context.Context, key string) error
	// SignedGetURL returns a URL anyone can GET the object from until ttl
	// has passed.
	SignedGetURL(ctx context.Context, key string, ttl time.Duration) (string, error)
	// List returns up to limit objects whose keys start with prefix, in
	// byte order of their keys. A limit of 0 or less means 1000.
	// ContentType may be empty: COS does not return it when listing.
	List(ctx context.Context, prefix string, limit int) ([]ObjectInfo, error)
}

// defaultListLimit matches the largest page COS returns in one request.
const defaultListLimit = 1000

// ValidateKey reports whether key is acceptable to every backend. Keys are
// slash-separated relative paths: the rules keep a key from escaping the local
// root, from being normalised differently by COS and the SDK (which rejects
// keys that simplify to "/"), and from smuggling control characters into
// headers and logs.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty key", ErrInvalid)
	case len(key) > MaxKeyBytes:
		return fmt.Errorf("%w: key longer than %d bytes", ErrInvalid, MaxKeyBytes)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: key is not valid UTF-8", ErrInvalid)
	case strings.HasPrefix(key, "/"):
		return fmt.Errorf("%w: key %q is absolute", ErrInvalid, key)
	case strings.HasSuffix(key, "/"):
		return fmt.Errorf("%w: key %q ends with a slash", ErrInvalid, key)
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return fmt.Errorf("%w: key %q has a control character or backslash", ErrInvalid, key)
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return fmt.Errorf("%w: key %q has an empty path segment", ErrInvalid, key)
		case ".", "..":
			return fmt.Errorf("%w: key %q has a relative path segment", ErrInvalid, key)
		}
	}
	return nil
}

// validatePresign checks the arguments shared by both PresignPut methods.
func validatePresign(key, contentType string, maxBytes int64) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if contentType == "" {
		return fmt.Errorf("%w: presigned upload needs a content type", ErrInvalid)
	}
	if strings.ContainsAny(contentType, "\r\n") {
		return fmt.Errorf("%w: content type has a line break", ErrInvalid)
	}
	if maxBytes <= 0 {
		return fmt.Errorf("%w: presigned upload needs a positive size limit", ErrInvalid)
	}
	return nil
}

func listLimit(limit int) int {
	if limit <= 0 {
		return defaultListLimit
	}
	return limit
}
