package pii

import (
	"errors"
	"testing"
)

func TestNormalizePhone(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{"bare", "13800000000", "13800000000", false},
		{"+86 prefix", "+8613800000000", "13800000000", false},
		{"+86 with space", "+86 138 0000 0000", "13800000000", false},
		{"86 prefix", "8619912345678", "19912345678", false},
		{"0086 prefix", "0086-15012345678", "15012345678", false},
		{"dashes", "138-0000-0000", "13800000000", false},
		{"parenthesised country code", "(+86) 17712345678", "17712345678", false},
		{"full-width digits", "１３８００００００００", "13800000000", false},
		{"19x prefix", "19100001111", "19100001111", false},
		{"12x is not a mobile prefix", "12800000000", "", true},
		{"landline", "023-79222222", "", true},
		{"10 digits", "1380000000", "", true},
		{"12 digits", "138000000001", "", true},
		{"letters", "1380000000a", "", true},
		{"86 without enough digits", "86138000000", "", true},
		{"empty", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizePhone(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidPhone) {
					t.Fatalf("NormalizePhone(%q) = %q, %v; want ErrInvalidPhone", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("NormalizePhone(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}
