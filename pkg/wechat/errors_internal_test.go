package wechat

import (
	"errors"
	"fmt"
	"testing"
)

func TestRedactParams(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{
			"uri=https://api.weixin.qq.com/sns/jscode2session?appid=wx1&secret=s3&js_code=c0de&grant_type=x , statusCode=502",
			"uri=https://api.weixin.qq.com/sns/jscode2session?appid=wx1&secret=REDACTED&js_code=REDACTED&grant_type=x , statusCode=502",
		},
		{`Post "https://h/wxa/x?access_token=tok123": dial tcp`, `Post "https://h/wxa/x?access_token=REDACTED": dial tcp`},
		{"errcode=40029 errmsg=invalid code", "errcode=40029 errmsg=invalid code"},
		{"session_key=abc==", "session_key=REDACTED"},
		{"a?code=1&code=2", "a?code=REDACTED&code=REDACTED"},
	}
	for _, tt := range tests {
		if got := redactCredentials(tt.in); got != tt.want {
			t.Errorf("redactCredentials(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestErrorCategories(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		err       error
		is        error
		retryable bool
	}{
		{"invalid code", &APIError{Code: 40029}, ErrInvalidCode, false},
		{"code used", &APIError{Code: 40163}, ErrInvalidCode, false},
		{"no consent", &APIError{Code: 43101}, ErrNoSubscribeQuota, false},
		{"system busy", &APIError{Code: -1}, ErrUpstream, true},
		{"rate limited", &APIError{Code: 45011}, ErrUpstream, true},
		{"bad template", &APIError{Code: 40037}, ErrUpstream, false},
		{"wrapped busy", fmt.Errorf("notify: %w", &APIError{Code: -1}), ErrUpstream, true},
		{"network", fmt.Errorf("wechat x: %w: dial tcp", ErrUpstream), ErrUpstream, true},
		{"not ours", errors.New("boom"), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.is != nil && !errors.Is(tt.err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", tt.err, tt.is)
			}
			if got := IsRetryable(tt.err); got != tt.retryable {
				t.Errorf("IsRetryable = %v, want %v", got, tt.retryable)
			}
		})
	}
}
