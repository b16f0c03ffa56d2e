package wechat_test

import (
	"context"
	"testing"
	"time"

	"github.com/silenceper/wechat/v2/cache"

	"qjmz/pkg/wechat"
)

func TestRedisCacheSpeaksSilenceperInterface(t *testing.T) {
	t.Parallel()
	rdb := testRedis(t)
	var c cache.Cache = wechat.NewRedisCache(rdb)
	ctx := context.Background()
	key := "wechat-cache-test-" + randHex(8)

	if c.Get(key) != nil || c.IsExist(key) {
		t.Fatal("missing key reported present")
	}
	if err := cache.SetContext(ctx, c, key, "tok-1", time.Hour); err != nil {
		t.Fatal(err)
	}
	// silenceper does val.(string): anything else panics in production.
	if got, ok := cache.GetContext(ctx, c, key).(string); !ok || got != "tok-1" {
		t.Fatalf("Get = %#v, want string tok-1", cache.GetContext(ctx, c, key))
	}
	if ttl := rdb.TTL(ctx, key).Val(); ttl <= 0 || ttl > time.Hour {
		t.Fatalf("TTL = %v, want (0, 1h]", ttl)
	}
	if err := c.Set(key, []byte("tok-2"), time.Hour); err != nil || c.Get(key) != "tok-2" {
		t.Fatalf("[]byte value: Get = %#v, err %v", c.Get(key), err)
	}
	if err := c.Set(key, 42, time.Hour); err == nil {
		t.Fatal("unsupported value type stored")
	}
	if err := cache.DeleteContext(ctx, c, key); err != nil || cache.IsExistContext(ctx, c, key) {
		t.Fatalf("Delete left the key (err %v)", err)
	}
}

func TestRedisCacheNonPositiveTTLNeverMeansForever(t *testing.T) {
	t.Parallel()
	rdb := testRedis(t)
	c := wechat.NewRedisCache(rdb)
	ctx := context.Background()
	for _, ttl := range []time.Duration{0, -300 * time.Second} {
		key := "wechat-cache-ttl-" + randHex(8)
		if err := c.SetContext(ctx, key, "old", time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := c.SetContext(ctx, key, "short-lived", ttl); err != nil {
			t.Fatalf("Set with TTL %v: %v", ttl, err)
		}
		if v := c.GetContext(ctx, key); v != nil {
			t.Fatalf("TTL %v: cache still holds %v, want nothing (neither forever nor the old value)", ttl, v)
		}
	}
}
