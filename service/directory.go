package service

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"time"

	"qjmz/model"
	"qjmz/pkg/apperr"
	"qjmz/pkg/ids"
	"qjmz/pkg/pii"
)

// DirectoryConfig wires region, organization and role management.
type DirectoryConfig struct {
	Tx      TxRunner
	Regions RegionStore
	Orgs    OrgStore
	Users   UserStore
	Cipher  Cipher
	Audit   *Auditor
	Now     func() time.Time
}

// Directory manages the region tree, organizations, users' role bindings.
type Directory struct{ c DirectoryConfig }

// NewDirectory builds the directory use cases.
func NewDirectory(c DirectoryConfig) *Directory { return &Directory{c: c} }

const fieldOrgPhone = "organizations.contact_phone"

var childLevel = map[string]string{
	model.LevelProvince: model.LevelCity, model.LevelCity: model.LevelDistrict,
	model.LevelDistrict: model.LevelTown, model.LevelTown: model.LevelCommunity,
}

var codePattern = regexp.MustCompile(`^[0-9]{6,15}$`)

// ---- regions ----

// Children lists the children of a region ("" = roots). The tree is public.
func (d *Directory) Children(ctx context.Context, parentID string) ([]model.Region, error) {
	if parentID != "" {
		if _, err := d.c.Regions.Get(ctx, parentID); err != nil {
			return nil, notFound("地区", err)
		}
	}
	return d.c.Regions.Children(ctx, parentID)
}

// Region returns one region.
func (d *Directory) Region(ctx context.Context, id string) (model.Region, error) {
	r, err := d.c.Regions.Get(ctx, id)
	if err != nil {
		return model.Region{}, notFound("地区", err)
	}
	return r, nil
}

// RegionInput creates or edits a region.
type RegionInput struct {
	ParentID string
	Code     string
	Name     string
	Lat, Lng *float64
	RadiusM  *int
}

// CreateRegion adds a child region under a parent within the admin's scope.
func (d *Directory) CreateRegion(ctx context.Context, in RegionInput) (model.Region, error) {
	p := PrincipalFrom(ctx)
	parent, err := d.c.Regions.Get(ctx, in.ParentID)
	if err != nil || !p.CanRegion(parent.Path, model.RoleBureauAdmin) {
		return model.Region{}, notFound("上级地区", err)
	}
	level, ok := childLevel[parent.Level]
	if !ok {
		return model.Region{}, apperr.New(apperr.ErrInvalid, "REGION_LEAF", "村社区下不能再建下级")
	}
	if err := validateRegion(in, true); err != nil {
		return model.Region{}, err
	}
	r := model.Region{ID: ids.New(), ParentID: &parent.ID, Level: level, Code: in.Code, Name: strings.TrimSpace(in.Name)}
	r.Path = parent.Path + r.ID + "/"
	if in.Lat != nil {
		r.Lat, r.Lng = *in.Lat, *in.Lng
	}
	if in.RadiusM != nil {
		r.RadiusM = *in.RadiusM
	}
	err = d.c.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := d.c.Regions.Create(ctx, &r); err != nil {
			if errors.Is(err, apperr.ErrConflict) {
				return apperr.New(apperr.ErrConflict, "REGION_CODE_TAKEN", "地区代码已存在")
			}
			return err
		}
		return d.c.Audit.Record(ctx, AuditEntry{Action: "region.create", ObjectType: "region", ObjectID: r.ID, After: r})
	})
	return r, err
}

// UpdateRegion edits a region's name or geofence. Bureau admins edit anything
// in scope; a station reviewer may set the geofence of communities in town.
func (d *Directory) UpdateRegion(ctx context.Context, id string, in RegionInput) (model.Region, error) {
	p := PrincipalFrom(ctx)
	r, err := d.c.Regions.Get(ctx, id)
	admin := err == nil && p.CanRegion(r.Path, model.RoleBureauAdmin)
	station := err == nil && r.Level == model.LevelCommunity && p.CanRegion(r.Path, model.RoleStationReviewer)
	if !admin && !station {
		return model.Region{}, notFound("地区", err)
	}
	if err := validateRegion(in, false); err != nil {
		return model.Region{}, err
	}
	cols := map[string]any{}
	if in.Name != "" {
		if !admin {
			return model.Region{}, apperr.New(apperr.ErrForbidden, "FORBIDDEN", "只能修改社区的位置范围")
		}
		cols["name"] = strings.TrimSpace(in.Name)
	}
	if in.Lat != nil {
		cols["lat"], cols["lng"], cols["coords_approx"] = *in.Lat, *in.Lng, false
	}
	if in.RadiusM != nil {
		cols["radius_m"] = *in.RadiusM
	}
	if len(cols) == 0 {
		return r, nil
	}
	before := r
	err = d.c.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := d.c.Regions.Update(ctx, id, cols); err != nil {
			return err
		}
		if r, err = d.c.Regions.Get(ctx, id); err != nil {
			return err
		}
		return d.c.Audit.Record(ctx, AuditEntry{Action: "region.update", ObjectType: "region", ObjectID: id, Before: before, After: r})
	})
	return r, err
}

func validateRegion(in RegionInput, create bool) error {
	var fe []apperr.FieldError
	if create && !codePattern.MatchString(in.Code) {
		fe = append(fe, apperr.FieldError{Field: "code", Reason: "invalid"})
	}
	if n := len([]rune(strings.TrimSpace(in.Name))); (create && n == 0) || n > 64 {
		fe = append(fe, apperr.FieldError{Field: "name", Reason: "invalid"})
	}
	if (in.Lat == nil) != (in.Lng == nil) {
		fe = append(fe, apperr.FieldError{Field: "lat", Reason: "lat_and_lng_together"})
	}
	if in.Lat != nil && (*in.Lat < 3 || *in.Lat > 54 || *in.Lng < 73 || *in.Lng > 136) {
		fe = append(fe, apperr.FieldError{Field: "lat", Reason: "outside_china"})
	}
	if in.RadiusM != nil && (*in.RadiusM < 50 || *in.RadiusM > 20000) {
		fe = append(fe, apperr.FieldError{Field: "radius_m", Reason: "range_50_20000"})
	}
	if len(fe) > 0 {
		return apperr.Invalid("地区信息不正确", fe...)
	}
	return nil
}

// ---- organizations ----

// OrgInput creates or edits an organization.
type OrgInput struct {
	Name, CreditCode, Rating, ContactName, ContactPhone, RegionID, Status string
}

// OrgView is an organization with its contact phone masked.
type OrgView struct {
	Org          model.Organization
	ContactPhone string
	RegionName   string
}

var creditCodePattern = regexp.MustCompile(`^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$`)

// CreateOrg registers an organization homed in a region in the admin's scope.
func (d *Directory) CreateOrg(ctx context.Context, in OrgInput) (OrgView, error) {
	p := PrincipalFrom(ctx)
	reg, err := d.c.Regions.Get(ctx, in.RegionID)
	if err != nil || !p.CanRegion(reg.Path, model.RoleBureauAdmin) {
		return OrgView{}, notFound("地区", err)
	}
	var fe []apperr.FieldError
	in.Name = strings.TrimSpace(in.Name)
	if n := len([]rune(in.Name)); n < 2 || n > 128 {
		fe = append(fe, apperr.FieldError{Field: "name", Reason: "length_2_128"})
	}
	in.CreditCode = strings.ToUpper(strings.TrimSpace(in.CreditCode))
	if !creditCodePattern.MatchString(in.CreditCode) {
		fe = append(fe, apperr.FieldError{Field: "credit_code", Reason: "invalid"})
	}
	phoneEnc, fe := d.encryptOrgPhone(in.ContactPhone, fe)
	if len(fe) > 0 {
		return OrgView{}, apperr.Invalid("机构信息不正确", fe...)
	}
	o := model.Organization{ID: ids.New(), Name: in.Name, CreditCode: in.CreditCode, Rating: in.Rating,
		ContactName: in.ContactName, ContactPhoneEnc: phoneEnc, RegionID: reg.ID, Status: model.OrgActive}
	err = d.c.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := d.c.Orgs.Create(ctx, &o); err != nil {
			if errors.Is(err, apperr.ErrConflict) {
				return apperr.New(apperr.ErrConflict, "ORG_CREDIT_CODE_TAKEN", "统一社会信用代码已登记")
			}
			return err
		}
		return d.c.Audit.Record(ctx, AuditEntry{Action: "org.create", ObjectType: "organization", ObjectID: o.ID, After: orgAudit(o)})
	})
	if err != nil {
		return OrgView{}, err
	}
	return d.view(o, reg.Name, in.ContactPhone), nil
}

func (d *Directory) encryptOrgPhone(raw string, fe []apperr.FieldError) (string, []apperr.FieldError) {
	if raw == "" {
		return "", fe
	}
	phone, err := pii.NormalizePhone(raw)
	if err != nil {
		return "", append(fe, apperr.FieldError{Field: "contact_phone", Reason: "invalid"})
	}
	enc, err := d.c.Cipher.Encrypt(phone, fieldOrgPhone)
	if err != nil {
		return "", append(fe, apperr.FieldError{Field: "contact_phone", Reason: "invalid"})
	}
	return enc, fe
}

func orgAudit(o model.Organization) map[string]any {
	return map[string]any{"name": o.Name, "credit_code": o.CreditCode, "rating": o.Rating, "region_id": o.RegionID, "status": o.Status}
}

func (d *Directory) view(o model.Organization, regionName, plainPhone string) OrgView {
	v := OrgView{Org: o, RegionName: regionName}
	if plainPhone == "" && o.ContactPhoneEnc != "" {
		plainPhone, _ = d.c.Cipher.Decrypt(o.ContactPhoneEnc, fieldOrgPhone)
	}
	if plainPhone != "" {
		if n, err := pii.NormalizePhone(plainPhone); err == nil {
			v.ContactPhone = pii.MaskPhone(n)
		}
	}
	return v
}

// orgVisible: bureau staff over the org's home region, or its own members.
func orgVisible(p *Principal, o model.Organization, homePath string) bool {
	return p.CanRegion(homePath, model.RoleBureauAdmin, model.RoleBureauReviewer, model.RoleStationReviewer, model.RoleAuditor) ||
		p.CanOrg(o.ID, model.RoleOrgAdmin, model.RoleWorker)
}

// Org returns one organization the caller may see.
func (d *Directory) Org(ctx context.Context, id string) (OrgView, error) {
	o, err := d.c.Orgs.Get(ctx, id)
	if err != nil {
		return OrgView{}, notFound("机构", err)
	}
	reg, err := d.c.Regions.Get(ctx, o.RegionID)
	if err != nil || !orgVisible(PrincipalFrom(ctx), o, reg.Path) {
		return OrgView{}, notFound("机构", err)
	}
	return d.view(o, reg.Name, ""), nil
}

// ListOrgs lists organizations homed in the admin's regions.
func (d *Directory) ListOrgs(ctx context.Context, cursor string, limit int) ([]OrgView, string, error) {
	p := PrincipalFrom(ctx)
	regionIDs, names, err := d.scopeRegionIDs(ctx, p.RegionPaths(model.RoleBureauAdmin, model.RoleBureauReviewer, model.RoleStationReviewer, model.RoleAuditor))
	if err != nil {
		return nil, "", err
	}
	if len(regionIDs) == 0 {
		return nil, "", nil
	}
	rows, err := d.c.Orgs.ListInRegions(ctx, regionIDs, cursor, limit+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(rows) > limit {
		rows, next = rows[:limit], rows[limit-1].ID
	}
	out := make([]OrgView, 0, len(rows))
	for _, o := range rows {
		out = append(out, d.view(o, names[o.RegionID], ""))
	}
	return out, next, nil
}

// UpdateOrg edits an organization in the admin's scope.
func (d *Directory) UpdateOrg(ctx context.Context, id string, in OrgInput) (OrgView, error) {
	p := PrincipalFrom(ctx)
	o, err := d.c.Orgs.Get(ctx, id)
	if err != nil {
		return OrgView{}, notFound("机构", err)
	}
	reg, err := d.c.Regions.Get(ctx, o.RegionID)
	if err != nil || !p.CanRegion(reg.Path, model.RoleBureauAdmin) {
		return OrgView{}, notFound("机构", err)
	}
	cols := map[string]any{}
	var fe []apperr.FieldError
	if in.Name != "" {
		cols["name"] = strings.TrimSpace(in.Name)
	}
	if in.Rating != "" {
		cols["rating"] = in.Rating
	}
	if in.ContactName != "" {
		cols["contact_name"] = in.ContactName
	}
	if in.ContactPhone != "" {
		var enc string
		enc, fe = d.encryptOrgPhone(in.ContactPhone, fe)
		cols["contact_phone_enc"] = enc
	}
	if in.Status != "" {
		cols["status"] = in.Status
	}
	if len(fe) > 0 {
		return OrgView{}, apperr.Invalid("机构信息不正确", fe...)
	}
	before := o
	err = d.c.Tx.InTx(ctx, func(ctx context.Context) error {
		if len(cols) > 0 {
			if err := d.c.Orgs.Update(ctx, id, cols); err != nil {
				return err
			}
		}
		if o, err = d.c.Orgs.Get(ctx, id); err != nil {
			return err
		}
		return d.c.Audit.Record(ctx, AuditEntry{Action: "org.update", ObjectType: "organization", ObjectID: id,
			Before: orgAudit(before), After: orgAudit(o)})
	})
	if err != nil {
		return OrgView{}, err
	}
	return d.view(o, reg.Name, ""), nil
}

func (d *Directory) scopeRegionIDs(ctx context.Context, paths []string) ([]string, map[string]string, error) {
	names := map[string]string{}
	var idsOut []string
	for _, path := range paths {
		sub, err := d.c.Regions.Subtree(ctx, path, "")
		if err != nil {
			return nil, nil, err
		}
		for _, r := range sub {
			if _, seen := names[r.ID]; !seen {
				names[r.ID] = r.Name
				idsOut = append(idsOut, r.ID)
			}
		}
	}
	return idsOut, names, nil
}

// ---- users and role bindings ----

// UserView is a user as an admin sees it: no openid, no session key.
type UserView struct {
	User     model.User
	Bindings []Binding
}

// ListUsers lists users holding any role within the admin's regions or
// organizations homed there.
func (d *Directory) ListUsers(ctx context.Context, cursor string, limit int) ([]UserView, string, error) {
	p := PrincipalFrom(ctx)
	regionIDs, _, err := d.scopeRegionIDs(ctx, p.RegionPaths(model.RoleBureauAdmin))
	if err != nil {
		return nil, "", err
	}
	if len(regionIDs) == 0 {
		return nil, "", apperr.New(apperr.ErrForbidden, "FORBIDDEN", "无权查看用户")
	}
	// Hundreds of organizations per district today; the cap keeps the IN
	// list bounded if that ever grows by orders of magnitude.
	orgs, err := d.c.Orgs.ListInRegions(ctx, regionIDs, "", 5000)
	if err != nil {
		return nil, "", err
	}
	orgIDs := make([]string, 0, len(orgs))
	for _, o := range orgs {
		orgIDs = append(orgIDs, o.ID)
	}
	users, err := d.c.Users.UsersWithBindingIn(ctx, regionIDs, orgIDs, cursor, limit+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(users) > limit {
		users, next = users[:limit], users[limit-1].ID
	}
	uids := make([]string, 0, len(users))
	for _, u := range users {
		uids = append(uids, u.ID)
	}
	bmap, err := d.c.Users.BindingsOf(ctx, uids)
	if err != nil {
		return nil, "", err
	}
	var all []model.RoleBinding
	for _, bs := range bmap {
		all = append(all, bs...)
	}
	resolved, err := resolveBindings(ctx, d.c.Regions, d.c.Orgs, all)
	if err != nil {
		return nil, "", err
	}
	byID := map[string]Binding{}
	for _, b := range resolved {
		byID[b.ID] = b
	}
	out := make([]UserView, 0, len(users))
	for _, u := range users {
		v := UserView{User: u}
		for _, b := range bmap[u.ID] {
			v.Bindings = append(v.Bindings, byID[b.ID])
		}
		out = append(out, v)
	}
	return out, next, nil
}

// GrantInput names a role and its scope.
type GrantInput struct {
	UserID   string
	Role     string
	RegionID string
	OrgID    string
}

// Grant binds a role to a user within the admin's own scope.
func (d *Directory) Grant(ctx context.Context, in GrantInput) (Binding, error) {
	p := PrincipalFrom(ctx)
	if !slices.Contains(model.AllRoles, in.Role) {
		return Binding{}, apperr.New(apperr.ErrInvalid, "UNKNOWN_ENUM_VALUE", "角色不存在").
			WithFields(apperr.FieldError{Field: "role", Reason: "one_of:" + strings.Join(model.AllRoles, ",")})
	}
	b := model.RoleBinding{ID: ids.New(), UserID: in.UserID, Role: in.Role, GrantedBy: p.UserID}
	if model.OrgScoped(in.Role) {
		if in.OrgID == "" || in.RegionID != "" {
			return Binding{}, apperr.Invalid("该角色须绑定到机构", apperr.FieldError{Field: "organization_id", Reason: "required"})
		}
		o, err := d.c.Orgs.Get(ctx, in.OrgID)
		if err != nil {
			return Binding{}, notFound("机构", err)
		}
		home, err := d.c.Regions.Get(ctx, o.RegionID)
		if err != nil || !p.CanRegion(home.Path, model.RoleBureauAdmin) {
			return Binding{}, notFound("机构", err)
		}
		b.OrgID, b.ScopeKey = &o.ID, "org:"+o.ID
	} else {
		if in.RegionID == "" || in.OrgID != "" {
			return Binding{}, apperr.Invalid("该角色须绑定到地区", apperr.FieldError{Field: "region_id", Reason: "required"})
		}
		r, err := d.c.Regions.Get(ctx, in.RegionID)
		if err != nil || !p.CanRegion(r.Path, model.RoleBureauAdmin) {
			return Binding{}, notFound("地区", err)
		}
		if in.Role == model.RoleStationReviewer && r.Level != model.LevelTown {
			return Binding{}, apperr.Invalid("社工站审核员须绑定到街镇", apperr.FieldError{Field: "region_id", Reason: "must_be_town"})
		}
		b.RegionID, b.ScopeKey = &r.ID, "region:"+r.ID
	}
	if _, err := d.c.Users.Get(ctx, in.UserID); err != nil {
		return Binding{}, notFound("用户", err)
	}
	err := d.c.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := d.c.Users.AddBinding(ctx, &b); err != nil {
			if errors.Is(err, apperr.ErrConflict) {
				return apperr.New(apperr.ErrConflict, "BINDING_EXISTS", "该用户已有此角色")
			}
			return err
		}
		return d.c.Audit.Record(ctx, AuditEntry{Action: "role.grant", ObjectType: "role_binding", ObjectID: b.ID,
			After: map[string]any{"user_id": b.UserID, "role": b.Role, "scope": b.ScopeKey}})
	})
	if err != nil {
		return Binding{}, err
	}
	res, err := resolveBindings(ctx, d.c.Regions, d.c.Orgs, []model.RoleBinding{b})
	if err != nil {
		return Binding{}, err
	}
	return res[0], nil
}

// Revoke removes a binding whose scope lies within the admin's scope. An
// admin cannot remove their own last bureau_admin binding.
func (d *Directory) Revoke(ctx context.Context, bindingID string) error {
	p := PrincipalFrom(ctx)
	b, err := d.c.Users.GetBinding(ctx, bindingID)
	if err != nil {
		return notFound("角色绑定", err)
	}
	res, err := resolveBindings(ctx, d.c.Regions, d.c.Orgs, []model.RoleBinding{b})
	if err != nil {
		return err
	}
	path := res[0].RegionPath
	if path == "" {
		path = res[0].OrgPath
	}
	if !p.CanRegion(path, model.RoleBureauAdmin) {
		return notFound("角色绑定", nil)
	}
	if b.UserID == p.UserID && b.Role == model.RoleBureauAdmin {
		return apperr.New(apperr.ErrConflict, "CANNOT_REVOKE_SELF", "不能撤销自己的管理员角色")
	}
	return d.c.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := d.c.Users.DeleteBinding(ctx, bindingID); err != nil {
			return err
		}
		return d.c.Audit.Record(ctx, AuditEntry{Action: "role.revoke", ObjectType: "role_binding", ObjectID: b.ID,
			Before: map[string]any{"user_id": b.UserID, "role": b.Role, "scope": b.ScopeKey}})
	})
}

// notFound turns a missing or out-of-scope object into the same answer.
func notFound(what string, err error) error {
	if err != nil && !errors.Is(err, apperr.ErrNotFound) {
		return err
	}
	return apperr.NotFound(what)
}
