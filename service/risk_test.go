package service

import (
	"context"
	"slices"
	"testing"
	"time"

	"qjmz/model"
	"qjmz/repository"
)

// fakeRiskStore answers the platform questions from fixed data.
type fakeRiskStore struct {
	sameSHA  []model.Upload
	capUses  []repository.CapUse
	overlaps []model.SessionRecord
	sameDay  []repository.SameDay
	pending  int

	gotDayFrom, gotDayTo time.Time
}

func (f *fakeRiskStore) SameSHA256(_ context.Context, digests []string, _ string) ([]model.Upload, error) {
	var out []model.Upload
	for _, u := range f.sameSHA {
		if slices.Contains(digests, u.SHA256) {
			out = append(out, u)
		}
	}
	return out, nil
}

func (f *fakeRiskStore) CapUses(context.Context, string, string, []string, []string) ([]repository.CapUse, error) {
	return f.capUses, nil
}

func (f *fakeRiskStore) WorkerOverlaps(context.Context, string, string, time.Time, time.Time) ([]model.SessionRecord, error) {
	return f.overlaps, nil
}

func (f *fakeRiskStore) BeneficiarySameDay(_ context.Context, _, _ string, _ []string, from, to time.Time) ([]repository.SameDay, error) {
	f.gotDayFrom, f.gotDayTo = from, to
	return f.sameDay, nil
}

func (f *fakeRiskStore) PendingOnOrder(context.Context, string, string) (int, error) {
	return f.pending, nil
}

type fakeNear struct{ matches []NearMatch }

func (f *fakeNear) Find(context.Context, string, []model.Upload) ([]NearMatch, error) {
	return f.matches, nil
}

func riskPtr[T any](v T) *T { return &v }

var riskCST = time.FixedZone("CST", 8*3600)

// cleanInput is a record that passes every check: the session 10:00–11:00
// Beijing time in 青社社区, two photos taken on the spot, one adult.
func cleanInput() RiskInput {
	start := time.Date(2026, 3, 18, 10, 0, 0, 0, riskCST)
	photo := func(id, sha string, at time.Time) model.Upload {
		return model.Upload{ID: id, Kind: model.KindImage, Status: model.UploadReady, SHA256: sha, HasEXIF: true,
			CaptureTime: riskPtr(at), FileLat: riskPtr(29.5186), FileLng: riskPtr(108.7703), PHash: 1, TopPHash: 2}
	}
	return RiskInput{
		Record: model.SessionRecord{ID: "REC", WorkerID: "W", StartAt: start, EndAt: start.Add(time.Hour),
			ParticipantCount: 3, VenueLat: 29.5185, VenueLng: 108.7702},
		Order:         model.Order{ID: "ORD", Status: model.OrderOpen, Quantity: 10, UsedCount: 2, UnitPriceFen: 50000},
		Item:          model.ServiceItem{ID: "ITEM", MinPhotos: 2, MinParticipants: 1, MinDurationMinutes: 45},
		Community:     model.Region{ID: "COM", Lat: 29.5185, Lng: 108.7702, RadiusM: 800},
		Media:         []model.Upload{photo("P1", "aa", start.Add(5*time.Minute)), photo("P2", "bb", start.Add(50*time.Minute))},
		Beneficiaries: []model.Beneficiary{{ID: "B1", Household: "H1", BirthDate: time.Date(1950, 1, 1, 0, 0, 0, 0, riskCST)}},
		Now:           start.Add(2 * time.Hour),
	}
}

func TestRiskChecks(t *testing.T) {
	video := func(ms int64) model.Upload {
		return model.Upload{ID: "V1", Kind: model.KindVideo, Status: model.UploadReady, SHA256: "vv", DurationMs: ms}
	}
	tests := []struct {
		name  string
		setup func(in *RiskInput, st *fakeRiskStore, nd *fakeNear)
		want  []string
		check func(t *testing.T, flags []RiskFinding)
	}{
		{name: "clean record raises nothing", setup: func(*RiskInput, *fakeRiskStore, *fakeNear) {}},
		{name: "closed order", want: []string{FlagOrderNotOpen},
			setup: func(in *RiskInput, _ *fakeRiskStore, _ *fakeNear) { in.Order.Status = model.OrderClosed }},
		{name: "pending upload holds the record back", want: []string{FlagMediaNotReady},
			setup: func(in *RiskInput, _ *fakeRiskStore, _ *fakeNear) {
				in.Media = append(in.Media, model.Upload{ID: "P3", Kind: model.KindImage, Status: model.UploadPending, ExpiresAt: in.Now.Add(time.Minute)})
			}},
		{name: "abandoned ticket does not", setup: func(in *RiskInput, _ *fakeRiskStore, _ *fakeNear) {
			in.Media = append(in.Media, model.Upload{ID: "P3", Kind: model.KindImage, Status: model.UploadPending, ExpiresAt: in.Now.Add(-2 * time.Hour)})
		}},
		{name: "too few ready photos; a rejected one does not count", want: []string{FlagEvidenceMinPhotos},
			setup: func(in *RiskInput, _ *fakeRiskStore, _ *fakeNear) { in.Media[1].Status = model.UploadRejected },
			check: func(t *testing.T, f []RiskFinding) {
				if f[0].Evidence["required"] != 2 || f[0].Evidence["ready_photos"] != 1 {
					t.Errorf("evidence %v", f[0].Evidence)
				}
			}},
		{name: "video required but missing", want: []string{FlagEvidenceVideoRequired},
			setup: func(in *RiskInput, _ *fakeRiskStore, _ *fakeNear) {
				in.Item.VideoRequired, in.Item.MinVideoSeconds = true, 15
			}},
		{name: "video too short", want: []string{FlagEvidenceVideoTooShort},
			setup: func(in *RiskInput, _ *fakeRiskStore, _ *fakeNear) {
				in.Item.VideoRequired, in.Item.MinVideoSeconds = true, 15
				in.Media = append(in.Media, video(14_500))
			}},
		{name: "video long enough", setup: func(in *RiskInput, _ *fakeRiskStore, _ *fakeNear) {
			in.Item.VideoRequired, in.Item.MinVideoSeconds = true, 15
			in.Media = append(in.Media, video(15_000))
		}},
		{name: "too few participants", want: []string{FlagEvidenceMinParticipants},
			setup: func(in *RiskInput, _ *fakeRiskStore, _ *fakeNear) { in.Item.MinParticipants = 5 }},
		{name: "beneficiaries required", want: []string{FlagEvidenceBeneficiariesReq},
			setup: func(in *RiskInput, _ *fakeRiskStore, _ *fakeNear) {
				in.Item.BeneficiariesRequired, in.Beneficiaries = true, nil
			}},
		{name: "minor without guardian consent", want: []string{FlagConsentMissing},
			setup: func(in *RiskInput, _ *fakeRiskStore, _ *fakeNear) {
				// Turns 18 the day after the session: still a minor.
				in.Beneficiaries[0].BirthDate = time.Date(2008, 3, 19, 0, 0, 0, 0, riskCST)
			},
			check: func(t *testing.T, f []RiskFinding) {
				if f[0].Evidence["age"] != 17 {
					t.Errorf("age %v", f[0].Evidence["age"])
				}
			}},
		{name: "minor with guardian consent", setup: func(in *RiskInput, _ *fakeRiskStore, _ *fakeNear) {
			in.Beneficiaries[0].BirthDate, in.Beneficiaries[0].GuardianConsent = time.Date(2016, 6, 1, 0, 0, 0, 0, riskCST), true
		}},
		{name: "exact duplicate elsewhere, not reported again as near", want: []string{FlagExactDuplicate},
			setup: func(_ *RiskInput, st *fakeRiskStore, nd *fakeNear) {
				st.sameSHA = []model.Upload{{ID: "OTHER", SHA256: "aa", RecordID: riskPtr("REC2")}}
				nd.matches = []NearMatch{{UploadID: "P1", MatchedUploadID: "OTHER", MatchedRecordID: "REC2", Distance: 0}}
			},
			check: func(t *testing.T, f []RiskFinding) {
				ev := f[0].Evidence
				if ev["upload_id"] != "P1" || ev["matched_upload_id"] != "OTHER" || ev["matched_record_id"] != "REC2" {
					t.Errorf("evidence %v", ev)
				}
			}},
		{name: "household cap: two members in one earlier record count once", want: []string{FlagHouseholdCapExceeded},
			setup: func(in *RiskInput, st *fakeRiskStore, _ *fakeNear) {
				in.Item.CapScope, in.Item.CapFen = model.CapHousehold, 200000
				st.capUses = []repository.CapUse{
					{RecordID: "R1", BeneficiaryID: "B1", Household: "H1", UnitPriceFen: 50000},
					{RecordID: "R1", BeneficiaryID: "B9", Household: "H1", UnitPriceFen: 50000},
					{RecordID: "R2", BeneficiaryID: "B9", Household: "H1", UnitPriceFen: 50000},
					{RecordID: "R3", BeneficiaryID: "B1", Household: "H1", UnitPriceFen: 60000},
				}
			},
			check: func(t *testing.T, f []RiskFinding) {
				ev := f[0].Evidence
				if ev["household"] != "H1" || ev["spent_fen"] != int64(160000) || ev["cap_fen"] != int64(200000) || ev["this_fen"] != int64(50000) {
					t.Errorf("evidence %v", ev)
				}
			}},
		{name: "household cap reached exactly is fine", setup: func(in *RiskInput, st *fakeRiskStore, _ *fakeNear) {
			in.Item.CapScope, in.Item.CapFen = model.CapHousehold, 200000
			st.capUses = []repository.CapUse{{RecordID: "R1", BeneficiaryID: "B1", Household: "H1", UnitPriceFen: 150000}}
		}},
		{name: "beneficiary cap", want: []string{FlagBeneficiaryCapExceeded},
			setup: func(in *RiskInput, st *fakeRiskStore, _ *fakeNear) {
				in.Item.CapScope, in.Item.CapFen = model.CapBeneficiary, 90000
				st.capUses = []repository.CapUse{{RecordID: "R1", BeneficiaryID: "B1", Household: "H1", UnitPriceFen: 50000}}
			}},
		{name: "near duplicate", want: []string{FlagNearDuplicate},
			setup: func(_ *RiskInput, _ *fakeRiskStore, nd *fakeNear) {
				nd.matches = []NearMatch{{UploadID: "P2", MatchedUploadID: "X", MatchedRecordID: "R9", Distance: 7}}
			}},
		{name: "capture long before the session", want: []string{FlagCaptureOutsideWindow},
			setup: func(in *RiskInput, _ *fakeRiskStore, _ *fakeNear) {
				in.Media[0].CaptureTime = riskPtr(in.Record.StartAt.Add(-3 * time.Hour))
			},
			check: func(t *testing.T, f []RiskFinding) {
				if f[0].Evidence["minutes_outside"] != 180 || f[0].Evidence["upload_id"] != "P1" {
					t.Errorf("evidence %v", f[0].Evidence)
				}
			}},
		{name: "capture 29 minutes after the end is within slack", setup: func(in *RiskInput, _ *fakeRiskStore, _ *fakeNear) {
			in.Media[0].CaptureTime = riskPtr(in.Record.EndAt.Add(29 * time.Minute))
		}},
		{name: "no EXIF", want: []string{FlagNoEXIF},
			setup: func(in *RiskInput, _ *fakeRiskStore, _ *fakeNear) {
				in.Media[0].HasEXIF, in.Media[0].CaptureTime = false, nil
			}},
		{name: "file GPS 3 km away", want: []string{FlagOutsideGeofence},
			setup: func(in *RiskInput, _ *fakeRiskStore, _ *fakeNear) { in.Media[1].FileLat = riskPtr(29.5455) },
			check: func(t *testing.T, f []RiskFinding) {
				ev := f[0].Evidence
				if ev["source"] != "file_gps" || ev["outside_m"].(float64) < 2100 || ev["outside_m"].(float64) > 2300 {
					t.Errorf("evidence %v", ev)
				}
			}},
		{name: "client location inside radius plus accuracy", setup: func(in *RiskInput, _ *fakeRiskStore, _ *fakeNear) {
			// ~1.1 km out, radius 800 + accuracy 400.
			in.Media[1].ClientLat, in.Media[1].ClientLng, in.Media[1].ClientAccuracy = riskPtr(29.5285), riskPtr(108.7702), riskPtr(400.0)
		}},
		{name: "client location claiming huge accuracy is capped", want: []string{FlagOutsideGeofence},
			setup: func(in *RiskInput, _ *fakeRiskStore, _ *fakeNear) {
				in.Media[1].ClientLat, in.Media[1].ClientLng, in.Media[1].ClientAccuracy = riskPtr(29.5585), riskPtr(108.7702), riskPtr(20000.0)
			},
			check: func(t *testing.T, f []RiskFinding) {
				if f[0].Evidence["source"] != "client" || f[0].Evidence["accuracy_m"] != 1000.0 {
					t.Errorf("evidence %v", f[0].Evidence)
				}
			}},
		{name: "worker double-booked 5 km away", want: []string{FlagWorkerDoubleBooked},
			setup: func(_ *RiskInput, st *fakeRiskStore, _ *fakeNear) {
				st.overlaps = []model.SessionRecord{{ID: "R7", VenueLat: 29.5635, VenueLng: 108.7702}}
			}},
		{name: "overlapping session next door is one trip", setup: func(_ *RiskInput, st *fakeRiskStore, _ *fakeNear) {
			st.overlaps = []model.SessionRecord{{ID: "R7", VenueLat: 29.5195, VenueLng: 108.7712}}
		}},
		{name: "session shorter than the item minimum", want: []string{FlagSessionTooShort},
			setup: func(in *RiskInput, _ *fakeRiskStore, _ *fakeNear) { in.Item.MinDurationMinutes = 90 }},
		{name: "same beneficiary same day", want: []string{FlagBeneficiarySameDay},
			setup: func(_ *RiskInput, st *fakeRiskStore, _ *fakeNear) {
				st.sameDay = []repository.SameDay{{RecordID: "R5", BeneficiaryID: "B1"}}
			},
			check: func(t *testing.T, f []RiskFinding) {
				if f[0].Evidence["date"] != "2026-03-18" {
					t.Errorf("evidence %v", f[0].Evidence)
				}
			}},
		{name: "order quantity exhausted by pending records", want: []string{FlagOrderQuantityExhausted},
			setup: func(_ *RiskInput, st *fakeRiskStore, _ *fakeNear) { st.pending = 8 }},
		{name: "blocks come before warns", want: []string{FlagEvidenceMinPhotos, FlagNoEXIF},
			setup: func(in *RiskInput, _ *fakeRiskStore, _ *fakeNear) {
				in.Media = in.Media[:1]
				in.Media[0].HasEXIF, in.Media[0].CaptureTime = false, nil
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, st, nd := cleanInput(), &fakeRiskStore{}, &fakeNear{}
			tc.setup(&in, st, nd)
			flags, err := NewRiskChecker(st, nd).Check(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range flags {
				got = append(got, f.Code)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("flags = %v, want %v (%+v)", got, tc.want, flags)
			}
			if tc.check != nil {
				tc.check(t, flags)
			}
		})
	}
}

func TestRiskSameDayUsesBeijingCalendar(t *testing.T) {
	in := cleanInput()
	// 00:30 Beijing on the 18th is still the 17th in UTC.
	in.Record.StartAt = time.Date(2026, 3, 18, 0, 30, 0, 0, riskCST)
	in.Record.EndAt = in.Record.StartAt.Add(time.Hour)
	st := &fakeRiskStore{}
	if _, err := NewRiskChecker(st, &fakeNear{}).Check(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 3, 18, 0, 0, 0, 0, riskCST); !st.gotDayFrom.Equal(want) || !st.gotDayTo.Equal(want.AddDate(0, 0, 1)) {
		t.Fatalf("day window %v–%v, want the Beijing day starting %v", st.gotDayFrom, st.gotDayTo, want)
	}
}

func TestRiskSeverities(t *testing.T) {
	block := []string{FlagEvidenceMinPhotos, FlagEvidenceVideoRequired, FlagEvidenceVideoTooShort, FlagEvidenceMinParticipants,
		FlagEvidenceBeneficiariesReq, FlagExactDuplicate, FlagHouseholdCapExceeded, FlagBeneficiaryCapExceeded, FlagConsentMissing,
		FlagMediaNotReady, FlagOrderNotOpen}
	seen := map[string]bool{}
	for _, c := range riskChecks() {
		if seen[c.code] {
			t.Errorf("%s listed twice", c.code)
		}
		seen[c.code] = true
		want := model.SeverityWarn
		if slices.Contains(block, c.code) {
			want = model.SeverityBlock
		}
		if c.severity != want {
			t.Errorf("%s is %s, want %s", c.code, c.severity, want)
		}
	}
	if len(seen) != 19 {
		t.Errorf("%d checks, want 19", len(seen))
	}
}

func TestRiskDistance(t *testing.T) {
	// One degree of latitude is ~111.2 km everywhere.
	if d := riskDistanceM(29, 108, 30, 108); d < 111100 || d > 111300 {
		t.Fatalf("1° latitude = %.0f m", d)
	}
	if d := riskDistanceM(29.5185, 108.7702, 29.5185, 108.7702); d != 0 {
		t.Fatalf("same point = %f", d)
	}
}
