package calendars_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/datarights/datarights/calendars"
)

func TestBuiltinYearsAreWellFormed(t *testing.T) {
	t.Parallel()
	set, err := calendars.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	cal, ok := set.Get("cn")
	if !ok {
		t.Fatal("no cn calendar")
	}
	if got := cal.Years(); len(got) != 3 || got[0] != 2024 || got[2] != 2026 {
		t.Fatalf("years = %v, want 2024–2026", got)
	}
	for _, y := range cal.Years() {
		if !strings.Contains(cal.Source(y), "国务院办公厅") {
			t.Errorf("%d cites %q, not a State Council notice", y, cal.Source(y))
		}
	}
	cases := []struct {
		date    string
		working bool
	}{
		{"2025-10-01", false}, {"2025-10-08", false}, {"2025-10-11", true}, // Saturday make-up
		{"2025-09-28", true}, {"2025-10-12", false}, {"2026-02-14", true}, {"2026-02-23", false},
		{"2026-05-09", true}, {"2026-06-19", false}, {"2024-02-18", true}, {"2024-02-09", true},
		{"2027-01-01", true}, // not covered: weekends only
	}
	for _, c := range cases {
		d, _ := time.Parse(time.DateOnly, c.date)
		if got := cal.IsWorkingDay(d.Year(), d.Month(), d.Day()); got != c.working {
			t.Errorf("%s working = %v, want %v", c.date, got, c.working)
		}
	}
	if cal.Covers(2027) || !cal.Covers(2025) {
		t.Error("Covers is wrong")
	}
}

func TestLoadDirAddsAndCorrectsYears(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("cn-2027.json", `{"calendar":"cn","year":2027,"source":"test notice 2027","holidays":["2027-01-01"],"workdays":["2027-02-06"]}`)
	// A correction: 2026-06-19 made a working day (for the test's sake).
	write("cn-2026.json", `{"calendar":"cn","year":2026,"source":"corrected","holidays":[],"workdays":[]}`)
	set, err := calendars.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	if err := set.LoadDir(dir); err != nil {
		t.Fatal(err)
	}
	cal, _ := set.Get("cn")
	if !cal.Covers(2027) || cal.IsWorkingDay(2027, 1, 1) || !cal.IsWorkingDay(2027, 2, 6) {
		t.Error("2027 not loaded")
	}
	if !cal.IsWorkingDay(2026, 6, 19) || cal.Source(2026) != "corrected" {
		t.Error("2026 not replaced")
	}
}

func TestLoadDirRejectsBadData(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"weekday make-up": `{"calendar":"cn","year":2027,"source":"s","holidays":[],"workdays":["2027-01-04"]}`,
		"wrong year":      `{"calendar":"cn","year":2027,"source":"s","holidays":["2026-01-01"],"workdays":[]}`,
		"both":            `{"calendar":"cn","year":2027,"source":"s","holidays":["2027-02-06"],"workdays":["2027-02-06"]}`,
		"duplicate":       `{"calendar":"cn","year":2027,"source":"s","holidays":["2027-01-01","2027-01-01"],"workdays":[]}`,
		"no source":       `{"calendar":"cn","year":2027,"holidays":[],"workdays":[]}`,
		"bad date":        `{"calendar":"cn","year":2027,"source":"s","holidays":["2027-13-01"],"workdays":[]}`,
		"unknown field":   `{"calendar":"cn","year":2027,"source":"s","holidays":[],"workdays":[],"extra":1}`,
	}
	for name, body := range cases {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "bad.json"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		set, _ := calendars.Builtin()
		err := set.LoadDir(dir)
		if err == nil || !strings.Contains(err.Error(), "bad.json") {
			t.Errorf("%s: err = %v, want one naming the file", name, err)
		}
	}
	set, _ := calendars.Builtin()
	if err := set.LoadDir(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing directory loaded")
	}
}

func TestDueQueryReportsFields(t *testing.T) {
	t.Parallel()
	set, _ := calendars.Builtin()
	ans, err := calendars.DueQuery{Policy: "working_days", Days: "15", Calendar: "cn", Start: "2025-09-26T10:00:00+08:00"}.Resolve(set)
	if err != nil || ans.LastDay != "2025-10-23" || len(ans.Sources) != 1 {
		t.Fatalf("answer %+v, %v", ans, err)
	}
	_, err = calendars.DueQuery{Policy: "weeks", Days: "x", Calendar: "mars", Start: "today", TimeZone: "Nowhere/City"}.Resolve(set)
	for _, field := range []string{"policy", "days", "calendar", "start", "time_zone"} {
		if err == nil || !strings.Contains(err.Error(), field+":") {
			t.Errorf("error %v does not name %s", err, field)
		}
	}
}
