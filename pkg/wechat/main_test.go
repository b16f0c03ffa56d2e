package wechat_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"qjmz/pkg/wechat"
	"qjmz/pkg/wechat/wechattest"
)

// fake is the one fake WeChat for the whole test binary: util.DefaultHTTPClient
// is a package variable, so it is pointed at the fake once, here, and never
// reassigned while tests run. Tests isolate themselves by AppID.
var fake *wechattest.Server

func TestMain(m *testing.M) {
	fake = wechattest.NewServer()
	restore := fake.Install()
	code := m.Run()
	restore()
	fake.Close()
	os.Exit(code)
}

// testRedis returns a real Redis when QJMZ_TEST_REDIS_ADDR is set (keys do
// not collide: they contain the per-test AppID), else an in-process one.
func testRedis(t testing.TB) redis.UniversalClient {
	t.Helper()
	addr := os.Getenv("QJMZ_TEST_REDIS_ADDR")
	if addr == "" {
		addr = miniredis.RunT(t).Addr()
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

type testApp struct {
	appID, secret string
	rdb           redis.UniversalClient
	client        *wechat.Client
}

// newApp registers a fresh AppID with the fake and builds a Client for it.
func newApp(t testing.TB) testApp {
	t.Helper()
	a := testApp{appID: "wx" + randHex(8), secret: "secret-" + randHex(16), rdb: testRedis(t)}
	fake.RegisterApp(a.appID, a.secret)
	a.client = a.newClient(t)
	return a
}

// newClient builds another Client (another replica) for the same app and Redis.
func (a testApp) newClient(t testing.TB) *wechat.Client {
	t.Helper()
	c, err := wechat.New(wechat.Config{AppID: a.appID, AppSecret: a.secret, PushToken: "push-token"}, a.rdb, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func tokenKey(appID string) string {
	return fmt.Sprintf("gowechat_miniprogram__access_token_%s", appID)
}
