package main

import (
	"strings"
	"testing"

	"qjmz/pkg/ids"
	"qjmz/service"
)

func TestRolesAndScopes(t *testing.T) {
	h := newHarness(t, nil)
	worker := h.token("worker-haoxinqing")
	chengnan := h.token("reviewer-chengnan")
	admin := h.token("admin")
	qingshe := h.regionID("青社社区")      // in 城南街道
	shuijingwan := h.regionID("水井湾社区") // in 城西街道

	t.Run("worker on admin route is refused by role", func(t *testing.T) {
		h.expect(h.do("GET", "/api/v1/admin/users", worker, nil), 403, "FORBIDDEN_ROLE")
		h.expect(h.do("POST", "/api/v1/admin/regions", worker, map[string]any{"parent_id": qingshe, "code": "500114001001001", "name": "x"}), 403, "FORBIDDEN_ROLE")
	})
	t.Run("station reviewer edits own town's community geofence", func(t *testing.T) {
		r := h.do("PATCH", "/api/v1/admin/regions/"+qingshe, chengnan, map[string]any{"lat": 29.519, "lng": 108.771, "radius_m": 600})
		h.expect(r, 200, "")
		if r.Body["radius_m"].(float64) != 600 || r.Body["coords_approx"].(bool) {
			t.Fatalf("geofence not saved: %s", r.Raw)
		}
	})
	t.Run("station reviewer touching another town gets 404", func(t *testing.T) {
		h.expect(h.do("PATCH", "/api/v1/admin/regions/"+shuijingwan, chengnan, map[string]any{"radius_m": 600}), 404, "NOT_FOUND")
		// Same answer as an id that does not exist: nothing to probe.
		h.expect(h.do("PATCH", "/api/v1/admin/regions/"+ids.New(), chengnan, map[string]any{"radius_m": 600}), 404, "NOT_FOUND")
	})
	t.Run("town-scoped admin cannot create under another town", func(t *testing.T) {
		// The district admin makes a new user bureau_admin of 城南街道 only.
		_ = h.token("townadmin")
		var uid string
		h.app.DB.Raw("SELECT id FROM users WHERE open_id = 'dev_townadmin'").Scan(&uid)
		h.expect(h.do("POST", "/api/v1/admin/role-bindings", admin, map[string]any{"user_id": uid, "role": "bureau_admin", "region_id": h.regionID("城南街道")}), 201, "")
		town := h.token("townadmin")
		h.expect(h.do("POST", "/api/v1/admin/regions", town, map[string]any{"parent_id": h.regionID("城西街道"), "code": "500114003099", "name": "新社区"}), 404, "NOT_FOUND")
		r := h.do("POST", "/api/v1/admin/regions", town, map[string]any{"parent_id": h.regionID("城南街道"), "code": "500114002099", "name": "新社区"})
		h.expect(r, 201, "")
		if r.Body["level"] != "community" {
			t.Fatalf("child of a town should be a community: %s", r.Raw)
		}
		// And it cannot grant roles outside its town either.
		h.expect(h.do("POST", "/api/v1/admin/role-bindings", town, map[string]any{"user_id": uid, "role": "station_reviewer", "region_id": h.regionID("城西街道")}), 404, "NOT_FOUND")
	})
	t.Run("organization visible to members and bureau, hidden from others", func(t *testing.T) {
		hx := h.orgID("黔江好心情公益服务中心")
		zs := h.orgID("至善社会工作服务中心")
		h.expect(h.do("GET", "/api/v1/organizations/"+hx, worker, nil), 200, "")
		h.expect(h.do("GET", "/api/v1/organizations/"+zs, worker, nil), 404, "NOT_FOUND")
		h.expect(h.do("GET", "/api/v1/organizations/"+zs, admin, nil), 200, "")
	})
}

func TestAdminManagesOrganizationsAndRoles(t *testing.T) {
	h := newHarness(t, nil)
	admin := h.token("admin")
	r := h.do("POST", "/api/v1/admin/organizations", admin, map[string]any{
		"name": "黔江区阳光社工服务中心", "credit_code": "52500114MJP00009XY", "rating": "3A",
		"contact_name": "王主任", "contact_phone": "13800001234", "region_id": h.regionID("正阳街道")})
	h.expect(r, 201, "")
	if r.str("contact_phone") != "138****1234" {
		t.Fatalf("contact phone not masked: %s", r.Raw)
	}
	var enc string
	h.app.DB.Raw("SELECT contact_phone_enc FROM organizations WHERE id = ?", r.str("id")).Scan(&enc)
	if strings.Contains(enc, "13800001234") || enc == "" {
		t.Fatalf("phone not encrypted at rest: %q", enc)
	}
	h.expect(h.do("POST", "/api/v1/admin/organizations", admin, map[string]any{
		"name": "重复机构", "credit_code": "52500114MJP00009XY", "region_id": h.regionID("正阳街道")}), 409, "ORG_CREDIT_CODE_TAKEN")
	h.expect(h.do("POST", "/api/v1/admin/organizations", admin, map[string]any{
		"name": "坏代码", "credit_code": "123", "region_id": h.regionID("正阳街道")}), 400, "VALIDATION_FAILED")

	list := h.do("GET", "/api/v1/admin/organizations?limit=2", admin, nil)
	h.expect(list, 200, "")
	if len(list.items()) != 2 || list.str("next_cursor") == "" {
		t.Fatalf("first page: %s", list.Raw)
	}
	next := h.do("GET", "/api/v1/admin/organizations?limit=2&cursor="+list.str("next_cursor"), admin, nil)
	if len(next.items()) == 0 || next.items()[0]["id"] == list.items()[0]["id"] {
		t.Fatalf("second page repeats or is empty: %s", next.Raw)
	}

	// Grant and revoke a role; the user's /me follows.
	u := h.token("newreviewer")
	var uid string
	h.app.DB.Raw("SELECT id FROM users WHERE open_id = 'dev_newreviewer'").Scan(&uid)
	g := h.do("POST", "/api/v1/admin/role-bindings", admin, map[string]any{"user_id": uid, "role": "station_reviewer", "region_id": h.regionID("黎水镇")})
	h.expect(g, 201, "")
	h.expect(h.do("POST", "/api/v1/admin/role-bindings", admin, map[string]any{"user_id": uid, "role": "station_reviewer", "region_id": h.regionID("黎水镇")}), 409, "BINDING_EXISTS")
	h.expect(h.do("POST", "/api/v1/admin/role-bindings", admin, map[string]any{"user_id": uid, "role": "station_reviewer", "region_id": h.regionID("华阳社区")}), 400, "VALIDATION_FAILED")
	if me := h.do("GET", "/api/v1/me", u, nil); !strings.Contains(string(me.Raw), "station_reviewer") {
		t.Fatalf("granted role missing from /me: %s", me.Raw)
	}
	h.expect(h.do("DELETE", "/api/v1/admin/role-bindings/"+g.str("id"), admin, nil), 204, "")
	if me := h.do("GET", "/api/v1/me", u, nil); strings.Contains(string(me.Raw), "station_reviewer") {
		t.Fatalf("revoked role still in /me: %s", me.Raw)
	}
	users := h.do("GET", "/api/v1/admin/users?limit=100", admin, nil)
	h.expect(users, 200, "")
	if len(users.items()) < 9 || strings.Contains(string(users.Raw), "dev_") {
		t.Fatalf("user list wrong or leaks openids: %s", users.Raw)
	}
}

func TestInvites(t *testing.T) {
	h := newHarness(t, nil)
	orgAdmin := h.token("orgadmin-haoxinqing")
	hx := h.orgID("黔江好心情公益服务中心")
	zs := h.orgID("至善社会工作服务中心")

	inv := h.do("POST", "/api/v1/organizations/"+hx+"/invites", orgAdmin, map[string]any{"ttl_hours": 24})
	h.expect(inv, 201, "")
	code := inv.str("code")
	if len(code) != 11 {
		t.Fatalf("invite code %q", code)
	}
	// Another organization's admin rights do not reach here.
	h.expect(h.do("POST", "/api/v1/organizations/"+zs+"/invites", orgAdmin, map[string]any{}), 404, "NOT_FOUND")
	// org_admins cannot mint org_admins.
	h.expect(h.do("POST", "/api/v1/organizations/"+hx+"/invites", orgAdmin, map[string]any{"role": "org_admin"}), 403, "FORBIDDEN")
	h.expect(h.do("POST", "/api/v1/organizations/"+hx+"/invites", orgAdmin, map[string]any{"role": "boss"}), 400, "UNKNOWN_ENUM_VALUE")

	newbie := h.token("new-worker")
	r := h.do("POST", "/api/v1/invites/redeem", newbie, map[string]any{"code": strings.ToLower(code)})
	h.expect(r, 201, "")
	if r.Body["role"] != "worker" || r.Body["organization"].(map[string]any)["id"] != hx {
		t.Fatalf("redeem result: %s", r.Raw)
	}
	if me := h.do("GET", "/api/v1/me", newbie, nil); !strings.Contains(string(me.Raw), "黔江好心情公益服务中心") {
		t.Fatalf("worker not bound: %s", me.Raw)
	}
	// Single use.
	h.expect(h.do("POST", "/api/v1/invites/redeem", h.token("someone-else"), map[string]any{"code": code}), 409, "INVITE_USED")
	h.expect(h.do("POST", "/api/v1/invites/redeem", newbie, map[string]any{"code": "AAAAA-BBBBB"}), 404, "INVITE_NOT_FOUND")

	// Expired.
	inv2 := h.do("POST", "/api/v1/organizations/"+hx+"/invites", orgAdmin, map[string]any{"ttl_hours": 1})
	h.app.DB.Exec("UPDATE invites SET expires_at = ? WHERE id = ?", "2020-01-01 00:00:00", inv2.str("id"))
	h.expect(h.do("POST", "/api/v1/invites/redeem", h.token("late-worker"), map[string]any{"code": inv2.str("code")}), 409, "INVITE_EXPIRED")
}

func TestAuditTrail(t *testing.T) {
	h := newHarness(t, nil)
	admin := h.token("admin")
	auditor := h.token("auditor")
	h.do("POST", "/api/v1/admin/organizations", admin, map[string]any{
		"name": "审计测试机构", "credit_code": "52500114MJP00008XY", "region_id": h.regionID("正阳街道")})

	h.expect(h.do("GET", "/api/v1/audit/events", h.token("worker-haoxinqing"), nil), 403, "FORBIDDEN_ROLE")
	ev := h.do("GET", "/api/v1/audit/events?action=org.create", auditor, nil)
	h.expect(ev, 200, "")
	if len(ev.items()) != 1 || ev.items()[0]["request_id"] == "" || ev.items()[0]["ip"] == "" {
		t.Fatalf("org.create not audited with request id and ip: %s", ev.Raw)
	}
	logins := h.do("GET", "/api/v1/audit/events?action=auth.login&limit=1", auditor, nil)
	if len(logins.items()) != 1 || logins.str("next_cursor") == "" {
		t.Fatalf("logins not audited or not paginated: %s", logins.Raw)
	}
	v := h.do("GET", "/api/v1/audit/verify", auditor, nil)
	h.expect(v, 200, "")
	if v.Body["ok"] != true {
		t.Fatalf("fresh chain reported broken: %s", v.Raw)
	}
	// Someone with database access rewrites history.
	h.app.DB.Exec("UPDATE audit_events SET after = '{}' WHERE action = 'org.create'")
	v = h.do("GET", "/api/v1/audit/verify", auditor, nil)
	if v.Body["ok"] != false || !strings.Contains(string(v.Raw), "hash_mismatch") {
		t.Fatalf("tampering not detected: %s", v.Raw)
	}
}

func TestOpsEndpoints(t *testing.T) {
	h := newHarness(t, nil)
	h.expect(h.do("GET", "/healthz", "", nil), 200, "")
	r := h.do("GET", "/readyz", "", nil)
	h.expect(r, 200, "")
	if r.Body["ready"] != true {
		t.Fatalf("readyz: %s", r.Raw)
	}
	h.do("GET", "/api/v1/regions", "", nil)
	m := h.do("GET", "/metrics", "", nil)
	if !strings.Contains(string(m.Raw), `qjmz_http_requests_total{method="GET",route="/api/v1/regions",status="200"}`) {
		t.Fatal("request metrics missing")
	}
	// Redis down: readiness says so.
	_ = h.app.Redis.UniversalClient.Close()
	r = h.do("GET", "/readyz", "", nil)
	if r.Status != 503 || !strings.Contains(string(r.Raw), `"redis":"down"`) {
		t.Fatalf("readyz with Redis closed: %d %s", r.Status, r.Raw)
	}
}

func TestGrantFirstAdminCommand(t *testing.T) {
	h := newHarness(t, nil)
	// The operator grants an openid that never logged in.
	t.Setenv("QJMZ_MODE", "embedded")
	uid, err := grantAdmin(t, h, "dev_ops-chief")
	if err != nil {
		t.Fatal(err)
	}
	me := h.do("GET", "/api/v1/me", h.token("ops-chief"), nil)
	if !strings.Contains(string(me.Raw), uid) || !strings.Contains(string(me.Raw), "bureau_admin") {
		t.Fatalf("granted admin: %s", me.Raw)
	}
	// Idempotent, and a repeat is not audited as a second grant.
	if _, err := grantAdmin(t, h, "dev_ops-chief"); err != nil {
		t.Fatal(err)
	}
	var grants int
	h.app.DB.Raw("SELECT COUNT(*) FROM audit_events WHERE action = 'role.grant' AND actor_id = 'cli'").Scan(&grants)
	if grants != 1 {
		t.Fatalf("role.grant audited %d times for one grant", grants)
	}
}

// TestBootstrapEmptyDatabase is the production start: no demo data, the
// operator creates the root region and the first admin, who then logs in.
func TestBootstrapEmptyDatabase(t *testing.T) {
	h := newHarness(t, map[string]string{"QJMZ_DEMO_DATA": "false"})
	if r := h.do("GET", "/api/v1/regions", "", nil); len(r.items()) != 0 {
		t.Fatalf("database not empty: %s", r.Raw)
	}
	bc := service.BootstrapConfig{Tx: h.app.Store, Users: h.app.Users, Regions: h.app.Regions, Audit: h.app.Auditor, Now: h.app.Now}
	if _, err := service.CreateRootRegion(t.Context(), bc, "district", "500114", "黔江区", 29.53, 108.77, 20000); err != nil {
		t.Fatal(err)
	}
	if _, err := service.CreateRootRegion(t.Context(), bc, "district", "500114", "黔江区", 29.53, 108.77, 20000); err == nil {
		t.Fatal("a second root region with the same code was created")
	}
	if _, err := grantAdmin(t, h, "dev_first-admin"); err != nil {
		t.Fatal(err)
	}
	admin := h.token("first-admin")
	district := h.regionID("黔江区")
	h.expect(h.do("POST", "/api/v1/admin/regions", admin, map[string]any{"parent_id": district, "code": "500114001", "name": "城东街道"}), 201, "")
}

func TestMetricsToken(t *testing.T) {
	h := newHarness(t, map[string]string{"QJMZ_METRICS_TOKEN": "scrape-secret-123"})
	h.expect(h.do("GET", "/metrics", "", nil), 401, "METRICS_TOKEN_INVALID")
	h.expect(h.do("GET", "/metrics", "wrong", nil), 401, "METRICS_TOKEN_INVALID")
	if r := h.do("GET", "/metrics", "scrape-secret-123", nil); r.Status != 200 || !strings.Contains(string(r.Raw), "go_goroutines") {
		t.Fatalf("metrics with the token: %d", r.Status)
	}
}
