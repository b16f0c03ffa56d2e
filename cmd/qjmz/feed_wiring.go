package main

import (
	"time"

	"github.com/redis/go-redis/v9"
)

// feedRedis returns a client for the feed cache on the same Redis as
// a.Redis but with 100 ms timeouts that follow the request context: the
// shared client waits up to 2 s for a hung server, far too long for a page
// the database can serve itself. It is closed with the app.
func (a *App) feedRedis() redis.UniversalClient {
	const timeout = 100 * time.Millisecond
	var c redis.UniversalClient
	switch base := a.Redis.UniversalClient.(type) {
	case *redis.Client:
		o := *base.Options()
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = timeout, timeout, timeout, timeout
		o.ContextTimeoutEnabled = true
		c = redis.NewClient(&o)
	case *redis.ClusterClient:
		o := *base.Options()
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = timeout, timeout, timeout, timeout
		o.ContextTimeoutEnabled = true
		c = redis.NewClusterClient(&o)
	default:
		return a.Redis // unknown kind: share the main client (the cache still bounds each call by context)
	}
	a.closers = append(a.closers, c.Close)
	return c
}
