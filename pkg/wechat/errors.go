package wechat

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/silenceper/wechat/v2/util"
)

// Sentinel errors. Match them with errors.Is: every error this package returns
// wraps exactly one of them (or is a plain argument error from a caller bug).
var (
	// ErrInvalidCode: a login or phone code WeChat does not know (40029), one
	// already used (40163), or a malformed code.
	ErrInvalidCode = errors.New("wechat: invalid or used code")
	// ErrNoSubscribeQuota: the user has no subscribe consent left (43101).
	// This is a normal outcome: drop the message, do not retry it.
	ErrNoSubscribeQuota = errors.New("wechat: user has no subscribe consent left")
	// ErrUpstream: any other WeChat failure, from a network error to an
	// errcode. Use IsRetryable to tell passing failures from permanent ones.
	ErrUpstream = errors.New("wechat: upstream failure")
	// ErrInvalidPush: a push callback body that is not a well-formed event of
	// the expected kind.
	ErrInvalidPush = errors.New("wechat: invalid push")
)

// WeChat errcodes this package reacts to.
const (
	codeSystemBusy       = -1
	codeInvalidToken     = 40001
	codeIllegalToken     = 40014
	codeInvalidCode      = 40029
	codeCodeBeenUsed     = 40163
	codeTokenExpired     = 42001
	codeNoSubscribeQuota = 43101
	codeAPIFreqLimit     = 45009
	codeFreqLimit        = 45011
)

// APIError is an errcode answered by WeChat. It matches ErrInvalidCode,
// ErrNoSubscribeQuota or ErrUpstream with errors.Is, so callers that only
// need the category never look at the code.
type APIError struct {
	Op   string // our name of the call, e.g. "code2session"
	Code int64  // WeChat errcode
	Msg  string // WeChat errmsg, with anything credential-like removed
}

func (e *APIError) Error() string {
	return fmt.Sprintf("wechat %s: errcode=%d errmsg=%s", e.Op, e.Code, e.Msg)
}

// Is maps the errcode to the package's sentinels.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrInvalidCode:
		return e.Code == codeInvalidCode || e.Code == codeCodeBeenUsed
	case ErrNoSubscribeQuota:
		return e.Code == codeNoSubscribeQuota
	case ErrUpstream:
		return e.Code != codeInvalidCode && e.Code != codeCodeBeenUsed && e.Code != codeNoSubscribeQuota
	}
	return false
}

// IsRetryable reports whether trying the same call later may succeed: network
// failures, WeChat being busy or rate-limiting. Bad codes, missing consent and
// bad requests (wrong template, unknown openid) never get better, so an outbox
// should give up on them.
func IsRetryable(err error) bool {
	if err == nil || !errors.Is(err, ErrUpstream) {
		return false
	}
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		// Network failures and cancelled calls (e.g. at shutdown) may have
		// reached WeChat or not; trying again later is the only safe choice.
		return true
	}
	switch apiErr.Code {
	case codeSystemBusy, codeAPIFreqLimit, codeFreqLimit, codeInvalidToken, codeIllegalToken, codeTokenExpired:
		return true
	}
	return false
}

// tokenRejected reports whether WeChat refused the access_token itself, the
// one case where fetching a new token and calling again helps.
func tokenRejected(err error) bool {
	var ce *util.CommonError
	if !errors.As(err, &ce) {
		return false
	}
	switch ce.ErrCode {
	case codeInvalidToken, codeIllegalToken, codeTokenExpired:
		return true
	}
	return false
}

// classify turns an error from silenceper into one of ours. silenceper's
// transport errors quote the request URL, which carries the app secret, the
// login code or the access_token, so their text is scrubbed and the original
// is not wrapped; only context errors are kept for errors.Is.
func (c *Client) classify(op string, err error) error {
	var ce *util.CommonError
	if errors.As(err, &ce) {
		return c.apiError(op, ce.ErrCode, ce.ErrMsg)
	}
	return c.transportError(op, err)
}

func (c *Client) apiError(op string, code int64, msg string) error {
	return &APIError{Op: op, Code: code, Msg: c.redact(msg)}
}

func (c *Client) transportError(op string, err error) error {
	msg := c.redact(err.Error())
	for _, ctxErr := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, ctxErr) {
			return fmt.Errorf("wechat %s: %w: %w", op, ErrUpstream, ctxErr)
		}
	}
	return fmt.Errorf("wechat %s: %w: %s", op, ErrUpstream, msg)
}

// redact removes credentials from text that may quote a request URL.
func (c *Client) redact(s string) string {
	if c.cfg.AppSecret != "" {
		s = strings.ReplaceAll(s, c.cfg.AppSecret, "REDACTED")
	}
	return redactCredentials(s)
}

// redactCredentials blanks the URL parameters WeChat calls carry secrets in.
func redactCredentials(s string) string {
	return redactParams(s, "secret", "access_token", "js_code", "code", "session_key")
}

// redactParams blanks the value of each name=value whose name stands alone
// (so "errcode=40029" keeps its value), up to the next URL or message
// delimiter.
func redactParams(s string, names ...string) string {
	for _, name := range names {
		needle := name + "="
		var b strings.Builder
		rest := s
		for {
			i := strings.Index(rest, needle)
			if i < 0 {
				b.WriteString(rest)
				break
			}
			var prev byte
			if i > 0 {
				prev = rest[i-1]
			} else if b.Len() > 0 {
				prev = b.String()[b.Len()-1]
			}
			standalone := !isWordByte(prev)
			b.WriteString(rest[:i+len(needle)])
			rest = rest[i+len(needle):]
			if !standalone {
				continue
			}
			end := strings.IndexAny(rest, "&\"' ,;\n\t")
			if end < 0 {
				end = len(rest)
			}
			if end > 0 {
				b.WriteString("REDACTED")
			}
			rest = rest[end:]
		}
		s = b.String()
	}
	return s
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}
