// Package wechat is the mini-program side of WeChat for the server: login
// (code2Session), phone binding (getuserphonenumber), text and image content
// checks, subscribe messages and the signed push callbacks, built on
// github.com/silenceper/wechat/v2.
//
// What it adds to silenceper: the access token lives in Redis so all replicas
// share one; a token WeChat rejects (40001/42001) is dropped and the call is
// made once more; errcodes become sentinel errors; credentials (app secret,
// access token, login code, session_key) never reach an error string or a log
// line; and a dev mode answers everything locally for the embedded default.
//
// silenceper sends every request through the package variable
// util.DefaultHTTPClient, which is http.DefaultClient with no timeout. main
// assigns NewHTTPClient(...) to it once, before the first call; this package
// never touches it. Tests do the same with wechattest.Server.Install.
package wechat

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
	"github.com/silenceper/wechat/v2/miniprogram/auth"
	mpconfig "github.com/silenceper/wechat/v2/miniprogram/config"
	mpcontext "github.com/silenceper/wechat/v2/miniprogram/context"
	"github.com/silenceper/wechat/v2/miniprogram/security"
	"github.com/silenceper/wechat/v2/miniprogram/subscribe"
	"github.com/silenceper/wechat/v2/util"
)

// subscribeSendURL is the subscribe-message endpoint. silenceper v2.1.10's
// Subscribe.Send takes no context, so the call is made here with its types.
const subscribeSendURL = "https://api.weixin.qq.com/cgi-bin/message/subscribe/send?access_token="

// maxCheckRunes is WeChat's limit for one msg_sec_check text.
const maxCheckRunes = 2500

// Content-check scenes (msgSecCheck / mediaCheckAsync "scene").
const (
	SceneProfile   = 1 // 资料: nickname, bio
	SceneComment   = 2 // 评论
	SceneForum     = 3 // 论坛: posts others read
	SceneSocialLog = 4 // 社交日志
)

// mediaScene is the scene for evidence images: they end up on the public
// feed, which WeChat's scenes call a forum.
const mediaScene = SceneForum

// Config configures a Client.
type Config struct {
	AppID, AppSecret string
	// DevMode answers locally without HTTP: login codes "dev:<name>", content
	// checks pass, subscribe messages are logged. Production must refuse it.
	DevMode bool
	// PushToken is the token set in the mini-program console for push
	// callbacks (plaintext mode).
	PushToken string
	// MiniprogramState is the build a subscribe message opens: "developer",
	// "trial" or "formal"; empty means formal.
	MiniprogramState string
}

// Session is the result of a login. SessionKey decrypts the user's data and
// must never leave the server: String, GoString and LogValue leave it out.
type Session struct {
	OpenID, UnionID, SessionKey string
}

// String leaves the session key out, so %v and %+v cannot leak it.
func (s Session) String() string {
	return fmt.Sprintf("{OpenID:%s UnionID:%s SessionKey:REDACTED}", s.OpenID, s.UnionID)
}

// GoString leaves the session key out of %#v.
func (s Session) GoString() string { return "wechat.Session" + s.String() }

// LogValue leaves the session key out of slog output.
func (s Session) LogValue() slog.Value {
	return slog.GroupValue(slog.String("openid", s.OpenID), slog.String("unionid", s.UnionID))
}

// Verdict is WeChat's content-check suggestion.
type Verdict string

// Verdicts. An empty Verdict on a MediaCheck means the answer comes later by
// push.
const (
	VerdictPass   Verdict = "pass"
	VerdictReview Verdict = "review"
	VerdictRisky  Verdict = "risky"
)

// parseVerdict maps WeChat's suggest; anything unknown is treated as review
// so that a new value from WeChat sends content to a person rather than
// letting it through or blocking it.
func parseVerdict(s string) Verdict {
	switch v := Verdict(s); v {
	case VerdictPass, VerdictReview, VerdictRisky:
		return v
	}
	return VerdictReview
}

// SubscribeMessage is one subscribe message. Data maps template keys
// (e.g. "thing1") to values; WeChat limits each value by the key's type.
type SubscribeMessage struct {
	ToOpenID, TemplateID, Page string
	Data                       map[string]string
}

// MediaCheck is the receipt of an asynchronous image check. Verdict is empty
// until the wxa_media_check push with the same TraceID arrives (up to 30
// minutes); dev mode answers VerdictPass at once.
type MediaCheck struct {
	TraceID string
	Verdict Verdict
}

// Client talks to WeChat for one mini-program. It is safe for concurrent use.
type Client struct {
	cfg    Config
	log    *slog.Logger
	mp     *mpconfig.Config
	tokens *tokenSource
}

// New builds a Client. Outside dev mode it needs the app credentials and a
// Redis client for the shared access token; in dev mode rdb may be nil.
func New(cfg Config, rdb redis.UniversalClient, logger *slog.Logger) (*Client, error) {
	switch cfg.MiniprogramState {
	case "", "developer", "trial", "formal":
	default:
		return nil, fmt.Errorf("wechat: unknown MiniprogramState %q", cfg.MiniprogramState)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{cfg: cfg, log: logger.With(slog.String("component", "wechat"))}
	if cfg.DevMode {
		c.log.Warn("wechat dev mode: logins are not verified, content checks always pass, messages are only logged")
		return c, nil
	}
	if cfg.AppID == "" || cfg.AppSecret == "" {
		return nil, errors.New("wechat: AppID and AppSecret are required outside dev mode")
	}
	if rdb == nil {
		return nil, errors.New("wechat: a Redis client is required outside dev mode")
	}
	c.mp = &mpconfig.Config{AppID: cfg.AppID, AppSecret: cfg.AppSecret, Cache: NewRedisCache(rdb)}
	c.tokens = newTokenSource(c, rdb)
	return c, nil
}

// mpContext is the silenceper context for one call with a fixed token.
func (c *Client) mpContext(tok string) *mpcontext.Context {
	return &mpcontext.Context{Config: c.mp, AccessTokenContextHandle: staticToken(tok)}
}

// call runs fn with the shared access token. When WeChat rejects the token,
// it is dropped from Redis and fn runs once more with a fresh one: silenceper
// would keep using the rejected token until it expires.
func (c *Client) call(ctx context.Context, op string, fn func(mp *mpcontext.Context) error) error {
	for attempt := 0; ; attempt++ {
		tok, err := c.tokens.token(ctx)
		if err != nil {
			return err
		}
		err = fn(c.mpContext(tok))
		if err == nil {
			return nil
		}
		if attempt == 0 && tokenRejected(err) {
			c.log.InfoContext(ctx, "wechat rejected the access token; fetching a new one", slog.String("op", op))
			if err := c.tokens.invalidate(ctx, tok); err != nil {
				return err
			}
			continue
		}
		return c.classify(op, err)
	}
}

// AccessToken returns the shared access token, for WeChat APIs this package
// does not wrap. Dev mode has none.
func (c *Client) AccessToken(ctx context.Context) (string, error) {
	if c.cfg.DevMode {
		return "", fmt.Errorf("wechat access token: %w: dev mode has no access token", ErrUpstream)
	}
	return c.tokens.token(ctx)
}

// validCode accepts what wx.login and getPhoneNumber produce. silenceper puts
// the code into the URL unescaped, so anything else is refused before it can
// add query parameters.
func validCode(code string) bool {
	if code == "" || len(code) > 128 {
		return false
	}
	for _, r := range code {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Code2Session exchanges a wx.login code for the user's identity.
func (c *Client) Code2Session(ctx context.Context, code string) (Session, error) {
	if c.cfg.DevMode {
		return devSession(code)
	}
	if !validCode(code) {
		return Session{}, fmt.Errorf("wechat code2session: %w: malformed code", ErrInvalidCode)
	}
	res, err := auth.NewAuth(c.mpContext("")).Code2SessionContext(ctx, code)
	switch {
	case err != nil && res.ErrCode != 0:
		// silenceper reports this errcode as plain text; the struct has it.
		return Session{}, c.apiError("code2session", res.ErrCode, res.ErrMsg)
	case err != nil:
		return Session{}, c.transportError("code2session", err)
	case res.OpenID == "" || res.SessionKey == "":
		return Session{}, fmt.Errorf("wechat code2session: %w: answer without openid or session_key", ErrUpstream)
	}
	return Session{OpenID: res.OpenID, UnionID: res.UnionID, SessionKey: res.SessionKey}, nil
}

// PhoneNumber exchanges a getPhoneNumber button code for the user's phone
// number (without country code for mainland numbers).
func (c *Client) PhoneNumber(ctx context.Context, code string) (string, error) {
	if c.cfg.DevMode {
		return devPhone(code)
	}
	if !validCode(code) {
		return "", fmt.Errorf("wechat phone number: %w: malformed code", ErrInvalidCode)
	}
	var phone string
	err := c.call(ctx, "getuserphonenumber", func(mp *mpcontext.Context) error {
		res, err := auth.NewAuth(mp).GetPhoneNumberContext(ctx, code)
		if err != nil {
			return err
		}
		phone = res.PhoneInfo.PhoneNumber
		return nil
	})
	if err != nil {
		return "", err
	}
	if phone == "" {
		return "", fmt.Errorf("wechat getuserphonenumber: %w: answer without phone number", ErrUpstream)
	}
	return phone, nil
}

// MsgSecCheck checks text with msgSecCheck v2. openID must belong to a user
// who opened the mini-program in the last two hours. Errcode 0 only says the
// check ran; the verdict is WeChat's result.suggest.
func (c *Client) MsgSecCheck(ctx context.Context, openID string, scene int, content string) (Verdict, error) {
	if scene < SceneProfile || scene > SceneSocialLog {
		return "", fmt.Errorf("wechat msg_sec_check: scene %d is not 1..4", scene)
	}
	if utf8.RuneCountInString(content) > maxCheckRunes {
		return "", fmt.Errorf("wechat msg_sec_check: content longer than %d characters", maxCheckRunes)
	}
	if c.cfg.DevMode || content == "" {
		return VerdictPass, nil
	}
	if openID == "" {
		return "", errors.New("wechat msg_sec_check: openid is required")
	}
	var verdict Verdict
	err := c.call(ctx, "msg_sec_check", func(mp *mpcontext.Context) error {
		res, err := security.NewSecurity(mp).MsgCheckContext(ctx, &security.MsgCheckRequest{
			OpenID: openID, Scene: security.MsgScene(scene), Content: content,
		})
		if err != nil {
			return err
		}
		verdict = parseVerdict(string(res.Result.Suggest))
		return nil
	})
	if err != nil {
		return "", err
	}
	return verdict, nil
}

// MediaCheckAsync submits an image for checking. mediaURL must be an http(s)
// URL WeChat can fetch; WeChat does not check video this way. The verdict
// arrives later as a wxa_media_check push carrying the returned TraceID.
func (c *Client) MediaCheckAsync(ctx context.Context, openID, mediaURL string) (MediaCheck, error) {
	if u, err := url.Parse(mediaURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return MediaCheck{}, errors.New("wechat media_check_async: media URL must be an absolute http(s) URL")
	}
	if c.cfg.DevMode {
		return MediaCheck{TraceID: "dev-" + randomHex(12), Verdict: VerdictPass}, nil
	}
	if openID == "" {
		return MediaCheck{}, errors.New("wechat media_check_async: openid is required")
	}
	var trace string
	err := c.call(ctx, "media_check_async", func(mp *mpcontext.Context) error {
		var err error
		trace, err = security.NewSecurity(mp).MediaCheckAsyncContext(ctx, &security.MediaCheckAsyncRequest{
			MediaURL: mediaURL, MediaType: 2, OpenID: openID, Scene: mediaScene,
		})
		return err
	})
	if err != nil {
		return MediaCheck{}, err
	}
	if trace == "" {
		return MediaCheck{}, fmt.Errorf("wechat media_check_async: %w: answer without trace_id", ErrUpstream)
	}
	return MediaCheck{TraceID: trace}, nil
}

// SendSubscribe sends one subscribe message. ErrNoSubscribeQuota means the
// user has no consent left; that is a normal outcome, not a failure.
func (c *Client) SendSubscribe(ctx context.Context, m SubscribeMessage) error {
	if m.ToOpenID == "" || m.TemplateID == "" {
		return errors.New("wechat subscribe send: recipient and template are required")
	}
	if c.cfg.DevMode {
		c.log.InfoContext(ctx, "wechat dev mode: subscribe message not sent",
			slog.String("to", m.ToOpenID), slog.String("template", m.TemplateID),
			slog.String("page", m.Page), slog.Any("data", m.Data))
		return nil
	}
	msg := &subscribe.Message{
		ToUser: m.ToOpenID, TemplateID: m.TemplateID, Page: m.Page,
		Data:             make(map[string]*subscribe.DataItem, len(m.Data)),
		MiniprogramState: c.cfg.MiniprogramState, Lang: "zh_CN",
	}
	for k, v := range m.Data {
		msg.Data[k] = &subscribe.DataItem{Value: v}
	}
	return c.call(ctx, "subscribe_send", func(mp *mpcontext.Context) error {
		tok, _ := mp.GetAccessTokenContext(ctx)
		res, err := util.PostJSONContext(ctx, subscribeSendURL+url.QueryEscape(tok), msg)
		if err != nil {
			return err
		}
		return util.DecodeWithCommonError(res, "subscribe.Send")
	})
}

// VerifyPush checks a push callback's signature against Config.PushToken.
func (c *Client) VerifyPush(timestamp, nonce, signature string) bool {
	return VerifyPushSignature(c.cfg.PushToken, timestamp, nonce, signature)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails since Go 1.24
	return hex.EncodeToString(b)
}

func randomBase64(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}
