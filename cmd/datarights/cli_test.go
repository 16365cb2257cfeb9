package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// cliChildEnv makes the test binary run main() (see TestMain), so that the
// CLI is tried as a process: exit codes, stdout against stderr, the working
// directory, without a go build.
const cliChildEnv = "DATARIGHTS_TEST_RUN_MAIN"

// helpCommands are every command and verb. TestCLIHelpCoversEveryCommand
// checks the list against the usage texts, so that a new command cannot
// be added without its help being tried.
var helpCommands = [][]string{
	{}, {"help"}, {"version"},
	{"serve"}, {"worker"}, {"dev"},
	{"migrate"}, {"migrate", "up"},
	{"config"}, {"config", "check"},
	{"audit"}, {"audit", "verify"}, {"audit", "anchor"},
	{"token"}, {"token", "add"}, {"token", "list"}, {"token", "revoke"}, {"token", "hash"},
	{"key"}, {"key", "new"},
	{"sla"}, {"sla", "due"},
	{"console"}, {"console", "link"},
	{"requests"}, {"requests", "list"}, {"requests", "show"}, {"requests", "file"},
	{"requests", "approve"}, {"requests", "answer"}, {"requests", "refuse"}, {"requests", "pause"},
	{"requests", "resume"}, {"requests", "extend"}, {"requests", "assign"}, {"requests", "note"},
	{"register"}, {"register", "export"},
}

// cliRun is one run of the binary.
type cliRun struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

// cliEnv is an environment in which anything but help fails loudly: the
// database is on a port nothing listens on, under a name that exists
// nowhere; so is the service; and the home and temporary directories are
// the test's, to be checked for leftovers.
func cliEnv(t *testing.T, home string) []string {
	db := fmt.Sprintf("postgres://datarights_cli@127.0.0.1:1/datarights_cli_nosuch_%d?sslmode=disable&connect_timeout=2", time.Now().UnixNano())
	return []string{
		cliChildEnv + "=1",
		"HOME=" + home, "TMPDIR=" + home, "XDG_CONFIG_HOME=" + home, "XDG_CACHE_HOME=" + home,
		"DATABASE_URL=" + db,
		"DATARIGHTS_MIGRATE_DATABASE_URL=" + db,
		"DATARIGHTS_URL=http://127.0.0.1:1",
		"DATARIGHTS_STAFF_TOKEN=cli-test-token",
		"DATARIGHTS_PUBLIC_URL=https://privacy.example.com",
	}
}

// runCLI runs `datarights args…` in dir. A run that takes more than 30 s
// is killed: help and usage errors answer at once, so a slow run is one
// that went on to connect or listen.
func runCLI(t *testing.T, dir string, env []string, args ...string) cliRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Dir, cmd.Env = dir, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	started := time.Now()
	err := cmd.Run()
	r := cliRun{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(started)}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("datarights %s: still running after %s (it went on after its help?)\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.took, r.stdout, r.stderr)
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("datarights %s: %v", strings.Join(args, " "), err)
	}
	return r
}

func assertEmpty(t *testing.T, what, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("%s: %s was created", what, e.Name())
	}
}

// TestCLIHelpHasNoSideEffects is issue 14's done-when: every command and
// verb, asked for -h or --help in an empty directory, prints help naming
// it to stdout and exits 0 at once, having created nothing and connected
// to nothing (the database and the service it would reach do not exist,
// so any attempt would fail the run).
func TestCLIHelpHasNoSideEffects(t *testing.T) {
	t.Parallel()
	type tc struct {
		args []string
		name string // what the help must name
	}
	var cases []tc
	for _, c := range helpCommands {
		name := "datarights " + strings.Join(c, " ")
		if len(c) == 0 || c[0] == "help" {
			name = "usage: datarights <command>"
		}
		for _, h := range []string{"--help", "-h"} {
			cases = append(cases, tc{append(append([]string{}, c...), h), name})
		}
	}
	// Help after a positional argument is still help: `token add -h`
	// once created a token named "-h".
	for _, c := range [][]string{
		{"token", "add", "li.wei", "-h"}, {"token", "add", "li.wei", "--role", "agent", "--help"},
		{"token", "revoke", "li.wei", "-h"}, {"token", "hash", "x", "--help"},
		{"key", "new", "2026-12-03", "-h"}, {"console", "link", "li.wei", "-h"},
		{"requests", "show", "r-1", "-h"}, {"requests", "approve", "r-1", "--note", "ok", "--help"},
		{"requests", "note", "r-1", "text", "-h"}, {"migrate", "up", "-single-role", "-h"},
	} {
		cases = append(cases, tc{c, "datarights " + strings.Join(c[:2], " ")})
	}
	cases = append(cases,
		tc{[]string{"help", "serve"}, "datarights serve"},
		tc{[]string{"help", "token", "add"}, "datarights token add"},
		tc{[]string{"requests", "help"}, "datarights requests"},
		tc{[]string{"register", "help"}, "datarights register"},
	)
	for _, c := range cases {
		t.Run(strings.Join(c.args, "_"), func(t *testing.T) {
			t.Parallel()
			dir, home := t.TempDir(), t.TempDir()
			r := runCLI(t, dir, cliEnv(t, home), c.args...)
			if r.code != 0 {
				t.Errorf("exit %d, want 0\nstderr: %s", r.code, r.stderr)
			}
			if !strings.Contains(r.stdout, c.name) {
				t.Errorf("stdout does not name %q:\n%s", c.name, r.stdout)
			}
			if r.stderr != "" {
				t.Errorf("stderr: %s", r.stderr)
			}
			assertEmpty(t, "working directory", dir)
			assertEmpty(t, "home and temporary directory", home)
		})
	}
}

// TestCLIHelpEnvironmentFailsLoudly shows that the environment of the
// help test would catch a command that went on: without -h, the same
// commands fail (they reach for the database or the service that are not
// there) instead of succeeding quietly.
func TestCLIHelpEnvironmentFailsLoudly(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"migrate", "up", "-single-role"}, {"token", "add", "li.wei", "--role", "agent"}, {"token", "list"},
		{"audit", "verify"}, {"console", "link", "li.wei"}, {"requests", "list"},
	} {
		dir, home := t.TempDir(), t.TempDir()
		r := runCLI(t, dir, cliEnv(t, home), args...)
		if r.code != 1 {
			t.Errorf("datarights %s: exit %d, want 1 (a failed connection)\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
}

// TestCLIHelpCoversEveryCommand: every command in the usage texts is in
// helpCommands.
func TestCLIHelpCoversEveryCommand(t *testing.T) {
	tried := map[string]bool{}
	for _, c := range helpCommands {
		tried[strings.Join(c, " ")] = true
	}
	listed := func(text, prefix string, words int) {
		for _, line := range strings.Split(text, "\n") {
			rest, ok := strings.CutPrefix(line, prefix)
			if !ok || rest == "" || rest[0] < 'a' || rest[0] > 'z' {
				continue
			}
			f := strings.Fields(rest)
			if len(f) > words {
				f = f[:words]
			}
			if !tried[strings.Join(f, " ")] {
				t.Errorf("%q (from %q) is not in helpCommands", strings.Join(f, " "), strings.TrimSpace(line))
			}
		}
	}
	listed(usage, "  ", 1)
	listed(requestsUsage, "  ", 2)
	listed(tokenVerbs, "  datarights ", 2)
}

// TestCLIUsageErrors: unknown flags, removed flags and unexpected
// arguments exit 2 with the command's usage on stderr, having done
// nothing.
func TestCLIUsageErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args        []string
		usage, says string
	}{
		{[]string{"serve", "--colour", "red"}, "datarights serve", "flag provided but not defined: -colour"},
		{[]string{"serve", "extra"}, "datarights serve", `unexpected argument "extra"`},
		{[]string{"worker", "-config"}, "datarights worker", "flag needs an argument: -config"},
		// dev writes its own configuration; its -config did nothing.
		{[]string{"dev", "-config", "mine.yaml"}, "datarights dev", "flag provided but not defined: -config"},
		{[]string{"migrate", "up", "now"}, "datarights migrate up", `unexpected argument "now"`},
		{[]string{"migrate", "down"}, "datarights migrate up", `unknown verb "down"`},
		{[]string{"audit", "verify", "--fast"}, "datarights audit verify", "flag provided but not defined: -fast"},
		// Only token add has -role and -products; elsewhere they did nothing.
		{[]string{"token", "revoke", "li.wei", "--role", "agent"}, "datarights token revoke", "flag provided but not defined: -role"},
		{[]string{"token", "hash", "a", "b"}, "datarights token hash", `unexpected argument "b"`},
		{[]string{"token", "hash", "a", "-config", "x.yaml"}, "datarights token hash", "flag provided but not defined: -config"},
		{[]string{"token", "add"}, "datarights token add", "an argument is missing"},
		{[]string{"key", "new", "a", "b"}, "datarights key new", `unexpected argument "b"`},
		{[]string{"key", "old"}, "datarights key new", `unknown verb "old"`},
		{[]string{"sla", "due", "--colour"}, "datarights sla due", "flag provided but not defined: -colour"},
		{[]string{"console", "link", "li.wei", "--ttl", "1s"}, "datarights console link", "-ttl must be between 1m and 24h"},
		{[]string{"requests", "list", "--colour", "red"}, "datarights requests list", "flag provided but not defined: -colour"},
		{[]string{"requests", "show"}, "datarights requests show", "say `requests show ID`"},
		{[]string{"register", "export", "--colour"}, "datarights register export", "flag provided but not defined: -colour"},
		{[]string{"version", "now"}, "datarights version", `unexpected argument "now"`},
		{[]string{"--colour"}, "usage: datarights <command>", `unknown command "--colour"`},
	} {
		t.Run(strings.Join(c.args, "_"), func(t *testing.T) {
			t.Parallel()
			dir, home := t.TempDir(), t.TempDir()
			r := runCLI(t, dir, cliEnv(t, home), c.args...)
			if r.code != 2 {
				t.Errorf("exit %d, want 2\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, c.says) || !strings.Contains(r.stderr, "usage:") || !strings.Contains(r.stderr, c.usage) {
				t.Errorf("stderr does not say %q with the usage of %q:\n%s", c.says, c.usage, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout: %s", r.stdout)
			}
			assertEmpty(t, "working directory", dir)
		})
	}
}

// TestCLIVersion: --version and version print one line, exit 0.
func TestCLIVersion(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"--version", "-version", "version"} {
		dir, home := t.TempDir(), t.TempDir()
		r := runCLI(t, dir, cliEnv(t, home), arg)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "datarights ") || strings.Count(r.stdout, "\n") != 1 || r.stderr != "" {
			t.Errorf("datarights %s: exit %d, stdout %q, stderr %q", arg, r.code, r.stdout, r.stderr)
		}
	}
}

// TestVersionString: what a release, a build from a checkout and go run
// say.
func TestVersionString(t *testing.T) {
	vcs := func(rev, at, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev},
			{Key: "vcs.time", Value: at}, {Key: "vcs.modified", Value: modified}}
	}
	rev := "3f2a1c9b0d4e5f60718293a4b5c6d7e8f9012345"
	for _, c := range []struct {
		info *debug.BuildInfo
		want string
	}{
		{nil, "devel"},
		{&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "devel"},
		{&debug.BuildInfo{Main: debug.Module{Version: "v1.2.0"}, Settings: vcs(rev, "2026-12-01T09:12:44Z", "false")}, "v1.2.0"},
		{&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "2026-12-01T09:12:44Z", "false")},
			"devel 3f2a1c9b0d4e 2026-12-01T09:12:44Z"},
		// What go build stamps in a checkout since Go 1.24: a pseudo-version
		// made from the commit, "+dirty" when the tree was modified.
		{&debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261201091244-3f2a1c9b0d4e+dirty"}, Settings: vcs(rev, "2026-12-01T09:12:44Z", "true")},
			"devel 3f2a1c9b0d4e 2026-12-01T09:12:44Z (modified)"},
		{&debug.BuildInfo{Main: debug.Module{Version: "v1.2.1-0.20261201091244-3f2a1c9b0d4e"}, Settings: vcs(rev, "2026-12-01T09:12:44Z", "false")},
			"devel 3f2a1c9b0d4e 2026-12-01T09:12:44Z"},
	} {
		if got := version(c.info); got != c.want {
			t.Errorf("version(%+v) = %q, want %q", c.info, got, c.want)
		}
	}
}
