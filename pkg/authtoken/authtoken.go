// Package authtoken issues and checks the service's own credentials: a
// short-lived signed access token (JWT, HS256 only) and opaque refresh tokens
// that are stored only as hashes.
package authtoken

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"qjmz/pkg/ids"
)

// Errors a caller can tell apart.
var (
	ErrExpired = errors.New("authtoken: expired")
	ErrInvalid = errors.New("authtoken: invalid")
)

const issuer = "qjmz"

// Claims are what an access token asserts.
type Claims struct {
	UserID    string
	SessionID string
	ExpiresAt time.Time
}

type jwtClaims struct {
	SessionID string `json:"sid"`
	jwt.RegisteredClaims
}

// Issuer signs and verifies access tokens.
type Issuer struct {
	secret []byte
	ttl    time.Duration
	now    func() time.Time
}

// NewIssuer builds an Issuer; now may be nil (time.Now).
func NewIssuer(secret string, ttl time.Duration, now func() time.Time) *Issuer {
	if now == nil {
		now = time.Now
	}
	return &Issuer{secret: []byte(secret), ttl: ttl, now: now}
}

// Issue signs an access token for the user's login session.
func (i *Issuer) Issue(userID, sessionID string) (string, time.Time, error) {
	now := i.now()
	exp := now.Add(i.ttl)
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwtClaims{
		SessionID: sessionID,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   userID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        ids.New(),
		},
	})
	s, err := tok.SignedString(i.secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("authtoken: sign: %w", err)
	}
	return s, exp, nil
}

// Verify checks signature, algorithm (HS256 only, so alg:none and key
// confusion fail), issuer and expiry.
func (i *Issuer) Verify(raw string) (Claims, error) {
	var c jwtClaims
	_, err := jwt.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return i.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(i.now),
	)
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return Claims{}, ErrExpired
		}
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if c.Subject == "" || c.SessionID == "" {
		return Claims{}, ErrInvalid
	}
	return Claims{UserID: c.Subject, SessionID: c.SessionID, ExpiresAt: c.ExpiresAt.Time}, nil
}

// NewRefreshToken returns an opaque refresh token and the hash to store.
func NewRefreshToken() (token, hash string) {
	token = "rt_" + ids.Secret(32)
	return token, HashToken(token)
}

// HashToken is the stored form of an opaque token. The tokens carry 256 random
// bits, so a plain SHA-256 is enough: no dictionary to attack.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
