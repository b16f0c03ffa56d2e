package api

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"qjmz/pkg/apperr"
)

func (s *server) noRoute(c *gin.Context) {
	fail(c, s.log, apperr.New(apperr.ErrNotFound, "ROUTE_NOT_FOUND", "接口不存在"))
}

func (s *server) noMethod(c *gin.Context) {
	c.AbortWithStatusJSON(http.StatusMethodNotAllowed, errorBody{Code: "METHOD_NOT_ALLOWED", Message: "请求方式不支持", RequestID: requestID(c)})
}

// metricsAuth guards /metrics with a static bearer token when one is
// configured (scrapers cannot do WeChat logins).
func (s *server) metricsAuth(c *gin.Context) {
	want := s.Config.MetricsToken
	if want == "" {
		c.Next()
		return
	}
	got, _ := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		fail(c, s.log, apperr.New(apperr.ErrUnauthenticated, "METRICS_TOKEN_INVALID", "需要监控令牌"))
		return
	}
	c.Next()
}

// healthz says the process is alive; it checks nothing else so a slow
// database does not get the process restarted.
func (s *server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz says whether this replica should get traffic: database and Redis.
func (s *server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	checks := gin.H{}
	ok := true
	for _, ch := range s.Ready {
		if err := ch.Check(ctx); err != nil {
			ok = false
			checks[ch.Name] = "down"
			s.log.Warn("readiness check failed", "check", ch.Name, "err", err)
			continue
		}
		checks[ch.Name] = "up"
	}
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	c.JSON(status, gin.H{"ready": ok, "checks": checks})
}
