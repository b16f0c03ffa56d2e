// Package schedule runs the service's periodic jobs (queue reconcile,
// overdue escalation, outbox relay, orphan cleanup) with gocron, on exactly
// one replica at a time: each run first takes a Redis lock named after the
// job.
package schedule

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/redis/go-redis/v9"
)

// ErrLocked means another replica holds the job's lock.
var ErrLocked = errors.New("schedule: job locked by another replica")

// RedisLocker implements gocron.Locker with SET NX PX and a token, released
// by a script that deletes only our own lock. A lock is kept for at least
// MinHold after it was taken, so replicas whose clocks tick a little apart
// do not run the same job back to back.
type RedisLocker struct {
	rdb     redis.UniversalClient
	prefix  string
	ttl     time.Duration
	minHold time.Duration
}

// NewRedisLocker builds a locker. ttl bounds how long a crashed holder can
// block the job; minHold is the shortest time a lock is kept.
func NewRedisLocker(rdb redis.UniversalClient, prefix string, ttl, minHold time.Duration) *RedisLocker {
	return &RedisLocker{rdb: rdb, prefix: prefix, ttl: ttl, minHold: minHold}
}

type redisLock struct {
	l     *RedisLocker
	key   string
	token string
	taken time.Time
}

// Lock takes the lock for key or returns ErrLocked.
func (l *RedisLocker) Lock(ctx context.Context, key string) (gocron.Lock, error) {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	lk := &redisLock{l: l, key: l.prefix + "lock:{job:" + key + "}", token: hex.EncodeToString(b), taken: time.Now()}
	ok, err := l.rdb.SetNX(ctx, lk.key, lk.token, l.ttl).Result()
	if err != nil {
		return nil, fmt.Errorf("schedule: lock %s: %w", key, err)
	}
	if !ok {
		return nil, ErrLocked
	}
	return lk, nil
}

var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local keep = tonumber(ARGV[2])
if keep > 0 then return redis.call('PEXPIRE', KEYS[1], keep) end
return redis.call('DEL', KEYS[1])
`)

// Unlock releases the lock if we still own it (or shortens it to MinHold).
func (lk *redisLock) Unlock(ctx context.Context) error {
	keep := lk.l.minHold - time.Since(lk.taken)
	if keep < 0 {
		keep = 0
	}
	if err := unlockScript.Run(ctx, lk.l.rdb, []string{lk.key}, lk.token, keep.Milliseconds()).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("schedule: unlock %s: %w", lk.key, err)
	}
	return nil
}

// Job is one periodic task.
type Job struct {
	Name  string
	Every time.Duration
	Run   func(ctx context.Context) error
}

// Scheduler owns the gocron scheduler.
type Scheduler struct {
	s   gocron.Scheduler
	log *slog.Logger
}

// New builds a scheduler with the distributed locker and registers jobs.
func New(locker gocron.Locker, log *slog.Logger, jobs ...Job) (*Scheduler, error) {
	s, err := gocron.NewScheduler(gocron.WithDistributedLocker(locker), gocron.WithLocation(time.UTC))
	if err != nil {
		return nil, fmt.Errorf("schedule: %w", err)
	}
	sc := &Scheduler{s: s, log: log}
	for _, j := range jobs {
		j := j
		_, err := s.NewJob(gocron.DurationJob(j.Every),
			gocron.NewTask(func() {
				ctx, cancel := context.WithTimeout(context.Background(), j.Every)
				defer cancel()
				start := time.Now()
				if err := j.Run(ctx); err != nil {
					log.Error("job failed", "job", j.Name, "err", err)
					return
				}
				log.Debug("job done", "job", j.Name, "duration_ms", time.Since(start).Milliseconds())
			}),
			gocron.WithName(j.Name),
			gocron.WithSingletonMode(gocron.LimitModeReschedule),
		)
		if err != nil {
			return nil, fmt.Errorf("schedule: job %s: %w", j.Name, err)
		}
	}
	return sc, nil
}

// Start begins running jobs.
func (s *Scheduler) Start() { s.s.Start() }

// Stop waits for running jobs and stops.
func (s *Scheduler) Stop() error { return s.s.Shutdown() }
