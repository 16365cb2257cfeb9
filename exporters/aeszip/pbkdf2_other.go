//go:build !amd64 || purego

package aeszip

// sha1Block is nil: the standard library's PBKDF2 is used.
var sha1Block func(*[5]uint32, []byte)

// pbkdf2Pair is nil: see sha1Block.
var pbkdf2Pair func(*[4][5]uint32, *[2][5]uint32, int)
