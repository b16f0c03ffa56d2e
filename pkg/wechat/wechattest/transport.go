package wechattest

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/silenceper/wechat/v2/util"
)

// apiHost is the one host silenceper/wechat talks to for mini-programs.
const apiHost = "api.weixin.qq.com"

// HTTPClient returns a new client that sends requests for
// https://api.weixin.qq.com to the fake and refuses every other host, so a
// test can never reach the real WeChat by mistake.
func (s *Server) HTTPClient() *http.Client {
	target, _ := url.Parse(s.srv.URL)
	return &http.Client{Transport: &rewriteTransport{target: target, base: s.srv.Client().Transport}}
}

// Install assigns HTTPClient() to util.DefaultHTTPClient and returns a
// function that puts the previous client back.
//
// Call it exactly once, from TestMain, before any test runs, and restore only
// after m.Run returns: util.DefaultHTTPClient is a package variable read by
// every concurrent request, so assigning it (or mutating its Transport) while
// tests run is a data race.
func (s *Server) Install() (restore func()) {
	prev := util.DefaultHTTPClient
	util.DefaultHTTPClient = s.HTTPClient()
	return func() { util.DefaultHTTPClient = prev }
}

type rewriteTransport struct {
	target *url.URL
	base   http.RoundTripper
}

func (t *rewriteTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != apiHost {
		return nil, fmt.Errorf("wechattest: refusing request to %s: only %s is faked", req.URL.Host, apiHost)
	}
	// RoundTrippers must not modify the caller's request.
	out := req.Clone(req.Context())
	out.URL.Scheme = t.target.Scheme
	out.URL.Host = t.target.Host
	out.Host = t.target.Host
	return t.base.RoundTrip(out)
}
