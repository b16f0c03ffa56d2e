package authtoken

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestIssueAndVerify(t *testing.T) {
	secret := strings.Repeat("s", 40)
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	iss := NewIssuer(secret, 15*time.Minute, clock)
	tok, exp, err := iss.Issue("U1", "S1")
	if err != nil || !exp.Equal(now.Add(15*time.Minute)) {
		t.Fatalf("issue: exp=%v err=%v", exp, err)
	}
	c, err := iss.Verify(tok)
	if err != nil || c.UserID != "U1" || c.SessionID != "S1" {
		t.Fatalf("verify: %+v %v", c, err)
	}

	later := NewIssuer(secret, 15*time.Minute, func() time.Time { return now.Add(16 * time.Minute) })
	if _, err := later.Verify(tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired token: %v", err)
	}
	other := NewIssuer(strings.Repeat("o", 40), 15*time.Minute, clock)
	if _, err := other.Verify(tok); !errors.Is(err, ErrInvalid) {
		t.Fatalf("token signed with another key: %v", err)
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "U1", "sid": "S1", "iss": issuer,
		"exp": now.Add(time.Hour).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if _, err := iss.Verify(none); !errors.Is(err, ErrInvalid) {
		t.Fatalf("alg none accepted: %v", err)
	}
	noSession, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "U1", "iss": issuer,
		"exp": now.Add(time.Hour).Unix()}).SignedString([]byte(secret))
	if _, err := iss.Verify(noSession); !errors.Is(err, ErrInvalid) {
		t.Fatalf("token without a session accepted: %v", err)
	}
}

func TestRefreshTokensAreRandomAndStoredHashed(t *testing.T) {
	a, ha := NewRefreshToken()
	b, hb := NewRefreshToken()
	if a == b || ha == hb || len(ha) != 64 || strings.Contains(ha, a) || HashToken(a) != ha {
		t.Fatalf("refresh tokens: %q %q %q %q", a, b, ha, hb)
	}
}
