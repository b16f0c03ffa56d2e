package api

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/go-playground/validator/v10"
	"github.com/go-redis/redis_rate/v10"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"qjmz/model"
	"qjmz/service"
)

// Checker is a dependency /readyz checks (database, Redis).
type Checker struct {
	Name  string
	Check func(context.Context) error
}

// Config carries the HTTP layer's settings.
type Config struct {
	MaxBodyBytes       int64
	LoginRatePerMinute int
	WriteRatePerMinute int
	RedisPrefix        string
}

// Deps are the use cases and infrastructure the handlers call.
type Deps struct {
	Config    Config
	Logger    *slog.Logger
	Auth      *service.Auth
	Directory *service.Directory
	Invites   *service.Invites
	Auditor   *service.Auditor
	Limiter   *redis_rate.Limiter
	Registry  *prometheus.Registry
	Ready     []Checker
	// Media serves the local-disk store's signed URLs (embedded mode only).
	Media http.Handler

	// -- evidence (catalogue, orders, beneficiaries) --
	// -- evidence (uploads, media) --
	// -- evidence (session records) --
	// -- review, feed --
}

type server struct {
	Deps
	log      *slog.Logger
	metrics  httpMetrics
	validate *validator.Validate
}

// Staff roles that see the admin tab.
var (
	bureauStaff = []string{model.RoleBureauAdmin, model.RoleBureauReviewer, model.RoleStationReviewer, model.RoleAuditor}
)

// NewRouter builds the whole route table. Read it top to bottom: every
// endpoint, its middleware and its roles are here.
func NewRouter(d Deps) *gin.Engine {
	s := &server{Deps: d, log: d.Logger, metrics: newHTTPMetrics(d.Registry), validate: newValidator()}

	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.NoRoute(s.noRoute)
	r.NoMethod(s.noMethod)
	r.Use(s.withRequest, s.recoverPanics)

	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{})))
	if d.Media != nil {
		// Signed, expiring URLs of the local-disk store; the signature is the
		// authorization, so no bearer token is needed.
		r.GET("/media/*key", gin.WrapH(d.Media))
		r.HEAD("/media/*key", gin.WrapH(d.Media))
		r.PUT("/media/*key", gin.WrapH(d.Media))
	}

	v1 := r.Group("/api/v1", s.limitBody, s.authenticate)
	writes := s.rateLimit("write", d.Config.WriteRatePerMinute, true)
	login := s.rateLimit("login", d.Config.LoginRatePerMinute, false)

	// Login and tokens.
	v1.POST("/auth/wechat-login", login, s.wechatLogin)
	v1.POST("/auth/refresh", login, s.refresh)
	v1.POST("/auth/logout", s.requireAuth, writes, s.logout)

	// The caller.
	me := v1.Group("/me", s.requireAuth, writes)
	me.GET("", s.me)
	me.POST("/phone", s.bindPhone)
	me.POST("/privacy-consent", s.privacyConsent)

	// Public reference data.
	v1.GET("/regions", s.listRegions)
	v1.GET("/regions/:id", s.getRegion)

	// Organizations, invites.
	v1.GET("/organizations/:id", s.requireAuth, s.getOrg)
	v1.POST("/organizations/:id/invites", s.requireRole(model.RoleOrgAdmin, model.RoleBureauAdmin), writes, s.createInvite)
	v1.POST("/invites/redeem", s.requireAuth, writes, s.redeemInvite)

	// Administration (bureau and stations), scoped in the services.
	admin := v1.Group("/admin", s.requireAuth, writes)
	admin.POST("/regions", s.requireRole(model.RoleBureauAdmin), s.createRegion)
	admin.PATCH("/regions/:id", s.requireRole(model.RoleBureauAdmin, model.RoleStationReviewer), s.updateRegion)
	admin.GET("/organizations", s.requireRole(bureauStaff...), s.listOrgs)
	admin.POST("/organizations", s.requireRole(model.RoleBureauAdmin), s.createOrg)
	admin.PATCH("/organizations/:id", s.requireRole(model.RoleBureauAdmin), s.updateOrg)
	admin.GET("/users", s.requireRole(model.RoleBureauAdmin), s.listUsers)
	admin.POST("/role-bindings", s.requireRole(model.RoleBureauAdmin), s.grantRole)
	admin.DELETE("/role-bindings/:id", s.requireRole(model.RoleBureauAdmin), s.revokeRole)

	// Audit log (read-only).
	audit := v1.Group("/audit", s.requireRole(model.RoleAuditor, model.RoleBureauAdmin))
	audit.GET("/events", s.listAudit)
	audit.GET("/verify", s.verifyAudit)

	// -- routes: catalogue, orders, beneficiaries --
	// -- routes: uploads, media --
	// -- routes: session records --
	// -- routes: review, feed --

	return r
}
