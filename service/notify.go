package service

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"qjmz/model"
	"qjmz/pkg/ids"
	"qjmz/pkg/wechat"
	"qjmz/repository"
)

// OutboxStore is the transactional outbox.
type OutboxStore interface {
	Add(ctx context.Context, m *model.OutboxMessage) error
	Due(ctx context.Context, now time.Time, limit int) ([]model.OutboxMessage, error)
	Finish(ctx context.Context, id string, seenAttempts int, cols map[string]any) (bool, error)
}

// SubscribeSender sends WeChat subscribe messages.
type SubscribeSender interface {
	SendSubscribe(ctx context.Context, m wechat.SubscribeMessage) error
}

// KindSubscribe is the outbox kind of a WeChat subscribe message.
const KindSubscribe = "wechat_subscribe"

// SubscribePayload is what a subscribe-message outbox row carries. The
// recipient is a user id; the openid is looked up at send time so it never
// sits in the outbox.
type SubscribePayload struct {
	ToUserID   string            `json:"to_user_id"`
	TemplateID string            `json:"template_id"`
	Page       string            `json:"page"`
	Data       map[string]string `json:"data"`
}

// Notifier queues notifications inside business transactions and relays
// them after commit.
type Notifier struct {
	store  OutboxStore
	users  UserStore
	sender SubscribeSender
	now    func() time.Time
	log    *slog.Logger
	// MaxAttempts before a message is declared dead.
	MaxAttempts int
}

// NewNotifier builds the notifier.
func NewNotifier(store OutboxStore, users UserStore, sender SubscribeSender, now func() time.Time, log *slog.Logger) *Notifier {
	return &Notifier{store: store, users: users, sender: sender, now: now, log: log, MaxAttempts: 8}
}

// Queue adds a subscribe message to the outbox; call inside the transaction
// of the change it reports.
func (n *Notifier) Queue(ctx context.Context, p SubscribePayload) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	now := n.now()
	return n.store.Add(ctx, &model.OutboxMessage{ID: ids.New(), Kind: KindSubscribe, Payload: string(b),
		Status: model.OutboxPending, NextAttemptAt: now, CreatedAt: now})
}

// RelayResult counts what one relay pass did.
type RelayResult struct{ Sent, Skipped, Retried, Dead int }

// backoff is 30 s doubling per attempt, capped at one hour.
func backoff(attempt int) time.Duration {
	d := 30 * time.Second << min(attempt, 7)
	return min(d, time.Hour)
}

// Relay sends due messages. Run it from the scheduler (one replica at a
// time); it is also safe to run twice, since each outcome is recorded
// conditionally on the attempt count it saw.
func (n *Notifier) Relay(ctx context.Context, batch int) (RelayResult, error) {
	var res RelayResult
	due, err := n.store.Due(ctx, n.now(), batch)
	if err != nil {
		return res, err
	}
	for _, m := range due {
		cols, outcome := n.attempt(ctx, m)
		ok, err := n.store.Finish(ctx, m.ID, m.Attempts, cols)
		if err != nil {
			return res, err
		}
		if !ok {
			continue
		}
		switch outcome {
		case model.OutboxSent:
			res.Sent++
		case model.OutboxSkipped:
			res.Skipped++
		case model.OutboxDead:
			res.Dead++
		default:
			res.Retried++
		}
	}
	return res, nil
}

func (n *Notifier) attempt(ctx context.Context, m model.OutboxMessage) (map[string]any, string) {
	now := n.now()
	cols := map[string]any{"attempts": m.Attempts + 1}
	dead := func(reason string) (map[string]any, string) {
		cols["status"], cols["last_error"] = model.OutboxDead, truncate(reason, 255)
		return cols, model.OutboxDead
	}
	if m.Kind != KindSubscribe {
		return dead("unknown kind " + m.Kind)
	}
	var p SubscribePayload
	if err := json.Unmarshal([]byte(m.Payload), &p); err != nil {
		return dead("bad payload")
	}
	u, err := n.users.Get(ctx, p.ToUserID)
	if err != nil {
		return dead("recipient not found")
	}
	err = n.sender.SendSubscribe(ctx, wechat.SubscribeMessage{ToOpenID: u.OpenID, TemplateID: p.TemplateID, Page: p.Page, Data: p.Data})
	switch {
	case err == nil:
		cols["status"], cols["sent_at"] = model.OutboxSent, now
		return cols, model.OutboxSent
	case errors.Is(err, wechat.ErrNoSubscribeQuota):
		// The user has no consent left for this template: a normal outcome.
		cols["status"], cols["last_error"] = model.OutboxSkipped, "43101 no subscription consent"
		return cols, model.OutboxSkipped
	case !wechat.IsRetryable(err) || m.Attempts+1 >= n.MaxAttempts:
		n.log.Warn("notification dead", "outbox_id", m.ID, "err", err)
		return dead(err.Error())
	}
	cols["next_attempt_at"], cols["last_error"] = now.Add(backoff(m.Attempts)), truncate(err.Error(), 255)
	return cols, model.OutboxPending
}

var _ OutboxStore = (*repository.Outbox)(nil)
