package repository

import (
	"time"

	"gorm.io/gorm"
)

// ---- 0003: catalogue, orders, beneficiaries, uploads, session records ----
// Snapshot of the shapes as of this version (copied, never edited later).

type serviceItem0003 struct {
	ID                    string `gorm:"primaryKey;size:26"`
	Code                  string `gorm:"size:32;not null;uniqueIndex"`
	Name                  string `gorm:"size:64;not null"`
	Category              string `gorm:"size:32;not null"`
	UnitPriceFen          int64  `gorm:"not null"`
	MinPhotos             int    `gorm:"not null"`
	VideoRequired         bool   `gorm:"not null"`
	MinVideoSeconds       int    `gorm:"not null"`
	MinParticipants       int    `gorm:"not null"`
	MinDurationMinutes    int    `gorm:"not null"`
	BeneficiariesRequired bool   `gorm:"not null"`
	CapScope              string `gorm:"size:16"`
	CapFen                int64
	Visibility            string `gorm:"size:16;not null"`
	ReviewLevels          int    `gorm:"not null"`
	Active                bool   `gorm:"not null"`
	CreatedAt             time.Time
	UpdatedAt             time.Time
}

func (serviceItem0003) TableName() string { return "service_items" }

type order0003 struct {
	ID           string    `gorm:"primaryKey;size:26"`
	OrgID        string    `gorm:"size:26;not null;index:ix_order_org,priority:1"`
	ItemID       string    `gorm:"size:26;not null;index"`
	RegionID     string    `gorm:"size:26;not null;index"`
	PeriodStart  time.Time `gorm:"not null"`
	PeriodEnd    time.Time `gorm:"not null"`
	Quantity     int       `gorm:"not null"`
	UsedCount    int       `gorm:"not null"`
	UnitPriceFen int64     `gorm:"not null"`
	BudgetFen    int64     `gorm:"not null"`
	Status       string    `gorm:"size:16;not null;index:ix_order_org,priority:2"`
	CreatedBy    string    `gorm:"size:26;not null"`
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

func (order0003) TableName() string { return "orders" }

type beneficiary0003 struct {
	ID              string  `gorm:"primaryKey;size:26"`
	NameEnc         string  `gorm:"size:255;not null"`
	IDNumberEnc     string  `gorm:"size:255;not null"`
	IDIndex         string  `gorm:"size:64;not null;uniqueIndex"`
	PhoneEnc        string  `gorm:"size:255"`
	PhoneIndex      *string `gorm:"size:64;index"`
	Household       string  `gorm:"size:64;not null;index"`
	CommunityID     string  `gorm:"size:26;not null;index"`
	Categories      string  `gorm:"size:255"`
	BirthDate       time.Time
	Gender          string `gorm:"size:8"`
	GuardianConsent bool   `gorm:"not null"`
	PublicConsent   bool   `gorm:"not null"`
	CreatedBy       string `gorm:"size:26;not null"`
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

func (beneficiary0003) TableName() string { return "beneficiaries" }

type upload0003 struct {
	Seq            int64   `gorm:"primaryKey;autoIncrement"`
	ID             string  `gorm:"size:26;not null;uniqueIndex"`
	UploaderID     string  `gorm:"size:26;not null;index"`
	OrgID          string  `gorm:"size:26;not null;index"`
	RecordID       *string `gorm:"size:26;index"`
	Kind           string  `gorm:"size:8;not null"`
	ContentType    string  `gorm:"size:64;not null"`
	DeclaredSize   int64   `gorm:"not null"`
	StorageKey     string  `gorm:"size:255;not null"`
	Status         string  `gorm:"size:16;not null;index"`
	RejectCode     string  `gorm:"size:64"`
	ExpiresAt      time.Time
	CompletedAt    *time.Time
	Size           int64
	SHA256         string `gorm:"size:64;index"`
	PHash          int64
	DHash          int64
	TopPHash       int64
	TopDHash       int64
	Width          int
	Height         int
	DurationMs     int64
	HasEXIF        bool
	CaptureTime    *time.Time
	CaptureOffset  bool
	FileLat        *float64
	FileLng        *float64
	ClientLat      *float64
	ClientLng      *float64
	ClientAccuracy *float64
	DisplayKey     string `gorm:"size:255"`
	ThumbKey       string `gorm:"size:255"`
	ContentCheck   string `gorm:"size:16"`
	CheckTraceID   string `gorm:"size:64;index"`
	Provenance     string `gorm:"type:text"`
	ProvenanceSig  string `gorm:"size:128"`
	ProvenanceKey  string `gorm:"size:32"`
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

func (upload0003) TableName() string { return "uploads" }

type sessionRecord0003 struct {
	ID               string `gorm:"primaryKey;size:26"`
	OrgID            string `gorm:"size:26;not null;index:ix_rec_org,priority:1"`
	OrderID          string `gorm:"size:26;not null;index"`
	ItemID           string `gorm:"size:26;not null;index"`
	TownID           string `gorm:"size:26;not null;index:ix_rec_town,priority:1"`
	CommunityID      string `gorm:"size:26;not null;index"`
	WorkerID         string `gorm:"size:26;not null;index:ix_rec_worker,priority:1"`
	VenueLat         float64
	VenueLng         float64
	VenueName        string    `gorm:"size:128"`
	StartAt          time.Time `gorm:"not null;index:ix_rec_worker,priority:2"`
	EndAt            time.Time `gorm:"not null"`
	Title            string    `gorm:"size:128;not null"`
	Description      string    `gorm:"type:text"`
	ParticipantCount int       `gorm:"not null"`
	Status           string    `gorm:"size:24;not null;index:ix_rec_org,priority:2;index:ix_rec_town,priority:2"`
	Version          int       `gorm:"not null"`
	RiskLevel        string    `gorm:"size:8"`
	SubmittedAt      *time.Time
	DecidedAt        *time.Time
	Payable          bool `gorm:"not null"`
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

func (sessionRecord0003) TableName() string { return "session_records" }

type recordBeneficiary0003 struct {
	RecordID      string `gorm:"primaryKey;size:26"`
	BeneficiaryID string `gorm:"primaryKey;size:26;index"`
}

func (recordBeneficiary0003) TableName() string { return "record_beneficiaries" }

type recordVersion0003 struct {
	ID          string `gorm:"primaryKey;size:26"`
	RecordID    string `gorm:"size:26;not null;uniqueIndex:ux_rec_ver,priority:1"`
	Version     int    `gorm:"not null;uniqueIndex:ux_rec_ver,priority:2"`
	Snapshot    string `gorm:"type:text;not null"`
	SubmittedBy string `gorm:"size:26;not null"`
	SubmittedAt time.Time
}

func (recordVersion0003) TableName() string { return "record_versions" }

type riskFlag0003 struct {
	ID        string `gorm:"primaryKey;size:26"`
	RecordID  string `gorm:"size:26;not null;index:ix_flag_rec,priority:1"`
	Version   int    `gorm:"not null;index:ix_flag_rec,priority:2"`
	Code      string `gorm:"size:48;not null;index"`
	Severity  string `gorm:"size:8;not null"`
	Evidence  string `gorm:"type:text"`
	CreatedAt time.Time
}

func (riskFlag0003) TableName() string { return "risk_flags" }

func migrate0003(tx *gorm.DB) error {
	return tx.AutoMigrate(&serviceItem0003{}, &order0003{}, &beneficiary0003{}, &upload0003{}, &sessionRecord0003{}, &recordBeneficiary0003{}, &recordVersion0003{}, &riskFlag0003{})
}
