package pii

import "strings"

// MaskName hides a personal name for display to people who may not see it,
// keeping the first and, for names of three or more characters, the last
// character: 张三 → 张*, 张小三 → 张*三, 欧阳小明 → 欧**明. It counts runes, so
// Chinese and minority names with a middle dot are masked correctly.
func MaskName(s string) string {
	r := []rune(strings.TrimSpace(s))
	switch len(r) {
	case 0:
		return ""
	case 1:
		return "*"
	case 2:
		return string(r[0]) + "*"
	}
	return string(r[0]) + strings.Repeat("*", len(r)-2) + string(r[len(r)-1])
}

// MaskIDNumber keeps the first four and last four characters of an ID number
// (province and city, and the tail people use to confirm "is it me"), hiding
// the birth date: 500114199001011234 → 5001**********1234. Inputs of eight
// characters or fewer are masked entirely, since keeping 4+4 would show all.
func MaskIDNumber(s string) string {
	return maskMiddle(strings.TrimSpace(s), 4, 4)
}

// MaskPhone shows a mobile number as 138****0000. Input in any form that
// NormalizePhone accepts is normalised first; anything else keeps the first
// three and last four characters only when at least four are hidden.
func MaskPhone(s string) string {
	if n, err := NormalizePhone(s); err == nil {
		return n[:3] + "****" + n[7:]
	}
	return maskMiddle(strings.TrimSpace(s), 3, 4)
}

// maskMiddle replaces all but the first head and last tail runes with '*'.
// When fewer than four runes would be hidden, it hides everything instead,
// because a short value with most of it showing is not masked at all.
func maskMiddle(s string, head, tail int) string {
	r := []rune(s)
	hidden := len(r) - head - tail
	if hidden < 4 {
		return strings.Repeat("*", len(r))
	}
	return string(r[:head]) + strings.Repeat("*", hidden) + string(r[len(r)-tail:])
}
