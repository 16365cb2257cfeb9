package aeszip

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestManyEntries writes more than 65535 entries, which needs the ZIP64 end
// records; 7-Zip and archive/zip must see them all. It runs in plain mode:
// the end records do not depend on encryption, and 70000 key derivations
// (about a millisecond each, fixed by the format) would take a minute.
func TestManyEntries(t *testing.T) {
	t.Parallel()
	need7z(t)
	const n = 70000
	f := createFile(t, "many.zip")
	zw := NewWriter(f, "")
	for i := range n {
		w, err := zw.Create(fmt.Sprintf("rows/%05d.json", i), testTime)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(w, `{"row":%d}`, i)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}

	zr := openZip(t, f.Name(), "")
	if len(zr.File) != n {
		t.Fatalf("archive/zip reads %d entries, want %d", len(zr.File), n)
	}
	for _, i := range []int{0, 65534, 65535, 65536, n - 1} {
		b, err := readEntry(zr.File[i])
		if want := fmt.Sprintf(`{"row":%d}`, i); err != nil || string(b) != want || zr.File[i].Name != fmt.Sprintf("rows/%05d.json", i) {
			t.Errorf("entry %d: %s %q %v", i, zr.File[i].Name, b, err)
		}
	}

	out := must7z(t, "t", f.Name())
	if !strings.Contains(out, "Everything is Ok") || !strings.Contains(out, "Files: 70000") {
		t.Errorf("7z t:\n%s", out)
	}
}

// countingWriter discards what it is given, counting it; it cannot seek,
// so the Writer uses data descriptors, as it would on a network stream.
type countingWriter struct{ n atomic.Int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return len(p), nil
}

const memChildEnv = "AESZIP_MEMORY_CHILD"

// TestMemoryBounded streams 512 MiB of JSON through Create and 1 GiB of
// deflate data through AddDeflated, encrypted, and checks the peak heap and
// the memory obtained from the OS. It runs in a child process so that the
// other tests, running in parallel, do not count.
func TestMemoryBounded(t *testing.T) {
	t.Parallel()
	if os.Getenv(memChildEnv) != "" {
		t.Skip("in the child")
	}
	if testing.Short() {
		t.Skip("streams 1.5 GiB")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMemoryChild$", "-test.v")
	cmd.Env = append(os.Environ(), memChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`PEAK heapinuse=(\d+) sys=(\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no measurement in the child's output:\n%s", out)
	}
	heap, _ := strconv.ParseInt(string(m[1]), 10, 64)
	sys, _ := strconv.ParseInt(string(m[2]), 10, 64)
	t.Logf("child:\n%s", bytes.TrimSpace(out))
	if heap > 16<<20 {
		t.Errorf("peak HeapInuse %d MB, want under 16 MB", heap>>20)
	}
	if sys > 48<<20 {
		t.Errorf("peak Sys %d MB, want under 48 MB", sys>>20)
	}
}

// TestMemoryChild is TestMemoryBounded's child; alone it does nothing.
func TestMemoryChild(t *testing.T) {
	if os.Getenv(memChildEnv) == "" {
		t.Skip("run by TestMemoryBounded")
	}
	var peakHeap, peakSys atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse > peakHeap.Load() {
			peakHeap.Store(ms.HeapInuse)
		}
		if ms.Sys > peakSys.Load() {
			peakSys.Store(ms.Sys)
		}
	}
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				sample()
			}
		}
	}()

	var cw countingWriter
	zw := NewWriter(&cw, randomPassword(t))
	block := jsonLines(1<<20, 11) // rows are generated, not held
	start := time.Now()
	w, err := zw.Create("data/bank/transactions.json", testTime)
	if err != nil {
		t.Fatal(err)
	}
	const createSize = 512 << 20
	for written := 0; written < createSize; written += len(block) {
		block[0] = byte(written >> 20) // vary the blocks a little
		if _, err := w.Write(block); err != nil {
			t.Fatal(err)
		}
	}
	sample()
	mid := time.Now()
	const addSize = 1 << 30
	if err := zw.AddDeflated("data/bank/staged.json", testTime, &storedZeros{left: addSize}, 0, addSize); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	end := time.Now()
	close(stop)
	<-done
	sample()
	fmt.Printf("Create: %d MiB in %v (%.0f MB/s of content), AddDeflated: %d MiB in %v (%.0f MB/s), archive %d MiB\n",
		createSize>>20, mid.Sub(start).Round(time.Millisecond), createSize/mid.Sub(start).Seconds()/1e6,
		addSize>>20, end.Sub(mid).Round(time.Millisecond), addSize/end.Sub(mid).Seconds()/1e6, cw.n.Load()>>20)
	fmt.Printf("PEAK heapinuse=%d sys=%d\n", peakHeap.Load(), peakSys.Load())
}

var _ io.Writer = (*countingWriter)(nil)

func benchmarkCreate(b *testing.B, password string) {
	content := jsonLines(16<<20, 12)
	b.SetBytes(int64(len(content)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		zw := NewWriter(io.Discard, password)
		w, err := zw.Create("rows.json", testTime)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Write(content); err != nil {
			b.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateAES: deflate + encrypt + MAC, per byte of content.
func BenchmarkCreateAES(b *testing.B) { benchmarkCreate(b, "benchmark-password") }

// BenchmarkCreatePlain: deflate + CRC-32, per byte of content.
func BenchmarkCreatePlain(b *testing.B) { benchmarkCreate(b, "") }

// BenchmarkAddDeflatedAES: encrypt + MAC + copy, per byte of deflate data.
func BenchmarkAddDeflatedAES(b *testing.B) {
	var staged bytes.Buffer
	d := NewDeflater(&staged)
	d.Write(jsonLines(64<<20, 13))
	d.Close()
	b.SetBytes(int64(staged.Len()))
	b.ReportAllocs()
	for b.Loop() {
		zw := NewWriter(io.Discard, "benchmark-password")
		if err := zw.AddDeflated("rows.json", testTime, bytes.NewReader(staged.Bytes()), d.CRC32(), d.Size()); err != nil {
			b.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeriveKeys is the fixed per-entry cost of encryption.
func BenchmarkDeriveKeys(b *testing.B) {
	salt := make([]byte, saltLen)
	for b.Loop() {
		if _, err := deriveKeys("benchmark-password", salt); err != nil {
			b.Fatal(err)
		}
	}
}
