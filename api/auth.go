package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"qjmz/service"
)

type loginRequest struct {
	Code string `json:"code" binding:"required,max=128"`
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token" binding:"required,max=128"`
}

type tokensResponse struct {
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	AccessExpiresAt  string `json:"access_expires_at"`
	ExpiresIn        int    `json:"expires_in"`
	RefreshToken     string `json:"refresh_token"`
	RefreshExpiresAt string `json:"refresh_expires_at"`
	UserID           string `json:"user_id"`
	NewUser          bool   `json:"new_user"`
}

func tokensDTO(t service.Tokens) tokensResponse {
	return tokensResponse{AccessToken: t.AccessToken, TokenType: "Bearer", AccessExpiresAt: ts(t.AccessExpiresAt),
		ExpiresIn: int(time.Until(t.AccessExpiresAt).Seconds()), RefreshToken: t.RefreshToken,
		RefreshExpiresAt: ts(t.RefreshExpiresAt), UserID: t.UserID, NewUser: t.NewUser}
}

func (s *server) wechatLogin(c *gin.Context) {
	var req loginRequest
	if !s.bindJSON(c, &req) {
		return
	}
	t, err := s.Auth.Login(c.Request.Context(), req.Code)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, tokensDTO(t))
}

func (s *server) refresh(c *gin.Context) {
	var req refreshRequest
	if !s.bindJSON(c, &req) {
		return
	}
	t, err := s.Auth.Refresh(c.Request.Context(), req.RefreshToken)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, tokensDTO(t))
}

func (s *server) logout(c *gin.Context) {
	if err := s.Auth.Logout(c.Request.Context()); err != nil {
		fail(c, s.log, err)
		return
	}
	c.Status(http.StatusNoContent)
}

type regionRef struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Level string `json:"level,omitempty"`
}

type orgRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type bindingDTO struct {
	ID     string     `json:"id"`
	Role   string     `json:"role"`
	Region *regionRef `json:"region,omitempty"`
	Org    *orgRef    `json:"organization,omitempty"`
}

func bindingsDTO(bs []service.Binding) []bindingDTO {
	out := make([]bindingDTO, 0, len(bs))
	for _, b := range bs {
		d := bindingDTO{ID: b.ID, Role: b.Role}
		if b.RegionID != "" {
			d.Region = &regionRef{ID: b.RegionID, Name: b.RegionName}
		}
		if b.OrgID != "" {
			d.Org = &orgRef{ID: b.OrgID, Name: b.OrgName}
		}
		out = append(out, d)
	}
	return out
}

type meResponse struct {
	ID                    string       `json:"id"`
	Nickname              string       `json:"nickname"`
	Phone                 string       `json:"phone,omitempty"`
	PrivacyConsentVersion string       `json:"privacy_consent_version,omitempty"`
	PrivacyConsentAt      *string      `json:"privacy_consent_at,omitempty"`
	CreatedAt             string       `json:"created_at"`
	Roles                 []bindingDTO `json:"roles"`
}

func (s *server) me(c *gin.Context) {
	me, err := s.Auth.Me(c.Request.Context())
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, meResponse{ID: me.User.ID, Nickname: me.User.Nickname, Phone: me.Phone,
		PrivacyConsentVersion: me.User.PrivacyConsentVersion, PrivacyConsentAt: tsPtr(me.User.PrivacyConsentAt),
		CreatedAt: ts(me.User.CreatedAt), Roles: bindingsDTO(me.Bindings)})
}

type codeRequest struct {
	Code string `json:"code" binding:"required,max=128"`
}

func (s *server) bindPhone(c *gin.Context) {
	var req codeRequest
	if !s.bindJSON(c, &req) {
		return
	}
	masked, err := s.Auth.BindPhone(c.Request.Context(), req.Code)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"phone": masked})
}

type consentRequest struct {
	Version string `json:"version" binding:"required,max=32"`
}

func (s *server) privacyConsent(c *gin.Context) {
	var req consentRequest
	if !s.bindJSON(c, &req) {
		return
	}
	at, err := s.Auth.ConsentPrivacy(c.Request.Context(), req.Version)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"version": req.Version, "consented_at": ts(at)})
}
