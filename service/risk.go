package service

import (
	"context"
	"math"
	"slices"
	"time"

	"qjmz/model"
	"qjmz/repository"
)

// The submit checks (DESIGN.md §4.3). Each check looks at one kind of risk
// and returns zero or more findings; block findings stop the submission,
// warn findings go to the reviewer. docs/risk-flags.md lists every code,
// its evidence fields and why its threshold is what it is.

// Thresholds.
const (
	// captureSlack: phones are set up before a session and photos tidied up
	// after it, so capture times up to half an hour outside the declared
	// window are normal.
	captureSlack = 30 * time.Minute
	// doubleBookDistanceM: two overlapping sessions of one worker closer
	// than this are plausibly one trip (neighbouring venues, a shared event).
	doubleBookDistanceM = 2000.0
	// maxClientAccuracyM caps the accuracy a client may claim: a phone
	// reporting ±20 km accuracy must not widen the geofence to the district.
	maxClientAccuracyM = 1000.0
	// abandonedTicketAfter: a pending upload this long past its ticket's
	// expiry will never complete; it no longer holds the record back.
	abandonedTicketAfter = time.Hour
	adultAge             = 18
)

// Risk flag codes.
const (
	FlagEvidenceMinPhotos        = "EVIDENCE_MIN_PHOTOS"
	FlagEvidenceVideoRequired    = "EVIDENCE_VIDEO_REQUIRED"
	FlagEvidenceVideoTooShort    = "EVIDENCE_VIDEO_TOO_SHORT"
	FlagEvidenceMinParticipants  = "EVIDENCE_MIN_PARTICIPANTS"
	FlagEvidenceBeneficiariesReq = "EVIDENCE_BENEFICIARIES_REQUIRED"
	FlagExactDuplicate           = "EXACT_DUPLICATE"
	FlagHouseholdCapExceeded     = "HOUSEHOLD_CAP_EXCEEDED"
	FlagBeneficiaryCapExceeded   = "BENEFICIARY_CAP_EXCEEDED"
	FlagConsentMissing           = "CONSENT_MISSING"
	FlagMediaNotReady            = "MEDIA_NOT_READY"
	FlagOrderNotOpen             = "ORDER_NOT_OPEN"
	FlagNearDuplicate            = "NEAR_DUPLICATE"
	FlagCaptureOutsideWindow     = "CAPTURE_OUTSIDE_WINDOW"
	FlagNoEXIF                   = "NO_EXIF"
	FlagOutsideGeofence          = "OUTSIDE_GEOFENCE"
	FlagWorkerDoubleBooked       = "WORKER_DOUBLE_BOOKED"
	FlagSessionTooShort          = "SESSION_TOO_SHORT"
	FlagBeneficiarySameDay       = "BENEFICIARY_SAME_DAY"
	FlagOrderQuantityExhausted   = "ORDER_QUANTITY_EXHAUSTED"
)

// RiskStore answers the checks' questions about the rest of the platform.
type RiskStore interface {
	SameSHA256(ctx context.Context, digests []string, recordID string) ([]model.Upload, error)
	CapUses(ctx context.Context, itemID, recordID string, beneficiaryIDs, households []string) ([]repository.CapUse, error)
	WorkerOverlaps(ctx context.Context, workerID, recordID string, start, end time.Time) ([]model.SessionRecord, error)
	BeneficiarySameDay(ctx context.Context, itemID, recordID string, beneficiaryIDs []string, from, to time.Time) ([]repository.SameDay, error)
	PendingOnOrder(ctx context.Context, orderID, recordID string) (int, error)
}

// NearDupFinder finds photos in other records that look like the record's.
type NearDupFinder interface {
	Find(ctx context.Context, recordID string, photos []model.Upload) ([]NearMatch, error)
}

// RiskInput is everything known about the record being submitted.
type RiskInput struct {
	Record        model.SessionRecord
	Order         model.Order
	Item          model.ServiceItem
	Community     model.Region
	Media         []model.Upload // every upload attached to the record
	Beneficiaries []model.Beneficiary
	Now           time.Time
}

// RiskFinding is one flag raised. Evidence holds only ids, numbers and times: it is
// shown to the submitting worker too.
type RiskFinding struct {
	Code     string
	Severity string
	Evidence map[string]any
}

// RiskBlocks reports whether any flag blocks submission.
func RiskBlocks(flags []RiskFinding) bool {
	for _, f := range flags {
		if f.Severity == model.SeverityBlock {
			return true
		}
	}
	return false
}

// RiskChecker runs the table of checks.
type RiskChecker struct {
	store RiskStore
	near  NearDupFinder
}

// NewRiskChecker builds the checker.
func NewRiskChecker(store RiskStore, near NearDupFinder) *RiskChecker {
	return &RiskChecker{store: store, near: near}
}

// riskRun is one evaluation: the input, the ports, and what earlier checks
// found that later ones need (exact duplicates are not reported again as
// near duplicates).
type riskRun struct {
	*RiskInput
	store RiskStore
	near  NearDupFinder
	exact map[[2]string]bool // (upload, matched upload) already reported as exact
}

type finding = map[string]any

type riskCheck struct {
	code     string
	severity string
	run      func(ctx context.Context, r *riskRun) ([]finding, error)
}

// riskChecks is the table, blocks first; flags come out in this order.
func riskChecks() []riskCheck {
	b, w := model.SeverityBlock, model.SeverityWarn
	return []riskCheck{
		{FlagOrderNotOpen, b, riskOrderOpen},
		{FlagMediaNotReady, b, riskMediaReady},
		{FlagEvidenceMinPhotos, b, riskMinPhotos},
		{FlagEvidenceVideoRequired, b, riskVideoRequired},
		{FlagEvidenceVideoTooShort, b, riskVideoLength},
		{FlagEvidenceMinParticipants, b, riskMinParticipants},
		{FlagEvidenceBeneficiariesReq, b, riskBeneficiariesRequired},
		{FlagConsentMissing, b, riskConsent},
		{FlagExactDuplicate, b, riskExactDuplicate},
		{FlagHouseholdCapExceeded, b, riskCap(model.CapHousehold)},
		{FlagBeneficiaryCapExceeded, b, riskCap(model.CapBeneficiary)},
		{FlagNearDuplicate, w, riskNearDuplicate},
		{FlagCaptureOutsideWindow, w, riskCaptureWindow},
		{FlagNoEXIF, w, riskNoEXIF},
		{FlagOutsideGeofence, w, riskGeofence},
		{FlagWorkerDoubleBooked, w, riskDoubleBooked},
		{FlagSessionTooShort, w, riskSessionLength},
		{FlagBeneficiarySameDay, w, riskSameDay},
		{FlagOrderQuantityExhausted, w, riskOrderQuantity},
	}
}

// Check runs every check and returns the flags, blocks first.
func (c *RiskChecker) Check(ctx context.Context, in RiskInput) ([]RiskFinding, error) {
	r := &riskRun{RiskInput: &in, store: c.store, near: c.near, exact: map[[2]string]bool{}}
	var out []RiskFinding
	for _, chk := range riskChecks() {
		evs, err := chk.run(ctx, r)
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			out = append(out, RiskFinding{Code: chk.code, Severity: chk.severity, Evidence: ev})
		}
	}
	return out, nil
}

// ---- helpers ----

func (r *riskRun) ready(kind string) []model.Upload {
	var out []model.Upload
	for _, u := range r.Media {
		if u.Status == model.UploadReady && (kind == "" || u.Kind == kind) {
			out = append(out, u)
		}
	}
	return out
}

func oneFinding(ev finding) []finding { return []finding{ev} }

// riskTime renders a time in finding like the API does (+08:00).
func riskTime(t time.Time) string { return t.In(beijing).Format(time.RFC3339) }

// riskDistanceM is the great-circle distance in metres.
func riskDistanceM(lat1, lng1, lat2, lng2 float64) float64 {
	const earthRadiusM = 6371008.8
	rad := math.Pi / 180
	dLat, dLng := (lat2-lat1)*rad, (lng2-lng1)*rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLng/2)*math.Sin(dLng/2)
	return 2 * earthRadiusM * math.Asin(math.Min(1, math.Sqrt(a)))
}

// riskHasPoint: (0, 0) is "not given" — it lies in the Gulf of Guinea.
func riskHasPoint(lat, lng float64) bool { return lat != 0 || lng != 0 }

// riskAgeAt is the age in whole years on the Beijing calendar day of at.
func riskAgeAt(birth, at time.Time) int {
	tz := beijing
	b, a := birth.In(tz), at.In(tz)
	age := a.Year() - b.Year()
	if a.Month() < b.Month() || a.Month() == b.Month() && a.Day() < b.Day() {
		age--
	}
	return age
}

// ---- block checks ----

func riskOrderOpen(_ context.Context, r *riskRun) ([]finding, error) {
	if r.Order.Status == model.OrderOpen {
		return nil, nil
	}
	return oneFinding(finding{"order_id": r.Order.ID, "order_status": r.Order.Status}), nil
}

func riskMediaReady(_ context.Context, r *riskRun) ([]finding, error) {
	var waiting []string
	for _, u := range r.Media {
		if u.Status == model.UploadPending && r.Now.Before(u.ExpiresAt.Add(abandonedTicketAfter)) {
			waiting = append(waiting, u.ID)
		}
	}
	if len(waiting) == 0 {
		return nil, nil
	}
	return oneFinding(finding{"upload_ids": waiting}), nil
}

func riskMinPhotos(_ context.Context, r *riskRun) ([]finding, error) {
	n := len(r.ready(model.KindImage))
	if n >= r.Item.MinPhotos {
		return nil, nil
	}
	return oneFinding(finding{"required": r.Item.MinPhotos, "ready_photos": n}), nil
}

func riskVideoRequired(_ context.Context, r *riskRun) ([]finding, error) {
	if !r.Item.VideoRequired || len(r.ready(model.KindVideo)) > 0 {
		return nil, nil
	}
	return oneFinding(finding{"ready_videos": 0}), nil
}

func riskVideoLength(_ context.Context, r *riskRun) ([]finding, error) {
	videos := r.ready(model.KindVideo)
	if r.Item.MinVideoSeconds <= 0 || len(videos) == 0 {
		return nil, nil // no video at all is EVIDENCE_VIDEO_REQUIRED's business
	}
	var longest int64
	for _, v := range videos {
		longest = max(longest, v.DurationMs)
	}
	if longest >= int64(r.Item.MinVideoSeconds)*1000 {
		return nil, nil
	}
	return oneFinding(finding{"required_seconds": r.Item.MinVideoSeconds, "longest_seconds": float64(longest) / 1000}), nil
}

func riskMinParticipants(_ context.Context, r *riskRun) ([]finding, error) {
	if r.Record.ParticipantCount >= r.Item.MinParticipants {
		return nil, nil
	}
	return oneFinding(finding{"required": r.Item.MinParticipants, "participant_count": r.Record.ParticipantCount}), nil
}

func riskBeneficiariesRequired(_ context.Context, r *riskRun) ([]finding, error) {
	if !r.Item.BeneficiariesRequired || len(r.Beneficiaries) > 0 {
		return nil, nil
	}
	return oneFinding(finding{"beneficiaries": 0}), nil
}

func riskConsent(_ context.Context, r *riskRun) ([]finding, error) {
	var out []finding
	for _, b := range r.Beneficiaries {
		if b.BirthDate.IsZero() || b.GuardianConsent {
			continue
		}
		if age := riskAgeAt(b.BirthDate, r.Record.StartAt); age < adultAge {
			out = append(out, finding{"beneficiary_id": b.ID, "age": age})
		}
	}
	return out, nil
}

func riskExactDuplicate(ctx context.Context, r *riskRun) ([]finding, error) {
	bySHA := map[string][]model.Upload{}
	var digests []string
	for _, u := range r.ready("") {
		if u.SHA256 == "" {
			continue
		}
		if _, ok := bySHA[u.SHA256]; !ok {
			digests = append(digests, u.SHA256)
		}
		bySHA[u.SHA256] = append(bySHA[u.SHA256], u)
	}
	others, err := r.store.SameSHA256(ctx, digests, r.Record.ID)
	if err != nil {
		return nil, err
	}
	var out []finding
	for _, o := range others {
		for _, mine := range bySHA[o.SHA256] {
			if o.ID == mine.ID {
				continue
			}
			var rec any
			if o.RecordID != nil {
				rec = *o.RecordID
			}
			r.exact[[2]string{mine.ID, o.ID}] = true
			out = append(out, finding{"upload_id": mine.ID, "sha256": o.SHA256, "matched_upload_id": o.ID, "matched_record_id": rec})
		}
	}
	return out, nil
}

// riskCap sums what the item already claimed for each household (or
// person) in other claimed records, adds this record's unit price once, and
// compares with the item's cap. A person without a household is their own
// household, so an item capped per household is not uncapped by a blank.
func riskCap(scope string) func(context.Context, *riskRun) ([]finding, error) {
	return func(ctx context.Context, r *riskRun) ([]finding, error) {
		if r.Item.CapScope != scope || r.Item.CapFen <= 0 || len(r.Beneficiaries) == 0 {
			return nil, nil
		}
		key := func(beneficiaryID, household string) string {
			if scope == model.CapHousehold && household != "" {
				return household
			}
			return beneficiaryID
		}
		var bids, households, keys []string
		for _, b := range r.Beneficiaries {
			bids = append(bids, b.ID)
			if scope == model.CapHousehold && b.Household != "" {
				households = append(households, b.Household)
			}
			if k := key(b.ID, b.Household); !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
		uses, err := r.store.CapUses(ctx, r.Item.ID, r.Record.ID, bids, households)
		if err != nil {
			return nil, err
		}
		spent := map[string]int64{}
		counted := map[[2]string]bool{}
		for _, u := range uses {
			k := key(u.BeneficiaryID, u.Household)
			if counted[[2]string{k, u.RecordID}] {
				continue // two people of one household in one record claim once
			}
			counted[[2]string{k, u.RecordID}] = true
			spent[k] += u.UnitPriceFen
		}
		var out []finding
		for _, k := range keys {
			if spent[k]+r.Order.UnitPriceFen <= r.Item.CapFen {
				continue
			}
			ev := finding{"spent_fen": spent[k], "this_fen": r.Order.UnitPriceFen, "cap_fen": r.Item.CapFen}
			if scope == model.CapHousehold {
				ev["household"] = k
			} else {
				ev["beneficiary_id"] = k
			}
			out = append(out, ev)
		}
		return out, nil
	}
}

// ---- warn checks ----

func riskNearDuplicate(ctx context.Context, r *riskRun) ([]finding, error) {
	if r.near == nil {
		return nil, nil
	}
	matches, err := r.near.Find(ctx, r.Record.ID, r.ready(model.KindImage))
	if err != nil {
		return nil, err
	}
	var out []finding
	for _, m := range matches {
		if r.exact[[2]string{m.UploadID, m.MatchedUploadID}] {
			continue
		}
		out = append(out, finding{"upload_id": m.UploadID, "matched_upload_id": m.MatchedUploadID,
			"matched_record_id": m.MatchedRecordID, "distance": m.Distance})
	}
	return out, nil
}

func riskCaptureWindow(_ context.Context, r *riskRun) ([]finding, error) {
	from, to := r.Record.StartAt.Add(-captureSlack), r.Record.EndAt.Add(captureSlack)
	var out []finding
	for _, u := range r.ready("") {
		if u.CaptureTime == nil {
			continue
		}
		t := *u.CaptureTime
		var off time.Duration
		switch {
		case t.Before(from):
			off = r.Record.StartAt.Sub(t)
		case t.After(to):
			off = t.Sub(r.Record.EndAt)
		default:
			continue
		}
		out = append(out, finding{"upload_id": u.ID, "capture_time": riskTime(t), "minutes_outside": int(math.Round(off.Minutes()))})
	}
	return out, nil
}

func riskNoEXIF(_ context.Context, r *riskRun) ([]finding, error) {
	var missing []string
	for _, u := range r.ready(model.KindImage) {
		if !u.HasEXIF || u.CaptureTime == nil {
			missing = append(missing, u.ID)
		}
	}
	if len(missing) == 0 {
		return nil, nil
	}
	return oneFinding(finding{"upload_ids": missing, "count": len(missing)}), nil
}

// riskGeofence reports each file whose recorded place lies outside the
// community: the file's own GPS against the radius, and the phone's
// location against the radius plus the accuracy it reported. One flag per
// file, for the source that is farther out.
func riskGeofence(_ context.Context, r *riskRun) ([]finding, error) {
	c := r.Community
	if !riskHasPoint(c.Lat, c.Lng) || c.RadiusM <= 0 {
		return nil, nil
	}
	radius := float64(c.RadiusM)
	var out []finding
	for _, u := range r.ready("") {
		var worst finding
		worstOut := 0.0
		if u.FileLat != nil && u.FileLng != nil {
			d := riskDistanceM(c.Lat, c.Lng, *u.FileLat, *u.FileLng)
			if o := d - radius; o > worstOut {
				worstOut = o
				worst = finding{"upload_id": u.ID, "source": "file_gps", "distance_m": math.Round(d), "outside_m": math.Round(o), "radius_m": c.RadiusM}
			}
		}
		if u.ClientLat != nil && u.ClientLng != nil {
			acc := 0.0
			if u.ClientAccuracy != nil {
				acc = math.Min(math.Max(*u.ClientAccuracy, 0), maxClientAccuracyM)
			}
			d := riskDistanceM(c.Lat, c.Lng, *u.ClientLat, *u.ClientLng)
			if o := d - radius - acc; o > worstOut {
				worstOut = o
				worst = finding{"upload_id": u.ID, "source": "client", "distance_m": math.Round(d), "outside_m": math.Round(o),
					"radius_m": c.RadiusM, "accuracy_m": acc}
			}
		}
		if worst != nil {
			out = append(out, worst)
		}
	}
	return out, nil
}

func riskDoubleBooked(ctx context.Context, r *riskRun) ([]finding, error) {
	rec := r.Record
	if !riskHasPoint(rec.VenueLat, rec.VenueLng) {
		return nil, nil
	}
	others, err := r.store.WorkerOverlaps(ctx, rec.WorkerID, rec.ID, rec.StartAt, rec.EndAt)
	if err != nil {
		return nil, err
	}
	var out []finding
	for _, o := range others {
		if !riskHasPoint(o.VenueLat, o.VenueLng) {
			continue
		}
		if d := riskDistanceM(rec.VenueLat, rec.VenueLng, o.VenueLat, o.VenueLng); d > doubleBookDistanceM {
			out = append(out, finding{"record_id": o.ID, "distance_m": math.Round(d), "start_at": riskTime(o.StartAt), "end_at": riskTime(o.EndAt)})
		}
	}
	return out, nil
}

func riskSessionLength(_ context.Context, r *riskRun) ([]finding, error) {
	d := r.Record.EndAt.Sub(r.Record.StartAt)
	if r.Item.MinDurationMinutes <= 0 || d >= time.Duration(r.Item.MinDurationMinutes)*time.Minute {
		return nil, nil
	}
	return oneFinding(finding{"minutes": int(d.Minutes()), "required_minutes": r.Item.MinDurationMinutes}), nil
}

// riskSameDay: the calendar day is Beijing's, where the sessions happen.
func riskSameDay(ctx context.Context, r *riskRun) ([]finding, error) {
	if len(r.Beneficiaries) == 0 {
		return nil, nil
	}
	s := r.Record.StartAt.In(beijing)
	day := time.Date(s.Year(), s.Month(), s.Day(), 0, 0, 0, 0, beijing)
	bids := make([]string, 0, len(r.Beneficiaries))
	for _, b := range r.Beneficiaries {
		bids = append(bids, b.ID)
	}
	rows, err := r.store.BeneficiarySameDay(ctx, r.Item.ID, r.Record.ID, bids, day, day.AddDate(0, 0, 1))
	if err != nil {
		return nil, err
	}
	out := make([]finding, 0, len(rows))
	for _, x := range rows {
		out = append(out, finding{"beneficiary_id": x.BeneficiaryID, "record_id": x.RecordID, "date": day.Format(time.DateOnly)})
	}
	return out, nil
}

func riskOrderQuantity(ctx context.Context, r *riskRun) ([]finding, error) {
	pending, err := r.store.PendingOnOrder(ctx, r.Order.ID, r.Record.ID)
	if err != nil {
		return nil, err
	}
	if r.Order.UsedCount+pending < r.Order.Quantity {
		return nil, nil
	}
	return oneFinding(finding{"quantity": r.Order.Quantity, "used_count": r.Order.UsedCount, "pending": pending}), nil
}
