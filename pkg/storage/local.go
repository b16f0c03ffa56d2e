package storage

import (
	"cmp"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// MinLocalSecretBytes is the shortest HMAC key NewLocal accepts; a short key
// would let anyone who sees a few URLs forge the rest.
const MinLocalSecretBytes = 32

// staleTempAge is how old a temporary upload file must be before NewLocal
// treats it as left over from a crash. An hour is far longer than any upload
// that could still be in progress from another handle on the same root.
const staleTempAge = time.Hour

// LocalConfig configures the local-disk backend.
type LocalConfig struct {
	// Root is the directory that holds everything; it is created if missing.
	Root string
	// PublicBaseURL is where Handler is reachable from clients, for example
	// http://127.0.0.1:8080/media. Signed URLs are built under it and Handler
	// strips its path.
	PublicBaseURL string
	// Secret signs URLs; at least MinLocalSecretBytes long. Keep it stable
	// across restarts or URLs already handed out stop working.
	Secret []byte
	// Now is the clock used to sign and check expiry; nil means time.Now.
	Now func() time.Time
	// Logger receives the errors Handler hides from clients behind a 500;
	// nil discards them.
	Logger *slog.Logger
}

// Local stores objects as files under a root directory:
//
//	objects/<key>      the bytes
//	meta/<key>.json    content type and ETag (a sidecar, so the data file is
//	                   the plain original an operator can open)
//	tmp/               uploads in progress, renamed into objects/ when complete
//
// Writing to tmp/ and renaming means a reader never sees half an upload.
// Concurrent writes to the same key are last-writer-wins; the application
// gives every upload its own key, so this is not worth a lock.
//
// Unlike COS, a key cannot be both an object and a "directory" of other keys
// ("a" and "a/b"): the second Put fails. Keys the application builds as
// prefix/id.ext never collide this way.
type Local struct {
	objectsDir string
	metaDir    string
	tmpDir     string
	base       string // PublicBaseURL without trailing slash
	basePath   string // path part of base, stripped by Handler
	secret     []byte
	now        func() time.Time
	log        *slog.Logger
}

var _ Storage = (*Local)(nil)

// localMeta is the sidecar file format; it is on disk, so renaming a field
// orphans the metadata of every stored object.
type localMeta struct {
	ContentType string `json:"content_type"`
	ETag        string `json:"etag"`
}

// errTooLarge marks a body over the signed limit so Handler can answer 413.
var errTooLarge = errors.New("storage: body larger than allowed")

// NewLocal checks cfg, creates the directory layout and removes temporary
// files left by a crash.
func NewLocal(cfg LocalConfig) (*Local, error) {
	if cfg.Root == "" {
		return nil, fmt.Errorf("%w: local storage needs a root directory", ErrInvalid)
	}
	if len(cfg.Secret) < MinLocalSecretBytes {
		return nil, fmt.Errorf("%w: local storage secret must be at least %d bytes", ErrInvalid, MinLocalSecretBytes)
	}
	u, err := url.Parse(cfg.PublicBaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%w: public base URL %q must be an absolute http(s) URL without query", ErrInvalid, cfg.PublicBaseURL)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("storage: resolve root %q: %w", cfg.Root, err)
	}
	l := &Local{
		objectsDir: filepath.Join(root, "objects"),
		metaDir:    filepath.Join(root, "meta"),
		tmpDir:     filepath.Join(root, "tmp"),
		base:       strings.TrimSuffix(u.String(), "/"),
		basePath:   strings.TrimSuffix(u.Path, "/"),
		secret:     slices.Clone(cfg.Secret),
		now:        now,
		log:        log,
	}
	for _, dir := range []string{l.objectsDir, l.metaDir, l.tmpDir} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("storage: create %s: %w", dir, err)
		}
	}
	if err := l.removeStaleTemps(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Local) removeStaleTemps() error {
	entries, err := os.ReadDir(l.tmpDir)
	if err != nil {
		return fmt.Errorf("storage: read temp dir: %w", err)
	}
	cutoff := l.now().Add(-staleTempAge)
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || info.ModTime().After(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(l.tmpDir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("storage: remove stale temp file: %w", err)
		}
	}
	return nil
}

// dataPath and metaPath assume a validated key: ValidateKey rules out "..",
// absolute paths and backslashes, so the joined path stays under the root.
func (l *Local) dataPath(key string) string {
	return filepath.Join(l.objectsDir, filepath.FromSlash(key))
}

func (l *Local) metaPath(key string) string {
	return filepath.Join(l.metaDir, filepath.FromSlash(key)+".json")
}

// Put implements Storage.
func (l *Local) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if contentType == "" {
		contentType = defaultContentType
	}
	if _, err := l.write(ctx, key, r, size, -1, contentType); err != nil {
		return fmt.Errorf("storage: put %q: %w", key, err)
	}
	return nil
}

// write streams r into a temporary file and renames it into place only when
// every check has passed. size < 0 means unknown; maxBytes < 0 means no limit.
func (l *Local) write(ctx context.Context, key string, r io.Reader, size, maxBytes int64, contentType string) (string, error) {
	tmp, err := os.CreateTemp(l.tmpDir, "put-*")
	if err != nil {
		return "", fmt.Errorf("create temp file: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()

	// Read one byte past each limit so "exactly at the limit" and "over it"
	// can be told apart without trusting the declared length.
	src := io.Reader(ctxReader{ctx: ctx, r: r})
	readCap := int64(-1)
	if size >= 0 {
		readCap = size + 1
	}
	if maxBytes >= 0 && (readCap < 0 || maxBytes+1 < readCap) {
		readCap = maxBytes + 1
	}
	if readCap >= 0 {
		src = io.LimitReader(src, readCap)
	}
	sum := md5.New()
	n, err := io.Copy(io.MultiWriter(tmp, sum), src)
	if err != nil {
		return "", fmt.Errorf("write body: %w", err)
	}
	if maxBytes >= 0 && n > maxBytes {
		return "", errTooLarge
	}
	if size >= 0 && n != size {
		return "", fmt.Errorf("%w: body has %d bytes, declared %d", ErrInvalid, n, size)
	}
	// Evidence must survive a power cut once the client has been told it was
	// stored, so flush before the rename makes it visible.
	if err := tmp.Sync(); err != nil {
		return "", fmt.Errorf("sync temp file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("close temp file: %w", err)
	}
	etag := hexSum(sum)
	if err := l.writeMeta(key, localMeta{ContentType: contentType, ETag: etag}); err != nil {
		return "", err
	}
	dst := l.dataPath(key)
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return "", fmt.Errorf("create object dir: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", fmt.Errorf("commit object: %w", err)
	}
	committed = true
	return etag, nil
}

func (l *Local) writeMeta(key string, m localMeta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode metadata: %w", err)
	}
	tmp, err := os.CreateTemp(l.tmpDir, "meta-*")
	if err != nil {
		return fmt.Errorf("create temp metadata: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write metadata: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close metadata: %w", err)
	}
	dst := l.metaPath(key)
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return fmt.Errorf("create metadata dir: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("commit metadata: %w", err)
	}
	return nil
}

func (l *Local) readMeta(key string) localMeta {
	m := localMeta{ContentType: defaultContentType}
	b, err := os.ReadFile(l.metaPath(key))
	if err != nil {
		// A missing or damaged sidecar must not hide the evidence itself;
		// the bytes are served as an opaque download instead.
		return m
	}
	if json.Unmarshal(b, &m) != nil || m.ContentType == "" {
		m.ContentType = defaultContentType
	}
	return m
}

func (l *Local) info(key string, fi fs.FileInfo) ObjectInfo {
	m := l.readMeta(key)
	return ObjectInfo{
		Key:          key,
		Size:         fi.Size(),
		ContentType:  m.ContentType,
		ETag:         m.ETag,
		LastModified: fi.ModTime(),
	}
}

// Head implements Storage.
func (l *Local) Head(ctx context.Context, key string) (ObjectInfo, error) {
	if err := ValidateKey(key); err != nil {
		return ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, err
	}
	fi, err := os.Stat(l.dataPath(key))
	if err != nil || !fi.Mode().IsRegular() {
		return ObjectInfo{}, notFoundOr(key, err)
	}
	return l.info(key, fi), nil
}

// Get implements Storage. The returned reader is an *os.File, so it also
// implements io.Seeker for range requests.
func (l *Local) Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error) {
	if err := ValidateKey(key); err != nil {
		return nil, ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return nil, ObjectInfo{}, err
	}
	f, err := os.Open(l.dataPath(key))
	if err != nil {
		return nil, ObjectInfo{}, notFoundOr(key, err)
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, ObjectInfo{}, notFoundOr(key, err)
	}
	return f, l.info(key, fi), nil
}

// notFoundOr maps "no such file", "is a directory" and "a parent is a file"
// to ErrNotFound: from the caller's view none of them is an object.
func notFoundOr(key string, err error) error {
	if err == nil || errors.Is(err, fs.ErrNotExist) || isNotDir(err) {
		return fmt.Errorf("storage: %q: %w", key, ErrNotFound)
	}
	return fmt.Errorf("storage: %q: %w", key, err)
}

// Delete implements Storage.
func (l *Local) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p := l.dataPath(key)
	if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
		return nil // a directory of other keys, not an object
	}
	for _, p := range []string{p, l.metaPath(key)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) && !isNotDir(err) {
			return fmt.Errorf("storage: delete %q: %w", key, err)
		}
	}
	return nil
}

// List implements Storage. It walks only the directories that can hold
// matching keys, visiting entries in key order so it can stop at limit.
func (l *Local) List(ctx context.Context, prefix string, limit int) ([]ObjectInfo, error) {
	if prefix != "" {
		if err := ValidateKey(strings.TrimSuffix(prefix, "/")); err != nil {
			return nil, fmt.Errorf("storage: list prefix: %w", err)
		}
	}
	limit = listLimit(limit)
	var out []ObjectInfo
	err := l.walk(ctx, "", prefix, limit, &out)
	if err != nil && !errors.Is(err, errListFull) {
		return nil, fmt.Errorf("storage: list %q: %w", prefix, err)
	}
	return out, nil
}

var errListFull = errors.New("list full")

func (l *Local) walk(ctx context.Context, dir, prefix string, limit int, out *[]ObjectInfo) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := os.ReadDir(filepath.Join(l.objectsDir, filepath.FromSlash(dir)))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	// Keys are compared as strings, where "a/b" sorts after "a-b" because
	// '/' > '-'; ReadDir sorts the bare name "a" first, so compare
	// directories by name+"/" to keep the output in key order.
	sortName := func(e fs.DirEntry) string {
		if e.IsDir() {
			return e.Name() + "/"
		}
		return e.Name()
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return cmp.Compare(sortName(a), sortName(b)) })
	for _, e := range entries {
		key := e.Name()
		if dir != "" {
			key = dir + "/" + e.Name()
		}
		if e.IsDir() {
			sub := key + "/"
			if strings.HasPrefix(sub, prefix) || strings.HasPrefix(prefix, sub) {
				if err := l.walk(ctx, key, prefix, limit, out); err != nil {
					return err
				}
			}
			continue
		}
		if !e.Type().IsRegular() || !strings.HasPrefix(key, prefix) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // deleted while listing
		}
		*out = append(*out, l.info(key, fi))
		if len(*out) >= limit {
			return errListFull
		}
	}
	return nil
}

// ctxReader stops a long copy when the request that started it is gone.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func isNotDir(err error) bool { return errors.Is(err, syscall.ENOTDIR) }

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }
