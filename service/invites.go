package service

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"time"

	"qjmz/model"
	"qjmz/pkg/apperr"
	"qjmz/pkg/authtoken"
	"qjmz/pkg/ids"
)

// InvitesConfig wires invite codes.
type InvitesConfig struct {
	Tx      TxRunner
	Invites InviteStore
	Orgs    OrgStore
	Regions RegionStore
	Users   UserStore
	Audit   *Auditor
	Now     func() time.Time
}

// Invites lets an org_admin invite workers with single-use, expiring codes.
type Invites struct{ c InvitesConfig }

// NewInvites builds the invite use cases.
func NewInvites(c InvitesConfig) *Invites { return &Invites{c: c} }

// Crockford base32 without I, L, O, U: codes are read aloud and typed on phones.
const inviteAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// IssuedInvite is returned once; only the hash is stored.
type IssuedInvite struct {
	ID        string
	Code      string
	OrgID     string
	Role      string
	ExpiresAt time.Time
}

// Create issues an invite for a role in an organization. org_admins invite
// workers to their own organization; bureau admins may also invite org_admins
// of organizations in their scope.
func (s *Invites) Create(ctx context.Context, orgID, role string, ttl time.Duration) (IssuedInvite, error) {
	p := PrincipalFrom(ctx)
	if role == "" {
		role = model.RoleWorker
	}
	if role != model.RoleWorker && role != model.RoleOrgAdmin {
		return IssuedInvite{}, apperr.New(apperr.ErrInvalid, "UNKNOWN_ENUM_VALUE", "邀请角色只能是 worker 或 org_admin").
			WithFields(apperr.FieldError{Field: "role", Reason: "one_of:worker,org_admin"})
	}
	if ttl <= 0 {
		ttl = 72 * time.Hour
	}
	if ttl < 10*time.Minute || ttl > 14*24*time.Hour {
		return IssuedInvite{}, apperr.Invalid("有效期须在10分钟到14天之间", apperr.FieldError{Field: "ttl_hours", Reason: "range"})
	}
	o, err := s.c.Orgs.Get(ctx, orgID)
	if err != nil {
		return IssuedInvite{}, notFound("机构", err)
	}
	home, err := s.c.Regions.Get(ctx, o.RegionID)
	if err != nil {
		return IssuedInvite{}, err
	}
	bureau := p.CanRegion(home.Path, model.RoleBureauAdmin)
	orgAdmin := p.CanOrg(o.ID, model.RoleOrgAdmin)
	if !bureau && !orgAdmin {
		return IssuedInvite{}, notFound("机构", nil)
	}
	if role == model.RoleOrgAdmin && !bureau {
		return IssuedInvite{}, apperr.New(apperr.ErrForbidden, "FORBIDDEN", "只有民政局管理员可以邀请机构负责人")
	}
	if o.Status != model.OrgActive {
		return IssuedInvite{}, apperr.New(apperr.ErrConflict, "ORG_SUSPENDED", "机构已暂停，不能邀请成员")
	}
	code := newInviteCode()
	inv := model.Invite{ID: ids.New(), CodeHash: authtoken.HashToken(normalizeInviteCode(code)), OrgID: o.ID, Role: role,
		CreatedBy: p.UserID, ExpiresAt: s.c.Now().Add(ttl)}
	err = s.c.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.c.Invites.Create(ctx, &inv); err != nil {
			return err
		}
		return s.c.Audit.Record(ctx, AuditEntry{Action: "invite.create", ObjectType: "invite", ObjectID: inv.ID,
			After: map[string]any{"org_id": o.ID, "role": role, "expires_at": inv.ExpiresAt}})
	})
	if err != nil {
		return IssuedInvite{}, err
	}
	return IssuedInvite{ID: inv.ID, Code: code, OrgID: o.ID, Role: role, ExpiresAt: inv.ExpiresAt}, nil
}

// Redeem binds the caller to the invite's organization. A code works once.
func (s *Invites) Redeem(ctx context.Context, code string) (Binding, error) {
	p := PrincipalFrom(ctx)
	norm := normalizeInviteCode(code)
	if len(norm) != 10 {
		return Binding{}, apperr.New(apperr.ErrNotFound, "INVITE_NOT_FOUND", "邀请码不存在")
	}
	var b model.RoleBinding
	err := s.c.Tx.InTx(ctx, func(ctx context.Context) error {
		inv, err := s.c.Invites.LockByCodeHash(ctx, authtoken.HashToken(norm))
		if errors.Is(err, apperr.ErrNotFound) {
			return apperr.New(apperr.ErrNotFound, "INVITE_NOT_FOUND", "邀请码不存在")
		}
		if err != nil {
			return err
		}
		now := s.c.Now()
		if inv.UsedAt != nil {
			return apperr.New(apperr.ErrConflict, "INVITE_USED", "邀请码已被使用")
		}
		if now.After(inv.ExpiresAt) {
			return apperr.New(apperr.ErrConflict, "INVITE_EXPIRED", "邀请码已过期")
		}
		ok, err := s.c.Invites.MarkUsed(ctx, inv.ID, p.UserID, now)
		if err != nil {
			return err
		}
		if !ok {
			return apperr.New(apperr.ErrConflict, "INVITE_USED", "邀请码已被使用")
		}
		orgID := inv.OrgID
		b = model.RoleBinding{ID: ids.New(), UserID: p.UserID, Role: inv.Role, ScopeKey: "org:" + orgID, OrgID: &orgID, GrantedBy: inv.CreatedBy}
		if err := s.c.Users.AddBinding(ctx, &b); err != nil {
			if errors.Is(err, apperr.ErrConflict) {
				return apperr.New(apperr.ErrConflict, "BINDING_EXISTS", "你已是该机构成员")
			}
			return err
		}
		return s.c.Audit.Record(ctx, AuditEntry{Action: "invite.redeem", ObjectType: "invite", ObjectID: inv.ID,
			After: map[string]any{"user_id": p.UserID, "role": inv.Role, "org_id": orgID}})
	})
	if err != nil {
		return Binding{}, err
	}
	res, err := resolveBindings(ctx, s.c.Regions, s.c.Orgs, []model.RoleBinding{b})
	if err != nil {
		return Binding{}, err
	}
	return res[0], nil
}

// newInviteCode returns 10 symbols (50 bits) shown as XXXXX-XXXXX. With rate
// limits on writes, guessing one live code is out of reach.
func newInviteCode() string {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		panic("invites: crypto/rand failed: " + err.Error())
	}
	out := make([]byte, 0, 11)
	for i, x := range b {
		if i == 5 {
			out = append(out, '-')
		}
		out = append(out, inviteAlphabet[int(x)%len(inviteAlphabet)])
	}
	return string(out)
}

func normalizeInviteCode(s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	s = strings.NewReplacer("-", "", " ", "", "O", "0", "I", "1", "L", "1").Replace(s)
	return s
}
