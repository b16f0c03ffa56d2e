package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"qjmz/model"
	"qjmz/pkg/apperr"
	"qjmz/pkg/ids"
	"qjmz/service"
)

type itemRef struct {
	ID   string `json:"id"`
	Code string `json:"code"`
	Name string `json:"name"`
}

type orderDTO struct {
	ID           string    `json:"id"`
	Organization orgRef    `json:"organization"`
	Item         itemRef   `json:"item"`
	Town         regionRef `json:"town"`
	PeriodStart  string    `json:"period_start"`
	PeriodEnd    string    `json:"period_end"`
	Quantity     int       `json:"quantity"`
	UsedCount    int       `json:"used_count"`
	Remaining    int       `json:"remaining"`
	OverQuantity int       `json:"over_quantity"`
	UnitPriceFen int64     `json:"unit_price_fen"`
	BudgetFen    int64     `json:"budget_fen"`
	Status       string    `json:"status"`
	CreatedAt    string    `json:"created_at"`
	UpdatedAt    string    `json:"updated_at"`
}

const dateLayout = "2006-01-02"

// day renders a stored calendar day (00:00 China time) as YYYY-MM-DD.
func day(t time.Time) string { return t.In(beijing).Format(dateLayout) }

func orderOut(v service.OrderView) orderDTO {
	o := v.Order
	return orderDTO{ID: o.ID, Organization: orgRef{ID: o.OrgID, Name: v.OrgName},
		Item: itemRef{ID: o.ItemID, Code: v.ItemCode, Name: v.ItemName}, Town: regionRef{ID: o.RegionID, Name: v.TownName, Level: model.LevelTown},
		PeriodStart: day(o.PeriodStart), PeriodEnd: day(o.PeriodEnd), Quantity: o.Quantity, UsedCount: o.UsedCount,
		Remaining: v.Remaining, OverQuantity: v.Over, UnitPriceFen: o.UnitPriceFen, BudgetFen: o.BudgetFen,
		Status: o.Status, CreatedAt: ts(o.CreatedAt), UpdatedAt: ts(o.UpdatedAt)}
}

func ordersOut(rows []service.OrderView) []orderDTO {
	out := make([]orderDTO, 0, len(rows))
	for _, v := range rows {
		out = append(out, orderOut(v))
	}
	return out
}

type createOrderRequest struct {
	OrgID       string `json:"organization_id" binding:"required"`
	ItemID      string `json:"item_id" binding:"required"`
	TownID      string `json:"town_id" binding:"required"`
	PeriodStart string `json:"period_start" binding:"required"`
	PeriodEnd   string `json:"period_end" binding:"required"`
	Quantity    int    `json:"quantity" binding:"required"`
	BudgetFen   *int64 `json:"budget_fen"`
}

func (s *server) createOrder(c *gin.Context) {
	var req createOrderRequest
	if !s.bindJSON(c, &req) {
		return
	}
	for _, id := range []string{req.OrgID, req.ItemID, req.TownID} {
		if !ids.Valid(id) {
			fail(c, s.log, apperr.NotFound("对象"))
			return
		}
	}
	start, err1 := time.ParseInLocation(dateLayout, req.PeriodStart, beijing)
	end, err2 := time.ParseInLocation(dateLayout, req.PeriodEnd, beijing)
	if err1 != nil || err2 != nil {
		field := "period_start"
		if err1 == nil {
			field = "period_end"
		}
		fail(c, s.log, apperr.Invalid("日期格式应为 YYYY-MM-DD", apperr.FieldError{Field: field, Reason: "date"}))
		return
	}
	v, err := s.Orders.Create(c.Request.Context(), service.OrderInput{OrgID: req.OrgID, ItemID: req.ItemID, TownID: req.TownID,
		PeriodStart: start, PeriodEnd: end, Quantity: req.Quantity, BudgetFen: req.BudgetFen})
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusCreated, orderOut(v))
}

type updateOrderRequest struct {
	Quantity  *int    `json:"quantity"`
	Status    *string `json:"status" binding:"omitempty,oneof=open closed"`
	BudgetFen *int64  `json:"budget_fen"`
}

func (s *server) updateOrder(c *gin.Context) {
	id, ok := s.idParam(c, "订单")
	if !ok {
		return
	}
	var req updateOrderRequest
	if !s.bindJSON(c, &req) {
		return
	}
	v, err := s.Orders.Update(c.Request.Context(), id, service.OrderPatch(req))
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, orderOut(v))
}

// orderQuery reads the list filters; status "all" (or empty, with no
// default) means any status.
func (s *server) orderQuery(c *gin.Context, defaultStatus string) (service.OrderQuery, bool) {
	limit, err := limitParam(c, 20, 100)
	if err != nil {
		fail(c, s.log, err)
		return service.OrderQuery{}, false
	}
	status := c.DefaultQuery("status", defaultStatus)
	switch status {
	case "all":
		status = ""
	case "", model.OrderOpen, model.OrderClosed:
	default:
		fail(c, s.log, apperr.New(apperr.ErrInvalid, "UNKNOWN_ENUM_VALUE", "取值不在允许范围内").
			WithFields(apperr.FieldError{Field: "status", Reason: "one_of:open,closed,all"}))
		return service.OrderQuery{}, false
	}
	return service.OrderQuery{OrgID: c.Query("organization_id"), ItemID: c.Query("item_id"), TownID: c.Query("town_id"),
		Status: status, Cursor: c.Query("cursor"), Limit: limit}, true
}

func (s *server) listOrdersAdmin(c *gin.Context) {
	q, ok := s.orderQuery(c, "")
	if !ok {
		return
	}
	rows, next, err := s.Orders.ListForStaff(c.Request.Context(), q)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, list(ordersOut(rows), next))
}

func (s *server) listMyOrders(c *gin.Context) {
	q, ok := s.orderQuery(c, model.OrderOpen)
	if !ok {
		return
	}
	rows, next, err := s.Orders.ListForMember(c.Request.Context(), q)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, list(ordersOut(rows), next))
}

func (s *server) getOrder(c *gin.Context) {
	id, ok := s.idParam(c, "订单")
	if !ok {
		return
	}
	v, err := s.Orders.Visible(c.Request.Context(), id)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, orderOut(v))
}
