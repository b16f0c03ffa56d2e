package pii

import (
	"fmt"
	"strings"
	"time"
)

// idCheckChars maps the weighted sum mod 11 to the check character.
const idCheckChars = "10X98765432"

// NormalizeIDNumber validates an 18-character resident ID number (居民身份证号码)
// and returns it in canonical form: trimmed, full-width characters folded to
// ASCII, trailing x upper-cased. It checks the MOD 11-2 check character and a
// plausible birth date (a real calendar day, year 1900 or later, not after
// today in China). Legacy 15-digit numbers are refused: they carry no check
// character, and every one was replaced by an 18-digit number long ago.
func NormalizeIDNumber(s string) (string, error) {
	return normalizeIDNumber(s, time.Now())
}

// IDBirthDate returns the birth date encoded in an ID number, at midnight
// China time, for age checks such as guardian consent for minors.
func IDBirthDate(id string) (time.Time, error) {
	n, err := NormalizeIDNumber(id)
	if err != nil {
		return time.Time{}, err
	}
	birth, _ := parseIDBirthDate(n)
	return birth, nil
}

// AgeOn returns the age in whole years on the given day, in China time. A
// person born on 29 February comes of age on 1 March in common years, as
// Chinese civil law counts it.
func AgeOn(birth, on time.Time) int {
	b, o := birth.In(chinaTime()), on.In(chinaTime())
	age := o.Year() - b.Year()
	if o.Month() < b.Month() || (o.Month() == b.Month() && o.Day() < b.Day()) {
		age--
	}
	return age
}

func normalizeIDNumber(s string, now time.Time) (string, error) {
	n := strings.ToUpper(foldWidth(strings.TrimSpace(s)))
	if len(n) == 15 && allDigits(n) {
		return "", fmt.Errorf("%w: legacy 15-digit number, the 18-digit one is required", ErrInvalidIDNumber)
	}
	if len(n) != 18 {
		return "", fmt.Errorf("%w: must be 18 characters", ErrInvalidIDNumber)
	}
	if !allDigits(n[:17]) || !(isDigit(n[17]) || n[17] == 'X') {
		return "", fmt.Errorf("%w: must be 17 digits and a digit or X", ErrInvalidIDNumber)
	}
	if want := idCheckChar(n[:17]); n[17] != want {
		return "", fmt.Errorf("%w: check character mismatch", ErrInvalidIDNumber)
	}
	birth, err := parseIDBirthDate(n)
	if err != nil {
		return "", err
	}
	if birth.Year() < 1900 {
		return "", fmt.Errorf("%w: birth year before 1900", ErrInvalidIDNumber)
	}
	y, m, d := now.In(chinaTime()).Date()
	if birth.After(time.Date(y, m, d, 0, 0, 0, 0, chinaTime())) {
		return "", fmt.Errorf("%w: birth date in the future", ErrInvalidIDNumber)
	}
	return n, nil
}

// idCheckChar computes the GB 11643-1999 (ISO 7064 MOD 11-2) check character
// of 17 digits. The weight of digit i is 2^(17-i) mod 11, so walking from the
// right it starts at 2 and doubles.
func idCheckChar(first17 string) byte {
	sum, weight := 0, 2
	for i := 16; i >= 0; i-- {
		sum += int(first17[i]-'0') * weight
		weight = weight * 2 % 11
	}
	return idCheckChars[sum%11]
}

// chinaTime is UTC+8 built without a tzdata lookup: China has had no daylight
// saving since 1991, and minimal containers often lack zoneinfo.
func chinaTime() *time.Location { return time.FixedZone("CST", 8*60*60) }

func parseIDBirthDate(n string) (time.Time, error) {
	ds := n[6:14]
	birth, err := time.ParseInLocation("20060102", ds, chinaTime())
	// Parse accepts some out-of-range days loosely; the round trip rejects
	// dates like 19900230 that do not exist.
	if err != nil || birth.Format("20060102") != ds {
		return time.Time{}, fmt.Errorf("%w: birth date is not a real date", ErrInvalidIDNumber)
	}
	return birth, nil
}

// foldWidth maps full-width digits, letters and spaces, which Chinese input
// methods often produce, to their ASCII forms.
func foldWidth(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= '！' && r <= '～':
			return r - '！' + '!'
		case r == '\u3000':
			return ' '
		}
		return r
	}, s)
}

func allDigits(s string) bool {
	for i := range len(s) {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
