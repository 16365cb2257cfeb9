package main

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/datarights/datarights/api/apitest"
)

// TestMain runs this package's tests four at a time unless
// -parallel says otherwise. They are end-to-end tests that spend most of
// their time waiting on Postgres, River's fetch loop, SMTP and Chromium, so
// go test's default (one per core) left a 2-core machine mostly idle and
// the package near go test's 10-minute limit under load: 4 min 3 s at the
// default against 2 min 37 s at four, measured side by side with other
// load present (docs/reliability.md). Each test holds about 10–15 Postgres
// connections at its peak, so four stay well inside the server's default
// max_connections of 100 (41 seen at most) on any machine; more cores do
// not make that budget larger.
func TestMain(m *testing.M) {
	// The CLI tests run this binary as datarights itself (cli_test.go).
	if os.Getenv(cliChildEnv) == "1" {
		main()
		os.Exit(0)
	}
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "test.parallel" {
			explicit = true
		}
	})
	if !explicit {
		if err := flag.Set("test.parallel", "4"); err != nil {
			panic(err)
		}
	}
	code := m.Run()
	if path := os.Getenv("DATARIGHTS_OPENAPI_STATS"); path != "" {
		// How much of the API description the tests exercised: every
		// exchange through e.client is checked against it (apitest). To
		// a file: go test shows a passing package's output only with -v.
		checked, spent, byRoute := apitest.Stats()
		var b strings.Builder
		fmt.Fprintf(&b, "%d exchanges checked against api/openapi.yaml in %s\n", checked, spent.Round(time.Millisecond))
		for _, pattern := range slices.Sorted(maps.Keys(byRoute)) {
			fmt.Fprintf(&b, "%6d  %s\n", byRoute[pattern], pattern)
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}
