package schedule

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

func client(t *testing.T) redis.UniversalClient {
	mr := miniredis.RunT(t)
	mr.ClockTTL(true)
	c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestLockIsExclusiveAndOwned(t *testing.T) {
	ctx := context.Background()
	rdb := client(t)
	a := NewRedisLocker(rdb, "t:", time.Minute, 0)
	b := NewRedisLocker(rdb, "t:", time.Minute, 0)
	la, err := a.Lock(ctx, "reconcile")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Lock(ctx, "reconcile"); !errors.Is(err, ErrLocked) {
		t.Fatalf("second replica got the lock: %v", err)
	}
	if _, err := b.Lock(ctx, "other-job"); err != nil {
		t.Fatalf("different job blocked: %v", err)
	}
	if err := la.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Lock(ctx, "reconcile"); err != nil {
		t.Fatalf("lock not released: %v", err)
	}
}

func TestMinHoldKeepsLockAfterShortRun(t *testing.T) {
	ctx := context.Background()
	rdb := client(t)
	l := NewRedisLocker(rdb, "t:", time.Minute, 10*time.Second)
	lk, _ := l.Lock(ctx, "job")
	_ = lk.Unlock(ctx)
	if _, err := l.Lock(ctx, "job"); !errors.Is(err, ErrLocked) {
		t.Fatalf("a short run released the lock before MinHold: %v", err)
	}
}

// TestOneReplicaRunsEachTick runs two schedulers (two replicas) on one
// Redis: each tick's job runs once, not twice.
func TestOneReplicaRunsEachTick(t *testing.T) {
	rdb := client(t)
	var running, maxRunning, runs atomic.Int32
	job := func(ctx context.Context) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := maxRunning.Load()
			if n <= m || maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		runs.Add(1)
		time.Sleep(50 * time.Millisecond)
		return nil
	}
	var scheds []*Scheduler
	for range 2 {
		s, err := New(NewRedisLocker(rdb, "t:", 5*time.Second, 150*time.Millisecond), slog.New(slog.DiscardHandler),
			Job{Name: "relay", Every: 200 * time.Millisecond, Run: job})
		if err != nil {
			t.Fatal(err)
		}
		scheds = append(scheds, s)
	}
	var wg sync.WaitGroup
	for _, s := range scheds {
		wg.Add(1)
		go func() { defer wg.Done(); s.Start() }()
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for runs.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, s := range scheds {
		_ = s.Stop()
	}
	if runs.Load() < 3 {
		t.Fatalf("job ran %d times", runs.Load())
	}
	if maxRunning.Load() != 1 {
		t.Fatalf("job ran on %d replicas at once", maxRunning.Load())
	}
}
