package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// devConfigFirstLine opens every file dev writes now.
const devConfigFirstLine = "# Written by `datarights dev` for this directory's instance.\n"

// devConfigHeader opens the configuration dev writes: where overrides go.
const devConfigHeader = devConfigFirstLine + `#
# Overrides go here: edit this file and dev keeps it (it rewrites the file
# only while it is exactly what dev wrote; see the last line), or set the
# environment variables of the README's "Configuration" (they win over the
# file; DATABASE_URL, though, chooses the databases dev sets up and names
# below). ` + "`datarights dev -fresh`" + ` resets the demo and writes a new file.
# -addr (or DATARIGHTS_HTTP_ADDR) overrides http.addr below, and the
# transfer receiver's url ` + devReceiverPlaceholder + ` is dev's demo
# receiver, served on a port dev picks at each start.

`

// devConfigTrailer starts the last line of the file dev writes: the hash
// of everything before it. A file whose hash still matches is dev's to
// rewrite; any edit changes it. Inside the file rather than beside it, so
// the file and its hash are renamed into place together.
const devConfigTrailer = "# datarights dev wrote this file; sha256 of the lines above: "

// devConfigLegacyHeader is in the files dev wrote before it kept edits:
// it rewrote them at every start, as it said, so they hold no edit to keep.
const devConfigLegacyHeader = "# datarights configuration for the demo bank, as written by `datarights dev`."

// writeDevConfig writes content (and its trailer) to path when the file is
// absent, unchanged since dev wrote it, written by an older dev, or when
// force; otherwise it leaves the file as it is and returns kept.
func writeDevConfig(path, content string, force bool) (kept bool, err error) {
	if !force {
		old, err := os.ReadFile(path)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return false, err
		case !devWrote(string(old)):
			return true, nil
		}
	}
	sum := sha256.Sum256([]byte(content))
	data := content + devConfigTrailer + hex.EncodeToString(sum[:]) + "\n"
	// Through a temporary file: a crash leaves the old file or the new
	// one, never half of one (which would count as an edit, and be kept).
	tmp, err := os.CreateTemp(filepath.Dir(path), ".datarights.yaml.*.tmp")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after the rename
	if _, err := tmp.WriteString(data); err != nil {
		tmp.Close()
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o600); err != nil { // it holds database passwords
		tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	return false, nil
}

// devWrote says whether data is a file dev wrote and nobody changed since.
func devWrote(data string) bool {
	i := strings.LastIndex(data, devConfigTrailer)
	if i < 0 {
		// Without its trailer: an older dev's file, or one of ours whose
		// trailer was deleted, which is an edit.
		return strings.Contains(data, devConfigLegacyHeader) && !strings.HasPrefix(data, devConfigFirstLine)
	}
	body, trailer := data[:i], strings.TrimSuffix(data[i+len(devConfigTrailer):], "\n")
	sum := sha256.Sum256([]byte(body))
	return trailer == hex.EncodeToString(sum[:])
}
