//go:build amd64 && !purego

package aeszip

import "golang.org/x/sys/cpu"

//go:noescape
func sha1BlockSHANI(dig *[5]uint32, p []byte)

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
