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
	"github.com/redis/go-redis/v9"

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
	TrustedProxies     []string
	// MetricsToken, when set, must be sent as a bearer token to /metrics.
	MetricsToken string
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
	// Idempotency keeps first responses of writes sent with an
	// Idempotency-Key (nil: the header is validated but not enforced).
	Idempotency redis.UniversalClient
	Registry    *prometheus.Registry
	Ready       []Checker
	// Media serves the local-disk store's signed URLs (embedded mode only).
	Media http.Handler

	// -- evidence (catalogue, orders, beneficiaries) --
	Catalogue     *service.Catalogue
	Orders        *service.Orders
	Beneficiaries *service.Beneficiaries
	// -- evidence (uploads, media) --
	Uploads *service.Uploads
	// -- evidence (session records) --
	Records *service.Records
	// -- review, feed --
	// Review
	Review *service.Review
	// Feed
	Feed *service.Feed
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
	// Gin trusts every X-Forwarded-For by default, which would let anyone
	// pick the IP that rate limits and the audit log see.
	if err := r.SetTrustedProxies(d.Config.TrustedProxies); err != nil {
		d.Logger.Error("invalid trusted proxies; trusting none", "err", err)
		_ = r.SetTrustedProxies(nil)
	}
	r.HandleMethodNotAllowed = true
	r.NoRoute(s.noRoute)
	r.NoMethod(s.noMethod)
	r.Use(s.withRequest, s.recoverPanics)

	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	r.GET("/metrics", s.metricsAuth, gin.WrapH(promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{})))
	if d.Media != nil {
		// Signed, expiring URLs of the local-disk store; the signature is the
		// authorization, so no bearer token is needed.
		r.GET("/media/*key", gin.WrapH(d.Media))
		r.HEAD("/media/*key", gin.WrapH(d.Media))
		r.PUT("/media/*key", gin.WrapH(d.Media))
	}

	v1 := r.Group("/api/v1", s.limitBody, s.authenticate, s.idempotency)
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
	// Catalogue: everyone signed in reads (internal items only for staff and
	// workers); bureau admins edit.
	v1.GET("/service-items", s.requireAuth, s.listServiceItems)
	admin.POST("/service-items", s.requireRole(model.RoleBureauAdmin), s.createServiceItem)
	admin.PATCH("/service-items/:id", s.requireRole(model.RoleBureauAdmin), s.updateServiceItem)
	// Orders: bureau admins place and edit them for towns in scope; staff
	// list them; organization members see their own.
	admin.POST("/orders", s.requireRole(model.RoleBureauAdmin), s.createOrder)
	admin.GET("/orders", s.requireRole(bureauStaff...), s.listOrdersAdmin)
	admin.PATCH("/orders/:id", s.requireRole(model.RoleBureauAdmin), s.updateOrder)
	v1.GET("/orders", s.requireRole(model.RoleWorker, model.RoleOrgAdmin), s.listMyOrders)
	v1.GET("/orders/:id", s.requireAuth, s.getOrder)
	// Beneficiaries (personal data): workers and reviewers in scope; the
	// plaintext only to reviewers and admins, audited and rate-limited.
	bens := v1.Group("/beneficiaries", s.requireRole(model.RoleWorker, model.RoleOrgAdmin, model.RoleStationReviewer,
		model.RoleBureauReviewer, model.RoleBureauAdmin), writes)
	bens.POST("", s.createBeneficiary)
	bens.GET("", s.searchBeneficiaries)
	bens.GET("/:id", s.getBeneficiary)
	bens.PATCH("/:id", s.updateBeneficiary)
	bens.GET("/:id/plaintext", s.requireRole(model.RoleStationReviewer, model.RoleBureauReviewer, model.RoleBureauAdmin),
		s.rateLimit("pii", d.Config.WriteRatePerMinute, false), s.beneficiaryPlaintext)
	// -- routes: uploads, media --
	// Evidence uploads: ticket → PUT to storage → complete (DESIGN.md §4.2).
	uploaders := s.requireRole(model.RoleWorker, model.RoleOrgAdmin)
	v1.POST("/uploads", uploaders, writes, s.createUpload)
	v1.POST("/uploads/:id/complete", uploaders, writes, s.completeUpload)
	v1.GET("/uploads/:id", s.requireAuth, s.getUpload)
	v1.GET("/uploads/:id/provenance", s.requireAuth, s.getUploadProvenance)
	v1.GET("/provenance/public-key", s.provenancePublicKey)
	// -- routes: session records --
	// Session records: the organization drafts, edits and submits (risk
	// checks at submit); staff over the community read submitted ones.
	recs := v1.Group("/records", s.requireAuth, writes)
	recWriters := s.requireRole(model.RoleWorker, model.RoleOrgAdmin)
	recs.POST("", recWriters, s.createRecord)
	recs.GET("", recWriters, s.listRecords)
	recs.GET("/:id", s.getRecord)
	recs.PATCH("/:id", recWriters, s.updateRecord)
	recs.POST("/:id/submit", recWriters, s.submitRecord)
	recs.GET("/:id/versions", s.listRecordVersions)
	// -- routes: review, feed --
	// Review (DESIGN.md §4.4, docs/review.md): station reviewers decide
	// level 1 for their towns, bureau staff level 2 (and escalated level 1);
	// the service checks the record's town (404 outside scope).
	review := v1.Group("/review", s.requireRole(model.RoleStationReviewer, model.RoleBureauReviewer, model.RoleBureauAdmin), writes)
	review.POST("/claim", s.claimReview)
	review.GET("/pending", s.listReviewPending)
	review.GET("/overdue", s.listReviewOverdue)
	review.GET("/reasons", s.listReviewReasons)
	review.GET("/stats", s.reviewStats)
	review.GET("/records/:id", s.getReviewRecord)
	review.POST("/records/:id/release", s.releaseReview)
	review.POST("/records/:id/decision", s.decideReview)
	review.POST("/bulk-approve", s.bulkApproveReview)
	review.GET("/dead-letters", s.requireRole(model.RoleBureauAdmin), s.listDeadLetters)
	review.POST("/dead-letters/:id/requeue", s.requireRole(model.RoleBureauAdmin), s.requeueDeadLetter)
	// Feed: public, newest first (cached); bureau admins take records off
	// and put them back; WeChat's signed push callbacks (no bearer token;
	// the signature is the authorization) deliver image-check verdicts.
	v1.GET("/feed", s.listFeed)
	v1.GET("/feed/:id", s.getFeedEntry)
	admin.POST("/feed/:id/unpublish", s.requireRole(model.RoleBureauAdmin), s.unpublishFeed)
	admin.POST("/feed/:id/republish", s.requireRole(model.RoleBureauAdmin), s.republishFeed)
	v1.GET("/wechat/push", s.verifyWeChatPush)
	v1.POST("/wechat/push", s.weChatPush)

	return r
}
