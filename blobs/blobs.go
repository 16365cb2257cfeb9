// Package blobs keeps the service's files — staged datasets, callback
// spools, finished archives — by key, in a directory of the local disk or
// in an S3 bucket. With S3 every worker on every host sees the same files,
// so any of them can run any step of a request (shared-nothing workers).
//
// Keys are slash-separated paths ("staging/<request>/<store>/<file>"); each
// element is checked as the local staging checks its names, so no key can
// leave its prefix, on disk or in the bucket.
package blobs

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"

	"github.com/datarights/datarights/rights"
)

// Store keeps objects by key.
type Store interface {
	// Create starts writing the object key. What is written becomes the
	// object only when Commit returns (replacing an earlier one whole);
	// Abort, or a crash, leaves key as it was.
	Create(ctx context.Context, key string) (Writer, error)
	// Open returns the object's content and size. A missing object is an
	// error matching fs.ErrNotExist.
	Open(ctx context.Context, key string) (io.ReadCloser, int64, error)
	// List returns the names directly under prefix (which ends in "/"):
	// objects by their name, deeper prefixes as "name/".
	List(ctx context.Context, prefix string) ([]string, error)
	// Delete removes an object; one already gone is not an error.
	Delete(ctx context.Context, key string) error
	// DeletePrefix removes every object under prefix (which ends in "/")
	// and every upload to it still under way.
	DeletePrefix(ctx context.Context, prefix string) error
}

// Writer writes one object.
type Writer interface {
	io.Writer
	// Commit makes what was written the object, durably.
	Commit() error
	// Abort throws away what was written. After Commit it does nothing.
	Abort()
}

// ErrNotExist is what Open returns, wrapped, for a missing object.
var ErrNotExist = fs.ErrNotExist

// CheckKey rejects keys that are not a path of plain names: empty
// elements, "." and "..", backslashes and NUL would let a key escape its
// prefix (on disk) or name two objects alike.
func CheckKey(key string) error {
	if key == "" {
		return rights.Errorf(rights.EInvalid, "an object needs a key")
	}
	for elem := range strings.SplitSeq(key, "/") {
		if elem == "" || elem == "." || elem == ".." || strings.ContainsAny(elem, `\`+"\x00") {
			return rights.Errorf(rights.EInvalid, "object key %q is not a path of plain names", key)
		}
	}
	return nil
}

// checkPrefix checks a prefix: a key followed by "/".
func checkPrefix(prefix string) error {
	k, ok := strings.CutSuffix(prefix, "/")
	if !ok {
		return rights.Errorf(rights.EInvalid, "object prefix %q must end in /", prefix)
	}
	return CheckKey(k)
}

// IsNotExist reports whether err says an object is missing.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
