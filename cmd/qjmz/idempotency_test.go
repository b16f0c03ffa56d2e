package main

import (
	"testing"
)

func TestIdempotencyKey(t *testing.T) {
	h := newHarness(t, nil)
	orgAdmin := h.token("orgadmin-haoxinqing")
	hx := h.orgID("黔江好心情公益服务中心")
	path := "/api/v1/organizations/" + hx + "/invites"
	body := map[string]any{"ttl_hours": 24}

	first := h.do("POST", path, orgAdmin, body, "Idempotency-Key", "invite-retry-0001")
	h.expect(first, 201, "")
	again := h.do("POST", path, orgAdmin, body, "Idempotency-Key", "invite-retry-0001")
	h.expect(again, 201, "")
	if again.str("code") != first.str("code") || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry did not replay the first answer: %s vs %s", first.Raw, again.Raw)
	}
	var n int
	h.app.DB.Raw("SELECT COUNT(*) FROM invites WHERE org_id = ?", hx).Scan(&n)
	if n != 1 {
		t.Fatalf("%d invites created by one request sent twice", n)
	}
	// The same key for a different request is refused.
	h.expect(h.do("POST", path, orgAdmin, map[string]any{"ttl_hours": 48}, "Idempotency-Key", "invite-retry-0001"), 422, "IDEMPOTENCY_KEY_REUSED")
	// Keys are per caller: another admin's identical key is a new request.
	other := h.token("admin")
	h.expect(h.do("POST", path, other, body, "Idempotency-Key", "invite-retry-0001"), 201, "")
	// A malformed key.
	h.expect(h.do("POST", path, orgAdmin, body, "Idempotency-Key", "short"), 400, "IDEMPOTENCY_KEY_INVALID")
	// No key: every request runs.
	h.expect(h.do("POST", path, orgAdmin, body), 201, "")
	h.app.DB.Raw("SELECT COUNT(*) FROM invites WHERE org_id = ?", hx).Scan(&n)
	if n != 3 {
		t.Fatalf("invites = %d, want 3", n)
	}
}
