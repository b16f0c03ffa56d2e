package api

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"qjmz/model"
	"qjmz/pkg/apperr"
	"qjmz/pkg/ids"
	"qjmz/service"
)

type createUploadRequest struct {
	RecordID    string `json:"record_id" binding:"required"`
	Kind        string `json:"kind" binding:"required"`
	ContentType string `json:"content_type" binding:"required,max=64"`
	Size        int64  `json:"size"`
}

type uploadTicketResponse struct {
	UploadID  string            `json:"upload_id"`
	Method    string            `json:"method"`
	URL       string            `json:"url"`
	Headers   map[string]string `json:"headers"`
	ExpiresAt string            `json:"expires_at"`
	MaxBytes  int64             `json:"max_bytes"`
}

func (s *server) createUpload(c *gin.Context) {
	var req createUploadRequest
	if !s.bindJSON(c, &req) {
		return
	}
	if !ids.Valid(req.RecordID) {
		fail(c, s.log, apperr.NotFound("服务记录"))
		return
	}
	t, err := s.Uploads.CreateTicket(c.Request.Context(), service.TicketInput{RecordID: req.RecordID, Kind: req.Kind,
		ContentType: req.ContentType, Size: req.Size})
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusCreated, uploadTicketResponse{UploadID: t.UploadID, Method: t.Ticket.Method, URL: t.Ticket.URL,
		Headers: t.Ticket.Headers, ExpiresAt: ts(t.Ticket.ExpiresAt), MaxBytes: t.Ticket.MaxBytes})
}

type completeUploadRequest struct {
	Latitude  *float64 `json:"latitude"`
	Longitude *float64 `json:"longitude"`
	AccuracyM *float64 `json:"accuracy_m"`
}

func (s *server) completeUpload(c *gin.Context) {
	id, ok := s.idParam(c, "上传")
	if !ok {
		return
	}
	var req completeUploadRequest
	if !s.bindJSON(c, &req) {
		return
	}
	v, err := s.Uploads.Complete(c.Request.Context(), id, service.ClientLocation{Lat: req.Latitude, Lng: req.Longitude, AccuracyM: req.AccuracyM})
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, uploadOut(v))
}

func (s *server) getUpload(c *gin.Context) {
	id, ok := s.idParam(c, "文件")
	if !ok {
		return
	}
	v, err := s.Uploads.Get(c.Request.Context(), id)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, uploadOut(v))
}

type pointDTO struct {
	Latitude  float64  `json:"latitude"`
	Longitude float64  `json:"longitude"`
	AccuracyM *float64 `json:"accuracy_m,omitempty"`
}

type mediaURLsDTO struct {
	Original  string `json:"original"`
	Display   string `json:"display,omitempty"`
	Thumb     string `json:"thumb,omitempty"`
	ExpiresAt string `json:"expires_at"`
}

type uploadDTO struct {
	ID                 string        `json:"id"`
	RecordID           *string       `json:"record_id"`
	Kind               string        `json:"kind"`
	Status             string        `json:"status"`
	RejectCode         string        `json:"reject_code,omitempty"`
	ContentType        string        `json:"content_type"`
	DeclaredSize       int64         `json:"declared_size"`
	Size               int64         `json:"size"`
	SHA256             string        `json:"sha256,omitempty"`
	PHash              string        `json:"phash,omitempty"`
	Width              int           `json:"width"`
	Height             int           `json:"height"`
	DurationMs         int64         `json:"duration_ms"`
	HasEXIF            bool          `json:"has_exif"`
	CaptureTime        *string       `json:"capture_time"`
	CaptureOffsetKnown bool          `json:"capture_offset_known"`
	FileGPS            *pointDTO     `json:"file_gps"`
	ClientLocation     *pointDTO     `json:"client_location"`
	ReceivedAt         *string       `json:"received_at"`
	ContentCheck       string        `json:"content_check"`
	URLs               *mediaURLsDTO `json:"urls"`
	ExpiresAt          string        `json:"expires_at"`
	CreatedAt          string        `json:"created_at"`
}

func uploadOut(v service.UploadView) uploadDTO {
	u := v.Upload
	d := uploadDTO{ID: u.ID, RecordID: u.RecordID, Kind: u.Kind, Status: u.Status, RejectCode: u.RejectCode,
		ContentType: u.ContentType, DeclaredSize: u.DeclaredSize, Size: u.Size, SHA256: u.SHA256, Width: u.Width, Height: u.Height,
		DurationMs: u.DurationMs, HasEXIF: u.HasEXIF, CaptureTime: tsPtr(u.CaptureTime), CaptureOffsetKnown: u.CaptureOffset,
		ReceivedAt: tsPtr(u.CompletedAt), ContentCheck: u.ContentCheck, ExpiresAt: ts(u.ExpiresAt), CreatedAt: ts(u.CreatedAt)}
	if u.Kind == model.KindImage && u.Status == model.UploadReady {
		d.PHash = fmt.Sprintf("%016x", uint64(u.PHash))
	}
	if u.FileLat != nil && u.FileLng != nil {
		d.FileGPS = &pointDTO{Latitude: *u.FileLat, Longitude: *u.FileLng}
	}
	if u.ClientLat != nil && u.ClientLng != nil {
		d.ClientLocation = &pointDTO{Latitude: *u.ClientLat, Longitude: *u.ClientLng, AccuracyM: u.ClientAccuracy}
	}
	if v.OriginalURL != "" {
		d.URLs = &mediaURLsDTO{Original: v.OriginalURL, Display: v.DisplayURL, Thumb: v.ThumbURL, ExpiresAt: ts(v.URLsExpireAt)}
	}
	return d
}

type provenanceResponse struct {
	Record       json.RawMessage `json:"record"`
	PayloadB64   string          `json:"payload_b64"`
	SignatureB64 string          `json:"signature_b64"`
	KeyID        string          `json:"key_id"`
	Algorithm    string          `json:"algorithm"`
}

func (s *server) getUploadProvenance(c *gin.Context) {
	id, ok := s.idParam(c, "文件")
	if !ok {
		return
	}
	p, err := s.Uploads.Provenance(c.Request.Context(), id)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	// record is the payload for reading; payload_b64 carries the exact
	// signed bytes, since a JSON re-encoding of record need not match them.
	c.JSON(http.StatusOK, provenanceResponse{Record: json.RawMessage(p.Payload), PayloadB64: base64.StdEncoding.EncodeToString(p.Payload),
		SignatureB64: base64.StdEncoding.EncodeToString(p.Signature), KeyID: p.KeyID, Algorithm: "Ed25519"})
}

type publicKeyResponse struct {
	KeyID        string `json:"key_id"`
	Algorithm    string `json:"algorithm"`
	PublicKeyPEM string `json:"public_key_pem"`
}

func (s *server) provenancePublicKey(c *gin.Context) {
	keyID, pem := s.Uploads.PublicKey()
	c.Header("Cache-Control", "public, max-age=3600")
	c.JSON(http.StatusOK, publicKeyResponse{KeyID: keyID, Algorithm: "Ed25519", PublicKeyPEM: pem})
}
