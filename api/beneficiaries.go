package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"qjmz/model"
	"qjmz/pkg/apperr"
	"qjmz/pkg/ids"
	"qjmz/service"
)

// beneficiaryDTO is a person as shown in lists and details: masked.
type beneficiaryDTO struct {
	ID              string    `json:"id"`
	Name            string    `json:"name"`
	IDNumber        string    `json:"id_number"`
	Phone           string    `json:"phone"`
	Gender          string    `json:"gender"`
	Age             int       `json:"age"`
	Household       string    `json:"household"`
	Community       regionRef `json:"community"`
	Categories      []string  `json:"categories"`
	GuardianConsent bool      `json:"guardian_consent"`
	PublicConsent   bool      `json:"public_consent"`
	CreatedAt       string    `json:"created_at"`
	UpdatedAt       string    `json:"updated_at"`
}

func beneficiaryOut(v service.MaskedBeneficiary) beneficiaryDTO {
	b := v.B
	cats := v.Categories
	if cats == nil {
		cats = []string{}
	}
	return beneficiaryDTO{ID: b.ID, Name: v.Name, IDNumber: v.IDNumber, Phone: v.Phone, Gender: b.Gender, Age: v.Age,
		Household: b.Household, Community: regionRef{ID: b.CommunityID, Name: v.CommunityName, Level: model.LevelCommunity},
		Categories: cats, GuardianConsent: b.GuardianConsent, PublicConsent: b.PublicConsent,
		CreatedAt: ts(b.CreatedAt), UpdatedAt: ts(b.UpdatedAt)}
}

type createBeneficiaryRequest struct {
	Name            string   `json:"name" binding:"required,max=32"`
	IDNumber        string   `json:"id_number" binding:"required,max=32"`
	Phone           string   `json:"phone" binding:"max=32"`
	Household       string   `json:"household" binding:"required,max=64"`
	CommunityID     string   `json:"community_id" binding:"required"`
	Categories      []string `json:"categories" binding:"max=8"`
	GuardianConsent bool     `json:"guardian_consent"`
	PublicConsent   bool     `json:"public_consent"`
}

func (s *server) createBeneficiary(c *gin.Context) {
	var req createBeneficiaryRequest
	if !s.bindJSON(c, &req) {
		return
	}
	if !ids.Valid(req.CommunityID) {
		fail(c, s.log, apperr.NotFound("社区"))
		return
	}
	v, err := s.Beneficiaries.Create(c.Request.Context(), service.BeneficiaryInput(req))
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusCreated, beneficiaryOut(v))
}

// searchBeneficiaries takes the ID number as a query parameter; the request
// log records the route template only, never the query string.
func (s *server) searchBeneficiaries(c *gin.Context) {
	limit, err := limitParam(c, 20, 100)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	comm := c.Query("community_id")
	if comm != "" && !ids.Valid(comm) {
		fail(c, s.log, apperr.NotFound("社区"))
		return
	}
	rows, next, err := s.Beneficiaries.Search(c.Request.Context(), service.BeneficiaryQuery{IDNumber: c.Query("id_number"),
		CommunityID: comm, Cursor: c.Query("cursor"), Limit: limit})
	if err != nil {
		fail(c, s.log, err)
		return
	}
	out := make([]beneficiaryDTO, 0, len(rows))
	for _, v := range rows {
		out = append(out, beneficiaryOut(v))
	}
	c.JSON(http.StatusOK, list(out, next))
}

func (s *server) getBeneficiary(c *gin.Context) {
	id, ok := s.idParam(c, "服务对象")
	if !ok {
		return
	}
	v, err := s.Beneficiaries.Get(c.Request.Context(), id)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, beneficiaryOut(v))
}

type updateBeneficiaryRequest struct {
	Phone           *string   `json:"phone" binding:"omitempty,max=32"`
	Household       *string   `json:"household" binding:"omitempty,max=64"`
	Categories      *[]string `json:"categories" binding:"omitempty,max=8"`
	GuardianConsent *bool     `json:"guardian_consent"`
	PublicConsent   *bool     `json:"public_consent"`
}

func (s *server) updateBeneficiary(c *gin.Context) {
	id, ok := s.idParam(c, "服务对象")
	if !ok {
		return
	}
	var req updateBeneficiaryRequest
	if !s.bindJSON(c, &req) {
		return
	}
	v, err := s.Beneficiaries.Update(c.Request.Context(), id, service.BeneficiaryPatch(req))
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, beneficiaryOut(v))
}

type beneficiaryPlainDTO struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	IDNumber string `json:"id_number"`
	Phone    string `json:"phone"`
}

func (s *server) beneficiaryPlaintext(c *gin.Context) {
	id, ok := s.idParam(c, "服务对象")
	if !ok {
		return
	}
	v, err := s.Beneficiaries.Plaintext(c.Request.Context(), id, c.Query("purpose"))
	if err != nil {
		fail(c, s.log, err)
		return
	}
	// Personal data must not linger in browser or proxy caches.
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, beneficiaryPlainDTO(v))
}
