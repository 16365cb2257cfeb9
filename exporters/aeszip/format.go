package aeszip

import (
	"encoding/binary"
	"time"
)

// Record signatures and field values, from PKWARE's APPNOTE.TXT 6.3.x
// (section numbers cited where they are used) and WinZip's AE-2 document.
const (
	sigLocalHeader    = 0x04034b50 // APPNOTE 4.3.7
	sigDataDescriptor = 0x08074b50 // APPNOTE 4.3.9.3
	sigCentralHeader  = 0x02014b50 // APPNOTE 4.3.12
	sigZip64End       = 0x06064b50 // APPNOTE 4.3.14
	sigZip64Locator   = 0x07064b50 // APPNOTE 4.3.15
	sigEnd            = 0x06054b50 // APPNOTE 4.3.16

	methodDeflate = 8
	methodAES     = 99 // WinZip AE-x: the real method is in the 0x9901 extra

	flagEncrypted  = 1 << 0  // APPNOTE 4.4.4 bit 0
	flagDescriptor = 1 << 3  // APPNOTE 4.4.4 bit 3: sizes follow the data
	flagUTF8       = 1 << 11 // APPNOTE 4.4.4 bit 11: name is UTF-8

	// WinZip's AE-2 document, II.1: "WinZip sets the version needed to
	// extract and version made by fields ... to the same values it would use
	// if the file were not encrypted", so AES does not raise them.
	versionDeflate = 20 // APPNOTE 4.4.3.2: 2.0 for deflate
	versionZip64   = 45 // APPNOTE 4.4.3.2: 4.5 for ZIP64
	// APPNOTE 4.4.2: upper byte 3 = UNIX, so external attributes carry a
	// file mode; lower byte = the APPNOTE version followed (6.3).
	versionMadeBy = 3<<8 | 63
	// Regular file, rw-r--r--, in the upper 16 bits (APPNOTE 4.4.15 with
	// UNIX as the host system).
	externalAttrs = 0o100644 << 16

	extraZip64      = 0x0001 // APPNOTE 4.5.3
	extraGrowthHint = 0xa220 // APPNOTE 4.6.1: Microsoft Open Packaging Growth Hint
	extraTimestamp  = 0x5455 // Info-ZIP extended timestamp (APPNOTE 4.6.1, Info-ZIP's extrafld.txt)
	extraAES        = 0x9901 // WinZip AE-x, section II.4

	// The growth hint's data is this signature, the padding size and the
	// padding, as Microsoft's System.IO.Packaging writes it to keep room
	// for a ZIP64 record, the use made of it here.
	growthHintSig = 0xa028

	aesVendorVersionAE2 = 2
	aesStrength256      = 3

	uint16max = 0xffff
	uint32max = 0xffffffff

	localHeaderLen    = 30
	centralHeaderLen  = 46
	zip64EndLen       = 56
	zip64LocatorLen   = 20
	endLen            = 22
	zip64LocalDataLen = 16 // uncompressed and compressed size, APPNOTE 4.5.3
)

// entry is what the central directory needs to know about one entry.
type entry struct {
	name             string
	flags            uint16
	method           uint16 // methodDeflate or methodAES
	dosTime, dosDate uint16
	mtime            uint32 // Unix seconds for the 0x5455 extra, when hasMtime
	hasMtime         bool
	encrypted        bool
	crc              uint32
	compressed       uint64 // as the headers count it: AES overhead included
	uncompressed     uint64
	offset           uint64 // of the local header, from the archive's start
	// localZip64 is set when the local header written in data descriptor
	// mode carries a ZIP64 record: then, and only then, the descriptor's sizes
	// are 8 bytes wide (APPNOTE 4.3.9.2).
	localZip64 bool
	// reserve is set in seek mode: the local header carries 20 bytes that
	// become the ZIP64 record if the entry outgrows 4 GiB.
	reserve bool
}

func (e *entry) sizesNeedZip64() bool {
	return e.compressed >= uint32max || e.uncompressed >= uint32max
}

// usesZip64 tells whether any header of e needs ZIP64, which raises the
// version needed to extract in both headers so they agree.
func (e *entry) usesZip64() bool {
	return e.localZip64 || e.sizesNeedZip64() || e.offset >= uint32max
}

func (e *entry) versionNeeded() uint16 {
	if e.usesZip64() {
		return versionZip64
	}
	return versionDeflate
}

func le16(b []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(b, v) }
func le32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
func le64(b []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(b, v) }

// localHeader appends e's local file header (APPNOTE 4.3.7). In seek mode
// it is written twice, before and after the data, and both encodings have
// the same length because the reserved 20 bytes are either a growth hint or
// the ZIP64 record.
func (e *entry) localHeader(b []byte) []byte {
	crc := e.crc
	csize, usize := uint32(e.compressed), uint32(e.uncompressed)
	var zip64 bool
	var zip64Sizes [2]uint64 // uncompressed, compressed
	switch {
	case e.flags&flagDescriptor != 0:
		// APPNOTE 4.4.4 bit 3: CRC and sizes are zero here and come in the
		// descriptor. A ZIP64 record must hold both sizes (4.5.3) and only
		// appears for fields set to 0xFFFFFFFF, so those are set and the
		// record's values are left zero, like the header's would be.
		crc, csize, usize = 0, 0, 0
		if e.localZip64 {
			zip64 = true
			csize, usize = uint32max, uint32max
		}
	case e.sizesNeedZip64():
		zip64 = true
		csize, usize = uint32max, uint32max
		zip64Sizes = [2]uint64{e.uncompressed, e.compressed}
	}

	b = le32(b, sigLocalHeader)
	b = le16(b, e.versionNeeded())
	b = le16(b, e.flags)
	b = le16(b, e.method)
	b = le16(b, e.dosTime)
	b = le16(b, e.dosDate)
	b = le32(b, crc)
	b = le32(b, csize)
	b = le32(b, usize)
	b = le16(b, uint16(len(e.name)))
	extraLen := 0
	if zip64 || e.reserve {
		extraLen += 4 + zip64LocalDataLen
	}
	if e.hasMtime {
		extraLen += 4 + 5
	}
	if e.encrypted {
		extraLen += 4 + 7
	}
	b = le16(b, uint16(extraLen))
	b = append(b, e.name...)
	switch {
	case zip64:
		b = le16(b, extraZip64)
		b = le16(b, zip64LocalDataLen)
		b = le64(b, zip64Sizes[0])
		b = le64(b, zip64Sizes[1])
	case e.reserve:
		// Readers skip extra fields they do not know (APPNOTE 4.5.1); this
		// registered one means room kept for the header to grow when it is
		// rewritten, which is what it is.
		b = le16(b, extraGrowthHint)
		b = le16(b, zip64LocalDataLen)
		b = le16(b, growthHintSig)
		b = le16(b, zip64LocalDataLen-4) // padding size
		b = append(b, make([]byte, zip64LocalDataLen-4)...)
	}
	if e.hasMtime {
		b = e.timestampExtra(b)
	}
	if e.encrypted {
		b = aesExtra(b)
	}
	return b
}

// centralHeader appends e's central directory header (APPNOTE 4.3.12).
func (e *entry) centralHeader(b []byte) []byte {
	csize, usize, offset := uint32(e.compressed), uint32(e.uncompressed), uint32(e.offset)
	// APPNOTE 4.5.3: only the fields that overflow are in the ZIP64
	// record, in this fixed order.
	var zip64 []uint64
	if e.uncompressed >= uint32max {
		usize = uint32max
		zip64 = append(zip64, e.uncompressed)
	}
	if e.compressed >= uint32max {
		csize = uint32max
		zip64 = append(zip64, e.compressed)
	}
	if e.offset >= uint32max {
		offset = uint32max
		zip64 = append(zip64, e.offset)
	}

	b = le32(b, sigCentralHeader)
	b = le16(b, versionMadeBy)
	b = le16(b, e.versionNeeded())
	b = le16(b, e.flags)
	b = le16(b, e.method)
	b = le16(b, e.dosTime)
	b = le16(b, e.dosDate)
	b = le32(b, e.crc)
	b = le32(b, csize)
	b = le32(b, usize)
	b = le16(b, uint16(len(e.name)))
	extraLen := 0
	if len(zip64) > 0 {
		extraLen += 4 + 8*len(zip64)
	}
	if e.hasMtime {
		extraLen += 4 + 5
	}
	if e.encrypted {
		extraLen += 4 + 7
	}
	b = le16(b, uint16(extraLen))
	b = le16(b, 0) // comment length
	b = le16(b, 0) // disk number start
	b = le16(b, 0) // internal attributes
	b = le32(b, externalAttrs)
	b = le32(b, offset)
	b = append(b, e.name...)
	if len(zip64) > 0 {
		b = le16(b, extraZip64)
		b = le16(b, uint16(8*len(zip64)))
		for _, v := range zip64 {
			b = le64(b, v)
		}
	}
	if e.hasMtime {
		b = e.timestampExtra(b)
	}
	if e.encrypted {
		b = aesExtra(b)
	}
	return b
}

// dataDescriptor appends the record that follows the data in descriptor
// mode (APPNOTE 4.3.9). The signature is optional in the spec but written,
// as 7-Zip and most readers expect it.
func (e *entry) dataDescriptor(b []byte) []byte {
	b = le32(b, sigDataDescriptor)
	b = le32(b, e.crc)
	if e.localZip64 {
		b = le64(b, e.compressed)
		b = le64(b, e.uncompressed)
	} else {
		b = le32(b, uint32(e.compressed))
		b = le32(b, uint32(e.uncompressed))
	}
	return b
}

// timestampExtra appends the Info-ZIP extended timestamp with the
// modification time only; the local and central forms are then identical.
func (e *entry) timestampExtra(b []byte) []byte {
	b = le16(b, extraTimestamp)
	b = le16(b, 5)
	b = append(b, 1) // flags: modification time present
	return le32(b, e.mtime)
}

// aesExtra appends the AE-2 extra field (WinZip AE-x, section II.4).
func aesExtra(b []byte) []byte {
	b = le16(b, extraAES)
	b = le16(b, 7)
	b = le16(b, aesVendorVersionAE2)
	b = append(b, 'A', 'E')
	b = append(b, aesStrength256)
	return le16(b, methodDeflate)
}

// endOfCentralDirectory appends the end records for a central directory of
// records entries, size bytes, starting at offset, itself followed by the
// end records (so offset+size is where the ZIP64 end record goes).
func endOfCentralDirectory(b []byte, records, size, offset uint64) []byte {
	if records >= uint16max || size >= uint32max || offset >= uint32max {
		zip64End := offset + size
		b = le32(b, sigZip64End)
		b = le64(b, zip64EndLen-12) // APPNOTE 4.3.14.1: size excludes the leading 12 bytes
		b = le16(b, versionMadeBy)
		b = le16(b, versionZip64)
		b = le32(b, 0) // this disk
		b = le32(b, 0) // disk where the central directory starts
		b = le64(b, records)
		b = le64(b, records)
		b = le64(b, size)
		b = le64(b, offset)

		b = le32(b, sigZip64Locator)
		b = le32(b, 0) // disk with the ZIP64 end record
		b = le64(b, zip64End)
		b = le32(b, 1) // total disks

		// APPNOTE 4.4.1.4 asks for -1 in the fields too small to hold the
		// value; like Go's archive/zip, all of them are set so that any
		// reader keying on one of them finds the ZIP64 records.
		records, size, offset = uint16max, uint32max, uint32max
	}
	b = le32(b, sigEnd)
	b = le16(b, 0) // this disk
	b = le16(b, 0) // disk where the central directory starts
	b = le16(b, uint16(records))
	b = le16(b, uint16(records))
	b = le32(b, uint32(size))
	b = le32(b, uint32(offset))
	return le16(b, 0) // comment length
}

// dosDateTime converts t, read in its own location since DOS times have no
// zone, to the MS-DOS fields (APPNOTE 4.4.6), clamped to what they can hold:
// 1980-01-01 to 2107-12-31, at two-second resolution.
func dosDateTime(t time.Time) (date, tim uint16) {
	if t.IsZero() || t.Year() < 1980 {
		return 1<<5 | 1, 0
	}
	if t.Year() > 2107 {
		return 127<<9 | 12<<5 | 31, 23<<11 | 59<<5 | 29
	}
	date = uint16((t.Year()-1980)<<9 | int(t.Month())<<5 | t.Day())
	tim = uint16(t.Hour()<<11 | t.Minute()<<5 | t.Second()/2)
	return date, tim
}

// unixMtime returns t for the 0x5455 extra, whose 4-byte field readers
// disagree on the sign of; times outside 1970–2038 are left to the DOS
// fields.
func unixMtime(t time.Time) (uint32, bool) {
	if t.IsZero() {
		return 0, false
	}
	s := t.Unix()
	if s < 0 || s > 1<<31-1 {
		return 0, false
	}
	return uint32(s), true
}
