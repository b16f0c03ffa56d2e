package repository_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"qjmz/repository"
	"qjmz/repository/repotest"
)

func TestReviewQueueOrderLeaseAndDeadLetter(t *testing.T) {
	ctx := context.Background()
	rdb, prefix, _ := repotest.Redis(t)
	q := repository.NewReviewQueue(rdb, prefix, 2)
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	town := "TOWN1"

	// Clean old record, risky newer record, clean newer record.
	must(t, q.Enqueue(ctx, town, 1, "clean-old", repository.Priority(1, now.Add(-3*time.Hour))))
	must(t, q.Enqueue(ctx, town, 1, "risky-new", repository.Priority(0, now.Add(-time.Hour))))
	must(t, q.Enqueue(ctx, town, 1, "clean-new", repository.Priority(1, now.Add(-time.Minute))))
	must(t, q.Enqueue(ctx, town, 1, "clean-new", repository.Priority(1, now))) // duplicate: ignored

	c, ok, err := q.Claim(ctx, town, 1, "alice", now, 10*time.Minute)
	if err != nil || !ok || c.RecordID != "risky-new" {
		t.Fatalf("first claim = %+v %v %v, want the risky record first", c, ok, err)
	}
	// Alice asking again gets the same lease, not a second record.
	c2, _, _ := q.Claim(ctx, town, 1, "alice", now, 10*time.Minute)
	if c2.RecordID != "risky-new" {
		t.Fatalf("repeat claim by the same reviewer = %s", c2.RecordID)
	}
	b, _, _ := q.Claim(ctx, town, 1, "bob", now, 10*time.Minute)
	if b.RecordID != "clean-old" {
		t.Fatalf("bob got %s, want clean-old (older first within the same risk)", b.RecordID)
	}
	if h, _ := q.Holder(ctx, town, 1, "risky-new", now); h != "alice" {
		t.Fatalf("holder = %q", h)
	}
	// Alice vanishes; after her lease ends the record goes back to the front.
	later := now.Add(11 * time.Minute)
	if h, _ := q.Holder(ctx, town, 1, "risky-new", later); h != "" {
		t.Fatalf("expired lease still held by %q", h)
	}
	c3, _, _ := q.Claim(ctx, town, 1, "carol", later, 10*time.Minute)
	if c3.RecordID != "risky-new" || c3.Deliveries != 2 {
		t.Fatalf("abandoned record not returned first: %+v", c3)
	}
	// Carol abandons it too: a third delivery exceeds MaxDeliveries=2.
	evenLater := later.Add(11 * time.Minute)
	d, _, _ := q.Claim(ctx, town, 1, "dave", evenLater, 10*time.Minute)
	if d.RecordID == "risky-new" {
		t.Fatal("record delivered past MaxDeliveries")
	}
	dead, _ := q.DeadLetters(ctx, town, 1)
	if len(dead) != 1 || dead[0] != "risky-new" {
		t.Fatalf("dead letters = %v", dead)
	}
	// Decision releases wherever the record is.
	must(t, q.Release(ctx, town, 1, d.RecordID))
	if h, _ := q.Holder(ctx, town, 1, d.RecordID, evenLater); h != "" {
		t.Fatal("released record still held")
	}
}

func TestReviewQueueNoDoubleClaim(t *testing.T) {
	ctx := context.Background()
	rdb, prefix, _ := repotest.Redis(t)
	q := repository.NewReviewQueue(rdb, prefix, 5)
	now := time.Now()
	for i := range 20 {
		must(t, q.Enqueue(ctx, "T", 2, fmt.Sprintf("r%02d", i), float64(i)))
	}
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			who := fmt.Sprintf("rev%d", i)
			c, ok, err := q.Claim(ctx, "T", 2, who, now, time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			if !ok {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if prev, dup := seen[c.RecordID]; dup {
				t.Errorf("%s claimed by %s and %s", c.RecordID, prev, who)
			}
			seen[c.RecordID] = who
		}()
	}
	wg.Wait()
	if len(seen) != 20 {
		t.Fatalf("%d records handed out, want all 20 exactly once", len(seen))
	}
}

func TestReviewQueueReconcileAfterFlush(t *testing.T) {
	ctx := context.Background()
	rdb, prefix, _ := repotest.Redis(t)
	q := repository.NewReviewQueue(rdb, prefix, 5)
	must(t, q.Enqueue(ctx, "T", 1, "gone", 1))
	must(t, q.Enqueue(ctx, "T", 1, "stay", 2))
	// Redis lost "stay"? No: simulate a flush of everything, then rebuild.
	iter := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		rdb.Del(ctx, iter.Val())
	}
	pending := []repository.QueueEntry{{RecordID: "stay", Priority: 2}, {RecordID: "new", Priority: 1}}
	added, removed, err := q.Reconcile(ctx, "T", 1, pending)
	if err != nil || added != 2 || removed != 0 {
		t.Fatalf("reconcile after flush: added=%d removed=%d err=%v", added, removed, err)
	}
	must(t, q.Enqueue(ctx, "T", 1, "stale", 0))
	_, removed, _ = q.Reconcile(ctx, "T", 1, pending)
	if removed != 1 {
		t.Fatalf("record no longer pending not removed (removed=%d)", removed)
	}
	c, _, _ := q.Claim(ctx, "T", 1, "x", time.Now(), time.Minute)
	if c.RecordID != "new" {
		t.Fatalf("claim after reconcile = %s, want new (lowest priority value)", c.RecordID)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
