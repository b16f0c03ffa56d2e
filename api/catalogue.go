package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"qjmz/model"
	"qjmz/service"
)

type serviceItemDTO struct {
	ID                    string `json:"id"`
	Code                  string `json:"code"`
	Name                  string `json:"name"`
	Category              string `json:"category"`
	UnitPriceFen          int64  `json:"unit_price_fen"`
	MinPhotos             int    `json:"min_photos"`
	VideoRequired         bool   `json:"video_required"`
	MinVideoSeconds       int    `json:"min_video_seconds"`
	MinParticipants       int    `json:"min_participants"`
	MinDurationMinutes    int    `json:"min_duration_minutes"`
	BeneficiariesRequired bool   `json:"beneficiaries_required"`
	CapScope              string `json:"cap_scope"`
	CapFen                int64  `json:"cap_fen"`
	Visibility            string `json:"visibility"`
	ReviewLevels          int    `json:"review_levels"`
	Active                bool   `json:"active"`
	CreatedAt             string `json:"created_at"`
	UpdatedAt             string `json:"updated_at"`
}

// capScopeNone is how the API spells "no cap" (the model's empty string).
const capScopeNone = "none"

func serviceItemOut(it model.ServiceItem) serviceItemDTO {
	cs := it.CapScope
	if cs == model.CapNone {
		cs = capScopeNone
	}
	return serviceItemDTO{ID: it.ID, Code: it.Code, Name: it.Name, Category: it.Category, UnitPriceFen: it.UnitPriceFen,
		MinPhotos: it.MinPhotos, VideoRequired: it.VideoRequired, MinVideoSeconds: it.MinVideoSeconds,
		MinParticipants: it.MinParticipants, MinDurationMinutes: it.MinDurationMinutes,
		BeneficiariesRequired: it.BeneficiariesRequired, CapScope: cs, CapFen: it.CapFen, Visibility: it.Visibility,
		ReviewLevels: it.ReviewLevels, Active: it.Active, CreatedAt: ts(it.CreatedAt), UpdatedAt: ts(it.UpdatedAt)}
}

// serviceItemFields are the editable fields; omitted ones are unchanged on
// PATCH and take defaults on POST.
type serviceItemFields struct {
	Name                  *string `json:"name" binding:"omitempty,max=64"`
	Category              *string `json:"category" binding:"omitempty,max=32"`
	UnitPriceFen          *int64  `json:"unit_price_fen"`
	MinPhotos             *int    `json:"min_photos"`
	VideoRequired         *bool   `json:"video_required"`
	MinVideoSeconds       *int    `json:"min_video_seconds"`
	MinParticipants       *int    `json:"min_participants"`
	MinDurationMinutes    *int    `json:"min_duration_minutes"`
	BeneficiariesRequired *bool   `json:"beneficiaries_required"`
	CapScope              *string `json:"cap_scope" binding:"omitempty,oneof=none beneficiary household"`
	CapFen                *int64  `json:"cap_fen"`
	Visibility            *string `json:"visibility" binding:"omitempty,oneof=public internal"`
	ReviewLevels          *int    `json:"review_levels" binding:"omitempty,oneof=1 2"`
	Active                *bool   `json:"active"`
}

type createServiceItemRequest struct {
	Code *string `json:"code" binding:"required,max=32"`
	serviceItemFields
}

func (f serviceItemFields) input() service.ItemInput {
	in := service.ItemInput{Name: f.Name, Category: f.Category, UnitPriceFen: f.UnitPriceFen, MinPhotos: f.MinPhotos,
		VideoRequired: f.VideoRequired, MinVideoSeconds: f.MinVideoSeconds, MinParticipants: f.MinParticipants,
		MinDurationMinutes: f.MinDurationMinutes, BeneficiariesRequired: f.BeneficiariesRequired, CapScope: f.CapScope,
		CapFen: f.CapFen, Visibility: f.Visibility, ReviewLevels: f.ReviewLevels, Active: f.Active}
	if f.CapScope != nil && *f.CapScope == capScopeNone {
		none := model.CapNone
		in.CapScope = &none
	}
	return in
}

func (s *server) listServiceItems(c *gin.Context) {
	limit, err := limitParam(c, 50, 200)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	rows, next, err := s.Catalogue.List(c.Request.Context(), service.ItemQuery{Category: c.Query("category"),
		IncludeInactive: c.Query("include_inactive") == "true", Cursor: c.Query("cursor"), Limit: limit})
	if err != nil {
		fail(c, s.log, err)
		return
	}
	out := make([]serviceItemDTO, 0, len(rows))
	for _, it := range rows {
		out = append(out, serviceItemOut(it))
	}
	c.JSON(http.StatusOK, list(out, next))
}

func (s *server) createServiceItem(c *gin.Context) {
	var req createServiceItemRequest
	if !s.bindJSON(c, &req) {
		return
	}
	in := req.input()
	in.Code = req.Code
	it, err := s.Catalogue.Create(c.Request.Context(), in)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusCreated, serviceItemOut(it))
}

func (s *server) updateServiceItem(c *gin.Context) {
	id, ok := s.idParam(c, "服务项目")
	if !ok {
		return
	}
	var req serviceItemFields
	if !s.bindJSON(c, &req) {
		return
	}
	it, err := s.Catalogue.Update(c.Request.Context(), id, req.input())
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, serviceItemOut(it))
}
