package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/datarights/datarights/demo"
	"github.com/datarights/datarights/keyring"
)

// TestConfigCheck: `datarights config check` prints every problem of a
// file at once, as file:line: field: reason, and exits 1; a good file
// passes with exit 0; a file serve would still refuse to start with fails.
func TestConfigCheck(t *testing.T) {
	t.Parallel()
	dir, home := t.TempDir(), t.TempDir()
	t.Cleanup(func() { assertEmpty(t, "HOME", home) }) // after the subtests
	good := demo.ConfigYAML("postgres://svc@127.0.0.1:1/svc", "postgres://bank@127.0.0.1:1/bank", filepath.Join(dir, "data"))
	if !strings.Contains(good, "max_extension_days:") {
		t.Fatal("the demo configuration has no max_extension_days to misspell")
	}
	// Two type errors in different sections, a misspelt key, an unknown
	// one, and a validation problem.
	bad := strings.Replace(good, "      days: 15\n      clock_start: received", "      days: fifteen\n      clock_start: received", 1)
	bad = strings.Replace(bad, "max_extension_days:", "max_extention_days:", 1)
	bad = strings.Replace(bad, "time_zone: Asia/Shanghai", "time_zone: Asia/Shangai", 1)
	bad += "worker:\n  job_timeout: ten minutes\ncolour: red\n"
	lineOf := func(text, s string) int {
		i := strings.Index(text, s)
		if i < 0 {
			t.Fatalf("%q is not in the configuration", s)
		}
		return strings.Count(text[:i], "\n") + 1
	}
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	goodPath, badPath := write("good.yaml", good), write("bad.yaml", bad)
	syntaxPath := write("syntax.yaml", strings.Replace(good, "  reminders: [0.5, 0.8]", "  reminders: [0.5, 0.8", 1))
	// The file's databases, not cliEnv's: check connects to neither.
	var env []string
	for _, kv := range cliEnv(t, home) {
		if !strings.HasPrefix(kv, "DATABASE_URL=") && !strings.HasPrefix(kv, "DATARIGHTS_MIGRATE_DATABASE_URL=") {
			env = append(env, kv)
		}
	}
	withKey := append(env[:len(env):len(env)], keyring.EnvVar+"="+testSecretKey)

	for _, tc := range []struct {
		name   string
		env    []string
		path   string
		code   int
		stdout []string
		stderr []string
	}{
		{"good", withKey, goodPath, 0, []string{goodPath + ": OK (2 products, 1 store)"}, nil},
		{"bad", withKey, badPath, 1, nil, []string{
			"datarights: invalid configuration in " + badPath + ":",
			fmt.Sprintf("%s:%d: products[0].deadline.days: must be a whole number, not \"fifteen\"", badPath, lineOf(bad, "days: fifteen")),
			fmt.Sprintf("%s:%d: products[1].deadline.max_extention_days: unknown field; did you mean max_extension_days?", badPath, lineOf(bad, "max_extention_days:")),
			fmt.Sprintf("%s:%d: worker.job_timeout: must be a duration such as 90s, 15m or 24h, not \"ten minutes\"", badPath, lineOf(bad, "job_timeout: ten")),
			fmt.Sprintf("%s:%d: colour: unknown field", badPath, lineOf(bad, "colour: red")),
			fmt.Sprintf("%s:%d: products[0].deadline.time_zone: unknown time zone", badPath, lineOf(bad, "Asia/Shangai")),
		}},
		{"syntax", withKey, syntaxPath, 1, nil, []string{
			fmt.Sprintf("%s:%d: YAML syntax: did not find expected ',' or ']'", syntaxPath, lineOf(good, "reminders:")),
		}},
		{"no key", env, goodPath, 1, nil, []string{
			goodPath + " is valid, but serve and worker would refuse to start:\n  " + keyring.EnvVar + " is not set",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runCLI(t, dir, tc.env, "config", "check", "-config", tc.path)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tc.code, r.stdout, r.stderr)
			}
			for _, want := range tc.stdout {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
				}
			}
			for _, want := range tc.stderr {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
				}
			}
		})
	}
}
