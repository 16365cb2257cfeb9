package calendars_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/datarights/datarights/calendars"
)

// notices are the State Council notices as published, typed in as ranges,
// so the embedded files are checked against a second, independent copy.
var notices = map[int]struct {
	holidays []string // "MM-DD" or "MM-DD..MM-DD"
	workdays []string // make-up working days, "MM-DD"
}{
	// 国办发明电〔2023〕7号
	2024: {
		[]string{"01-01", "02-10..02-17", "04-04..04-06", "05-01..05-05", "06-10", "09-15..09-17", "10-01..10-07"},
		[]string{"02-04", "02-18", "04-07", "04-28", "05-11", "09-14", "09-29", "10-12"},
	},
	// 国办发明电〔2024〕12号
	2025: {
		[]string{"01-01", "01-28..02-04", "04-04..04-06", "05-01..05-05", "05-31..06-02", "10-01..10-08"},
		[]string{"01-26", "02-08", "04-27", "09-28", "10-11"},
	},
	// 国务院办公厅关于2026年部分节假日安排的通知
	2026: {
		[]string{"01-01..01-03", "02-15..02-23", "04-04..04-06", "05-01..05-05", "06-19..06-21", "09-25..09-27", "10-01..10-07"},
		[]string{"01-04", "02-14", "02-28", "05-09", "09-20", "10-10"},
	},
}

func builtinCN(t *testing.T) *calendars.Calendar {
	t.Helper()
	set, err := calendars.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	cal, ok := set.Get("cn")
	if !ok {
		t.Fatal("no cn calendar")
	}
	return cal
}

// TestCalendarBuiltinYearsMatchTheNotices checks every day of 2024–2026:
// a day works when it is Monday to Friday and not a holiday, or a make-up
// day, exactly as the notices say.
func TestCalendarBuiltinYearsMatchTheNotices(t *testing.T) {
	t.Parallel()
	cal := builtinCN(t)
	if got := cal.Years(); len(got) != 3 || got[0] != 2024 || got[1] != 2025 || got[2] != 2026 {
		t.Fatalf("years = %v, want [2024 2025 2026]", got)
	}
	for year, n := range notices {
		if !cal.Covers(year) {
			t.Errorf("%d not covered", year)
		}
		if src := cal.Source(year); !strings.Contains(src, "国务院办公厅关于"+strconv.Itoa(year)+"年部分节假日安排的通知") {
			t.Errorf("%d cites %q, not its State Council notice", year, src)
		}
		holiday, makeUp := map[string]bool{}, map[string]bool{}
		for _, r := range n.holidays {
			from, to, ok := strings.Cut(r, "..")
			if !ok {
				to = from
			}
			first := date(t, year, from)
			for d := first; !d.After(date(t, year, to)); d = d.AddDate(0, 0, 1) {
				holiday[d.Format(time.DateOnly)] = true
			}
		}
		for _, md := range n.workdays {
			d := date(t, year, md)
			if wd := d.Weekday(); wd != time.Saturday && wd != time.Sunday {
				t.Errorf("make-up day %s is a %s", d.Format(time.DateOnly), wd)
			}
			makeUp[d.Format(time.DateOnly)] = true
		}
		for d := date(t, year, "01-01"); d.Year() == year; d = d.AddDate(0, 0, 1) {
			key := d.Format(time.DateOnly)
			weekday := d.Weekday() != time.Saturday && d.Weekday() != time.Sunday
			want := makeUp[key] || (weekday && !holiday[key])
			if got := cal.IsWorkingDay(d.Year(), d.Month(), d.Day()); got != want {
				t.Errorf("%s (%s): working = %v, want %v", key, d.Weekday(), got, want)
			}
		}
	}
	// A year no notice covers answers by weekends only, and says so.
	if cal.Covers(2027) || cal.Covers(2023) {
		t.Error("covers a year without a notice")
	}
	if !cal.IsWorkingDay(2027, 1, 1) || cal.IsWorkingDay(2027, 1, 2) {
		t.Error("2027 is not weekends only")
	}
}

func TestCalendarLoadDirAddsAndCorrectsYears(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir, "cn-2027.json", `{"calendar":"cn","year":2027,"source":"test notice 2027","holidays":["2027-01-01"],"workdays":["2027-02-06"]}`)
	// A correction: 2026 with no holidays at all (for the test's sake).
	write(t, dir, "cn-2026.json", `{"calendar":"cn","year":2026,"source":"corrected","holidays":[],"workdays":[]}`)
	write(t, dir, "README.txt", "not a calendar: ignored")
	set, err := calendars.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	before, _ := set.Get("cn")
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
	if !cal.Covers(2025) || cal.IsWorkingDay(2025, 10, 1) {
		t.Error("2025 lost by loading other years")
	}
	// A calendar handed out before the load keeps answering as it did.
	if before.Covers(2027) || before.IsWorkingDay(2026, 6, 19) {
		t.Error("a calendar already handed out changed under its user")
	}
}

func TestCalendarLoadDirRejectsBadData(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		body string
		want string // besides the file name
	}{
		{"weekday make-up", `{"calendar":"cn","year":2027,"source":"s","holidays":[],"workdays":["2027-01-04"]}`, "make-up workday 2027-01-04 is a Monday"},
		{"wrong year", `{"calendar":"cn","year":2027,"source":"s","holidays":["2026-01-01"],"workdays":[]}`, "holiday 2026-01-01 is not in 2027"},
		{"both", `{"calendar":"cn","year":2027,"source":"s","holidays":["2027-02-06"],"workdays":["2027-02-06"]}`, "2027-02-06 is both"},
		{"duplicate", `{"calendar":"cn","year":2027,"source":"s","holidays":["2027-01-01","2027-01-01"],"workdays":[]}`, "2027-01-01 is listed twice"},
		{"no source", `{"calendar":"cn","year":2027,"holidays":[],"workdays":[]}`, "source is required"},
		{"bad date", `{"calendar":"cn","year":2027,"source":"s","holidays":["2027-13-01"],"workdays":[]}`, `"2027-13-01" is not a YYYY-MM-DD date`},
		{"unknown field", `{"calendar":"cn","year":2027,"source":"s","holidays":[],"workdays":[],"extra":1}`, "extra"},
		{"two values", `{"calendar":"cn","year":2027,"source":"s","holidays":[],"workdays":[]} {}`, "more than one JSON value"},
		{"bad name", `{"calendar":"CN","year":2027,"source":"s","holidays":[],"workdays":[]}`, `calendar "CN"`},
	}
	for _, tc := range cases {
		dir := t.TempDir()
		write(t, dir, "bad.json", tc.body)
		set, err := calendars.Builtin()
		if err != nil {
			t.Fatal(err)
		}
		err = set.LoadDir(dir)
		if err == nil || !strings.Contains(err.Error(), "bad.json") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one naming bad.json and %q", tc.name, err, tc.want)
		}
	}
}

func TestCalendarLoadDirIsAllOrNothing(t *testing.T) {
	t.Parallel()
	set, err := calendars.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	// A good file next to a bad one: neither is used.
	dir := t.TempDir()
	write(t, dir, "cn-2027.json", `{"calendar":"cn","year":2027,"source":"s","holidays":["2027-01-01"],"workdays":[]}`)
	write(t, dir, "cn-2028.json", `{"calendar":"cn","year":2028,"source":"s","holidays":["2027-01-01"],"workdays":[]}`)
	if err := set.LoadDir(dir); err == nil || !strings.Contains(err.Error(), "cn-2028.json") {
		t.Fatalf("err = %v, want one naming cn-2028.json", err)
	}
	if cal, _ := set.Get("cn"); cal.Covers(2027) {
		t.Error("half a directory was loaded")
	}
	// Two files for one year: which wins would depend on their names.
	dir = t.TempDir()
	write(t, dir, "a.json", `{"calendar":"cn","year":2027,"source":"s","holidays":[],"workdays":[]}`)
	write(t, dir, "b.json", `{"calendar":"cn","year":2027,"source":"t","holidays":[],"workdays":[]}`)
	if err := set.LoadDir(dir); err == nil || !strings.Contains(err.Error(), "cn 2027 is also defined by") {
		t.Errorf("two files for cn 2027: err = %v", err)
	}
	for _, bad := range []string{filepath.Join(t.TempDir(), "missing"), filepath.Join(dir, "a.json")} {
		if err := set.LoadDir(bad); err == nil {
			t.Errorf("LoadDir(%s) succeeded", bad)
		}
	}
}

func TestCalendarDueQuery(t *testing.T) {
	t.Parallel()
	set, err := calendars.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	ans, err := calendars.DueQuery{Policy: "working_days", Days: "15", Calendar: "cn", Start: "2025-09-26T10:00:00+08:00"}.Resolve(set)
	if err != nil || ans.LastDay != "2025-10-23" || len(ans.Sources) != 1 || len(ans.UncoveredYears) != 0 {
		t.Fatalf("answer %+v, %v", ans, err)
	}
	if want := time.Date(2025, 10, 24, 0, 0, 0, 0, ans.Policy.Location); !ans.Due.Equal(want) || ans.Policy.Location.String() != "Asia/Shanghai" {
		t.Errorf("due %s in %s, want %s in Asia/Shanghai", ans.Due, ans.Policy.Location, want)
	}
	// Across New Year 2025/2026: both notices are cited.
	ans, err = calendars.DueQuery{Policy: "working_days", Days: "5", Calendar: "cn", Start: "2025-12-29T10:00:00+08:00"}.Resolve(set)
	if err != nil || ans.LastDay != "2026-01-06" || len(ans.Sources) != 2 {
		t.Errorf("across New Year: %+v, %v", ans, err)
	}
	_, err = calendars.DueQuery{Policy: "weeks", Days: "x", Calendar: "mars", Start: "today", TimeZone: "Nowhere/City"}.Resolve(set)
	for _, field := range []string{"policy", "days", "calendar", "start", "time_zone"} {
		if err == nil || !strings.Contains(err.Error(), field+":") {
			t.Errorf("error %v does not name %s", err, field)
		}
	}
	if _, err := (calendars.DueQuery{Policy: "working_days", Days: "15", Calendar: "cn", Start: "2025-09-26T10:00:00+08:00"}).Resolve(nil); err == nil || !strings.Contains(err.Error(), "unknown calendar") {
		t.Errorf("no set: err = %v", err)
	}
}

func write(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// date parses "MM-DD" in year.
func date(t *testing.T, year int, md string) time.Time {
	t.Helper()
	d, err := time.Parse(time.DateOnly, strconv.Itoa(year)+"-"+md)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
