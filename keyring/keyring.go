// Package keyring holds the service's secret keys: the ones that encrypt
// secrets kept at rest (export passwords, presigned links) and key the MACs
// that a database dump alone cannot recompute (verification codes, audit
// anchors, link tokens).
//
// The keys come from the environment (DATARIGHTS_SECRET_KEY), never from a
// file or the database: a copy of the database without them reveals no
// password and cannot forge an anchor. Several keys may be listed for
// rotation; the first one seals and signs, every listed one opens and
// verifies what it made, found by the key id every sealed value carries.
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// EnvVar is the environment variable the keys are read from.
const EnvVar = "DATARIGHTS_SECRET_KEY"

// KeySize is the size of each key in bytes.
const KeySize = 32

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// Keyring is an ordered set of keys; the first is the primary one.
type Keyring struct {
	ids  []string
	keys map[string][]byte
}

// ErrUnknownKey says a sealed value or MAC names a key that is not in the
// ring (it was removed before everything it made was gone).
var ErrUnknownKey = errors.New("keyring: the value was made with a key that is not configured")

// ErrOpen says a sealed value did not decrypt: it was altered, or made for
// another purpose.
var ErrOpen = errors.New("keyring: the sealed value does not open")

// Parse reads a keyring written as comma-separated "id:key" entries, the
// key as 32 bytes in standard or URL-safe base64, e.g.
// "2026-12:3q2+7w…,2026-06:AAEC…". The first entry is the primary key.
// Errors never quote key material.
func Parse(s string) (*Keyring, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("%s is empty: set it to id:key (generate one with `datarights key new`)", EnvVar)
	}
	k := &Keyring{keys: map[string][]byte{}}
	for i, entry := range strings.Split(s, ",") {
		id, material, ok := strings.Cut(strings.TrimSpace(entry), ":")
		if !ok {
			return nil, fmt.Errorf("%s entry %d: must be id:key (e.g. 2026-12:<base64 of 32 bytes>)", EnvVar, i+1)
		}
		if !idRE.MatchString(id) {
			return nil, fmt.Errorf("%s entry %d: key id must be 1-32 lower-case letters, digits, - or _, starting with a letter or digit", EnvVar, i+1)
		}
		if _, dup := k.keys[id]; dup {
			return nil, fmt.Errorf("%s entry %d: key id %q is listed twice", EnvVar, i+1, id)
		}
		key, err := decodeKey(material)
		if err != nil || len(key) != KeySize {
			return nil, fmt.Errorf("%s entry %d (key %q): the key must be %d bytes in base64", EnvVar, i+1, id, KeySize)
		}
		k.ids = append(k.ids, id)
		k.keys[id] = key
	}
	return k, nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// New returns a fresh random key entry, "id:key", to put in EnvVar.
func New(id string) (string, error) {
	if !idRE.MatchString(id) {
		return "", fmt.Errorf("key id must be 1-32 lower-case letters, digits, - or _, starting with a letter or digit")
	}
	var key [KeySize]byte
	if _, err := rand.Read(key[:]); err != nil {
		return "", err
	}
	return id + ":" + base64.StdEncoding.EncodeToString(key[:]), nil
}

// ForTest returns a keyring with one fixed key, for tests.
func ForTest() *Keyring {
	k, err := Parse("test:" + base64.StdEncoding.EncodeToString(make([]byte, KeySize)))
	if err != nil {
		panic(err)
	}
	return k
}

// Primary returns the id of the key that seals and signs.
func (k *Keyring) Primary() string { return k.ids[0] }

// IDs returns the ids of every key, primary first.
func (k *Keyring) IDs() []string { return append([]string(nil), k.ids...) }

// subkey derives the key for one purpose from a master key, so that a value
// made for one purpose never passes for another's.
func (k *Keyring) subkey(id, purpose string) ([]byte, error) {
	master, ok := k.keys[id]
	if !ok {
		return nil, ErrUnknownKey
	}
	return hkdf.Key(sha256.New, master, nil, "datarights/"+purpose, KeySize)
}

// Seal encrypts plaintext for purpose with the primary key (AES-256-GCM).
// aad binds the value to where it is kept (e.g. the request id), so a
// sealed value copied to another row does not open there. The result is
// "<key id>:<base64>", safe to store as text.
func (k *Keyring) Seal(purpose string, plaintext, aad []byte) (string, error) {
	id := k.Primary()
	aead, err := k.aead(id, purpose)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	sealed := aead.Seal(nonce, nonce, plaintext, aad)
	return id + ":" + base64.RawStdEncoding.EncodeToString(sealed), nil
}

// Open decrypts what Seal made for the same purpose and aad.
func (k *Keyring) Open(purpose, sealed string, aad []byte) ([]byte, error) {
	id, body, ok := strings.Cut(sealed, ":")
	if !ok {
		return nil, ErrOpen
	}
	aead, err := k.aead(id, purpose)
	if err != nil {
		return nil, err
	}
	raw, err := base64.RawStdEncoding.DecodeString(body)
	if err != nil || len(raw) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrOpen
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

// SealedWith returns the key id a sealed value names.
func SealedWith(sealed string) string {
	id, _, _ := strings.Cut(sealed, ":")
	return id
}

func (k *Keyring) aead(id, purpose string) (cipher.AEAD, error) {
	key, err := k.subkey(id, "seal/"+purpose)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// MAC returns the HMAC-SHA256 of data for purpose under the key id, or the
// primary key when id is "". Each part of data is length-prefixed, so parts
// cannot be shifted from one into the next.
func (k *Keyring) MAC(id, purpose string, data ...[]byte) ([]byte, error) {
	if id == "" {
		id = k.Primary()
	}
	key, err := k.subkey(id, "mac/"+purpose)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, key)
	for _, part := range data {
		var n [8]byte
		for i, l := 0, uint64(len(part)); i < 8; i++ {
			n[7-i] = byte(l >> (8 * i))
		}
		mac.Write(n[:])
		mac.Write(part)
	}
	return mac.Sum(nil), nil
}

// Equal compares two MACs in constant time.
func Equal(a, b []byte) bool { return hmac.Equal(a, b) }
