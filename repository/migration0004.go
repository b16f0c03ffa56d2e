package repository

import (
	"time"

	"gorm.io/gorm"
)

// ---- 0004: reviews, reason codes, outbox, review/feed columns on records ----

type review0004 struct {
	ID         string `gorm:"primaryKey;size:26"`
	RecordID   string `gorm:"size:26;not null;index:ix_review_rec,priority:1"`
	Version    int    `gorm:"not null;index:ix_review_rec,priority:2"`
	Level      int    `gorm:"not null"`
	ReviewerID string `gorm:"size:26;not null;index:ix_review_reviewer,priority:1"`
	Decision   string `gorm:"size:16;not null"`
	ReasonCode string `gorm:"size:48"`
	Comment    string `gorm:"size:500"`
	ClaimedAt  *time.Time
	CreatedAt  time.Time `gorm:"index:ix_review_reviewer,priority:2"`
}

func (review0004) TableName() string { return "reviews" }

type reviewReason0004 struct {
	Code      string `gorm:"primaryKey;size:48"`
	Label     string `gorm:"size:128;not null"`
	Decisions string `gorm:"size:64;not null"`
	Active    bool   `gorm:"not null"`
	SortOrder int    `gorm:"not null"`
}

func (reviewReason0004) TableName() string { return "review_reasons" }

type outboxMessage0004 struct {
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

func (outboxMessage0004) TableName() string { return "outbox_messages" }

// sessionRecord0004 holds only the columns this migration adds. FeedKey is
// empty until a record is published; the feed is a keyset scan over it,
// alone or after one equality filter.
type sessionRecord0004 struct {
	ReviewLevel int        `gorm:"not null;default:1"`
	DueAt       *time.Time `gorm:"index:ix_rec_due"`
	EscalatedAt *time.Time
	TextCheck   string `gorm:"size:16;index:ix_rec_feed_todo,priority:2"`
	PublishedAt *time.Time
	FeedKey     string `gorm:"size:40;not null;default:'';index:ix_feed;index:ix_feed_town,priority:2;index:ix_feed_comm,priority:2;index:ix_feed_item,priority:2"`
	TownID      string `gorm:"size:26;index:ix_feed_town,priority:1"`
	CommunityID string `gorm:"size:26;index:ix_feed_comm,priority:1"`
	ItemID      string `gorm:"size:26;index:ix_feed_item,priority:1"`
	// Feed slice: the text the verdict is for, an admin's takedown, and the
	// index of the job that retries pending text checks of approved records.
	TextCheckHash string `gorm:"size:64"`
	FeedHiddenAt  *time.Time
	Status        string    `gorm:"size:24;index:ix_rec_feed_todo,priority:1"` // exists since 0003; index only
	UpdatedAt     time.Time `gorm:"index:ix_rec_feed_todo,priority:3"`         // exists since 0003; index only
}

func (sessionRecord0004) TableName() string { return "session_records" }

// upload0004 adds the reviewer's decision that a photo may be shown publicly
// (no identifiable person without publishing consent in it).
type upload0004 struct {
	PublicOK bool `gorm:"not null;default:false"`
}

func (upload0004) TableName() string { return "uploads" }

func migrate0004(tx *gorm.DB) error {
	if err := tx.AutoMigrate(&review0004{}, &reviewReason0004{}, &outboxMessage0004{}); err != nil {
		return err
	}
	m := tx.Migrator()
	for _, col := range []string{"ReviewLevel", "DueAt", "EscalatedAt", "TextCheck", "PublishedAt", "FeedKey", "TextCheckHash", "FeedHiddenAt"} {
		if !m.HasColumn(&sessionRecord0004{}, col) {
			if err := m.AddColumn(&sessionRecord0004{}, col); err != nil {
				return err
			}
		}
	}
	if !m.HasColumn(&upload0004{}, "PublicOK") {
		if err := m.AddColumn(&upload0004{}, "PublicOK"); err != nil {
			return err
		}
	}
	for _, idx := range []string{"ix_rec_due", "ix_feed", "ix_feed_town", "ix_feed_comm", "ix_feed_item", "ix_rec_feed_todo"} {
		if !m.HasIndex(&sessionRecord0004{}, idx) {
			if err := m.CreateIndex(&sessionRecord0004{}, idx); err != nil {
				return err
			}
		}
	}
	reasons := []reviewReason0004{
		{"EVIDENCE_INSUFFICIENT", "证据不足（照片/视频缺失或不清晰）", "return,reject", true, 10},
		{"INFO_INCOMPLETE", "信息不完整（时间、地点、服务对象）", "return", true, 20},
		{"NOT_MATCHING_ITEM", "服务内容与项目不符", "return,reject", true, 30},
		{"DUPLICATE_EVIDENCE", "证据重复使用", "reject", true, 40},
		{"LOCATION_MISMATCH", "服务地点与社区不符", "return,reject", true, 50},
		{"TIME_MISMATCH", "服务时间与拍摄时间不符", "return,reject", true, 60},
		{"SUSPECTED_FRAUD", "疑似虚假服务", "reject", true, 70},
		{"OTHER", "其他（见说明）", "return,reject", true, 99},
	}
	for _, r := range reasons {
		if err := tx.Where(reviewReason0004{Code: r.Code}).FirstOrCreate(&r).Error; err != nil {
			return err
		}
	}
	return nil
}
