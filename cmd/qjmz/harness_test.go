package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"qjmz/pkg/config"
	"qjmz/pkg/wechat/wechattest"
	"qjmz/repository/repotest"
	"qjmz/service"
)

// fakeWeChat is the one local WeChat server all tests share; state is kept
// per AppID so parallel tests do not see each other.
var fakeWeChat *wechattest.Server

func TestMain(m *testing.M) {
	fakeWeChat = wechattest.NewServer()
	restore := fakeWeChat.Install()
	code := m.Run()
	restore()
	fakeWeChat.Close()
	os.Exit(code)
}

// harness is one running server on real backends (fresh database, isolated
// Redis keys), reached over HTTP like the mini-program reaches it.
type harness struct {
	t    *testing.T
	app  *App
	srv  *httptest.Server
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newHarness(t *testing.T, env map[string]string) *harness {
	t.Helper()
	rdb, prefix, mr := repotest.Redis(t)
	_ = rdb
	vars := map[string]string{
		"QJMZ_MODE":         "embedded",
		"QJMZ_DATA_DIR":     t.TempDir(),
		"QJMZ_REDIS_PREFIX": prefix,
		// Tests start from the demo directory and catalogue only: their
		// own records, queues and feed.
		"QJMZ_DEMO_SESSIONS": "false",
	}
	if dsn := repotest.FreshMySQLDSN(t); dsn != "" {
		vars["QJMZ_MYSQL_DSN"] = dsn
	}
	if mr != nil {
		vars["QJMZ_REDIS_ADDRS"] = mr.Addr()
	} else {
		vars["QJMZ_REDIS_ADDRS"] = os.Getenv(repotest.EnvRedis)
	}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := &harness{t: t, logs: logs}
	// The public base URL must point at the test server for signed media
	// URLs; start the listener first, then build with its address.
	h.srv = httptest.NewUnstartedServer(nil)
	cfg.PublicBaseURL = "http://" + h.srv.Listener.Addr().String()
	h.app, err = build(context.Background(), cfg, log, buildOptions{})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	h.srv.Config.Handler = h.app.Handler
	h.srv.Start()
	t.Cleanup(func() {
		h.srv.Close()
		h.app.Close()
	})
	return h
}

type resp struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

func (r resp) str(key string) string {
	v, _ := r.Body[key].(string)
	return v
}

func (r resp) items() []map[string]any {
	raw, _ := r.Body["items"].([]any)
	out := make([]map[string]any, 0, len(raw))
	for _, x := range raw {
		m, _ := x.(map[string]any)
		out = append(out, m)
	}
	return out
}

func (h *harness) do(method, path, token string, body any, hdr ...string) resp {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := resp{Status: res.StatusCode, Header: res.Header, Raw: raw}
	_ = json.Unmarshal(raw, &out.Body)
	return out
}

// expect fails unless the response has the status and (for errors) code.
func (h *harness) expect(r resp, status int, code string) {
	h.t.Helper()
	if r.Status != status || (code != "" && r.str("code") != code) {
		h.t.Fatalf("want %d %s, got %d %s", status, code, r.Status, r.Raw)
	}
	if status >= 400 {
		if r.str("request_id") == "" || r.str("message") == "" {
			h.t.Fatalf("error body lacks request_id or message: %s", r.Raw)
		}
	}
}

// login logs in with a code and returns the access and refresh tokens.
func (h *harness) login(code string) (access, refresh string) {
	h.t.Helper()
	r := h.do("POST", "/api/v1/auth/wechat-login", "", map[string]string{"code": code})
	h.expect(r, 200, "")
	return r.str("access_token"), r.str("refresh_token")
}

func (h *harness) token(devName string) string {
	a, _ := h.login("dev:" + devName)
	return a
}

// regionID finds a demo region by name under a parent ("" = district).
func (h *harness) regionID(name string) string {
	h.t.Helper()
	var id string
	if err := h.app.DB.Raw("SELECT id FROM regions WHERE name = ?", name).Scan(&id).Error; err != nil || id == "" {
		h.t.Fatalf("region %s: %v", name, err)
	}
	return id
}

func (h *harness) orgID(name string) string {
	h.t.Helper()
	var id string
	if err := h.app.DB.Raw("SELECT id FROM organizations WHERE name = ?", name).Scan(&id).Error; err != nil || id == "" {
		h.t.Fatalf("org %s: %v", name, err)
	}
	return id
}

func grantAdmin(t *testing.T, h *harness, openID string) (string, error) {
	t.Helper()
	return service.GrantFirstAdmin(t.Context(), service.BootstrapConfig{Tx: h.app.Store, Users: h.app.Users,
		Regions: h.app.Regions, Audit: h.app.Auditor, Now: h.app.Now}, openID, "500114")
}
