package service

import (
	"context"
	"math"
	"slices"
	"time"

	"qjmz/model"
	"qjmz/pkg/apperr"
	"qjmz/pkg/ids"
	"qjmz/repository"
)

// OrderStore is the purchase orders.
type OrderStore interface {
	Create(ctx context.Context, o *model.Order) error
	Get(ctx context.Context, id string) (model.Order, error)
	Lock(ctx context.Context, id string) (model.Order, error)
	GetMany(ctx context.Context, ids []string) (map[string]model.Order, error)
	List(ctx context.Context, f repository.OrderFilter) ([]model.Order, error)
	UpdateGuarded(ctx context.Context, id string, cols map[string]any, status string, maxUsed int) (bool, error)
	TownsOfOrgs(ctx context.Context, orgIDs []string) ([]string, error)
}

// OrdersConfig wires the order use cases.
type OrdersConfig struct {
	Tx      TxRunner
	Orders  OrderStore
	Items   ItemStore
	Regions RegionStore
	Orgs    OrgStore
	Audit   *Auditor
	Now     func() time.Time
}

// Orders buys sessions from organizations: organization × item × town ×
// period, with a quantity and a unit price frozen at ordering.
type Orders struct {
	c       OrdersConfig
	payable PayableRecomputer
}

// PayableRecomputer re-marks which approved records of an order are payable
// (the review use cases); it joins the caller's transaction.
type PayableRecomputer interface {
	RecomputePayable(ctx context.Context, orderID string) (int, error)
}

// NewOrders builds the order use cases.
func NewOrders(c OrdersConfig) *Orders { return &Orders{c: c} }

// SetPayableRecomputer connects the review use cases, which are built after
// orders (they depend on it); called once while wiring.
func (s *Orders) SetPayableRecomputer(p PayableRecomputer) { s.payable = p }

const (
	maxOrderQuantity = 100_000
	maxOrderDays     = 366
)

// Roles that see orders of the towns in their region scope.
var orderStaffRoles = []string{model.RoleBureauAdmin, model.RoleBureauReviewer, model.RoleStationReviewer, model.RoleAuditor}

// OrderView is an order with the names a client shows beside it.
type OrderView struct {
	Order     model.Order
	ItemCode  string
	ItemName  string
	OrgName   string
	TownName  string
	Remaining int // sessions left: quantity − used, never below 0
	Over      int // sessions consumed past the quantity (not payable until raised)
}

// OrderInput places an order. Dates are calendar days in China time;
// PeriodEnd is the last day of the period (inclusive).
type OrderInput struct {
	OrgID, ItemID, TownID  string
	PeriodStart, PeriodEnd time.Time
	Quantity               int
	BudgetFen              *int64
}

// OrderPatch edits an order; nil fields are unchanged.
type OrderPatch struct {
	Quantity  *int
	Status    *string
	BudgetFen *int64
}

// Order returns an order whatever the caller's scope, for other use cases
// (a worker's session record names its order; settlement prices lines from
// it). Handlers use Visible instead.
func (s *Orders) Order(ctx context.Context, id string) (model.Order, error) {
	o, err := s.c.Orders.Get(ctx, id)
	if err != nil {
		return model.Order{}, notFound("订单", err)
	}
	return o, nil
}

// OrderCovers reports whether a session starting at t falls within the
// order's period: from the first day 00:00 to the end of the last day,
// China time.
func OrderCovers(o model.Order, t time.Time) bool {
	return !t.Before(o.PeriodStart) && t.Before(o.PeriodEnd.AddDate(0, 0, 1))
}

// Create places an order (bureau_admin over the town).
func (s *Orders) Create(ctx context.Context, in OrderInput) (OrderView, error) {
	p := PrincipalFrom(ctx)
	town, err := s.c.Regions.Get(ctx, in.TownID)
	if err != nil || !p.CanRegion(town.Path, model.RoleBureauAdmin) {
		return OrderView{}, notFound("街镇", err)
	}
	if town.Level != model.LevelTown {
		return OrderView{}, apperr.New(apperr.ErrInvalid, "REGION_NOT_TOWN", "订单须下到街镇").
			WithFields(apperr.FieldError{Field: "town_id", Reason: "must_be_town"})
	}
	item, err := s.c.Items.Get(ctx, in.ItemID)
	if err != nil {
		return OrderView{}, notFound("服务项目", err)
	}
	// Organizations work across towns, so the admin needs scope over the
	// town bought for, not over the organization's home.
	org, err := s.c.Orgs.Get(ctx, in.OrgID)
	if err != nil {
		return OrderView{}, notFound("机构", err)
	}
	var fe []apperr.FieldError
	if in.Quantity < 1 || in.Quantity > maxOrderQuantity {
		fe = append(fe, apperr.FieldError{Field: "quantity", Reason: "range_1_100000"})
	}
	if in.PeriodEnd.Before(in.PeriodStart) {
		fe = append(fe, apperr.FieldError{Field: "period_end", Reason: "before_period_start"})
	} else if in.PeriodEnd.Sub(in.PeriodStart) >= maxOrderDays*24*time.Hour {
		fe = append(fe, apperr.FieldError{Field: "period_end", Reason: "period_over_366_days"})
	}
	if len(fe) > 0 {
		return OrderView{}, apperr.Invalid("订单信息不正确", fe...)
	}
	if !item.Active {
		return OrderView{}, apperr.New(apperr.ErrConflict, "ITEM_INACTIVE", "该服务项目已停用")
	}
	if org.Status != model.OrgActive {
		return OrderView{}, apperr.New(apperr.ErrConflict, "ORG_SUSPENDED", "机构已暂停，不能下单")
	}
	full := int64(in.Quantity) * item.UnitPriceFen
	budget := full
	if in.BudgetFen != nil {
		if *in.BudgetFen < full {
			return OrderView{}, budgetTooLow(full)
		}
		budget = *in.BudgetFen
	}
	o := model.Order{ID: ids.New(), OrgID: org.ID, ItemID: item.ID, RegionID: town.ID,
		PeriodStart: in.PeriodStart.UTC(), PeriodEnd: in.PeriodEnd.UTC(), Quantity: in.Quantity,
		UnitPriceFen: item.UnitPriceFen, BudgetFen: budget, Status: model.OrderOpen, CreatedBy: p.UserID}
	err = s.c.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.c.Orders.Create(ctx, &o); err != nil {
			return err
		}
		return s.c.Audit.Record(ctx, AuditEntry{Action: "order.create", ObjectType: "order", ObjectID: o.ID, After: o})
	})
	if err != nil {
		return OrderView{}, err
	}
	return orderView(o, item, org, town), nil
}

// budgetTooLow: a budget below quantity × price would leave sessions the
// bureau ordered unpayable, which is a typing mistake, not a policy.
func budgetTooLow(min int64) error {
	return apperr.New(apperr.ErrInvalid, "BUDGET_TOO_LOW", "预算不能低于数量×单价").
		WithFields(apperr.FieldError{Field: "budget_fen", Reason: "min_quantity_x_unit_price"}).
		WithDetails(map[string]any{"min_budget_fen": min})
}

// Update changes an order's quantity, budget or status (bureau_admin over
// the town). The quantity cannot fall below the sessions already consumed;
// raising it past the budget raises the budget to quantity × price.
func (s *Orders) Update(ctx context.Context, id string, in OrderPatch) (OrderView, error) {
	p := PrincipalFrom(ctx)
	if in.Quantity != nil && (*in.Quantity < 1 || *in.Quantity > maxOrderQuantity) {
		return OrderView{}, apperr.Invalid("订单信息不正确", apperr.FieldError{Field: "quantity", Reason: "range_1_100000"})
	}
	if in.Status != nil && *in.Status != model.OrderOpen && *in.Status != model.OrderClosed {
		return OrderView{}, apperr.New(apperr.ErrInvalid, "UNKNOWN_ENUM_VALUE", "取值不在允许范围内").
			WithFields(apperr.FieldError{Field: "status", Reason: "one_of:open,closed"})
	}
	var o model.Order
	err := s.c.Tx.InTx(ctx, func(ctx context.Context) error {
		before, err := s.c.Orders.Lock(ctx, id)
		if err != nil {
			return notFound("订单", err)
		}
		town, err := s.c.Regions.Get(ctx, before.RegionID)
		if err != nil || !p.CanRegion(town.Path, model.RoleBureauAdmin) {
			return notFound("订单", err)
		}
		o = before
		if in.Quantity != nil {
			if *in.Quantity < before.UsedCount {
				return apperr.New(apperr.ErrConflict, "QUANTITY_BELOW_USED", "数量不能少于已使用的场次").
					WithDetails(map[string]any{"used_count": before.UsedCount})
			}
			o.Quantity = *in.Quantity
		}
		if in.Status != nil {
			o.Status = *in.Status
		}
		full := int64(o.Quantity) * o.UnitPriceFen
		switch {
		case in.BudgetFen != nil && *in.BudgetFen < full:
			return budgetTooLow(full)
		case in.BudgetFen != nil:
			o.BudgetFen = *in.BudgetFen
		case o.BudgetFen < full:
			o.BudgetFen = full
		}
		cols := map[string]any{"quantity": o.Quantity, "status": o.Status, "budget_fen": o.BudgetFen}
		// Guard on used_count only when the quantity changes: an order
		// already past its quantity (flagged sessions) can still be closed.
		maxUsed := math.MaxInt32
		if in.Quantity != nil {
			maxUsed = o.Quantity
		}
		ok, err := s.c.Orders.UpdateGuarded(ctx, id, cols, before.Status, maxUsed)
		if err != nil {
			return err
		}
		if !ok {
			return apperr.New(apperr.ErrConflict, "CONFLICT", "订单已被修改，请刷新后重试")
		}
		if o, err = s.c.Orders.Get(ctx, id); err != nil {
			return err
		}
		// A raised quantity makes held-back approved sessions payable (and a
		// lowered one the reverse), in the same transaction.
		if in.Quantity != nil && s.payable != nil && o.Quantity != before.Quantity {
			if _, err := s.payable.RecomputePayable(ctx, id); err != nil {
				return err
			}
		}
		return s.c.Audit.Record(ctx, AuditEntry{Action: "order.update", ObjectType: "order", ObjectID: id,
			Before: orderAudit(before), After: orderAudit(o)})
	})
	if err != nil {
		return OrderView{}, err
	}
	views, err := s.views(ctx, []model.Order{o})
	if err != nil {
		return OrderView{}, err
	}
	return views[0], nil
}

func orderAudit(o model.Order) map[string]any {
	return map[string]any{"quantity": o.Quantity, "used_count": o.UsedCount, "status": o.Status,
		"budget_fen": o.BudgetFen, "unit_price_fen": o.UnitPriceFen}
}

// Visible returns an order to members of its organization and to bureau
// staff over its town; to anyone else it does not exist.
func (s *Orders) Visible(ctx context.Context, id string) (OrderView, error) {
	p := PrincipalFrom(ctx)
	o, err := s.c.Orders.Get(ctx, id)
	if err != nil {
		return OrderView{}, notFound("订单", err)
	}
	if !p.CanOrg(o.OrgID, model.RoleWorker, model.RoleOrgAdmin) {
		town, err := s.c.Regions.Get(ctx, o.RegionID)
		if err != nil || !p.CanRegion(town.Path, orderStaffRoles...) {
			return OrderView{}, notFound("订单", err)
		}
	}
	views, err := s.views(ctx, []model.Order{o})
	if err != nil {
		return OrderView{}, err
	}
	return views[0], nil
}

// OrderQuery filters order listings.
type OrderQuery struct {
	OrgID, ItemID, TownID, Status string
	Cursor                        string
	Limit                         int
}

// ListForStaff lists orders of the towns in the caller's region scope.
func (s *Orders) ListForStaff(ctx context.Context, q OrderQuery) ([]OrderView, string, error) {
	p := PrincipalFrom(ctx)
	var towns []string
	seen := map[string]bool{}
	for _, path := range p.RegionPaths(orderStaffRoles...) {
		sub, err := s.c.Regions.Subtree(ctx, path, model.LevelTown)
		if err != nil {
			return nil, "", err
		}
		for _, r := range sub {
			if !seen[r.ID] {
				seen[r.ID] = true
				towns = append(towns, r.ID)
			}
		}
	}
	if len(towns) == 0 || (q.TownID != "" && !seen[q.TownID]) {
		return nil, "", nil
	}
	return s.list(ctx, repository.OrderFilter{RegionIDs: towns, OrgID: q.OrgID, ItemID: q.ItemID,
		RegionID: q.TownID, Status: q.Status}, q)
}

// ListForMember lists the orders of the caller's organizations (workers and
// org_admins): what they may record sessions against and what remains.
func (s *Orders) ListForMember(ctx context.Context, q OrderQuery) ([]OrderView, string, error) {
	orgs := PrincipalFrom(ctx).OrgIDs(model.RoleWorker, model.RoleOrgAdmin)
	if len(orgs) == 0 || (q.OrgID != "" && !slices.Contains(orgs, q.OrgID)) {
		return nil, "", nil
	}
	return s.list(ctx, repository.OrderFilter{OrgIDs: orgs, OrgID: q.OrgID, ItemID: q.ItemID,
		RegionID: q.TownID, Status: q.Status}, q)
}

func (s *Orders) list(ctx context.Context, f repository.OrderFilter, q OrderQuery) ([]OrderView, string, error) {
	f.Before, f.Limit = q.Cursor, q.Limit+1
	rows, err := s.c.Orders.List(ctx, f)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(rows) > q.Limit {
		rows, next = rows[:q.Limit], rows[q.Limit-1].ID
	}
	views, err := s.views(ctx, rows)
	return views, next, err
}

// views attaches names with one query per kind, not one per row.
func (s *Orders) views(ctx context.Context, rows []model.Order) ([]OrderView, error) {
	var itemIDs, orgIDs, regionIDs []string
	for _, o := range rows {
		itemIDs, orgIDs, regionIDs = append(itemIDs, o.ItemID), append(orgIDs, o.OrgID), append(regionIDs, o.RegionID)
	}
	items, err := s.c.Items.GetMany(ctx, itemIDs)
	if err != nil {
		return nil, err
	}
	orgs, err := s.c.Orgs.GetMany(ctx, orgIDs)
	if err != nil {
		return nil, err
	}
	regions, err := s.c.Regions.GetMany(ctx, regionIDs)
	if err != nil {
		return nil, err
	}
	out := make([]OrderView, 0, len(rows))
	for _, o := range rows {
		out = append(out, orderView(o, items[o.ItemID], orgs[o.OrgID], regions[o.RegionID]))
	}
	return out, nil
}

func orderView(o model.Order, it model.ServiceItem, org model.Organization, town model.Region) OrderView {
	return OrderView{Order: o, ItemCode: it.Code, ItemName: it.Name, OrgName: org.Name, TownName: town.Name,
		Remaining: max(0, o.Quantity-o.UsedCount), Over: max(0, o.UsedCount-o.Quantity)}
}
