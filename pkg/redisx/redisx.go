// Package redisx builds the one Redis client the service uses: a go-redis
// UniversalClient against real Redis (single, sentinel or cluster), or the
// same client against an in-process Redis-compatible server in embedded mode.
package redisx

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Options selects the Redis deployment.
type Options struct {
	Addrs      []string // empty: start the embedded server
	MasterName string   // sentinel
	Password   string
	DB         int
}

// Client is the client plus a close function that also stops the embedded
// server when there is one.
type Client struct {
	redis.UniversalClient
	embedded *miniredis.Miniredis
}

// Open connects (or starts the embedded server) and pings.
func Open(ctx context.Context, o Options) (*Client, error) {
	c := &Client{}
	addrs := o.Addrs
	if len(addrs) == 0 {
		m := miniredis.NewMiniRedis()
		// Without this, TTLs only move when a test fast-forwards: rate
		// limits and leases would never expire in a running server.
		m.ClockTTL(true)
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("redisx: start embedded server: %w", err)
		}
		c.embedded = m
		addrs = []string{m.Addr()}
	}
	c.UniversalClient = redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:        addrs,
		MasterName:   o.MasterName,
		Password:     o.Password,
		DB:           o.DB,
		DialTimeout:  3 * time.Second,
		ReadTimeout:  2 * time.Second,
		WriteTimeout: 2 * time.Second,
	})
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("redisx: ping %v: %w", addrs, err)
	}
	return c, nil
}

// Embedded reports whether this client talks to the in-process server.
func (c *Client) Embedded() bool { return c.embedded != nil }

// Close closes the client and stops the embedded server.
func (c *Client) Close() error {
	err := c.UniversalClient.Close()
	if c.embedded != nil {
		c.embedded.Close()
	}
	return err
}
