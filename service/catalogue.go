package service

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"time"

	"qjmz/model"
	"qjmz/pkg/apperr"
	"qjmz/pkg/ids"
	"qjmz/repository"
)

// ItemStore is the service catalogue.
type ItemStore interface {
	Create(ctx context.Context, it *model.ServiceItem) error
	Get(ctx context.Context, id string) (model.ServiceItem, error)
	Lock(ctx context.Context, id string) (model.ServiceItem, error)
	GetMany(ctx context.Context, ids []string) (map[string]model.ServiceItem, error)
	List(ctx context.Context, f repository.ItemFilter) ([]model.ServiceItem, error)
	Update(ctx context.Context, id string, cols map[string]any) error
}

// CatalogueConfig wires the catalogue use cases.
type CatalogueConfig struct {
	Tx    TxRunner
	Items ItemStore
	Audit *Auditor
	Now   func() time.Time
}

// Catalogue manages service items (服务目录): what a session of each kind
// costs and what evidence it needs.
type Catalogue struct{ c CatalogueConfig }

// NewCatalogue builds the catalogue use cases.
func NewCatalogue(c CatalogueConfig) *Catalogue { return &Catalogue{c: c} }

// Limits of catalogue values. Prices cover micro-projects (300–500 yuan a
// session) and small projects (30–50 thousand yuan) with headroom.
const (
	maxUnitPriceFen = 10_000_000 // 100,000 yuan
	maxCapFen       = 100_000_000
)

var itemCodePattern = regexp.MustCompile(`^[A-Z0-9][A-Z0-9_-]{1,31}$`)

// ItemInput creates or edits an item; nil fields are unchanged on edit and
// take their defaults on create.
type ItemInput struct {
	Code, Name, Category                                            *string
	UnitPriceFen                                                    *int64
	MinPhotos, MinVideoSeconds, MinParticipants, MinDurationMinutes *int
	VideoRequired, BeneficiariesRequired                            *bool
	CapScope                                                        *string
	CapFen                                                          *int64
	Visibility                                                      *string
	ReviewLevels                                                    *int
	Active                                                          *bool
}

// Item returns one catalogue entry whatever the caller's roles. Other use
// cases (session records, review, settlement) call it to read prices and
// evidence rules; it does no scope check because the catalogue is one list
// for the whole platform.
func (c *Catalogue) Item(ctx context.Context, id string) (model.ServiceItem, error) {
	it, err := c.c.Items.Get(ctx, id)
	if err != nil {
		return model.ServiceItem{}, notFound("服务项目", err)
	}
	return it, nil
}

// Items loads many items by id, keyed by id (no scope check, as Item).
func (c *Catalogue) Items(ctx context.Context, ids []string) (map[string]model.ServiceItem, error) {
	return c.c.Items.GetMany(ctx, ids)
}

// ItemQuery filters the catalogue listing.
type ItemQuery struct {
	Category        string
	IncludeInactive bool // honoured for bureau_admin only
	Cursor          string
	Limit           int
}

// List returns active items by code. Internal items (case management,
// mental health) are shown only to callers holding a staff or worker role;
// residents never learn they exist.
func (c *Catalogue) List(ctx context.Context, q ItemQuery) ([]model.ServiceItem, string, error) {
	p := PrincipalFrom(ctx)
	f := repository.ItemFilter{
		PublicOnly: !isStaffOrWorker(p),
		ActiveOnly: !(q.IncludeInactive && p.HasRole(model.RoleBureauAdmin)),
		Category:   q.Category, AfterCode: q.Cursor, Limit: q.Limit + 1,
	}
	rows, err := c.c.Items.List(ctx, f)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(rows) > q.Limit {
		rows, next = rows[:q.Limit], rows[q.Limit-1].Code
	}
	return rows, next, nil
}

// isStaffOrWorker: anyone holding a role beyond resident.
func isStaffOrWorker(p *Principal) bool {
	return p.HasRole(model.RoleWorker, model.RoleOrgAdmin, model.RoleStationReviewer, model.RoleBureauReviewer,
		model.RoleBureauAdmin, model.RoleAuditor)
}

// Create adds an item (bureau_admin). The catalogue is district-wide, so any
// bureau_admin may manage it.
func (c *Catalogue) Create(ctx context.Context, in ItemInput) (model.ServiceItem, error) {
	if !PrincipalFrom(ctx).HasRole(model.RoleBureauAdmin) {
		return model.ServiceItem{}, apperr.New(apperr.ErrForbidden, "FORBIDDEN", "无权管理服务目录")
	}
	it := model.ServiceItem{ID: ids.New(), Visibility: model.VisibilityPublic, ReviewLevels: 1, Active: true}
	if in.Code != nil {
		it.Code = strings.ToUpper(strings.TrimSpace(*in.Code))
	}
	applyItem(&it, in)
	if err := validateItem(it); err != nil {
		return model.ServiceItem{}, err
	}
	err := c.c.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := c.c.Items.Create(ctx, &it); err != nil {
			if errors.Is(err, apperr.ErrConflict) {
				return apperr.New(apperr.ErrConflict, "ITEM_CODE_TAKEN", "服务项目编码已存在")
			}
			return err
		}
		return c.c.Audit.Record(ctx, AuditEntry{Action: "service_item.create", ObjectType: "service_item", ObjectID: it.ID, After: it})
	})
	return it, err
}

// Update edits an item. Orders keep the unit price they were placed at, so
// a price change affects only orders placed afterwards.
func (c *Catalogue) Update(ctx context.Context, id string, in ItemInput) (model.ServiceItem, error) {
	if !PrincipalFrom(ctx).HasRole(model.RoleBureauAdmin) {
		return model.ServiceItem{}, apperr.New(apperr.ErrForbidden, "FORBIDDEN", "无权管理服务目录")
	}
	var it model.ServiceItem
	err := c.c.Tx.InTx(ctx, func(ctx context.Context) error {
		before, err := c.c.Items.Lock(ctx, id)
		if err != nil {
			return notFound("服务项目", err)
		}
		it = before
		applyItem(&it, in)
		if err := validateItem(it); err != nil {
			return err
		}
		cols := map[string]any{
			"name": it.Name, "category": it.Category, "unit_price_fen": it.UnitPriceFen,
			"min_photos": it.MinPhotos, "video_required": it.VideoRequired, "min_video_seconds": it.MinVideoSeconds,
			"min_participants": it.MinParticipants, "min_duration_minutes": it.MinDurationMinutes,
			"beneficiaries_required": it.BeneficiariesRequired, "cap_scope": it.CapScope, "cap_fen": it.CapFen,
			"visibility": it.Visibility, "review_levels": it.ReviewLevels, "active": it.Active,
		}
		if err := c.c.Items.Update(ctx, id, cols); err != nil {
			return err
		}
		if it, err = c.c.Items.Get(ctx, id); err != nil {
			return err
		}
		return c.c.Audit.Record(ctx, AuditEntry{Action: "service_item.update", ObjectType: "service_item", ObjectID: id, Before: before, After: it})
	})
	if err != nil {
		return model.ServiceItem{}, err
	}
	return it, nil
}

func applyItem(it *model.ServiceItem, in ItemInput) {
	setStr := func(dst *string, v *string) {
		if v != nil {
			*dst = strings.TrimSpace(*v)
		}
	}
	setInt := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	setBool := func(dst *bool, v *bool) {
		if v != nil {
			*dst = *v
		}
	}
	setStr(&it.Name, in.Name)
	setStr(&it.Category, in.Category)
	if in.UnitPriceFen != nil {
		it.UnitPriceFen = *in.UnitPriceFen
	}
	setInt(&it.MinPhotos, in.MinPhotos)
	setInt(&it.MinVideoSeconds, in.MinVideoSeconds)
	setInt(&it.MinParticipants, in.MinParticipants)
	setInt(&it.MinDurationMinutes, in.MinDurationMinutes)
	setBool(&it.VideoRequired, in.VideoRequired)
	setBool(&it.BeneficiariesRequired, in.BeneficiariesRequired)
	setStr(&it.CapScope, in.CapScope)
	if in.CapFen != nil {
		it.CapFen = *in.CapFen
	}
	setStr(&it.Visibility, in.Visibility)
	setInt(&it.ReviewLevels, in.ReviewLevels)
	setBool(&it.Active, in.Active)
}

// validateItem checks the whole item after a create or an edit, so rules
// that tie fields together hold whichever field changed.
func validateItem(it model.ServiceItem) error {
	var fe []apperr.FieldError
	bad := func(field, reason string) { fe = append(fe, apperr.FieldError{Field: field, Reason: reason}) }
	if !itemCodePattern.MatchString(it.Code) {
		bad("code", "pattern_A-Z0-9_-_2_32")
	}
	if n := len([]rune(it.Name)); n < 1 || n > 64 {
		bad("name", "length_1_64")
	}
	if n := len([]rune(it.Category)); n < 1 || n > 32 {
		bad("category", "length_1_32")
	}
	if it.UnitPriceFen < 1 || it.UnitPriceFen > maxUnitPriceFen {
		bad("unit_price_fen", "range_1_10000000")
	}
	if it.MinPhotos < 0 || it.MinPhotos > 50 {
		bad("min_photos", "range_0_50")
	}
	if it.MinVideoSeconds < 0 || it.MinVideoSeconds > 600 {
		bad("min_video_seconds", "range_0_600")
	} else if it.MinVideoSeconds > 0 && !it.VideoRequired {
		bad("min_video_seconds", "requires_video_required")
	}
	if it.MinParticipants < 0 || it.MinParticipants > 10000 {
		bad("min_participants", "range_0_10000")
	}
	if it.MinDurationMinutes < 0 || it.MinDurationMinutes > 1440 {
		bad("min_duration_minutes", "range_0_1440")
	}
	switch it.CapScope {
	case model.CapNone:
		if it.CapFen != 0 {
			bad("cap_fen", "requires_cap_scope")
		}
	case model.CapBeneficiary, model.CapHousehold:
		if it.CapFen < 1 || it.CapFen > maxCapFen {
			bad("cap_fen", "range_1_100000000")
		}
		// A cap is counted over the beneficiaries of each session, so
		// sessions must name them.
		if !it.BeneficiariesRequired {
			bad("cap_scope", "requires_beneficiaries_required")
		}
	default:
		return apperr.New(apperr.ErrInvalid, "UNKNOWN_ENUM_VALUE", "取值不在允许范围内").
			WithFields(apperr.FieldError{Field: "cap_scope", Reason: "one_of:,beneficiary,household"})
	}
	if it.Visibility != model.VisibilityPublic && it.Visibility != model.VisibilityInternal {
		return apperr.New(apperr.ErrInvalid, "UNKNOWN_ENUM_VALUE", "取值不在允许范围内").
			WithFields(apperr.FieldError{Field: "visibility", Reason: "one_of:public,internal"})
	}
	if it.ReviewLevels != 1 && it.ReviewLevels != 2 {
		return apperr.New(apperr.ErrInvalid, "UNKNOWN_ENUM_VALUE", "取值不在允许范围内").
			WithFields(apperr.FieldError{Field: "review_levels", Reason: "one_of:1,2"})
	}
	if len(fe) > 0 {
		return apperr.Invalid("服务项目信息不正确", fe...)
	}
	return nil
}
