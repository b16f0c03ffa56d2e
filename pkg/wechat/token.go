package wechat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/silenceper/wechat/v2/cache"
	"github.com/silenceper/wechat/v2/credential"
)

// tokenLifetimeMargin is what silenceper subtracts from expires_in before
// caching, so a cached token is never used in its last 25 minutes.
const tokenLifetimeMargin = 1500 * time.Second

// RedisCache implements silenceper's cache.Cache and cache.ContextCache on a
// go-redis v9 client, so every replica sees the same access token. The
// built-in cache.Memory races under -race and cannot be shared, and
// silenceper's own Redis cache needs go-redis v8.
type RedisCache struct {
	rdb redis.UniversalClient
}

var _ cache.ContextCache = (*RedisCache)(nil)

// NewRedisCache wraps rdb.
func NewRedisCache(rdb redis.UniversalClient) *RedisCache {
	return &RedisCache{rdb: rdb}
}

// Get returns the value as a string (silenceper type-asserts it), or nil when
// the key is missing or Redis fails.
func (r *RedisCache) Get(key string) any {
	return r.GetContext(context.Background(), key)
}

// GetContext is Get with a context.
func (r *RedisCache) GetContext(ctx context.Context, key string) any {
	v, err := r.rdb.Get(ctx, key).Result()
	if err != nil {
		return nil
	}
	return v
}

// Set stores val for timeout.
func (r *RedisCache) Set(key string, val any, timeout time.Duration) error {
	return r.SetContext(context.Background(), key, val, timeout)
}

// SetContext stores val for timeout. A timeout ≤ 0 deletes the key instead:
// silenceper computes expires_in − 1500 s, and for a short-lived credential
// that is ≤ 0, which Redis would otherwise keep forever.
func (r *RedisCache) SetContext(ctx context.Context, key string, val any, timeout time.Duration) error {
	var s string
	switch v := val.(type) {
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		return fmt.Errorf("wechat cache: unsupported value type %T", val)
	}
	if timeout <= 0 {
		return r.rdb.Del(ctx, key).Err()
	}
	return r.rdb.Set(ctx, key, s, timeout).Err()
}

// IsExist reports whether key is set.
func (r *RedisCache) IsExist(key string) bool {
	return r.IsExistContext(context.Background(), key)
}

// IsExistContext reports whether key is set.
func (r *RedisCache) IsExistContext(ctx context.Context, key string) bool {
	n, err := r.rdb.Exists(ctx, key).Result()
	return err == nil && n > 0
}

// Delete removes key.
func (r *RedisCache) Delete(key string) error {
	return r.DeleteContext(context.Background(), key)
}

// DeleteContext removes key.
func (r *RedisCache) DeleteContext(ctx context.Context, key string) error {
	return r.rdb.Del(ctx, key).Err()
}

// compareAndDelete drops a token only if it is still the one that failed, so
// a replica that got 40001 does not throw away the fresh token another
// replica has just stored.
const compareAndDelete = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`

// tokenSource is the access-token handle for one AppID. It replaces
// silenceper's DefaultAccessToken because that one reads the cache without the
// caller's context, blocks on a mutex that ignores cancellation, and turns
// WeChat's errcode into plain text.
type tokenSource struct {
	appID, secret string
	cache         *RedisCache
	key           string
	// fetch admits one fetch per process at a time; a channel rather than a
	// mutex so waiting callers still honour their context. Replicas may
	// still fetch concurrently: WeChat keeps the previous token valid for a
	// few minutes, so both tokens work.
	fetch  chan struct{}
	cad    *redis.Script
	client *Client
}

func newTokenSource(c *Client, rdb redis.UniversalClient) *tokenSource {
	return &tokenSource{
		appID:  c.cfg.AppID,
		secret: c.cfg.AppSecret,
		cache:  NewRedisCache(rdb),
		// Same key as silenceper, so a silenceper MiniProgram built on the
		// same Redis shares the token instead of invalidating it.
		key:    credential.CacheKeyMiniProgramPrefix + "_access_token_" + c.cfg.AppID,
		fetch:  make(chan struct{}, 1),
		cad:    redis.NewScript(compareAndDelete),
		client: c,
	}
}

// cached returns the stored token, "" when there is none. A Redis failure is
// an error rather than a miss: fetching on every call would exhaust the daily
// token quota and keep invalidating the other replicas' token.
func (t *tokenSource) cached(ctx context.Context) (string, error) {
	v, err := t.cache.rdb.Get(ctx, t.key).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("wechat access token: %w: read cache: %w", ErrUpstream, err)
	}
	return v, nil
}

func (t *tokenSource) token(ctx context.Context) (string, error) {
	if tok, err := t.cached(ctx); err != nil || tok != "" {
		return tok, err
	}
	select {
	case t.fetch <- struct{}{}:
		defer func() { <-t.fetch }()
	case <-ctx.Done():
		return "", fmt.Errorf("wechat access token: %w: %w", ErrUpstream, ctx.Err())
	}
	// Someone may have stored a token while we waited.
	if tok, err := t.cached(ctx); err != nil || tok != "" {
		return tok, err
	}

	uri := "https://api.weixin.qq.com/cgi-bin/token?grant_type=client_credential&appid=" +
		url.QueryEscape(t.appID) + "&secret=" + url.QueryEscape(t.secret)
	res, err := credential.GetTokenFromServerContext(ctx, uri)
	switch {
	case err != nil && res.ErrCode != 0:
		return "", t.client.apiError("token", res.ErrCode, res.ErrMsg)
	case err != nil:
		return "", t.client.transportError("token", err)
	case res.AccessToken == "":
		return "", fmt.Errorf("wechat token: %w: empty access_token", ErrUpstream)
	}
	ttl := time.Duration(res.ExpiresIn)*time.Second - tokenLifetimeMargin
	if err := t.cache.SetContext(ctx, t.key, res.AccessToken, ttl); err != nil {
		// The token is good; failing the call would only waste it.
		t.client.log.WarnContext(ctx, "wechat access token not cached", slog.Any("error", err))
	}
	return res.AccessToken, nil
}

// invalidate forgets tok if it is still the cached token.
func (t *tokenSource) invalidate(ctx context.Context, tok string) error {
	if err := t.cad.Run(ctx, t.cache.rdb, []string{t.key}, tok).Err(); err != nil {
		return fmt.Errorf("wechat access token: %w: invalidate: %w", ErrUpstream, err)
	}
	return nil
}

// staticToken hands silenceper the token already chosen for one call, so the
// caller knows exactly which token WeChat rejected.
type staticToken string

func (s staticToken) GetAccessToken() (string, error) { return string(s), nil }

func (s staticToken) GetAccessTokenContext(context.Context) (string, error) { return string(s), nil }
