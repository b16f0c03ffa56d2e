// Package pii protects the personal data of beneficiaries (服务对象) and users:
// names, resident ID numbers and phone numbers.
//
// Such values are stored only as AES-256-GCM ciphertexts, with an HMAC blind
// index beside them so the service can still find and de-duplicate people by
// exact value without ever decrypting a column. Both keys come from
// configuration and never from the database, so a leaked dump on its own
// reveals nothing. The package also validates and normalises ID and phone
// numbers, and masks them for display.
//
// Errors never contain the personal value that caused them, so they are safe
// to log.
package pii

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Compare with errors.Is: they are always wrapped with detail.
var (
	ErrInvalidIDNumber = errors.New("invalid resident ID number")
	ErrInvalidPhone    = errors.New("invalid mobile phone number")
	ErrDecrypt         = errors.New("cannot decrypt personal data")
	ErrInvalidKey      = errors.New("invalid pii key")
)

const (
	keySize = 32
	// cipherV1 prefixes every ciphertext so a later key or algorithm can be
	// introduced while old rows are still readable and re-encrypted lazily.
	cipherV1 = "v1:"
)

// Keys holds the encryption key and the blind-index key. They are separate so
// that the index key, which must be available to every lookup path, is not
// enough to decrypt anything.
type Keys struct {
	aead     cipher.AEAD
	indexKey []byte
}

// NewKeys builds Keys from two base64-encoded 32-byte keys (see GenerateKey).
// It refuses keys that look hand-made — all zero, one repeated byte, a
// counting sequence, printable text — and refuses using one key for both
// purposes, because such configurations are mistakes that would otherwise
// only be discovered after a breach.
func NewKeys(encKeyB64, indexKeyB64 string) (*Keys, error) {
	encKey, err := decodeKey(encKeyB64)
	if err != nil {
		return nil, fmt.Errorf("encryption key: %w", err)
	}
	indexKey, err := decodeKey(indexKeyB64)
	if err != nil {
		return nil, fmt.Errorf("index key: %w", err)
	}
	if hmac.Equal(encKey, indexKey) {
		return nil, fmt.Errorf("%w: encryption and index keys must differ", ErrInvalidKey)
	}
	block, err := aes.NewCipher(encKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	return &Keys{aead: aead, indexKey: indexKey}, nil
}

// String keeps key material out of logs and panics that print a config.
func (k *Keys) String() string { return "pii.Keys{REDACTED}" }

// GoString keeps key material out of %#v output.
func (k *Keys) GoString() string { return k.String() }

// GenerateKey returns base64 of 32 random bytes, suitable for NewKeys.
func GenerateKey() string {
	b := make([]byte, keySize)
	// crypto/rand.Read never fails on supported platforms (Go ≥ 1.24 aborts
	// the program instead), so there is no error to handle.
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// Encrypt seals plain with AES-256-GCM under a fresh random nonce. field (the
// column name, e.g. "beneficiary.id_number") is bound as additional
// authenticated data, so a ciphertext copied into another column will not
// decrypt. Equal inputs give different outputs; use BlindIndex to compare.
func (k *Keys) Encrypt(plain, field string) (string, error) {
	if field == "" {
		return "", errors.New("pii: encrypt: field name is required")
	}
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("pii: encrypt: nonce: %w", err)
	}
	// Seal appends to nonce, giving nonce|ciphertext|tag in one buffer.
	sealed := k.aead.Seal(nonce, nonce, []byte(plain), []byte(field))
	return cipherV1 + base64.StdEncoding.EncodeToString(sealed), nil
}

// Decrypt opens a ciphertext made by Encrypt for the same field. Every
// failure — unknown version, bad encoding, wrong key, wrong field, tampering —
// is ErrDecrypt, so callers need not tell them apart and attackers cannot.
func (k *Keys) Decrypt(ct, field string) (string, error) {
	body, ok := strings.CutPrefix(ct, cipherV1)
	if !ok {
		return "", fmt.Errorf("%w: unknown ciphertext version", ErrDecrypt)
	}
	sealed, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		return "", fmt.Errorf("%w: bad encoding", ErrDecrypt)
	}
	ns := k.aead.NonceSize()
	if len(sealed) < ns+k.aead.Overhead() {
		return "", fmt.Errorf("%w: ciphertext too short", ErrDecrypt)
	}
	plain, err := k.aead.Open(nil, sealed[:ns], sealed[ns:], []byte(field))
	if err != nil {
		return "", fmt.Errorf("%w: authentication failed", ErrDecrypt)
	}
	return string(plain), nil
}

// BlindIndex returns hex HMAC-SHA256(indexKey, field+":"+normalized) for
// exact-match lookup and de-duplication. The field is mixed in so equal values
// in different columns (a phone that is also typed into a note) cannot be
// linked. Normalise first (NormalizeIDNumber, NormalizePhone): the index only
// matches byte-identical input. Field names are fixed identifiers without ':'.
func (k *Keys) BlindIndex(field, normalized string) string {
	mac := hmac.New(sha256.New, k.indexKey)
	mac.Write([]byte(field))
	mac.Write([]byte{':'})
	mac.Write([]byte(normalized))
	return hex.EncodeToString(mac.Sum(nil))
}

func decodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		// Operators often paste URL-safe base64 from other tools.
		b, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: not base64", ErrInvalidKey)
	}
	if len(b) != keySize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrInvalidKey, len(b), keySize)
	}
	if reason := weakKeyReason(b); reason != "" {
		return nil, fmt.Errorf("%w: %s; generate one with GenerateKey", ErrInvalidKey, reason)
	}
	return b, nil
}

// weakKeyReason catches keys a person typed rather than generated. Each test
// has a negligible chance (< 1e-13) of rejecting a truly random key.
func weakKeyReason(b []byte) string {
	constantStep := true
	for i := 2; i < len(b); i++ {
		if b[i]-b[i-1] != b[1]-b[0] {
			constantStep = false
			break
		}
	}
	if constantStep {
		return "all zero, repeated or sequential bytes"
	}
	distinct := map[byte]struct{}{}
	printable := true
	for _, c := range b {
		distinct[c] = struct{}{}
		if c < 0x20 || c > 0x7e {
			printable = false
		}
	}
	if len(distinct) < 12 {
		return "too few distinct bytes"
	}
	if printable {
		return "looks like text (a passphrase), not random bytes"
	}
	return ""
}
