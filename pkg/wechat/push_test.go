package wechat_test

import (
	"errors"
	"strings"
	"testing"

	"qjmz/pkg/wechat"
	"qjmz/pkg/wechat/wechattest"
)

func TestVerifyPushSignature(t *testing.T) {
	t.Parallel()
	const token, ts, nonce = "push-token", "1714000000", "n0nce"
	good := wechat.PushSignature(token, ts, nonce)
	tests := []struct {
		name                        string
		token, ts, nonce, signature string
		want                        bool
	}{
		{"signed by WeChat", token, ts, nonce, good, true},
		{"upper-case hex", token, ts, nonce, strings.ToUpper(good), true},
		{"forged signature", token, ts, nonce, strings.Repeat("0", 40), false},
		{"signed with another token", token, ts, nonce, wechat.PushSignature("other", ts, nonce), false},
		{"timestamp replaced", token, "1714000001", nonce, good, false},
		{"unsigned", token, ts, nonce, "", false},
		{"no token configured", "", ts, nonce, wechat.PushSignature("", ts, nonce), false},
		{"no nonce", token, ts, "", wechat.PushSignature(token, ts, ""), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := wechat.VerifyPushSignature(tt.token, tt.ts, tt.nonce, tt.signature); got != tt.want {
				t.Fatalf("VerifyPushSignature = %v, want %v", got, tt.want)
			}
		})
	}
}

// The expected value was computed outside Go, as WeChat describes it:
// sha1 of "1372623149" + "1409659813" + "token" (sorted, concatenated).
func TestPushSignatureMatchesWeChatAlgorithm(t *testing.T) {
	t.Parallel()
	const want = "74ec3ddbfdaa9e34666e94a046804051e80c7749"
	got := wechat.PushSignature("token", "1409659813", "1372623149")
	if got != want {
		t.Fatalf("PushSignature = %s, want %s", got, want)
	}
}

func TestClientVerifyPushUsesConfiguredToken(t *testing.T) {
	t.Parallel()
	a := newApp(t) // PushToken "push-token"
	if !a.client.VerifyPush("1", "2", wechat.PushSignature("push-token", "1", "2")) {
		t.Fatal("genuine push rejected")
	}
	if a.client.VerifyPush("1", "2", wechat.PushSignature("guess", "1", "2")) {
		t.Fatal("push signed with another token accepted")
	}
}

func TestParseMediaCheckPush(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		body        string
		wantVerdict wechat.Verdict
		wantErr     error
	}{
		{"pass", string(wechattest.MediaCheckPushBody("wx1", "trace-1", "pass")), wechat.VerdictPass, nil},
		{"risky", string(wechattest.MediaCheckPushBody("wx1", "trace-1", "risky")), wechat.VerdictRisky, nil},
		{"review", string(wechattest.MediaCheckPushBody("wx1", "trace-1", "review")), wechat.VerdictReview, nil},
		{
			"WeChat could not check the image: a person must look",
			`{"Event":"wxa_media_check","trace_id":"trace-1","errcode":-1008,"errmsg":"download failed","result":{"suggest":"pass"}}`,
			wechat.VerdictReview, nil,
		},
		{
			"unknown suggestion: a person must look",
			`{"Event":"wxa_media_check","trace_id":"trace-1","errcode":0,"result":{"suggest":"maybe"}}`,
			wechat.VerdictReview, nil,
		},
		{"another event", `{"Event":"subscribe_msg_popup_event","trace_id":"trace-1"}`, "", wechat.ErrInvalidPush},
		{"no trace id", `{"Event":"wxa_media_check","result":{"suggest":"pass"}}`, "", wechat.ErrInvalidPush},
		{"XML body", `<xml><Event>wxa_media_check</Event></xml>`, "", wechat.ErrInvalidPush},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := wechat.ParseMediaCheckPush([]byte(tt.body))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if ev.TraceID != "trace-1" || ev.Verdict != tt.wantVerdict {
				t.Fatalf("event = %+v, want trace-1 %s", ev, tt.wantVerdict)
			}
		})
	}
}
