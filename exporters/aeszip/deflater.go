package aeszip

import (
	"errors"
	"hash"
	"hash/crc32"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"
)

// Deflater deflates what is written to it into dst at [Level], as a raw
// DEFLATE stream, and keeps the CRC-32 and length of the content: exactly
// the three things [Writer.AddDeflated] takes. It lets a producer stage an
// entry (to a temporary file, say) while it reads rows, then add it without
// compressing twice.
type Deflater struct {
	fw     *flate.Writer
	crc    hash.Hash32
	size   int64
	closed bool
}

// NewDeflater returns a Deflater writing to dst.
func NewDeflater(dst io.Writer) *Deflater {
	fw, err := getFlateWriter(dst)
	if err != nil {
		// Unreachable: Level is valid. Fail at Write rather than panic.
		return &Deflater{closed: true}
	}
	return &Deflater{fw: fw, crc: crc32.NewIEEE()}
}

// flateWriters keeps compressors between entries: one is about a megabyte
// of tables and buffers, and a copy request stages two files per dataset;
// allocating (and so zeroing, and collecting) a fresh one for each was 8%
// of a small copy request's CPU. Reset leaves nothing of the earlier
// stream to be read.
var flateWriters sync.Pool

func getFlateWriter(dst io.Writer) (*flate.Writer, error) {
	if fw, ok := flateWriters.Get().(*flate.Writer); ok {
		fw.Reset(dst)
		return fw, nil
	}
	return flate.NewWriter(dst, Level)
}

// putFlateWriter returns a closed compressor to the pool, pointed at
// nothing so that the pool holds no writer of a finished entry.
func putFlateWriter(fw *flate.Writer) {
	fw.Reset(io.Discard)
	flateWriters.Put(fw)
}

// Write deflates p.
func (d *Deflater) Write(p []byte) (int, error) {
	if d.closed {
		return 0, errors.New("aeszip: write to a closed Deflater")
	}
	n, err := d.fw.Write(p)
	d.crc.Write(p[:n])
	d.size += int64(n)
	return n, err
}

// Close writes the end of the stream. It does not close dst.
func (d *Deflater) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	if d.fw == nil {
		return errors.New("aeszip: Deflater has no compressor")
	}
	fw := d.fw
	d.fw = nil
	if err := fw.Close(); err != nil {
		return err // not pooled: its state after a failed write is unknown
	}
	putFlateWriter(fw)
	return nil
}

// CRC32 returns the CRC-32 (IEEE) of the content written so far.
func (d *Deflater) CRC32() uint32 {
	if d.crc == nil {
		return 0
	}
	return d.crc.Sum32()
}

// Size returns the number of content bytes written so far.
func (d *Deflater) Size() int64 { return d.size }
