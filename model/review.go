package model

import "time"

// Review decisions.
const (
	DecisionApprove = "approve"
	DecisionReturn  = "return"
	DecisionReject  = "reject"
)

// Review is one decision on one version of a record at one level.
type Review struct {
	ID         string `gorm:"primaryKey;size:26"`
	RecordID   string `gorm:"size:26;not null;index:ix_review_rec,priority:1"`
	Version    int    `gorm:"not null;index:ix_review_rec,priority:2"`
	Level      int    `gorm:"not null"`
	ReviewerID string `gorm:"size:26;not null;index:ix_review_reviewer,priority:1"`
	Decision   string `gorm:"size:16;not null"`
	ReasonCode string `gorm:"size:48"`
	Comment    string `gorm:"size:500"`
	// ClaimedAt..CreatedAt is the reviewer's time to decision.
	ClaimedAt *time.Time
	CreatedAt time.Time `gorm:"index:ix_review_reviewer,priority:2"`
}

// ReviewReason is a configurable reason code for return and reject.
type ReviewReason struct {
	Code      string `gorm:"primaryKey;size:48"`
	Label     string `gorm:"size:128;not null"`
	Decisions string `gorm:"size:64;not null"` // comma list: return,reject
	Active    bool   `gorm:"not null"`
	SortOrder int    `gorm:"not null"`
}

// Outbox statuses.
const (
	OutboxPending = "pending"
	OutboxSent    = "sent"
	OutboxDead    = "dead"
	OutboxSkipped = "skipped" // a normal no-send, e.g. WeChat 43101 (no consent left)
)

// OutboxMessage is a side effect (a WeChat subscribe message) written in the
// same transaction as the change that caused it and sent after commit by the
// relay, with retries.
type OutboxMessage struct {
	Seq           int64     `gorm:"primaryKey;autoIncrement"`
	ID            string    `gorm:"size:26;not null;uniqueIndex"`
	Kind          string    `gorm:"size:32;not null"`
	Payload       string    `gorm:"type:text;not null"`
	Status        string    `gorm:"size:16;not null;index:ix_outbox_due,priority:1"`
	Attempts      int       `gorm:"not null"`
	NextAttemptAt time.Time `gorm:"index:ix_outbox_due,priority:2"`
	LastError     string    `gorm:"size:255"`
	CreatedAt     time.Time
	SentAt        *time.Time
}
