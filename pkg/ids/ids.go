// Package ids makes the identifiers the API shows: ULIDs, which sort by
// creation time (good for keyset pagination) and carry 80 random bits so they
// cannot be guessed or enumerated.
package ids

import (
	"crypto/rand"
	"encoding/base64"
	"strings"

	"github.com/oklog/ulid/v2"
)

// New returns a fresh 26-character ULID.
func New() string { return ulid.Make().String() }

// Valid reports whether s looks like an id we issued. Handlers use it to
// answer 404 early for junk instead of querying.
func Valid(s string) bool {
	if len(s) != ulid.EncodedSize {
		return false
	}
	_, err := ulid.ParseStrict(strings.ToUpper(s))
	return err == nil
}

// Secret returns n random bytes, URL-safe base64 encoded without padding.
func Secret(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand never fails on supported platforms; failing loudly is
		// better than issuing a predictable token.
		panic("ids: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
