//go:build amd64 && !purego

package aeszip

import "golang.org/x/sys/cpu"

//go:noescape
func sha1BlockSHANI(dig *[5]uint32, p []byte)

// pbkdf2SHA1PairSHANI runs n further PBKDF2 iterations of two output
// blocks at once, interleaved (sha1pbkdf2_amd64.s, generated from
// sha1BlockSHANI by gen_pbkdf2.py): st holds the HMAC key's inner and outer
// states and each block's U1; t receives each block's T. A SHA-1 round
// waits on the one before it, so one block alone leaves the processor's
// SHA unit idle half the time; the whole loop stays in registers, with no
// byte swapping between a digest and the next message.
//
//go:noescape
func pbkdf2SHA1PairSHANI(st *[4][5]uint32, t *[2][5]uint32, n int)

func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

// sha1Block is SHA-1's compression function on whole 64-byte blocks, with
// the SHA extensions, or nil where the processor has none.
var sha1Block = func() func(*[5]uint32, []byte) {
	if !cpu.X86.HasAVX || !cpu.X86.HasSSE41 || !cpu.X86.HasSSSE3 {
		return nil
	}
	if maxLeaf, _, _, _ := cpuid(0, 0); maxLeaf < 7 {
		return nil
	}
	if _, ebx, _, _ := cpuid(7, 0); ebx&(1<<29) == 0 {
		return nil
	}
	return sha1BlockSHANI
}()

// pbkdf2Pair is pbkdf2SHA1PairSHANI where the processor has the SHA
// extensions, else nil.
var pbkdf2Pair = func() func(*[4][5]uint32, *[2][5]uint32, int) {
	if sha1Block == nil {
		return nil
	}
	return pbkdf2SHA1PairSHANI
}()
