package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"qjmz/model"
	"qjmz/pkg/apperr"
	"qjmz/pkg/ids"
	"qjmz/service"
)

// ---- requests ----

// recordRequest creates (order_id required) or patches (order_id refused:
// a record stays with its order) a session record. Absent fields keep their
// value on PATCH; beneficiary_ids, when present, replaces the set.
type recordRequest struct {
	OrderID          string     `json:"order_id"`
	CommunityID      *string    `json:"community_id"`
	VenueName        *string    `json:"venue_name" binding:"omitempty,max=128"`
	VenueLat         *float64   `json:"venue_lat"`
	VenueLng         *float64   `json:"venue_lng"`
	StartAt          *time.Time `json:"start_at"`
	EndAt            *time.Time `json:"end_at"`
	Title            *string    `json:"title" binding:"omitempty,max=128"`
	Description      *string    `json:"description" binding:"omitempty,max=2000"`
	ParticipantCount *int       `json:"participant_count"`
	BeneficiaryIDs   *[]string  `json:"beneficiary_ids" binding:"omitempty,max=200"`
}

func (r recordRequest) input() service.RecordInput {
	return service.RecordInput{OrderID: r.OrderID, CommunityID: r.CommunityID, VenueName: r.VenueName, VenueLat: r.VenueLat,
		VenueLng: r.VenueLng, StartAt: r.StartAt, EndAt: r.EndAt, Title: r.Title, Description: r.Description,
		ParticipantCount: r.ParticipantCount, BeneficiaryIDs: r.BeneficiaryIDs}
}

type submitRecordRequest struct {
	ExpectedVersion int `json:"expected_version" binding:"required,min=1"`
}

// ---- responses ----

type recordItemRef struct {
	ID   string `json:"id"`
	Code string `json:"code,omitempty"`
	Name string `json:"name"`
}

type recordOrderRef struct {
	ID           string `json:"id"`
	UnitPriceFen int64  `json:"unit_price_fen"`
	Status       string `json:"status"`
}

type recordVenueDTO struct {
	Name string  `json:"name"`
	Lat  float64 `json:"lat"`
	Lng  float64 `json:"lng"`
}

type recordBeneficiaryDTO struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	IDNumber        string `json:"id_number"`
	Phone           string `json:"phone,omitempty"`
	Household       string `json:"household"`
	CommunityID     string `json:"community_id"`
	Categories      string `json:"categories"`
	GuardianConsent bool   `json:"guardian_consent"`
	PublicConsent   bool   `json:"public_consent"`
}

type recordMediaDTO struct {
	ID           string  `json:"id"`
	Kind         string  `json:"kind"`
	Status       string  `json:"status"`
	ContentType  string  `json:"content_type"`
	Width        int     `json:"width,omitempty"`
	Height       int     `json:"height,omitempty"`
	DurationMs   int64   `json:"duration_ms,omitempty"`
	SHA256       string  `json:"sha256,omitempty"`
	HasEXIF      bool    `json:"has_exif"`
	CaptureTime  *string `json:"capture_time"`
	HasThumbnail bool    `json:"has_thumbnail"`
	ContentCheck string  `json:"content_check,omitempty"`
}

type riskFlagDTO struct {
	ID        string          `json:"id"`
	Version   int             `json:"version"`
	Code      string          `json:"code"`
	Severity  string          `json:"severity"`
	Evidence  json.RawMessage `json:"evidence"`
	CreatedAt string          `json:"created_at"`
}

type recordDTO struct {
	ID               string                 `json:"id"`
	Status           string                 `json:"status"`
	Version          int                    `json:"version"`
	RiskLevel        string                 `json:"risk_level"`
	OrganizationID   string                 `json:"organization_id"`
	Order            recordOrderRef         `json:"order"`
	Item             recordItemRef          `json:"item"`
	Town             regionRef              `json:"town"`
	Community        regionRef              `json:"community"`
	WorkerID         string                 `json:"worker_id"`
	Venue            recordVenueDTO         `json:"venue"`
	StartAt          string                 `json:"start_at"`
	EndAt            string                 `json:"end_at"`
	Title            string                 `json:"title"`
	Description      string                 `json:"description"`
	ParticipantCount int                    `json:"participant_count"`
	Beneficiaries    []recordBeneficiaryDTO `json:"beneficiaries"`
	Media            []recordMediaDTO       `json:"media"`
	Flags            []riskFlagDTO          `json:"flags"`
	SubmittedAt      *string                `json:"submitted_at"`
	DecidedAt        *string                `json:"decided_at"`
	CreatedAt        string                 `json:"created_at"`
	UpdatedAt        string                 `json:"updated_at"`
}

func riskFlagsOut(fs []model.RiskFlag) []riskFlagDTO {
	out := make([]riskFlagDTO, 0, len(fs))
	for _, f := range fs {
		ev := json.RawMessage(f.Evidence)
		if !json.Valid(ev) {
			ev = json.RawMessage("{}")
		}
		out = append(out, riskFlagDTO{ID: f.ID, Version: f.Version, Code: f.Code, Severity: f.Severity, Evidence: ev, CreatedAt: ts(f.CreatedAt)})
	}
	return out
}

func recordOut(d service.RecordDetail) recordDTO {
	r := d.Record
	out := recordDTO{ID: r.ID, Status: r.Status, Version: r.Version, RiskLevel: r.RiskLevel, OrganizationID: r.OrgID,
		Order:     recordOrderRef{ID: d.Order.ID, UnitPriceFen: d.Order.UnitPriceFen, Status: d.Order.Status},
		Item:      recordItemRef{ID: d.Item.ID, Code: d.Item.Code, Name: d.Item.Name},
		Town:      regionRef{ID: r.TownID, Name: d.Town.Name},
		Community: regionRef{ID: r.CommunityID, Name: d.Community.Name},
		WorkerID:  r.WorkerID, Venue: recordVenueDTO{Name: r.VenueName, Lat: r.VenueLat, Lng: r.VenueLng},
		StartAt: ts(r.StartAt), EndAt: ts(r.EndAt), Title: r.Title, Description: r.Description,
		ParticipantCount: r.ParticipantCount, Beneficiaries: []recordBeneficiaryDTO{}, Media: []recordMediaDTO{},
		Flags: riskFlagsOut(d.Flags), SubmittedAt: tsPtr(r.SubmittedAt), DecidedAt: tsPtr(r.DecidedAt),
		CreatedAt: ts(r.CreatedAt), UpdatedAt: ts(r.UpdatedAt)}
	for _, b := range d.Beneficiaries {
		out.Beneficiaries = append(out.Beneficiaries, recordBeneficiaryDTO{ID: b.ID, Name: b.Name, IDNumber: b.IDNumber, Phone: b.Phone,
			Household: b.Household, CommunityID: b.CommunityID, Categories: b.Categories, GuardianConsent: b.GuardianConsent,
			PublicConsent: b.PublicConsent})
	}
	for _, m := range d.Media {
		out.Media = append(out.Media, recordMediaDTO{ID: m.ID, Kind: m.Kind, Status: m.Status, ContentType: m.ContentType,
			Width: m.Width, Height: m.Height, DurationMs: m.DurationMs, SHA256: m.SHA256, HasEXIF: m.HasEXIF,
			CaptureTime: tsPtr(m.CaptureTime), HasThumbnail: m.ThumbKey != "", ContentCheck: m.ContentCheck})
	}
	return out
}

type recordSummaryDTO struct {
	ID               string        `json:"id"`
	Status           string        `json:"status"`
	Version          int           `json:"version"`
	RiskLevel        string        `json:"risk_level"`
	Title            string        `json:"title"`
	OrderID          string        `json:"order_id"`
	Item             recordItemRef `json:"item"`
	Community        regionRef     `json:"community"`
	WorkerID         string        `json:"worker_id"`
	StartAt          string        `json:"start_at"`
	EndAt            string        `json:"end_at"`
	ParticipantCount int           `json:"participant_count"`
	SubmittedAt      *string       `json:"submitted_at"`
	CreatedAt        string        `json:"created_at"`
	UpdatedAt        string        `json:"updated_at"`
}

type recordVersionDTO struct {
	Version     int             `json:"version"`
	SubmittedAt string          `json:"submitted_at"`
	SubmittedBy string          `json:"submitted_by"`
	Snapshot    json.RawMessage `json:"snapshot"`
	Flags       []riskFlagDTO   `json:"flags"`
}

// ---- handlers ----

func (s *server) createRecord(c *gin.Context) {
	var req recordRequest
	if !s.bindJSON(c, &req) {
		return
	}
	if !ids.Valid(req.OrderID) {
		fail(c, s.log, apperr.NotFound("订单"))
		return
	}
	d, err := s.Records.Create(c.Request.Context(), req.input())
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusCreated, recordOut(d))
}

func (s *server) updateRecord(c *gin.Context) {
	id, ok := s.idParam(c, "服务记录")
	if !ok {
		return
	}
	var req recordRequest
	if !s.bindJSON(c, &req) {
		return
	}
	if req.OrderID != "" {
		fail(c, s.log, apperr.Invalid("服务记录不能更换订单", apperr.FieldError{Field: "order_id", Reason: "immutable"}))
		return
	}
	d, err := s.Records.Update(c.Request.Context(), id, req.input())
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, recordOut(d))
}

func (s *server) getRecord(c *gin.Context) {
	id, ok := s.idParam(c, "服务记录")
	if !ok {
		return
	}
	d, err := s.Records.Get(c.Request.Context(), id)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, recordOut(d))
}

func (s *server) listRecords(c *gin.Context) {
	limit, err := limitParam(c, 20, 100)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	rows, next, err := s.Records.List(c.Request.Context(), service.RecordQuery{Status: c.Query("status"), Cursor: c.Query("cursor"), Limit: limit})
	if err != nil {
		fail(c, s.log, err)
		return
	}
	out := make([]recordSummaryDTO, 0, len(rows))
	for _, v := range rows {
		r := v.Record
		out = append(out, recordSummaryDTO{ID: r.ID, Status: r.Status, Version: r.Version, RiskLevel: r.RiskLevel, Title: r.Title,
			OrderID: r.OrderID, Item: recordItemRef{ID: r.ItemID, Name: v.ItemName}, Community: regionRef{ID: r.CommunityID, Name: v.CommunityName},
			WorkerID: r.WorkerID, StartAt: ts(r.StartAt), EndAt: ts(r.EndAt), ParticipantCount: r.ParticipantCount,
			SubmittedAt: tsPtr(r.SubmittedAt), CreatedAt: ts(r.CreatedAt), UpdatedAt: ts(r.UpdatedAt)})
	}
	c.JSON(http.StatusOK, list(out, next))
}

func (s *server) submitRecord(c *gin.Context) {
	id, ok := s.idParam(c, "服务记录")
	if !ok {
		return
	}
	var req submitRecordRequest
	if !s.bindJSON(c, &req) {
		return
	}
	d, err := s.Records.Submit(c.Request.Context(), id, req.ExpectedVersion)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, recordOut(d))
}

func (s *server) listRecordVersions(c *gin.Context) {
	id, ok := s.idParam(c, "服务记录")
	if !ok {
		return
	}
	vs, err := s.Records.Versions(c.Request.Context(), id)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	out := make([]recordVersionDTO, 0, len(vs))
	for _, v := range vs {
		out = append(out, recordVersionDTO{Version: v.Version.Version, SubmittedAt: ts(v.Version.SubmittedAt),
			SubmittedBy: v.Version.SubmittedBy, Snapshot: v.SnapshotRaw, Flags: riskFlagsOut(v.Flags)})
	}
	c.JSON(http.StatusOK, list(out, ""))
}
