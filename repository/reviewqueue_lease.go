package repository

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Lease reports who holds the live lease on a record and until when
// (holder "" when nobody does or the lease ran out).
func (q *ReviewQueue) Lease(ctx context.Context, town string, level int, recordID string, now time.Time) (string, time.Time, error) {
	k := q.keys(town, level)
	until, err := q.rdb.ZScore(ctx, k.leases, recordID).Result()
	if errors.Is(err, redis.Nil) || (err == nil && int64(until) < now.UnixMilli()) {
		return "", time.Time{}, nil
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("reviewqueue.lease: %w", err)
	}
	h, err := q.rdb.HGet(ctx, k.holder, recordID).Result()
	if errors.Is(err, redis.Nil) {
		return "", time.Time{}, nil
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("reviewqueue.lease: %w", err)
	}
	return h, time.UnixMilli(int64(until)), nil
}

// claimedKey keeps, per record, when the current delivery started: a
// repeat claim by the same reviewer extends the lease but must not move
// the start, or time to decision would look shorter than it was. Same hash
// tag as the queue, so it lives in the queue's slot.
func (q *ReviewQueue) claimedKey(town string, level int) string {
	return fmt.Sprintf("%s{rq:%s:%d}:claimed", q.prefix, town, level)
}

// NoteClaim records the start of delivery n of a record to reviewer and
// returns the start of that delivery (the earlier time on a repeat claim).
func (q *ReviewQueue) NoteClaim(ctx context.Context, town string, level int, c Claimed, reviewer string, now time.Time) (time.Time, error) {
	key := q.claimedKey(town, level)
	prev, err := q.rdb.HGet(ctx, key, c.RecordID).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return now, fmt.Errorf("reviewqueue.note_claim: %w", err)
	}
	if parts := strings.Split(prev, "|"); len(parts) == 3 && parts[0] == reviewer && parts[1] == strconv.Itoa(c.Deliveries) {
		if ms, err := strconv.ParseInt(parts[2], 10, 64); err == nil {
			return time.UnixMilli(ms), nil
		}
	}
	v := reviewer + "|" + strconv.Itoa(c.Deliveries) + "|" + strconv.FormatInt(now.UnixMilli(), 10)
	if err := q.rdb.HSet(ctx, key, c.RecordID, v).Err(); err != nil {
		return now, fmt.Errorf("reviewqueue.note_claim: %w", err)
	}
	return now, nil
}

// ClaimStart returns when reviewer's current delivery of a record started
// (zero if unknown).
func (q *ReviewQueue) ClaimStart(ctx context.Context, town string, level int, recordID, reviewer string) (time.Time, error) {
	prev, err := q.rdb.HGet(ctx, q.claimedKey(town, level), recordID).Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("reviewqueue.claim_start: %w", err)
	}
	parts := strings.Split(prev, "|")
	if len(parts) != 3 || parts[0] != reviewer {
		return time.Time{}, nil
	}
	ms, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return time.Time{}, nil
	}
	return time.UnixMilli(ms), nil
}

// ForgetClaim drops the claim start of a record (after a decision).
func (q *ReviewQueue) ForgetClaim(ctx context.Context, town string, level int, recordID string) error {
	if err := q.rdb.HDel(ctx, q.claimedKey(town, level), recordID).Err(); err != nil {
		return fmt.Errorf("reviewqueue.forget_claim: %w", err)
	}
	return nil
}
