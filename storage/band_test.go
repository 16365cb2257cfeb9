package storage_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// TestBandSQLMatchesBandOf keeps the SQL band (staff queue filter, metrics)
// and the Go band (request views) in step, at the edges of each band
// (TestBandsAgreeOnGeneratedRequests: on many requests).
func TestBandSQLMatchesBandOf(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	now := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
	start := now.Add(-80 * time.Hour)
	ptr := func(t time.Time) *time.Time { return &t }

	cases := []struct {
		status rights.Status
		due    *time.Time
		start  *time.Time
	}{
		{rights.StatusInProgress, ptr(now.Add(time.Hour)), ptr(now.Add(-time.Hour))},       // on track
		{rights.StatusInProgress, ptr(start.Add(100 * time.Hour)), ptr(start)},             // exactly 80%: due soon
		{rights.StatusInProgress, ptr(start.Add(100*time.Hour + time.Second)), ptr(start)}, // just under 80%
		{rights.StatusReceived, ptr(now), ptr(start)},                                      // due now: overdue
		{rights.StatusVerified, ptr(now.Add(-time.Second)), ptr(start)},                    // overdue
		{rights.StatusPaused, ptr(now.Add(-time.Hour)), ptr(start)},                        // paused beats overdue
		{rights.StatusReceived, nil, nil},                                                  // no deadline yet
		{rights.StatusCompleted, ptr(now.Add(-time.Hour)), ptr(start)},                     // closed
		{rights.StatusFailed, ptr(now.Add(time.Hour)), nil},                                // no start: on track
	}
	var requests []*rights.Request
	for _, c := range cases {
		r := newRequest()
		r.Status, r.DueAt, r.ClockStartedAt = c.status, c.due, c.start
		if c.status.Terminal() {
			r.CompletedAt = ptr(now.Add(-time.Minute)) // as storage.Transition sets it
		}
		if err := b.db.InTx(ctx, func(tx pgx.Tx) error { return storage.InsertRequest(ctx, tx, r, nil) }); err != nil {
			t.Fatal(err)
		}
		requests = append(requests, r)
	}
	// The on-track band computes each request's due-soon instant until the
	// stored ones are of the caller's fraction, then reads them; after a
	// change of the fraction, the new one's.
	want := checkBandEdges(t, b, requests, now, 0.8, "computed")
	if want[rights.BandDueSoon] != 1 || want[rights.BandOverdue] != 2 {
		t.Fatalf("test cases no longer cover the edges: %v", want)
	}
	setFraction(t, b, 0.8)
	checkBandEdges(t, b, requests, now, 0.8, "stored")
	setFraction(t, b, 0.85)
	if changed := checkBandEdges(t, b, requests, now, 0.85, "stored after a change"); changed[rights.BandDueSoon] != 0 {
		t.Fatalf("at 0.85 the edge of 0.8 is still due soon: %v", changed)
	}
}

// checkBandEdges compares ListRequests, CountOpen and CountOpenByBand with
// rights.BandOf at fraction, band by band, and returns BandOf's counts.
func checkBandEdges(t *testing.T, b testBundle, requests []*rights.Request, now time.Time, fraction float64, label string) map[rights.Band]int {
	t.Helper()
	ctx := context.Background()
	want := map[rights.Band]int{}
	for _, r := range requests {
		want[rights.BandOf(r, now, fraction)]++
	}
	for _, band := range rights.Bands {
		list, _, err := storage.ListRequests(ctx, b.db.Pool, storage.RequestFilter{Band: band, Now: now, DueSoonAt: fraction})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != want[band] {
			t.Errorf("%s: band %s: SQL finds %d, BandOf %d", label, band, len(list), want[band])
		}
	}
	counts, err := storage.CountOpen(ctx, b.db.Pool, now, fraction)
	if err != nil {
		t.Fatal(err)
	}
	got := map[rights.Band]int{}
	for _, c := range counts {
		got[rights.Band(c.Band)] += c.Count
	}
	for _, band := range rights.Bands {
		if band != rights.BandClosed && got[band] != want[band] {
			t.Errorf("%s: CountOpen band %s = %d, want %d", label, band, got[band], want[band])
		}
	}
	// The console's counts use the band filter's rules.
	byBand, err := storage.CountOpenByBand(ctx, b.db.Pool, storage.RequestFilter{Now: now, DueSoonAt: fraction})
	if err != nil {
		t.Fatal(err)
	}
	for _, band := range rights.Bands {
		if band != rights.BandClosed && byBand[band] != want[band] {
			t.Errorf("%s: CountOpenByBand %s = %d, want %d", label, band, byBand[band], want[band])
		}
	}
	if _, ok := byBand[rights.BandClosed]; ok {
		t.Error("CountOpenByBand counts closed requests")
	}
	return want
}

func TestListSortedByDeadlinePaginates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	base := time.Date(2026, 5, 10, 0, 0, 0, 0, time.UTC)

	for i := range 7 {
		r := newRequest()
		if i < 5 {
			due := base.AddDate(0, 0, 5-i) // inserted latest-due first
			r.DueAt = &due
		}
		if err := b.db.InTx(ctx, func(tx pgx.Tx) error { return storage.InsertRequest(ctx, tx, r, nil) }); err != nil {
			t.Fatal(err)
		}

	}
	var got []*rights.Request
	cursor := ""
	for {
		page, next, err := storage.ListRequests(ctx, b.db.Pool, storage.RequestFilter{SortByDue: true, Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page...)
		if next == "" {
			break
		}
		cursor = next
	}
	if len(got) != 7 {
		t.Fatalf("paged through %d requests, want 7", len(got))
	}
	for i := 1; i < 5; i++ {
		if got[i].DueAt.Before(*got[i-1].DueAt) {
			t.Errorf("position %d due %s before %s", i, got[i].DueAt, got[i-1].DueAt)
		}
	}
	if got[5].DueAt != nil || got[6].DueAt != nil {
		t.Error("requests without a deadline are not last")
	}

}

// TestBandCountsFromStoredCountsOnlyWhenLarge: the queue's counts are
// counted live on a small backlog, taken from the worker's stored counts
// (with their time) on a large one, and counted live whenever the filter
// names something the stored counts are not kept by.
func TestBandCountsFromStoredCountsOnlyWhenLarge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	now := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
	for range 3 {
		r := newRequest()
		r.Status, r.DueAt = rights.StatusInProgress, ptrTime(now.Add(-time.Hour)) // overdue
		if err := b.db.InTx(ctx, func(tx pgx.Tx) error { return storage.InsertRequest(ctx, tx, r, nil) }); err != nil {
			t.Fatal(err)
		}
	}
	f := storage.RequestFilter{Now: now, DueSoonAt: 0.8}

	// Nothing stored yet: live.
	counts, asOf, err := storage.BandCounts(ctx, b.db.Pool, f, 1)
	if err != nil || !asOf.IsZero() || counts[rights.BandOverdue] != 3 {
		t.Fatalf("nothing stored: %v as of %v, %v; want 3 overdue, live", counts, asOf, err)
	}

	// Stored counts, deliberately unlike the table, so the test can tell
	// which was read.
	takenAt := now.Add(-time.Minute)
	stored := []storage.OpenCount{
		{Product: "webank", Status: "in_progress", Band: "overdue", Count: 40},
		{Product: "wechat", Status: "in_progress", Band: "overdue", Count: 2},
		{Product: "webank", Status: "verified", Band: "on_track", Count: 7},
	}
	if err := storage.SaveOpenCounts(ctx, b.db.Pool, takenAt, stored); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name        string
		f           storage.RequestFilter
		limit       int
		live        bool
		overdue, on int
	}{
		{"small backlog: live", f, 1000, true, 3, 0},
		{"large backlog: stored", f, 10, false, 42, 7},
		{"large, one product", storage.RequestFilter{Now: now, DueSoonAt: 0.8, Product: "webank"}, 10, false, 40, 7},
		{"large, staff scope", storage.RequestFilter{Now: now, DueSoonAt: 0.8, Products: []string{"wechat"}}, 10, false, 2, 0},
		{"large, one status", storage.RequestFilter{Now: now, DueSoonAt: 0.8, Status: rights.StatusVerified}, 10, false, 0, 7},
		{"large, by type: live", storage.RequestFilter{Now: now, DueSoonAt: 0.8, Type: rights.TypeCopy}, 10, true, 3, 0},
	} {
		counts, asOf, err := storage.BandCounts(ctx, b.db.Pool, c.f, c.limit)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if c.live != asOf.IsZero() || (!c.live && !asOf.Equal(takenAt)) {
			t.Errorf("%s: as of %v, want live %v", c.name, asOf, c.live)
		}
		if counts[rights.BandOverdue] != c.overdue || counts[rights.BandOnTrack] != c.on {
			t.Errorf("%s: %v, want %d overdue and %d on track", c.name, counts, c.overdue, c.on)
		}
		if _, ok := counts[rights.BandNoDeadline]; !ok {
			t.Errorf("%s: bands with none are missing: %v", c.name, counts)
		}
	}
}

func ptrTime(t time.Time) *time.Time { return &t }
