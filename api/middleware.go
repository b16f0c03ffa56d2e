package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-redis/redis_rate/v10"
	"github.com/prometheus/client_golang/prometheus"

	"qjmz/pkg/apperr"
	"qjmz/pkg/ids"
	"qjmz/service"
)

const (
	ctxRequestID = "qjmz.request_id"
	ctxPrincipal = "qjmz.principal"
	ctxAuthErr   = "qjmz.auth_error"
)

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{8,64}$`)

func requestID(c *gin.Context) string { return c.GetString(ctxRequestID) }

func principal(c *gin.Context) *service.Principal {
	p, _ := c.Get(ctxPrincipal)
	pr, _ := p.(*service.Principal)
	return pr
}

// withRequest assigns the request id, puts request metadata into the
// request's context for the service layer, and logs one line per request.
func (s *server) withRequest(c *gin.Context) {
	rid := c.GetHeader("X-Request-Id")
	if !requestIDPattern.MatchString(rid) {
		rid = ids.New()
	}
	c.Set(ctxRequestID, rid)
	c.Header("X-Request-Id", rid)
	ctx := service.WithRequestMeta(c.Request.Context(), service.RequestMeta{
		RequestID: rid, IP: c.ClientIP(), UserAgent: c.Request.UserAgent(),
	})
	c.Request = c.Request.WithContext(ctx)
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	elapsed := time.Since(start)
	status := c.Writer.Status()
	s.metrics.requests.WithLabelValues(c.Request.Method, route, strconv.Itoa(status)).Inc()
	s.metrics.latency.WithLabelValues(c.Request.Method, route).Observe(elapsed.Seconds())
	attrs := []any{"request_id", rid, "method", c.Request.Method, "route", route, "status", status,
		"duration_ms", float64(elapsed.Microseconds()) / 1000, "ip", c.ClientIP()}
	if p := principal(c); p != nil {
		attrs = append(attrs, "user_id", p.UserID)
	}
	// The path is logged without its query: signed media URLs carry
	// signatures there.
	lvl := slog.LevelInfo
	if status >= 500 {
		lvl = slog.LevelError
	}
	if route != "/healthz" && route != "/metrics" {
		s.log.Log(c.Request.Context(), lvl, "http request", attrs...)
	}
}

// recoverPanics turns a panic into a logged 500 with the request id.
func (s *server) recoverPanics(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if err, ok := r.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(r)
			}
			s.log.Error("panic", "request_id", requestID(c), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			fail(c, s.log, fmt.Errorf("panic: %v", r))
		}
	}()
	c.Next()
}

// limitBody caps every request body; reading past it fails and is answered
// with 413 by bindJSON.
func (s *server) limitBody(c *gin.Context) {
	if c.Request.ContentLength > s.Config.MaxBodyBytes {
		fail(c, s.log, apperr.New(apperr.ErrTooLarge, "BODY_TOO_LARGE", "请求内容过大"))
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.Config.MaxBodyBytes)
	c.Next()
}

// authenticate resolves a bearer token when present. A bad token is not
// answered here: public routes (login, refresh, the region tree) ignore it,
// so a client holding an expired token can still refresh; requireAuth and
// requireRole answer with the stored reason.
func (s *server) authenticate(c *gin.Context) {
	h := c.GetHeader("Authorization")
	if h == "" {
		c.Next()
		return
	}
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		c.Set(ctxAuthErr, apperr.New(apperr.ErrUnauthenticated, "TOKEN_INVALID", "登录凭证无效，请重新登录"))
		c.Next()
		return
	}
	p, err := s.Auth.Authenticate(c.Request.Context(), tok)
	if err != nil {
		c.Set(ctxAuthErr, err)
		c.Next()
		return
	}
	c.Set(ctxPrincipal, p)
	c.Request = c.Request.WithContext(service.WithPrincipal(c.Request.Context(), p))
	c.Next()
}

// authFailure is why the caller is not authenticated.
func authFailure(c *gin.Context) error {
	if v, ok := c.Get(ctxAuthErr); ok {
		if err, ok := v.(error); ok {
			return err
		}
	}
	return apperr.New(apperr.ErrUnauthenticated, "UNAUTHENTICATED", "请先登录")
}

func (s *server) requireAuth(c *gin.Context) {
	if principal(c) == nil {
		fail(c, s.log, authFailure(c))
		return
	}
	c.Next()
}

// requireRole admits callers holding one of roles somewhere; the service
// then checks the scope of the object touched.
func (s *server) requireRole(roles ...string) gin.HandlerFunc {
	return func(c *gin.Context) {
		p := principal(c)
		if p == nil {
			fail(c, s.log, authFailure(c))
			return
		}
		if !slices.ContainsFunc(p.Bindings, func(b service.Binding) bool { return slices.Contains(roles, b.Role) }) {
			fail(c, s.log, apperr.New(apperr.ErrForbidden, "FORBIDDEN_ROLE", "当前账号没有此功能的权限"))
			return
		}
		c.Next()
	}
}

// rateLimit applies a GCRA limit in Redis per caller (user, else IP) and
// bucket. When Redis is unreachable it lets the request through and logs:
// losing rate limiting briefly is better than losing the service.
func (s *server) rateLimit(bucket string, perMinute int, writesOnly bool) gin.HandlerFunc {
	limit := redis_rate.PerMinute(perMinute)
	return func(c *gin.Context) {
		if writesOnly && (c.Request.Method == http.MethodGet || c.Request.Method == http.MethodHead || c.Request.Method == http.MethodOptions) {
			c.Next()
			return
		}
		who := "ip:" + c.ClientIP()
		if p := principal(c); p != nil {
			who = "user:" + p.UserID
		}
		ctx, cancel := context.WithTimeout(c.Request.Context(), 500*time.Millisecond)
		res, err := s.Limiter.Allow(ctx, s.Config.RedisPrefix+"rl:"+bucket+":"+who, limit)
		cancel()
		if err != nil {
			s.log.Warn("rate limiter unavailable", "request_id", requestID(c), "err", err)
			c.Next()
			return
		}
		if res.Allowed == 0 {
			c.Header("Retry-After", strconv.Itoa(int(math.Ceil(res.RetryAfter.Seconds()))))
			fail(c, s.log, apperr.New(apperr.ErrRateLimited, "RATE_LIMITED", "操作太频繁，请稍后再试"))
			return
		}
		c.Next()
	}
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) httpMetrics {
	m := httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "qjmz_http_requests_total", Help: "HTTP requests by method, route template and status.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "qjmz_http_request_duration_seconds", Help: "HTTP request latency by method and route template.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"method", "route"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}
