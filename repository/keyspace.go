package repository

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Keyspace is the Redis side of the data layer. Every key carries the
// configured prefix so tests and tenants sharing one Redis never collide.
type Keyspace struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewKeyspace wraps a Redis client with a key prefix.
func NewKeyspace(rdb redis.UniversalClient, prefix string) *Keyspace {
	return &Keyspace{rdb: rdb, prefix: prefix}
}

// Client exposes the client (rate limiter, health check).
func (k *Keyspace) Client() redis.UniversalClient { return k.rdb }

// Key prefixes a key.
func (k *Keyspace) Key(parts ...string) string {
	s := k.prefix
	for i, p := range parts {
		if i > 0 {
			s += ":"
		}
		s += p
	}
	return s
}

// FirstUse records key and reports whether this is its first use within ttl
// (SET NX): the guard against replayed one-time values.
func (k *Keyspace) FirstUse(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	ok, err := k.rdb.SetNX(ctx, k.Key("once", key), 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("keyspace.first_use: %w", err)
	}
	return ok, nil
}
