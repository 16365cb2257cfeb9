package aeszip

import (
	"bytes"
	"compress/flate"
	"crypto/aes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"io"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestReferencePBKDF2 checks the test's own PBKDF2 against RFC 6070's
// HMAC-SHA1 vectors, so that it can vouch for deriveKeys below.
func TestReferencePBKDF2(t *testing.T) {
	t.Parallel()
	for _, v := range []struct {
		p, s string
		c, n int
		want string
	}{
		{"password", "salt", 1, 20, "0c60c80f961f0e71f3a9b524af6012062fe037a6"},
		{"password", "salt", 2, 20, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"},
		{"password", "salt", 4096, 20, "4b007901b765489abead49d926f721d065a429c1"},
		{"passwordPASSWORDpassword", "saltSALTsaltSALTsaltSALTsaltSALTsalt", 4096, 25, "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038"},
		{"pass\x00word", "sa\x00lt", 4096, 16, "56fa6aa75548099dcc37d7f03425e0c3"},
	} {
		if got := hex.EncodeToString(refPBKDF2([]byte(v.p), []byte(v.s), v.c, v.n)); got != v.want {
			t.Errorf("PBKDF2(%q, %q, %d) = %s, want %s", v.p, v.s, v.c, got, v.want)
		}
	}
}

// TestDeriveKeys: 1000 iterations, 66 bytes, split 32/32/2 (AE-x V.3).
func TestDeriveKeys(t *testing.T) {
	t.Parallel()
	salt := []byte("0123456789abcdef")
	for _, pw := range []string{"x", "correct horse battery staple", "пароль-密码"} {
		k, err := deriveKeys(pw, salt)
		if err != nil {
			t.Fatal(err)
		}
		want := refPBKDF2([]byte(pw), salt, 1000, 66)
		if !bytes.Equal(k.aes, want[:32]) || !bytes.Equal(k.mac, want[32:64]) || !bytes.Equal(k.verifier[:], want[64:]) {
			t.Errorf("deriveKeys(%q) differs from the reference", pw)
		}
	}
}

// TestCTRMatchesReference compares ctrLE with the byte-wise reference,
// past the carries into the counter's second and third bytes (blocks 256
// and 65536), with the data fed in random pieces.
func TestCTRMatchesReference(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{0x42}, 32)
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	data := jsonLines(65537*aes.BlockSize+7, 4)
	want := refCTRXOR(block, data)

	r := mrand.New(mrand.NewPCG(5, 6))
	c := newCTRLE(block)
	got := make([]byte, len(data))
	for off := 0; off < len(data); {
		n := min(len(data)-off, r.IntN(9000))
		c.XORKeyStream(got[off:off+n], data[off:off+n])
		off += n
	}
	if !bytes.Equal(got, want) {
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("keystream differs from byte %d (block %d)", i, i/aes.BlockSize+1)
			}
		}
	}
	// The first block is the encryption of the counter 1, little-endian:
	// not what a big-endian CTR would use.
	var one, ks [16]byte
	one[0] = 1
	block.Encrypt(ks[:], one[:])
	for i := range 16 {
		if want[i]^data[i] != ks[i] {
			t.Fatal("first keystream block is not AES(01 00 .. 00)")
		}
	}
}

// TestLocalHeaderLayout checks the bytes of a small encrypted entry's
// local header against the AE-2 document and APPNOTE 4.3.7.
func TestLocalHeaderLayout(t *testing.T) {
	t.Parallel()
	e := entry{name: "a.json", flags: flagUTF8 | flagEncrypted, method: methodAES, encrypted: true,
		dosDate: 1, dosTime: 2, mtime: 1715956212, hasMtime: true, compressed: 128, uncompressed: 300, reserve: true}
	b := e.localHeader(nil)
	want := "504b0304" + "1400" + "0108" + "6300" + "0200" + "0100" + "00000000" + "80000000" + "2c010000" + "0600" + "2800" +
		hex.EncodeToString([]byte("a.json")) +
		"20a21000" + "28a00c00" + "000000000000000000000000" + // growth hint reserving ZIP64 room
		"55540500" + "01" + "f4694766" + // UT: mtime
		"01990700" + "0200" + "4145" + "03" + "0800" // AE-2, "AE", AES-256, deflate
	if got := hex.EncodeToString(b); got != want {
		t.Errorf("local header\n got %s\nwant %s", got, want)
	}
	e.reserve = false
	e.flags |= flagDescriptor
	e.localZip64 = true
	b = e.localHeader(nil)
	if v := binary.LittleEndian.Uint16(b[4:]); v != versionZip64 {
		t.Errorf("descriptor+ZIP64: version %d", v)
	}
	if hex.EncodeToString(b[14:26]) != "00000000ffffffffffffffff" {
		t.Errorf("descriptor+ZIP64: crc/sizes % x", b[14:26])
	}
	if hex.EncodeToString(b[36:56]) != "0100"+"1000"+strings.Repeat("00", 16) {
		t.Errorf("descriptor+ZIP64: extra % x", b[36:56])
	}
}

// TestCentralHeaderZip64 checks that only the overflowing fields go to the
// ZIP64 record, in APPNOTE 4.5.3's order, for offsets and sizes past 4 GiB.
func TestCentralHeaderZip64(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name       string
		u, c, o    uint64
		wantFields []uint64
	}{
		{"small", 10, 20, 30, nil},
		{"offset", 10, 20, 5 << 30, []uint64{5 << 30}},
		{"sizes", 7 << 30, 6 << 30, 30, []uint64{7 << 30, 6 << 30}},
		{"all", 7 << 30, 6 << 30, 5 << 30, []uint64{7 << 30, 6 << 30, 5 << 30}},
		{"compressed", 100, uint32max, 0, []uint64{uint32max}},
	} {
		e := entry{name: "n", flags: flagUTF8, method: methodDeflate, uncompressed: c.u, compressed: c.c, offset: c.o}
		b := e.centralHeader(nil)
		ver := binary.LittleEndian.Uint16(b[6:])
		csize, usize := binary.LittleEndian.Uint32(b[20:]), binary.LittleEndian.Uint32(b[24:])
		extraLen := int(binary.LittleEndian.Uint16(b[30:]))
		off := binary.LittleEndian.Uint32(b[42:])
		extra := b[centralHeaderLen+1:]
		if len(extra) != extraLen {
			t.Fatalf("%s: extra length %d, have %d bytes", c.name, extraLen, len(extra))
		}
		if c.wantFields == nil {
			if ver != versionDeflate || extraLen != 0 || uint64(csize) != c.c || uint64(usize) != c.u || uint64(off) != c.o {
				t.Errorf("%s: version %d extra %d sizes %d/%d off %d", c.name, ver, extraLen, csize, usize, off)
			}
			continue
		}
		if ver != versionZip64 {
			t.Errorf("%s: version %d", c.name, ver)
		}
		if id, n := binary.LittleEndian.Uint16(extra), binary.LittleEndian.Uint16(extra[2:]); id != extraZip64 || int(n) != 8*len(c.wantFields) {
			t.Fatalf("%s: extra %#x len %d", c.name, id, n)
		}
		for i, w := range c.wantFields {
			if got := binary.LittleEndian.Uint64(extra[4+8*i:]); got != w {
				t.Errorf("%s: ZIP64 field %d = %d, want %d", c.name, i, got, w)
			}
		}
		check := func(field string, v uint32, orig uint64) {
			if orig >= uint32max && v != uint32max || orig < uint32max && uint64(v) != orig {
				t.Errorf("%s: %s field %#x for %d", c.name, field, v, orig)
			}
		}
		check("uncompressed", usize, c.u)
		check("compressed", csize, c.c)
		check("offset", off, c.o)
	}
}

// TestEndRecords: the ZIP64 end record and locator appear exactly when the
// classic record overflows, and point where they should.
func TestEndRecords(t *testing.T) {
	t.Parallel()
	b := endOfCentralDirectory(nil, 3, 100, 1000)
	if len(b) != endLen || binary.LittleEndian.Uint16(b[10:]) != 3 || binary.LittleEndian.Uint32(b[16:]) != 1000 {
		t.Errorf("classic end record % x", b)
	}
	for _, c := range []struct{ records, size, offset uint64 }{
		{70000, 70000 * 60, 1 << 20},
		{3, 100, 6 << 30},
		{uint16max, 10, 10},
	} {
		b := endOfCentralDirectory(nil, c.records, c.size, c.offset)
		if len(b) != zip64EndLen+zip64LocatorLen+endLen {
			t.Fatalf("%v: %d bytes", c, len(b))
		}
		z, loc, end := b[:zip64EndLen], b[zip64EndLen:zip64EndLen+zip64LocatorLen], b[zip64EndLen+zip64LocatorLen:]
		if binary.LittleEndian.Uint32(z) != sigZip64End || binary.LittleEndian.Uint64(z[4:]) != 44 ||
			binary.LittleEndian.Uint64(z[24:]) != c.records || binary.LittleEndian.Uint64(z[32:]) != c.records ||
			binary.LittleEndian.Uint64(z[40:]) != c.size || binary.LittleEndian.Uint64(z[48:]) != c.offset {
			t.Errorf("%v: ZIP64 end record % x", c, z)
		}
		if binary.LittleEndian.Uint32(loc) != sigZip64Locator || binary.LittleEndian.Uint64(loc[8:]) != c.offset+c.size ||
			binary.LittleEndian.Uint32(loc[16:]) != 1 {
			t.Errorf("%v: locator % x", c, loc)
		}
		if binary.LittleEndian.Uint32(end) != sigEnd || binary.LittleEndian.Uint16(end[10:]) != uint16max ||
			binary.LittleEndian.Uint32(end[12:]) != uint32max || binary.LittleEndian.Uint32(end[16:]) != uint32max {
			t.Errorf("%v: end record % x", c, end)
		}
	}
}

func TestDOSTime(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		t          time.Time
		date, time uint16
	}{
		{time.Date(2024, 5, 17, 14, 30, 13, 0, time.UTC), 44<<9 | 5<<5 | 17, 14<<11 | 30<<5 | 6},
		{time.Time{}, 1<<5 | 1, 0},
		{time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), 1<<5 | 1, 0},
		{time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC), 127<<9 | 12<<5 | 31, 23<<11 | 59<<5 | 29},
	} {
		d, tm := dosDateTime(c.t)
		if d != c.date || tm != c.time {
			t.Errorf("%v: %#x %#x, want %#x %#x", c.t, d, tm, c.date, c.time)
		}
	}
	if _, ok := unixMtime(time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)); ok {
		t.Error("2040 must not go in the 32-bit extended timestamp")
	}
}

func TestNamesRefused(t *testing.T) {
	t.Parallel()
	zw := NewWriter(io.Discard, "pw")
	for _, name := range []string{"", "/etc/passwd", "../x", "a/../../x", "a/./b", "a//b", "dir/", ".", "..",
		`a\b`, "a\x00b", "\xff\xfe", strings.Repeat("a", 70000)} {
		if _, err := zw.Create(name, testTime); err == nil {
			t.Errorf("Create(%q) accepted", name)
		}
	}
	if _, err := zw.Create("data/银行/用户.json", testTime); err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Create("data/银行/用户.json", testTime); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("duplicate name: %v", err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestMisuse(t *testing.T) {
	t.Parallel()
	zw := NewWriter(io.Discard, "pw")
	w1, err := zw.Create("a", testTime)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Create("b", testTime); err != nil {
		t.Fatal(err)
	}
	if _, err := w1.Write([]byte("late")); err == nil || !strings.Contains(err.Error(), "entry a") {
		t.Errorf("write to an ended entry: %v", err)
	}
	if err := zw.AddDeflated("c", testTime, strings.NewReader(""), 0, -1); err == nil {
		t.Error("negative size accepted")
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err == nil {
		t.Error("second Close succeeded")
	}
	if _, err := zw.Create("d", testTime); err == nil {
		t.Error("Create after Close succeeded")
	}
	if _, err := NewWriter(nil, "").Create("a", testTime); err == nil {
		t.Error("nil destination accepted")
	}
}

type failAfter struct{ n int }

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		n := f.n
		f.n = 0
		return n, errors.New("disk full")
	}
	f.n -= len(p)
	return len(p), nil
}

// TestErrorsAreSticky: a failed write poisons the Writer, and errors say
// which entry and why.
func TestErrorsAreSticky(t *testing.T) {
	t.Parallel()
	zw := NewWriter(&failAfter{n: 100 << 10}, "pw")
	w, err := zw.Create("big.json", testTime)
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Write(jsonLines(4<<20, 7))
	if err == nil || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "aeszip") {
		t.Fatalf("write: %v", err)
	}
	if _, err := zw.Create("next", testTime); err == nil {
		t.Error("Create after a failed write succeeded")
	}
	if err := zw.Close(); err == nil {
		t.Error("Close after a failed write succeeded")
	}

	zw = NewWriter(io.Discard, "")
	bad := io.MultiReader(strings.NewReader("abc"), iotestErr{})
	if err := zw.AddDeflated("staged.json", testTime, bad, 0, 3); err == nil || !strings.Contains(err.Error(), "entry staged.json") {
		t.Errorf("reader failure: %v", err)
	}
}

type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, errors.New("staging file vanished") }

func TestDeflater(t *testing.T) {
	t.Parallel()
	content := jsonLines(1<<20+3, 8)
	var buf bytes.Buffer
	d := NewDeflater(&buf)
	for off := 0; off < len(content); off += 4000 {
		if _, err := d.Write(content[off:min(off+4000, len(content))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if d.Size() != int64(len(content)) || d.CRC32() != crc32.ChecksumIEEE(content) {
		t.Errorf("size %d crc %#x", d.Size(), d.CRC32())
	}
	got, err := io.ReadAll(flate.NewReader(&buf))
	if err != nil || !bytes.Equal(got, content) {
		t.Errorf("inflating: %v", err)
	}
	if _, err := d.Write([]byte("x")); err == nil {
		t.Error("write after Close accepted")
	}
}
