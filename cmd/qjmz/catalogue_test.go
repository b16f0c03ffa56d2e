package main

import (
	"fmt"
	"strings"
	"testing"
)

// names lists the "name" of every item of a list response.
func names(r resp) []string {
	var out []string
	for _, it := range r.items() {
		out = append(out, fmt.Sprint(it["name"]))
	}
	return out
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestCatalogue(t *testing.T) {
	h := newHarness(t, nil)
	admin := h.token("admin")
	worker := h.token("worker-haoxinqing")
	resident := h.token("resident")

	t.Run("internal items are listed to workers, never to residents", func(t *testing.T) {
		for _, tc := range []struct {
			who          string
			token        string
			seesInternal bool
		}{{"resident", resident, false}, {"worker", worker, true}, {"admin", admin, true}} {
			r := h.do("GET", "/api/v1/service-items?limit=200", tc.token, nil)
			h.expect(r, 200, "")
			got := names(r)
			if !has(got, "助浴") || !has(got, "适老化改造") {
				t.Fatalf("%s: public items missing: %v", tc.who, got)
			}
			if has(got, "个案管理") != tc.seesInternal || has(got, "渝康行动") != tc.seesInternal {
				t.Fatalf("%s: internal items shown=%v, want %v: %v", tc.who, has(got, "个案管理"), tc.seesInternal, got)
			}
		}
		h.expect(h.do("GET", "/api/v1/service-items", "", nil), 401, "UNAUTHENTICATED")
	})

	t.Run("demo catalogue carries the evidence rules and the household cap", func(t *testing.T) {
		r := h.do("GET", "/api/v1/service-items?limit=200", worker, nil)
		for _, it := range r.items() {
			switch it["name"] {
			case "助浴":
				if it["video_required"] != true || it["min_video_seconds"].(float64) < 15 || it["beneficiaries_required"] != true {
					t.Fatalf("助浴 rules: %v", it)
				}
			case "适老化改造":
				if it["cap_scope"] != "household" || it["cap_fen"].(float64) != 200000 || it["review_levels"].(float64) != 2 {
					t.Fatalf("适老化改造 cap: %v", it)
				}
			}
			if p := it["unit_price_fen"].(float64); p < 30000 || p > 50000 {
				t.Fatalf("price outside 300–500 yuan: %v", it)
			}
		}
	})

	var itemID string
	t.Run("admin creates an item; bad input is refused", func(t *testing.T) {
		item := map[string]any{"code": "test_walk", "name": "陪同散步", "category": "为老服务", "unit_price_fen": 36000,
			"min_photos": 2, "min_participants": 1, "min_duration_minutes": 30}
		r := h.do("POST", "/api/v1/admin/service-items", admin, item)
		h.expect(r, 201, "")
		itemID = r.str("id")
		if r.str("code") != "TEST_WALK" || r.str("visibility") != "public" || r.Body["review_levels"].(float64) != 1 ||
			r.Body["active"] != true || r.str("cap_scope") != "none" {
			t.Fatalf("defaults: %s", r.Raw)
		}
		h.expect(h.do("POST", "/api/v1/admin/service-items", admin, item), 409, "ITEM_CODE_TAKEN")
		h.expect(h.do("POST", "/api/v1/admin/service-items", worker, item), 403, "FORBIDDEN_ROLE")
		for _, tc := range []struct {
			name  string
			patch map[string]any
			code  string
		}{
			{"cap without beneficiaries", map[string]any{"cap_scope": "household", "cap_fen": 200000}, "VALIDATION_FAILED"},
			{"video seconds without video", map[string]any{"min_video_seconds": 15}, "VALIDATION_FAILED"},
			{"price zero", map[string]any{"unit_price_fen": 0}, "VALIDATION_FAILED"},
			{"unknown visibility", map[string]any{"visibility": "secret"}, "UNKNOWN_ENUM_VALUE"},
			{"three review levels", map[string]any{"review_levels": 3}, "UNKNOWN_ENUM_VALUE"},
		} {
			body := map[string]any{"code": "BAD_" + fmt.Sprint(len(tc.name)), "name": "坏项目", "category": "测试", "unit_price_fen": 30000}
			for k, v := range tc.patch {
				body[k] = v
			}
			h.expect(h.do("POST", "/api/v1/admin/service-items", admin, body), 400, tc.code)
		}
	})

	t.Run("a price change never alters existing orders", func(t *testing.T) {
		order := map[string]any{"organization_id": h.orgID("黔江好心情公益服务中心"), "item_id": itemID, "town_id": h.regionID("城南街道"),
			"period_start": "2026-04-01", "period_end": "2026-06-30", "quantity": 10}
		before := h.do("POST", "/api/v1/admin/orders", admin, order)
		h.expect(before, 201, "")
		if before.Body["unit_price_fen"].(float64) != 36000 || before.Body["budget_fen"].(float64) != 360000 {
			t.Fatalf("order price: %s", before.Raw)
		}
		r := h.do("PATCH", "/api/v1/admin/service-items/"+itemID, admin, map[string]any{"unit_price_fen": 45000})
		h.expect(r, 200, "")
		if r.Body["unit_price_fen"].(float64) != 45000 || r.str("name") != "陪同散步" {
			t.Fatalf("patch changed other fields or not the price: %s", r.Raw)
		}
		after := h.do("GET", "/api/v1/orders/"+before.str("id"), admin, nil)
		h.expect(after, 200, "")
		if after.Body["unit_price_fen"].(float64) != 36000 || after.Body["budget_fen"].(float64) != 360000 {
			t.Fatalf("existing order repriced: %s", after.Raw)
		}
		fresh := h.do("POST", "/api/v1/admin/orders", admin, order)
		if fresh.Body["unit_price_fen"].(float64) != 45000 {
			t.Fatalf("new order not at new price: %s", fresh.Raw)
		}
		ev := h.do("GET", "/api/v1/audit/events?action=service_item.update&object_id="+itemID, admin, nil)
		if len(ev.items()) != 1 || !strings.Contains(fmt.Sprint(ev.items()[0]["before"]), "36000") ||
			!strings.Contains(fmt.Sprint(ev.items()[0]["after"]), "45000") {
			t.Fatalf("price change not audited with before/after: %s", ev.Raw)
		}
	})

	t.Run("a deactivated item disappears and cannot be ordered", func(t *testing.T) {
		h.expect(h.do("PATCH", "/api/v1/admin/service-items/"+itemID, admin, map[string]any{"active": false}), 200, "")
		if has(names(h.do("GET", "/api/v1/service-items?limit=200", worker, nil)), "陪同散步") {
			t.Fatal("inactive item still listed to workers")
		}
		if !has(names(h.do("GET", "/api/v1/service-items?limit=200&include_inactive=true", admin, nil)), "陪同散步") {
			t.Fatal("admin cannot see the inactive item")
		}
		h.expect(h.do("POST", "/api/v1/admin/orders", admin, map[string]any{"organization_id": h.orgID("黔江好心情公益服务中心"),
			"item_id": itemID, "town_id": h.regionID("城南街道"), "period_start": "2026-04-01", "period_end": "2026-06-30", "quantity": 1}), 409, "ITEM_INACTIVE")
	})

	t.Run("pages by code", func(t *testing.T) {
		first := h.do("GET", "/api/v1/service-items?limit=5", worker, nil)
		if len(first.items()) != 5 || first.str("next_cursor") == "" {
			t.Fatalf("first page: %s", first.Raw)
		}
		second := h.do("GET", "/api/v1/service-items?limit=5&cursor="+first.str("next_cursor"), worker, nil)
		if len(second.items()) == 0 || has(names(first), fmt.Sprint(second.items()[0]["name"])) {
			t.Fatalf("second page repeats: %s", second.Raw)
		}
		h.expect(h.do("GET", "/api/v1/service-items?limit=500", worker, nil), 400, "LIMIT_OUT_OF_RANGE")
	})
}

func TestOrders(t *testing.T) {
	h := newHarness(t, nil)
	admin := h.token("admin")
	worker := h.token("worker-haoxinqing")
	zhishan := h.token("worker-zhishan")
	chengnanReviewer := h.token("reviewer-chengnan")
	chengxiReviewer := h.token("reviewer-chengxi")
	hx := h.orgID("黔江好心情公益服务中心")
	chengnan, chengdong := h.regionID("城南街道"), h.regionID("城东街道")
	var bathing string
	h.app.DB.Raw("SELECT id FROM service_items WHERE code = 'BATHING'").Scan(&bathing)

	// A bureau admin for 城南街道 only.
	_ = h.token("townadmin")
	var uid string
	h.app.DB.Raw("SELECT id FROM users WHERE open_id = 'dev_townadmin'").Scan(&uid)
	h.expect(h.do("POST", "/api/v1/admin/role-bindings", admin, map[string]any{"user_id": uid, "role": "bureau_admin", "region_id": chengnan}), 201, "")
	townAdmin := h.token("townadmin")

	order := func(town string, extra map[string]any) map[string]any {
		m := map[string]any{"organization_id": hx, "item_id": bathing, "town_id": town,
			"period_start": "2026-04-01", "period_end": "2026-06-30", "quantity": 8}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}

	t.Run("creation is scoped to the admin's towns and validated", func(t *testing.T) {
		h.expect(h.do("POST", "/api/v1/admin/orders", townAdmin, order(chengdong, nil)), 404, "NOT_FOUND")
		r := h.do("POST", "/api/v1/admin/orders", townAdmin, order(chengnan, map[string]any{"budget_fen": 400000}))
		h.expect(r, 201, "")
		if r.Body["budget_fen"].(float64) != 400000 || r.Body["remaining"].(float64) != 8 || r.str("period_end") != "2026-06-30" ||
			r.Body["town"].(map[string]any)["name"] != "城南街道" || r.Body["item"].(map[string]any)["name"] != "助浴" {
			t.Fatalf("created order: %s", r.Raw)
		}
		for _, tc := range []struct {
			name   string
			body   map[string]any
			status int
			code   string
		}{
			{"community is not a town", order(h.regionID("青社社区"), nil), 400, "REGION_NOT_TOWN"},
			{"budget below quantity × price", order(chengnan, map[string]any{"budget_fen": 100}), 400, "BUDGET_TOO_LOW"},
			{"period ends before it starts", order(chengnan, map[string]any{"period_end": "2026-03-01"}), 400, "VALIDATION_FAILED"},
			{"not a date", order(chengnan, map[string]any{"period_start": "April"}), 400, "VALIDATION_FAILED"},
			{"zero quantity", order(chengnan, map[string]any{"quantity": 0}), 400, "VALIDATION_FAILED"},
			{"worker may not order", nil, 403, "FORBIDDEN_ROLE"},
		} {
			tok := admin
			if tc.body == nil {
				tok, tc.body = worker, order(chengnan, nil)
			}
			h.expect(h.do("POST", "/api/v1/admin/orders", tok, tc.body), tc.status, tc.code)
		}
	})

	var demoBathing map[string]any
	t.Run("workers see their organization's open orders with what remains", func(t *testing.T) {
		r := h.do("GET", "/api/v1/orders?limit=100", worker, nil)
		h.expect(r, 200, "")
		for _, o := range r.items() {
			if o["organization"].(map[string]any)["id"] != hx || o["status"] != "open" {
				t.Fatalf("foreign or closed order listed: %v", o)
			}
			if o["item"].(map[string]any)["name"] == "助浴" && o["quantity"].(float64) == 40 {
				demoBathing = o
			}
		}
		if demoBathing == nil || demoBathing["remaining"].(float64) != 40 || demoBathing["town"].(map[string]any)["name"] != "城南街道" {
			t.Fatalf("demo 助浴 order in 城南街道 missing: %s", r.Raw)
		}
		id := demoBathing["id"].(string)
		h.expect(h.do("GET", "/api/v1/orders/"+id, worker, nil), 200, "")
		h.expect(h.do("GET", "/api/v1/orders/"+id, zhishan, nil), 404, "NOT_FOUND")
		h.expect(h.do("GET", "/api/v1/orders/"+id, chengxiReviewer, nil), 404, "NOT_FOUND")
		h.expect(h.do("GET", "/api/v1/orders/"+id, chengnanReviewer, nil), 200, "")
		h.expect(h.do("GET", "/api/v1/orders/"+id, h.token("resident"), nil), 404, "NOT_FOUND")
		for _, o := range h.do("GET", "/api/v1/orders?limit=100", zhishan, nil).items() {
			if o["organization"].(map[string]any)["id"] == hx {
				t.Fatalf("至善 worker sees 好心情's order: %v", o)
			}
		}
	})

	t.Run("staff list orders in scope with filters and pages", func(t *testing.T) {
		r := h.do("GET", "/api/v1/admin/orders?limit=100&town_id="+chengnan+"&status=open", admin, nil)
		h.expect(r, 200, "")
		if len(r.items()) < 5 {
			t.Fatalf("城南 orders: %s", r.Raw)
		}
		for _, o := range r.items() {
			if o["town"].(map[string]any)["id"] != chengnan {
				t.Fatalf("filter ignored: %v", o)
			}
		}
		for _, o := range h.do("GET", "/api/v1/admin/orders?limit=100", chengxiReviewer, nil).items() {
			if o["town"].(map[string]any)["name"] != "城西街道" {
				t.Fatalf("城西 reviewer sees another town's order: %v", o)
			}
		}
		if n := len(h.do("GET", "/api/v1/admin/orders?town_id="+chengnan, chengxiReviewer, nil).items()); n != 0 {
			t.Fatalf("town filter outside scope returned %d orders", n)
		}
		zs := h.orgID("至善社会工作服务中心")
		for _, o := range h.do("GET", "/api/v1/admin/orders?organization_id="+zs, admin, nil).items() {
			if o["organization"].(map[string]any)["id"] != zs {
				t.Fatalf("org filter ignored: %v", o)
			}
		}
		p1 := h.do("GET", "/api/v1/admin/orders?limit=3", admin, nil)
		p2 := h.do("GET", "/api/v1/admin/orders?limit=3&cursor="+p1.str("next_cursor"), admin, nil)
		if len(p1.items()) != 3 || len(p2.items()) == 0 || p2.items()[0]["id"] == p1.items()[2]["id"] {
			t.Fatalf("pages: %s / %s", p1.Raw, p2.Raw)
		}
		h.expect(h.do("GET", "/api/v1/admin/orders?status=done", admin, nil), 400, "UNKNOWN_ENUM_VALUE")
		h.expect(h.do("GET", "/api/v1/admin/orders", worker, nil), 403, "FORBIDDEN_ROLE")
	})

	t.Run("raising the quantity is audited; it never drops below what was used", func(t *testing.T) {
		id := demoBathing["id"].(string)
		r := h.do("PATCH", "/api/v1/admin/orders/"+id, admin, map[string]any{"quantity": 50})
		h.expect(r, 200, "")
		if r.Body["remaining"].(float64) != 50 || r.Body["budget_fen"].(float64) != 50*40000 {
			t.Fatalf("raised order: %s", r.Raw)
		}
		ev := h.do("GET", "/api/v1/audit/events?action=order.update&object_id="+id, admin, nil)
		if len(ev.items()) != 1 || !strings.Contains(fmt.Sprint(ev.items()[0]["before"]), `"quantity":40`) ||
			!strings.Contains(fmt.Sprint(ev.items()[0]["after"]), `"quantity":50`) {
			t.Fatalf("quantity change not audited: %s", ev.Raw)
		}
		h.app.DB.Exec("UPDATE orders SET used_count = 5 WHERE id = ?", id)
		h.expect(h.do("PATCH", "/api/v1/admin/orders/"+id, admin, map[string]any{"quantity": 3}), 409, "QUANTITY_BELOW_USED")
		if got := h.do("GET", "/api/v1/orders/"+id, worker, nil); got.Body["remaining"].(float64) != 45 {
			t.Fatalf("remaining after 5 used: %s", got.Raw)
		}
		// Sessions approved past the quantity show as over, and such an
		// order can still be closed.
		h.app.DB.Exec("UPDATE orders SET used_count = 55 WHERE id = ?", id)
		if got := h.do("GET", "/api/v1/orders/"+id, worker, nil); got.Body["remaining"].(float64) != 0 || got.Body["over_quantity"].(float64) != 5 {
			t.Fatalf("over quantity: %s", got.Raw)
		}
		h.expect(h.do("PATCH", "/api/v1/admin/orders/"+id, townAdmin, map[string]any{"status": "closed"}), 200, "")
		for _, o := range h.do("GET", "/api/v1/orders?limit=100", worker, nil).items() {
			if o["id"] == id {
				t.Fatal("closed order still among the worker's open orders")
			}
		}
		if !strings.Contains(string(h.do("GET", "/api/v1/orders?limit=100&status=all", worker, nil).Raw), id) {
			t.Fatal("closed order missing from status=all")
		}
	})

	t.Run("a town admin cannot touch another town's order", func(t *testing.T) {
		var id string
		h.app.DB.Raw("SELECT id FROM orders WHERE region_id = ? LIMIT 1", chengdong).Scan(&id)
		h.expect(h.do("PATCH", "/api/v1/admin/orders/"+id, townAdmin, map[string]any{"quantity": 99}), 404, "NOT_FOUND")
	})
}
