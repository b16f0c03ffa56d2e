package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"qjmz/model"
	"qjmz/pkg/apperr"
	"qjmz/pkg/authtoken"
	"qjmz/pkg/ids"
	"qjmz/pkg/pii"
	"qjmz/pkg/wechat"
)

// Field names used as associated data when encrypting user secrets.
const (
	fieldSessionKey = "users.session_key"
	fieldUserPhone  = "users.phone"
)

// codeReplayWindow covers a WeChat login code's whole life (5 minutes) with
// margin.
const codeReplayWindow = 10 * time.Minute

// AuthConfig wires the login use cases.
type AuthConfig struct {
	Tx         TxRunner
	Users      UserStore
	Sessions   SessionStore
	Regions    RegionStore
	Orgs       OrgStore
	Once       OnceGuard
	WeChat     WeChatAuth
	Cipher     Cipher
	Tokens     *authtoken.Issuer
	Audit      *Auditor
	RefreshTTL time.Duration
	// DevCodes accepts "dev:<name>" login codes again and again (embedded mode).
	DevCodes bool
	Now      func() time.Time
	Logger   *slog.Logger
}

// Auth is login, token refresh, logout and request authentication.
type Auth struct{ c AuthConfig }

// NewAuth builds the auth use cases.
func NewAuth(c AuthConfig) *Auth { return &Auth{c: c} }

// Tokens is what a login or refresh hands the client.
type Tokens struct {
	AccessToken      string
	AccessExpiresAt  time.Time
	RefreshToken     string
	RefreshExpiresAt time.Time
	UserID           string
	NewUser          bool
}

var (
	errCodeInvalid  = apperr.New(apperr.ErrUnauthenticated, "WECHAT_CODE_INVALID", "登录凭证无效，请重新登录")
	errCodeReplayed = apperr.New(apperr.ErrUnauthenticated, "WECHAT_CODE_REPLAYED", "登录凭证已使用，请重新登录")
	errRefreshBad   = apperr.New(apperr.ErrUnauthenticated, "REFRESH_TOKEN_INVALID", "登录已失效，请重新登录")
	errRefreshReuse = apperr.New(apperr.ErrUnauthenticated, "REFRESH_TOKEN_REUSED", "登录状态异常，已退出所有相关登录，请重新登录")
	errRefreshOld   = apperr.New(apperr.ErrUnauthenticated, "REFRESH_TOKEN_EXPIRED", "登录已过期，请重新登录")
	errSessionGone  = apperr.New(apperr.ErrUnauthenticated, "SESSION_REVOKED", "登录已退出，请重新登录")
	errTokenExpired = apperr.New(apperr.ErrUnauthenticated, "TOKEN_EXPIRED", "登录已过期，请刷新或重新登录")
	errTokenInvalid = apperr.New(apperr.ErrUnauthenticated, "TOKEN_INVALID", "登录凭证无效，请重新登录")
	errUserDisabled = apperr.New(apperr.ErrUnauthenticated, "USER_DISABLED", "账号已停用，请联系管理员")
)

// Login exchanges a wx.login code for our own tokens, creating the user (a
// resident of the platform's root region) on first login.
func (a *Auth) Login(ctx context.Context, code string) (Tokens, error) {
	code = strings.TrimSpace(code)
	if code == "" || len(code) > 128 {
		return Tokens{}, apperr.Invalid("登录凭证不能为空", apperr.FieldError{Field: "code", Reason: "required"})
	}
	dev := a.c.DevCodes && strings.HasPrefix(code, "dev:")
	if !dev {
		// WeChat refuses a used code too, but checking first means a replay
		// never reaches WeChat and is reported as what it is.
		sum := sha256.Sum256([]byte(code))
		first, err := a.c.Once.FirstUse(ctx, "wxcode:"+hex.EncodeToString(sum[:]), codeReplayWindow)
		if err != nil {
			return Tokens{}, fmt.Errorf("login: replay guard: %w", err)
		}
		if !first {
			return Tokens{}, errCodeReplayed
		}
	}
	ws, err := a.c.WeChat.Code2Session(ctx, code)
	if err != nil {
		if errors.Is(err, wechat.ErrInvalidCode) {
			return Tokens{}, errCodeInvalid
		}
		return Tokens{}, apperr.Wrap(apperr.ErrUnavailable, "WECHAT_UNAVAILABLE", "微信服务暂时不可用，请稍后重试", err)
	}
	skEnc, err := a.c.Cipher.Encrypt(ws.SessionKey, fieldSessionKey)
	if err != nil {
		return Tokens{}, fmt.Errorf("login: encrypt session key: %w", err)
	}
	var out Tokens
	var disabled bool
	err = a.c.Tx.InTx(ctx, func(ctx context.Context) error {
		now := a.c.Now()
		u, err := a.c.Users.GetByOpenID(ctx, ws.OpenID)
		switch {
		case errors.Is(err, apperr.ErrNotFound):
			u, err = a.createResident(ctx, ws, skEnc, now)
			if err != nil {
				return err
			}
			out.NewUser = true
		case err != nil:
			return err
		default:
			if u.Status == model.UserDisabled {
				disabled = true
				return nil
			}
			cols := map[string]any{"session_key_enc": skEnc, "last_login_at": now}
			if ws.UnionID != "" {
				cols["union_id"] = ws.UnionID
			}
			if err := a.c.Users.Update(ctx, u.ID, cols); err != nil {
				return err
			}
		}
		out.UserID = u.ID
		if err := a.newSession(ctx, u.ID, now, &out); err != nil {
			return err
		}
		return a.c.Audit.Record(ctx, AuditEntry{ActorID: u.ID, Action: "auth.login", ObjectType: "user", ObjectID: u.ID,
			After: map[string]any{"new_user": out.NewUser}})
	})
	if err != nil {
		return Tokens{}, err
	}
	if disabled {
		return Tokens{}, errUserDisabled
	}
	return out, nil
}

func (a *Auth) createResident(ctx context.Context, ws wechat.Session, skEnc string, now time.Time) (model.User, error) {
	u := model.User{ID: ids.New(), OpenID: ws.OpenID, SessionKeyEnc: skEnc, Status: model.UserActive,
		Nickname: "微信用户", LastLoginAt: &now}
	if ws.UnionID != "" {
		u.UnionID = &ws.UnionID
	}
	if err := a.c.Users.Create(ctx, &u); err != nil {
		return model.User{}, err
	}
	roots, err := a.c.Regions.Children(ctx, "")
	if err != nil {
		return model.User{}, err
	}
	for _, r := range roots {
		rid := r.ID
		if err := a.c.Users.EnsureBinding(ctx, &model.RoleBinding{ID: ids.New(), UserID: u.ID, Role: model.RoleResident,
			ScopeKey: "region:" + rid, RegionID: &rid, GrantedBy: "system"}); err != nil {
			return model.User{}, err
		}
	}
	return u, nil
}

func (a *Auth) newSession(ctx context.Context, userID string, now time.Time, out *Tokens) error {
	meta := RequestMetaFrom(ctx)
	sess := model.AuthSession{ID: ids.New(), UserID: userID, UserAgent: truncate(meta.UserAgent, 255), IP: meta.IP}
	if err := a.c.Sessions.Create(ctx, &sess); err != nil {
		return err
	}
	return a.rotate(ctx, sess.ID, userID, now, out)
}

func (a *Auth) rotate(ctx context.Context, sessionID, userID string, now time.Time, out *Tokens) error {
	raw, hash := authtoken.NewRefreshToken()
	rt := model.RefreshToken{ID: ids.New(), SessionID: sessionID, TokenHash: hash, ExpiresAt: now.Add(a.c.RefreshTTL)}
	if err := a.c.Sessions.AddRefreshToken(ctx, &rt); err != nil {
		return err
	}
	access, exp, err := a.c.Tokens.Issue(userID, sessionID)
	if err != nil {
		return err
	}
	out.AccessToken, out.AccessExpiresAt = access, exp
	out.RefreshToken, out.RefreshExpiresAt = raw, rt.ExpiresAt
	out.UserID = userID
	return nil
}

// Refresh rotates a refresh token. Presenting one that was already rotated
// means it was copied: the whole session (every token rotated from the same
// login) is revoked.
func (a *Auth) Refresh(ctx context.Context, refreshToken string) (Tokens, error) {
	if refreshToken == "" || len(refreshToken) > 128 {
		return Tokens{}, errRefreshBad
	}
	var out Tokens
	var reused bool
	err := a.c.Tx.InTx(ctx, func(ctx context.Context) error {
		now := a.c.Now()
		t, err := a.c.Sessions.LockRefreshToken(ctx, authtoken.HashToken(refreshToken))
		if errors.Is(err, apperr.ErrNotFound) {
			return errRefreshBad
		}
		if err != nil {
			return err
		}
		sess, err := a.c.Sessions.Get(ctx, t.SessionID)
		if err != nil {
			return err
		}
		if sess.RevokedAt != nil {
			return errSessionGone
		}
		if t.UsedAt != nil {
			reused = true
			if err := a.c.Sessions.Revoke(ctx, sess.ID, "refresh_reuse", now); err != nil {
				return err
			}
			return a.c.Audit.Record(ctx, AuditEntry{ActorID: sess.UserID, Action: "auth.refresh_reuse",
				ObjectType: "session", ObjectID: sess.ID, Reason: "rotated refresh token presented again"})
		}
		if now.After(t.ExpiresAt) {
			return errRefreshOld
		}
		if err := a.c.Sessions.MarkRefreshUsed(ctx, t.ID, now); err != nil {
			return err
		}
		return a.rotate(ctx, sess.ID, sess.UserID, now, &out)
	})
	if err != nil {
		return Tokens{}, err
	}
	if reused {
		return Tokens{}, errRefreshReuse
	}
	return out, nil
}

// Logout revokes the caller's session: its access and refresh tokens stop
// working at once.
func (a *Auth) Logout(ctx context.Context) error {
	p := PrincipalFrom(ctx)
	if p == nil {
		return errTokenInvalid
	}
	return a.c.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := a.c.Sessions.Revoke(ctx, p.SessionID, "logout", a.c.Now()); err != nil {
			return err
		}
		return a.c.Audit.Record(ctx, AuditEntry{Action: "auth.logout", ObjectType: "session", ObjectID: p.SessionID})
	})
}

// Authenticate turns an access token into the caller with resolved scopes.
func (a *Auth) Authenticate(ctx context.Context, accessToken string) (*Principal, error) {
	claims, err := a.c.Tokens.Verify(accessToken)
	if errors.Is(err, authtoken.ErrExpired) {
		return nil, errTokenExpired
	}
	if err != nil {
		return nil, errTokenInvalid
	}
	sess, err := a.c.Sessions.Get(ctx, claims.SessionID)
	if errors.Is(err, apperr.ErrNotFound) {
		return nil, errTokenInvalid
	}
	if err != nil {
		return nil, err
	}
	if sess.RevokedAt != nil || sess.UserID != claims.UserID {
		return nil, errSessionGone
	}
	u, err := a.c.Users.Get(ctx, claims.UserID)
	if err != nil {
		return nil, errTokenInvalid
	}
	if u.Status != model.UserActive {
		return nil, errUserDisabled
	}
	bs, err := a.c.Users.Bindings(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	resolved, err := resolveBindings(ctx, a.c.Regions, a.c.Orgs, bs)
	if err != nil {
		return nil, err
	}
	return &Principal{UserID: u.ID, SessionID: sess.ID, Bindings: resolved}, nil
}

// resolveBindings attaches region paths and names, with one query per table.
func resolveBindings(ctx context.Context, regions RegionStore, orgs OrgStore, bs []model.RoleBinding) ([]Binding, error) {
	var regionIDs, orgIDs []string
	for _, b := range bs {
		if b.RegionID != nil {
			regionIDs = append(regionIDs, *b.RegionID)
		}
		if b.OrgID != nil {
			orgIDs = append(orgIDs, *b.OrgID)
		}
	}
	om, err := orgs.GetMany(ctx, orgIDs)
	if err != nil {
		return nil, err
	}
	for _, o := range om {
		regionIDs = append(regionIDs, o.RegionID)
	}
	rm, err := regions.GetMany(ctx, regionIDs)
	if err != nil {
		return nil, err
	}
	out := make([]Binding, 0, len(bs))
	for _, b := range bs {
		rb := Binding{ID: b.ID, Role: b.Role}
		if b.RegionID != nil {
			r := rm[*b.RegionID]
			rb.RegionID, rb.RegionPath, rb.RegionName = r.ID, r.Path, r.Name
		}
		if b.OrgID != nil {
			o := om[*b.OrgID]
			rb.OrgID, rb.OrgName, rb.OrgPath = o.ID, o.Name, rm[o.RegionID].Path
		}
		out = append(out, rb)
	}
	return out, nil
}

// Me is the caller's own profile.
type Me struct {
	User     model.User
	Phone    string // masked
	Bindings []Binding
}

// Me returns the caller's profile with role bindings.
func (a *Auth) Me(ctx context.Context) (Me, error) {
	p := PrincipalFrom(ctx)
	if p == nil {
		return Me{}, errTokenInvalid
	}
	u, err := a.c.Users.Get(ctx, p.UserID)
	if err != nil {
		return Me{}, err
	}
	me := Me{User: u, Bindings: p.Bindings}
	if u.PhoneEnc != "" {
		if phone, err := a.c.Cipher.Decrypt(u.PhoneEnc, fieldUserPhone); err == nil {
			me.Phone = pii.MaskPhone(phone)
		}
	}
	return me, nil
}

// BindPhone stores the caller's phone number from the getPhoneNumber code.
func (a *Auth) BindPhone(ctx context.Context, code string) (string, error) {
	p := PrincipalFrom(ctx)
	if code == "" || len(code) > 128 {
		return "", apperr.Invalid("手机号凭证不能为空", apperr.FieldError{Field: "code", Reason: "required"})
	}
	raw, err := a.c.WeChat.PhoneNumber(ctx, code)
	if errors.Is(err, wechat.ErrInvalidCode) {
		return "", apperr.New(apperr.ErrInvalid, "WECHAT_CODE_INVALID", "手机号凭证无效，请重试")
	}
	if err != nil {
		return "", apperr.Wrap(apperr.ErrUnavailable, "WECHAT_UNAVAILABLE", "微信服务暂时不可用，请稍后重试", err)
	}
	phone, err := pii.NormalizePhone(raw)
	if err != nil {
		return "", apperr.New(apperr.ErrInvalid, "PHONE_INVALID", "手机号格式不正确")
	}
	enc, err := a.c.Cipher.Encrypt(phone, fieldUserPhone)
	if err != nil {
		return "", err
	}
	idx := a.c.Cipher.BlindIndex(fieldUserPhone, phone)
	err = a.c.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := a.c.Users.Update(ctx, p.UserID, map[string]any{"phone_enc": enc, "phone_index": idx}); err != nil {
			return err
		}
		return a.c.Audit.Record(ctx, AuditEntry{Action: "user.bind_phone", ObjectType: "user", ObjectID: p.UserID,
			After: map[string]any{"phone": pii.MaskPhone(phone)}})
	})
	return pii.MaskPhone(phone), err
}

// ConsentPrivacy records that the caller accepted a privacy-policy version.
func (a *Auth) ConsentPrivacy(ctx context.Context, version string) (time.Time, error) {
	p := PrincipalFrom(ctx)
	version = strings.TrimSpace(version)
	if version == "" || len(version) > 32 {
		return time.Time{}, apperr.Invalid("隐私政策版本无效", apperr.FieldError{Field: "version", Reason: "invalid"})
	}
	now := a.c.Now()
	err := a.c.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := a.c.Users.Update(ctx, p.UserID, map[string]any{"privacy_consent_version": version, "privacy_consent_at": now}); err != nil {
			return err
		}
		return a.c.Audit.Record(ctx, AuditEntry{Action: "user.privacy_consent", ObjectType: "user", ObjectID: p.UserID,
			After: map[string]any{"version": version}})
	})
	return now, err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
