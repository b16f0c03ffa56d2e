package pii

import (
	"fmt"
	"strings"
)

// NormalizePhone validates a mainland China mobile number and returns its 11
// bare digits. It accepts what people actually type or paste: a +86, 0086 or
// 86 prefix, spaces, dashes, parentheses and full-width digits.
func NormalizePhone(s string) (string, error) {
	n := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '(', ')':
			return -1
		}
		return r
	}, foldWidth(strings.TrimSpace(s)))
	switch {
	case strings.HasPrefix(n, "+86"):
		n = n[3:]
	case strings.HasPrefix(n, "0086"):
		n = n[4:]
	case len(n) == 13 && strings.HasPrefix(n, "86"):
		// Only with 13 digits: an 11-digit number never starts with 86.
		n = n[2:]
	}
	if len(n) != 11 || !allDigits(n) {
		return "", fmt.Errorf("%w: must be 11 digits", ErrInvalidPhone)
	}
	if n[0] != '1' || n[1] < '3' {
		return "", fmt.Errorf("%w: not a mobile number prefix", ErrInvalidPhone)
	}
	return n, nil
}
