package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	cos "github.com/tencentyun/cos-go-sdk-v5"
)

// COSConfig configures the Tencent COS backend.
type COSConfig struct {
	// BucketURL is the bucket's virtual-host endpoint, for example
	// https://qjmz-1250000000.cos.ap-chongqing.myqcloud.com, or the URL of a
	// fakecos server. It must not have a path: the SDK silently drops it.
	BucketURL string
	// SecretID and SecretKey are a CAM key pair allowed to read, write and
	// list the bucket.
	SecretID, SecretKey string
	// HTTPClient, if set, supplies the base transport (under the SDK's
	// signing transport) and the overall timeout. Nil uses
	// http.DefaultTransport and no client timeout: uploads of long videos
	// are bounded by the caller's context instead.
	HTTPClient *http.Client
}

// COS stores objects in one Tencent COS bucket through the official SDK.
//
// Presigned URLs are made by the SDK (Object.GetPresignedURL) with the Host
// and, for uploads, the Content-Type header inside the signature, so a
// ticket cannot be replayed against another key or with another type. COS
// has no way to cap the size of a presigned PUT; see PutTicket.MaxBytes.
type COS struct {
	client    *cos.Client
	secretID  string
	secretKey string
}

var _ Storage = (*COS)(nil)

// NewCOS checks cfg and builds the SDK client. It makes no request, so a
// wrong key shows up on first use, not here.
func NewCOS(cfg COSConfig) (*COS, error) {
	u, err := url.Parse(cfg.BucketURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: COS bucket URL %q must be an absolute http(s) URL", ErrInvalid, cfg.BucketURL)
	}
	if strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
		return nil, fmt.Errorf("%w: COS bucket URL %q must not have a path or query (the SDK drops them)", ErrInvalid, cfg.BucketURL)
	}
	for name, v := range map[string]string{"SecretID": cfg.SecretID, "SecretKey": cfg.SecretKey} {
		if v == "" || strings.TrimSpace(v) != v {
			return nil, fmt.Errorf("%w: COS %s is empty or has surrounding spaces", ErrInvalid, name)
		}
	}
	base := http.DefaultTransport
	var timeout time.Duration
	if cfg.HTTPClient != nil {
		timeout = cfg.HTTPClient.Timeout
		if cfg.HTTPClient.Transport != nil {
			base = cfg.HTTPClient.Transport
		}
	}
	hc := &http.Client{
		Timeout: timeout,
		Transport: &cos.AuthorizationTransport{
			SecretID:  cfg.SecretID,
			SecretKey: cfg.SecretKey,
			Transport: base,
		},
	}
	client := cos.NewClient(&cos.BaseURL{BucketURL: &url.URL{Scheme: u.Scheme, Host: u.Host}}, hc)
	return &COS{client: client, secretID: cfg.SecretID, secretKey: cfg.SecretKey}, nil
}

// cosErr wraps an SDK error so that callers can test errors.Is(err,
// ErrNotFound) and still errors.As the *cos.ErrorResponse for its code.
func cosErr(op, key string, err error) error {
	if cos.IsNotFoundError(err) {
		return fmt.Errorf("storage: cos %s %q: %w: %w", op, key, ErrNotFound, err)
	}
	return fmt.Errorf("storage: cos %s %q: %w", op, key, err)
}

// authTime makes the signature window for a presigned URL. The SDK's own
// default starts now and ends now+ttl, which for ttl == 0 is still valid for
// the rest of the current second; Storage promises an expired URL instead.
func authTime(ttl time.Duration) *cos.AuthTime {
	start := time.Now()
	end := start.Add(ttl)
	if ttl <= 0 {
		end = start.Add(ttl - time.Second)
		start = end
	}
	return &cos.AuthTime{SignStartTime: start, SignEndTime: end, KeyStartTime: start, KeyEndTime: end}
}

// PresignPut implements Storage.
func (c *COS) PresignPut(ctx context.Context, key, contentType string, maxBytes int64, ttl time.Duration) (PutTicket, error) {
	if err := validatePresign(key, contentType, maxBytes); err != nil {
		return PutTicket{}, err
	}
	at := authTime(ttl)
	h := http.Header{}
	h.Set("Content-Type", contentType)
	u, err := c.client.Object.GetPresignedURL(ctx, http.MethodPut, key, c.secretID, c.secretKey, ttl,
		&cos.PresignedURLOptions{Header: &h, AuthTime: at})
	if err != nil {
		return PutTicket{}, cosErr("presign put", key, err)
	}
	return PutTicket{
		Method:    http.MethodPut,
		URL:       u.String(),
		Headers:   map[string]string{"Content-Type": contentType},
		ExpiresAt: time.Unix(at.SignEndTime.Unix(), 0),
		MaxBytes:  maxBytes,
	}, nil
}

// SignedGetURL implements Storage.
func (c *COS) SignedGetURL(ctx context.Context, key string, ttl time.Duration) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	u, err := c.client.Object.GetPresignedURL(ctx, http.MethodGet, key, c.secretID, c.secretKey, ttl,
		&cos.PresignedURLOptions{AuthTime: authTime(ttl)})
	if err != nil {
		return "", cosErr("presign get", key, err)
	}
	return u.String(), nil
}

// Put implements Storage.
func (c *COS) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if contentType == "" {
		contentType = defaultContentType
	}
	hopt := &cos.ObjectPutHeaderOptions{ContentType: contentType}
	switch {
	case size == 0:
		// The SDK only sends an empty body as such for its known reader
		// types; anything else would go out chunked.
		var one [1]byte
		if n, _ := io.ReadFull(r, one[:]); n > 0 {
			return fmt.Errorf("%w: body of %q is longer than the declared 0 bytes", ErrInvalid, key)
		}
		r = bytes.NewReader(nil)
	case size > 0:
		hopt.ContentLength = size
	}
	_, err := c.client.Object.Put(ctx, key, r, &cos.ObjectPutOptions{ObjectPutHeaderOptions: hopt})
	if err != nil {
		return cosErr("put", key, err)
	}
	return nil
}

// Head implements Storage.
func (c *COS) Head(ctx context.Context, key string) (ObjectInfo, error) {
	if err := ValidateKey(key); err != nil {
		return ObjectInfo{}, err
	}
	resp, err := c.client.Object.Head(ctx, key, nil)
	if err != nil {
		return ObjectInfo{}, cosErr("head", key, err)
	}
	return infoFromHeader(key, resp.Header), nil
}

// Get implements Storage.
func (c *COS) Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error) {
	if err := ValidateKey(key); err != nil {
		return nil, ObjectInfo{}, err
	}
	resp, err := c.client.Object.Get(ctx, key, nil)
	if err != nil {
		return nil, ObjectInfo{}, cosErr("get", key, err)
	}
	return resp.Body, infoFromHeader(key, resp.Header), nil
}

func infoFromHeader(key string, h http.Header) ObjectInfo {
	size, _ := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
	modified, _ := http.ParseTime(h.Get("Last-Modified"))
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = defaultContentType
	}
	return ObjectInfo{
		Key:          key,
		Size:         size,
		ContentType:  ct,
		ETag:         strings.Trim(h.Get("ETag"), `"`),
		LastModified: modified,
	}
}

// Delete implements Storage.
func (c *COS) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	// COS answers 204 for a missing key; a 404 (bucket gone, or a proxy in
	// between) still means the object is not there, which is all Delete
	// promises.
	if _, err := c.client.Object.Delete(ctx, key); err != nil && !cos.IsNotFoundError(err) {
		return cosErr("delete", key, err)
	}
	return nil
}

// List implements Storage. COS returns at most 1000 keys a request, so larger
// limits take several requests.
func (c *COS) List(ctx context.Context, prefix string, limit int) ([]ObjectInfo, error) {
	limit = listLimit(limit)
	var out []ObjectInfo
	marker := ""
	for len(out) < limit {
		res, _, err := c.client.Bucket.Get(ctx, &cos.BucketGetOptions{
			Prefix:  prefix,
			Marker:  marker,
			MaxKeys: min(limit-len(out), defaultListLimit),
		})
		if err != nil {
			return nil, cosErr("list", prefix, err)
		}
		for _, o := range res.Contents {
			marker = o.Key
			// Folder placeholders made by the COS console ("dir/") are not
			// objects this package could have written or could read back.
			if ValidateKey(o.Key) != nil {
				continue
			}
			modified, _ := time.Parse(time.RFC3339, o.LastModified)
			out = append(out, ObjectInfo{
				Key:          o.Key,
				Size:         o.Size,
				ETag:         strings.Trim(o.ETag, `"`),
				LastModified: modified,
			})
			if len(out) == limit {
				break
			}
		}
		if !res.IsTruncated || len(res.Contents) == 0 {
			break
		}
		if res.NextMarker != "" {
			marker = res.NextMarker
		}
	}
	return out, nil
}

// IsAccessError reports whether err came from COS refusing the credentials
// or signature (403), as opposed to a missing object or an outage. It lets
// startup checks tell a wrong key from an unreachable bucket.
func IsAccessError(err error) bool {
	var er *cos.ErrorResponse
	return errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusForbidden
}
