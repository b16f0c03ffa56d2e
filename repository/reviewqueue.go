package repository

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// ReviewQueue is the Redis side of review: one queue per (town, level),
// ordered by priority (risk first, then age). A claim is a lease; a lease
// that runs out puts the record back; a record handed out too many times
// goes to a dead-letter list. MySQL stays the source of truth: Reconcile
// rebuilds a queue from the pending records at any time.
//
// Every key of one queue shares the hash tag {rq:<town>:<level>}, so each
// script touches one Redis Cluster slot.
type ReviewQueue struct {
	rdb    redis.UniversalClient
	prefix string
	// MaxDeliveries is how often a record may be claimed without a decision
	// before it is parked in the dead-letter list.
	MaxDeliveries int
}

// NewReviewQueue builds the queue store.
func NewReviewQueue(rdb redis.UniversalClient, prefix string, maxDeliveries int) *ReviewQueue {
	if maxDeliveries <= 0 {
		maxDeliveries = 5
	}
	return &ReviewQueue{rdb: rdb, prefix: prefix, MaxDeliveries: maxDeliveries}
}

type queueKeys struct{ ready, leases, holder, prio, deliveries, dead string }

func (q *ReviewQueue) keys(town string, level int) queueKeys {
	tag := fmt.Sprintf("%s{rq:%s:%d}", q.prefix, town, level)
	return queueKeys{ready: tag + ":ready", leases: tag + ":leases", holder: tag + ":holder",
		prio: tag + ":prio", deliveries: tag + ":deliveries", dead: tag + ":dead"}
}

func (k queueKeys) list() []string {
	return []string{k.ready, k.leases, k.holder, k.prio, k.deliveries, k.dead}
}

// Priority orders the queue: lower is served first. Risky records (blocked
// ones never get here; warn > none) come before clean ones, older before
// newer within the same risk.
func Priority(riskRank int, submittedAt time.Time) float64 {
	// riskRank 0 = warn flags (review first), 1 = clean. Millisecond ages fit
	// easily in a float64 mantissa next to a rank of 1e13.
	return float64(riskRank)*1e13 + float64(submittedAt.UnixMilli())
}

// Enqueue adds a record (no-op if it is already queued or leased).
func (q *ReviewQueue) Enqueue(ctx context.Context, town string, level int, recordID string, priority float64) error {
	k := q.keys(town, level)
	_, err := enqueueScript.Run(ctx, q.rdb, k.list(), recordID, strconv.FormatFloat(priority, 'f', -1, 64)).Result()
	if err != nil {
		return fmt.Errorf("reviewqueue.enqueue: %w", err)
	}
	return nil
}

var enqueueScript = redis.NewScript(`
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
if redis.call('LPOS', KEYS[6], ARGV[1]) then return 0 end
redis.call('HSET', KEYS[4], ARGV[1], ARGV[2])
return redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1])
`)

// Claimed is a lease on one record.
type Claimed struct {
	RecordID   string
	Deliveries int
	LeaseUntil time.Time
}

// Claim leases the next record to reviewer for ttl. Expired leases are
// returned to the queue first, and records over MaxDeliveries are moved to
// the dead-letter list. Found is false when the queue is empty. A reviewer
// who already holds a lease in this queue gets that record again, so a
// double tap never takes two records.
func (q *ReviewQueue) Claim(ctx context.Context, town string, level int, reviewer string, now time.Time, ttl time.Duration) (Claimed, bool, error) {
	k := q.keys(town, level)
	res, err := claimScript.Run(ctx, q.rdb, k.list(), now.UnixMilli(), now.Add(ttl).UnixMilli(), reviewer, q.MaxDeliveries).Slice()
	if errors.Is(err, redis.Nil) {
		return Claimed{}, false, nil
	}
	if err != nil {
		return Claimed{}, false, fmt.Errorf("reviewqueue.claim: %w", err)
	}
	id, _ := res[0].(string)
	n, _ := res[1].(int64)
	until, _ := res[2].(int64)
	return Claimed{RecordID: id, Deliveries: int(n), LeaseUntil: time.UnixMilli(until)}, true, nil
}

var claimScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  local p = redis.call('HGET', KEYS[4], id) or now
  redis.call('ZADD', KEYS[1], p, id)
end
-- the same reviewer asking again gets the lease they hold
local held = redis.call('HGETALL', KEYS[3])
for i = 1, #held, 2 do
  if held[i+1] == ARGV[3] then
    local id = held[i]
    redis.call('ZADD', KEYS[2], ARGV[2], id)
    return {id, tonumber(redis.call('HGET', KEYS[5], id) or 1), tonumber(ARGV[2])}
  end
end
while true do
  local popped = redis.call('ZPOPMIN', KEYS[1])
  if #popped == 0 then return nil end
  local id = popped[1]
  local n = redis.call('HINCRBY', KEYS[5], id, 1)
  if n > tonumber(ARGV[4]) then
    redis.call('RPUSH', KEYS[6], id)
    redis.call('HDEL', KEYS[4], id)
  else
    redis.call('ZADD', KEYS[2], ARGV[2], id)
    redis.call('HSET', KEYS[3], id, ARGV[3])
    return {id, n, tonumber(ARGV[2])}
  end
end
`)

// Holder reports who holds the lease on a record ("" if nobody, or the
// lease ran out); Lease also says until when.
func (q *ReviewQueue) Holder(ctx context.Context, town string, level int, recordID string, now time.Time) (string, error) {
	h, _, err := q.Lease(ctx, town, level, recordID, now)
	return h, err
}

// Release removes a record from the queue after a decision (wherever it is).
func (q *ReviewQueue) Release(ctx context.Context, town string, level int, recordID string) error {
	k := q.keys(town, level)
	_, err := releaseScript.Run(ctx, q.rdb, k.list(), recordID).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("reviewqueue.release: %w", err)
	}
	return nil
}

var releaseScript = redis.NewScript(`
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('LREM', KEYS[6], 0, ARGV[1])
return 1
`)

// Unclaim hands a lease back (the reviewer skipped the record).
func (q *ReviewQueue) Unclaim(ctx context.Context, town string, level int, recordID, reviewer string) error {
	k := q.keys(town, level)
	_, err := unclaimScript.Run(ctx, q.rdb, k.list(), recordID, reviewer).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("reviewqueue.unclaim: %w", err)
	}
	return nil
}

var unclaimScript = redis.NewScript(`
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
local p = redis.call('HGET', KEYS[4], ARGV[1])
if p then redis.call('ZADD', KEYS[1], p, ARGV[1]) end
return 1
`)

// QueueEntry is one record waiting in a queue.
type QueueEntry struct {
	RecordID string
	Priority float64
}

// Reconcile makes the queue equal to the pending set from the database:
// missing records are added, records no longer pending are dropped, leases
// and dead letters of pending records are kept.
func (q *ReviewQueue) Reconcile(ctx context.Context, town string, level int, pending []QueueEntry) (added, removed int, err error) {
	k := q.keys(town, level)
	want := make(map[string]float64, len(pending))
	for _, e := range pending {
		want[e.RecordID] = e.Priority
	}
	ready, err := q.rdb.ZRange(ctx, k.ready, 0, -1).Result()
	if err != nil {
		return 0, 0, fmt.Errorf("reviewqueue.reconcile: %w", err)
	}
	leased, err := q.rdb.ZRange(ctx, k.leases, 0, -1).Result()
	if err != nil {
		return 0, 0, fmt.Errorf("reviewqueue.reconcile: %w", err)
	}
	dead, err := q.rdb.LRange(ctx, k.dead, 0, -1).Result()
	if err != nil {
		return 0, 0, fmt.Errorf("reviewqueue.reconcile: %w", err)
	}
	present := map[string]bool{}
	for _, list := range [][]string{ready, leased, dead} {
		for _, id := range list {
			present[id] = true
			if _, ok := want[id]; !ok {
				if err := q.Release(ctx, town, level, id); err != nil {
					return added, removed, err
				}
				removed++
			}
		}
	}
	for id, p := range want {
		if present[id] {
			continue
		}
		if err := q.Enqueue(ctx, town, level, id, p); err != nil {
			return added, removed, err
		}
		added++
	}
	return added, removed, nil
}

// DeadLetters lists records parked after too many deliveries.
func (q *ReviewQueue) DeadLetters(ctx context.Context, town string, level int) ([]string, error) {
	out, err := q.rdb.LRange(ctx, q.keys(town, level).dead, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("reviewqueue.dead: %w", err)
	}
	return out, nil
}

// Requeue moves a dead letter back to the queue with fresh delivery count.
func (q *ReviewQueue) Requeue(ctx context.Context, town string, level int, recordID string, priority float64) error {
	if err := q.Release(ctx, town, level, recordID); err != nil {
		return err
	}
	return q.Enqueue(ctx, town, level, recordID, priority)
}

// Len reports how many records wait (not leased) in a queue.
func (q *ReviewQueue) Len(ctx context.Context, town string, level int) (int64, error) {
	return q.rdb.ZCard(ctx, q.keys(town, level).ready).Result()
}
