package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
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

	// Metrics are served, with the request counted and no personal data.
	// River reports job outcomes asynchronously: wait for the last one.
	var text string
	waitFor(t, 10*time.Second, "deliver job in /metrics", func() bool {
		resp, err := http.Get(e.base + "/metrics")
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
