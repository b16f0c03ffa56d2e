package pii

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func testKeys(t *testing.T) *Keys {
	t.Helper()
	k, err := NewKeys(GenerateKey(), GenerateKey())
	if err != nil {
		t.Fatalf("NewKeys with generated keys: %v", err)
	}
	return k
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestNewKeysRefusesBadConfiguration(t *testing.T) {
	good := GenerateKey()
	seq := make([]byte, 32)
	for i := range seq {
		seq[i] = byte(i)
	}
	tests := []struct {
		name     string
		enc, idx string
		wantErr  bool
	}{
		{"two generated keys", good, GenerateKey(), false},
		{"url-safe unpadded key accepted", base64.RawURLEncoding.EncodeToString(mustDecode(t, good)), GenerateKey(), false},
		{"surrounding whitespace from env files", " " + good + "\n", GenerateKey(), false},
		{"empty", "", good, true},
		{"not base64", "not a key!!", good, true},
		{"16 bytes is AES-128, not 256", b64(make([]byte, 16)), good, true},
		{"all zero", b64(make([]byte, 32)), good, true},
		{"repeated byte", b64([]byte(strings.Repeat("\x07", 32))), good, true},
		{"counting sequence", b64(seq), good, true},
		{"passphrase", b64([]byte("my-super-secret-key-for-qjmz-pii")), good, true},
		{"weak index key", good, b64(make([]byte, 32)), true},
		{"same key for both purposes", good, good, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := NewKeys(tt.enc, tt.idx)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidKey) {
					t.Fatalf("err = %v, want ErrInvalidKey", err)
				}
				return
			}
			if err != nil || k == nil {
				t.Fatalf("NewKeys: %v", err)
			}
		})
	}
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKeysNeverPrintKeyMaterial(t *testing.T) {
	enc := GenerateKey()
	k, err := NewKeys(enc, GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{fmt.Sprint(k), fmt.Sprintf("%+v", k), fmt.Sprintf("%#v", k)} {
		if strings.Contains(out, enc) || !strings.Contains(out, "REDACTED") {
			t.Errorf("printing Keys gave %q, want a redacted placeholder", out)
		}
	}
}

func TestEncryptDecryptRoundTrip(t *testing.T) {
	k := testKeys(t)
	for _, plain := range []string{"张三", "500114199001011234", "13800000000", "", "买买提·艾力"} {
		ct, err := k.Encrypt(plain, "beneficiary.name")
		if err != nil {
			t.Fatalf("Encrypt(%q): %v", plain, err)
		}
		if !strings.HasPrefix(ct, "v1:") {
			t.Errorf("ciphertext %q lacks the v1: version prefix", ct)
		}
		if plain != "" && strings.Contains(ct, plain) {
			t.Errorf("ciphertext %q contains the plaintext", ct)
		}
		got, err := k.Decrypt(ct, "beneficiary.name")
		if err != nil || got != plain {
			t.Errorf("Decrypt = %q, %v; want %q", got, err, plain)
		}
	}
}

func TestEncryptIsRandomized(t *testing.T) {
	k := testKeys(t)
	a, _ := k.Encrypt("500114199001011234", "beneficiary.id_number")
	b, _ := k.Encrypt("500114199001011234", "beneficiary.id_number")
	if a == b {
		t.Fatal("two encryptions of the same ID number are equal; equal ciphertexts reveal who is the same person")
	}
}

func TestEncryptRequiresField(t *testing.T) {
	if _, err := testKeys(t).Encrypt("张三", ""); err == nil {
		t.Fatal("Encrypt with no field name succeeded; ciphertexts could then be moved between columns")
	}
}

func TestDecryptRejects(t *testing.T) {
	k := testKeys(t)
	const field = "beneficiary.phone"
	ct, err := k.Encrypt("13800000000", field)
	if err != nil {
		t.Fatal(err)
	}
	raw := mustDecode(t, strings.TrimPrefix(ct, "v1:"))
	flip := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x01
		return "v1:" + b64(b)
	}
	other := testKeys(t)
	tests := []struct {
		name  string
		keys  *Keys
		ct    string
		field string
	}{
		{"flipped nonce byte", k, flip(0), field},
		{"flipped ciphertext byte", k, flip(12), field},
		{"flipped tag byte", k, flip(len(raw) - 1), field},
		{"moved to another column", k, ct, "beneficiary.name"},
		{"another key", other, ct, field},
		{"unknown version", k, "v2:" + strings.TrimPrefix(ct, "v1:"), field},
		{"no version", k, strings.TrimPrefix(ct, "v1:"), field},
		{"bad base64", k, "v1:%%%", field},
		{"truncated", k, "v1:" + b64(raw[:20]), field},
		{"plaintext left in the column", k, "13800000000", field},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.keys.Decrypt(tt.ct, tt.field)
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("Decrypt = %q, %v; want ErrDecrypt", got, err)
			}
			if strings.Contains(err.Error(), "13800000000") {
				t.Errorf("error %q leaks the phone number", err)
			}
		})
	}
}

func TestBlindIndex(t *testing.T) {
	k := testKeys(t)
	id := "500114199001011234"
	a := k.BlindIndex("beneficiary.id_number", id)
	if len(a) != 64 {
		t.Errorf("index %q is not 64 hex characters", a)
	}
	if b := k.BlindIndex("beneficiary.id_number", id); a != b {
		t.Errorf("index not stable: %q then %q; lookups would miss", a, b)
	}
	if k.BlindIndex("beneficiary.id_number", "500114199001011242") == a {
		t.Error("different ID numbers share an index; de-duplication would merge two people")
	}
	if k.BlindIndex("user.phone", id) == a {
		t.Error("same value in different fields gives the same index; columns could be linked")
	}
	if strings.Contains(a, id) {
		t.Error("index contains the ID number")
	}
	other := testKeys(t)
	if other.BlindIndex("beneficiary.id_number", id) == a {
		t.Error("index does not depend on the key; anyone could precompute it")
	}
}
