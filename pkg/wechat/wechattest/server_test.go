package wechattest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"qjmz/pkg/wechat/wechattest"
)

func TestHTTPClientReachesOnlyTheFake(t *testing.T) {
	s := wechattest.NewServer()
	defer s.Close()
	s.RegisterApp("wx1", "sec")
	c := s.HTTPClient()

	tests := []struct {
		name, url   string
		wantErr     bool
		wantErrcode int
	}{
		{"WeChat host goes to the fake", "https://api.weixin.qq.com/cgi-bin/token?grant_type=client_credential&appid=wx1&secret=sec", false, 0},
		{"wrong secret answers 40125", "https://api.weixin.qq.com/cgi-bin/token?grant_type=client_credential&appid=wx1&secret=bad", false, 40125},
		{"unknown app answers 40013", "https://api.weixin.qq.com/cgi-bin/token?grant_type=client_credential&appid=wx2&secret=sec", false, 40013},
		{"any other host is refused", "https://example.com/", true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := c.Get(tt.url)
			if tt.wantErr {
				if err == nil {
					resp.Body.Close()
					t.Fatal("request left the machine")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			var r struct {
				ErrCode     int    `json:"errcode"`
				AccessToken string `json:"access_token"`
			}
			if err := json.Unmarshal(body, &r); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d body %s", resp.StatusCode, body)
			}
			if r.ErrCode != tt.wantErrcode || (tt.wantErrcode == 0) != (r.AccessToken != "") {
				t.Fatalf("answer %s, want errcode %d", body, tt.wantErrcode)
			}
		})
	}
	if n := s.TokenFetches("wx1"); n != 1 {
		t.Fatalf("TokenFetches = %d, want 1", n)
	}
}
