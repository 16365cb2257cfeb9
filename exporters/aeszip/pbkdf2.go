package aeszip

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"encoding/binary"
)

// Every entry of an archive needs its own salt, so its own PBKDF2 run:
// entries are encrypted with AES-CTR from the same counter, and two
// entries under one key would share a keystream (the XOR of their
// ciphertexts would be the XOR of their contents). With 1,000 iterations
// of HMAC-SHA1 over 66 bytes of key material, that is 8,000 SHA-1
// compressions per entry, and through crypto/pbkdf2 (a general HMAC that
// copies and pads a hash state per call) they took a third of a copy
// request's CPU. pbkdf2SHA1 computes the same function with nothing but
// the compressions: the HMAC key's inner and outer states are computed
// once, and each iteration pads its 20-byte input into a block prepared
// once and runs the processor's SHA extensions on it.
//
// Where the processor has no SHA extensions (or under the purego tag) it
// is crypto/pbkdf2. A test checks the two agree on RFC 6070's vectors and
// random inputs.
func pbkdf2SHA1(password, salt []byte, iterations, keyLen int) ([]byte, error) {
	block := sha1Block
	if block == nil || iterations < 1 {
		return pbkdf2.Key(sha1.New, string(password), salt, iterations, keyLen)
	}
	if pbkdf2Pair != nil {
		return pbkdf2SHA1Pairs(block, pbkdf2Pair, password, salt, iterations, keyLen), nil
	}
	return pbkdf2SHA1With(block, password, salt, iterations, keyLen), nil
}

// pbkdf2SHA1Pairs is pbkdf2SHA1With with the iterations of two output
// blocks run together by pair (an odd last block is run beside a copy of
// itself, which is thrown away).
func pbkdf2SHA1Pairs(block func(*[5]uint32, []byte), pair func(*[4][5]uint32, *[2][5]uint32, int),
	password, salt []byte, iterations, keyLen int) []byte {
	const size = sha1.Size
	var st [4][5]uint32
	st[0], st[1] = hmacStates(block, password)
	prf := hmac.New(sha1.New, password)
	blocks := (keyLen + size - 1) / size
	out := make([]byte, 0, (blocks+1)/2*2*size)
	var counter [4]byte
	var u [size]byte
	for n := 1; n <= blocks; n += 2 {
		for i := range 2 {
			// U1 = HMAC(password, salt || block number), the one input
			// of any length.
			binary.BigEndian.PutUint32(counter[:], uint32(min(n+i, blocks)))
			prf.Reset()
			prf.Write(salt)
			prf.Write(counter[:])
			prf.Sum(u[:0])
			for w := range 5 {
				st[2+i][w] = binary.BigEndian.Uint32(u[4*w:])
			}
		}
		var t [2][5]uint32
		pair(&st, &t, iterations-1)
		for i := range 2 {
			out = binary.BigEndian.AppendUint32(out, t[i][0])
			for _, w := range t[i][1:] {
				out = binary.BigEndian.AppendUint32(out, w)
			}
		}
	}
	return out[:keyLen]
}

// hmacStates returns SHA-1's state after the HMAC key's inner and outer
// pad: every HMAC of the key starts from one of them.
func hmacStates(block func(*[5]uint32, []byte), password []byte) (inner, outer [5]uint32) {
	const blockSize = sha1.BlockSize
	key := password
	if len(key) > blockSize {
		sum := sha1.Sum(key)
		key = sum[:]
	}
	var ipad, opad [blockSize]byte
	copy(ipad[:], key)
	copy(opad[:], key)
	for i := range ipad {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	inner, outer = sha1Init, sha1Init
	block(&inner, ipad[:])
	block(&outer, opad[:])
	return inner, outer
}

func pbkdf2SHA1With(block func(*[5]uint32, []byte), password, salt []byte, iterations, keyLen int) []byte {
	const size, blockSize = sha1.Size, sha1.BlockSize
	inner, outer := hmacStates(block, password)

	// The one block hashed after the key's: a 20-byte message, then
	// SHA-1's padding for a message of 64+20 bytes.
	var msg [blockSize]byte
	msg[size] = 0x80
	binary.BigEndian.PutUint64(msg[blockSize-8:], (blockSize+size)*8)

	// One state for every compression: block is called through a func
	// value, so whatever it is given escapes, and a state declared in
	// the loop would cost an allocation per compression.
	h := new([5]uint32)

	prf := hmac.New(sha1.New, password)
	out := make([]byte, 0, (keyLen+size-1)/size*size)
	var counter [4]byte
	for n := uint32(1); len(out) < keyLen; n++ {
		// U1 = HMAC(password, salt || n), the one input of any length.
		binary.BigEndian.PutUint32(counter[:], n)
		prf.Reset()
		prf.Write(salt)
		prf.Write(counter[:])
		var u [size]byte
		prf.Sum(u[:0])
		t := u
		for range iterations - 1 {
			copy(msg[:size], u[:])
			*h = inner
			block(h, msg[:])
			putWords(msg[:size], h)
			*h = outer
			block(h, msg[:])
			putWords(u[:], h)
			for i := range t {
				t[i] ^= u[i]
			}
		}
		out = append(out, t[:]...)
	}
	return out[:keyLen]
}

var sha1Init = [5]uint32{0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0}

func putWords(dst []byte, h *[5]uint32) {
	for i, w := range h {
		binary.BigEndian.PutUint32(dst[4*i:], w)
	}
}
