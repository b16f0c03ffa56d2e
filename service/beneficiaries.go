package service

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"qjmz/model"
	"qjmz/pkg/apperr"
	"qjmz/pkg/ids"
	"qjmz/pkg/pii"
)

// BeneficiaryStore is the people served. It stores ciphertexts only.
type BeneficiaryStore interface {
	Create(ctx context.Context, b *model.Beneficiary) error
	Get(ctx context.Context, id string) (model.Beneficiary, error)
	Lock(ctx context.Context, id string) (model.Beneficiary, error)
	GetByIDIndex(ctx context.Context, idx string) (model.Beneficiary, error)
	GetMany(ctx context.Context, ids []string) (map[string]model.Beneficiary, error)
	ListInCommunity(ctx context.Context, communityID, before string, limit int) ([]model.Beneficiary, error)
	Update(ctx context.Context, id string, cols map[string]any) error
}

// OrderTowns tells where organizations hold orders: the reach of their
// workers for beneficiaries.
type OrderTowns interface {
	TownsOfOrgs(ctx context.Context, orgIDs []string) ([]string, error)
}

// BeneficiariesConfig wires the beneficiary use cases.
type BeneficiariesConfig struct {
	Tx            TxRunner
	Beneficiaries BeneficiaryStore
	Orders        OrderTowns
	Regions       RegionStore
	Cipher        Cipher
	Audit         *Auditor
	Now           func() time.Time
}

// Beneficiaries registers and finds the people served (服务对象). Names, ID
// numbers and phones are encrypted at rest and shown masked; plaintext is
// given only to reviewers in scope, for a stated purpose, and audited.
type Beneficiaries struct{ c BeneficiariesConfig }

// NewBeneficiaries builds the beneficiary use cases.
func NewBeneficiaries(c BeneficiariesConfig) *Beneficiaries { return &Beneficiaries{c: c} }

// Field names: the AAD of each ciphertext and the domain of each blind
// index, so a value copied into another column neither decrypts nor links.
const (
	fieldBenName     = "beneficiaries.name"
	fieldBenIDNumber = "beneficiaries.id_number"
	fieldBenPhone    = "beneficiaries.phone"
)

// BeneficiaryCategories are the recognised categories, in display order.
var BeneficiaryCategories = []string{"特困", "低保", "高龄失能", "计生特殊家庭", "残疾", "儿童", "精神障碍", "其他"}

// Roles that reach beneficiaries through their region scope and may read
// plaintext.
var benStaffRoles = []string{model.RoleStationReviewer, model.RoleBureauReviewer, model.RoleBureauAdmin}

// BeneficiaryInput registers a person.
type BeneficiaryInput struct {
	Name, IDNumber, Phone, Household, CommunityID string
	Categories                                    []string
	GuardianConsent, PublicConsent                bool
}

// BeneficiaryPatch edits a person; nil fields are unchanged. Phone "" clears
// the phone. Name and ID number cannot change: a wrong one is a new person.
type BeneficiaryPatch struct {
	Phone, Household               *string
	Categories                     *[]string
	GuardianConsent, PublicConsent *bool
}

// MaskedBeneficiary is a person as most callers see them: masked.
type MaskedBeneficiary struct {
	B             model.Beneficiary
	Name          string // 张*三
	IDNumber      string // 5001**********1234
	Phone         string // 138****0000, "" when none
	Age           int
	Categories    []string
	CommunityName string
}

// BeneficiaryPlain is the unmasked personal data, for reviewers only.
type BeneficiaryPlain struct {
	ID, Name, IDNumber, Phone string
}

// benScope is what the caller may reach: region subtrees for staff, the
// towns where their organizations hold orders for workers.
type benScope struct {
	p     *Principal
	towns map[string]bool
}

func (sc benScope) allows(c model.Region) bool {
	if c.Level != model.LevelCommunity {
		return false
	}
	if sc.p.CanRegion(c.Path, benStaffRoles...) {
		return true
	}
	return c.ParentID != nil && sc.towns[*c.ParentID]
}

func (s *Beneficiaries) scope(ctx context.Context) (benScope, error) {
	p := PrincipalFrom(ctx)
	sc := benScope{p: p, towns: map[string]bool{}}
	if orgs := p.OrgIDs(model.RoleWorker, model.RoleOrgAdmin); len(orgs) > 0 {
		towns, err := s.c.Orders.TownsOfOrgs(ctx, orgs)
		if err != nil {
			return sc, err
		}
		for _, t := range towns {
			sc.towns[t] = true
		}
	}
	return sc, nil
}

// community loads a community the caller may reach, else NOT_FOUND.
func (s *Beneficiaries) community(ctx context.Context, sc benScope, id string) (model.Region, error) {
	c, err := s.c.Regions.Get(ctx, id)
	if err != nil || !sc.allows(c) {
		return model.Region{}, notFound("社区", err)
	}
	return c, nil
}

// Create registers a person. Registering an ID number that is already
// registered answers BENEFICIARY_EXISTS with the existing id, so workers
// reuse the record instead of creating duplicates.
func (s *Beneficiaries) Create(ctx context.Context, in BeneficiaryInput) (MaskedBeneficiary, error) {
	p := PrincipalFrom(ctx)
	sc, err := s.scope(ctx)
	if err != nil {
		return MaskedBeneficiary{}, err
	}
	comm, err := s.community(ctx, sc, in.CommunityID)
	if err != nil {
		return MaskedBeneficiary{}, err
	}
	idNumber, err := pii.NormalizeIDNumber(in.IDNumber)
	if err != nil {
		return MaskedBeneficiary{}, idNumberInvalid()
	}
	name := strings.TrimSpace(in.Name)
	household := strings.TrimSpace(in.Household)
	var fe []apperr.FieldError
	if n := len([]rune(name)); n < 1 || n > 32 {
		fe = append(fe, apperr.FieldError{Field: "name", Reason: "length_1_32"})
	}
	if n := len([]rune(household)); n < 1 || n > 64 {
		fe = append(fe, apperr.FieldError{Field: "household", Reason: "length_1_64"})
	}
	if len(fe) > 0 {
		return MaskedBeneficiary{}, apperr.Invalid("服务对象信息不正确", fe...)
	}
	cats, err := normalizeCategories(in.Categories)
	if err != nil {
		return MaskedBeneficiary{}, err
	}
	birth, _ := pii.IDBirthDate(idNumber)
	if pii.AgeOn(birth, s.c.Now()) < 18 && !in.GuardianConsent {
		return MaskedBeneficiary{}, guardianRequired()
	}
	b := model.Beneficiary{ID: ids.New(), IDIndex: s.c.Cipher.BlindIndex(fieldBenIDNumber, idNumber),
		Household: household, CommunityID: comm.ID, Categories: strings.Join(cats, ","),
		BirthDate: birth.UTC(), Gender: genderOf(idNumber), GuardianConsent: in.GuardianConsent,
		PublicConsent: in.PublicConsent, CreatedBy: p.UserID}
	if existing, err := s.c.Beneficiaries.GetByIDIndex(ctx, b.IDIndex); err == nil {
		return MaskedBeneficiary{}, beneficiaryExists(existing.ID)
	} else if !errors.Is(err, apperr.ErrNotFound) {
		return MaskedBeneficiary{}, err
	}
	if b.NameEnc, err = s.c.Cipher.Encrypt(name, fieldBenName); err != nil {
		return MaskedBeneficiary{}, err
	}
	if b.IDNumberEnc, err = s.c.Cipher.Encrypt(idNumber, fieldBenIDNumber); err != nil {
		return MaskedBeneficiary{}, err
	}
	if in.Phone != "" {
		phone, err := pii.NormalizePhone(in.Phone)
		if err != nil {
			return MaskedBeneficiary{}, phoneInvalid()
		}
		if b.PhoneEnc, b.PhoneIndex, err = s.encryptPhone(phone); err != nil {
			return MaskedBeneficiary{}, err
		}
	}
	view := s.view(b, name, idNumber, in.Phone, comm.Name)
	err = s.c.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.c.Beneficiaries.Create(ctx, &b); err != nil {
			if errors.Is(err, apperr.ErrConflict) {
				// Registered concurrently by someone else.
				if existing, e := s.c.Beneficiaries.GetByIDIndex(ctx, b.IDIndex); e == nil {
					return beneficiaryExists(existing.ID)
				}
			}
			return err
		}
		view.B = b
		return s.c.Audit.Record(ctx, AuditEntry{Action: "beneficiary.create", ObjectType: "beneficiary", ObjectID: b.ID, After: benAudit(view)})
	})
	if err != nil {
		return MaskedBeneficiary{}, err
	}
	return view, nil
}

func (s *Beneficiaries) encryptPhone(phone string) (string, *string, error) {
	enc, err := s.c.Cipher.Encrypt(phone, fieldBenPhone)
	if err != nil {
		return "", nil, err
	}
	idx := s.c.Cipher.BlindIndex(fieldBenPhone, phone)
	return enc, &idx, nil
}

// Get returns one person, masked, to a caller in scope.
func (s *Beneficiaries) Get(ctx context.Context, id string) (MaskedBeneficiary, error) {
	sc, err := s.scope(ctx)
	if err != nil {
		return MaskedBeneficiary{}, err
	}
	b, err := s.c.Beneficiaries.Get(ctx, id)
	if err != nil {
		return MaskedBeneficiary{}, notFound("服务对象", err)
	}
	c, err := s.c.Regions.Get(ctx, b.CommunityID)
	if err != nil || !sc.allows(c) {
		return MaskedBeneficiary{}, notFound("服务对象", err)
	}
	return s.decryptView(b, c.Name)
}

// BeneficiaryQuery searches: by exact ID number, or by community.
type BeneficiaryQuery struct {
	IDNumber    string
	CommunityID string
	Cursor      string
	Limit       int
}

// Search finds people in the caller's scope. An ID number is matched
// through its blind index, never by decrypting; a person outside the
// caller's scope is simply not found.
func (s *Beneficiaries) Search(ctx context.Context, q BeneficiaryQuery) ([]MaskedBeneficiary, string, error) {
	sc, err := s.scope(ctx)
	if err != nil {
		return nil, "", err
	}
	switch {
	case q.IDNumber != "":
		n, err := pii.NormalizeIDNumber(q.IDNumber)
		if err != nil {
			return nil, "", idNumberInvalid()
		}
		b, err := s.c.Beneficiaries.GetByIDIndex(ctx, s.c.Cipher.BlindIndex(fieldBenIDNumber, n))
		if errors.Is(err, apperr.ErrNotFound) {
			return nil, "", nil
		}
		if err != nil {
			return nil, "", err
		}
		c, err := s.c.Regions.Get(ctx, b.CommunityID)
		if err != nil || !sc.allows(c) {
			return nil, "", nil
		}
		v, err := s.decryptView(b, c.Name)
		if err != nil {
			return nil, "", err
		}
		return []MaskedBeneficiary{v}, "", nil
	case q.CommunityID != "":
		c, err := s.community(ctx, sc, q.CommunityID)
		if err != nil {
			return nil, "", err
		}
		rows, err := s.c.Beneficiaries.ListInCommunity(ctx, c.ID, q.Cursor, q.Limit+1)
		if err != nil {
			return nil, "", err
		}
		next := ""
		if len(rows) > q.Limit {
			rows, next = rows[:q.Limit], rows[q.Limit-1].ID
		}
		out := make([]MaskedBeneficiary, 0, len(rows))
		for _, b := range rows {
			v, err := s.decryptView(b, c.Name)
			if err != nil {
				return nil, "", err
			}
			out = append(out, v)
		}
		return out, next, nil
	}
	return nil, "", apperr.Invalid("请提供身份证号或社区", apperr.FieldError{Field: "id_number", Reason: "id_number_or_community_id_required"})
}

// Update edits consents, phone, categories or household of a person in
// scope.
func (s *Beneficiaries) Update(ctx context.Context, id string, in BeneficiaryPatch) (MaskedBeneficiary, error) {
	sc, err := s.scope(ctx)
	if err != nil {
		return MaskedBeneficiary{}, err
	}
	cols := map[string]any{}
	var phone string
	if in.Phone != nil && *in.Phone != "" {
		if phone, err = pii.NormalizePhone(*in.Phone); err != nil {
			return MaskedBeneficiary{}, phoneInvalid()
		}
	}
	if in.Household != nil {
		h := strings.TrimSpace(*in.Household)
		if n := len([]rune(h)); n < 1 || n > 64 {
			return MaskedBeneficiary{}, apperr.Invalid("服务对象信息不正确", apperr.FieldError{Field: "household", Reason: "length_1_64"})
		}
		cols["household"] = h
	}
	if in.Categories != nil {
		cats, err := normalizeCategories(*in.Categories)
		if err != nil {
			return MaskedBeneficiary{}, err
		}
		cols["categories"] = strings.Join(cats, ",")
	}
	var view MaskedBeneficiary
	err = s.c.Tx.InTx(ctx, func(ctx context.Context) error {
		b, err := s.c.Beneficiaries.Lock(ctx, id)
		if err != nil {
			return notFound("服务对象", err)
		}
		c, err := s.c.Regions.Get(ctx, b.CommunityID)
		if err != nil || !sc.allows(c) {
			return notFound("服务对象", err)
		}
		before, err := s.decryptView(b, c.Name)
		if err != nil {
			return err
		}
		guardian := b.GuardianConsent
		if in.GuardianConsent != nil {
			guardian = *in.GuardianConsent
			cols["guardian_consent"] = guardian
		}
		if pii.AgeOn(b.BirthDate, s.c.Now()) < 18 && !guardian {
			return guardianRequired()
		}
		if in.PublicConsent != nil {
			cols["public_consent"] = *in.PublicConsent
		}
		switch {
		case in.Phone == nil:
		case phone == "":
			cols["phone_enc"], cols["phone_index"] = "", nil
		default:
			enc, idx, err := s.encryptPhone(phone)
			if err != nil {
				return err
			}
			cols["phone_enc"], cols["phone_index"] = enc, *idx
		}
		if len(cols) == 0 {
			view = before
			return nil
		}
		if err := s.c.Beneficiaries.Update(ctx, id, cols); err != nil {
			return err
		}
		if b, err = s.c.Beneficiaries.Get(ctx, id); err != nil {
			return err
		}
		if view, err = s.decryptView(b, c.Name); err != nil {
			return err
		}
		return s.c.Audit.Record(ctx, AuditEntry{Action: "beneficiary.update", ObjectType: "beneficiary", ObjectID: id,
			Before: benAudit(before), After: benAudit(view)})
	})
	if err != nil {
		return MaskedBeneficiary{}, err
	}
	return view, nil
}

// Plaintext returns a person's unmasked name, ID number and phone to a
// station or bureau reviewer or bureau admin over the person's community.
// Every read is audited ("pii.read", reason = purpose) before the data
// leaves; if the audit cannot be written, nothing is returned.
func (s *Beneficiaries) Plaintext(ctx context.Context, id, purpose string) (BeneficiaryPlain, error) {
	p := PrincipalFrom(ctx)
	if !p.HasRole(benStaffRoles...) {
		return BeneficiaryPlain{}, apperr.New(apperr.ErrForbidden, "FORBIDDEN_ROLE", "当前账号没有此功能的权限")
	}
	purpose = strings.TrimSpace(purpose)
	if n := len([]rune(purpose)); n < 1 || n > 100 {
		return BeneficiaryPlain{}, apperr.Invalid("请填写查看原因（100字以内）", apperr.FieldError{Field: "purpose", Reason: "length_1_100"})
	}
	b, err := s.c.Beneficiaries.Get(ctx, id)
	if err != nil {
		return BeneficiaryPlain{}, notFound("服务对象", err)
	}
	// Only region scope counts here: an organization's reach lets its
	// workers register and pick people, never read them in full.
	c, err := s.c.Regions.Get(ctx, b.CommunityID)
	if err != nil || c.Level != model.LevelCommunity || !p.CanRegion(c.Path, benStaffRoles...) {
		return BeneficiaryPlain{}, notFound("服务对象", err)
	}
	out := BeneficiaryPlain{ID: b.ID}
	if out.Name, err = s.c.Cipher.Decrypt(b.NameEnc, fieldBenName); err != nil {
		return BeneficiaryPlain{}, err
	}
	if out.IDNumber, err = s.c.Cipher.Decrypt(b.IDNumberEnc, fieldBenIDNumber); err != nil {
		return BeneficiaryPlain{}, err
	}
	if b.PhoneEnc != "" {
		if out.Phone, err = s.c.Cipher.Decrypt(b.PhoneEnc, fieldBenPhone); err != nil {
			return BeneficiaryPlain{}, err
		}
	}
	err = s.c.Tx.InTx(ctx, func(ctx context.Context) error {
		return s.c.Audit.Record(ctx, AuditEntry{Action: "pii.read", ObjectType: "beneficiary", ObjectID: b.ID, Reason: purpose,
			After: map[string]any{"fields": []string{"name", "id_number", "phone"}}})
	})
	if err != nil {
		return BeneficiaryPlain{}, err
	}
	return out, nil
}

// VisibleMany loads people by id for another use case acting for the
// caller (a worker naming the beneficiaries of a session): NOT_FOUND unless
// every one exists and is within the caller's reach.
func (s *Beneficiaries) VisibleMany(ctx context.Context, idList []string) (map[string]model.Beneficiary, error) {
	sc, err := s.scope(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.c.Beneficiaries.GetMany(ctx, idList)
	if err != nil {
		return nil, err
	}
	var commIDs []string
	for _, id := range idList {
		b, ok := rows[id]
		if !ok {
			return nil, apperr.NotFound("服务对象")
		}
		commIDs = append(commIDs, b.CommunityID)
	}
	comms, err := s.c.Regions.GetMany(ctx, commIDs)
	if err != nil {
		return nil, err
	}
	for _, b := range rows {
		if !sc.allows(comms[b.CommunityID]) {
			return nil, apperr.NotFound("服务对象")
		}
	}
	return rows, nil
}

// Views masks people for display (review screens, record details).
func (s *Beneficiaries) Views(ctx context.Context, rows []model.Beneficiary) ([]MaskedBeneficiary, error) {
	var commIDs []string
	for _, b := range rows {
		commIDs = append(commIDs, b.CommunityID)
	}
	comms, err := s.c.Regions.GetMany(ctx, commIDs)
	if err != nil {
		return nil, err
	}
	out := make([]MaskedBeneficiary, 0, len(rows))
	for _, b := range rows {
		v, err := s.decryptView(b, comms[b.CommunityID].Name)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// MaskedName is the masked name (张*三) of a person, "" if it cannot be
// decrypted. The public feed may show it only for people with
// PublicConsent.
func (s *Beneficiaries) MaskedName(b model.Beneficiary) string {
	name, err := s.c.Cipher.Decrypt(b.NameEnc, fieldBenName)
	if err != nil {
		return ""
	}
	return pii.MaskName(name)
}

func (s *Beneficiaries) decryptView(b model.Beneficiary, communityName string) (MaskedBeneficiary, error) {
	name, err := s.c.Cipher.Decrypt(b.NameEnc, fieldBenName)
	if err != nil {
		return MaskedBeneficiary{}, err
	}
	idNumber, err := s.c.Cipher.Decrypt(b.IDNumberEnc, fieldBenIDNumber)
	if err != nil {
		return MaskedBeneficiary{}, err
	}
	phone := ""
	if b.PhoneEnc != "" {
		if phone, err = s.c.Cipher.Decrypt(b.PhoneEnc, fieldBenPhone); err != nil {
			return MaskedBeneficiary{}, err
		}
	}
	return s.view(b, name, idNumber, phone, communityName), nil
}

func (s *Beneficiaries) view(b model.Beneficiary, name, idNumber, phone, communityName string) MaskedBeneficiary {
	v := MaskedBeneficiary{B: b, Name: pii.MaskName(name), IDNumber: pii.MaskIDNumber(idNumber),
		Age: pii.AgeOn(b.BirthDate, s.c.Now()), CommunityName: communityName}
	if phone != "" {
		v.Phone = pii.MaskPhone(phone)
	}
	if b.Categories != "" {
		v.Categories = strings.Split(b.Categories, ",")
	}
	return v
}

// benAudit is what the audit log keeps of a person: masked values only, so
// the log does not become a second copy of the personal data.
func benAudit(v MaskedBeneficiary) map[string]any {
	return map[string]any{"name": v.Name, "id_number": v.IDNumber, "phone": v.Phone, "household": v.B.Household,
		"community_id": v.B.CommunityID, "categories": v.B.Categories, "guardian_consent": v.B.GuardianConsent,
		"public_consent": v.B.PublicConsent}
}

// normalizeCategories checks categories against the list and returns them
// de-duplicated in display order.
func normalizeCategories(in []string) ([]string, error) {
	var out []string
	for _, c := range BeneficiaryCategories {
		if slices.Contains(in, c) {
			out = append(out, c)
		}
	}
	for _, c := range in {
		if !slices.Contains(BeneficiaryCategories, c) {
			return nil, apperr.New(apperr.ErrInvalid, "UNKNOWN_ENUM_VALUE", "服务对象类别不存在").
				WithFields(apperr.FieldError{Field: "categories", Reason: "one_of:" + strings.Join(BeneficiaryCategories, ",")})
		}
	}
	return out, nil
}

// genderOf reads the 17th character: odd for men, even for women.
func genderOf(idNumber string) string {
	if (idNumber[16]-'0')%2 == 1 {
		return "male"
	}
	return "female"
}

func idNumberInvalid() error {
	return apperr.New(apperr.ErrInvalid, "ID_NUMBER_INVALID", "身份证号不正确").
		WithFields(apperr.FieldError{Field: "id_number", Reason: "gb11643"})
}

func phoneInvalid() error {
	return apperr.New(apperr.ErrInvalid, "PHONE_INVALID", "手机号不正确").
		WithFields(apperr.FieldError{Field: "phone", Reason: "mobile"})
}

func guardianRequired() error {
	return apperr.New(apperr.ErrInvalid, "GUARDIAN_CONSENT_REQUIRED", "未成年人须取得监护人同意").
		WithFields(apperr.FieldError{Field: "guardian_consent", Reason: "required_for_minor"})
}

func beneficiaryExists(id string) error {
	return apperr.New(apperr.ErrConflict, "BENEFICIARY_EXISTS", "该服务对象已登记").
		WithDetails(map[string]any{"id": id})
}
