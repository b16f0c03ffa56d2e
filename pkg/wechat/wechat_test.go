package wechat_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"qjmz/pkg/wechat"
	"qjmz/pkg/wechat/wechattest"
)

func TestCode2Session(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		code    string
		prepare func(t *testing.T, a testApp)
		want    wechat.Session
		wantErr error
		errcode string // must appear in the error text, for operators
	}{
		{
			name: "valid code gives openid and unionid",
			code: "code-ok",
			prepare: func(t *testing.T, a testApp) {
				fake.AddCode(a.appID, "code-ok", "o_alice", "u_alice", "sk-ALICE-secret==")
			},
			want: wechat.Session{OpenID: "o_alice", UnionID: "u_alice", SessionKey: "sk-ALICE-secret=="},
		},
		{
			name:    "valid code without unionid",
			code:    "code-nounion",
			prepare: func(t *testing.T, a testApp) { fake.AddCode(a.appID, "code-nounion", "o_bob", "", "sk-BOB-secret==") },
			want:    wechat.Session{OpenID: "o_bob", SessionKey: "sk-BOB-secret=="},
		},
		{
			name:    "unknown code is 40029",
			code:    "code-unknown",
			prepare: func(*testing.T, testApp) {},
			wantErr: wechat.ErrInvalidCode,
			errcode: "40029",
		},
		{
			name: "replayed code is 40163",
			code: "code-replay",
			prepare: func(t *testing.T, a testApp) {
				fake.AddCode(a.appID, "code-replay", "o_carol", "", "sk-CAROL-secret==")
				if _, err := a.client.Code2Session(context.Background(), "code-replay"); err != nil {
					t.Fatalf("first use: %v", err)
				}
			},
			wantErr: wechat.ErrInvalidCode,
			errcode: "40163",
		},
		{
			name:    "code that would add query parameters is refused",
			code:    "x&appid=other",
			prepare: func(*testing.T, testApp) {},
			wantErr: wechat.ErrInvalidCode,
		},
		{
			name: "wrong app secret is an upstream failure",
			code: "code-badsecret",
			prepare: func(t *testing.T, a testApp) {
				fake.AddCode(a.appID, "code-badsecret", "o_dave", "", "sk-DAVE-secret==")
				fake.RegisterApp(a.appID, "another-secret")
			},
			wantErr: wechat.ErrUpstream,
			errcode: "40125",
		},
		{
			name: "gateway error is an upstream failure",
			code: "code-502",
			prepare: func(t *testing.T, a testApp) {
				fake.AddCode(a.appID, "code-502", "o_erin", "", "sk-ERIN-secret==")
				fake.FailNext(a.appID, "/sns/jscode2session", http.StatusBadGateway)
			},
			wantErr: wechat.ErrUpstream,
			errcode: "502",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newApp(t)
			tt.prepare(t, a)
			got, err := a.client.Code2Session(context.Background(), tt.code)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Code2Session: %v", err)
				}
				if got != tt.want {
					t.Fatalf("session = %+v, want %+v", got, tt.want)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.errcode) {
				t.Errorf("error %q does not name errcode %s", msg, tt.errcode)
			}
			// Errors end up in logs: no credential may ride along.
			for _, secret := range []string{a.secret, "secret==", tt.code} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q leaks %q", msg, secret)
				}
			}
		})
	}
}

func TestAccessTokenSharedThroughRedis(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := context.Background()
	for range 2 {
		if _, err := a.client.MsgSecCheck(ctx, "o_1", wechat.SceneComment, "你好"); err != nil {
			t.Fatalf("MsgSecCheck: %v", err)
		}
	}
	if n := fake.TokenFetches(a.appID); n != 1 {
		t.Fatalf("token fetched %d times for two calls, want 1", n)
	}
	replica := a.newClient(t)
	if _, err := replica.MsgSecCheck(ctx, "o_1", wechat.SceneComment, "你好"); err != nil {
		t.Fatalf("replica MsgSecCheck: %v", err)
	}
	if n := fake.TokenFetches(a.appID); n != 1 {
		t.Fatalf("second replica fetched its own token (%d fetches), want the shared one", n)
	}
	ttl, err := a.rdb.TTL(ctx, tokenKey(a.appID)).Result()
	if err != nil {
		t.Fatal(err)
	}
	// 7200 s announced, minus silenceper's 1500 s margin.
	if ttl <= 0 || ttl.Seconds() > 5700 {
		t.Fatalf("cached token TTL = %v, want (0, 5700s]", ttl)
	}
}

func TestConcurrentCallsFetchOneToken(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := a.client.MsgSecCheck(context.Background(), "o_1", wechat.SceneComment, "你好")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("MsgSecCheck: %v", err)
		}
	}
	if n := fake.TokenFetches(a.appID); n != 1 {
		t.Fatalf("20 concurrent calls fetched %d tokens, want 1", n)
	}
}

func TestRejectedTokenIsRefreshedOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		errcode int
	}{
		{"invalid credential 40001", wechattest.CodeInvalidToken},
		{"expired 42001", wechattest.CodeTokenExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newApp(t)
			ctx := context.Background()
			fake.SetSubscribeQuota(a.appID, "o_1", 5)
			msg := wechat.SubscribeMessage{ToOpenID: "o_1", TemplateID: "tpl", Data: map[string]string{"thing1": "审核通过"}}
			if err := a.client.SendSubscribe(ctx, msg); err != nil {
				t.Fatalf("first send: %v", err)
			}
			old, _ := a.client.AccessToken(ctx)
			fake.ExpireAccessTokenWith(a.appID, tt.errcode)

			if err := a.client.SendSubscribe(ctx, msg); err != nil {
				t.Fatalf("send after token expiry: %v", err)
			}
			if n := fake.TokenFetches(a.appID); n != 2 {
				t.Fatalf("token fetches = %d, want 2", n)
			}
			if got := len(fake.SubscribeMessages(a.appID)); got != 2 {
				t.Fatalf("messages delivered = %d, want 2", got)
			}
			cur, err := a.rdb.Get(ctx, tokenKey(a.appID)).Result()
			if err != nil || cur == old {
				t.Fatalf("cached token = %q (err %v), want a new one", cur, err)
			}
		})
	}
}

func TestStaleTokenFromAnotherReplicaIsReplaced(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := context.Background()
	if err := a.rdb.Set(ctx, tokenKey(a.appID), "stale-token", 0).Err(); err != nil {
		t.Fatal(err)
	}
	v, err := a.client.MsgSecCheck(ctx, "o_1", wechat.SceneComment, "你好")
	if err != nil || v != wechat.VerdictPass {
		t.Fatalf("MsgSecCheck = %q, %v; want pass", v, err)
	}
	if n := fake.TokenFetches(a.appID); n != 1 {
		t.Fatalf("token fetches = %d, want 1", n)
	}
	if cur, _ := a.rdb.Get(ctx, tokenKey(a.appID)).Result(); cur == "stale-token" {
		t.Fatal("stale token still cached")
	}
}

func TestWrongSecretFailsWithoutLeakingIt(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	fake.RegisterApp(a.appID, "rotated-secret")
	_, err := a.client.MsgSecCheck(context.Background(), "o_1", wechat.SceneComment, "你好")
	if !errors.Is(err, wechat.ErrUpstream) || wechat.IsRetryable(err) {
		t.Fatalf("err = %v, want permanent ErrUpstream", err)
	}
	if !strings.Contains(err.Error(), "40125") || strings.Contains(err.Error(), a.secret) {
		t.Fatalf("error %q: want errcode 40125 and no secret", err)
	}
}

func TestTokenGatewayErrorDoesNotLeakSecret(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	fake.FailNext(a.appID, "/cgi-bin/token", http.StatusServiceUnavailable)
	_, err := a.client.AccessToken(context.Background())
	if !errors.Is(err, wechat.ErrUpstream) || !wechat.IsRetryable(err) {
		t.Fatalf("err = %v, want retryable ErrUpstream", err)
	}
	if strings.Contains(err.Error(), a.secret) {
		t.Fatalf("error %q leaks the app secret", err)
	}
}

func TestMsgSecCheckVerdicts(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	tests := []struct {
		content string
		want    wechat.Verdict
	}{
		{"社工服务很贴心", wechat.VerdictPass},
		{"这是违规内容", wechat.VerdictRisky},
		{"内容待定", wechat.VerdictReview},
	}
	for _, tt := range tests {
		t.Run(tt.content, func(t *testing.T) {
			got, err := a.client.MsgSecCheck(context.Background(), "o_1", wechat.SceneComment, tt.content)
			if err != nil {
				t.Fatalf("MsgSecCheck: %v", err)
			}
			if got != tt.want {
				t.Fatalf("verdict = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMsgSecCheckRefusesBadInput(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	tests := []struct {
		name    string
		openID  string
		scene   int
		content string
	}{
		{"scene out of range", "o_1", 9, "你好"},
		{"no openid", "", wechat.SceneComment, "你好"},
		{"longer than WeChat accepts", "o_1", wechat.SceneComment, strings.Repeat("长", 2501)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := a.client.MsgSecCheck(context.Background(), tt.openID, tt.scene, tt.content); err == nil {
				t.Fatal("want an error")
			}
		})
	}
	if n := fake.TextChecks(a.appID); n != 0 {
		t.Fatalf("bad input reached WeChat %d times", n)
	}
}

func TestSendSubscribe(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := context.Background()
	fake.SetSubscribeQuota(a.appID, "o_worker", 1)
	msg := wechat.SubscribeMessage{
		ToOpenID: "o_worker", TemplateID: "tpl-review", Page: "pages/record/detail?id=42",
		Data: map[string]string{"thing1": "入户探访", "phrase2": "已通过"},
	}
	if err := a.client.SendSubscribe(ctx, msg); err != nil {
		t.Fatalf("SendSubscribe: %v", err)
	}
	got := fake.SubscribeMessages(a.appID)
	if len(got) != 1 {
		t.Fatalf("delivered %d messages, want 1", len(got))
	}
	c := got[0]
	if c.ToOpenID != msg.ToOpenID || c.TemplateID != msg.TemplateID || c.Page != msg.Page ||
		c.Data["thing1"] != "入户探访" || c.Data["phrase2"] != "已通过" {
		t.Fatalf("delivered %+v, want %+v", c, msg)
	}

	err := a.client.SendSubscribe(ctx, msg)
	if !errors.Is(err, wechat.ErrNoSubscribeQuota) {
		t.Fatalf("send without consent: err = %v, want ErrNoSubscribeQuota", err)
	}
	if errors.Is(err, wechat.ErrUpstream) || wechat.IsRetryable(err) {
		t.Fatalf("no consent must be a final, normal outcome: %v", err)
	}
	if n := len(fake.SubscribeMessages(a.appID)); n != 1 {
		t.Fatalf("delivered %d messages, want still 1", n)
	}
}

func TestPhoneNumber(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	fake.AddPhoneCode(a.appID, "phone-code", "13800138000")
	tests := []struct {
		name, code, want string
		wantErr          error
	}{
		{"valid code", "phone-code", "13800138000", nil},
		{"code used twice", "phone-code", "", wechat.ErrInvalidCode},
		{"unknown code", "other", "", wechat.ErrInvalidCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := a.client.PhoneNumber(context.Background(), tt.code)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Fatalf("PhoneNumber = %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestMediaCheckAsyncThenPush(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	const img = "https://media.example.cn/evidence/1.jpg"
	mc, err := a.client.MediaCheckAsync(context.Background(), "o_worker", img)
	if err != nil {
		t.Fatalf("MediaCheckAsync: %v", err)
	}
	if mc.TraceID == "" || mc.Verdict != "" {
		t.Fatalf("receipt = %+v, want a trace id and a pending verdict", mc)
	}
	reqs := fake.MediaChecks(a.appID)
	if len(reqs) != 1 || reqs[0].MediaURL != img || reqs[0].OpenID != "o_worker" || reqs[0].MediaType != 2 {
		t.Fatalf("WeChat received %+v, want one image check of %s", reqs, img)
	}
	ev, err := wechat.ParseMediaCheckPush(wechattest.MediaCheckPushBody(a.appID, mc.TraceID, "risky"))
	if err != nil {
		t.Fatalf("ParseMediaCheckPush: %v", err)
	}
	if ev.TraceID != mc.TraceID || ev.Verdict != wechat.VerdictRisky {
		t.Fatalf("push = %+v, want trace %s risky", ev, mc.TraceID)
	}
	if _, err := a.client.MediaCheckAsync(context.Background(), "o_worker", "file:///etc/passwd"); err == nil {
		t.Fatal("a non-http media URL was accepted")
	}
}

func TestDevMode(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logs}, nil))
	// Unregistered AppID and no Redis: any HTTP or Redis call would fail.
	c, err := wechat.New(wechat.Config{AppID: "wx-dev-unregistered", DevMode: true}, nil, logger)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx := context.Background()

	logins := []struct {
		code, openID string
		wantErr      error
	}{
		{"dev:alice", "dev_alice", nil},
		{"dev:worker-01_x", "dev_worker-01_x", nil},
		{"dev:Alice", "", wechat.ErrInvalidCode},
		{"dev:", "", wechat.ErrInvalidCode},
		{"dev:" + strings.Repeat("a", 33), "", wechat.ErrInvalidCode},
		{"alice", "", wechat.ErrInvalidCode},
		{"real-wechat-code", "", wechat.ErrInvalidCode},
	}
	for _, tt := range logins {
		s, err := c.Code2Session(ctx, tt.code)
		if !errors.Is(err, tt.wantErr) || s.OpenID != tt.openID {
			t.Errorf("Code2Session(%q) = %q, %v; want %q, %v", tt.code, s.OpenID, err, tt.openID, tt.wantErr)
		}
		if err == nil && s.SessionKey == "" {
			t.Errorf("Code2Session(%q): empty session key", tt.code)
		}
	}
	s1, _ := c.Code2Session(ctx, "dev:alice")
	s2, _ := c.Code2Session(ctx, "dev:alice")
	if s1.SessionKey == s2.SessionKey {
		t.Error("dev session keys repeat")
	}

	phones := []struct {
		code, want string
		wantErr    error
	}{
		{"dev:13800138000", "13800138000", nil},
		{"dev:1380013800", "", wechat.ErrInvalidCode},
		{"dev:1380013800x", "", wechat.ErrInvalidCode},
		{"13800138000", "", wechat.ErrInvalidCode},
	}
	for _, tt := range phones {
		got, err := c.PhoneNumber(ctx, tt.code)
		if got != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("PhoneNumber(%q) = %q, %v; want %q, %v", tt.code, got, err, tt.want, tt.wantErr)
		}
	}

	if v, err := c.MsgSecCheck(ctx, "dev_alice", wechat.SceneComment, "违规"); v != wechat.VerdictPass || err != nil {
		t.Errorf("MsgSecCheck = %q, %v; want pass", v, err)
	}
	mc, err := c.MediaCheckAsync(ctx, "dev_alice", "http://127.0.0.1/media/1.jpg")
	if err != nil || mc.Verdict != wechat.VerdictPass || !strings.HasPrefix(mc.TraceID, "dev-") {
		t.Errorf("MediaCheckAsync = %+v, %v; want dev- trace and pass", mc, err)
	}
	err = c.SendSubscribe(ctx, wechat.SubscribeMessage{ToOpenID: "dev_alice", TemplateID: "tpl-dev-42", Data: map[string]string{"thing1": "审核通过"}})
	if err != nil {
		t.Fatalf("SendSubscribe: %v", err)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if !strings.Contains(out, "tpl-dev-42") || !strings.Contains(out, "审核通过") {
		t.Errorf("dev subscribe message not logged; log:\n%s", out)
	}
	if _, err := c.AccessToken(ctx); err == nil {
		t.Error("dev mode handed out an access token")
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestDevOpenID(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"alice":                 "dev_alice",
		"w-1_2":                 "dev_w-1_2",
		"":                      "",
		"Alice":                 "",
		"a b":                   "",
		"张三":                    "",
		strings.Repeat("a", 32): "dev_" + strings.Repeat("a", 32),
		strings.Repeat("a", 33): "",
	}
	for name, want := range tests {
		if got := wechat.DevOpenID(name); got != want {
			t.Errorf("DevOpenID(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	t.Parallel()
	rdb := testRedis(t)
	tests := []struct {
		name string
		cfg  wechat.Config
		rdb  bool
	}{
		{"no app id", wechat.Config{AppSecret: "s"}, true},
		{"no secret", wechat.Config{AppID: "wx1"}, true},
		{"no redis", wechat.Config{AppID: "wx1", AppSecret: "s"}, false},
		{"unknown miniprogram state", wechat.Config{AppID: "wx1", AppSecret: "s", MiniprogramState: "beta"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rdb
			if !tt.rdb {
				r = nil
			}
			if _, err := wechat.New(tt.cfg, r, nil); err == nil {
				t.Fatal("New accepted an incomplete config")
			}
		})
	}
}

func TestSessionKeyNeverPrinted(t *testing.T) {
	t.Parallel()
	s := wechat.Session{OpenID: "o_alice", UnionID: "u_alice", SessionKey: "SK-TOP-SECRET"}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("login", "session", s)
	outputs := []string{
		fmt.Sprint(s), fmt.Sprintf("%v", s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s), fmt.Sprintf("%s", s), //nolint:staticcheck // every formatting verb must hide the key
		logs.String(),
	}
	for _, out := range outputs {
		if strings.Contains(out, "SK-TOP-SECRET") {
			t.Errorf("session key printed: %s", out)
		}
		if !strings.Contains(out, "o_alice") {
			t.Errorf("openid missing from %s", out)
		}
	}
}

func TestCancelledCallIsUpstreamAndContextError(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fake.AddCode(a.appID, "code-cancel", "o_x", "", "sk-X-secret==")
	_, err := a.client.Code2Session(ctx, "code-cancel")
	if !errors.Is(err, wechat.ErrUpstream) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrUpstream and context.Canceled", err)
	}
	if strings.Contains(err.Error(), a.secret) || strings.Contains(err.Error(), "code-cancel") {
		t.Fatalf("error %q leaks credentials", err)
	}
}

func TestRedisOutageDoesNotFetchTokens(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	appID, secret := "wx"+randHex(8), "secret-"+randHex(8)
	fake.RegisterApp(appID, secret)
	c, err := wechat.New(wechat.Config{AppID: appID, AppSecret: secret}, rdb, nil)
	if err != nil {
		t.Fatal(err)
	}
	mr.Close()
	_, err = c.MsgSecCheck(context.Background(), "o_1", wechat.SceneComment, "你好")
	if !errors.Is(err, wechat.ErrUpstream) || !wechat.IsRetryable(err) {
		t.Fatalf("err = %v, want retryable ErrUpstream", err)
	}
	// Each fetch invalidates the other replicas' token and uses up the daily
	// quota, so without the shared cache no token may be fetched at all.
	if n := fake.TokenFetches(appID); n != 0 {
		t.Fatalf("fetched %d tokens while Redis was down, want 0", n)
	}
}
