package pii

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// withCheck appends the GB 11643-1999 check character to 17 digits, using the
// published weight table so it checks the implementation rather than copying it.
func withCheck(t *testing.T, first17 string) string {
	t.Helper()
	weights := []int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i, w := range weights {
		sum += int(first17[i]-'0') * w
	}
	return first17 + string("10X98765432"[sum%11])
}

// wrongCheck returns the number with a different, still well-formed, check character.
func wrongCheck(id string) string {
	c := byte('0')
	if id[17] == '0' {
		c = '1'
	}
	return id[:17] + string(c)
}

func TestNormalizeIDNumber(t *testing.T) {
	now := time.Date(2025, 6, 15, 12, 0, 0, 0, time.UTC)
	qianjiang := withCheck(t, "50011419900101123")
	leap := withCheck(t, "50011420000229002")
	today := withCheck(t, "50011420250615001")
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{"published example with X", "11010519491231002X", "11010519491231002X", false},
		{"qianjiang resident", qianjiang, qianjiang, false},
		{"lower-case x normalised", "11010519491231002x", "11010519491231002X", false},
		{"surrounding spaces trimmed", "  " + qianjiang + "\t", qianjiang, false},
		{"full-width digits from an IME", toFullWidth(qianjiang), qianjiang, false},
		{"born 29 February of a leap year", leap, leap, false},
		{"born today", today, today, false},
		{"wrong check digit", wrongCheck(qianjiang), "", true},
		{"X where a digit belongs", "1101051949123100X2", "", true},
		{"15-digit legacy number", "110105491231002", "", true},
		{"17 digits", qianjiang[:17], "", true},
		{"19 digits", qianjiang + "1", "", true},
		{"letter inside", "5001141990O101123" + "4", "", true},
		{"empty", "", "", true},
		{"30 February", withCheck(t, "50011419900230123"), "", true},
		{"month 13", withCheck(t, "50011419901301123"), "", true},
		{"29 February of a common year", withCheck(t, "50011420010229123"), "", true},
		{"born tomorrow", withCheck(t, "50011420250616001"), "", true},
		{"born before 1900", withCheck(t, "50011418991231123"), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := normalizeIDNumber(tt.in, now)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidIDNumber) {
					t.Fatalf("normalizeIDNumber(%q) = %q, %v; want ErrInvalidIDNumber", tt.in, got, err)
				}
				if len(tt.in) > 8 && strings.Contains(err.Error(), tt.in) {
					t.Errorf("error %q leaks the ID number", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("normalizeIDNumber(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func toFullWidth(s string) string {
	return strings.Map(func(r rune) rune { return r - '!' + '！' }, s)
}

func TestNormalizeIDNumberUsesTheRealClock(t *testing.T) {
	future := withCheck(t, time.Now().AddDate(1, 0, 0).Format("50011420060102")+"001")
	if _, err := NormalizeIDNumber(future); !errors.Is(err, ErrInvalidIDNumber) {
		t.Fatalf("an ID born next year was accepted: %v", err)
	}
}

func TestIDBirthDateAndAge(t *testing.T) {
	tests := []struct {
		name      string
		id        string
		wantBirth string
		on        time.Time
		wantAge   int
	}{
		{"adult", "11010519491231002X", "1949-12-31", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), 75},
		{"child a day before turning 18 is a minor", withCheck(t, "50011420070616001"), "2007-06-16",
			time.Date(2025, 6, 15, 12, 0, 0, 0, time.UTC), 17},
		{"turns 18 at midnight China time, still the 15th in UTC", withCheck(t, "50011420070616001"), "2007-06-16",
			time.Date(2025, 6, 15, 16, 30, 0, 0, time.UTC), 18},
		{"29 February birthday comes of age on 1 March", withCheck(t, "50011420040229001"), "2004-02-29",
			time.Date(2022, 2, 28, 12, 0, 0, 0, time.UTC), 17},
		{"29 February birthday on 1 March", withCheck(t, "50011420040229001"), "2004-02-29",
			time.Date(2022, 3, 1, 12, 0, 0, 0, time.UTC), 18},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			birth, err := IDBirthDate(tt.id)
			if err != nil {
				t.Fatalf("IDBirthDate: %v", err)
			}
			if got := birth.Format(time.DateOnly); got != tt.wantBirth {
				t.Errorf("birth = %s, want %s", got, tt.wantBirth)
			}
			if got := AgeOn(birth, tt.on); got != tt.wantAge {
				t.Errorf("AgeOn(%s) = %d, want %d", tt.on, got, tt.wantAge)
			}
		})
	}
	if _, err := IDBirthDate(wrongCheck("11010519491231002X")); !errors.Is(err, ErrInvalidIDNumber) {
		t.Errorf("IDBirthDate of an invalid number: err = %v, want ErrInvalidIDNumber", err)
	}
}
