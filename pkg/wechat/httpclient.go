package wechat

import (
	"net/http"
	"time"
)

// defaultTimeout bounds a WeChat call when NewHTTPClient gets no timeout.
const defaultTimeout = 10 * time.Second

// NewHTTPClient returns the client main assigns to silenceper's
// util.DefaultHTTPClient, once, before serving: that package variable is the
// only global this project sets for WeChat, and it defaults to
// http.DefaultClient, which has no timeout.
func NewHTTPClient(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Every request goes to the one WeChat host.
	tr.MaxIdleConnsPerHost = 32
	tr.ResponseHeaderTimeout = timeout
	return &http.Client{Timeout: timeout, Transport: tr}
}
