// Package wechattest runs a local fake of the WeChat mini-program server API
// (api.weixin.qq.com) so the real silenceper/wechat client can be tested end to
// end without the network.
//
// silenceper/wechat hard-codes https://api.weixin.qq.com and sends everything
// through the package variable util.DefaultHTTPClient. A test binary therefore
// starts ONE Server, assigns Server.HTTPClient() to util.DefaultHTTPClient once
// in TestMain (see Install), and never touches it again: mutating the shared
// client's Transport while tests run is a data race. State is keyed by AppID,
// so parallel tests share the one Server by registering an AppID each.
//
// The fake checks credentials the way WeChat does: an unknown appid answers
// 40013, a wrong secret 40125, an unknown or expired access_token 40001.
package wechattest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// WeChat error codes the fake answers with.
const (
	CodeSystemBusy       = -1
	CodeInvalidToken     = 40001
	CodeInvalidOpenID    = 40003
	CodeInvalidAppID     = 40013
	CodeInvalidCode      = 40029
	CodeInvalidTemplate  = 40037
	CodeInvalidSecret    = 40125
	CodeCodeBeenUsed     = 40163
	CodeTokenExpired     = 42001
	CodeNoSubscribeQuota = 43101
	CodeDataFormat       = 47001
)

// tokenTTL is what WeChat announces for a fresh access_token.
const tokenTTL = 7200

// Captured is one subscribe message the fake accepted.
type Captured struct {
	ToOpenID         string
	TemplateID       string
	Page             string
	Data             map[string]string
	MiniprogramState string
	Lang             string
}

// MediaCheckRequest is one media_check_async call the fake accepted.
type MediaCheckRequest struct {
	TraceID   string
	MediaURL  string
	MediaType int
	OpenID    string
	Scene     int
}

// Server is a fake api.weixin.qq.com. Create it with NewServer and Close it
// when the test binary ends.
type Server struct {
	srv *httptest.Server

	mu     sync.Mutex
	apps   map[string]*app
	tokens map[string]tokenState // access_token → owner and validity
}

type tokenState struct {
	appID string
	// errcode is what a call with this token answers; 0 means valid.
	errcode int
}

type loginCode struct {
	openID, unionID, sessionKey string
	used                        bool
}

type app struct {
	secret       string
	token        string
	tokenFetches int
	codes        map[string]*loginCode
	phoneCodes   map[string]string
	usedPhone    map[string]bool
	quota        map[string]int // openid → consents left; absent = unlimited
	subscribes   []Captured
	mediaChecks  []MediaCheckRequest
	textChecks   int
	faults       map[string]int // path → HTTP status for the next call
}

// NewServer starts the fake on a loopback port.
func NewServer() *Server {
	s := &Server{
		apps:   map[string]*app{},
		tokens: map[string]tokenState{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cgi-bin/token", s.handleToken)
	mux.HandleFunc("GET /sns/jscode2session", s.handleCode2Session)
	mux.HandleFunc("POST /wxa/business/getuserphonenumber", s.withToken(s.handlePhoneNumber))
	mux.HandleFunc("POST /wxa/msg_sec_check", s.withToken(s.handleMsgSecCheck))
	mux.HandleFunc("POST /wxa/media_check_async", s.withToken(s.handleMediaCheckAsync))
	mux.HandleFunc("POST /cgi-bin/message/subscribe/send", s.withToken(s.handleSubscribeSend))
	s.srv = httptest.NewServer(mux)
	return s
}

// URL is the fake's base URL (http://127.0.0.1:port).
func (s *Server) URL() string { return s.srv.URL }

// Close stops the fake.
func (s *Server) Close() { s.srv.Close() }

// RegisterApp creates (or resets) the state of one mini-program.
func (s *Server) RegisterApp(appID, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[appID] = &app{
		secret:     secret,
		codes:      map[string]*loginCode{},
		phoneCodes: map[string]string{},
		usedPhone:  map[string]bool{},
		quota:      map[string]int{},
		faults:     map[string]int{},
	}
}

// AddCode makes a wx.login code valid once for appID.
func (s *Server) AddCode(appID, code, openID, unionID, sessionKey string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustApp(appID).codes[code] = &loginCode{openID: openID, unionID: unionID, sessionKey: sessionKey}
}

// AddPhoneCode makes a getPhoneNumber code valid once for appID.
func (s *Server) AddPhoneCode(appID, code, phone string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustApp(appID).phoneCodes[code] = phone
}

// ExpireAccessToken makes the app's current access_token answer 40001 from
// now on, as WeChat does after someone else fetched a new one.
func (s *Server) ExpireAccessToken(appID string) {
	s.ExpireAccessTokenWith(appID, CodeInvalidToken)
}

// ExpireAccessTokenWith is ExpireAccessToken with a chosen errcode, e.g.
// 42001 for a token past its lifetime.
func (s *Server) ExpireAccessTokenWith(appID string, errcode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.mustApp(appID)
	if a.token != "" {
		s.tokens[a.token] = tokenState{appID: appID, errcode: errcode}
	}
}

// TokenFetches counts successful /cgi-bin/token calls for appID.
func (s *Server) TokenFetches(appID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mustApp(appID).tokenFetches
}

// SubscribeMessages returns the subscribe messages accepted for appID.
func (s *Server) SubscribeMessages(appID string) []Captured {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Captured(nil), s.mustApp(appID).subscribes...)
}

// SetSubscribeQuota sets how many subscribe messages openID still consents to;
// at 0 a send answers 43101. Users without a quota accept any number.
func (s *Server) SetSubscribeQuota(appID, openID string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustApp(appID).quota[openID] = n
}

// MediaChecks returns the media_check_async requests accepted for appID.
func (s *Server) MediaChecks(appID string) []MediaCheckRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]MediaCheckRequest(nil), s.mustApp(appID).mediaChecks...)
}

// TextChecks counts msg_sec_check calls accepted for appID.
func (s *Server) TextChecks(appID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mustApp(appID).textChecks
}

// FailNext makes the next call of appID to path (e.g. "/sns/jscode2session")
// answer with the HTTP status instead of JSON, like a gateway failure.
func (s *Server) FailNext(appID, path string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustApp(appID).faults[path] = status
}

// MediaCheckPushBody builds the JSON body WeChat pushes when an asynchronous
// media check finishes, for tests of push handlers.
func MediaCheckPushBody(appID, traceID, suggest string) []byte {
	label := 100
	if suggest != "pass" {
		label = 20002
	}
	b, _ := json.Marshal(map[string]any{
		"ToUserName":   "gh_fake",
		"FromUserName": "o_fake",
		"CreateTime":   time.Now().Unix(),
		"MsgType":      "event",
		"Event":        "wxa_media_check",
		"appid":        appID,
		"trace_id":     traceID,
		"version":      2,
		"errcode":      0,
		"errmsg":       "ok",
		"detail": []map[string]any{{
			"strategy": "content_model", "errcode": 0, "suggest": suggest, "label": label, "prob": 90,
		}},
		"result": map[string]any{"suggest": suggest, "label": label},
	})
	return b
}

// mustApp panics on an unregistered app: that is a bug in the test itself.
func (s *Server) mustApp(appID string) *app {
	a, ok := s.apps[appID]
	if !ok {
		panic("wechattest: app " + appID + " not registered")
	}
	return a
}

// takeFault reports and clears a pending FailNext for the app and path.
// Callers hold s.mu.
func (a *app) takeFault(w http.ResponseWriter, path string) bool {
	status, ok := a.faults[path]
	if !ok {
		return false
	}
	delete(a.faults, path)
	http.Error(w, http.StatusText(status), status)
	return true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, map[string]any{"errcode": code, "errmsg": msg + ", rid: fake"})
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[q.Get("appid")]
	if !ok {
		writeErr(w, CodeInvalidAppID, "invalid appid")
		return
	}
	if a.takeFault(w, r.URL.Path) {
		return
	}
	if q.Get("grant_type") != "client_credential" {
		writeErr(w, 40002, "invalid grant_type")
		return
	}
	if q.Get("secret") != a.secret {
		writeErr(w, CodeInvalidSecret, "invalid appsecret")
		return
	}
	// WeChat keeps the previous token usable for a while after a new one is
	// issued, so the old token is left valid unless a test expired it.
	a.token = "tok-" + randomHex(16)
	a.tokenFetches++
	s.tokens[a.token] = tokenState{appID: q.Get("appid")}
	writeJSON(w, map[string]any{"access_token": a.token, "expires_in": tokenTTL})
}

func (s *Server) handleCode2Session(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[q.Get("appid")]
	if !ok {
		writeErr(w, CodeInvalidAppID, "invalid appid")
		return
	}
	if a.takeFault(w, r.URL.Path) {
		return
	}
	if q.Get("secret") != a.secret {
		writeErr(w, CodeInvalidSecret, "invalid appsecret")
		return
	}
	if q.Get("grant_type") != "authorization_code" {
		writeErr(w, 40002, "invalid grant_type")
		return
	}
	c, ok := a.codes[q.Get("js_code")]
	switch {
	case !ok:
		writeErr(w, CodeInvalidCode, "invalid code")
		return
	case c.used:
		writeErr(w, CodeCodeBeenUsed, "code been used")
		return
	}
	c.used = true
	resp := map[string]any{"openid": c.openID, "session_key": c.sessionKey}
	if c.unionID != "" {
		resp["unionid"] = c.unionID
	}
	writeJSON(w, resp)
}

// withToken resolves the access_token to an app, answering like WeChat when
// it is unknown or expired, and runs next with s.mu held.
func (s *Server) withToken(next func(w http.ResponseWriter, r *http.Request, appID string, a *app)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		st, ok := s.tokens[r.URL.Query().Get("access_token")]
		if !ok {
			writeErr(w, CodeInvalidToken, "invalid credential, access_token is invalid or not latest")
			return
		}
		a := s.apps[st.appID]
		if a.takeFault(w, r.URL.Path) {
			return
		}
		if st.errcode != 0 {
			writeErr(w, st.errcode, "access_token expired or not latest")
			return
		}
		next(w, r, st.appID, a)
	}
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		writeErr(w, CodeDataFormat, "data format error")
		return false
	}
	return true
}

func (s *Server) handlePhoneNumber(w http.ResponseWriter, r *http.Request, appID string, a *app) {
	var req struct {
		Code string `json:"code"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	phone, ok := a.phoneCodes[req.Code]
	switch {
	case !ok:
		writeErr(w, CodeInvalidCode, "invalid code")
		return
	case a.usedPhone[req.Code]:
		writeErr(w, CodeCodeBeenUsed, "code been used")
		return
	}
	a.usedPhone[req.Code] = true
	writeJSON(w, map[string]any{
		"errcode": 0, "errmsg": "ok",
		"phone_info": map[string]any{
			"phoneNumber": phone, "purePhoneNumber": phone, "countryCode": "86",
			"watermark": map[string]any{"timestamp": time.Now().Unix(), "appid": appID},
		},
	})
}

func (s *Server) handleMsgSecCheck(w http.ResponseWriter, r *http.Request, _ string, a *app) {
	var req struct {
		Version int    `json:"version"`
		OpenID  string `json:"openid"`
		Scene   int    `json:"scene"`
		Content string `json:"content"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	switch {
	case req.OpenID == "":
		writeErr(w, CodeInvalidOpenID, "invalid openid")
		return
	case req.Version != 2, req.Scene < 1, req.Scene > 4:
		writeErr(w, CodeDataFormat, "data format error")
		return
	}
	suggest, label := "pass", 100
	switch {
	case strings.Contains(req.Content, "违规"):
		suggest, label = "risky", 20001
	case strings.Contains(req.Content, "待定"):
		suggest, label = "review", 21000
	}
	a.textChecks++
	// errcode 0 only says the check ran; the verdict is result.suggest.
	writeJSON(w, map[string]any{
		"errcode": 0, "errmsg": "ok", "trace_id": randomHex(8),
		"result": map[string]any{"suggest": suggest, "label": label},
		"detail": []map[string]any{{"strategy": "content_model", "errcode": 0, "suggest": suggest, "label": label, "prob": 90}},
	})
}

func (s *Server) handleMediaCheckAsync(w http.ResponseWriter, r *http.Request, _ string, a *app) {
	var req struct {
		Version   int    `json:"version"`
		MediaURL  string `json:"media_url"`
		MediaType int    `json:"media_type"`
		OpenID    string `json:"openid"`
		Scene     int    `json:"scene"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	switch {
	case req.OpenID == "":
		writeErr(w, CodeInvalidOpenID, "invalid openid")
		return
	case req.Version != 2, req.MediaURL == "", req.MediaType != 1 && req.MediaType != 2, req.Scene < 1, req.Scene > 4:
		writeErr(w, CodeDataFormat, "data format error")
		return
	}
	trace := randomHex(12)
	a.mediaChecks = append(a.mediaChecks, MediaCheckRequest{
		TraceID: trace, MediaURL: req.MediaURL, MediaType: req.MediaType, OpenID: req.OpenID, Scene: req.Scene,
	})
	writeJSON(w, map[string]any{"errcode": 0, "errmsg": "ok", "trace_id": trace})
}

func (s *Server) handleSubscribeSend(w http.ResponseWriter, r *http.Request, _ string, a *app) {
	var req struct {
		ToUser     string `json:"touser"`
		TemplateID string `json:"template_id"`
		Page       string `json:"page"`
		Data       map[string]struct {
			Value any `json:"value"`
		} `json:"data"`
		MiniprogramState string `json:"miniprogram_state"`
		Lang             string `json:"lang"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	switch {
	case req.ToUser == "":
		writeErr(w, CodeInvalidOpenID, "invalid openid")
		return
	case req.TemplateID == "":
		writeErr(w, CodeInvalidTemplate, "invalid template_id")
		return
	}
	if left, limited := a.quota[req.ToUser]; limited {
		if left <= 0 {
			writeErr(w, CodeNoSubscribeQuota, "user refuse to accept the msg")
			return
		}
		a.quota[req.ToUser] = left - 1
	}
	data := make(map[string]string, len(req.Data))
	for k, v := range req.Data {
		str, _ := v.Value.(string)
		data[k] = str
	}
	a.subscribes = append(a.subscribes, Captured{
		ToOpenID: req.ToUser, TemplateID: req.TemplateID, Page: req.Page, Data: data,
		MiniprogramState: req.MiniprogramState, Lang: req.Lang,
	})
	writeJSON(w, map[string]any{"errcode": 0, "errmsg": "ok", "msgid": len(a.subscribes)})
}
