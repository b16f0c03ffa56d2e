package model

import "time"

// Catalogue visibility.
const (
	VisibilityPublic   = "public"
	VisibilityInternal = "internal"
)

// Cap scopes of a service item.
const (
	CapNone        = ""
	CapBeneficiary = "beneficiary"
	CapHousehold   = "household"
)

// ServiceItem is a catalogue entry: what a session of this kind costs and
// what evidence it needs.
type ServiceItem struct {
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

// Order statuses.
const (
	OrderOpen   = "open"
	OrderClosed = "closed"
)

// Order is a purchase: organization × item × town × period. The unit price
// is copied from the catalogue when ordering and never changes after.
type Order struct {
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

// Beneficiary (服务对象). Name, ID number and phone are encrypted; IDIndex is
// a keyed blind index of the ID number for exact lookup and de-duplication.
type Beneficiary struct {
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

// Upload statuses.
const (
	UploadPending  = "pending"
	UploadReady    = "ready"
	UploadRejected = "rejected"
	UploadExpired  = "expired"
)

// Media kinds.
const (
	KindImage = "image"
	KindVideo = "video"
)

// Upload is a ticket for one evidence file and, once completed, the file.
// Seq gives replicas a cheap "what is new since" for the near-duplicate
// index.
type Upload struct {
	ID             string  `gorm:"primaryKey;size:26"`
	Seq            int64   `gorm:"autoIncrement;uniqueIndex;not null"`
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
	PublicOK       bool   // reviewer cleared this photo for the public feed
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

// Session record statuses (DESIGN.md §3).
const (
	RecordDraft     = "draft"
	RecordSubmitted = "submitted"
	RecordLevel1OK  = "level1_approved"
	RecordApproved  = "approved"
	RecordReturned  = "returned"
	RecordRejected  = "rejected"
)

// SessionRecord is one delivered session with its evidence.
type SessionRecord struct {
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
	// Review and feed state (migration 0004).
	ReviewLevel int        // level currently deciding: 1 station, 2 bureau
	DueAt       *time.Time // end of the week after submission
	EscalatedAt *time.Time
	TextCheck   string     // WeChat msgSecCheck verdict of title+description
	PublishedAt *time.Time // on the public feed since
	FeedKey     string     // keyset cursor key: published time + id; "" = not on the feed
	// TextCheckHash is the sha256 of the text TextCheck judged: an edit
	// after the check makes the verdict stale (feed slice).
	TextCheckHash string
	FeedHiddenAt  *time.Time // a bureau admin took it off the feed; blocks republication
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// RecordBeneficiary links a record to a person served.
type RecordBeneficiary struct {
	RecordID      string `gorm:"primaryKey;size:26"`
	BeneficiaryID string `gorm:"primaryKey;size:26;index"`
}

// RecordVersion is a frozen copy of a record as submitted.
type RecordVersion struct {
	ID          string `gorm:"primaryKey;size:26"`
	RecordID    string `gorm:"size:26;not null;uniqueIndex:ux_rec_ver,priority:1"`
	Version     int    `gorm:"not null;uniqueIndex:ux_rec_ver,priority:2"`
	Snapshot    string `gorm:"type:text;not null"`
	SubmittedBy string `gorm:"size:26;not null"`
	SubmittedAt time.Time
}

// Risk flag severities.
const (
	SeverityBlock = "block"
	SeverityWarn  = "warn"
)

// RiskFlag is one finding of the submit checks, with its evidence as JSON.
type RiskFlag struct {
	ID        string `gorm:"primaryKey;size:26"`
	RecordID  string `gorm:"size:26;not null;index:ix_flag_rec,priority:1"`
	Version   int    `gorm:"not null;index:ix_flag_rec,priority:2"`
	Code      string `gorm:"size:48;not null;index"`
	Severity  string `gorm:"size:8;not null"`
	Evidence  string `gorm:"type:text"`
	CreatedAt time.Time
}
