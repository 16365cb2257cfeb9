package localpg

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// requiredBinaries are the programs Start runs. A directory is only worth
// using when it holds all of them: Debian's libpq-dev, for example, ships a
// pg_config whose --bindir has client tools but no server.
var requiredBinaries = []string{"initdb", "pg_ctl", "postgres"}

// wellKnownBinDirs are where package managers put server binaries that are
// not on PATH, most common first. Within one pattern the highest version
// wins, so a machine with 13 and 16 installed gets 16.
var wellKnownBinDirs = []string{
	"/usr/lib/postgresql/*/bin",                               // Debian, Ubuntu
	"/usr/pgsql-*/bin",                                        // Red Hat, PGDG packages
	"/usr/local/pgsql/bin",                                    // built from source
	"/opt/homebrew/opt/postgresql*/bin",                       // Homebrew on Apple silicon
	"/usr/local/opt/postgresql*/bin",                          // Homebrew on Intel
	"/Applications/Postgres.app/Contents/Versions/latest/bin", // Postgres.app
}

// FindBinaries returns the directory holding initdb, pg_ctl and postgres.
// It asks pg_config first, then looks for initdb on PATH, then searches the
// directories package managers install to. The error names everything it
// tried and how to install Postgres, because its reader is most likely
// someone running `datarights dev` for the first time.
func FindBinaries() (string, error) {
	var tried []string

	if pgConfig, err := exec.LookPath("pg_config"); err == nil {
		out, err := exec.Command(pgConfig, "--bindir").Output()
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s --bindir (failed: %v)", pgConfig, err))
		} else {
			dir := strings.TrimSpace(string(out))
			if hasBinaries(dir) {
				return dir, nil
			}
			tried = append(tried, fmt.Sprintf("%s (from %s --bindir)", dir, pgConfig))
		}
	} else {
		tried = append(tried, "pg_config on PATH (not found)")
	}

	// Fedora and Nix put initdb straight on PATH, sometimes as a symlink
	// into the real installation, so resolve it and look next to the target.
	if initdb, err := exec.LookPath("initdb"); err == nil {
		dir := filepath.Dir(initdb)
		if resolved, err := filepath.EvalSymlinks(initdb); err == nil {
			dir = filepath.Dir(resolved)
		}
		if hasBinaries(dir) {
			return dir, nil
		}
		tried = append(tried, fmt.Sprintf("%s (next to initdb on PATH)", dir))
	} else {
		tried = append(tried, "initdb on PATH (not found)")
	}

	for _, pattern := range wellKnownBinDirs {
		matches, _ := filepath.Glob(pattern) // only fails on a malformed pattern
		sortByVersionDesc(matches)
		for _, dir := range matches {
			if hasBinaries(dir) {
				return dir, nil
			}
		}
		tried = append(tried, pattern)
	}

	return "", fmt.Errorf("localpg: no PostgreSQL server binaries (%s) found; tried %s. "+
		"Install them with `apt-get install postgresql` (Debian/Ubuntu), `dnf install postgresql-server` (Fedora) "+
		"or `brew install postgresql@16` (macOS), or point DATABASE_URL at an existing server",
		strings.Join(requiredBinaries, ", "), strings.Join(tried, ", "))
}

// checkBinDir explains what is missing from a BinDir the caller chose.
func checkBinDir(dir string) error {
	var missing []string
	for _, name := range requiredBinaries {
		if !isExecutable(filepath.Join(dir, name)) {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("localpg: BinDir %s has no %s", dir, strings.Join(missing, ", "))
	}
	return nil
}

func hasBinaries(dir string) bool {
	return dir != "" && checkBinDir(dir) == nil
}

func isExecutable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0
}

var versionInPath = regexp.MustCompile(`\d+(\.\d+)?`)

// sortByVersionDesc orders paths such as /usr/lib/postgresql/9.6/bin and
// /usr/lib/postgresql/15/bin by the version number in them, newest first.
// A path without a number (Homebrew's unversioned "postgresql") sorts last,
// since it is usually a link to one of the versioned ones anyway.
func sortByVersionDesc(paths []string) {
	version := func(path string) float64 {
		m := versionInPath.FindString(path)
		v, err := strconv.ParseFloat(m, 64)
		if err != nil {
			return -1
		}
		return v
	}
	sort.SliceStable(paths, func(i, j int) bool { return version(paths[i]) > version(paths[j]) })
}

var serverVersionRE = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.(\d+))?`)

// majorVersion turns `postgres --version` output into the form initdb writes
// to PG_VERSION: "15" since release 10, "9.6" before it.
func majorVersion(versionOutput string) (string, error) {
	m := serverVersionRE.FindStringSubmatch(versionOutput)
	if m == nil {
		return "", errors.New("unrecognized version output " + strconv.Quote(strings.TrimSpace(versionOutput)))
	}
	if major, _ := strconv.Atoi(m[1]); major < 10 && m[2] != "" {
		return m[1] + "." + m[2], nil
	}
	return m[1], nil
}
