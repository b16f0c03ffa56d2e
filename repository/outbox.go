package repository

import (
	"context"
	"time"

	"qjmz/model"
)

// Outbox stores side effects written with the change that caused them.
type Outbox struct{ s *Store }

// NewOutbox builds the outbox repository.
func NewOutbox(s *Store) *Outbox { return &Outbox{s: s} }

// Add writes a message; call it inside the business transaction.
func (r *Outbox) Add(ctx context.Context, m *model.OutboxMessage) error {
	return translate("outbox.add", r.s.conn(ctx).Create(m).Error)
}

// Due lists pending messages whose next attempt is due, oldest first.
func (r *Outbox) Due(ctx context.Context, now time.Time, limit int) ([]model.OutboxMessage, error) {
	var rows []model.OutboxMessage
	err := r.s.conn(ctx).Where("status = ? AND next_attempt_at <= ?", model.OutboxPending, now).
		Order("next_attempt_at, seq").Limit(limit).Find(&rows).Error
	return rows, translate("outbox.due", err)
}

// Finish records the outcome of an attempt, conditional on the message still
// being pending with the attempt count the relay saw (so a second relay that
// slipped past the lock cannot double-count).
func (r *Outbox) Finish(ctx context.Context, id string, seenAttempts int, cols map[string]any) (bool, error) {
	res := r.s.conn(ctx).Model(&model.OutboxMessage{}).
		Where("id = ? AND status = ? AND attempts = ?", id, model.OutboxPending, seenAttempts).Updates(cols)
	return res.RowsAffected == 1, translate("outbox.finish", res.Error)
}

// ByStatus counts messages per status (metrics, tests).
func (r *Outbox) ByStatus(ctx context.Context) (map[string]int64, error) {
	var rows []struct {
		Status string
		N      int64
	}
	err := r.s.conn(ctx).Model(&model.OutboxMessage{}).Select("status, COUNT(*) AS n").Group("status").Scan(&rows).Error
	out := map[string]int64{}
	for _, x := range rows {
		out[x.Status] = x.N
	}
	return out, translate("outbox.by_status", err)
}
