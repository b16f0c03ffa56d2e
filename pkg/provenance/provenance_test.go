package provenance

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

func testSigner(t *testing.T) *Signer {
	t.Helper()
	s, err := NewSigner(GenerateSeed())
	if err != nil {
		t.Fatalf("NewSigner with a generated seed: %v", err)
	}
	return s
}

// sampleRecord is a photo taken in Qianjiang, with every optional field set.
func sampleRecord() Record {
	shanghai := time.FixedZone("CST", 8*60*60)
	return Record{
		UploadID:        "01J9Z8Q4K2M5N7P9R1S3T5V7X9",
		Uploader:        "u_1024",
		SHA256:          strings.Repeat("ab", 32),
		PHash:           "f0e1d2c3b4a59687",
		Kind:            KindImage,
		Size:            2_345_678,
		ServerTime:      time.Date(2025, 5, 20, 10, 30, 0, 123456789, shanghai),
		ClientLat:       ptr(29.5332),
		ClientLng:       ptr(108.7707),
		ClientAccuracyM: ptr(15.0),
		CaptureTime:     ptr(time.Date(2025, 5, 20, 10, 28, 41, 0, shanghai)),
		FileLat:         ptr(29.53318),
		FileLng:         ptr(108.77071),
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	s := testSigner(t)
	minimal := sampleRecord()
	minimal.PHash, minimal.Kind = "", KindVideo
	minimal.ClientLat, minimal.ClientLng, minimal.ClientAccuracyM = nil, nil, nil
	minimal.CaptureTime, minimal.FileLat, minimal.FileLng = nil, nil, nil
	for name, rec := range map[string]Record{"all fields": sampleRecord(), "video without metadata": minimal} {
		t.Run(name, func(t *testing.T) {
			payload, sig, err := s.Sign(rec)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			got, err := Verify(s.PublicKey(), payload, sig)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.Version != RecordVersion {
				t.Errorf("version = %d, want %d", got.Version, RecordVersion)
			}
			if !got.ServerTime.Equal(rec.ServerTime) || got.ServerTime.Location() != time.UTC {
				t.Errorf("server time = %v, want %v in UTC", got.ServerTime, rec.ServerTime)
			}
			if got.SHA256 != rec.SHA256 || got.UploadID != rec.UploadID || got.Uploader != rec.Uploader || got.Size != rec.Size {
				t.Errorf("verified record %+v differs from signed %+v", got, rec)
			}
			if (rec.ClientLat == nil) != (got.ClientLat == nil) || (rec.ClientLat != nil && *got.ClientLat != *rec.ClientLat) {
				t.Errorf("client latitude lost: got %v", got.ClientLat)
			}
			if (rec.CaptureTime == nil) != (got.CaptureTime == nil) || (rec.CaptureTime != nil && !got.CaptureTime.Equal(*rec.CaptureTime)) {
				t.Errorf("capture time lost: got %v", got.CaptureTime)
			}
		})
	}
}

func TestPayloadIsCanonical(t *testing.T) {
	s := testSigner(t)
	p1, sig1, err := s.Sign(sampleRecord())
	if err != nil {
		t.Fatal(err)
	}
	p2, sig2, _ := s.Sign(sampleRecord())
	if !bytes.Equal(p1, p2) || !bytes.Equal(sig1, sig2) {
		t.Fatal("signing the same record twice gave different bytes; signatures would not be reproducible")
	}
	// The same instants given in UTC must sign identically to local times.
	utc := sampleRecord()
	utc.ServerTime = utc.ServerTime.UTC()
	utc.CaptureTime = ptr(utc.CaptureTime.UTC())
	if p3, _, _ := s.Sign(utc); !bytes.Equal(p1, p3) {
		t.Errorf("time zone changed the payload:\n%s\n%s", p1, p3)
	}
	want := `{"version":1,"upload_id":"01J9Z8Q4K2M5N7P9R1S3T5V7X9","uploader":"u_1024",` +
		`"sha256":"` + strings.Repeat("ab", 32) + `","phash":"f0e1d2c3b4a59687","kind":"image","size":2345678,` +
		`"server_time":"2025-05-20T02:30:00.123456789Z","client_lat":29.5332,"client_lng":108.7707,` +
		`"client_accuracy_m":15,"capture_time":"2025-05-20T02:28:41Z","file_lat":29.53318,"file_lng":108.77071}`
	if string(p1) != want {
		t.Errorf("payload\n%s\nwant (published verifiers depend on this exact form)\n%s", p1, want)
	}
}

func TestVerifyRejectsTampering(t *testing.T) {
	s := testSigner(t)
	payload, sig, err := s.Sign(sampleRecord())
	if err != nil {
		t.Fatal(err)
	}
	replace := func(old, new string) []byte {
		if !bytes.Contains(payload, []byte(old)) {
			t.Fatalf("payload lacks %q", old)
		}
		return bytes.Replace(payload, []byte(old), []byte(new), 1)
	}
	otherSigner := testSigner(t)
	_, otherSig, _ := otherSigner.Sign(sampleRecord())
	flipped := append([]byte(nil), sig...)
	flipped[10] ^= 0x01
	tests := []struct {
		name    string
		pub     ed25519.PublicKey
		payload []byte
		sig     []byte
	}{
		{"file hash swapped for a reused photo", s.PublicKey(), replace(`"sha256":"abab`, `"sha256":"cdab`), sig},
		{"server time moved a day", s.PublicKey(), replace("2025-05-20T02:30", "2025-05-21T02:30"), sig},
		{"location moved", s.PublicKey(), replace("29.5332,", "29.6332,"), sig},
		{"uploader changed", s.PublicKey(), replace("u_1024", "u_1025"), sig},
		{"whitespace added", s.PublicKey(), append(append([]byte(nil), payload...), ' '), sig},
		{"flipped signature bit", s.PublicKey(), payload, flipped},
		{"signed by another key", s.PublicKey(), payload, otherSig},
		{"verified with another key", otherSigner.PublicKey(), payload, sig},
		{"truncated signature", s.PublicKey(), payload, sig[:40]},
		{"no signature", s.PublicKey(), payload, nil},
		{"malformed public key", ed25519.PublicKey([]byte("short")), payload, sig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Verify(tt.pub, tt.payload, tt.sig); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("Verify err = %v, want ErrBadSignature", err)
			}
		})
	}
}

func TestSignRefusesInvalidRecords(t *testing.T) {
	s := testSigner(t)
	tests := []struct {
		name   string
		change func(*Record)
	}{
		{"future version", func(r *Record) { r.Version = 2 }},
		{"no upload id", func(r *Record) { r.UploadID = "" }},
		{"no uploader", func(r *Record) { r.Uploader = "" }},
		{"short sha256", func(r *Record) { r.SHA256 = "abc" }},
		{"upper-case sha256", func(r *Record) { r.SHA256 = strings.Repeat("AB", 32) }},
		{"phash not 16 hex", func(r *Record) { r.PHash = "xyz" }},
		{"unknown kind", func(r *Record) { r.Kind = "audio" }},
		{"empty file", func(r *Record) { r.Size = 0 }},
		{"no server time", func(r *Record) { r.ServerTime = time.Time{} }},
		{"zero capture time", func(r *Record) { r.CaptureTime = &time.Time{} }},
		{"latitude without longitude", func(r *Record) { r.ClientLng = nil }},
		{"latitude beyond the pole", func(r *Record) { r.FileLat = ptr(91.0) }},
		{"NaN longitude", func(r *Record) { r.ClientLng = ptr(math.NaN()) }},
		{"negative accuracy", func(r *Record) { r.ClientAccuracyM = ptr(-1.0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sampleRecord()
			tt.change(&r)
			payload, sig, err := s.Sign(r)
			if !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("Sign err = %v, want ErrInvalidRecord", err)
			}
			if payload != nil || sig != nil {
				t.Error("an invalid record still produced a signature")
			}
		})
	}
}

func TestVerifyRejectsSignedGarbage(t *testing.T) {
	// A key that signed something other than a record must not make that
	// thing pass as one.
	s := testSigner(t)
	for _, payload := range []string{`{"version":1,"extra":true}`, `not json`, `{"version":2}`} {
		sig := ed25519.Sign(s.key, []byte(payload))
		if _, err := Verify(s.PublicKey(), []byte(payload), sig); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("Verify(%s) err = %v, want ErrInvalidRecord", payload, err)
		}
	}
}

func TestNewSigner(t *testing.T) {
	seed := GenerateSeed()
	raw, _ := base64.StdEncoding.DecodeString(seed)
	seq := make([]byte, 32)
	for i := range seq {
		seq[i] = byte(i)
	}
	tests := []struct {
		name    string
		seed    string
		wantErr bool
	}{
		{"generated", seed, false},
		{"url-safe unpadded", base64.RawURLEncoding.EncodeToString(raw), false},
		{"trailing newline from a secret file", seed + "\n", false},
		{"empty", "", true},
		{"not base64", "seed!!", true},
		{"64-byte private key instead of seed", base64.StdEncoding.EncodeToString(make([]byte, 64)), true},
		{"all zero", base64.StdEncoding.EncodeToString(make([]byte, 32)), true},
		{"counting bytes", base64.StdEncoding.EncodeToString(seq), true},
		{"passphrase", base64.StdEncoding.EncodeToString([]byte("qianjiang-provenance-signing-key")), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSigner(tt.seed)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidSeed) {
					t.Fatalf("err = %v, want ErrInvalidSeed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewSigner: %v", err)
			}
			if !bytes.Equal(s.PublicKey(), ed25519.NewKeyFromSeed(raw).Public().(ed25519.PublicKey)) {
				t.Error("public key does not come from the configured seed; restarts would change the key")
			}
		})
	}
}

func TestKeyPublication(t *testing.T) {
	s := testSigner(t)
	pemText := PublicKeyPEM(s.PublicKey())
	if !strings.HasPrefix(pemText, "-----BEGIN PUBLIC KEY-----\n") {
		t.Fatalf("PEM = %q, want a PUBLIC KEY block", pemText)
	}
	pub, err := ParsePublicKeyPEM(pemText)
	if err != nil {
		t.Fatalf("ParsePublicKeyPEM: %v", err)
	}
	payload, sig, _ := s.Sign(sampleRecord())
	if _, err := Verify(pub, payload, sig); err != nil {
		t.Errorf("a verifier using only the published PEM cannot verify: %v", err)
	}
	if PublicKeyPEM(ed25519.PublicKey("short")) != "" {
		t.Error("PEM of a malformed key is not empty")
	}
	if _, err := ParsePublicKeyPEM("garbage"); err == nil {
		t.Error("ParsePublicKeyPEM accepted garbage")
	}

	id := s.KeyID()
	if len(id) != 16 || id != KeyIDOf(pub) {
		t.Errorf("KeyID = %q, KeyIDOf(published) = %q; want the same 16 hex digits", id, KeyIDOf(pub))
	}
	if testSigner(t).KeyID() == id {
		t.Error("two keys share a key id; rotated records could not find their key")
	}
	seed := GenerateSeed()
	known, err := NewSigner(seed)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(seed)
	for _, out := range []string{fmt.Sprint(known), fmt.Sprintf("%+v", known), fmt.Sprintf("%#v", known)} {
		if !strings.Contains(out, known.KeyID()) || strings.Contains(out, seed) || strings.Contains(out, fmt.Sprint(raw[:4])) { //nolint:staticcheck // the raw key bytes as %v would print them
			t.Errorf("printing Signer gave %q; want only the key id", out)
		}
	}
}
