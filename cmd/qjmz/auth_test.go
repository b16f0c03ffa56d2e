package main

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"qjmz/pkg/authtoken"
	"qjmz/pkg/ids"
)

func TestDevLoginAndMe(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.token("admin")
	me := h.do("GET", "/api/v1/me", tok, nil)
	h.expect(me, 200, "")
	roles := me.Body["roles"].([]any)
	first := roles[0].(map[string]any)
	if first["role"] != "bureau_admin" || first["region"].(map[string]any)["name"] != "黔江区" {
		t.Fatalf("admin roles = %s", me.Raw)
	}
	if strings.Contains(string(me.Raw), "open") || strings.Contains(string(me.Raw), "session_key") {
		t.Fatalf("/me leaks WeChat identifiers: %s", me.Raw)
	}

	// A first-time user becomes a resident of the district.
	a, _ := h.login("dev:newcomer")
	me = h.do("GET", "/api/v1/me", a, nil)
	if !strings.Contains(string(me.Raw), `"role":"resident"`) {
		t.Fatalf("new user is not a resident: %s", me.Raw)
	}
	if me.Header.Get("X-Request-Id") == "" {
		t.Fatal("no X-Request-Id header")
	}
}

// TestWeChatLogin goes through the real silenceper client to the local fake
// WeChat server.
func TestWeChatLogin(t *testing.T) {
	appID := "wx" + strings.ToLower(ids.New()[:16])
	fakeWeChat.RegisterApp(appID, "secret-"+appID)
	h := newHarness(t, map[string]string{
		"QJMZ_WECHAT_APP_ID": appID, "QJMZ_WECHAT_APP_SECRET": "secret-" + appID, "QJMZ_WECHAT_DEV_LOGIN": "false",
	})
	fakeWeChat.AddCode(appID, "code-ok-1", "openid-real-1", "union-1", "SESSIONKEYxyz123==")

	r := h.do("POST", "/api/v1/auth/wechat-login", "", map[string]string{"code": "code-ok-1"})
	h.expect(r, 200, "")
	if !r.Body["new_user"].(bool) {
		t.Fatalf("first login should create the user: %s", r.Raw)
	}
	// The same code again: refused by our replay guard before WeChat.
	h.expect(h.do("POST", "/api/v1/auth/wechat-login", "", map[string]string{"code": "code-ok-1"}), 401, "WECHAT_CODE_REPLAYED")
	// A code WeChat does not know (40029).
	h.expect(h.do("POST", "/api/v1/auth/wechat-login", "", map[string]string{"code": "code-unknown"}), 401, "WECHAT_CODE_INVALID")
	// Dev codes are refused when dev login is off.
	h.expect(h.do("POST", "/api/v1/auth/wechat-login", "", map[string]string{"code": "dev:admin"}), 401, "WECHAT_CODE_INVALID")

	// The session key is stored encrypted and never logged.
	var enc string
	h.app.DB.Raw("SELECT session_key_enc FROM users WHERE open_id = ?", "openid-real-1").Scan(&enc)
	if enc == "" || strings.Contains(enc, "SESSIONKEYxyz123") {
		t.Fatalf("session key not encrypted at rest: %q", enc)
	}
	if strings.Contains(h.logs.String(), "SESSIONKEYxyz123") || strings.Contains(string(r.Raw), "SESSIONKEY") {
		t.Fatal("session key appears in logs or response")
	}
}

func TestRefreshRotationAndReuse(t *testing.T) {
	h := newHarness(t, nil)
	_, rt1 := h.login("dev:worker-haoxinqing")

	r := h.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": rt1})
	h.expect(r, 200, "")
	access2, rt2 := r.str("access_token"), r.str("refresh_token")
	if rt2 == rt1 {
		t.Fatal("refresh token not rotated")
	}
	h.expect(h.do("GET", "/api/v1/me", access2, nil), 200, "")

	// rt1 presented again: somebody copied it. The whole family dies.
	h.expect(h.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": rt1}), 401, "REFRESH_TOKEN_REUSED")
	h.expect(h.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": rt2}), 401, "SESSION_REVOKED")
	h.expect(h.do("GET", "/api/v1/me", access2, nil), 401, "SESSION_REVOKED")

	// Unknown refresh token.
	h.expect(h.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": "rt_nope"}), 401, "REFRESH_TOKEN_INVALID")
	// An expired access token in the header does not block refreshing.
	_, rt3 := h.login("dev:worker-haoxinqing")
	h.expect(h.do("POST", "/api/v1/auth/refresh", "expired.garbage.token", map[string]string{"refresh_token": rt3}), 200, "")
}

func TestLogoutRevokesSession(t *testing.T) {
	h := newHarness(t, nil)
	access, refresh := h.login("dev:resident")
	other := h.token("resident") // a second device stays logged in
	h.expect(h.do("POST", "/api/v1/auth/logout", access, nil), 204, "")
	h.expect(h.do("GET", "/api/v1/me", access, nil), 401, "SESSION_REVOKED")
	h.expect(h.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": refresh}), 401, "SESSION_REVOKED")
	h.expect(h.do("GET", "/api/v1/me", other, nil), 200, "")
}

func TestBadTokens(t *testing.T) {
	h := newHarness(t, nil)
	good := h.token("admin")
	claims, err := h.app.Auth.Authenticate(t.Context(), good)
	if err != nil {
		t.Fatal(err)
	}
	secret := h.app.Cfg.TokenSecret
	expired, _, _ := authtoken.NewIssuer(secret, time.Minute, func() time.Time { return time.Now().Add(-time.Hour) }).Issue(claims.UserID, claims.SessionID)
	forged, _, _ := authtoken.NewIssuer(strings.Repeat("x", 40), time.Minute, nil).Issue(claims.UserID, claims.SessionID)
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": claims.UserID, "sid": claims.SessionID, "iss": "qjmz",
		"exp": time.Now().Add(time.Hour).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)

	cases := []struct {
		name, header, code string
	}{
		{"missing", "", "UNAUTHENTICATED"},
		{"expired", "Bearer " + expired, "TOKEN_EXPIRED"},
		{"forged signature", "Bearer " + forged, "TOKEN_INVALID"},
		{"alg none", "Bearer " + none, "TOKEN_INVALID"},
		{"not bearer", "Basic abc", "TOKEN_INVALID"},
		{"garbage", "Bearer abc.def.ghi", "TOKEN_INVALID"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do("GET", "/api/v1/me", "", nil, "Authorization", tc.header)
			h.expect(r, 401, tc.code)
		})
	}
}

func TestLoginRateLimit(t *testing.T) {
	h := newHarness(t, map[string]string{"QJMZ_LOGIN_RATE_PER_MINUTE": "3"})
	for range 3 {
		h.login("dev:resident")
	}
	// A forged X-Forwarded-For does not buy a fresh bucket: no proxy is trusted.
	r := h.do("POST", "/api/v1/auth/wechat-login", "", map[string]string{"code": "dev:resident"}, "X-Forwarded-For", "203.0.113.9")
	h.expect(r, 429, "RATE_LIMITED")
	if ra := r.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("429 without a useful Retry-After: %q", ra)
	}
}

func TestWriteRateLimit(t *testing.T) {
	h := newHarness(t, map[string]string{"QJMZ_WRITE_RATE_PER_MINUTE": "2"})
	tok := h.token("resident")
	for range 2 {
		h.expect(h.do("POST", "/api/v1/me/privacy-consent", tok, map[string]string{"version": "2026-11"}), 200, "")
	}
	h.expect(h.do("POST", "/api/v1/me/privacy-consent", tok, map[string]string{"version": "2026-11"}), 429, "RATE_LIMITED")
	// Reads are not limited by the write bucket.
	h.expect(h.do("GET", "/api/v1/me", tok, nil), 200, "")
}

func TestMalformedRequests(t *testing.T) {
	h := newHarness(t, map[string]string{"QJMZ_MAX_BODY_BYTES": "2048"})
	admin := h.token("admin")
	huge := `{"code":"` + strings.Repeat("a", 5000) + `"}`
	cases := []struct {
		name, method, path, token string
		body                      any
		status                    int
		code                      string
	}{
		{"broken json", "POST", "/api/v1/auth/wechat-login", "", `{"code":`, 400, "MALFORMED_JSON"},
		{"wrong type", "POST", "/api/v1/auth/wechat-login", "", `{"code":12}`, 400, "MALFORMED_JSON"},
		{"trailing garbage", "POST", "/api/v1/auth/wechat-login", "", `{"code":"dev:a"} x`, 400, "MALFORMED_JSON"},
		{"empty body", "POST", "/api/v1/auth/wechat-login", "", "", 400, "MALFORMED_JSON"},
		{"missing field", "POST", "/api/v1/auth/wechat-login", "", `{}`, 400, "VALIDATION_FAILED"},
		{"oversized body", "POST", "/api/v1/auth/wechat-login", "", huge, 413, "BODY_TOO_LARGE"},
		{"unknown enum", "POST", "/api/v1/admin/role-bindings", admin,
			map[string]string{"user_id": ids.New(), "role": "superuser", "region_id": ids.New()}, 400, "UNKNOWN_ENUM_VALUE"},
		{"unknown route", "GET", "/api/v1/nope", "", nil, 404, "ROUTE_NOT_FOUND"},
		{"limit over cap", "GET", "/api/v1/admin/organizations?limit=1000", admin, nil, 400, "LIMIT_OUT_OF_RANGE"},
		{"junk id", "GET", "/api/v1/regions/not-an-id", "", nil, 404, "NOT_FOUND"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h.expect(h.do(tc.method, tc.path, tc.token, tc.body), tc.status, tc.code)
		})
	}
	r := h.do("POST", "/api/v1/admin/role-bindings", admin, map[string]string{"user_id": ids.New(), "role": "superuser", "region_id": ids.New()})
	if !strings.Contains(string(r.Raw), `"field":"role"`) {
		t.Fatalf("enum error does not name the field: %s", r.Raw)
	}
}
