package aeszip

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"hash"
)

// WinZip AE-x parameters for AES-256 (AE-x sections III.2, III.5, V.3).
const (
	saltLen       = 16 // for a 256-bit key
	verifierLen   = 2
	authLen       = 10 // HMAC-SHA1 truncated to 80 bits
	keyLen        = 32
	kdfIterations = 1000
	// aesOverhead is what encryption adds to the compressed size.
	aesOverhead = saltLen + verifierLen + authLen
)

// keys holds what PBKDF2 yields for one entry: the first 32 bytes are the
// AES key, the next 32 the HMAC key and the last 2 the password verifier
// (AE-x section V.3).
type keys struct {
	aes, mac []byte
	verifier [verifierLen]byte
}

func deriveKeys(password string, salt []byte) (keys, error) {
	dk, err := pbkdf2SHA1([]byte(password), salt, kdfIterations, 2*keyLen+verifierLen)
	if err != nil {
		return keys{}, fmt.Errorf("deriving keys: %w", err)
	}
	k := keys{aes: dk[:keyLen], mac: dk[keyLen : 2*keyLen]}
	copy(k.verifier[:], dk[2*keyLen:])
	return k, nil
}

// ksBlocks is how many keystream blocks are computed at once: enough to
// amortise the loop, small enough to stay in L1.
const ksBlocks = 256

// ctrLE is AES in CTR mode as WinZip (Brian Gladman's fileenc.c) does it: the
// counter block is a little-endian integer, 1 for the first block. Gladman
// carries only across the first 8 bytes, which a 64-bit counter in bytes 0–7
// with bytes 8–15 zero reproduces for any length that can exist.
// crypto/cipher's CTR counts big-endian, so it cannot be used.
type ctrLE struct {
	block cipher.Block
	ctr   uint64
	ks    [ksBlocks * aes.BlockSize]byte
	pos   int                 // next unused byte of ks
	in    [aes.BlockSize]byte // a field, not a local: passed to an interface method it would escape
}

func newCTRLE(block cipher.Block) *ctrLE {
	c := &ctrLE{block: block}
	c.pos = len(c.ks)
	return c
}

func (c *ctrLE) refill() {
	for i := 0; i < len(c.ks); i += aes.BlockSize {
		c.ctr++
		binary.LittleEndian.PutUint64(c.in[:8], c.ctr)
		c.block.Encrypt(c.ks[i:i+aes.BlockSize], c.in[:])
	}
	c.pos = 0
}

// XORKeyStream XORs src with the next len(src) keystream bytes into dst,
// which must be at least as long; they may be the same slice.
func (c *ctrLE) XORKeyStream(dst, src []byte) {
	for len(src) > 0 {
		if c.pos == len(c.ks) {
			c.refill()
		}
		n := subtle.XORBytes(dst, src, c.ks[c.pos:])
		c.pos += n
		dst, src = dst[n:], src[n:]
	}
}

// encrypter is one entry's encryption state.
type encrypter struct {
	ctr *ctrLE
	mac hash.Hash
}

// newEncrypter draws a salt and returns the encrypter with the bytes that
// precede the encrypted data: the salt and the password verifier (AE-x
// section III.1).
func newEncrypter(password string) (*encrypter, []byte, error) {
	prefix := make([]byte, saltLen, saltLen+verifierLen)
	// A salt must never repeat under one password: with the counter always
	// starting at 1, two entries sharing a salt would share their keystream.
	if _, err := rand.Read(prefix); err != nil {
		return nil, nil, fmt.Errorf("drawing salt: %w", err)
	}
	k, err := deriveKeys(password, prefix)
	if err != nil {
		return nil, nil, err
	}
	block, err := aes.NewCipher(k.aes)
	if err != nil {
		return nil, nil, fmt.Errorf("AES key: %w", err)
	}
	e := &encrypter{ctr: newCTRLE(block), mac: hmac.New(sha1.New, k.mac)}
	return e, append(prefix, k.verifier[:]...), nil
}

// seal encrypts p into dst and authenticates the result: the MAC is over
// the encrypted data only (encrypt-then-MAC, AE-x section VI).
func (e *encrypter) seal(dst, p []byte) {
	e.ctr.XORKeyStream(dst, p)
	e.mac.Write(dst[:len(p)])
}

// authCode is the 10-byte authentication code that ends the entry's data.
func (e *encrypter) authCode() []byte {
	return e.mac.Sum(nil)[:authLen]
}
