// Package demo loads Qianjiang demo data into an empty embedded database:
// the district, its 30 towns and streets, some communities, a few
// organizations and one account per role. Coordinates are approximate and
// marked so (coords_approx).
package demo

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

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
	// Catalogue, orders and beneficiaries (see catalogue.go).
	Items         *repository.ServiceItems
	Orders        *repository.Orders
	Beneficiaries *repository.Beneficiaries
	Cipher        Cipher
	Now           func() time.Time
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
	return loadCatalogue(ctx, s, towns, orgs)
}

// ---- catalogue, orders, beneficiaries ----

// Cipher encrypts the demo beneficiaries exactly as the service does.
type Cipher interface {
	Encrypt(plain, field string) (string, error)
	BlindIndex(field, normalized string) string
}

// Item is a demo catalogue entry (DESIGN.md §1), priced per session.
type Item struct {
	Code, Name, Category  string
	PriceFen              int64
	Photos                int
	Video                 bool
	VideoSeconds          int
	Participants, Minutes int
	Beneficiaries         bool
	CapScope              string
	CapFen                int64
	Internal              bool
	ReviewLevels          int
}

// Items is Qianjiang's menu of micro-projects. Case management and
// mental-health work are internal: never on the public feed.
var Items = []Item{
	{Code: "INFO_SURVEY", Name: "信息调研", Category: "调研走访", PriceFen: 30000, Photos: 3, Participants: 1, Minutes: 30, Beneficiaries: true},
	{Code: "VIDEO_PUBLICITY", Name: "视频宣传", Category: "宣传倡导", PriceFen: 40000, Photos: 1, Video: true, VideoSeconds: 30, Minutes: 60},
	{Code: "CASE_MANAGEMENT", Name: "个案管理", Category: "个案服务", PriceFen: 50000, Photos: 2, Participants: 1, Minutes: 60, Beneficiaries: true, Internal: true},
	{Code: "LECTURE", Name: "专题讲座", Category: "宣传倡导", PriceFen: 40000, Photos: 4, Participants: 15, Minutes: 60},
	{Code: "BATHING", Name: "助浴", Category: "为老服务", PriceFen: 40000, Photos: 3, Video: true, VideoSeconds: 15, Participants: 1, Minutes: 45, Beneficiaries: true},
	{Code: "MEAL", Name: "助餐", Category: "为老服务", PriceFen: 30000, Photos: 3, Participants: 5, Minutes: 60, Beneficiaries: true},
	{Code: "LEGAL_CONSULT", Name: "法律咨询", Category: "法律服务", PriceFen: 35000, Photos: 3, Participants: 5, Minutes: 60},
	{Code: "HEALTH_CHECK", Name: "健康监测", Category: "健康服务", PriceFen: 35000, Photos: 3, Participants: 10, Minutes: 60, Beneficiaries: true},
	{Code: "JOB_REFERRAL", Name: "就业推荐", Category: "就业服务", PriceFen: 35000, Photos: 2, Participants: 3, Minutes: 60},
	{Code: "FIRST_AID", Name: "急救教学", Category: "健康服务", PriceFen: 45000, Photos: 4, Video: true, VideoSeconds: 15, Participants: 15, Minutes: 90},
	{Code: "MEDICINE_TO_VILLAGE", Name: "送医送药下乡", Category: "健康服务", PriceFen: 50000, Photos: 4, Participants: 20, Minutes: 120, Beneficiaries: true},
	{Code: "CUSTOM_REFORM", Name: "移风易俗", Category: "宣传倡导", PriceFen: 30000, Photos: 3, Participants: 20, Minutes: 60},
	{Code: "FIVE_CHILDREN", Name: "五童行动", Category: "儿童关爱", PriceFen: 40000, Photos: 3, Participants: 5, Minutes: 60, Beneficiaries: true},
	{Code: "YUKANG", Name: "渝康行动", Category: "心理健康", PriceFen: 50000, Photos: 1, Participants: 1, Minutes: 60, Beneficiaries: true, Internal: true, ReviewLevels: 2},
	{Code: "HOME_MODIFICATION", Name: "适老化改造", Category: "为老服务", PriceFen: 50000, Photos: 6, Video: true, VideoSeconds: 15, Participants: 1, Minutes: 120,
		Beneficiaries: true, CapScope: model.CapHousehold, CapFen: 200000, ReviewLevels: 2},
}

// OrderSpec is an open demo order for the current quarter.
type OrderSpec struct {
	Org, Item, Town string
	Quantity        int
}

// OrderSpecs let each demo organization record sessions right away.
var OrderSpecs = []OrderSpec{
	{"黔江好心情公益服务中心", "BATHING", "城南街道", 40},
	{"黔江好心情公益服务中心", "MEAL", "城南街道", 30},
	{"黔江好心情公益服务中心", "CASE_MANAGEMENT", "城南街道", 10},
	{"黔江好心情公益服务中心", "FIVE_CHILDREN", "城南街道", 12},
	{"至善社会工作服务中心", "LECTURE", "城东街道", 20},
	{"至善社会工作服务中心", "LEGAL_CONSULT", "城东街道", 12},
	{"黔江区社稷公益服务中心", "INFO_SURVEY", "城西街道", 30},
	{"黔江区社稷公益服务中心", "HEALTH_CHECK", "城西街道", 24},
	{"沙坝互助养老中心", "MEDICINE_TO_VILLAGE", "沙坝乡", 12},
	{"沙坝互助养老中心", "HOME_MODIFICATION", "沙坝乡", 10},
}

// Person is a made-up person in 青社社区. ID numbers use
// Qianjiang's area code, round birth dates and sequence 99x, and carry a
// valid GB 11643 check character so they pass validation; they belong to
// nobody.
type Person struct {
	Name, First17, Household string
	Categories               []string
	Guardian, Public         bool
}

// People live in 青社社区 (城南街道).
var People = []Person{
	{"王演示", "50011419360101999", "QS-01-0101", []string{"特困", "高龄失能"}, false, false},
	{"李演示", "50011419400101998", "QS-01-0101", []string{"高龄失能"}, false, true},
	{"陈示例", "50011419500101997", "QS-02-0302", []string{"低保", "残疾"}, false, false},
	{"刘小演", "50011420160601996", "QS-03-0201", []string{"儿童"}, true, false},
}

// Field names must match service/beneficiaries.go.
const (
	fieldBenName     = "beneficiaries.name"
	fieldBenIDNumber = "beneficiaries.id_number"
)

// IDNumber completes 17 digits with the GB 11643 (ISO 7064 MOD 11-2) check
// character.
func IDNumber(first17 string) string {
	sum, weight := 0, 2
	for i := 16; i >= 0; i-- {
		sum += int(first17[i]-'0') * weight
		weight = weight * 2 % 11
	}
	return first17 + string("10X98765432"[sum%11])
}

var chinaTime = time.FixedZone("CST", 8*3600)

// currentQuarter is the first and last day of the quarter containing now,
// China time.
func currentQuarter(now time.Time) (time.Time, time.Time) {
	n := now.In(chinaTime)
	first := time.Date(n.Year(), time.Month((int(n.Month())-1)/3*3+1), 1, 0, 0, 0, 0, chinaTime)
	return first, first.AddDate(0, 3, -1)
}

func loadCatalogue(ctx context.Context, s Stores, towns map[string]model.Region, orgs map[string]model.Organization) error {
	if s.Items == nil {
		return nil
	}
	items := map[string]model.ServiceItem{}
	for _, d := range Items {
		it := model.ServiceItem{ID: ids.New(), Code: d.Code, Name: d.Name, Category: d.Category, UnitPriceFen: d.PriceFen,
			MinPhotos: d.Photos, VideoRequired: d.Video, MinVideoSeconds: d.VideoSeconds, MinParticipants: d.Participants,
			MinDurationMinutes: d.Minutes, BeneficiariesRequired: d.Beneficiaries, CapScope: d.CapScope, CapFen: d.CapFen,
			Visibility: model.VisibilityPublic, ReviewLevels: max(1, d.ReviewLevels), Active: true}
		if d.Internal {
			it.Visibility = model.VisibilityInternal
		}
		if err := s.Items.Create(ctx, &it); err != nil {
			return err
		}
		items[d.Code] = it
	}
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	start, end := currentQuarter(now)
	for _, d := range OrderSpecs {
		it := items[d.Item]
		o := model.Order{ID: ids.New(), OrgID: orgs[d.Org].ID, ItemID: it.ID, RegionID: towns[d.Town].ID,
			PeriodStart: start.UTC(), PeriodEnd: end.UTC(), Quantity: d.Quantity, UnitPriceFen: it.UnitPriceFen,
			BudgetFen: int64(d.Quantity) * it.UnitPriceFen, Status: model.OrderOpen, CreatedBy: "demo"}
		if err := s.Orders.Create(ctx, &o); err != nil {
			return err
		}
	}
	return loadBeneficiaries(ctx, s, towns["城南街道"])
}

func loadBeneficiaries(ctx context.Context, s Stores, town model.Region) error {
	if s.Beneficiaries == nil || s.Cipher == nil {
		return nil
	}
	children, err := s.Regions.Children(ctx, town.ID)
	if err != nil {
		return err
	}
	var qingshe model.Region
	for _, c := range children {
		if c.Name == "青社社区" {
			qingshe = c
		}
	}
	if qingshe.ID == "" {
		return fmt.Errorf("demo: 青社社区 missing")
	}
	for _, d := range People {
		idn := IDNumber(d.First17)
		birth, err := time.ParseInLocation("20060102", idn[6:14], chinaTime)
		if err != nil {
			return err
		}
		b := model.Beneficiary{ID: ids.New(), IDIndex: s.Cipher.BlindIndex(fieldBenIDNumber, idn), Household: d.Household,
			CommunityID: qingshe.ID, Categories: strings.Join(d.Categories, ","), BirthDate: birth.UTC(),
			GuardianConsent: d.Guardian, PublicConsent: d.Public, CreatedBy: "demo", Gender: "female"}
		if (idn[16]-'0')%2 == 1 {
			b.Gender = "male"
		}
		if b.NameEnc, err = s.Cipher.Encrypt(d.Name, fieldBenName); err != nil {
			return err
		}
		if b.IDNumberEnc, err = s.Cipher.Encrypt(idn, fieldBenIDNumber); err != nil {
			return err
		}
		if err := s.Beneficiaries.Create(ctx, &b); err != nil {
			return err
		}
	}
	return nil
}
