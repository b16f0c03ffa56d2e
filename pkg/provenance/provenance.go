// Package provenance signs and verifies the provenance record of every piece
// of evidence media: who uploaded it, its hashes, and when and where the
// server, the client and the file itself say it was taken.
//
// The server signs each record with an Ed25519 key from configuration at the
// moment it receives the upload. Anyone holding the published public key can
// later show that a photo or video in a bulletin or settlement is the one that
// was received, unchanged, with the stated time and place — even if the
// database has since been edited. The signature covers the exact payload
// bytes, so a payload is stored and published verbatim, never re-encoded.
package provenance

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Sentinel errors. Compare with errors.Is.
var (
	ErrBadSignature  = errors.New("provenance signature does not verify")
	ErrInvalidRecord = errors.New("invalid provenance record")
	ErrInvalidSeed   = errors.New("invalid provenance signing seed")
)

// RecordVersion is the payload format Sign writes. A change to the fields or
// their meaning needs a new version so old signatures stay verifiable.
const RecordVersion = 1

// Record is what the server attests about one uploaded file. Field order is
// the JSON order, and there are no maps, so encoding/json produces the same
// bytes for the same record every time. Absent optional values are encoded as
// null rather than omitted, so every payload has the same shape.
type Record struct {
	Version  int    `json:"version"`
	UploadID string `json:"upload_id"`
	// Uploader is the internal user id, never a WeChat openid.
	Uploader string `json:"uploader"`
	// SHA256 is lowercase hex of the original bytes as received.
	SHA256 string `json:"sha256"`
	// PHash is the 64-bit perceptual hash as 16 lowercase hex digits; empty
	// when none was computed (e.g. a video without a usable frame).
	PHash string `json:"phash"`
	Kind  string `json:"kind"`
	Size  int64  `json:"size"`
	// ServerTime is when the server received the file; the one time the
	// uploader cannot influence.
	ServerTime time.Time `json:"server_time"`
	// Client-reported location and its accuracy radius in metres.
	ClientLat       *float64 `json:"client_lat"`
	ClientLng       *float64 `json:"client_lng"`
	ClientAccuracyM *float64 `json:"client_accuracy_m"`
	// Capture time and GPS read from EXIF or MP4 metadata, if present.
	CaptureTime *time.Time `json:"capture_time"`
	FileLat     *float64   `json:"file_lat"`
	FileLng     *float64   `json:"file_lng"`
}

// Media kinds.
const (
	KindImage = "image"
	KindVideo = "video"
)

// Signer signs provenance records with the server's Ed25519 key.
type Signer struct {
	key ed25519.PrivateKey
}

// NewSigner builds a Signer from a base64-encoded 32-byte Ed25519 seed (see
// GenerateSeed). Obviously hand-made seeds are refused: a signature from a
// guessable key proves nothing.
func NewSigner(seedB64 string) (*Signer, error) {
	s := strings.TrimSpace(seedB64)
	seed, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		// Operators often paste URL-safe base64 from other tools.
		seed, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: not base64", ErrInvalidSeed)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrInvalidSeed, len(seed), ed25519.SeedSize)
	}
	if weakSeed(seed) {
		return nil, fmt.Errorf("%w: looks hand-made, generate one with GenerateSeed", ErrInvalidSeed)
	}
	return &Signer{key: ed25519.NewKeyFromSeed(seed)}, nil
}

// GenerateSeed returns base64 of a fresh random 32-byte seed for NewSigner.
func GenerateSeed() string {
	seed := make([]byte, ed25519.SeedSize)
	// crypto/rand.Read never fails on supported platforms (Go ≥ 1.24 aborts
	// the program instead), so there is no error to handle.
	_, _ = rand.Read(seed)
	return base64.StdEncoding.EncodeToString(seed)
}

// String keeps the private key out of logs.
func (s *Signer) String() string { return "provenance.Signer{key_id=" + s.KeyID() + "}" }

// GoString keeps the private key out of %#v output.
func (s *Signer) GoString() string { return s.String() }

// PublicKey returns the key verifiers need.
func (s *Signer) PublicKey() ed25519.PublicKey {
	return s.key.Public().(ed25519.PublicKey)
}

// KeyID names the signing key; store it beside each signature so records stay
// verifiable after the key is rotated.
func (s *Signer) KeyID() string { return KeyIDOf(s.PublicKey()) }

// KeyIDOf returns the key id of a public key: the first 8 bytes of its
// SHA-256, in hex. Verifiers use it to pick the right published key.
func KeyIDOf(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Sign validates r, fills in the version if unset, normalises times to UTC,
// and returns the canonical JSON payload and its Ed25519 signature. Store both
// verbatim: the signature is over these exact bytes.
func (s *Signer) Sign(r Record) (payload, signature []byte, err error) {
	if r.Version == 0 {
		r.Version = RecordVersion
	}
	r.ServerTime = r.ServerTime.UTC()
	if r.CaptureTime != nil {
		t := r.CaptureTime.UTC()
		r.CaptureTime = &t
	}
	if err := r.validate(); err != nil {
		return nil, nil, err
	}
	payload, err = canonical(r)
	if err != nil {
		return nil, nil, err
	}
	return payload, ed25519.Sign(s.key, payload), nil
}

// Verify checks signature over payload with pub and returns the record it
// attests. Any failure to verify, including a malformed key or signature, is
// ErrBadSignature; a correctly signed payload that is not a valid record is
// ErrInvalidRecord.
func Verify(pub ed25519.PublicKey, payload, signature []byte) (Record, error) {
	// ed25519.Verify panics on a public key of the wrong length.
	if len(pub) != ed25519.PublicKeySize || len(signature) != ed25519.SignatureSize {
		return Record{}, fmt.Errorf("%w: malformed key or signature", ErrBadSignature)
	}
	if !ed25519.Verify(pub, payload, signature) {
		return Record{}, ErrBadSignature
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	if err := r.validate(); err != nil {
		return Record{}, err
	}
	return r, nil
}

// PublicKeyPEM encodes pub as a PKIX "PUBLIC KEY" PEM block, the form
// openssl and most libraries read, for publishing at a well-known endpoint.
// It returns "" for a key of the wrong length.
func PublicKeyPEM(pub ed25519.PublicKey) string {
	if len(pub) != ed25519.PublicKeySize {
		return ""
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// ParsePublicKeyPEM reads a key published by PublicKeyPEM, so verifiers can
// work from the published text alone.
func ParsePublicKeyPEM(s string) (ed25519.PublicKey, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("provenance: no PUBLIC KEY PEM block")
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("provenance: parse public key: %w", err)
	}
	pub, ok := key.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("provenance: public key is %T, want Ed25519", key)
	}
	return pub, nil
}

func canonical(r Record) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Keep '<', '>' and '&' literal so other languages' encoders agree.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("%w: encode: %w", ErrInvalidRecord, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// validate refuses records that would be signed nonsense. Signing is an
// attestation; a record with an impossible coordinate or a malformed hash
// points at a bug upstream and must not be made to look authoritative.
func (r Record) validate() error {
	invalid := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidRecord}, a...)...)
	}
	switch {
	case r.Version != RecordVersion:
		return invalid("unsupported version %d", r.Version)
	case r.UploadID == "":
		return invalid("upload_id is required")
	case r.Uploader == "":
		return invalid("uploader is required")
	case !isLowerHex(r.SHA256, 64):
		return invalid("sha256 must be 64 lowercase hex digits")
	case r.PHash != "" && !isLowerHex(r.PHash, 16):
		return invalid("phash must be 16 lowercase hex digits")
	case r.Kind != KindImage && r.Kind != KindVideo:
		return invalid("kind %q is not image or video", r.Kind)
	case r.Size <= 0:
		return invalid("size must be positive")
	case r.ServerTime.IsZero():
		return invalid("server_time is required")
	case r.CaptureTime != nil && r.CaptureTime.IsZero():
		return invalid("capture_time is zero; leave it nil when unknown")
	}
	if err := checkPoint("client", r.ClientLat, r.ClientLng); err != nil {
		return err
	}
	if err := checkPoint("file", r.FileLat, r.FileLng); err != nil {
		return err
	}
	if a := r.ClientAccuracyM; a != nil && (!finite(*a) || *a < 0) {
		return invalid("client_accuracy_m must be a finite non-negative number")
	}
	return nil
}

func checkPoint(which string, lat, lng *float64) error {
	if (lat == nil) != (lng == nil) {
		return fmt.Errorf("%w: %s latitude and longitude must both be set or both be absent", ErrInvalidRecord, which)
	}
	if lat == nil {
		return nil
	}
	if !finite(*lat) || !finite(*lng) || math.Abs(*lat) > 90 || math.Abs(*lng) > 180 {
		return fmt.Errorf("%w: %s coordinates out of range", ErrInvalidRecord, which)
	}
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// weakSeed catches seeds a person typed rather than generated: constant or
// counting bytes, or printable text. A random seed trips this with
// negligible probability (< 1e-13).
func weakSeed(b []byte) bool {
	constantStep, printable := true, true
	for i, c := range b {
		if i >= 2 && c-b[i-1] != b[1]-b[0] {
			constantStep = false
		}
		if c < 0x20 || c > 0x7e {
			printable = false
		}
	}
	return constantStep || printable
}
