// Package demo loads Qianjiang demo data into an empty embedded database:
// the district, its 30 towns and streets, some communities, a few
// organizations and one account per role. Coordinates are approximate and
// marked so (coords_approx).
package demo

import (
	"context"
	"fmt"
	"log/slog"

	"qjmz/model"
	"qjmz/pkg/ids"
	"qjmz/pkg/wechat"
	"qjmz/repository"
)

// DistrictCode is Qianjiang's administrative code.
const DistrictCode = "500114"

// Town is a demo town or street with an approximate centre.
type Town struct {
	Name     string
	Lat, Lng float64
}

// Towns are Qianjiang's 30 towns and streets (DESIGN.md §7). Centres are
// rough offsets around the district centre (29.53 N, 108.77 E), for demos.
var Towns = []Town{
	{"城东街道", 29.535, 108.785}, {"城南街道", 29.520, 108.772}, {"城西街道", 29.531, 108.755},
	{"正阳街道", 29.565, 108.790}, {"舟白街道", 29.490, 108.760}, {"冯家街道", 29.580, 108.740},
	{"阿蓬江镇", 29.420, 108.690}, {"石会镇", 29.610, 108.880}, {"黑溪镇", 29.370, 108.810},
	{"黄溪镇", 29.460, 108.900}, {"黎水镇", 29.320, 108.720}, {"金溪镇", 29.720, 108.720},
	{"马喇镇", 29.650, 108.630}, {"濯水镇", 29.340, 108.600}, {"石家镇", 29.780, 108.800},
	{"鹅池镇", 29.690, 108.930}, {"小南海镇", 29.600, 108.960}, {"邻鄂镇", 29.540, 108.980},
	{"中塘乡", 29.260, 108.650}, {"蓬东乡", 29.420, 108.560}, {"沙坝乡", 29.730, 108.880},
	{"白石乡", 29.520, 108.860}, {"杉岭乡", 29.620, 108.700}, {"太极乡", 29.870, 108.790},
	{"水田乡", 29.810, 108.690}, {"白土乡", 29.250, 108.760}, {"金洞乡", 29.230, 108.540},
	{"五里乡", 29.380, 108.880}, {"水市乡", 29.290, 108.830}, {"新华乡", 29.760, 108.580},
}

// Communities are demo communities with approximate centres.
var Communities = []struct {
	Town, Name string
	Lat, Lng   float64
}{
	{"城南街道", "青社社区", 29.5185, 108.7702},
	{"城南街道", "城南社区", 29.5230, 108.7760},
	{"城西街道", "水井湾社区", 29.5322, 108.7521},
	{"城东街道", "书院社区", 29.5368, 108.7871},
	{"黎水镇", "华阳社区", 29.3215, 108.7188},
	{"沙坝乡", "沙坝村", 29.7302, 108.8805},
	{"濯水镇", "濯水社区", 29.3391, 108.6012},
}

// Org is a demo organization.
type Org struct {
	Name, CreditCode, Rating, Town string
}

// Orgs are the organizations named in reports (credit codes are made up).
var Orgs = []Org{
	{"黔江好心情公益服务中心", "52500114MJP000001A", "4A", "城南街道"},
	{"黔江区社稷公益服务中心", "52500114MJP000002B", "3A", "城西街道"},
	{"至善社会工作服务中心", "52500114MJP000003C", "5A", "城东街道"},
	{"沙坝互助养老中心", "52500114MJP000004D", "3A", "沙坝乡"},
}

// Account is a demo login: the code "dev:<Name>" logs in as it.
type Account struct {
	Name, Nickname, Role string
	Town                 string // region scope: "" = district
	Org                  string // organization scope
}

// Accounts are the demo logins, one or more per role.
var Accounts = []Account{
	{Name: "admin", Nickname: "区民政局管理员", Role: model.RoleBureauAdmin},
	{Name: "bureau-reviewer", Nickname: "区民政局审核员", Role: model.RoleBureauReviewer},
	{Name: "reviewer-chengnan", Nickname: "城南街道社工站", Role: model.RoleStationReviewer, Town: "城南街道"},
	{Name: "reviewer-chengxi", Nickname: "城西街道社工站", Role: model.RoleStationReviewer, Town: "城西街道"},
	{Name: "orgadmin-haoxinqing", Nickname: "好心情负责人", Role: model.RoleOrgAdmin, Org: "黔江好心情公益服务中心"},
	{Name: "worker-haoxinqing", Nickname: "好心情社工", Role: model.RoleWorker, Org: "黔江好心情公益服务中心"},
	{Name: "worker-zhishan", Nickname: "至善社工", Role: model.RoleWorker, Org: "至善社会工作服务中心"},
	{Name: "auditor", Nickname: "审计员", Role: model.RoleAuditor},
	{Name: "resident", Nickname: "居民小李", Role: model.RoleResident},
}

// Stores are the repositories the loader writes through.
type Stores struct {
	Store   *repository.Store
	Regions *repository.Regions
	Orgs    *repository.Organizations
	Users   *repository.Users
}

// LoadIfEmpty loads the demo data when the database has no regions yet, in
// one transaction. It reports whether it loaded anything.
func LoadIfEmpty(ctx context.Context, s Stores, log *slog.Logger) (bool, error) {
	n, err := s.Regions.Count(ctx)
	if err != nil || n > 0 {
		return false, err
	}
	err = s.Store.InTx(ctx, func(ctx context.Context) error { return load(ctx, s) })
	if err != nil {
		return false, fmt.Errorf("demo: %w", err)
	}
	log.Warn("demo data loaded: Qianjiang district, 30 towns, demo organizations and dev: accounts (coordinates approximate)")
	return true, nil
}

func load(ctx context.Context, s Stores) error {
	district := model.Region{ID: ids.New(), Level: model.LevelDistrict, Code: DistrictCode, Name: "黔江区",
		Lat: 29.53, Lng: 108.77, RadiusM: 20000, CoordsApprox: true}
	district.Path = "/" + district.ID + "/"
	if err := s.Regions.Create(ctx, &district); err != nil {
		return err
	}
	towns := map[string]model.Region{}
	for i, t := range Towns {
		r := model.Region{ID: ids.New(), ParentID: &district.ID, Level: model.LevelTown,
			Code: fmt.Sprintf("%s%03d", DistrictCode, i+1), Name: t.Name, Lat: t.Lat, Lng: t.Lng, RadiusM: 5000, CoordsApprox: true}
		r.Path = district.Path + r.ID + "/"
		if err := s.Regions.Create(ctx, &r); err != nil {
			return err
		}
		towns[t.Name] = r
	}
	for i, c := range Communities {
		town := towns[c.Town]
		r := model.Region{ID: ids.New(), ParentID: &town.ID, Level: model.LevelCommunity,
			Code: fmt.Sprintf("%s%03d", town.Code, i+1), Name: c.Name, Lat: c.Lat, Lng: c.Lng, RadiusM: 800, CoordsApprox: true}
		r.Path = town.Path + r.ID + "/"
		if err := s.Regions.Create(ctx, &r); err != nil {
			return err
		}
	}
	orgs := map[string]model.Organization{}
	for _, o := range Orgs {
		m := model.Organization{ID: ids.New(), Name: o.Name, CreditCode: o.CreditCode, Rating: o.Rating,
			RegionID: towns[o.Town].ID, Status: model.OrgActive}
		if err := s.Orgs.Create(ctx, &m); err != nil {
			return err
		}
		orgs[o.Name] = m
	}
	for _, a := range Accounts {
		u := model.User{ID: ids.New(), OpenID: wechat.DevOpenID(a.Name), Nickname: a.Nickname, Status: model.UserActive}
		if err := s.Users.Create(ctx, &u); err != nil {
			return err
		}
		b := model.RoleBinding{ID: ids.New(), UserID: u.ID, Role: a.Role, GrantedBy: "demo"}
		switch {
		case a.Org != "":
			id := orgs[a.Org].ID
			b.OrgID, b.ScopeKey = &id, "org:"+id
		case a.Town != "":
			id := towns[a.Town].ID
			b.RegionID, b.ScopeKey = &id, "region:"+id
		default:
			id := district.ID
			b.RegionID, b.ScopeKey = &id, "region:"+id
		}
		if err := s.Users.AddBinding(ctx, &b); err != nil {
			return err
		}
		if a.Role != model.RoleResident {
			// Everyone can also browse and order as a resident.
			id := district.ID
			r := model.RoleBinding{ID: ids.New(), UserID: u.ID, Role: model.RoleResident, RegionID: &id, ScopeKey: "region:" + id, GrantedBy: "demo"}
			if err := s.Users.AddBinding(ctx, &r); err != nil {
				return err
			}
		}
	}
	return nil
}
