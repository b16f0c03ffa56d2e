package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"qjmz/model"
	"qjmz/pkg/apperr"
	"qjmz/pkg/ids"
	"qjmz/service"
)

// idParam reads :id and answers 404 for anything that is not one of our ids,
// the same answer as for an id that does not exist.
func (s *server) idParam(c *gin.Context, what string) (string, bool) {
	id := c.Param("id")
	if !ids.Valid(id) {
		fail(c, s.log, apperr.NotFound(what))
		return "", false
	}
	return id, true
}

type regionDTO struct {
	ID           string  `json:"id"`
	ParentID     *string `json:"parent_id"`
	Level        string  `json:"level"`
	Code         string  `json:"code"`
	Name         string  `json:"name"`
	Lat          float64 `json:"lat"`
	Lng          float64 `json:"lng"`
	RadiusM      int     `json:"radius_m"`
	CoordsApprox bool    `json:"coords_approx"`
}

func regionOut(r model.Region) regionDTO {
	return regionDTO{ID: r.ID, ParentID: r.ParentID, Level: r.Level, Code: r.Code, Name: r.Name,
		Lat: r.Lat, Lng: r.Lng, RadiusM: r.RadiusM, CoordsApprox: r.CoordsApprox}
}

func (s *server) listRegions(c *gin.Context) {
	parent := c.Query("parent_id")
	if parent != "" && !ids.Valid(parent) {
		fail(c, s.log, apperr.NotFound("地区"))
		return
	}
	rows, err := s.Directory.Children(c.Request.Context(), parent)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	out := make([]regionDTO, 0, len(rows))
	for _, r := range rows {
		out = append(out, regionOut(r))
	}
	c.JSON(http.StatusOK, list(out, ""))
}

func (s *server) getRegion(c *gin.Context) {
	id, ok := s.idParam(c, "地区")
	if !ok {
		return
	}
	r, err := s.Directory.Region(c.Request.Context(), id)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, regionOut(r))
}

type createRegionRequest struct {
	ParentID string   `json:"parent_id" binding:"required"`
	Code     string   `json:"code" binding:"required,max=15"`
	Name     string   `json:"name" binding:"required,max=64"`
	Lat      *float64 `json:"lat"`
	Lng      *float64 `json:"lng"`
	RadiusM  *int     `json:"radius_m"`
}

func (s *server) createRegion(c *gin.Context) {
	var req createRegionRequest
	if !s.bindJSON(c, &req) {
		return
	}
	if !ids.Valid(req.ParentID) {
		fail(c, s.log, apperr.NotFound("上级地区"))
		return
	}
	r, err := s.Directory.CreateRegion(c.Request.Context(), service.RegionInput{ParentID: req.ParentID, Code: req.Code,
		Name: req.Name, Lat: req.Lat, Lng: req.Lng, RadiusM: req.RadiusM})
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusCreated, regionOut(r))
}

type updateRegionRequest struct {
	Name    string   `json:"name" binding:"max=64"`
	Lat     *float64 `json:"lat"`
	Lng     *float64 `json:"lng"`
	RadiusM *int     `json:"radius_m"`
}

func (s *server) updateRegion(c *gin.Context) {
	id, ok := s.idParam(c, "地区")
	if !ok {
		return
	}
	var req updateRegionRequest
	if !s.bindJSON(c, &req) {
		return
	}
	r, err := s.Directory.UpdateRegion(c.Request.Context(), id, service.RegionInput{Name: req.Name, Lat: req.Lat, Lng: req.Lng, RadiusM: req.RadiusM})
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, regionOut(r))
}

type orgDTO struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	CreditCode   string    `json:"credit_code"`
	Rating       string    `json:"rating"`
	ContactName  string    `json:"contact_name"`
	ContactPhone string    `json:"contact_phone"`
	Region       regionRef `json:"region"`
	Status       string    `json:"status"`
	CreatedAt    string    `json:"created_at"`
}

func orgOut(v service.OrgView) orgDTO {
	o := v.Org
	return orgDTO{ID: o.ID, Name: o.Name, CreditCode: o.CreditCode, Rating: o.Rating, ContactName: o.ContactName,
		ContactPhone: v.ContactPhone, Region: regionRef{ID: o.RegionID, Name: v.RegionName}, Status: o.Status, CreatedAt: ts(o.CreatedAt)}
}

type orgRequest struct {
	Name         string `json:"name" binding:"max=128"`
	CreditCode   string `json:"credit_code" binding:"max=18"`
	Rating       string `json:"rating" binding:"omitempty,oneof=1A 2A 3A 4A 5A"`
	ContactName  string `json:"contact_name" binding:"max=64"`
	ContactPhone string `json:"contact_phone" binding:"max=32"`
	RegionID     string `json:"region_id"`
	Status       string `json:"status" binding:"omitempty,oneof=active suspended"`
}

func (s *server) createOrg(c *gin.Context) {
	var req orgRequest
	if !s.bindJSON(c, &req) {
		return
	}
	if !ids.Valid(req.RegionID) {
		fail(c, s.log, apperr.NotFound("地区"))
		return
	}
	v, err := s.Directory.CreateOrg(c.Request.Context(), service.OrgInput(req))
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusCreated, orgOut(v))
}

func (s *server) updateOrg(c *gin.Context) {
	id, ok := s.idParam(c, "机构")
	if !ok {
		return
	}
	var req orgRequest
	if !s.bindJSON(c, &req) {
		return
	}
	v, err := s.Directory.UpdateOrg(c.Request.Context(), id, service.OrgInput(req))
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, orgOut(v))
}

func (s *server) getOrg(c *gin.Context) {
	id, ok := s.idParam(c, "机构")
	if !ok {
		return
	}
	v, err := s.Directory.Org(c.Request.Context(), id)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, orgOut(v))
}

func (s *server) listOrgs(c *gin.Context) {
	limit, err := limitParam(c, 20, 100)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	rows, next, err := s.Directory.ListOrgs(c.Request.Context(), c.Query("cursor"), limit)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	out := make([]orgDTO, 0, len(rows))
	for _, v := range rows {
		out = append(out, orgOut(v))
	}
	c.JSON(http.StatusOK, list(out, next))
}

type userDTO struct {
	ID        string       `json:"id"`
	Nickname  string       `json:"nickname"`
	Status    string       `json:"status"`
	HasPhone  bool         `json:"has_phone"`
	CreatedAt string       `json:"created_at"`
	Roles     []bindingDTO `json:"roles"`
}

func (s *server) listUsers(c *gin.Context) {
	limit, err := limitParam(c, 20, 100)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	rows, next, err := s.Directory.ListUsers(c.Request.Context(), c.Query("cursor"), limit)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	out := make([]userDTO, 0, len(rows))
	for _, v := range rows {
		out = append(out, userDTO{ID: v.User.ID, Nickname: v.User.Nickname, Status: v.User.Status,
			HasPhone: v.User.PhoneEnc != "", CreatedAt: ts(v.User.CreatedAt), Roles: bindingsDTO(v.Bindings)})
	}
	c.JSON(http.StatusOK, list(out, next))
}

type grantRequest struct {
	UserID   string `json:"user_id" binding:"required"`
	Role     string `json:"role" binding:"required,oneof=resident worker org_admin station_reviewer bureau_reviewer bureau_admin auditor"`
	RegionID string `json:"region_id"`
	OrgID    string `json:"organization_id"`
}

func (s *server) grantRole(c *gin.Context) {
	var req grantRequest
	if !s.bindJSON(c, &req) {
		return
	}
	for _, id := range []string{req.UserID, req.RegionID, req.OrgID} {
		if id != "" && !ids.Valid(id) {
			fail(c, s.log, apperr.NotFound("对象"))
			return
		}
	}
	b, err := s.Directory.Grant(c.Request.Context(), service.GrantInput{UserID: req.UserID, Role: req.Role, RegionID: req.RegionID, OrgID: req.OrgID})
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusCreated, bindingsDTO([]service.Binding{b})[0])
}

func (s *server) revokeRole(c *gin.Context) {
	id, ok := s.idParam(c, "角色绑定")
	if !ok {
		return
	}
	if err := s.Directory.Revoke(c.Request.Context(), id); err != nil {
		fail(c, s.log, err)
		return
	}
	c.Status(http.StatusNoContent)
}

type inviteRequest struct {
	Role     string `json:"role" binding:"omitempty,oneof=worker org_admin"`
	TTLHours int    `json:"ttl_hours" binding:"omitempty,min=1,max=336"`
}

func (s *server) createInvite(c *gin.Context) {
	id, ok := s.idParam(c, "机构")
	if !ok {
		return
	}
	var req inviteRequest
	if !s.bindJSON(c, &req) {
		return
	}
	inv, err := s.Invites.Create(c.Request.Context(), id, req.Role, time.Duration(req.TTLHours)*time.Hour)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"id": inv.ID, "code": inv.Code, "organization_id": inv.OrgID, "role": inv.Role, "expires_at": ts(inv.ExpiresAt)})
}

func (s *server) redeemInvite(c *gin.Context) {
	var req codeRequest
	if !s.bindJSON(c, &req) {
		return
	}
	b, err := s.Invites.Redeem(c.Request.Context(), req.Code)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusCreated, bindingsDTO([]service.Binding{b})[0])
}
