package service

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"qjmz/model"
	"qjmz/pkg/apperr"
	"qjmz/pkg/ids"
	"qjmz/pkg/media"
	"qjmz/pkg/provenance"
	"qjmz/pkg/storage"
	"qjmz/pkg/wechat"
)

// UploadStore is what the evidence pipeline needs from the data layer.
type UploadStore interface {
	Create(ctx context.Context, u *model.Upload) error
	Get(ctx context.Context, id string) (model.Upload, error)
	Transition(ctx context.Context, id, from string, cols map[string]any) (bool, error)
	Update(ctx context.Context, id string, cols map[string]any) error
	CountActiveByRecord(ctx context.Context, recordID string) (int64, error)
	FindBySHA256(ctx context.Context, sha, excludeRecordID string) ([]model.Upload, error)
	ExpiredPending(ctx context.Context, cutoff time.Time, limit int) ([]model.Upload, error)
	Record(ctx context.Context, id string) (model.SessionRecord, error)
	LockRecord(ctx context.Context, id string) (model.SessionRecord, error)
}

// MediaObjects is the slice of the object store (Local or COS) the pipeline
// uses.
type MediaObjects interface {
	PresignPut(ctx context.Context, key, contentType string, maxBytes int64, ttl time.Duration) (storage.PutTicket, error)
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	Head(ctx context.Context, key string) (storage.ObjectInfo, error)
	Get(ctx context.Context, key string) (io.ReadCloser, storage.ObjectInfo, error)
	Delete(ctx context.Context, key string) error
	SignedGetURL(ctx context.Context, key string, ttl time.Duration) (string, error)
	List(ctx context.Context, prefix string, limit int) ([]storage.ObjectInfo, error)
}

// MediaChecker submits images to WeChat's asynchronous content check.
type MediaChecker interface {
	MediaCheckAsync(ctx context.Context, openID, mediaURL string) (wechat.MediaCheck, error)
}

// ProvenanceSigner signs provenance records with the server's key.
type ProvenanceSigner interface {
	Sign(r provenance.Record) (payload, signature []byte, err error)
	KeyID() string
	PublicKey() ed25519.PublicKey
}

// UploadsConfig wires the evidence pipeline.
type UploadsConfig struct {
	Tx      TxRunner
	Uploads UploadStore
	Regions RegionStore
	Users   UserStore
	Objects MediaObjects
	Checker MediaChecker
	Signer  ProvenanceSigner
	Audit   *Auditor
	// Limits bounds what one file may cost; zero means media.DefaultLimits.
	Limits media.Limits
	// TempDir holds videos read from a store that cannot seek (COS) while
	// they are inspected; "" is the system default.
	TempDir string
	Now     func() time.Time
	Logger  *slog.Logger
}

// Uploads is the evidence pipeline (DESIGN.md §4.2): upload tickets, the
// checks and derived copies made when an upload is completed, media detail
// and provenance, and the cleanup of abandoned uploads.
type Uploads struct{ c UploadsConfig }

// NewUploads builds the evidence pipeline.
func NewUploads(c UploadsConfig) *Uploads {
	if c.Limits == (media.Limits{}) {
		c.Limits = media.DefaultLimits()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return &Uploads{c: c}
}

// Timings of the pipeline.
const (
	// UploadTicketTTL is how long a presigned PUT URL works: long enough for
	// a 200 MiB video on a slow rural 4G link, short enough that a leaked
	// URL is soon useless.
	UploadTicketTTL = 15 * time.Minute
	// uploadCompleteGrace lets a client that finished its PUT just before
	// the URL expired still call complete.
	uploadCompleteGrace = 10 * time.Minute
	// orphanGrace is how long after expiry a never-completed upload is left
	// alone before cleanup takes it; longer than uploadCompleteGrace so a
	// complete in progress is never pulled from under itself.
	orphanGrace = 30 * time.Minute
	// mediaURLTTL is the life of the download URLs in media detail: they
	// are fetched right away by the mini-program, and an expired one is
	// renewed by asking for the detail again.
	mediaURLTTL = 10 * time.Minute
	// contentCheckURLTTL covers WeChat fetching the image later; it answers
	// within 30 minutes.
	contentCheckURLTTL = time.Hour
	// processTimeout bounds one completion (reading, checking, rendering and
	// storing a file of up to 200 MiB).
	processTimeout = 3 * time.Minute
	// maxUploadsPerRecord caps pending+ready files of one record, so a bug
	// or a hostile client cannot fill the bucket through one draft.
	maxUploadsPerRecord = 100
)

// Object key prefixes. Keys are built only from server-issued ids, never
// from anything the client sent.
const (
	// incomingPrefix holds bytes as the client PUT them, before any check.
	// Nothing under it is evidence; everything under it is short-lived.
	incomingPrefix = "incoming/"
	// evidencePrefix holds originals the server has checked and hashed, and
	// their derived copies. Only the server writes here.
	evidencePrefix = "evidence/"
)

// Content-check states of an upload.
const (
	ContentCheckPending = "pending" // submitted, WeChat's verdict not in yet
	ContentCheckPass    = "pass"
	ContentCheckReview  = "review"
	ContentCheckRisky   = "risky"
	// ContentCheckFailed: submitting the check failed; a later job retries.
	ContentCheckFailed = "failed"
	// ContentCheckNone: videos are not checked by WeChat; people review them.
	ContentCheckNone = "none"
)

var allowedTypes = map[string][]string{
	model.KindImage: {media.TypeJPEG, media.TypePNG},
	model.KindVideo: {media.TypeMP4, media.TypeQuickTime},
}

// TicketInput asks for one upload.
type TicketInput struct {
	RecordID    string
	Kind        string
	ContentType string
	Size        int64
}

// UploadTicket tells the client where to PUT the bytes.
type UploadTicket struct {
	UploadID string
	Ticket   storage.PutTicket
}

// CreateTicket registers a pending upload for an editable record of the
// caller's organization and presigns a PUT of exactly the declared size.
func (s *Uploads) CreateTicket(ctx context.Context, in TicketInput) (UploadTicket, error) {
	p := PrincipalFrom(ctx)
	rec, err := s.c.Uploads.Record(ctx, in.RecordID)
	if err != nil || !p.CanOrg(rec.OrgID, model.RoleWorker, model.RoleOrgAdmin) {
		return UploadTicket{}, notFound("服务记录", err)
	}
	if !recordEditable(rec) {
		return UploadTicket{}, errRecordNotEditable()
	}
	ct := strings.ToLower(strings.TrimSpace(in.ContentType))
	types, ok := allowedTypes[in.Kind]
	if !ok || !slices.Contains(types, ct) {
		return UploadTicket{}, rejectionError(codeUnsupportedType).WithFields(apperr.FieldError{Field: "content_type",
			Reason: "one_of:image/jpeg,image/png,video/mp4,video/quicktime"})
	}
	if in.Size <= 0 {
		return UploadTicket{}, apperr.Invalid("文件大小不正确", apperr.FieldError{Field: "size", Reason: "positive"})
	}
	if limit := s.maxBytes(in.Kind); in.Size > limit {
		return UploadTicket{}, rejectionError(codeTooLarge).WithFields(apperr.FieldError{Field: "size", Reason: "max:" + strconv.FormatInt(limit, 10)})
	}
	n, err := s.c.Uploads.CountActiveByRecord(ctx, rec.ID)
	if err != nil {
		return UploadTicket{}, err
	}
	if n >= maxUploadsPerRecord {
		return UploadTicket{}, apperr.New(apperr.ErrConflict, "UPLOAD_LIMIT_REACHED", "这条记录的文件已达上限")
	}

	id := ids.New()
	key := incomingPrefix + rec.OrgID + "/" + id
	// Presigning is local computation for both backends, so it happens
	// before the transaction; the URL is useless until the row exists
	// because complete looks the upload up by id.
	t, err := s.c.Objects.PresignPut(ctx, key, ct, in.Size, UploadTicketTTL)
	if err != nil {
		return UploadTicket{}, err
	}
	recordID := rec.ID
	u := model.Upload{ID: id, UploaderID: p.UserID, OrgID: rec.OrgID, RecordID: &recordID, Kind: in.Kind, ContentType: ct,
		DeclaredSize: in.Size, StorageKey: key, Status: model.UploadPending, ExpiresAt: t.ExpiresAt.UTC()}
	err = s.c.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.c.Uploads.Create(ctx, &u); err != nil {
			return err
		}
		return s.c.Audit.Record(ctx, AuditEntry{Action: "upload.ticket", ObjectType: "upload", ObjectID: u.ID,
			After: map[string]any{"record_id": rec.ID, "kind": u.Kind, "content_type": ct, "size": in.Size, "expires_at": u.ExpiresAt}})
	})
	if err != nil {
		return UploadTicket{}, err
	}
	return UploadTicket{UploadID: id, Ticket: t}, nil
}

func (s *Uploads) maxBytes(kind string) int64 {
	if kind == model.KindVideo {
		return s.c.Limits.MaxVideoBytes
	}
	return s.c.Limits.MaxImageBytes
}

// recordEditable: evidence may change only while the worker still holds the
// record (DESIGN.md §3 statuses).
func recordEditable(r model.SessionRecord) bool {
	return r.Status == model.RecordDraft || r.Status == model.RecordReturned
}

func errRecordNotEditable() *apperr.Error {
	return apperr.New(apperr.ErrConflict, "RECORD_NOT_EDITABLE", "记录已提交，不能再修改")
}

// ClientLocation is where the phone says it was when the file was taken.
// All fields are optional; latitude and longitude come together.
type ClientLocation struct {
	Lat, Lng  *float64
	AccuracyM *float64
}

func (l ClientLocation) validate() error {
	var fe []apperr.FieldError
	bad := func(f float64) bool { return math.IsNaN(f) || math.IsInf(f, 0) }
	if (l.Lat == nil) != (l.Lng == nil) {
		fe = append(fe, apperr.FieldError{Field: "latitude", Reason: "latitude_and_longitude_together"})
	}
	if l.Lat != nil && (bad(*l.Lat) || *l.Lat < -90 || *l.Lat > 90) {
		fe = append(fe, apperr.FieldError{Field: "latitude", Reason: "range_-90_90"})
	}
	if l.Lng != nil && (bad(*l.Lng) || *l.Lng < -180 || *l.Lng > 180) {
		fe = append(fe, apperr.FieldError{Field: "longitude", Reason: "range_-180_180"})
	}
	if l.AccuracyM != nil && (bad(*l.AccuracyM) || *l.AccuracyM < 0 || *l.AccuracyM > 100000) {
		fe = append(fe, apperr.FieldError{Field: "accuracy_m", Reason: "range_0_100000"})
	}
	if l.AccuracyM != nil && l.Lat == nil {
		fe = append(fe, apperr.FieldError{Field: "accuracy_m", Reason: "needs_latitude_and_longitude"})
	}
	if len(fe) > 0 {
		return apperr.Invalid("位置信息不正确", fe...)
	}
	return nil
}

// ---- rejection codes ----

const (
	codeTooLarge        = "MEDIA_TOO_LARGE"
	codeTooManyPixels   = "MEDIA_TOO_MANY_PIXELS"
	codeTypeMismatch    = "MEDIA_TYPE_MISMATCH"
	codeUnsupportedType = "UNSUPPORTED_MEDIA_TYPE"
	codeCorrupt         = "MEDIA_CORRUPT"
	codeVideoTooLong    = "VIDEO_TOO_LONG"
	codeSizeMismatch    = "UPLOAD_SIZE_MISMATCH"
	codeDuplicate       = "MEDIA_DUPLICATE"
)

// rejections are the permanent verdicts on a file; the code is stored on the
// upload so completing it again answers the same.
var rejections = map[string]struct {
	kind error
	msg  string
}{
	codeTooLarge:        {apperr.ErrTooLarge, "文件太大（照片不超过20MB，视频不超过200MB）"},
	codeTooManyPixels:   {apperr.ErrTooLarge, "图片像素过多，请压缩后上传"},
	codeTypeMismatch:    {apperr.ErrInvalid, "文件内容与声明的类型不符"},
	codeUnsupportedType: {apperr.ErrInvalid, "不支持的文件类型，请上传JPEG/PNG照片或MP4/MOV视频"},
	codeCorrupt:         {apperr.ErrInvalid, "文件已损坏或不完整，请重新上传"},
	codeVideoTooLong:    {apperr.ErrInvalid, "视频太长（不超过10分钟）"},
	codeSizeMismatch:    {apperr.ErrInvalid, "上传的文件大小与申请时不一致，请重新上传"},
	codeDuplicate:       {apperr.ErrConflict, "该文件已在平台上使用过，不能重复提交"},
}

func rejectionError(code string) *apperr.Error {
	r, ok := rejections[code]
	if !ok {
		return apperr.New(apperr.ErrInvalid, code, "文件未通过检查")
	}
	return apperr.New(r.kind, code, r.msg)
}

// mediaRejectCode maps pkg/media's verdicts to stable codes; ok is false for
// errors that say nothing about the file (I/O), which leave the upload
// pending so the client can retry.
func mediaRejectCode(err error) (string, bool) {
	switch {
	case errors.Is(err, media.ErrTooLarge):
		return codeTooLarge, true
	case errors.Is(err, media.ErrTooManyPixels):
		return codeTooManyPixels, true
	case errors.Is(err, media.ErrTooLong):
		return codeVideoTooLong, true
	case errors.Is(err, media.ErrUnsupportedType):
		return codeUnsupportedType, true
	case errors.Is(err, media.ErrTypeMismatch):
		return codeTypeMismatch, true
	case errors.Is(err, media.ErrCorrupt):
		return codeCorrupt, true
	}
	return "", false
}

func errUploadExpired() *apperr.Error {
	return apperr.New(apperr.ErrGone, "UPLOAD_EXPIRED", "上传已过期，请重新上传")
}
