package aeszip

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var testTime = time.Date(2024, 5, 17, 14, 30, 12, 0, time.UTC)

// testEntries builds the archive of the brief: HTML, a UTF-8 Chinese name, an
// empty entry, a ~20 MB JSON entry via Create and a staged one via
// AddDeflated. It returns the content of each entry.
func writeTestArchive(t *testing.T, dst io.Writer, password string) map[string][]byte {
	t.Helper()
	want := map[string][]byte{
		"summary.html":                     []byte("<!doctype html><title>Votre export</title><p>Bonjour, 你好</p>\n"),
		"data/银行/用户.json":                  []byte(`[{"姓名":"王小明","城市":"上海"}]` + "\n"),
		"empty.txt":                        {},
		"data/demo_bank/transactions.json": jsonLines(20<<20, 1),
		"data/staged/rows.json":            jsonLines(3<<20+17, 2),
		"tiny":                             []byte("x"),
	}
	zw := NewWriter(dst, password)
	for _, name := range []string{"summary.html", "data/银行/用户.json", "empty.txt", "data/demo_bank/transactions.json", "tiny"} {
		w, err := zw.Create(name, testTime)
		if err != nil {
			t.Fatal(err)
		}
		// Odd write sizes so that deflate output and CTR blocks straddle.
		content := want[name]
		for len(content) > 0 {
			n := min(len(content), 12345)
			if _, err := w.Write(content[:n]); err != nil {
				t.Fatal(err)
			}
			content = content[n:]
		}
	}

	// Stage the AddDeflated entry in a file, as an exporter reading rows
	// would.
	staged, err := os.Create(filepath.Join(t.TempDir(), "rows.deflate"))
	if err != nil {
		t.Fatal(err)
	}
	defer staged.Close()
	d := NewDeflater(staged)
	if _, err := d.Write(want["data/staged/rows.json"]); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := staged.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if err := zw.AddDeflated("data/staged/rows.json", testTime, staged, d.CRC32(), d.Size()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return want
}

func createFile(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestSevenZipOpensEncrypted is the judge: 7-Zip tests, lists and extracts
// the archive with the password, in both layouts.
func TestSevenZipOpensEncrypted(t *testing.T) {
	t.Parallel()
	need7z(t)
	for _, mode := range []string{"seek", "descriptor"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			pw := randomPassword(t)
			f := createFile(t, "export.zip")
			var dst io.Writer = f
			if mode == "descriptor" {
				dst = streamOnly{f}
			}
			want := writeTestArchive(t, dst, pw)
			path := f.Name()

			out := must7z(t, "t", "-p"+pw, path)
			if !strings.Contains(out, "Everything is Ok") || strings.Contains(out, "Warnings") {
				t.Errorf("7z t did not report a clean archive:\n%s", out)
			}

			dir := t.TempDir()
			must7z(t, "x", "-y", "-p"+pw, "-o"+dir, path)
			compareTree(t, dir, want)

			entries := sltEntries(must7z(t, "l", "-slt", "-p"+pw, path))
			if len(entries) != len(want) {
				t.Errorf("7z lists %d entries, want %d", len(entries), len(want))
			}
			for name := range want {
				props, ok := entries[name]
				if !ok {
					t.Errorf("7z does not list %s", name)
					continue
				}
				if props["Method"] != "AES-256 Deflate" {
					t.Errorf("%s: Method = %q, want AES-256 Deflate", name, props["Method"])
				}
				if props["Encrypted"] != "+" {
					t.Errorf("%s: Encrypted = %q", name, props["Encrypted"])
				}
				if props["Size"] != strconv.Itoa(len(want[name])) {
					t.Errorf("%s: Size = %s, want %d", name, props["Size"], len(want[name]))
				}
				if !strings.HasPrefix(props["Modified"], "2024-05-17") {
					t.Errorf("%s: Modified = %q", name, props["Modified"])
				}
			}

			// Go's archive/zip parses the container independently of 7-Zip,
			// and the test's own AES reader decrypts.
			zr := openZip(t, path, pw)
			for _, f := range zr.File {
				got, err := decryptEntry(f, pw)
				if err != nil {
					t.Errorf("archive/zip + test decrypter: %s: %v", f.Name, err)
					continue
				}
				if !bytes.Equal(got, want[f.Name]) {
					t.Errorf("archive/zip + test decrypter: %s differs", f.Name)
				}
				if f.Method != methodAES || f.Flags&flagEncrypted == 0 || f.Flags&flagUTF8 == 0 || f.CRC32 != 0 {
					t.Errorf("%s: method %d flags %#x crc %#x", f.Name, f.Method, f.Flags, f.CRC32)
				}
				if !f.Modified.Equal(testTime) {
					t.Errorf("%s: modified %v, want %v", f.Name, f.Modified, testTime)
				}
			}
		})
	}
}

// TestSevenZipRejectsWrongPassword: 7z must fail and leave nothing that
// matches the content.
func TestSevenZipRejectsWrongPassword(t *testing.T) {
	t.Parallel()
	need7z(t)
	pw := randomPassword(t)
	f := createFile(t, "export.zip")
	want := writeSmallArchive(t, f, pw)

	wrong := randomPassword(t)
	if out, err := run7z(t, "t", "-p"+wrong, f.Name()); err == nil {
		t.Fatalf("7z t with a wrong password succeeded:\n%s", out)
	}
	dir := t.TempDir()
	out, err := run7z(t, "x", "-y", "-p"+wrong, "-o"+dir, f.Name())
	if err == nil {
		t.Fatalf("7z x with a wrong password succeeded:\n%s", out)
	}
	if !strings.Contains(out, "Wrong password") {
		t.Errorf("7z did not say the password is wrong:\n%s", out)
	}
	for name, content := range want {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err == nil && len(content) > 0 && bytes.Contains(b, content[:min(len(content), 16)]) {
			t.Errorf("%s: content extracted with a wrong password", name)
		}
	}
}

func writeSmallArchive(t *testing.T, dst io.Writer, password string) map[string][]byte {
	t.Helper()
	want := map[string][]byte{
		"summary.html":        []byte("<p>rapport</p>\n"),
		"data/bank/rows.json": jsonLines(300<<10, 3),
	}
	zw := NewWriter(dst, password)
	for _, name := range []string{"summary.html", "data/bank/rows.json"} {
		w, err := zw.Create(name, testTime)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(want[name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return want
}

// TestSevenZipDetectsTampering flips one bit in the encrypted data, then in
// the authentication code: 7-Zip's HMAC check must fail the test command.
func TestSevenZipDetectsTampering(t *testing.T) {
	t.Parallel()
	need7z(t)
	pw := randomPassword(t)
	f := createFile(t, "export.zip")
	writeSmallArchive(t, f, pw)
	orig, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	zr := openZip(t, f.Name(), pw)
	var dataOff, size int64
	for _, zf := range zr.File {
		if zf.Name == "data/bank/rows.json" {
			dataOff, _ = zf.DataOffset()
			size = int64(zf.CompressedSize64)
		}
	}
	if size == 0 {
		t.Fatal("entry not found")
	}
	for _, c := range []struct {
		what string
		at   int64
	}{
		{"encrypted data", dataOff + saltLen + verifierLen + (size-aesOverhead)/2},
		{"authentication code", dataOff + size - 3},
	} {
		bad := bytes.Clone(orig)
		bad[c.at] ^= 0x04
		p := filepath.Join(t.TempDir(), "tampered.zip")
		if err := os.WriteFile(p, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := run7z(t, "t", "-p"+pw, p)
		if err == nil {
			t.Errorf("7z t accepted an archive with a flipped bit in the %s:\n%s", c.what, out)
		}
	}
}

// TestPlainMode: no password gives an ordinary deflated zip that
// archive/zip and 7z read back exactly, in both layouts.
func TestPlainMode(t *testing.T) {
	t.Parallel()
	need7z(t)
	for _, mode := range []string{"seek", "descriptor"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			f := createFile(t, "export.zip")
			var dst io.Writer = f
			if mode == "descriptor" {
				dst = streamOnly{f}
			}
			want := writeTestArchive(t, dst, "")
			zr := openZip(t, f.Name(), "")
			if len(zr.File) != len(want) {
				t.Fatalf("archive/zip reads %d entries, want %d", len(zr.File), len(want))
			}
			for _, zf := range zr.File {
				if zf.Method != methodDeflate || zf.Flags&flagEncrypted != 0 {
					t.Errorf("%s: method %d flags %#x", zf.Name, zf.Method, zf.Flags)
				}
				got, err := readEntry(zf) // checks size and CRC-32
				if err != nil {
					t.Errorf("%s: %v", zf.Name, err)
				} else if !bytes.Equal(got, want[zf.Name]) {
					t.Errorf("%s differs", zf.Name)
				}
			}
			must7z(t, "t", f.Name())
			dir := t.TempDir()
			must7z(t, "x", "-y", "-o"+dir, f.Name())
			compareTree(t, dir, want)
			for name, props := range sltEntries(must7z(t, "l", "-slt", f.Name())) {
				if props["Method"] != "Deflate" || props["Encrypted"] != "-" {
					t.Errorf("%s: Method %q Encrypted %q", name, props["Method"], props["Encrypted"])
				}
			}
		})
	}
}

// TestSevenZipCreatedArchive reads an AES-256 zip made by 7-Zip itself with
// the test's decrypter: a known-answer check of the key derivation, the
// little-endian CTR and the HMAC against another implementation, without a
// stored fixture. It then checks that deriveKeys gives 7-Zip's verifier.
func TestSevenZipCreatedArchive(t *testing.T) {
	t.Parallel()
	need7z(t)
	dir := t.TempDir()
	content := jsonLines(200<<10, 9)
	if err := os.WriteFile(filepath.Join(dir, "in.json"), content, 0o600); err != nil {
		t.Fatal(err)
	}
	pw := "correct horse battery staple"
	arc := filepath.Join(dir, "7z.zip")
	must7z(t, "a", "-tzip", "-mem=AES256", "-mm=Deflate", "-p"+pw, arc, filepath.Join(dir, "in.json"))

	zr := openZip(t, arc, pw)
	if len(zr.File) != 1 || zr.File[0].Method != methodAES {
		t.Fatalf("unexpected 7-Zip archive: %+v", zr.File)
	}
	got, err := readEntry(zr.File[0])
	if err != nil {
		t.Fatalf("decrypting 7-Zip's entry: %v", err)
	}
	if !bytes.Equal(got, content) {
		t.Fatal("decrypted 7-Zip entry differs")
	}

	raw, err := zr.File[0].OpenRaw()
	if err != nil {
		t.Fatal(err)
	}
	prefix := make([]byte, saltLen+verifierLen)
	if _, err := io.ReadFull(raw, prefix); err != nil {
		t.Fatal(err)
	}
	k, err := deriveKeys(pw, prefix[:saltLen])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k.verifier[:], prefix[saltLen:]) {
		t.Errorf("deriveKeys verifier %x, 7-Zip wrote %x", k.verifier, prefix[saltLen:])
	}
}
