package main

import (
	"fmt"
	"strings"
	"testing"

	"qjmz/model"
	"qjmz/service/demo"
)

func TestBeneficiaries(t *testing.T) {
	h := newHarness(t, nil)
	worker := h.token("worker-haoxinqing") // 好心情 holds orders in 城南街道
	zhishan := h.token("worker-zhishan")   // 至善 holds orders in 城东街道 only
	chengnan := h.token("reviewer-chengnan")
	chengxi := h.token("reviewer-chengxi")
	auditor := h.token("auditor")
	qingshe := h.regionID("青社社区")

	idNumber := demo.IDNumber("50011419800101991")
	person := func(extra map[string]any) map[string]any {
		m := map[string]any{"name": "张小三", "id_number": idNumber, "phone": "13800000000", "household": "QS-05-0501",
			"community_id": qingshe, "categories": []string{"低保", "特困"}}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}

	var id string
	t.Run("a worker registers a person and sees them masked", func(t *testing.T) {
		r := h.do("POST", "/api/v1/beneficiaries", worker, person(nil))
		h.expect(r, 201, "")
		id = r.str("id")
		if r.str("name") != "张*三" || r.str("id_number") != "5001**********"+idNumber[14:] || r.str("phone") != "138****0000" {
			t.Fatalf("not masked: %s", r.Raw)
		}
		if fmt.Sprint(r.Body["categories"]) != "[特困 低保]" || r.str("gender") != "male" || r.Body["public_consent"] != false {
			t.Fatalf("fields: %s", r.Raw)
		}
		if strings.Contains(string(r.Raw), idNumber) || strings.Contains(string(r.Raw), "张小三") {
			t.Fatalf("plaintext in response: %s", r.Raw)
		}
	})

	t.Run("personal data is encrypted at rest", func(t *testing.T) {
		var row model.Beneficiary
		if err := h.app.DB.Where("id = ?", id).Take(&row).Error; err != nil {
			t.Fatal(err)
		}
		for _, col := range []string{row.NameEnc, row.IDNumberEnc, row.PhoneEnc, row.IDIndex, *row.PhoneIndex} {
			if col == "" || strings.Contains(col, "张小三") || strings.Contains(col, idNumber) || strings.Contains(col, "13800000000") {
				t.Fatalf("plaintext or empty column at rest: %q", col)
			}
		}
	})

	t.Run("registering the same person again answers with the existing id", func(t *testing.T) {
		// Surrounding spaces are normalised away before the blind index.
		r := h.do("POST", "/api/v1/beneficiaries", worker, person(map[string]any{"id_number": " " + idNumber + " ", "name": "张三"}))
		h.expect(r, 409, "BENEFICIARY_EXISTS")
		if r.Body["details"].(map[string]any)["id"] != id {
			t.Fatalf("existing id not given: %s", r.Raw)
		}
	})

	t.Run("bad input is refused", func(t *testing.T) {
		bad := idNumber[:17] + string("0123456789X"[(strings.IndexByte("0123456789X", idNumber[17])+1)%11])
		minor := demo.IDNumber("50011420150101993")
		for _, tc := range []struct {
			name   string
			body   map[string]any
			status int
			code   string
		}{
			{"wrong check character", person(map[string]any{"id_number": bad}), 400, "ID_NUMBER_INVALID"},
			{"minor without guardian consent", person(map[string]any{"id_number": minor}), 400, "GUARDIAN_CONSENT_REQUIRED"},
			{"unknown category", person(map[string]any{"id_number": demo.IDNumber("50011419800101982"), "categories": []string{"富豪"}}), 400, "UNKNOWN_ENUM_VALUE"},
			{"bad phone", person(map[string]any{"id_number": demo.IDNumber("50011419800101982"), "phone": "12345"}), 400, "PHONE_INVALID"},
			{"no household", person(map[string]any{"id_number": demo.IDNumber("50011419800101982"), "household": ""}), 400, "VALIDATION_FAILED"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				h.expect(h.do("POST", "/api/v1/beneficiaries", worker, tc.body), tc.status, tc.code)
			})
		}
		r := h.do("POST", "/api/v1/beneficiaries", worker, person(map[string]any{"id_number": minor, "name": "张小四",
			"categories": []string{"儿童"}, "guardian_consent": true, "phone": ""}))
		h.expect(r, 201, "")
		if r.Body["age"].(float64) >= 18 || r.str("phone") != "" {
			t.Fatalf("minor: %s", r.Raw)
		}
	})

	t.Run("search by ID number and by community, within scope only", func(t *testing.T) {
		r := h.do("GET", "/api/v1/beneficiaries?id_number="+idNumber, worker, nil)
		h.expect(r, 200, "")
		if len(r.items()) != 1 || r.items()[0]["id"] != id {
			t.Fatalf("exact search: %s", r.Raw)
		}
		if strings.Contains(h.logs.String(), idNumber) {
			t.Fatal("the ID number reached the logs")
		}
		list := h.do("GET", "/api/v1/beneficiaries?community_id="+qingshe+"&limit=100", worker, nil)
		if len(list.items()) < 6 || !strings.Contains(string(list.Raw), "王*示") {
			t.Fatalf("community list lacks demo people or new ones: %s", list.Raw)
		}
		p1 := h.do("GET", "/api/v1/beneficiaries?community_id="+qingshe+"&limit=2", chengnan, nil)
		p2 := h.do("GET", "/api/v1/beneficiaries?community_id="+qingshe+"&limit=2&cursor="+p1.str("next_cursor"), chengnan, nil)
		if len(p2.items()) != 2 || p2.items()[0]["id"] == p1.items()[1]["id"] {
			t.Fatalf("pages: %s / %s", p1.Raw, p2.Raw)
		}
		// 至善 has no order in 城南街道: the person does not exist for them.
		if n := len(h.do("GET", "/api/v1/beneficiaries?id_number="+idNumber, zhishan, nil).items()); n != 0 {
			t.Fatalf("out-of-scope exact search found %d", n)
		}
		h.expect(h.do("GET", "/api/v1/beneficiaries?community_id="+qingshe, zhishan, nil), 404, "NOT_FOUND")
		h.expect(h.do("GET", "/api/v1/beneficiaries/"+id, zhishan, nil), 404, "NOT_FOUND")
		h.expect(h.do("POST", "/api/v1/beneficiaries", zhishan, person(map[string]any{"id_number": demo.IDNumber("50011419800101974")})), 404, "NOT_FOUND")
		h.expect(h.do("GET", "/api/v1/beneficiaries/"+id, chengxi, nil), 404, "NOT_FOUND")
		h.expect(h.do("GET", "/api/v1/beneficiaries", worker, nil), 400, "VALIDATION_FAILED")
		h.expect(h.do("GET", "/api/v1/beneficiaries?id_number=123", worker, nil), 400, "ID_NUMBER_INVALID")
		h.expect(h.do("GET", "/api/v1/beneficiaries/"+id, h.token("resident"), nil), 403, "FORBIDDEN_ROLE")
	})

	t.Run("edits are audited without plaintext", func(t *testing.T) {
		r := h.do("PATCH", "/api/v1/beneficiaries/"+id, worker, map[string]any{"public_consent": true, "phone": "13912345678",
			"categories": []string{"残疾"}})
		h.expect(r, 200, "")
		if r.Body["public_consent"] != true || r.str("phone") != "139****5678" || fmt.Sprint(r.Body["categories"]) != "[残疾]" {
			t.Fatalf("patched: %s", r.Raw)
		}
		ev := h.do("GET", "/api/v1/audit/events?action=beneficiary.update&object_id="+id, auditor, nil)
		if len(ev.items()) != 1 || strings.Contains(string(ev.Raw), "13912345678") || !strings.Contains(string(ev.Raw), "139****5678") {
			t.Fatalf("update audit: %s", ev.Raw)
		}
		var minorID string
		for _, it := range h.do("GET", "/api/v1/beneficiaries?community_id="+qingshe+"&limit=100", worker, nil).items() {
			if it["name"] == "张*四" {
				minorID = it["id"].(string)
			}
		}
		h.expect(h.do("PATCH", "/api/v1/beneficiaries/"+minorID, worker, map[string]any{"guardian_consent": false}), 400, "GUARDIAN_CONSENT_REQUIRED")
	})

	t.Run("plaintext only for reviewers in scope, with a purpose, audited", func(t *testing.T) {
		path := "/api/v1/beneficiaries/" + id + "/plaintext?purpose=" + "核实助浴服务对象身份"
		h.expect(h.do("GET", path, worker, nil), 403, "FORBIDDEN_ROLE")
		h.expect(h.do("GET", "/api/v1/beneficiaries/"+id+"/plaintext", chengnan, nil), 400, "VALIDATION_FAILED")
		h.expect(h.do("GET", "/api/v1/beneficiaries/"+id+"/plaintext?purpose="+strings.Repeat("查", 101), chengnan, nil), 400, "VALIDATION_FAILED")
		h.expect(h.do("GET", path, chengxi, nil), 404, "NOT_FOUND")

		r := h.do("GET", path, chengnan, nil, "X-Request-Id", "plaintext-read-1")
		h.expect(r, 200, "")
		if r.str("name") != "张小三" || r.str("id_number") != idNumber || r.str("phone") != "13912345678" {
			t.Fatalf("plaintext: %s", r.Raw)
		}
		if r.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("plaintext cacheable: %v", r.Header)
		}
		ev := h.do("GET", "/api/v1/audit/events?action=pii.read&object_id="+id, auditor, nil)
		h.expect(ev, 200, "")
		if len(ev.items()) != 1 {
			t.Fatalf("want exactly one pii.read (refused reads are not reads): %s", ev.Raw)
		}
		e := ev.items()[0]
		if e["reason"] != "核实助浴服务对象身份" || e["object_type"] != "beneficiary" || e["request_id"] != "plaintext-read-1" || e["actor_id"] == "" {
			t.Fatalf("pii.read event: %v", e)
		}
		h.expect(h.do("GET", path, h.token("bureau-reviewer"), nil), 200, "")
	})

	t.Run("the audit log holds no plaintext", func(t *testing.T) {
		var rows []model.AuditEvent
		h.app.DB.Find(&rows)
		for _, e := range rows {
			if strings.Contains(e.Before+e.After+e.Reason, idNumber) || strings.Contains(e.Before+e.After, "张小三") {
				t.Fatalf("plaintext in audit event %s", e.Action)
			}
		}
	})
}
