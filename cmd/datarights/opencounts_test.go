package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/demo"
	"github.com/datarights/datarights/storage"
	"github.com/datarights/datarights/storage/storagetest"
)

// TestOpenCountsAreReadFromTheLastCount checks what a scrape reports from
// the stored counts: nothing (an error) before any count and when the count
// is stale, the counts plus a zero for every product, open status and band
// otherwise.
func TestOpenCountsAreReadFromTheLastCount(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, url := storagetest.NewDB(t, "counts")
	cfg, err := config.Parse("counts.yaml", []byte(demo.ConfigYAML(url, "postgres://unused/bank", filepath.Join(t.TempDir(), "data"))), nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
	if _, err := openCountsForMetrics(ctx, db, cfg, now); err == nil {
		t.Error("no stored count reported as counts")
	}
	stored := []storage.OpenCount{{Product: "webank", Status: "in_progress", Band: "overdue", Count: 7}}
	if err := storage.SaveOpenCounts(ctx, db.Pool, now.Add(-10*time.Minute), stored); err != nil {
		t.Fatal(err)
	}
	if _, err := openCountsForMetrics(ctx, db, cfg, now); err == nil || !strings.Contains(err.Error(), "old") {
		t.Errorf("a 10-minute-old count: %v, want an error saying it is old", err)
	}
	if err := storage.SaveOpenCounts(ctx, db.Pool, now.Add(-time.Second), stored); err != nil {
		t.Fatal(err)
	}
	counts, err := openCountsForMetrics(ctx, db, cfg, now)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, c := range counts {
		got[c.Product+"/"+c.Status+"/"+c.Band] = c.Count + 1 // +1: present
	}
	for key, want := range map[string]int{
		"webank/in_progress/overdue": 8,
		"wechat/in_progress/overdue": 1, // a zero
		"wechat/paused/paused":       1,
		"webank/received/due_soon":   1,
	} {
		if got[key] != want {
			t.Errorf("%s: %d, want %d (count+1)", key, got[key]-1, want-1)
		}
	}
	for _, absent := range []string{"wechat/paused/overdue", "webank/completed/closed"} {
		if _, ok := got[absent]; ok {
			t.Errorf("%s reported; a paused request is only paused and closed ones are not open", absent)
		}
	}
}

// TestMetricsReportOpenRequestsFromAWorkersCount runs the service with a
// one-second counting interval and scrapes until the worker's count shows.
func TestMetricsReportOpenRequestsFromAWorkersCount(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, false, "")
	e.editConfig(t, "sla:\n", "sla:\n  counts_interval: 1s\n")
	e.start()
	want := `datarights_open_requests{band="overdue",product="wechat",status="in_progress"} 0`
	deadline := time.Now().Add(60 * time.Second)
	var body string
	for time.Now().Before(deadline) {
		resp, err := e.client.Get(e.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		if strings.Contains(body, want) {
			break
		}
		time.Sleep(200 * time.Millisecond) // polling a scrape, not standing in for an event
	}
	if !strings.Contains(body, want) {
		t.Fatalf("no %q in /metrics after 60s", want)
	}
}
