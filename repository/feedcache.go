package repository

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// FeedCache keeps rendered feed pages in Redis for a short time.
//
// Invalidation is one INCR: every page key carries the current generation
// (<prefix>feed:<gen>:<name>), so bumping <prefix>feed:gen orphans every
// page at once and the orphans expire on their own TTL. Each command touches
// one key, so the scheme works unchanged on Redis Cluster.
//
// Redis is an accelerator here, never a dependency: every call has a short
// timeout, and after a failure the cache stays out of the way for a cool-off
// period, so a dead or hung Redis costs the feed one timeout per cool-off
// instead of one per request. The database keeps serving.
type FeedCache struct {
	rdb     redis.UniversalClient
	prefix  string
	ttl     time.Duration
	timeout time.Duration
	coolOff time.Duration
	log     *slog.Logger
	now     func() time.Time

	downUntil atomic.Int64 // unix nanos; the cache is skipped until then
	// dirty is set when an invalidation could not be written: until one
	// succeeds, this replica reads nothing from the cache, because pages
	// from before the change may still be there.
	dirty atomic.Bool
}

// FeedCacheOptions tunes a FeedCache; zero values take the defaults.
type FeedCacheOptions struct {
	TTL     time.Duration // default 60 s
	Timeout time.Duration // per command, default 100 ms
	CoolOff time.Duration // after a failure, default 2 s
	Logger  *slog.Logger
	Now     func() time.Time
}

// NewFeedCache builds the cache on a client and key prefix.
func NewFeedCache(rdb redis.UniversalClient, prefix string, o FeedCacheOptions) *FeedCache {
	c := &FeedCache{rdb: rdb, prefix: prefix, ttl: o.TTL, timeout: o.Timeout, coolOff: o.CoolOff, log: o.Logger, now: o.Now}
	if c.ttl <= 0 {
		c.ttl = 60 * time.Second
	}
	if c.timeout <= 0 {
		c.timeout = 100 * time.Millisecond
	}
	if c.coolOff <= 0 {
		c.coolOff = 2 * time.Second
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

func (c *FeedCache) genKey() string { return c.prefix + "feed:gen" }

func (c *FeedCache) pageKey(gen, name string) string { return c.prefix + "feed:" + gen + ":" + name }

func (c *FeedCache) available() bool { return c.now().UnixNano() >= c.downUntil.Load() }

// failed opens the cool-off window; the warning is logged once per window.
func (c *FeedCache) failed(ctx context.Context, op string, err error) {
	until := c.now().Add(c.coolOff).UnixNano()
	if prev := c.downUntil.Swap(until); prev < c.now().UnixNano() {
		c.log.WarnContext(ctx, "feed cache: Redis unavailable, serving from the database",
			"op", op, "cool_off", c.coolOff.String(), "err", err)
	}
}

// Lookup returns the cached page called name and the generation it was
// looked up under. gen is "" when Redis could not be asked: the caller must
// then not Store what it computes.
func (c *FeedCache) Lookup(ctx context.Context, name string) (val []byte, gen string, ok bool) {
	if !c.available() {
		return nil, "", false
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if c.dirty.Load() {
		if err := c.bump(ctx); err != nil {
			c.failed(ctx, "invalidate", err)
			return nil, "", false
		}
		c.dirty.Store(false)
	}
	gen, err := c.rdb.Get(ctx, c.genKey()).Result()
	switch {
	case errors.Is(err, redis.Nil):
		gen = "0"
	case err != nil:
		c.failed(ctx, "get generation", err)
		return nil, "", false
	}
	val, err = c.rdb.Get(ctx, c.pageKey(gen, name)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, gen, false
	case err != nil:
		c.failed(ctx, "get page", err)
		return nil, "", false
	}
	return val, gen, true
}

// Store caches a page under the generation Lookup returned. A page computed
// from data read before an invalidation lands under the old generation,
// which nobody reads any more: no stale page can outlive an invalidation.
func (c *FeedCache) Store(ctx context.Context, gen, name string, val []byte) {
	if gen == "" || !c.available() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := c.rdb.Set(ctx, c.pageKey(gen, name), val, c.ttl).Err(); err != nil {
		c.failed(ctx, "set page", err)
	}
}

// Invalidate drops every cached page by moving to a new generation. It is
// tried even during a cool-off; when it fails, this replica stops reading
// the cache until a later invalidation gets through, and other replicas
// see the change within the TTL.
func (c *FeedCache) Invalidate(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	if err := c.bump(ctx); err != nil {
		c.dirty.Store(true)
		c.failed(ctx, "invalidate", err)
		return
	}
	c.dirty.Store(false)
}

// bump increments the generation. A generation key that was lost (eviction,
// restart without persistence) restarts at the current time in
// milliseconds rather than at 1, so it cannot come back to a number whose
// pages are still cached.
func (c *FeedCache) bump(ctx context.Context) error {
	n, err := c.rdb.Incr(ctx, c.genKey()).Result()
	if err != nil {
		return err
	}
	if n == 1 {
		return c.rdb.Set(ctx, c.genKey(), strconv.FormatInt(c.now().UnixMilli(), 10), 0).Err()
	}
	return nil
}
