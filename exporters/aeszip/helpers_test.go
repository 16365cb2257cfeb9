package aeszip

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// need7z returns the path of the 7z binary, or skips: CI installs it.
func need7z(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("7z")
	if err != nil {
		t.Skip("7z not on PATH (install p7zip-full or 7zip): these tests check archives with the real 7-Zip")
	}
	return p
}

// run7z runs 7z with args and returns its combined output and error.
func run7z(t testing.TB, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(need7z(t), args...)
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// must7z runs 7z and fails the test unless it exits 0.
func must7z(t testing.TB, args ...string) string {
	t.Helper()
	out, err := run7z(t, args...)
	if err != nil {
		t.Fatalf("7z %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// randomPassword is what the exporter is expected to use: long and random.
func randomPassword(t testing.TB) string {
	t.Helper()
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// jsonLines returns n bytes of export-like JSON text, deterministic in seed.
func jsonLines(n int, seed uint64) []byte {
	r := mrand.New(mrand.NewPCG(seed, 1))
	names := []string{"Alice Martin", "Bob Dupont", "王小明", "Zoë Ålander", "Dave O'Neil"}
	merchants := []string{"Carrefour", "SNCF", "Amazon EU", "La Poste", "Boulangerie Paul"}
	var b bytes.Buffer
	b.Grow(n + 256)
	for b.Len() < n {
		fmt.Fprintf(&b, `{"id":%d,"account":"FR76%010d","holder":%q,"merchant":%q,"amount":%d.%02d,"currency":"EUR","booked_at":"2024-%02d-%02dT%02d:%02d:%02dZ"}`+"\n",
			r.IntN(1e9), r.IntN(1e9), names[r.IntN(len(names))], merchants[r.IntN(len(merchants))],
			r.IntN(5000), r.IntN(100), r.IntN(12)+1, r.IntN(28)+1, r.IntN(24), r.IntN(60), r.IntN(60))
	}
	return b.Bytes()[:n]
}

// streamOnly hides Seek, forcing data descriptor mode.
type streamOnly struct{ w io.Writer }

func (s streamOnly) Write(p []byte) (int, error) { return s.w.Write(p) }

// refCTRXOR is WinZip's CTR written the naive way, independently of ctrLE:
// Gladman's byte-wise nonce increment before each block, one block at a
// time.
func refCTRXOR(block cipher.Block, data []byte) []byte {
	out := make([]byte, len(data))
	var nonce, ks [aes.BlockSize]byte
	for i := 0; i < len(data); i += aes.BlockSize {
		for j := 0; j < 8; j++ {
			nonce[j]++
			if nonce[j] != 0 {
				break
			}
		}
		block.Encrypt(ks[:], nonce[:])
		for j := 0; j < aes.BlockSize && i+j < len(data); j++ {
			out[i+j] = data[i+j] ^ ks[j]
		}
	}
	return out
}

// refPBKDF2 is RFC 8018 section 5.2 with HMAC-SHA1, written out so that the
// key derivation is checked against something other than crypto/pbkdf2.
func refPBKDF2(password, salt []byte, iter, n int) []byte {
	var out []byte
	for i := uint32(1); len(out) < n; i++ {
		mac := hmac.New(sha1.New, password)
		mac.Write(salt)
		mac.Write(binary.BigEndian.AppendUint32(nil, i))
		u := mac.Sum(nil)
		t := append([]byte(nil), u...)
		for k := 1; k < iter; k++ {
			mac.Reset()
			mac.Write(u)
			u = mac.Sum(u[:0])
			for j := range t {
				t[j] ^= u[j]
			}
		}
		out = append(out, t...)
	}
	return out[:n]
}

// aesDecompressor lets archive/zip read method-99 entries: AES-256 with
// deflate inside, as this package writes them and as 7-Zip does with
// -mem=AES256. It checks the verifier and the authentication code, and
// archive/zip checks the size (and the CRC, for AE-1).
func aesDecompressor(password string) zip.Decompressor {
	return func(r io.Reader) io.ReadCloser {
		var prefix [saltLen + verifierLen]byte
		if _, err := io.ReadFull(r, prefix[:]); err != nil {
			return errReadCloser{fmt.Errorf("reading salt: %w", err)}
		}
		dk := refPBKDF2([]byte(password), prefix[:saltLen], 1000, 66)
		if !bytes.Equal(dk[64:], prefix[saltLen:]) {
			return errReadCloser{errors.New("wrong password (verifier mismatch)")}
		}
		block, err := aes.NewCipher(dk[:32])
		if err != nil {
			return errReadCloser{err}
		}
		ar := &authReader{src: r, block: block, mac: hmac.New(sha1.New, dk[32:64])}
		return flate.NewReader(ar)
	}
}

type errReadCloser struct{ err error }

func (e errReadCloser) Read([]byte) (int, error) { return 0, e.err }
func (e errReadCloser) Close() error             { return nil }

// authReader decrypts the encrypted data, holding back the last 10 bytes,
// which are the authentication code checked at EOF.
type authReader struct {
	src    io.Reader
	block  cipher.Block
	mac    hash.Hash
	buf    []byte // read but not yet released
	ctr    uint64
	ks     [aes.BlockSize]byte
	ksPos  int
	eof    bool
	failed error
}

func (a *authReader) Read(p []byte) (int, error) {
	if a.failed != nil {
		return 0, a.failed
	}
	for !a.eof && len(a.buf) <= authLen+len(p) {
		chunk := make([]byte, 32<<10)
		n, err := a.src.Read(chunk)
		a.buf = append(a.buf, chunk[:n]...)
		if err == io.EOF {
			a.eof = true
		} else if err != nil {
			a.failed = err
			return 0, err
		}
	}
	avail := len(a.buf) - authLen
	if avail <= 0 {
		if !a.eof {
			return 0, nil
		}
		if len(a.buf) != authLen {
			a.failed = errors.New("truncated authentication code")
		} else if !hmac.Equal(a.mac.Sum(nil)[:authLen], a.buf) {
			a.failed = errors.New("authentication code mismatch")
		} else {
			a.failed = io.EOF
		}
		return 0, a.failed
	}
	n := min(avail, len(p))
	a.mac.Write(a.buf[:n])
	for i := 0; i < n; i++ {
		if a.ksPos == 0 {
			a.ctr++
			var in [aes.BlockSize]byte
			binary.LittleEndian.PutUint64(in[:], a.ctr)
			a.block.Encrypt(a.ks[:], in[:])
		}
		p[i] = a.buf[i] ^ a.ks[a.ksPos]
		a.ksPos = (a.ksPos + 1) % aes.BlockSize
	}
	a.buf = a.buf[n:]
	return n, nil
}

// openZip opens path with archive/zip, able to read AES entries with
// password.
func openZip(t testing.TB, path, password string) *zip.ReadCloser {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatalf("archive/zip cannot open %s: %v", path, err)
	}
	t.Cleanup(func() { zr.Close() })
	if password != "" {
		zr.RegisterDecompressor(methodAES, aesDecompressor(password))
	}
	return zr
}

// decryptEntry reads an AES entry through OpenRaw and the test decrypter.
// archive/zip's own Open cannot be used in data descriptor mode: it then
// insists that the CRC-32 of the content equal the stored one, which AE-2
// sets to 0.
func decryptEntry(f *zip.File, password string) ([]byte, error) {
	raw, err := f.OpenRaw()
	if err != nil {
		return nil, err
	}
	rc := aesDecompressor(password)(raw)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	if uint64(len(b)) != f.UncompressedSize64 {
		return nil, fmt.Errorf("%d bytes decrypted, header says %d", len(b), f.UncompressedSize64)
	}
	return b, nil
}

func readEntry(f *zip.File) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// compareTree checks that dir holds exactly want, byte for byte.
func compareTree(t testing.TB, dir string, want map[string][]byte) {
	t.Helper()
	got := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		got[rel] = true
		w, ok := want[rel]
		if !ok {
			t.Errorf("extracted unexpected file %q", rel)
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !bytes.Equal(b, w) {
			t.Errorf("%s: extracted %d bytes differ from the %d written", rel, len(b), len(w))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name := range want {
		if !got[name] {
			t.Errorf("%s was not extracted", name)
		}
	}
}

// sltEntries parses `7z l -slt` output into one map of properties per
// entry.
func sltEntries(out string) map[string]map[string]string {
	res := map[string]map[string]string{}
	_, body, ok := strings.Cut(out, "----------\n")
	if !ok {
		return res
	}
	for _, block := range strings.Split(body, "\n\n") {
		props := map[string]string{}
		for _, line := range strings.Split(block, "\n") {
			if k, v, ok := strings.Cut(line, " = "); ok {
				props[k] = v
			}
		}
		if p := props["Path"]; p != "" {
			res[p] = props
		}
	}
	return res
}
