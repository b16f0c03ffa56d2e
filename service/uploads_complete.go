package service

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"qjmz/model"
	"qjmz/pkg/apperr"
	"qjmz/pkg/ids"
	"qjmz/pkg/media"
	"qjmz/pkg/neardup"
	"qjmz/pkg/provenance"
	"qjmz/pkg/storage"
	"qjmz/pkg/wechat"
)

var (
	// errLostRace: another request settled the upload between our read and
	// our conditional update; its outcome is the answer.
	errLostRace = errors.New("uploads: settled by another request")
	// errDuplicateInTx: an identical file turned ready while this one was
	// being processed.
	errDuplicateInTx = errors.New("uploads: duplicate found at commit")
)

// Complete checks the bytes the client uploaded and turns the upload into
// evidence: hashes, file metadata, watermarked display copy and thumbnail,
// signed provenance, and (after commit) the WeChat content check for images.
//
// Only the uploader may complete. A completed upload answers the same again
// without being processed twice: ready → its detail, rejected → its code.
// Processing is synchronous here; at scale it moves to a worker queue
// (docs/evidence-pipeline.md).
func (s *Uploads) Complete(ctx context.Context, id string, loc ClientLocation) (UploadView, error) {
	p := PrincipalFrom(ctx)
	u, err := s.c.Uploads.Get(ctx, id)
	if err != nil || p == nil || u.UploaderID != p.UserID || u.RecordID == nil {
		return UploadView{}, notFound("上传", err)
	}
	if u.Status != model.UploadPending {
		return s.settled(ctx, u)
	}
	if err := loc.validate(); err != nil {
		return UploadView{}, err
	}
	// A phone on a weak network often drops the connection while a large
	// video is processed; finishing anyway lets its retry find the result.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), processTimeout)
	defer cancel()

	now := s.c.Now()
	if now.After(u.ExpiresAt.Add(uploadCompleteGrace)) {
		return s.expire(ctx, u)
	}
	rec, err := s.c.Uploads.Record(ctx, *u.RecordID)
	if err != nil {
		return UploadView{}, notFound("服务记录", err)
	}
	if !recordEditable(rec) {
		return UploadView{}, errRecordNotEditable()
	}

	// COS cannot cap the size of a presigned PUT, so the declared size is
	// enforced here, before a byte is read.
	info, err := s.c.Objects.Head(ctx, u.StorageKey)
	if errors.Is(err, storage.ErrNotFound) {
		return UploadView{}, apperr.New(apperr.ErrConflict, "UPLOAD_NOT_RECEIVED", "还没有收到文件，请上传后再确认")
	}
	if err != nil {
		return UploadView{}, err
	}
	if info.Size > s.maxBytes(u.Kind) {
		return s.reject(ctx, u, codeTooLarge, "", info.Size)
	}
	if info.Size != u.DeclaredSize {
		return s.reject(ctx, u, codeSizeMismatch, "", info.Size)
	}

	at, err := s.process(ctx, u, rec, loc, now)
	if err != nil {
		if code, ok := mediaRejectCode(err); ok {
			return s.reject(ctx, u, code, "", info.Size)
		}
		var rj *rejected
		if errors.As(err, &rj) {
			return s.reject(ctx, u, rj.code, "", rj.size)
		}
		return UploadView{}, err
	}
	// Exactly these bytes already serve as evidence somewhere: "photos
	// cannot be reused". Checked again inside the transaction below.
	if dups, err := s.c.Uploads.FindBySHA256(ctx, at.sha256, ""); err != nil {
		s.discard(ctx, at.keys()...)
		return UploadView{}, err
	} else if len(dups) > 0 {
		s.discard(ctx, at.keys()...)
		return s.reject(ctx, u, codeDuplicate, at.sha256, at.size)
	}

	cols, err := s.readyColumns(u, loc, at, now)
	if err != nil {
		s.discard(ctx, at.keys()...)
		return UploadView{}, err
	}
	err = s.c.Tx.InTx(ctx, func(ctx context.Context) error {
		rec, err := s.c.Uploads.LockRecord(ctx, *u.RecordID)
		if err != nil {
			return err
		}
		if !recordEditable(rec) {
			return errRecordNotEditable()
		}
		dups, err := s.c.Uploads.FindBySHA256(ctx, at.sha256, "")
		if err != nil {
			return err
		}
		if len(dups) > 0 {
			return errDuplicateInTx
		}
		ok, err := s.c.Uploads.Transition(ctx, u.ID, model.UploadPending, cols)
		if err != nil {
			return err
		}
		if !ok {
			return errLostRace
		}
		return s.c.Audit.Record(ctx, AuditEntry{Action: "upload.complete", ObjectType: "upload", ObjectID: u.ID,
			Before: map[string]any{"status": model.UploadPending},
			After: map[string]any{"status": model.UploadReady, "record_id": rec.ID, "kind": u.Kind, "size": at.size,
				"sha256": at.sha256, "storage_key": at.originalKey, "has_exif": at.hasEXIF, "capture_time": at.captureTime,
				"provenance_key": cols["provenance_key"]}})
	})
	if err != nil {
		// Every attempt wrote its own keys, so removing them can never touch
		// what a concurrent, successful attempt stored.
		s.discard(ctx, at.keys()...)
		switch {
		case errors.Is(err, errDuplicateInTx):
			return s.reject(ctx, u, codeDuplicate, at.sha256, at.size)
		case errors.Is(err, errLostRace):
			return s.reread(ctx, u.ID)
		}
		return UploadView{}, err
	}
	// The bytes now live under the final key; the incoming copy is no longer
	// needed, and a client re-using its still-valid PUT URL cannot change
	// the evidence (cleanup removes anything it writes there).
	s.discard(ctx, u.StorageKey)
	if u.Kind == model.KindImage {
		s.startContentCheck(ctx, u.ID, p.UserID, at.displayKey)
	}
	return s.reread(ctx, u.ID)
}

// attempt is what one processing run produced and stored.
type attempt struct {
	sha256                            string
	size                              int64
	contentType                       string
	originalKey, displayKey, thumbKey string
	width, height                     int
	duration                          time.Duration
	hasEXIF, offsetKnown              bool
	captureTime                       *time.Time
	gps                               *media.GPS
	fp                                *neardup.Fingerprint
}

func (a attempt) keys() []string {
	var out []string
	for _, k := range []string{a.originalKey, a.displayKey, a.thumbKey} {
		if k != "" {
			out = append(out, k)
		}
	}
	return out
}

// rejected is a verdict on the file found while reading it.
type rejected struct {
	code string
	size int64
}

func (r *rejected) Error() string { return "uploads: rejected " + r.code }

// process reads the incoming object, inspects it and stores the checked
// original and derived copies under keys unique to this attempt. The
// original is copied rather than left in place: the PUT URL stays valid
// until it expires, and the evidence must be the bytes that were hashed.
func (s *Uploads) process(ctx context.Context, u model.Upload, rec model.SessionRecord, loc ClientLocation, now time.Time) (attempt, error) {
	rc, _, err := s.c.Objects.Get(ctx, u.StorageKey)
	if errors.Is(err, storage.ErrNotFound) {
		return attempt{}, apperr.New(apperr.ErrConflict, "UPLOAD_NOT_RECEIVED", "还没有收到文件，请上传后再确认")
	}
	if err != nil {
		return attempt{}, err
	}
	defer rc.Close()
	base := fmt.Sprintf("%s%s/%s/%s-%s", evidencePrefix, u.OrgID, now.In(beijing).Format("2006/01"), u.ID, ids.Secret(6))
	if u.Kind == model.KindVideo {
		return s.processVideo(ctx, u, rc, base)
	}
	return s.processImage(ctx, u, rec, loc, rc, base, now)
}

var extensions = map[string]string{media.TypeJPEG: ".jpg", media.TypePNG: ".png", media.TypeMP4: ".mp4", media.TypeQuickTime: ".mov"}

func (s *Uploads) processImage(ctx context.Context, u model.Upload, rec model.SessionRecord, loc ClientLocation, rc io.Reader, base string, now time.Time) (attempt, error) {
	limit := s.c.Limits.MaxImageBytes
	data, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return attempt{}, fmt.Errorf("uploads: read image: %w", err)
	}
	// The object may have been replaced since Head (the PUT URL is still
	// valid): judge the bytes actually read.
	if int64(len(data)) > limit {
		return attempt{}, &rejected{code: codeTooLarge, size: int64(len(data))}
	}
	if int64(len(data)) != u.DeclaredSize {
		return attempt{}, &rejected{code: codeSizeMismatch, size: int64(len(data))}
	}
	info, img, err := media.InspectImage(bytes.NewReader(data), u.ContentType, s.c.Limits)
	if err != nil {
		return attempt{}, err
	}
	fp, err := neardup.Compute(img)
	if err != nil {
		return attempt{}, fmt.Errorf("uploads: fingerprint: %w", err)
	}
	display, thumb, err := media.RenderDisplay(img, media.Watermark{Time: now, Place: placeLabel(loc, info.GPS), RecordID: rec.ID})
	if err != nil {
		return attempt{}, fmt.Errorf("uploads: render: %w", err)
	}
	at := attempt{sha256: info.SHA256, size: info.Size, contentType: info.ContentType, width: info.Width, height: info.Height,
		hasEXIF: info.HasEXIF, offsetKnown: info.CaptureOffsetKnown, captureTime: info.CaptureTime, gps: info.GPS, fp: &fp}
	puts := []struct {
		key  *string
		name string
		data []byte
		ct   string
	}{
		{&at.originalKey, base + extensions[info.ContentType], data, info.ContentType},
		{&at.displayKey, base + ".display.jpg", display, media.TypeJPEG},
		{&at.thumbKey, base + ".thumb.jpg", thumb, media.TypeJPEG},
	}
	for _, p := range puts {
		if err := s.c.Objects.Put(ctx, p.name, bytes.NewReader(p.data), int64(len(p.data)), p.ct); err != nil {
			s.discard(ctx, at.keys()...)
			s.discard(ctx, p.name)
			return attempt{}, err
		}
		*p.key = p.name
	}
	return at, nil
}

func (s *Uploads) processVideo(ctx context.Context, u model.Upload, rc io.Reader, base string) (attempt, error) {
	limit := s.c.Limits.MaxVideoBytes
	// Inspection seeks. Local hands back an open file, which keeps the bytes
	// it had even if the key is overwritten meanwhile; anything else (COS's
	// HTTP body) is spooled to a temporary file first.
	rs, ok := rc.(io.ReadSeeker)
	if !ok {
		tmp, err := os.CreateTemp(s.c.TempDir, "qjmz-video-*")
		if err != nil {
			return attempt{}, fmt.Errorf("uploads: spool video: %w", err)
		}
		defer func() {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}()
		if _, err := io.Copy(tmp, io.LimitReader(rc, limit+1)); err != nil {
			return attempt{}, fmt.Errorf("uploads: spool video: %w", err)
		}
		rs = tmp
	}
	n, err := rs.Seek(0, io.SeekEnd)
	if err != nil {
		return attempt{}, fmt.Errorf("uploads: measure video: %w", err)
	}
	if n > limit {
		return attempt{}, &rejected{code: codeTooLarge, size: n}
	}
	if n != u.DeclaredSize {
		return attempt{}, &rejected{code: codeSizeMismatch, size: n}
	}
	info, err := media.InspectVideo(rs, n, u.ContentType, s.c.Limits)
	if err != nil {
		return attempt{}, err
	}
	if _, err := rs.Seek(0, io.SeekStart); err != nil {
		return attempt{}, fmt.Errorf("uploads: rewind video: %w", err)
	}
	key := base + extensions[info.ContentType]
	if err := s.c.Objects.Put(ctx, key, io.LimitReader(rs, n), n, info.ContentType); err != nil {
		s.discard(ctx, key)
		return attempt{}, err
	}
	return attempt{sha256: info.SHA256, size: info.Size, contentType: info.ContentType, originalKey: key,
		width: info.Width, height: info.Height, duration: info.Duration, captureTime: info.CreationTime}, nil
}

// placeLabel is the watermark's place line: the phone's fix if it sent one,
// else the photo's own GPS, as "29.5300N 108.7700E" (ASCII: the watermark
// font has no CJK glyphs).
func placeLabel(loc ClientLocation, gps *media.GPS) string {
	var lat, lng float64
	switch {
	case loc.Lat != nil:
		lat, lng = *loc.Lat, *loc.Lng
	case gps != nil:
		lat, lng = gps.Lat, gps.Lng
	default:
		return ""
	}
	ns, ew := 'N', 'E'
	if lat < 0 {
		ns, lat = 'S', -lat
	}
	if lng < 0 {
		ew, lng = 'W', -lng
	}
	return fmt.Sprintf("%.4f%c %.4f%c", lat, ns, lng, ew)
}

// readyColumns signs the provenance record and lists every column the
// ready upload gets.
func (s *Uploads) readyColumns(u model.Upload, loc ClientLocation, at attempt, now time.Time) (map[string]any, error) {
	rec := provenance.Record{UploadID: u.ID, Uploader: u.UploaderID, SHA256: at.sha256, Kind: u.Kind, Size: at.size,
		ServerTime: now, ClientLat: loc.Lat, ClientLng: loc.Lng, ClientAccuracyM: loc.AccuracyM, CaptureTime: utcPtr(at.captureTime)}
	if at.fp != nil {
		rec.PHash = fmt.Sprintf("%016x", at.fp.PHash)
	}
	var fileLat, fileLng *float64
	if at.gps != nil {
		fileLat, fileLng = &at.gps.Lat, &at.gps.Lng
		rec.FileLat, rec.FileLng = fileLat, fileLng
	}
	payload, sig, err := s.c.Signer.Sign(rec)
	if err != nil {
		return nil, fmt.Errorf("uploads: sign provenance: %w", err)
	}
	check := ContentCheckNone
	if u.Kind == model.KindImage {
		check = ContentCheckPending
	}
	cols := map[string]any{
		"status": model.UploadReady, "storage_key": at.originalKey, "completed_at": now, "size": at.size, "sha256": at.sha256,
		"width": at.width, "height": at.height, "duration_ms": at.duration.Milliseconds(),
		"has_exif": at.hasEXIF, "capture_time": utcPtr(at.captureTime), "capture_offset": at.offsetKnown,
		"file_lat": fileLat, "file_lng": fileLng, "client_lat": loc.Lat, "client_lng": loc.Lng, "client_accuracy": loc.AccuracyM,
		"display_key": at.displayKey, "thumb_key": at.thumbKey, "content_check": check,
		"provenance": string(payload), "provenance_sig": base64.StdEncoding.EncodeToString(sig), "provenance_key": s.c.Signer.KeyID(),
		"p_hash": int64(0), "d_hash": int64(0), "top_p_hash": int64(0), "top_d_hash": int64(0),
	}
	if at.fp != nil {
		// SQLite refuses uint64 values with the high bit set: bit-cast.
		cols["p_hash"], cols["d_hash"] = int64(at.fp.PHash), int64(at.fp.DHash)
		cols["top_p_hash"], cols["top_d_hash"] = int64(at.fp.TopPHash), int64(at.fp.TopDHash)
	}
	return cols, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// reject settles the upload as rejected with code, deletes what the client
// uploaded, and answers the rejection. Nothing of a rejected file is kept
// but its hash (so a repeated complete can name the duplicate again).
func (s *Uploads) reject(ctx context.Context, u model.Upload, code, sha string, size int64) (UploadView, error) {
	cols := map[string]any{"status": model.UploadRejected, "reject_code": code, "completed_at": s.c.Now(), "size": size}
	if sha != "" {
		cols["sha256"] = sha
	}
	err := s.c.Tx.InTx(ctx, func(ctx context.Context) error {
		ok, err := s.c.Uploads.Transition(ctx, u.ID, model.UploadPending, cols)
		if err != nil {
			return err
		}
		if !ok {
			return errLostRace
		}
		return s.c.Audit.Record(ctx, AuditEntry{Action: "upload.reject", ObjectType: "upload", ObjectID: u.ID,
			Before: map[string]any{"status": model.UploadPending},
			After:  map[string]any{"status": model.UploadRejected, "reject_code": code, "size": size, "sha256": sha}, Reason: code})
	})
	if errors.Is(err, errLostRace) {
		return s.reread(ctx, u.ID)
	}
	if err != nil {
		return UploadView{}, err
	}
	s.discard(ctx, u.StorageKey)
	u.Status, u.RejectCode, u.SHA256 = model.UploadRejected, code, sha
	return UploadView{}, s.rejectionFor(ctx, u)
}

// expire settles a pending upload whose ticket ran out.
func (s *Uploads) expire(ctx context.Context, u model.Upload) (UploadView, error) {
	ok, err := s.markExpired(ctx, u, "")
	if err != nil {
		return UploadView{}, err
	}
	if !ok {
		return s.reread(ctx, u.ID)
	}
	return UploadView{}, errUploadExpired()
}

func (s *Uploads) markExpired(ctx context.Context, u model.Upload, reason string) (bool, error) {
	err := s.c.Tx.InTx(ctx, func(ctx context.Context) error {
		ok, err := s.c.Uploads.Transition(ctx, u.ID, model.UploadPending, map[string]any{"status": model.UploadExpired})
		if err != nil {
			return err
		}
		if !ok {
			return errLostRace
		}
		return s.c.Audit.Record(ctx, AuditEntry{Action: "upload.expire", ObjectType: "upload", ObjectID: u.ID,
			Before: map[string]any{"status": model.UploadPending}, After: map[string]any{"status": model.UploadExpired}, Reason: reason})
	})
	if errors.Is(err, errLostRace) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	s.discard(ctx, u.StorageKey)
	return true, nil
}

// reread answers with whatever state the upload settled in.
func (s *Uploads) reread(ctx context.Context, id string) (UploadView, error) {
	u, err := s.c.Uploads.Get(ctx, id)
	if err != nil {
		return UploadView{}, err
	}
	return s.settled(ctx, u)
}

// settled answers a completion of an upload that is no longer pending, the
// same way the first completion was answered.
func (s *Uploads) settled(ctx context.Context, u model.Upload) (UploadView, error) {
	switch u.Status {
	case model.UploadReady:
		return s.view(ctx, u)
	case model.UploadRejected:
		return UploadView{}, s.rejectionFor(ctx, u)
	case model.UploadExpired:
		return UploadView{}, errUploadExpired()
	}
	return UploadView{}, apperr.New(apperr.ErrConflict, "UPLOAD_IN_PROGRESS", "文件正在处理，请稍后再试")
}

// DuplicateDetails names the earlier upload with the same bytes.
type DuplicateDetails struct {
	DuplicateOf string `json:"duplicate_of"`
	RecordID    string `json:"record_id"`
}

func (s *Uploads) rejectionFor(ctx context.Context, u model.Upload) error {
	e := rejectionError(u.RejectCode)
	if u.RejectCode == codeDuplicate && u.SHA256 != "" {
		if dups, err := s.c.Uploads.FindBySHA256(ctx, u.SHA256, ""); err == nil && len(dups) > 0 {
			d := DuplicateDetails{DuplicateOf: dups[0].ID}
			if dups[0].RecordID != nil {
				d.RecordID = *dups[0].RecordID
			}
			e = e.WithDetails(d)
		}
	}
	return e
}

// discard deletes objects best-effort: a failure leaves garbage for the
// orphan cleanup, never a wrong answer.
func (s *Uploads) discard(ctx context.Context, keys ...string) {
	ctx = context.WithoutCancel(ctx)
	for _, k := range keys {
		if err := s.c.Objects.Delete(ctx, k); err != nil {
			s.c.Logger.WarnContext(ctx, "uploads: delete object", "key", k, "err", err)
		}
	}
}

// startContentCheck submits the display copy to WeChat after commit and
// records the receipt. A failure is recorded as such (a job resubmits) and
// never fails the upload: the evidence itself is fine.
func (s *Uploads) startContentCheck(ctx context.Context, uploadID, userID, displayKey string) {
	state, trace := ContentCheckFailed, ""
	url, err := s.c.Objects.SignedGetURL(ctx, displayKey, contentCheckURLTTL)
	var user model.User
	if err == nil {
		user, err = s.c.Users.Get(ctx, userID)
	}
	var mc wechat.MediaCheck
	if err == nil {
		mc, err = s.c.Checker.MediaCheckAsync(ctx, user.OpenID, url)
	}
	if err != nil {
		s.c.Logger.WarnContext(ctx, "uploads: content check not started", "upload_id", uploadID, "err", err)
	} else {
		state, trace = ContentCheckPending, mc.TraceID
		if mc.Verdict != "" {
			state = string(mc.Verdict)
		}
	}
	err = s.c.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.c.Uploads.Update(ctx, uploadID, map[string]any{"content_check": state, "check_trace_id": trace}); err != nil {
			return err
		}
		return s.c.Audit.Record(ctx, AuditEntry{Action: "upload.content_check", ObjectType: "upload", ObjectID: uploadID,
			Before: map[string]any{"content_check": ContentCheckPending}, After: map[string]any{"content_check": state, "trace_id": trace}})
	})
	if err != nil {
		s.c.Logger.WarnContext(ctx, "uploads: record content check", "upload_id", uploadID, "err", err)
	}
}
