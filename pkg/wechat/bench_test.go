package wechat_test

import (
	"context"
	"testing"

	"qjmz/pkg/wechat"
)

// BenchmarkMsgSecCheck measures one text check through silenceper, the shared
// token in Redis and the loopback fake: the overhead this package adds on
// top of WeChat's own latency.
func BenchmarkMsgSecCheck(b *testing.B) {
	a := newApp(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.client.MsgSecCheck(ctx, "o_1", wechat.SceneComment, "社工服务很贴心"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyPushSignature(b *testing.B) {
	sig := wechat.PushSignature("push-token", "1714000000", "n0nce")
	for b.Loop() {
		if !wechat.VerifyPushSignature("push-token", "1714000000", "n0nce", sig) {
			b.Fatal("rejected")
		}
	}
}
