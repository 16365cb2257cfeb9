// Package aeszip writes zip archives whose entries are encrypted with the
// WinZip AES scheme (AE-2, AES-256), so that the person who receives an
// export of their personal data can open it with a password in common
// desktop tools, or plain deflated zip archives when no password is given.
//
// # Format
//
// The archive is an ordinary zip (PKWARE APPNOTE.TXT 6.3) whose entries use
// the WinZip AE-2 extension (https://www.winzip.com/en/support/aes-encryption/,
// "AES Encryption Information: Encryption Specification AE-1 and AE-2",
// document version 1.04):
//
//   - compression method 99 in the local and central headers, general purpose
//     flag bit 0 set, and an extra field 0x9901 carrying vendor version 2
//     (AE-2), vendor ID "AE", strength 3 (AES-256) and the real compression
//     method 8 (deflate);
//   - the CRC-32 field is 0, as AE-2 requires; integrity comes from the
//     authentication code instead;
//   - each entry's data is a fresh 16-byte random salt, a 2-byte password
//     verification value, the deflated data encrypted with AES-256 in WinZip's
//     CTR mode (little-endian counter starting at 1) and a 10-byte
//     HMAC-SHA1 authentication code of the encrypted data;
//   - keys come from PBKDF2-HMAC-SHA1(password, salt, 1000 iterations, 66
//     bytes): 32 bytes of AES key, 32 bytes of HMAC key, 2 bytes of verifier.
//
// Names are stored as UTF-8 (flag bit 11), times as DOS date and time plus
// the Info-ZIP extended timestamp (0x5455), and ZIP64 records are written
// whenever an entry, an offset or the number of entries outgrows the classic
// fields, so archives larger than 4 GiB or with more than 65535 entries work.
//
// Sizes are not known before an entry is written. When the destination is an
// io.WriteSeeker (for example an *os.File that is not a pipe and was not
// opened with O_APPEND), the local header is rewritten in place once the entry
// is complete, which is the layout every reader accepts; otherwise the sizes
// follow the data in a data descriptor (flag bit 3). See [NewWriter].
//
// # What opens these archives
//
// Checked by this package's tests with 7-Zip (7z 26.02), in both layouts,
// and once by hand with libarchive 3.6.2 (bsdtar --passphrase). WinZip
// defined the format; WinRAR, Keka and The Unarchiver (macOS) implement
// WinZip AES decryption too. Windows Explorer's built-in zip folders (which
// know only the legacy ZipCrypto), macOS Archive Utility, Info-ZIP unzip 6.0
// (the usual "unzip" command), Python's zipfile and Go's archive/zip cannot
// decrypt AES entries; they report an unsupported method or a damaged
// archive. The plain mode (empty password) is an ordinary zip that all of
// them read.
//
// # Security
//
// Each entry is encrypted with AES-256-CTR and authenticated with
// HMAC-SHA1-80 (encrypt-then-MAC) under keys derived from its own random
// salt. The key derivation is fixed by the format at 1000 PBKDF2-HMAC-SHA1
// iterations, which is cheap for an attacker guessing passwords offline, so
// the password must be long and random (for example 20 characters drawn by
// crypto/rand from a 64-symbol alphabet, about 120 bits) rather than chosen
// by a person. Only the content is protected: entry names, sizes (compressed
// and uncompressed), modification times and the number of entries are
// readable without the password, and the authentication code covers one
// entry's data only, so renaming, dropping or reordering entries is not
// detected. Passwords are used as their UTF-8 bytes; ASCII passwords behave
// the same in every tool.
//
// Memory use is bounded by a few buffers (about 1.1 MB for the deflater
// [Writer.Create] uses, 200 kB of I/O buffers) whatever the size of the
// entries; the central
// directory kept until [Writer.Close] costs about 150 bytes plus the name
// length per entry. Deriving keys costs about 0.16 ms per encrypted entry
// on a processor with the SHA extensions (two PBKDF2 blocks interleaved in
// assembly; 0.39 ms one block at a time, 0.69 ms through crypto/pbkdf2),
// about a millisecond without them.
package aeszip
