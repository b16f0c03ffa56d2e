package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"qjmz/model"
	"qjmz/pkg/apperr"
	"qjmz/pkg/ids"
)

// BootstrapConfig wires the first-admin grant.
type BootstrapConfig struct {
	Tx      TxRunner
	Users   UserStore
	Regions RegionStore
	Audit   *Auditor
	Now     func() time.Time
}

// GrantFirstAdmin makes the user with openID a bureau_admin of the region
// with regionCode (creating the user if they never logged in). It is run from
// the command line by the operator, so there is no principal; it is audited
// as actor "cli".
func GrantFirstAdmin(ctx context.Context, c BootstrapConfig, openID, regionCode string) (string, error) {
	if openID == "" {
		return "", fmt.Errorf("openid is required")
	}
	reg, err := c.Regions.GetByCode(ctx, regionCode)
	if err != nil {
		return "", fmt.Errorf("region %s: %w", regionCode, err)
	}
	var userID string
	err = c.Tx.InTx(ctx, func(ctx context.Context) error {
		u, err := c.Users.GetByOpenID(ctx, openID)
		if errors.Is(err, apperr.ErrNotFound) {
			u = model.User{ID: ids.New(), OpenID: openID, Status: model.UserActive, Nickname: "管理员"}
			err = c.Users.Create(ctx, &u)
		}
		if err != nil {
			return err
		}
		userID = u.ID
		rid := reg.ID
		b := model.RoleBinding{ID: ids.New(), UserID: u.ID, Role: model.RoleBureauAdmin, ScopeKey: "region:" + rid, RegionID: &rid, GrantedBy: "cli"}
		err = c.Users.AddBinding(ctx, &b)
		if errors.Is(err, apperr.ErrConflict) {
			return nil // already an admin there: nothing changed, nothing to audit
		}
		if err != nil {
			return err
		}
		return c.Audit.Record(ctx, AuditEntry{ActorID: "cli", Action: "role.grant", ObjectType: "role_binding", ObjectID: b.ID,
			After: map[string]any{"user_id": u.ID, "role": model.RoleBureauAdmin, "scope": b.ScopeKey}, Reason: "grant-admin command"})
	})
	return userID, err
}

// CreateRootRegion creates the top region of a fresh production database
// (the region API needs a parent; demo data is refused in production). It
// refuses when a region with the code exists.
func CreateRootRegion(ctx context.Context, c BootstrapConfig, level, code, name string, lat, lng float64, radiusM int) (model.Region, error) {
	switch level {
	case model.LevelProvince, model.LevelCity, model.LevelDistrict:
	default:
		return model.Region{}, fmt.Errorf("level must be province, city or district")
	}
	if code == "" || name == "" {
		return model.Region{}, fmt.Errorf("code and name are required")
	}
	r := model.Region{ID: ids.New(), Level: level, Code: code, Name: name, Lat: lat, Lng: lng, RadiusM: radiusM}
	r.Path = "/" + r.ID + "/"
	err := c.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := c.Regions.Create(ctx, &r); err != nil {
			return err
		}
		return c.Audit.Record(ctx, AuditEntry{ActorID: "cli", Action: "region.create", ObjectType: "region", ObjectID: r.ID,
			After: r, Reason: "create-root-region command"})
	})
	return r, err
}
