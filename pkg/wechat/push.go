package wechat

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// PushSignature is WeChat's push-callback signature in plaintext mode:
// hex(sha1(the sorted token, timestamp and nonce, concatenated)).
func PushSignature(token, timestamp, nonce string) string {
	parts := []string{token, timestamp, nonce}
	sort.Strings(parts)
	sum := sha1.Sum([]byte(strings.Join(parts, "")))
	return hex.EncodeToString(sum[:])
}

// VerifyPushSignature reports whether signature is PushSignature(token,
// timestamp, nonce), in constant time. Anything unsigned, or an empty token,
// is rejected. Callers should also reject stale timestamps.
func VerifyPushSignature(token, timestamp, nonce, signature string) bool {
	if token == "" || timestamp == "" || nonce == "" || signature == "" {
		return false
	}
	want := PushSignature(token, timestamp, nonce)
	return subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(signature))) == 1
}

// MediaCheckEvent is the result of a MediaCheckAsync, pushed by WeChat.
type MediaCheckEvent struct {
	AppID   string
	TraceID string
	// Verdict is final. When WeChat could not check the image (ErrCode ≠ 0,
	// e.g. it could not download it) the verdict is review, so a person
	// looks at it instead of it passing unchecked.
	Verdict   Verdict
	Label     int // WeChat's label of the hit category; 100 is normal
	ErrCode   int
	ErrMsg    string
	CreatedAt time.Time
}

// ParseMediaCheckPush decodes a wxa_media_check push (JSON data format).
// Verify the signature first.
func ParseMediaCheckPush(body []byte) (MediaCheckEvent, error) {
	var p struct {
		MsgType    string `json:"MsgType"`
		Event      string `json:"Event"`
		CreateTime int64  `json:"CreateTime"`
		AppID      string `json:"appid"`
		TraceID    string `json:"trace_id"`
		ErrCode    int    `json:"errcode"`
		ErrMsg     string `json:"errmsg"`
		Result     struct {
			Suggest string `json:"suggest"`
			Label   int    `json:"label"`
		} `json:"result"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return MediaCheckEvent{}, fmt.Errorf("%w: not JSON: %w", ErrInvalidPush, err)
	}
	if p.Event != "wxa_media_check" {
		return MediaCheckEvent{}, fmt.Errorf("%w: event %q is not wxa_media_check", ErrInvalidPush, p.Event)
	}
	if p.TraceID == "" {
		return MediaCheckEvent{}, fmt.Errorf("%w: no trace_id", ErrInvalidPush)
	}
	ev := MediaCheckEvent{
		AppID: p.AppID, TraceID: p.TraceID, Label: p.Result.Label,
		ErrCode: p.ErrCode, ErrMsg: p.ErrMsg, Verdict: parseVerdict(p.Result.Suggest),
	}
	if p.ErrCode != 0 {
		ev.Verdict = VerdictReview
	}
	if p.CreateTime > 0 {
		ev.CreatedAt = time.Unix(p.CreateTime, 0)
	}
	return ev, nil
}
