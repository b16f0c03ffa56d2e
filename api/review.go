package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"qjmz/model"
	"qjmz/pkg/apperr"
	"qjmz/pkg/ids"
	"qjmz/service"
)

// ---- DTOs ----

type reviewSummaryDTO struct {
	ID               string    `json:"id"`
	Title            string    `json:"title"`
	Status           string    `json:"status"`
	Version          int       `json:"version"`
	ReviewLevel      int       `json:"review_level"`
	Organization     orgRef    `json:"organization"`
	Item             itemRef   `json:"item"`
	Town             regionRef `json:"town"`
	Community        regionRef `json:"community"`
	StartAt          string    `json:"start_at"`
	EndAt            string    `json:"end_at"`
	ParticipantCount int       `json:"participant_count"`
	RiskLevel        string    `json:"risk_level"`
	Flags            []string  `json:"flags"`
	SubmittedAt      *string   `json:"submitted_at"`
	DueAt            *string   `json:"due_at"`
	EscalatedAt      *string   `json:"escalated_at"`
	DecidedAt        *string   `json:"decided_at"`
	Payable          bool      `json:"payable"`
}

func reviewSummaryOut(v service.ReviewSummary) reviewSummaryDTO {
	r := v.Record
	flags := v.FlagCodes
	if flags == nil {
		flags = []string{}
	}
	return reviewSummaryDTO{ID: r.ID, Title: r.Title, Status: r.Status, Version: r.Version, ReviewLevel: v.Level,
		Organization: orgRef{ID: r.OrgID, Name: v.OrgName}, Item: itemRef{ID: r.ItemID, Name: v.ItemName},
		Town:      regionRef{ID: r.TownID, Name: v.TownName, Level: model.LevelTown},
		Community: regionRef{ID: r.CommunityID, Name: v.CommunityName, Level: model.LevelCommunity},
		StartAt:   ts(r.StartAt), EndAt: ts(r.EndAt), ParticipantCount: r.ParticipantCount, RiskLevel: r.RiskLevel, Flags: flags,
		SubmittedAt: tsPtr(r.SubmittedAt), DueAt: tsPtr(r.DueAt), EscalatedAt: tsPtr(r.EscalatedAt), DecidedAt: tsPtr(r.DecidedAt),
		Payable: r.Payable}
}

func reviewSummariesOut(rows []service.ReviewSummary) []reviewSummaryDTO {
	out := make([]reviewSummaryDTO, 0, len(rows))
	for _, r := range rows {
		out = append(out, reviewSummaryOut(r))
	}
	return out
}

type reviewMediaDTO struct {
	ID           string   `json:"id"`
	Kind         string   `json:"kind"`
	DisplayURL   string   `json:"display_url"`
	OriginalURL  string   `json:"original_url"`
	ThumbURL     string   `json:"thumb_url"`
	Width        int      `json:"width,omitempty"`
	Height       int      `json:"height,omitempty"`
	DurationMs   int64    `json:"duration_ms,omitempty"`
	SHA256       string   `json:"sha256"`
	CaptureTime  *string  `json:"capture_time"`
	FileLat      *float64 `json:"file_lat"`
	FileLng      *float64 `json:"file_lng"`
	ClientLat    *float64 `json:"client_lat"`
	ClientLng    *float64 `json:"client_lng"`
	ReceivedAt   *string  `json:"received_at"`
	ContentCheck string   `json:"content_check"`
	PublicOK     bool     `json:"public_ok"`
}

type reviewFlagDTO struct {
	Code            string         `json:"code"`
	Severity        string         `json:"severity"`
	Evidence        map[string]any `json:"evidence"`
	UploadThumbURL  string         `json:"upload_thumb_url,omitempty"`
	MatchedThumbURL string         `json:"matched_thumb_url,omitempty"`
	MatchedRecordID string         `json:"matched_record_id,omitempty"`
}

type reviewChangeDTO struct {
	Field  string `json:"field"`
	Before any    `json:"before"`
	After  any    `json:"after"`
}

type reviewVersionDTO struct {
	Version     int               `json:"version"`
	SubmittedAt string            `json:"submitted_at"`
	SubmittedBy string            `json:"submitted_by"`
	Flags       []string          `json:"flags"`
	Changes     []reviewChangeDTO `json:"changes"`
	Snapshot    any               `json:"snapshot"`
}

type reviewBeneficiaryDTO struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	IDNumber        string `json:"id_number"`
	Phone           string `json:"phone"`
	Household       string `json:"household"`
	Categories      string `json:"categories"`
	GuardianConsent bool   `json:"guardian_consent"`
	PublicConsent   bool   `json:"public_consent"`
}

type reviewDecisionDTO struct {
	ID          string  `json:"id"`
	Version     int     `json:"version"`
	Level       int     `json:"level"`
	Reviewer    string  `json:"reviewer"`
	Decision    string  `json:"decision"`
	ReasonCode  string  `json:"reason_code"`
	ReasonLabel string  `json:"reason_label"`
	Comment     string  `json:"comment"`
	ClaimedAt   *string `json:"claimed_at"`
	DecidedAt   string  `json:"decided_at"`
}

type reviewOrderDTO struct {
	ID           string `json:"id"`
	Quantity     int    `json:"quantity"`
	UsedCount    int    `json:"used_count"`
	UnitPriceFen int64  `json:"unit_price_fen"`
}

type reviewDetailDTO struct {
	reviewSummaryDTO
	Description    string                 `json:"description"`
	VenueName      string                 `json:"venue_name"`
	VenueLat       float64                `json:"venue_lat"`
	VenueLng       float64                `json:"venue_lng"`
	Worker         string                 `json:"worker"`
	Order          reviewOrderDTO         `json:"order"`
	ItemLevels     int                    `json:"item_review_levels"`
	ItemVisibility string                 `json:"item_visibility"`
	Media          []reviewMediaDTO       `json:"media"`
	RiskFlags      []reviewFlagDTO        `json:"risk_flags"`
	Versions       []reviewVersionDTO     `json:"versions"`
	Beneficiaries  []reviewBeneficiaryDTO `json:"beneficiaries"`
	Decisions      []reviewDecisionDTO    `json:"decisions"`
	Lease          *reviewLeaseDTO        `json:"lease"`
	CanDecide      bool                   `json:"can_decide"`
}

type reviewLeaseDTO struct {
	Holder string `json:"holder"` // me | other
	Until  string `json:"until"`
}

func reviewDetailOut(d service.ReviewDetail) reviewDetailDTO {
	r := d.Summary.Record
	out := reviewDetailDTO{reviewSummaryDTO: reviewSummaryOut(d.Summary), Description: r.Description, VenueName: r.VenueName,
		VenueLat: r.VenueLat, VenueLng: r.VenueLng, Worker: d.WorkerName,
		Order:      reviewOrderDTO{ID: d.Order.ID, Quantity: d.Order.Quantity, UsedCount: d.Order.UsedCount, UnitPriceFen: d.Order.UnitPriceFen},
		ItemLevels: d.Item.ReviewLevels, ItemVisibility: d.Item.Visibility, CanDecide: d.CanDecide,
		Media: []reviewMediaDTO{}, RiskFlags: []reviewFlagDTO{}, Versions: []reviewVersionDTO{},
		Beneficiaries: []reviewBeneficiaryDTO{}, Decisions: []reviewDecisionDTO{}}
	out.Item.Code = d.Item.Code
	for _, m := range d.Media {
		u := m.Upload
		out.Media = append(out.Media, reviewMediaDTO{ID: u.ID, Kind: u.Kind, DisplayURL: m.DisplayURL, OriginalURL: m.OriginalURL,
			ThumbURL: m.ThumbURL, Width: u.Width, Height: u.Height, DurationMs: u.DurationMs, SHA256: u.SHA256,
			CaptureTime: tsPtr(u.CaptureTime), FileLat: u.FileLat, FileLng: u.FileLng, ClientLat: u.ClientLat, ClientLng: u.ClientLng,
			ReceivedAt: tsPtr(u.CompletedAt), ContentCheck: u.ContentCheck, PublicOK: u.PublicOK})
	}
	for _, f := range d.Flags {
		ev := f.Evidence
		if ev == nil {
			ev = map[string]any{}
		}
		out.RiskFlags = append(out.RiskFlags, reviewFlagDTO{Code: f.Flag.Code, Severity: f.Flag.Severity, Evidence: ev,
			UploadThumbURL: f.UploadThumbURL, MatchedThumbURL: f.MatchedThumbURL, MatchedRecordID: f.MatchedRecordID})
	}
	for _, v := range d.Versions {
		dto := reviewVersionDTO{Version: v.Version.Version, SubmittedAt: ts(v.Version.SubmittedAt), SubmittedBy: v.SubmittedBy,
			Flags: v.FlagCodes, Changes: []reviewChangeDTO{}, Snapshot: v.Snapshot}
		if dto.Flags == nil {
			dto.Flags = []string{}
		}
		for _, c := range v.Changes {
			dto.Changes = append(dto.Changes, reviewChangeDTO(c))
		}
		out.Versions = append(out.Versions, dto)
	}
	for _, b := range d.Beneficiaries {
		out.Beneficiaries = append(out.Beneficiaries, reviewBeneficiaryDTO{ID: b.ID, Name: b.Name, IDNumber: b.IDNumber, Phone: b.Phone,
			Household: b.Household, Categories: b.Categories, GuardianConsent: b.GuardianConsent, PublicConsent: b.PublicConsent})
	}
	for _, x := range d.Decisions {
		rv := x.Review
		out.Decisions = append(out.Decisions, reviewDecisionDTO{ID: rv.ID, Version: rv.Version, Level: rv.Level, Reviewer: x.ReviewerName,
			Decision: rv.Decision, ReasonCode: rv.ReasonCode, ReasonLabel: x.ReasonLabel, Comment: rv.Comment,
			ClaimedAt: tsPtr(rv.ClaimedAt), DecidedAt: ts(rv.CreatedAt)})
	}
	if d.LeaseHolder != "" && d.LeaseUntil != nil {
		out.Lease = &reviewLeaseDTO{Holder: d.LeaseHolder, Until: ts(*d.LeaseUntil)}
	}
	return out
}

// ---- handlers ----

type claimRequest struct {
	Level  int    `json:"level" binding:"required,oneof=1 2"`
	TownID string `json:"town_id"`
}

type claimResponse struct {
	Record     *reviewSummaryDTO `json:"record"`
	LeaseUntil *string           `json:"lease_until"`
	Deliveries int               `json:"deliveries"`
}

func (s *server) claimReview(c *gin.Context) {
	var req claimRequest
	if !s.bindJSON(c, &req) {
		return
	}
	if req.TownID != "" && !ids.Valid(req.TownID) {
		fail(c, s.log, apperr.NotFound("街道乡镇"))
		return
	}
	res, err := s.Review.Claim(c.Request.Context(), service.ClaimInput{Level: req.Level, TownID: req.TownID})
	if err != nil {
		fail(c, s.log, err)
		return
	}
	out := claimResponse{}
	if res.Record != nil {
		dto := reviewSummaryOut(*res.Record)
		until := ts(res.LeaseUntil)
		out.Record, out.LeaseUntil, out.Deliveries = &dto, &until, res.Deliveries
	}
	c.JSON(http.StatusOK, out)
}

func (s *server) releaseReview(c *gin.Context) {
	id, ok := s.idParam(c, "服务记录")
	if !ok {
		return
	}
	if err := s.Review.ReleaseLease(c.Request.Context(), id); err != nil {
		fail(c, s.log, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *server) listReviewPending(c *gin.Context) {
	limit, err := limitParam(c, 20, 100)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	level := 0
	if v := c.Query("level"); v != "" {
		if level, err = strconv.Atoi(v); err != nil || (level != 1 && level != 2) {
			fail(c, s.log, apperr.New(apperr.ErrInvalid, "UNKNOWN_ENUM_VALUE", "审核层级只能是1或2").
				WithFields(apperr.FieldError{Field: "level", Reason: "oneof:1 2"}))
			return
		}
	}
	rows, next, err := s.Review.Pending(c.Request.Context(), service.PendingQuery{TownID: c.Query("town_id"),
		OrgID: c.Query("organization_id"), ItemID: c.Query("item_id"), Flag: c.Query("flag"), Week: c.Query("week"),
		Level: level, Cursor: c.Query("cursor"), Limit: limit})
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, list(reviewSummariesOut(rows), next))
}

func (s *server) listReviewOverdue(c *gin.Context) {
	limit, err := limitParam(c, 20, 100)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	rows, next, err := s.Review.Overdue(c.Request.Context(), service.OverdueQuery{TownID: c.Query("town_id"),
		Cursor: c.Query("cursor"), Limit: limit})
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, list(reviewSummariesOut(rows), next))
}

func (s *server) getReviewRecord(c *gin.Context) {
	id, ok := s.idParam(c, "服务记录")
	if !ok {
		return
	}
	d, err := s.Review.Detail(c.Request.Context(), id)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, reviewDetailOut(d))
}

type decisionRequest struct {
	Decision        string    `json:"decision" binding:"required,oneof=approve return reject"`
	ReasonCode      string    `json:"reason_code" binding:"max=48"`
	Comment         string    `json:"comment" binding:"max=2000"`
	ExpectedVersion int       `json:"expected_version" binding:"required,min=1"`
	PublicMediaIDs  *[]string `json:"public_media_ids" binding:"omitempty,max=50"`
}

type decisionResponse struct {
	Record    reviewSummaryDTO `json:"record"`
	ReviewID  string           `json:"review_id"`
	NextLevel int              `json:"next_level"`
}

func (s *server) decideReview(c *gin.Context) {
	id, ok := s.idParam(c, "服务记录")
	if !ok {
		return
	}
	var req decisionRequest
	if !s.bindJSON(c, &req) {
		return
	}
	in := service.DecisionInput{Decision: req.Decision, ReasonCode: req.ReasonCode, Comment: req.Comment,
		ExpectedVersion: req.ExpectedVersion}
	if req.PublicMediaIDs != nil {
		in.PublicMediaIDs = append([]string{}, *req.PublicMediaIDs...)
	}
	res, err := s.Review.Decide(c.Request.Context(), id, in)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, decisionResponse{Record: reviewSummaryOut(res.Record), ReviewID: res.Review.ID, NextLevel: res.NextLevel})
}

type bulkApproveItem struct {
	RecordID        string `json:"record_id" binding:"required"`
	ExpectedVersion int    `json:"expected_version" binding:"required,min=1"`
}

type bulkApproveRequest struct {
	Items []bulkApproveItem `json:"items" binding:"required,min=1,max=50,dive"`
}

type bulkSkipDTO struct {
	RecordID string `json:"record_id"`
	Code     string `json:"code"`
	Message  string `json:"message"`
}

type bulkApproveResponse struct {
	Approved []string      `json:"approved"`
	Skipped  []bulkSkipDTO `json:"skipped"`
}

func (s *server) bulkApproveReview(c *gin.Context) {
	var req bulkApproveRequest
	if !s.bindJSON(c, &req) {
		return
	}
	items := make([]service.BulkItem, 0, len(req.Items))
	for _, it := range req.Items {
		items = append(items, service.BulkItem{RecordID: it.RecordID, ExpectedVersion: it.ExpectedVersion})
	}
	res, err := s.Review.BulkApprove(c.Request.Context(), items)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	out := bulkApproveResponse{Approved: res.Approved, Skipped: make([]bulkSkipDTO, 0, len(res.Skipped))}
	for _, sk := range res.Skipped {
		out.Skipped = append(out.Skipped, bulkSkipDTO(sk))
	}
	c.JSON(http.StatusOK, out)
}

type reasonDTO struct {
	Code      string   `json:"code"`
	Label     string   `json:"label"`
	Decisions []string `json:"decisions"`
}

func (s *server) listReviewReasons(c *gin.Context) {
	rows, err := s.Review.Reasons(c.Request.Context())
	if err != nil {
		fail(c, s.log, err)
		return
	}
	out := make([]reasonDTO, 0, len(rows))
	for _, r := range rows {
		out = append(out, reasonDTO{Code: r.Code, Label: r.Label, Decisions: splitComma(r.Decisions)})
	}
	c.JSON(http.StatusOK, list(out, ""))
}

func splitComma(s string) []string {
	out := []string{}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

type reviewerStatDTO struct {
	ReviewerID    string `json:"reviewer_id"`
	Name          string `json:"name"`
	Decisions     int    `json:"decisions"`
	Approved      int    `json:"approved"`
	Returned      int    `json:"returned"`
	Rejected      int    `json:"rejected"`
	MedianSeconds *int64 `json:"median_seconds"`
}

type reviewStatsDTO struct {
	From      string            `json:"from"`
	To        string            `json:"to"`
	Escalated int64             `json:"escalated"`
	Reviewers []reviewerStatDTO `json:"reviewers"`
}

// statsTime accepts RFC 3339 or a calendar day (00:00 Beijing time).
func statsTime(v, field string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.ParseInLocation(dateLayout, v, beijing); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, apperr.Invalid("时间格式不正确", apperr.FieldError{Field: field, Reason: "rfc3339_or_date"})
}

func (s *server) reviewStats(c *gin.Context) {
	from, err := statsTime(c.Query("from"), "from")
	if err != nil {
		fail(c, s.log, err)
		return
	}
	to, err := statsTime(c.Query("to"), "to")
	if err != nil {
		fail(c, s.log, err)
		return
	}
	st, err := s.Review.Stats(c.Request.Context(), from, to)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	out := reviewStatsDTO{From: ts(st.From), To: ts(st.To), Escalated: st.Escalated, Reviewers: []reviewerStatDTO{}}
	for _, r := range st.Reviewers {
		out.Reviewers = append(out.Reviewers, reviewerStatDTO(r))
	}
	c.JSON(http.StatusOK, out)
}

type deadLetterDTO struct {
	reviewSummaryDTO
	QueueLevel int `json:"queue_level"`
}

func (s *server) listDeadLetters(c *gin.Context) {
	rows, err := s.Review.DeadLetters(c.Request.Context())
	if err != nil {
		fail(c, s.log, err)
		return
	}
	out := make([]deadLetterDTO, 0, len(rows))
	for _, r := range rows {
		out = append(out, deadLetterDTO{reviewSummaryDTO: reviewSummaryOut(r.Summary), QueueLevel: r.Level})
	}
	c.JSON(http.StatusOK, list(out, ""))
}

func (s *server) requeueDeadLetter(c *gin.Context) {
	id, ok := s.idParam(c, "服务记录")
	if !ok {
		return
	}
	if err := s.Review.Requeue(c.Request.Context(), id); err != nil {
		fail(c, s.log, err)
		return
	}
	c.Status(http.StatusNoContent)
}
