package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSLADueCommand(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args    string
		first   string
		warning bool
	}{
		{"--policy working_days --days 15 --calendar cn --start 2025-09-26T10:00:00+08:00", "2025-10-23", false},
		{"--policy calendar_days --days 15 --calendar cn --start 2025-09-16T10:00:00+08:00", "2025-10-01", false},
		{"--policy calendar_days --days 15 --calendar cn --start 2025-09-16T10:00:00+08:00 --roll-forward", "2025-10-09", false},
		{"--policy working_days --days 5 --calendar cn --start 2026-04-29T10:00:00+08:00", "2026-05-09", false},
		{"--policy working_days --days 15 --calendar cn --start 2026-12-20T10:00:00+08:00", "2027-01-08", true},
	}
	for _, c := range cases {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"sla", "due"}, strings.Fields(c.args)...), func(string) string { return "" }, &out, io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", c.args, err)
		}
		first, _, _ := strings.Cut(out.String(), "\n")
		if first != c.first {
			t.Errorf("%s: first line %q, want %q", c.args, first, c.first)
		}
		if got := strings.Contains(out.String(), "WARNING"); got != c.warning {
			t.Errorf("%s: warning %v, want %v:\n%s", c.args, got, c.warning, out.String())
		}
	}
	err := run(context.Background(), []string{"sla", "due", "--policy", "working_days", "--days", "15", "--start", "26/09/2025"}, func(string) string { return "" }, io.Discard, io.Discard)
	var usage usageError
	if !errors.As(err, &usage) || !strings.Contains(err.Error(), "--start must be RFC 3339") {
		t.Errorf("bad start: %v", err)
	}
}

// TestSLADueOutputAndMistakes calls runSLA directly: the first line is the
// hand-checked last day, the rest says how it was reached, and every
// mistake is a usage error that names the flag.
func TestSLADueOutputAndMistakes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A made-up 2027 for the test: only New Year's Day off.
	if err := os.WriteFile(filepath.Join(dir, "cn-2027.json"),
		[]byte(`{"calendar":"cn","year":2027,"source":"test notice for 2027","holidays":["2027-01-01"],"workdays":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		args  string
		first string
		want  []string // further lines, in any order
		warn  bool
	}{
		// 09-28 Sun make-up 1; 09-29, 30 2-3; 10-01..08 holiday; 10-09..11 4-6;
		// 10-13..17 7-11; 10-20..23 12-15.
		{"DESIGN example", "--policy working_days --days 15 --calendar cn --start 2025-09-26T10:00:00+08:00", "2025-10-23",
			[]string{"due: 2025-10-24T00:00:00+08:00 (24:00 of 2025-10-23, Asia/Shanghai)", "policy: 15 working_days, counted from the day after 2025-09-26", "国办发明电〔2024〕12号"}, false},
		// Weekends only: 09-29..10-03 1-5; 10-06..10 6-10; 10-13..17 11-15.
		{"no calendar", "--policy working_days --days 15 --start 2025-09-26T10:00:00+08:00", "2025-10-17",
			[]string{"calendar: none", "WARNING: no published holiday calendar for 2025:"}, true},
		// 02-15..23 holiday: the first working day after the make-up Saturday.
		{"start on a make-up Saturday", "--policy working_days --days 1 --calendar cn --start 2026-02-14T09:00:00+08:00", "2026-02-24", nil, false},
		// 09-16 + 15 = 10-01, rolled past 10-01..08.
		{"roll forward", "--policy calendar_days --days 15 --calendar cn --start 2025-09-16T10:00:00+08:00 --roll-forward", "2025-10-09",
			[]string{"policy: 15 calendar_days, rolled forward to a working day"}, false},
		// 12-21..25 1-5; 12-28..31 6-9; 2027-01-01 Fri 10 (weekends only); 01-04..08 11-15.
		{"into 2027", "--policy working_days --days 15 --calendar cn --start 2026-12-20T10:00:00+08:00", "2027-01-08",
			[]string{"WARNING: no published holiday calendar for 2027:", "国务院办公厅关于2026年部分节假日安排的通知"}, true},
		// With the directory's 2027, 01-01 is off: 01-04..08 10-14; 01-11 15.
		{"into 2027 with --calendars-dir", "--policy working_days --days 15 --calendar cn --start 2026-12-20T10:00:00+08:00 --calendars-dir " + dir, "2027-01-11",
			[]string{"calendar cn: test notice for 2027"}, false},
		// In UTC the start day is 09-28 (a make-up Sunday, not counted):
		// 09-29, 30 1-2; 10-09..11 3-5; 10-13..17 6-10; 10-20..24 11-15.
		// In Shanghai it is 09-29, and the last day 10-27.
		{"time zone", "--policy working_days --days 15 --calendar cn --start 2025-09-28T16:30:00Z --time-zone UTC", "2025-10-24",
			[]string{"due: 2025-10-25T00:00:00Z"}, false},
		{"time zone default", "--policy working_days --days 15 --calendar cn --start 2025-09-28T16:30:00Z", "2025-10-27", nil, false},
	}
	for _, tc := range cases {
		var out bytes.Buffer
		if err := runSLA(context.Background(), append([]string{"due"}, strings.Fields(tc.args)...), noEnv, &out, io.Discard); err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		first, rest, _ := strings.Cut(out.String(), "\n")
		if first != tc.first {
			t.Errorf("%s: first line %q, want %q", tc.name, first, tc.first)
		}
		for _, w := range tc.want {
			if !strings.Contains(rest, w) {
				t.Errorf("%s: output lacks %q:\n%s", tc.name, w, out.String())
			}
		}
		if got := strings.Contains(rest, "WARNING"); got != tc.warn {
			t.Errorf("%s: warning %v, want %v:\n%s", tc.name, got, tc.warn, out.String())
		}
	}

	const good = "due --policy working_days --days 15 --calendar cn --start 2025-09-26T10:00:00+08:00"
	mistakes := []struct {
		name string
		args string
		want string
	}{
		{"no subcommand", "", "sla due"},
		{"unknown subcommand", "when --policy working_days --days 15", "sla due"},
		{"bad start", "due --policy working_days --days 15 --start 26/09/2025", "--start must be RFC 3339 like 2025-09-26T10:00:00+08:00"},
		{"no start", "due --policy working_days --days 15", "--start must be RFC 3339"},
		{"bad days", "due --policy working_days --days fifteen --start 2025-09-26T10:00:00+08:00", "--days must be a whole number"},
		{"days out of range", "due --policy working_days --days 0 --start 2025-09-26T10:00:00+08:00", "--days must be between 1 and 366"},
		{"bad policy", "due --policy weeks --days 15 --start 2025-09-26T10:00:00+08:00", `--policy must be "calendar_days" or "working_days"`},
		{"unknown calendar", "due --policy working_days --days 15 --calendar xx --start 2025-09-26T10:00:00+08:00", `--calendar unknown calendar "xx"; known: cn`},
		{"bad time zone", good + " --time-zone Mars/Olympus", `--time-zone unknown time zone "Mars/Olympus"`},
		{"unknown flag", good + " --weeks 2", "flag provided but not defined: -weeks"},
		{"extra argument", good + " tomorrow", `unexpected argument "tomorrow"`},
	}
	for _, m := range mistakes {
		err := runSLA(context.Background(), strings.Fields(m.args), noEnv, io.Discard, io.Discard)
		var usage usageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), m.want) {
			t.Errorf("%s: err = %v, want a usage error saying %q", m.name, err, m.want)
		}
	}

	// A calendars directory that is not there is not a usage mistake, but
	// still names the flag.
	err := runSLA(context.Background(), append(strings.Fields(good), "--calendars-dir", filepath.Join(dir, "missing")), noEnv, io.Discard, io.Discard)
	var usage usageError
	if err == nil || errors.As(err, &usage) || !strings.Contains(err.Error(), "--calendars-dir") {
		t.Errorf("missing calendars dir: err = %v", err)
	}
	// -h prints the flags, to stdout, and is not an error.
	var help bytes.Buffer
	if err := run(context.Background(), []string{"sla", "due", "-h"}, noEnv, &help, io.Discard); err != nil || !strings.Contains(help.String(), "-roll-forward") {
		t.Errorf("-h: err = %v, printed %q", err, help.String())
	}
}

func noEnv(string) string { return "" }

func TestSLADueEndpointAndClockControl(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "")
	code, body := e.call("GET", "/api/v1/sla/due?policy=working_days&days=15&calendar=cn&start=2025-09-26T10:00:00%2B08:00", "", nil)
	if code != http.StatusOK || body["last_day"] != "2025-10-23" {
		t.Fatalf("sla/due = %d %v", code, body)
	}
	code, body = e.call("GET", "/api/v1/sla/due?policy=working_days&days=15&calendar=cn&start=2026-12-20T10:00:00%2B08:00", "", nil)
	if code != http.StatusOK || body["last_day"] != "2027-01-08" || body["warning"] == nil {
		t.Fatalf("sla/due into 2027 = %d %v", code, body)
	}
	if code, body := e.call("GET", "/api/v1/sla/due?policy=weeks&days=15", "", nil); code != http.StatusBadRequest {
		t.Fatalf("bad sla/due = %d %v", code, body)
	}

	// Pausing and resuming open requests is tested with an injected clock in
	// jobs; here, that a finished request refuses them.
	code, body = e.call("POST", "/api/v1/requests", testToken, copyTicket("demo-user-6"))
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	done := e.waitStatus(id, "completed", 60*time.Second)
	if done["last_day"] == nil || done["sla_band"] != "closed" {
		t.Errorf("completed request: last_day %v band %v", done["last_day"], done["sla_band"])
	}
	if code, _ := e.call("POST", "/api/v1/requests/"+id+"/pause", testToken, map[string]string{"reason": "late"}); code != http.StatusConflict {
		t.Errorf("pausing a completed request = %d, want 409", code)
	}
	if code, _ := e.call("POST", "/api/v1/requests/"+id+"/extend", testToken, map[string]any{"days": 5, "reason": "complex"}); code != http.StatusConflict {
		t.Errorf("extending a completed request = %d, want 409", code)
	}
	if code, _ := e.call("POST", "/api/v1/requests/"+id+"/pause", testToken, map[string]string{}); code != http.StatusBadRequest {
		t.Errorf("pause without a reason = %d, want 400", code)
	}

	// The staff queue, soonest deadline first, and by band.
	code, list := e.call("GET", "/api/v1/requests?sort=due_at&sla_band=closed", testToken, nil)
	if code != http.StatusOK || len(list["requests"].([]any)) != 1 {
		t.Fatalf("queue = %d %v", code, list)
	}
	if code, _ := e.call("GET", "/api/v1/requests?sla_band=late", testToken, nil); code != http.StatusBadRequest {
		t.Errorf("bad band = %d", code)
	}
	// An open band is a queue in deadline order; newest first it is
	// refused, naming the parameter.
	if code, list := e.call("GET", "/api/v1/requests?sla_band=on_track", testToken, nil); code != http.StatusOK {
		t.Errorf("on_track band, default order = %d %v", code, list)
	}
	code, refused := e.call("GET", "/api/v1/requests?sla_band=overdue&sort=-received_at", testToken, nil)
	if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(refused), "sort") {
		t.Errorf("overdue band newest first = %d %v, want 400 naming sort", code, refused)
	}

	// Metrics are served, with the request counted and no personal data.
	// River reports job outcomes asynchronously: wait for the last one.
	var text string
	waitFor(t, 10*time.Second, "deliver job in /metrics", func() bool {
		resp, err := e.client.Get(e.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		text = string(raw)
		return strings.Contains(text, `datarights_river_jobs_total{kind="deliver",outcome="completed"}`)
	})
	for _, want := range []string{
		`datarights_requests_received_total{channel="staff",product="webank",type="copy"} 1`,
		`datarights_requests_completed_total{channel="staff",product="webank",type="copy"} 1`,
		`datarights_river_jobs_total{kind="deliver",outcome="completed"}`,
		`datarights_store_task_duration_seconds_count{action="export",store="demo_bank"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(text, "demo-user") || strings.Contains(text, "@example.com") {
		t.Error("/metrics contains personal data")
	}
}
