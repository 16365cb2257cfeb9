package keyring

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func key(b byte) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, KeySize))
}

func TestParseRefusesBadRingsWithoutQuotingKeys(t *testing.T) {
	t.Parallel()
	secret := key(7)
	for _, tc := range []struct{ in, want string }{
		{"", "is empty"},
		{secret, "must be id:key"},
		{"Bad Id:" + secret, "key id must be"},
		{"k1:" + secret + ",k1:" + key(8), "listed twice"},
		{"k1:" + base64.StdEncoding.EncodeToString([]byte("short")), "must be 32 bytes"},
		{"k1:%%%", "must be 32 bytes"},
	} {
		_, err := Parse(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want an error saying %q", tc.in, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("Parse error quotes the key: %v", err)
		}
	}
}

func TestSealOpensOnlyForItsPurposeAndPlace(t *testing.T) {
	t.Parallel()
	k, err := Parse("k1:" + key(1))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := k.Seal("export-password", []byte("hunter2"), []byte("request-a"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "hunter2") || SealedWith(sealed) != "k1" {
		t.Fatalf("sealed = %q", sealed)
	}
	if got, err := k.Open("export-password", sealed, []byte("request-a")); err != nil || string(got) != "hunter2" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := k.Open("export-password", sealed, []byte("request-b")); !errors.Is(err, ErrOpen) {
		t.Errorf("opened under another request: %v", err)
	}
	if _, err := k.Open("link", sealed, []byte("request-a")); !errors.Is(err, ErrOpen) {
		t.Errorf("opened for another purpose: %v", err)
	}
	tampered := sealed[:len(sealed)-2] + "AA"
	if _, err := k.Open("export-password", tampered, []byte("request-a")); !errors.Is(err, ErrOpen) {
		t.Errorf("opened a tampered value: %v", err)
	}
}

func TestRotationKeepsOldValuesOpen(t *testing.T) {
	t.Parallel()
	old, _ := Parse("k1:" + key(1))
	sealed, _ := old.Seal("p", []byte("x"), nil)
	mac, _ := old.MAC("", "m", []byte("data"))

	rotated, err := Parse("k2:" + key(2) + ", k1:" + key(1))
	if err != nil {
		t.Fatal(err)
	}
	if rotated.Primary() != "k2" {
		t.Fatalf("primary = %s", rotated.Primary())
	}
	if got, err := rotated.Open("p", sealed, nil); err != nil || string(got) != "x" {
		t.Fatalf("old value after rotation: %q, %v", got, err)
	}
	if again, _ := rotated.MAC("k1", "m", []byte("data")); !Equal(mac, again) {
		t.Error("the old key's MAC changed")
	}
	resealed, _ := rotated.Seal("p", []byte("x"), nil)
	if SealedWith(resealed) != "k2" {
		t.Errorf("sealed with %s, want the primary k2", SealedWith(resealed))
	}

	dropped, _ := Parse("k2:" + key(2))
	if _, err := dropped.Open("p", sealed, nil); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("open with the key removed: %v, want ErrUnknownKey", err)
	}
}

func TestMACPartsCannotShift(t *testing.T) {
	t.Parallel()
	k := ForTest()
	a, _ := k.MAC("", "m", []byte("ab"), []byte("c"))
	b, _ := k.MAC("", "m", []byte("a"), []byte("bc"))
	c, _ := k.MAC("", "other", []byte("ab"), []byte("c"))
	if Equal(a, b) || Equal(a, c) {
		t.Error("MACs of shifted parts or other purposes are equal")
	}
}

func TestNewMakesAParseableEntry(t *testing.T) {
	t.Parallel()
	entry, err := New("2026-12")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(entry); err != nil {
		t.Fatalf("Parse(New()) = %v", err)
	}
	if _, err := New("Bad"); err == nil {
		t.Error("New accepted a bad id")
	}
}
