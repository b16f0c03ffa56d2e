package wechat

import (
	"fmt"
	"strings"
)

const devPrefix = "dev:"

// validDevName accepts [a-z0-9_-]{1,32}.
func validDevName(name string) bool {
	if name == "" || len(name) > 32 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// DevOpenID is the openid dev mode gives the login code "dev:<name>", so a
// demo user keeps the same account across logins and restarts. It returns ""
// for a name outside [a-z0-9_-]{1,32}.
func DevOpenID(name string) string {
	if !validDevName(name) {
		return ""
	}
	return "dev_" + name
}

func devSession(code string) (Session, error) {
	name, ok := strings.CutPrefix(code, devPrefix)
	if !ok || !validDevName(name) {
		return Session{}, fmt.Errorf("wechat dev login: %w: want dev:<name> with name in [a-z0-9_-]{1,32}", ErrInvalidCode)
	}
	return Session{OpenID: DevOpenID(name), UnionID: "dev_union_" + name, SessionKey: randomBase64(16)}, nil
}

func devPhone(code string) (string, error) {
	digits, ok := strings.CutPrefix(code, devPrefix)
	valid := ok && len(digits) == 11
	for _, r := range digits {
		valid = valid && r >= '0' && r <= '9'
	}
	if !valid {
		return "", fmt.Errorf("wechat dev phone number: %w: want dev:<11 digits>", ErrInvalidCode)
	}
	return digits, nil
}
