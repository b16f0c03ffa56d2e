package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"qjmz/pkg/apperr"
	"qjmz/service"
)

type auditDTO struct {
	Seq        int64  `json:"seq"`
	ID         string `json:"id"`
	ActorID    string `json:"actor_id"`
	ActorRole  string `json:"actor_role"`
	Action     string `json:"action"`
	ObjectType string `json:"object_type"`
	ObjectID   string `json:"object_id"`
	Before     string `json:"before,omitempty"`
	After      string `json:"after,omitempty"`
	Reason     string `json:"reason,omitempty"`
	RequestID  string `json:"request_id"`
	IP         string `json:"ip"`
	CreatedAt  string `json:"created_at"`
	Hash       string `json:"hash"`
}

func (s *server) listAudit(c *gin.Context) {
	limit, err := limitParam(c, 50, 200)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	q := service.AuditQuery{ActorID: c.Query("actor_id"), Action: c.Query("action"), ObjectType: c.Query("object_type"),
		ObjectID: c.Query("object_id"), Cursor: c.Query("cursor"), Limit: limit}
	for name, dst := range map[string]*time.Time{"from": &q.From, "to": &q.To} {
		if v := c.Query(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				fail(c, s.log, apperr.Invalid("时间格式应为 RFC 3339", apperr.FieldError{Field: name, Reason: "rfc3339"}))
				return
			}
			*dst = t
		}
	}
	rows, next, err := s.Auditor.List(c.Request.Context(), q)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	out := make([]auditDTO, 0, len(rows))
	for _, e := range rows {
		out = append(out, auditDTO{Seq: e.Seq, ID: e.ID, ActorID: e.ActorID, ActorRole: e.ActorRole, Action: e.Action,
			ObjectType: e.ObjectType, ObjectID: e.ObjectID, Before: e.Before, After: e.After, Reason: e.Reason,
			RequestID: e.RequestID, IP: e.IP, CreatedAt: ts(e.CreatedAt), Hash: e.Hash})
	}
	c.JSON(http.StatusOK, list(out, next))
}

func (s *server) verifyAudit(c *gin.Context) {
	res, err := s.Auditor.Verify(c.Request.Context())
	if err != nil {
		fail(c, s.log, err)
		return
	}
	problems := make([]gin.H, 0, len(res.Problems))
	for _, p := range res.Problems {
		problems = append(problems, gin.H{"seq": p.Seq, "reason": p.Reason})
	}
	c.JSON(http.StatusOK, gin.H{"ok": res.OK, "checked": res.Checked, "problems": problems})
}
