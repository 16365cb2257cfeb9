// Command loadbench measures what the service's periodic and staff-facing
// work costs as the backlog grows: it seeds N open requests into a private
// database and times the staff queue (first page and a deep page), the
// open-request counts (the periodic count and the scrape that reads it), the SLA sweep when nothing is
// due, and the repeat check run in every verification.
//
//	go run ./cmd/loadbench -sizes 10000,100000,1000000
//
// DATABASE_URL names the server (default postgres://postgres@127.0.0.1:5432/postgres);
// each size gets a database of its own, dropped at the end unless -keep.
// Every figure is the median of -rounds runs, in milliseconds.
//
//	go run ./cmd/loadbench -intake 8,64 -duration 10s
//
// measures HTTP intake (the built `datarights serve`, its workers paused)
// beside a raw River insert loop with the same numbers of clients against
// the same database, and prints both rates and their ratio (intake.go).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/demo"
	"github.com/datarights/datarights/exporters"
	"github.com/datarights/datarights/jobs"
	"github.com/datarights/datarights/keyring"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		os.Exit(1)
	}
}

type options struct {
	sizes  []int
	rounds int
	keep   bool
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("loadbench", flag.ContinueOnError)
	sizes := fs.String("sizes", "10000,100000", "backlog sizes (open requests), comma-separated")
	rounds := fs.Int("rounds", 5, "runs of each measurement; the median is reported")
	keep := fs.Bool("keep", false, "keep the seeded databases")
	intake := fs.String("intake", "", "measure HTTP intake beside raw River inserts with these numbers of concurrent clients, comma-separated (e.g. 8,64); without -sizes, only that")
	duration := fs.Duration("duration", 10*time.Second, "-intake: how long each loop runs, per number of clients")
	slices := fs.Int("slices", 5, "-intake: the two loops take turns this many times within -duration each")
	bin := fs.String("bin", "", "-intake: the datarights binary to run serve with (default: built from ./cmd/datarights)")
	maxConns := fs.Int("max-conns", 0, "-intake: serve's database.max_conns (default: the service's default)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	sizesSet := false
	fs.Visit(func(f *flag.Flag) { sizesSet = sizesSet || f.Name == "sizes" })
	server := getenv("DATABASE_URL")
	if server == "" {
		server = "postgres://postgres@127.0.0.1:5432/postgres"
	}
	if *intake != "" {
		if *slices < 1 {
			return errors.New("-slices must be at least 1")
		}
		iopts := intakeOptions{duration: *duration, slices: *slices, bin: *bin, maxConns: *maxConns, keep: *keep}
		for _, s := range strings.Split(*intake, ",") {
			c, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || c < 1 {
				return fmt.Errorf("-intake: %q is not a number of clients", s)
			}
			iopts.clients = append(iopts.clients, c)
		}
		results, err := measureIntake(ctx, server, iopts, stdout)
		if err != nil {
			return fmt.Errorf("intake: %w", err)
		}
		printIntake(stdout, results)
		if !sizesSet {
			return nil
		}
	}
	opts := options{rounds: *rounds, keep: *keep}
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 100 {
			return fmt.Errorf("-sizes: %q is not a number of at least 100", s)
		}
		opts.sizes = append(opts.sizes, n)
	}
	if opts.rounds < 1 {
		return errors.New("-rounds must be at least 1")
	}
	var results []result
	for _, n := range opts.sizes {
		r, err := measure(ctx, server, n, opts, stdout)
		if err != nil {
			return fmt.Errorf("%d open requests: %w", n, err)
		}
		results = append(results, r)
	}
	printTable(stdout, results)
	return nil
}

type result struct {
	n                                                 int
	seed                                              time.Duration
	queueFirst, queueDeep, scrape, count, sweep, seen time.Duration
	exportSweep, retentionSweep                       time.Duration
	dueSoon, onTrack, paused, noDeadline, productType time.Duration
	onTrackDeep, onTrackComputed                      time.Duration
	consoleCounts                                     time.Duration
	recompute                                         time.Duration // one run, not a median
	recomputed                                        int
}

func measure(ctx context.Context, server string, n int, opts options, log io.Writer) (result, error) {
	res := result{n: n}
	dbURL, drop, err := createDatabase(ctx, server, fmt.Sprintf("datarights_loadbench_%d", n))
	if err != nil {
		return res, err
	}
	if !opts.keep {
		defer drop()
	}
	db, err := storage.OpenWith(ctx, dbURL, 8)
	if err != nil {
		return res, err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return res, err
	}
	const dueSoon = 0.8
	// As serve does at start: the seed's requests get their due-soon
	// instants from the trigger, as intake's do.
	if _, _, err := storage.SetDueSoonFraction(ctx, db.Pool, dueSoon); err != nil {
		return res, err
	}
	if _, err := storage.RecomputeDueSoon(ctx, db.Pool, storage.RecomputeOptions{}); err != nil {
		return res, err
	}
	now := time.Now().UTC()
	start := time.Now()
	if err := seed(ctx, db, n, now); err != nil {
		return res, fmt.Errorf("seed: %w", err)
	}
	res.seed = time.Since(start)
	fmt.Fprintf(log, "%d open requests seeded in %s\n", n, res.seed.Round(time.Millisecond))

	pipeline, err := newPipeline(db, dbURL)
	if err != nil {
		return res, err
	}
	if ready, err := storage.DueSoonReady(ctx, db.Pool, dueSoon); err != nil || !ready {
		return res, fmt.Errorf("the seeded requests' due-soon instants are not of %v: %v", dueSoon, err)
	}
	queue := storage.RequestFilter{Band: rights.BandOverdue, SortByDue: true, Now: now, DueSoonAt: dueSoon, Open: true}
	var deepCursor string
	{
		// A cursor half way down the open queue, as a staff member paging
		// on would hold: the page after it must cost what the first does.
		var due time.Time
		var id string
		if err := db.Pool.QueryRow(ctx, `SELECT coalesce(due_at, 'infinity'), id FROM requests WHERE completed_at IS NULL
			ORDER BY coalesce(due_at, 'infinity'), id OFFSET $1 LIMIT 1`, n/2).Scan(&due, &id); err != nil {
			return res, err
		}
		deepCursor = storage.EncodeCursor(due, id)
	}
	var onTrackCursor string
	{
		// Likewise half way down the on-track band, in its order.
		var at time.Time
		var id string
		if err := db.Pool.QueryRow(ctx, `SELECT due_soon_at, id FROM requests
			WHERE completed_at IS NULL AND status <> 'paused' AND due_soon_at > $1 AND due_at > $1
			ORDER BY due_soon_at, id OFFSET (SELECT count(*) / 2 FROM requests
				WHERE completed_at IS NULL AND status <> 'paused' AND due_soon_at > $1 AND due_at > $1) LIMIT 1`, now).Scan(&at, &id); err != nil {
			return res, err
		}
		onTrackCursor = storage.EncodeOnTrackCursor(at, id)
	}
	var repeatOf *rights.Request
	{
		list, _, err := storage.ListRequests(ctx, db.Pool, storage.RequestFilter{Limit: 1, Now: now, DueSoonAt: dueSoon})
		if err != nil || len(list) == 0 {
			return res, fmt.Errorf("a request to repeat: %v", err)
		}
		repeatOf = list[0]
		repeatOf.ID = "00000000-0000-4000-8000-000000000000" // another request, same person and right
	}
	steps := []struct {
		into *time.Duration
		fn   func() error
	}{
		{&res.queueFirst, func() error {
			_, _, err := storage.ListRequests(ctx, db.Pool, queue)
			return err
		}},
		{&res.queueDeep, func() error {
			f := storage.RequestFilter{SortByDue: true, Now: now, DueSoonAt: dueSoon, Open: true, Cursor: deepCursor}
			_, _, err := storage.ListRequests(ctx, db.Pool, f)
			return err
		}},
		{&res.dueSoon, func() error {
			f := queue
			f.Band = rights.BandDueSoon
			_, _, err := storage.ListRequests(ctx, db.Pool, f)
			return err
		}},
		{&res.onTrack, func() error {
			f := queue
			f.Band = rights.BandOnTrack
			_, _, err := storage.ListRequests(ctx, db.Pool, f)
			return err
		}},
		{&res.onTrackDeep, func() error {
			f := queue
			f.Band, f.Cursor = rights.BandOnTrack, onTrackCursor
			list, _, err := storage.ListRequests(ctx, db.Pool, f)
			if err == nil && len(list) == 0 {
				err = errors.New("nothing on track after the cursor half way")
			}
			return err
		}},
		{&res.onTrackComputed, func() error {
			// A replica configured with another fraction than the
			// stored one (or any, while a recompute runs): each
			// request's instant is computed.
			f := queue
			f.Band, f.DueSoonAt = rights.BandOnTrack, 0.75
			_, _, err := storage.ListRequests(ctx, db.Pool, f)
			return err
		}},
		{&res.paused, func() error {
			f := queue
			f.Band = rights.BandPaused
			list, _, err := storage.ListRequests(ctx, db.Pool, f)
			if err == nil && len(list) == 0 {
				err = errors.New("the seed has no paused request")
			}
			return err
		}},
		{&res.noDeadline, func() error {
			f := queue
			f.Band = rights.BandNoDeadline
			list, _, err := storage.ListRequests(ctx, db.Pool, f)
			if err == nil && len(list) == 0 {
				err = errors.New("the seed has no request without a deadline")
			}
			return err
		}},
		{&res.productType, func() error {
			f := storage.RequestFilter{Product: "webank", Type: rights.TypeDelete, Now: now, DueSoonAt: dueSoon}
			_, _, err := storage.ListRequests(ctx, db.Pool, f)
			return err
		}},
		{&res.count, func() error { return pipeline.CountOpen(ctx) }},
		{&res.consoleCounts, func() error {
			// After the count above stored its counts, as the worker does.
			_, asOf, err := storage.BandCounts(ctx, db.Pool, storage.RequestFilter{Now: now, DueSoonAt: dueSoon}, storage.LiveCountLimit)
			if err == nil && asOf.IsZero() && n > storage.LiveCountLimit {
				err = errors.New("the queue's counts were counted live on a large backlog")
			}
			return err
		}},
		{&res.scrape, func() error {
			_, counts, err := storage.LoadOpenCounts(ctx, db.Pool)
			if err == nil && len(counts) == 0 {
				err = errors.New("no open counts stored")
			}
			return err
		}},
		{&res.sweep, func() error {
			r, err := pipeline.SweepSLA(ctx)
			if err == nil && r.Reminders+r.Breaches != 0 {
				err = fmt.Errorf("the sweep found %+v due; the seed leaves nothing due", r)
			}
			return err
		}},
		{&res.exportSweep, func() error {
			r, err := pipeline.SweepExports(ctx)
			if err == nil && r.Purged != 0 {
				err = fmt.Errorf("the export sweep purged %d; the seed leaves nothing due", r.Purged)
			}
			return err
		}},
		{&res.retentionSweep, func() error {
			r, err := pipeline.SweepRetention(ctx)
			if err == nil && r != (jobs.RetentionResult{}) {
				err = fmt.Errorf("the retention sweep found %+v; the seed leaves nothing due", r)
			}
			return err
		}},
		{&res.seen, func() error {
			id, err := storage.FindRepeat(ctx, db.Pool, repeatOf, repeatOf.ReceivedAt.AddDate(0, -6, 0))
			if err == nil && id == "" {
				err = errors.New("the repeat check did not find the seeded request")
			}
			return err
		}},
	}
	for _, s := range steps {
		times := make([]time.Duration, 0, opts.rounds)
		for range opts.rounds {
			t0 := time.Now()
			if err := s.fn(); err != nil {
				return res, err
			}
			times = append(times, time.Since(t0))
		}
		slices.Sort(times)
		*s.into = times[len(times)/2]
	}
	// Last, as it rewrites the instants: what a change of sla.due_soon_at
	// costs, once.
	start = time.Now()
	if _, _, err := storage.SetDueSoonFraction(ctx, db.Pool, 0.75); err != nil {
		return res, err
	}
	rec, err := storage.RecomputeDueSoon(ctx, db.Pool, storage.RecomputeOptions{})
	if err != nil {
		return res, err
	}
	res.recompute, res.recomputed = time.Since(start), rec.Changed
	return res, nil
}

// seed inserts n open requests spread over 60 days of receipt with 15-day
// deadlines (a third overdue), in both demo products and all six rights, and
// sets each one's next SLA check as the sweep would have left it: nothing
// is due at the harness's now.
func seed(ctx context.Context, db *storage.DB, n int, now time.Time) error {
	const batch = 100_000
	for from := 0; from < n; from += batch {
		to := min(from+batch, n)
		_, err := db.Pool.Exec(ctx, `INSERT INTO requests (id, product, type, channel, status, subject, delivery_email,
				relation, locale, created_by, received_at, verified_at, clock_started_at, due_at, updated_at)
			SELECT gen_random_uuid(),
				-- Product, right and status by a hash of i, not i's
				-- remainders: remainders would tie them to the receipt
				-- time below (every newest request a WeChat access).
				CASE WHEN hashint4(i) & 1 = 0 THEN 'wechat' ELSE 'webank' END,
				(ARRAY['access', 'copy', 'correct', 'delete', 'withdraw_consent', 'cancel_account'])[1 + (hashint4(i + 1) & 65535) % 6],
				'staff',
				-- 1 in 100 paused, 1 in 100 not verified yet (no deadline).
				CASE (hashint4(i + 3) & 65535) % 100 WHEN 0 THEN 'paused' WHEN 1 THEN 'received' ELSE
				(ARRAY['verified', 'in_progress', 'awaiting_approval', 'awaiting_contact'])[1 + (hashint4(i + 2) & 65535) % 4] END,
				jsonb_build_object('identities', jsonb_build_object('user_id', 'load-user-' || i, 'email', 'load-user-' || i || '@example.com')),
				'', 'self', 'zh-CN', 'loadbench',
				r, nullif(r, n), nullif(r, n), nullif(r + interval '15 days', n + interval '15 days'), r
			FROM generate_series($1::int, $2::int - 1) AS i,
			LATERAL (SELECT $3::timestamptz - (i % 60) * interval '1 day' - (i % 1440) * interval '1 minute') AS t(r),
			LATERAL (SELECT CASE WHEN (hashint4(i + 3) & 65535) % 100 = 1 THEN r ELSE NULL END) AS u(n)`,
			from, to, now)
		if err != nil {
			return err
		}
	}
	// History: n/4 completed copies whose archives were emailed, shown and
	// purged, each with a retention hold years from now: what the export
	// and retention sweeps must not read one by one.
	for from := 0; from < n/4; from += batch {
		to := min(from+batch, n/4)
		_, err := db.Pool.Exec(ctx, `WITH done AS (
				INSERT INTO requests (id, product, type, channel, status, subject, delivery_email,
					relation, locale, created_by, received_at, verified_at, clock_started_at, due_at, completed_at, updated_at)
				SELECT gen_random_uuid(), 'webank', 'copy', 'staff', 'completed',
					jsonb_build_object('identities', jsonb_build_object('user_id', 'old-user-' || i)),
					'', 'self', 'zh-CN', 'loadbench', r, r, r, r + interval '15 days', r + interval '2 days', r + interval '2 days'
				FROM generate_series($1::int, $2::int - 1) AS i,
				LATERAL (SELECT $3::timestamptz - interval '90 days' - (i % 700) * interval '1 day') AS t(r)
				RETURNING id, completed_at),
			exported AS (
				INSERT INTO exports (request_id, location, bytes, sha256, created_at, file_name, encryption,
					password_shown_at, delivery, purged_at, purge_reason, file_deleted)
				SELECT id, '/gone/' || id, 1000, '', completed_at, 'copy.zip', 'aes256', completed_at,
					'attachment', completed_at, 'delivered', true FROM done)
			INSERT INTO retention_holds (request_id, store, dataset, retention, rows, ended_at, until, created_at)
			SELECT id, 'demo_bank', 'transactions', 'aml_5y', 10, completed_at, completed_at + interval '5 years', completed_at FROM done`,
			from, to, now)
		if err != nil {
			return err
		}
	}
	// Reminders at 50% and 80% and the breach already recorded where due.
	_, err := db.Pool.Exec(ctx, `UPDATE requests SET sla_check_at = (SELECT min(x) FROM unnest(ARRAY[
			clock_started_at + (due_at - clock_started_at) * 0.5,
			clock_started_at + (due_at - clock_started_at) * 0.8, due_at]) AS x WHERE x > $1)
		WHERE completed_at IS NULL`, now)
	if err != nil {
		return err
	}
	_, err = db.Pool.Exec(ctx, `VACUUM ANALYZE requests, exports, retention_holds`)
	return err
}

func newPipeline(db *storage.DB, dbURL string) (*jobs.Pipeline, error) {
	dir, err := os.MkdirTemp("", "loadbench-")
	if err != nil {
		return nil, err
	}
	cfg, err := config.Parse("loadbench.yaml", []byte(demo.ConfigYAML(dbURL, "postgres://unused/bank", filepath.Join(dir, "data"))), nil)
	if err != nil {
		return nil, err
	}
	cfg.Keys = keyring.ForTest()
	mailer, err := exporters.NewMailer("smtp://127.0.0.1:1", cfg.SMTP.From, "") // nothing is due, so nothing is sent
	if err != nil {
		return nil, err
	}
	return jobs.New(jobs.Config{DB: db, Settings: cfg, Mailer: mailer, Logger: slog.New(slog.DiscardHandler)})
}

func createDatabase(ctx context.Context, server, prefix string) (string, func(), error) {
	u, err := url.Parse(server)
	if err != nil {
		return "", nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	name := prefix + "_" + hex.EncodeToString(suffix)
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() {
		conn, err := pgx.Connect(context.Background(), server)
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	}
	return u.String(), drop, nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }

func printTable(w io.Writer, results []result) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := "ms (median)\t"
	for _, r := range results {
		header += fmt.Sprintf("%d\t", r.n)
	}
	fmt.Fprintln(tw, header)
	rows := []struct {
		name string
		get  func(result) time.Duration
	}{
		{"queue sort=due_at&sla_band=overdue, first page", func(r result) time.Duration { return r.queueFirst }},
		{"queue sort=due_at, page half way down", func(r result) time.Duration { return r.queueDeep }},
		{"queue sort=due_at&sla_band=due_soon, first page", func(r result) time.Duration { return r.dueSoon }},
		{"queue sort=due_at&sla_band=on_track, first page", func(r result) time.Duration { return r.onTrack }},
		{"queue sla_band=on_track, page half way down", func(r result) time.Duration { return r.onTrackDeep }},
		{"queue sla_band=on_track, instants computed (another fraction)", func(r result) time.Duration { return r.onTrackComputed }},
		{"queue sort=due_at&sla_band=paused, first page", func(r result) time.Duration { return r.paused }},
		{"queue sort=due_at&sla_band=no_deadline, first page", func(r result) time.Duration { return r.noDeadline }},
		{"list product=webank&type=delete, newest first", func(r result) time.Duration { return r.productType }},
		{"queue band counts (console, API counts=true)", func(r result) time.Duration { return r.consoleCounts }},
		{"metrics scrape (reads the stored counts)", func(r result) time.Duration { return r.scrape }},
		{"open_counts_sweep (one worker, every 30 s)", func(r result) time.Duration { return r.count }},
		{"sla_sweep, nothing due", func(r result) time.Duration { return r.sweep }},
		{"repeat check", func(r result) time.Duration { return r.seen }},
		{"export_sweep, nothing due (history: n/4 exports)", func(r result) time.Duration { return r.exportSweep }},
		{"retention_sweep, nothing due (history: n/4 holds)", func(r result) time.Duration { return r.retentionSweep }},
	}
	for _, row := range rows {
		line := row.name + "\t"
		for _, r := range results {
			line += ms(row.get(r)) + "\t"
		}
		fmt.Fprintln(tw, line)
	}
	line := "recompute of the due-soon instants after a change (one run)\t"
	for _, r := range results {
		line += ms(r.recompute) + "\t"
	}
	fmt.Fprintln(tw, line)
	line = "  open requests rewritten\t"
	for _, r := range results {
		line += fmt.Sprintf("%d\t", r.recomputed)
	}
	fmt.Fprintln(tw, line)
	tw.Flush()
}
