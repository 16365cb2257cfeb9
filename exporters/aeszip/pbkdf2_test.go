package aeszip

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/sha1"
	"encoding/binary"
	"math/bits"
	mrand "math/rand/v2"
	"testing"
)

// TestFastPBKDF2MatchesReference compares pbkdf2SHA1 (with the processor's
// SHA extensions where it has them) and its loop run on a plain Go SHA-1
// compression with the reference PBKDF2, for passwords shorter and longer
// than HMAC's block, salts of any length and several output lengths.
func TestFastPBKDF2MatchesReference(t *testing.T) {
	t.Parallel()
	if sha1Block == nil {
		t.Log("no SHA extensions here: pbkdf2SHA1 is crypto/pbkdf2; the loop is checked with Go's compression only")
	}
	r := mrand.New(mrand.NewPCG(1, 2))
	for i := range 60 {
		password := make([]byte, r.IntN(150))
		salt := make([]byte, r.IntN(40))
		for _, b := range [][]byte{password, salt} {
			for j := range b {
				b[j] = byte(r.Uint32())
			}
		}
		iter := 1 + r.IntN(50)
		if i%10 == 0 {
			iter = 1000
		}
		n := 1 + r.IntN(90)
		want := refPBKDF2(password, salt, iter, n)
		got, err := pbkdf2SHA1(password, salt, iter, n)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("pbkdf2SHA1(%d-byte password, %d-byte salt, %d, %d) differs from the reference", len(password), len(salt), iter, n)
		}
		if got := pbkdf2SHA1With(goSHA1Block, password, salt, iter, n); !bytes.Equal(got, want) {
			t.Fatalf("the loop on Go's compression (%d-byte password, %d-byte salt, %d, %d) differs from the reference", len(password), len(salt), iter, n)
		}
	}
}

// goSHA1Block is SHA-1's compression (FIPS 180-4, 6.1.2) in plain Go.
func goSHA1Block(h *[5]uint32, p []byte) {
	for ; len(p) >= 64; p = p[64:] {
		var w [80]uint32
		for i := range 16 {
			w[i] = binary.BigEndian.Uint32(p[4*i:])
		}
		for i := 16; i < 80; i++ {
			w[i] = bits.RotateLeft32(w[i-3]^w[i-8]^w[i-14]^w[i-16], 1)
		}
		a, b, c, d, e := h[0], h[1], h[2], h[3], h[4]
		for i := range 80 {
			var f, k uint32
			switch {
			case i < 20:
				f, k = b&c|^b&d, 0x5A827999
			case i < 40:
				f, k = b^c^d, 0x6ED9EBA1
			case i < 60:
				f, k = b&c|b&d|c&d, 0x8F1BBCDC
			default:
				f, k = b^c^d, 0xCA62C1D6
			}
			a, b, c, d, e = bits.RotateLeft32(a, 5)+f+e+k+w[i], a, bits.RotateLeft32(b, 30), c, d
		}
		h[0] += a
		h[1] += b
		h[2] += c
		h[3] += d
		h[4] += e
	}
}

// BenchmarkStdlibPBKDF2 is what deriveKeys cost before pbkdf2SHA1 (compare
// with BenchmarkDeriveKeys).
func BenchmarkStdlibPBKDF2(b *testing.B) {
	salt := []byte("0123456789abcdef")
	for b.Loop() {
		if _, err := pbkdf2.Key(sha1.New, "correct horse battery staple", salt, kdfIterations, 2*keyLen+verifierLen); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPBKDF2Loops compares the two SHA-extension loops on deriveKeys'
// input: one output block at a time (pbkdf2SHA1With) and two interleaved
// (pbkdf2SHA1Pairs, what pbkdf2SHA1 runs).
func BenchmarkPBKDF2Loops(b *testing.B) {
	if sha1Block == nil || pbkdf2Pair == nil {
		b.Skip("no SHA extensions here")
	}
	password, salt := []byte("correct horse battery staple"), []byte("0123456789abcdef")
	b.Run("single", func(b *testing.B) {
		for b.Loop() {
			pbkdf2SHA1With(sha1Block, password, salt, kdfIterations, 2*keyLen+verifierLen)
		}
	})
	b.Run("pairs", func(b *testing.B) {
		for b.Loop() {
			pbkdf2SHA1Pairs(sha1Block, pbkdf2Pair, password, salt, kdfIterations, 2*keyLen+verifierLen)
		}
	})
}
