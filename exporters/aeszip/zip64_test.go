package aeszip

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"os"
	"strings"
	"testing"
)

// storedZeros is a raw DEFLATE stream of n zero bytes made of stored blocks
// (RFC 1951 section 3.2.4): it is as long as its content, so a real ZIP64
// entry and offsets past 4 GiB can be produced cheaply, and almost all of it
// is zeros that sparseFile turns into holes.
type storedZeros struct {
	left    int64 // content bytes not yet emitted
	inBlock int   // content bytes left in the current block
}

func (s *storedZeros) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if s.inBlock == 0 {
			if s.left == 0 {
				if n == 0 {
					return 0, io.EOF
				}
				return n, nil
			}
			if len(p)-n < 5 {
				return n, nil
			}
			l := int(min(s.left, 65535))
			final := byte(0)
			if s.left == int64(l) {
				final = 1
			}
			p[n] = final // BFINAL, BTYPE=00, rest of the byte is padding
			binary.LittleEndian.PutUint16(p[n+1:], uint16(l))
			binary.LittleEndian.PutUint16(p[n+3:], ^uint16(l))
			n += 5
			s.inBlock = l
			s.left -= int64(l)
			continue
		}
		k := min(s.inBlock, len(p)-n)
		clear(p[n : n+k])
		n += k
		s.inBlock -= k
	}
	return n, nil
}

// sparseFile writes runs of zeros as holes, so a >4 GiB archive that is
// mostly zeros takes little disk.
type sparseFile struct{ f *os.File }

func (s sparseFile) Write(p []byte) (int, error) {
	const minHole = 64 << 10
	i := 0
	for i < len(p) {
		// Find the next run of zeros of at least minHole bytes.
		j := i
		for j < len(p) && p[j] != 0 {
			j++
		}
		k := j
		for k+8 <= len(p) && binary.LittleEndian.Uint64(p[k:]) == 0 {
			k += 8
		}
		for k < len(p) && p[k] == 0 {
			k++
		}
		if k-j < minHole {
			if _, err := s.f.Write(p[i:k]); err != nil {
				return i, err
			}
		} else {
			if _, err := s.f.Write(p[i:j]); err != nil {
				return i, err
			}
			if _, err := s.f.Seek(int64(k-j), io.SeekCurrent); err != nil {
				return j, err
			}
		}
		i = k
	}
	return len(p), nil
}

func (s sparseFile) Seek(off int64, whence int) (int64, error) { return s.f.Seek(off, whence) }

func zeroCRC(n int64) uint32 {
	buf := make([]byte, 1<<20)
	var c uint32
	for n > 0 {
		k := min(n, int64(len(buf)))
		c = crc32.Update(c, crc32.IEEETable, buf[:k])
		n -= k
	}
	return c
}

const over4GiB = 1<<32 + 3<<20 // content size of the large entries

// TestZip64LargeArchive writes a plain archive with an entry whose
// compressed and uncompressed sizes both exceed 4 GiB, followed by an entry
// whose local header lies past 4 GiB, into a sparse file; 7-Zip and
// archive/zip must read it, and the patched local header must be ZIP64.
// The plain mode is used because encrypted bytes do not sparse; the ZIP64
// code is the same for both modes, and TestZip64EncryptedHugeContent covers
// AES.
func TestZip64LargeArchive(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("writes 4 GiB through the writer (sparse on disk)")
	}
	need7z(t)
	for _, mode := range []string{"seek", "descriptor"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			f := createFile(t, "big.zip")
			var dst io.Writer = sparseFile{f}
			if mode == "descriptor" {
				dst = streamOnly{dst}
			}
			zw := NewWriter(dst, "")
			if err := zw.AddDeflated("big.bin", testTime, &storedZeros{left: over4GiB}, zeroCRC(over4GiB), over4GiB); err != nil {
				t.Fatal(err)
			}
			w, err := zw.Create("after/4GiB.txt", testTime)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(w, "past the 4 GiB mark\n")
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}

			out := must7z(t, "t", f.Name())
			if !strings.Contains(out, "Everything is Ok") {
				t.Errorf("7z t:\n%s", out)
			}
			entries := sltEntries(must7z(t, "l", "-slt", f.Name()))
			if got := entries["big.bin"]["Size"]; got != "4298113024" {
				t.Errorf("7z: big.bin Size = %s", got)
			}

			zr := openZip(t, f.Name(), "")
			if len(zr.File) != 2 {
				t.Fatalf("%d entries", len(zr.File))
			}
			big, after := zr.File[0], zr.File[1]
			if big.UncompressedSize64 != over4GiB || big.CompressedSize64 <= over4GiB {
				t.Errorf("big.bin sizes %d/%d", big.CompressedSize64, big.UncompressedSize64)
			}
			if off, _ := after.DataOffset(); off < 1<<32 {
				t.Errorf("second entry at %d, want past 4 GiB", off)
			}
			b, err := readEntry(after)
			if err != nil || string(b) != "past the 4 GiB mark\n" {
				t.Errorf("second entry: %q, %v", b, err)
			}

			// The local header of big.bin, as a streaming reader sees it.
			hdr := make([]byte, 30+len("big.bin")+4+16)
			if _, err := f.ReadAt(hdr, 0); err != nil {
				t.Fatal(err)
			}
			if v := binary.LittleEndian.Uint16(hdr[4:]); v != versionZip64 {
				t.Errorf("local version needed %d", v)
			}
			if c, u := binary.LittleEndian.Uint32(hdr[18:]), binary.LittleEndian.Uint32(hdr[22:]); c != uint32max || u != uint32max {
				t.Errorf("local sizes %#x %#x, want 0xffffffff", c, u)
			}
			x := hdr[30+len("big.bin"):]
			if id := binary.LittleEndian.Uint16(x); id != extraZip64 {
				t.Fatalf("first local extra is %#x, want ZIP64", id)
			}
			u, c := binary.LittleEndian.Uint64(x[4:]), binary.LittleEndian.Uint64(x[12:])
			if mode == "seek" && (u != over4GiB || c != big.CompressedSize64) {
				t.Errorf("local ZIP64 sizes %d/%d", u, c)
			}
			if mode == "descriptor" {
				if u != 0 || c != 0 || big.Flags&flagDescriptor == 0 {
					t.Errorf("descriptor mode: local ZIP64 sizes %d/%d, flags %#x", u, c, big.Flags)
				}
				// The 64-bit descriptor just before the second local header.
				off, _ := after.DataOffset()
				d := make([]byte, 24)
				if _, err := f.ReadAt(d, off-int64(30+len(after.Name)+4+16+9)-24); err != nil {
					t.Fatal(err)
				}
				if binary.LittleEndian.Uint32(d) != sigDataDescriptor ||
					binary.LittleEndian.Uint64(d[8:]) != big.CompressedSize64 ||
					binary.LittleEndian.Uint64(d[16:]) != over4GiB {
					t.Errorf("data descriptor % x", d)
				}
			}
		})
	}
}

// TestZip64EncryptedHugeContent: an encrypted entry of more than 4 GiB of
// content (it deflates to a few MB) needs ZIP64 sizes alongside the AES
// extra; 7-Zip must test it. Only the seek layout, the one used for files,
// is run for time: in descriptor mode every encrypted entry already has a
// ZIP64 local header and 64-bit descriptor (TestSevenZipOpensEncrypted), and
// 64-bit descriptor values past 4 GiB are checked by TestZip64LargeArchive.
func TestZip64EncryptedHugeContent(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("deflates 4 GiB")
	}
	need7z(t)
	for _, mode := range []string{"seek"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			pw := randomPassword(t)
			f := createFile(t, "huge.zip")
			var dst io.Writer = f
			if mode == "descriptor" {
				dst = streamOnly{f}
			}
			zw := NewWriter(dst, pw)
			w, err := zw.Create("zeros.bin", testTime)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1<<20)
			for left := int64(over4GiB); left > 0; {
				n := min(left, int64(len(buf)))
				if _, err := w.Write(buf[:n]); err != nil {
					t.Fatal(err)
				}
				left -= n
			}
			w, err = zw.Create("small.txt", testTime)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(w, "small\n")
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			out := must7z(t, "t", "-p"+pw, f.Name())
			if !strings.Contains(out, "Everything is Ok") {
				t.Errorf("7z t:\n%s", out)
			}
			e := sltEntries(must7z(t, "l", "-slt", "-p"+pw, f.Name()))["zeros.bin"]
			if e["Size"] != "4298113024" || e["Method"] != "AES-256 Deflate" {
				t.Errorf("7z l: %v", e)
			}
			zr := openZip(t, f.Name(), pw)
			if zr.File[0].UncompressedSize64 != over4GiB {
				t.Errorf("archive/zip: size %d", zr.File[0].UncompressedSize64)
			}
			b, err := decryptEntry(zr.File[1], pw)
			if err != nil || !bytes.Equal(b, []byte("small\n")) {
				t.Errorf("small.txt: %q %v", b, err)
			}
		})
	}
}
