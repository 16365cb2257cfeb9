package storage_test

import (
	"context"
	"encoding/base64"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// setFraction stores fraction and recomputes, as a process does at start.
func setFraction(t *testing.T, b testBundle, fraction float64) storage.RecomputeResult {
	t.Helper()
	ctx := context.Background()
	if _, _, err := storage.SetDueSoonFraction(ctx, b.db.Pool, fraction); err != nil {
		t.Fatal(err)
	}
	res, err := storage.RecomputeDueSoon(ctx, b.db.Pool, storage.RecomputeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ready, err := storage.DueSoonReady(ctx, b.db.Pool, fraction); err != nil || !ready {
		t.Fatalf("after the recompute the instants of %v are not ready: %v", fraction, err)
	}
	return res
}

// generatedRequests inserts n requests of every kind a band can see, many
// of them on the edge of due soon at now (their instant at fraction is now,
// or a microsecond either side), with periods of many lengths.
func generatedRequests(t *testing.T, b testBundle, n int, now time.Time, fraction float64) []*rights.Request {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(13, 28))
	statuses := []rights.Status{rights.StatusReceived, rights.StatusVerified, rights.StatusInProgress,
		rights.StatusAwaitingApproval, rights.StatusFailed, rights.StatusPaused, rights.StatusCompleted}
	micro := func(max time.Duration) time.Duration {
		return time.Duration(rng.Int64N(int64(max/time.Microsecond))) * time.Microsecond
	}
	var list []*rights.Request
	err := b.db.InTx(ctx, func(tx pgx.Tx) error {
		for i := range n {
			r := newRequest()
			r.Status = statuses[rng.IntN(len(statuses))]
			start := now.Add(-micro(40 * 24 * time.Hour))
			due := start.Add(time.Hour + micro(60*24*time.Hour))
			switch i % 10 {
			case 0: // no deadline yet
				r.ClockStartedAt, r.DueAt = nil, nil
			case 1: // a deadline, no clock start: on track until overdue
				r.DueAt = &due
			case 2, 3, 4: // due soon exactly now, or a microsecond either side
				shift := now.Sub(rights.DueSoonInstant(start, due, fraction)) + time.Duration(i%3-1)*time.Microsecond
				start, due = start.Add(shift), due.Add(shift)
				fallthrough
			default:
				r.ClockStartedAt, r.DueAt = &start, &due
			}
			if r.Status.Terminal() {
				done := now.Add(-time.Minute)
				r.CompletedAt = &done
			}
			if err := storage.InsertRequest(ctx, tx, r, nil); err != nil {
				return err
			}
			list = append(list, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// checkBands compares, for each band, the requests ListRequests finds (by
// id), CountOpen and CountOpenByBand with rights.BandOf at fraction.
func checkBands(t *testing.T, b testBundle, list []*rights.Request, now time.Time, fraction float64, label string) {
	t.Helper()
	ctx := context.Background()
	want := map[rights.Band][]string{}
	for _, r := range list {
		band := rights.BandOf(r, now, fraction)
		want[band] = append(want[band], r.ID)
	}
	for _, band := range rights.Bands {
		for _, sortByDue := range []bool{true, false} {
			got, _, err := storage.ListRequests(ctx, b.db.Pool, storage.RequestFilter{Band: band, Now: now, DueSoonAt: fraction,
				SortByDue: sortByDue, Limit: len(list) + 1})
			if err != nil {
				t.Fatal(err)
			}
			ids := make([]string, len(got))
			for i, r := range got {
				ids[i] = r.ID
			}
			slices.Sort(ids)
			slices.Sort(want[band])
			if !slices.Equal(ids, want[band]) {
				t.Errorf("%s: band %s (by due %v): SQL lists %d requests, BandOf places %d, not the same ones", label, band, sortByDue, len(ids), len(want[band]))
			}
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
	byBand, err := storage.CountOpenByBand(ctx, b.db.Pool, storage.RequestFilter{Now: now, DueSoonAt: fraction})
	if err != nil {
		t.Fatal(err)
	}
	for _, band := range rights.Bands {
		if band == rights.BandClosed {
			continue
		}
		if got[band] != len(want[band]) || byBand[band] != len(want[band]) {
			t.Errorf("%s: band %s: CountOpen %d, CountOpenByBand %d, BandOf %d", label, band, got[band], byBand[band], len(want[band]))
		}
	}
}

// checkStored compares each request's stored due_soon_at with the instant
// rights.DueSoonInstant gives at fraction.
func checkStored(t *testing.T, b testBundle, list []*rights.Request, fraction float64, label string) {
	t.Helper()
	stored := map[string]*time.Time{}
	rows, err := b.db.Pool.Query(context.Background(), `SELECT id::text, due_soon_at FROM requests`)
	if err != nil {
		t.Fatal(err)
	}
	var (
		id string
		at *time.Time
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &at}, func() error { stored[id] = at; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, r := range list {
		var want *time.Time
		switch {
		case r.CompletedAt != nil || r.Status == rights.StatusPaused || r.DueAt == nil:
		case r.ClockStartedAt == nil:
			want = r.DueAt
		default:
			w := rights.DueSoonInstant(*r.ClockStartedAt, *r.DueAt, fraction)
			want = &w
		}
		if got := stored[r.ID]; (got == nil) != (want == nil) || (got != nil && !got.Equal(*want)) {
			t.Fatalf("%s: request %s (%s, clock %v, due %v) stores due_soon_at %v, want %v", label, r.ID, r.Status, r.ClockStartedAt, r.DueAt, got, want)
		}
	}
}

// TestBandsAgreeOnGeneratedRequests: the staff queue's band conditions
// (stored instants and computed ones), the counts and rights.BandOf place
// every request in the same band, on many generated requests, before and
// after the fraction changes, and while the instants are of another
// fraction than the caller's (a recompute under way, a rolling deploy).
func TestBandsAgreeOnGeneratedRequests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	now := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)

	// Inserted before any fraction is stored (as after the migration):
	// nothing is ready, every list computes.
	list := generatedRequests(t, b, 600, now, 0.8)
	if ready, err := storage.DueSoonReady(ctx, b.db.Pool, 0.8); err != nil || ready {
		t.Fatalf("ready before any fraction was stored: %v, %v", ready, err)
	}
	checkBands(t, b, list, now, 0.8, "no fraction stored")

	res := setFraction(t, b, 0.8)
	if res.Visited == 0 || res.Changed == 0 {
		t.Fatalf("first recompute: %+v", res)
	}
	checkStored(t, b, list, 0.8, "0.8")
	checkBands(t, b, list, now, 0.8, "0.8 stored")
	for band, want := range map[rights.Band]int{rights.BandDueSoon: 50, rights.BandOnTrack: 50} {
		n := 0
		for _, r := range list {
			if rights.BandOf(r, now, 0.8) == band {
				n++
			}
		}
		if n < want {
			t.Fatalf("the generated requests have %d in %s, too few to test it", n, band)
		}
	}
	// A replica configured otherwise still lists by its own fraction.
	checkBands(t, b, list, now, 0.6, "0.8 stored, listed at 0.6")

	// The fraction changes: until the recompute has run the instants are
	// of 0.8, and lists at 0.6 compute theirs.
	if prev, changed, err := storage.SetDueSoonFraction(ctx, b.db.Pool, 0.6); err != nil || !changed || prev != 0.8 {
		t.Fatalf("change to 0.6: previous %v, changed %v, %v", prev, changed, err)
	}
	if ready, _ := storage.DueSoonReady(ctx, b.db.Pool, 0.6); ready {
		t.Fatal("ready at 0.6 before the recompute")
	}
	checkBands(t, b, list, now, 0.6, "0.6 stored, not recomputed")
	res, err := storage.RecomputeDueSoon(ctx, b.db.Pool, storage.RecomputeOptions{BatchSize: 64})
	if err != nil || !res.Waited || res.Fraction != 0.6 {
		t.Fatalf("recompute: %+v, %v", res, err)
	}
	checkStored(t, b, list, 0.6, "0.6")
	checkBands(t, b, list, now, 0.6, "0.6 stored")
	checkBands(t, b, list, now, 0.8, "0.6 stored, listed at 0.8")

	// Setting the same fraction again changes nothing.
	if _, changed, err := storage.SetDueSoonFraction(ctx, b.db.Pool, 0.6); err != nil || changed {
		t.Fatalf("the same fraction again: changed %v, %v", changed, err)
	}
	if ready, _ := storage.DueSoonReady(ctx, b.db.Pool, 0.6); !ready {
		t.Fatal("setting the stored fraction again made the instants stale")
	}
}

// TestDueSoonInstantFollowsWrites: the trigger keeps due_soon_at through
// the lifecycle, with the stored fraction.
func TestDueSoonInstantFollowsWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	setFraction(t, b, 0.5)
	start := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	r := newRequest()
	if err := b.db.InTx(ctx, func(tx pgx.Tx) error { return storage.InsertRequest(ctx, tx, r, nil) }); err != nil {
		t.Fatal(err)
	}
	stored := func() *time.Time {
		t.Helper()
		var at *time.Time
		if err := b.db.Pool.QueryRow(ctx, `SELECT due_soon_at FROM requests WHERE id = $1`, r.ID).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	save := func(change func()) {
		t.Helper()
		change()
		if err := b.db.InTx(ctx, func(tx pgx.Tx) error { return storage.SaveRequest(ctx, tx, r) }); err != nil {
			t.Fatal(err)
		}
	}
	ptr := func(t time.Time) *time.Time { return &t }
	for _, step := range []struct {
		name   string
		change func()
		want   *time.Time
	}{
		{"received, no deadline", func() {}, nil},
		{"a deadline, no clock", func() { r.DueAt = ptr(start.Add(10 * 24 * time.Hour)) }, ptr(start.Add(10 * 24 * time.Hour))},
		{"the clock starts", func() { r.ClockStartedAt = ptr(start) }, ptr(start.Add(5 * 24 * time.Hour))},
		{"verified", func() { r.Status = rights.StatusVerified }, ptr(start.Add(5 * 24 * time.Hour))},
		{"paused", func() { r.Status = rights.StatusPaused }, nil},
		{"resumed, deadline moved", func() {
			r.Status, r.DueAt = rights.StatusInProgress, ptr(start.Add(12*24*time.Hour))
		}, ptr(start.Add(6 * 24 * time.Hour))},
		{"extended", func() { r.DueAt = ptr(start.Add(20 * 24 * time.Hour)) }, ptr(start.Add(10 * 24 * time.Hour))},
		{"completed", func() { r.Status, r.CompletedAt = rights.StatusCompleted, ptr(start.Add(24*time.Hour)) }, nil},
	} {
		save(step.change)
		got := stored()
		if (got == nil) != (step.want == nil) || (got != nil && !got.Equal(*step.want)) {
			t.Fatalf("%s: due_soon_at %v, want %v", step.name, got, step.want)
		}
	}
}

// TestOnTrackListedByDueSoonInstant: the on-track band is listed in the
// order its requests become due soon, page by page through its cursor, the
// same from the stored instants as computed; its cursors are refused by
// other orders and theirs by it.
func TestOnTrackListedByDueSoonInstant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	now := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
	list := generatedRequests(t, b, 200, now, 0.8)

	key := func(r *rights.Request) time.Time {
		if r.ClockStartedAt == nil {
			return *r.DueAt
		}
		return rights.DueSoonInstant(*r.ClockStartedAt, *r.DueAt, 0.8)
	}
	var want []*rights.Request
	for _, r := range list {
		if rights.BandOf(r, now, 0.8) == rights.BandOnTrack {
			want = append(want, r)
		}
	}
	slices.SortFunc(want, func(a, b *rights.Request) int {
		if c := key(a).Compare(key(b)); c != 0 {
			return c
		}
		return compareUUID(a.ID, b.ID)
	})
	page := func(cursor string) ([]*rights.Request, string) {
		t.Helper()
		got, next, err := storage.ListRequests(ctx, b.db.Pool, storage.RequestFilter{Band: rights.BandOnTrack, SortByDue: true,
			Now: now, DueSoonAt: 0.8, Limit: 7, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		return got, next
	}
	walk := func(label string) (firstCursor string) {
		t.Helper()
		var got []string
		cursor, pages := "", 0
		for {
			p, next := page(cursor)
			pages++
			for _, r := range p {
				got = append(got, r.ID)
			}
			if firstCursor == "" {
				firstCursor = next
			}
			if next == "" {
				break
			}
			cursor = next
		}
		wantIDs := make([]string, len(want))
		for i, r := range want {
			wantIDs[i] = r.ID
		}
		if !slices.Equal(got, wantIDs) || pages < 3 {
			t.Fatalf("%s: %d on-track requests on %d pages, not the %d in due-soon order", label, len(got), pages, len(wantIDs))
		}
		return firstCursor
	}
	computed := walk("computed")
	setFraction(t, b, 0.8)
	stored := walk("stored")
	if computed != stored {
		t.Fatal("the stored and the computed instants give different cursors")
	}
	// A cursor taken while the instants were computed goes on from the
	// stored ones where it left off.
	if p, _ := page(computed); len(p) == 0 || p[0].ID != want[7].ID {
		t.Fatal("a cursor of the computed list does not go on in the stored one")
	}

	// Each order refuses the others' cursors.
	_, dueCursor, err := storage.ListRequests(ctx, b.db.Pool, storage.RequestFilter{SortByDue: true, Now: now, DueSoonAt: 0.8, Limit: 3})
	if err != nil || dueCursor == "" {
		t.Fatalf("a deadline-order cursor: %v", err)
	}
	_, newestCursor, err := storage.ListRequests(ctx, b.db.Pool, storage.RequestFilter{Now: now, DueSoonAt: 0.8, Limit: 3})
	if err != nil || newestCursor == "" {
		t.Fatalf("a newest-first cursor: %v", err)
	}
	legacy := base64.RawURLEncoding.EncodeToString([]byte(now.Format(time.RFC3339Nano) + "|" + list[0].ID))
	for _, c := range []struct {
		name   string
		f      storage.RequestFilter
		cursor string
		ok     bool
	}{
		{"on-track cursor, deadline order", storage.RequestFilter{SortByDue: true}, computed, false},
		{"on-track cursor, due-soon band", storage.RequestFilter{SortByDue: true, Band: rights.BandDueSoon}, computed, false},
		{"on-track cursor, newest first", storage.RequestFilter{}, computed, false},
		{"deadline cursor, on-track band", storage.RequestFilter{SortByDue: true, Band: rights.BandOnTrack}, dueCursor, false},
		{"newest-first cursor, on-track band", storage.RequestFilter{SortByDue: true, Band: rights.BandOnTrack}, newestCursor, false},
		{"newest-first cursor, deadline order", storage.RequestFilter{SortByDue: true}, newestCursor, false},
		{"deadline cursor, newest first", storage.RequestFilter{}, dueCursor, false},
		{"EncodeCursor, deadline order", storage.RequestFilter{SortByDue: true}, storage.EncodeCursor(now, list[0].ID), true},
		{"EncodeOnTrackCursor, on-track band", storage.RequestFilter{SortByDue: true, Band: rights.BandOnTrack}, storage.EncodeOnTrackCursor(now, list[0].ID), true},
		{"EncodeOnTrackCursor, deadline order", storage.RequestFilter{SortByDue: true}, storage.EncodeOnTrackCursor(now, list[0].ID), false},
		{"cursor of before orders were named, deadline order", storage.RequestFilter{SortByDue: true}, legacy, true},
		{"cursor of before orders were named, newest first", storage.RequestFilter{}, legacy, true},
		{"cursor of before orders were named, on-track band", storage.RequestFilter{SortByDue: true, Band: rights.BandOnTrack}, legacy, false},
		{"on-track cursor, on-track band newest first", storage.RequestFilter{Band: rights.BandOnTrack}, computed, false},
	} {
		c.f.Now, c.f.DueSoonAt, c.f.Cursor = now, 0.8, c.cursor
		_, _, err := storage.ListRequests(ctx, b.db.Pool, c.f)
		if c.ok != (err == nil) || (err != nil && rights.ErrorCode(err) != rights.EInvalid) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// compareUUID orders ids as Postgres orders uuids: by their bytes, which
// for the canonical lower-case text is the text's order.
func compareUUID(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestRecomputeResumesAfterAStop: a recompute stopped midway leaves the
// stored instants unused (lists compute theirs) and the next call goes on
// from where it stopped; requests written meanwhile get the new fraction's
// instant from the trigger.
func TestRecomputeResumesAfterAStop(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	now := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
	setFraction(t, b, 0.8)
	list := generatedRequests(t, b, 100, now, 0.8)
	checkStored(t, b, list, 0.8, "written at 0.8")

	if _, _, err := storage.SetDueSoonFraction(ctx, b.db.Pool, 0.5); err != nil {
		t.Fatal(err)
	}
	stopped, stop := context.WithCancel(ctx)
	res, err := storage.RecomputeDueSoon(stopped, b.db.Pool, storage.RecomputeOptions{BatchSize: 10, Batch: func(done int) {
		if done >= 30 {
			stop()
		}
	}})
	if !errors.Is(err, context.Canceled) || res.Visited != 30 {
		t.Fatalf("stopped recompute: %+v, %v", res, err)
	}
	if ready, _ := storage.DueSoonReady(ctx, b.db.Pool, 0.5); ready {
		t.Fatal("ready after a recompute stopped midway")
	}
	checkBands(t, b, list, now, 0.5, "stopped midway")

	// Written meanwhile: the trigger's instant is of 0.5 already.
	late := generatedRequests(t, b, 20, now, 0.5)
	res, err = storage.RecomputeDueSoon(ctx, b.db.Pool, storage.RecomputeOptions{BatchSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	// The second call goes on after the first call's 30 open requests
	// (ids are in the order of creation): it reads the other open ones.
	open := 0
	for _, r := range append(slices.Clone(list), late...) {
		if r.CompletedAt == nil {
			open++
		}
	}
	if res.Visited != open-30 {
		t.Fatalf("resumed recompute read %d open requests, %d remained", res.Visited, open-30)
	}
	all := append(list, late...)
	checkStored(t, b, all, 0.5, "resumed")
	checkBands(t, b, all, now, 0.5, "resumed")
	if ready, _ := storage.DueSoonReady(ctx, b.db.Pool, 0.5); !ready {
		t.Fatal("not ready after the resumed recompute")
	}
}

// TestRecomputeWaitsForOlderTransactions: a transaction that wrote an
// instant of the old fraction and commits after the change is not passed
// over by the recompute.
func TestRecomputeWaitsForOlderTransactions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	now := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
	setFraction(t, b, 0.8)

	tx, err := b.db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // committed below
	r := newRequest()
	start, due := now.Add(-24*time.Hour), now.Add(9*24*time.Hour)
	r.Status, r.ClockStartedAt, r.DueAt = rights.StatusInProgress, &start, &due
	if err := storage.InsertRequest(ctx, tx, r, nil); err != nil { // its instant is of 0.8
		t.Fatal(err)
	}

	type outcome struct {
		res storage.RecomputeResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		if _, _, err := storage.SetDueSoonFraction(ctx, b.db.Pool, 0.5); err != nil {
			done <- outcome{err: err}
			return
		}
		res, err := storage.RecomputeDueSoon(ctx, b.db.Pool, storage.RecomputeOptions{})
		done <- outcome{res, err}
	}()
	// Commit only once the change is committed: the recompute may then
	// be under way, and must not have passed this request by.
	for {
		var f *float64
		if err := b.db.Pool.QueryRow(ctx, `SELECT fraction FROM sla_due_soon`).Scan(&f); err != nil {
			t.Fatal(err)
		}
		if f != nil && *f == 0.5 {
			break
		}
		select {
		case o := <-done:
			t.Fatalf("the recompute ended before the change was seen: %+v", o)
		case <-time.After(time.Millisecond): // polling a row another goroutine writes
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	o := <-done
	if o.err != nil || !o.res.Waited {
		t.Fatalf("recompute: %+v, %v", o.res, o.err)
	}
	checkStored(t, b, []*rights.Request{r}, 0.5, "committed after the change")
}

// TestDueSoonInstantSameInGoAndSQL: rights.DueSoonInstant and the
// database's datarights_due_soon_at give the same microsecond, on periods
// from microseconds to decades, fractions of every kind, and halves.
func TestDueSoonInstantSameInGoAndSQL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	rng := rand.New(rand.NewPCG(20, 28))
	base := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
	var starts, dues []time.Time
	var fractions []float64
	for i := range 5000 {
		start := base.Add(time.Duration(rng.Int64N(int64(10*365*24*time.Hour/time.Microsecond))) * time.Microsecond)
		// Periods of a few microseconds (halves), days, years, decades.
		scale := []time.Duration{time.Microsecond * 7, 24 * time.Hour, 365 * 24 * time.Hour, 30 * 365 * 24 * time.Hour}[i%4]
		due := start.Add(time.Duration(rng.Int64N(int64(scale/time.Microsecond))+1) * time.Microsecond)
		f := []float64{0.5, 0.8, 0.75, 0.1, rng.Float64()}[i%5]
		if f == 0 {
			f = 0.3
		}
		starts, dues, fractions = append(starts, start), append(dues, due), append(fractions, f)
	}
	rows, err := b.db.Pool.Query(ctx, `SELECT datarights_due_soon_at(s, d, f) FROM unnest($1::timestamptz[], $2::timestamptz[], $3::float8[])
		WITH ORDINALITY AS x(s, d, f, n) ORDER BY n`, starts, dues, fractions)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		t.Fatal(err)
	}
	for i, at := range got {
		if want := rights.DueSoonInstant(starts[i], dues[i], fractions[i]); !at.Equal(want) {
			t.Fatalf("start %s, due %s, fraction %v: SQL %s, Go %s", starts[i].Format(time.RFC3339Nano), dues[i].Format(time.RFC3339Nano),
				fractions[i], at.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
		}
	}
}
