package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"qjmz/model"
	"qjmz/pkg/ids"
	"qjmz/service"
)

// TestOutboxRelayAgainstFakeWeChat queues subscribe messages in a business
// transaction and relays them through the real WeChat client to the local
// fake, which captures what a worker's phone would receive.
func TestOutboxRelayAgainstFakeWeChat(t *testing.T) {
	appID := "wx" + strings.ToLower(ids.New()[:16])
	fakeWeChat.RegisterApp(appID, "secret-"+appID)
	h := newHarness(t, map[string]string{
		"QJMZ_WECHAT_APP_ID": appID, "QJMZ_WECHAT_APP_SECRET": "secret-" + appID, "QJMZ_WECHAT_DEV_LOGIN": "false",
	})
	ctx := context.Background()
	var workerID, residentID string
	h.app.DB.Raw("SELECT id FROM users WHERE open_id = 'dev_worker-haoxinqing'").Scan(&workerID)
	h.app.DB.Raw("SELECT id FROM users WHERE open_id = 'dev_resident'").Scan(&residentID)
	fakeWeChat.SetSubscribeQuota(appID, "dev_resident", 0) // the resident gave no consent

	queue := func(to string) {
		err := h.app.Store.InTx(ctx, func(ctx context.Context) error {
			return h.app.Notify.Queue(ctx, service.SubscribePayload{ToUserID: to, TemplateID: "tpl-review",
				Page: "pages/record/detail?id=R1", Data: map[string]string{"thing1": "助浴服务", "phrase2": "已通过"}})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	queue(workerID)
	queue(residentID)
	// A rolled-back transaction leaves nothing to send.
	_ = h.app.Store.InTx(ctx, func(ctx context.Context) error {
		_ = h.app.Notify.Queue(ctx, service.SubscribePayload{ToUserID: workerID, TemplateID: "tpl-rolled-back"})
		return context.Canceled
	})

	fakeWeChat.FailNext(appID, "/cgi-bin/message/subscribe/send", http.StatusBadGateway)
	res, err := h.app.Notify.Relay(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if res.Retried != 1 || res.Skipped != 1 {
		t.Fatalf("first pass = %+v, want one retry (502) and one skip (43101)", res)
	}
	// Make the retry due now and relay again.
	h.app.DB.Exec("UPDATE outbox_messages SET next_attempt_at = ? WHERE status = 'pending'", "2000-01-01 00:00:00")
	res, err = h.app.Notify.Relay(ctx, 10)
	if err != nil || res.Sent != 1 {
		t.Fatalf("second pass = %+v %v, want the retry sent", res, err)
	}
	got := fakeWeChat.SubscribeMessages(appID)
	if len(got) != 1 || got[0].ToOpenID != "dev_worker-haoxinqing" || got[0].TemplateID != "tpl-review" || got[0].Data["phrase2"] != "已通过" {
		t.Fatalf("captured messages = %+v", got)
	}
	var rows []model.OutboxMessage
	h.app.DB.Order("seq").Find(&rows)
	if len(rows) != 2 || rows[0].Status != model.OutboxSent || rows[1].Status != model.OutboxSkipped || rows[0].Attempts != 2 {
		t.Fatalf("outbox rows = %+v", rows)
	}
	// Nothing left: a third pass sends nothing twice.
	if res, _ := h.app.Notify.Relay(ctx, 10); res != (service.RelayResult{}) {
		t.Fatalf("third pass did work: %+v", res)
	}
}
