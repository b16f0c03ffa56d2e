package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"qjmz/pkg/apperr"
	"qjmz/service"
)

// Feed DTOs. They are built field by field from service.FeedEntry, which
// has no beneficiary or worker fields at all.

type feedRefDTO struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type feedItemRefDTO struct {
	Code     string `json:"code"`
	Name     string `json:"name"`
	Category string `json:"category"`
}

type feedOrgDTO struct {
	Name string `json:"name"`
}

type feedMediaDTO struct {
	Kind       string `json:"kind"`
	ThumbURL   string `json:"thumb_url"`
	DisplayURL string `json:"display_url"`
}

type feedEntryDTO struct {
	ID               string         `json:"id"`
	Title            string         `json:"title"`
	Description      string         `json:"description"`
	Item             feedItemRefDTO `json:"item"`
	Town             feedRefDTO     `json:"town"`
	Community        feedRefDTO     `json:"community"`
	VenueName        string         `json:"venue_name"`
	StartAt          string         `json:"start_at"`
	EndAt            string         `json:"end_at"`
	ParticipantCount int            `json:"participant_count"`
	Organization     feedOrgDTO     `json:"organization"`
	Media            []feedMediaDTO `json:"media"`
	PublishedAt      string         `json:"published_at"`
}

func feedEntryOut(e service.FeedEntry) feedEntryDTO {
	media := make([]feedMediaDTO, 0, len(e.Media))
	for _, m := range e.Media {
		media = append(media, feedMediaDTO{Kind: m.Kind, ThumbURL: m.ThumbURL, DisplayURL: m.DisplayURL})
	}
	return feedEntryDTO{
		ID: e.ID, Title: e.Title, Description: e.Description,
		Item:      feedItemRefDTO{Code: e.Item.Code, Name: e.Item.Name, Category: e.Item.Category},
		Town:      feedRefDTO{ID: e.Town.ID, Name: e.Town.Name},
		Community: feedRefDTO{ID: e.Community.ID, Name: e.Community.Name},
		VenueName: e.VenueName, StartAt: ts(e.StartAt), EndAt: ts(e.EndAt), ParticipantCount: e.ParticipantCount,
		Organization: feedOrgDTO{Name: e.OrgName}, Media: media, PublishedAt: ts(e.PublishedAt),
	}
}

type feedStateDTO struct {
	RecordID    string   `json:"record_id"`
	Published   bool     `json:"published"`
	PublishedAt *string  `json:"published_at"`
	HiddenAt    *string  `json:"hidden_at"`
	BlockedBy   []string `json:"blocked_by"`
}

func feedStateOut(s service.FeedState) feedStateDTO {
	b := s.BlockedBy
	if b == nil {
		b = []string{}
	}
	return feedStateDTO{RecordID: s.RecordID, Published: s.Published, PublishedAt: tsPtr(s.PublishedAt),
		HiddenAt: tsPtr(s.HiddenAt), BlockedBy: b}
}

// renderFeed is the service.Render of the feed: DTO mapping and JSON, done
// once per cache fill instead of once per request.
func renderFeed(v any) ([]byte, error) {
	switch x := v.(type) {
	case service.FeedPage:
		out := make([]feedEntryDTO, 0, len(x.Items))
		for _, e := range x.Items {
			out = append(out, feedEntryOut(e))
		}
		return json.Marshal(list(out, x.Next))
	case service.FeedEntry:
		return json.Marshal(feedEntryOut(x))
	}
	return nil, fmt.Errorf("renderFeed: unexpected %T", v)
}

func (s *server) listFeed(c *gin.Context) {
	def, capLimit := service.FeedLimits()
	limit, err := limitParam(c, def, capLimit)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	body, err := s.Feed.List(c.Request.Context(), service.FeedQuery{TownID: c.Query("town_id"), CommunityID: c.Query("community_id"),
		ItemID: c.Query("item_id"), Cursor: c.Query("cursor"), Limit: limit}, renderFeed)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", body)
}

func (s *server) getFeedEntry(c *gin.Context) {
	id, ok := s.idParam(c, "动态")
	if !ok {
		return
	}
	body, err := s.Feed.Get(c.Request.Context(), id, renderFeed)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", body)
}

type unpublishRequest struct {
	Reason string `json:"reason" binding:"required,max=255"`
}

func (s *server) unpublishFeed(c *gin.Context) {
	id, ok := s.idParam(c, "记录")
	if !ok {
		return
	}
	var req unpublishRequest
	if !s.bindJSON(c, &req) {
		return
	}
	st, err := s.Feed.Unpublish(c.Request.Context(), id, req.Reason)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, feedStateOut(st))
}

func (s *server) republishFeed(c *gin.Context) {
	id, ok := s.idParam(c, "记录")
	if !ok {
		return
	}
	st, err := s.Feed.Republish(c.Request.Context(), id)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, feedStateOut(st))
}

func pushAuth(c *gin.Context) service.PushAuth {
	return service.PushAuth{Timestamp: c.Query("timestamp"), Nonce: c.Query("nonce"), Signature: c.Query("signature")}
}

// verifyWeChatPush answers WeChat's server-address check: the echostr
// back, as plain text, only under a valid signature.
func (s *server) verifyWeChatPush(c *gin.Context) {
	if err := s.Feed.VerifyPush(pushAuth(c)); err != nil {
		fail(c, s.log, err)
		return
	}
	echo := c.Query("echostr")
	if echo == "" || len(echo) > 128 {
		fail(c, s.log, apperr.Invalid("缺少echostr", apperr.FieldError{Field: "echostr", Reason: "required"}))
		return
	}
	c.Header("X-Content-Type-Options", "nosniff")
	c.Data(http.StatusOK, "text/plain; charset=utf-8", []byte(echo))
}

// weChatPush receives a push callback (plaintext mode, JSON data format)
// and answers "success", which stops WeChat's redelivery.
func (s *server) weChatPush(c *gin.Context) {
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		fail(c, s.log, decodeError(err))
		return
	}
	if err := s.Feed.HandlePush(c.Request.Context(), pushAuth(c), body); err != nil {
		fail(c, s.log, err)
		return
	}
	c.Data(http.StatusOK, "text/plain; charset=utf-8", []byte("success"))
}
