package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/datarights/datarights/api"
	"github.com/datarights/datarights/center"
	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/console"
	"github.com/datarights/datarights/exporters"
	"github.com/datarights/datarights/jobs"
	"github.com/datarights/datarights/keyring"
	"github.com/datarights/datarights/metrics"
	"github.com/datarights/datarights/operations"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, withAPI bool) error {
	name := "serve"
	if !withAPI {
		name = "worker"
	}
	about := "run the API and the workers until SIGINT or SIGTERM"
	if !withAPI {
		about = "run the workers only, until SIGINT or SIGTERM (scale out: any number of serve and worker processes)"
	}
	c := newCommand(name, "datarights "+name+" [-config FILE]", about+";\nthe environment (DATABASE_URL, DATARIGHTS_SECRET_KEY, …) overrides the file (README, Configuration)")
	path := c.configFlag()
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	cfg, err := config.Load(*path, getenv)
	if err != nil {
		return err
	}
	if cfg.Keys == nil {
		return fmt.Errorf("%s is not set: the service encrypts export passwords and signs its audit anchors with it; generate one with `datarights key new` and keep it in your secret store (docs/security.md)", keyring.EnvVar)
	}
	if !cfg.HTTP.PublicURLSet {
		return usageError("http.public_url is not set: links in emails (downloads, status pages, acknowledgements) must point at the API as requesters reach it, " +
			"not at whichever process sent the email; set http.public_url or DATARIGHTS_PUBLIC_URL, e.g. https://privacy.example.com")
	}
	return serve(ctx, cfg, newLogger(stdout), withAPI, nil)
}

// serve runs the workers, and the API when withAPI, until ctx ends. ready,
// if not nil, is called with the listening address once requests can come.
func serve(ctx context.Context, cfg *config.Config, logger *slog.Logger, withAPI bool, ready func(addr string)) error {
	return serveWith(ctx, cfg, logger, withAPI, serveHooks{Ready: ready})
}

// serveHooks tell the caller (dev, tests) where serve listens once it does:
// the addresses may be ports the system picked (127.0.0.1:0).
type serveHooks struct {
	// Ready, if not nil, is called with the address of http.addr once
	// requests can come (after OpsReady).
	Ready func(addr string)
	// OpsReady, if not nil, is called with the address of http.ops_addr
	// once it is served; never when http.ops_addr is not set.
	OpsReady func(addr string)
	// Pipeline, if not nil, may change the pipeline's configuration before
	// it is built (tests inject faults).
	Pipeline func(*jobs.Config)
	// Listener, if not nil, is http.addr already listened on: dev listens
	// first to know the port it got before the pipeline is built.
	Listener net.Listener
}

// serveWith is serve with all its hooks.
func serveWith(ctx context.Context, cfg *config.Config, logger *slog.Logger, withAPI bool, hooks serveHooks) error {
	// Two pools: the API's (and the probes', metrics') and the workers'.
	// A backlog of jobs holding every worker connection must not make a
	// staff request wait, nor the reverse.
	apiConns := cfg.Database.MaxConns
	if !withAPI {
		apiConns = 4 // probes and /metrics only
	}
	db, err := storage.OpenWith(ctx, cfg.DatabaseURL, apiConns)
	if err != nil {
		return err
	}
	defer db.Close()
	workerDB, err := storage.OpenWith(ctx, cfg.DatabaseURL, cfg.Worker.DBConns)
	if err != nil {
		return err
	}
	defer workerDB.Close()
	if err := migrateOnStart(ctx, cfg, db, logger); err != nil {
		return err
	}
	stopRecompute, _, err := dueSoonOnStart(ctx, cfg, workerDB, logger)
	if err != nil {
		return err
	}
	defer stopRecompute()
	if err := registerTokens(ctx, db, cfg); err != nil {
		return err
	}

	mailer, err := exporters.NewMailer(cfg.SMTP.URL, cfg.SMTP.From, filepath.Join(cfg.DataDir, "outbox"))
	if err != nil {
		return err
	}
	cals, err := cfg.Calendars()
	if err != nil {
		return err
	}
	m := metrics.New()
	m.SetOpenRequestsSource(func(ctx context.Context) ([]metrics.OpenCount, error) {
		return openCountsForMetrics(ctx, db, cfg, time.Now())
	})
	m.SetBacklogSource(func(ctx context.Context) (metrics.Backlog, error) {
		var b metrics.Backlog
		held, overdue, err := storage.CountHolds(ctx, db.Pool, time.Now())
		if err != nil {
			return b, err
		}
		b.HoldsRestricted, b.HoldsOverdue = int(held-overdue), int(overdue)
		b.Unacknowledged, err = storage.CountUnacknowledged(ctx, db.Pool)
		return b, err
	})
	pcfg := jobs.Config{DB: workerDB, Settings: cfg, Mailer: mailer, Logger: logger, Metrics: m}
	if hooks.Pipeline != nil {
		hooks.Pipeline(&pcfg)
	}
	pipeline, err := jobs.New(pcfg)
	if err != nil {
		return err
	}
	defer pipeline.Close()
	client, err := pipeline.NewClient(true)
	if err != nil {
		return err
	}
	// worker.queues: none makes an API-only serve, whose client only
	// inserts jobs.
	working := len(cfg.Worker.WorksQueues()) > 0
	stopWatching := m.WatchRiver(client)
	defer stopWatching()
	if working {
		if err := client.Start(ctx); err != nil {
			return fmt.Errorf("start workers: %w", err)
		}
		// The client id is what River records in each job's attempted_by.
		logger.Info("workers started", "concurrency", cfg.Worker.Concurrency, "queues", cfg.Worker.WorksQueues(), "river_client_id", client.ID(),
			"objects", cfg.Objects.Backend)
	}

	// A worker process serves only the operations endpoints (probes and
	// /metrics) on the same address; serve adds the API. With
	// http.ops_addr, /metrics moves to that address (an internal one: the
	// metrics tell the load of each product), which serves the probes too;
	// http.addr keeps its probes for load balancers in front of it.
	ln := hooks.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.HTTP.Addr); err != nil {
			return fmt.Errorf("listen on http.addr %s: %w", cfg.HTTP.Addr, err)
		}
	}
	var opsLn net.Listener
	if cfg.HTTP.OpsAddr != "" {
		if opsLn, err = net.Listen("tcp", cfg.HTTP.OpsAddr); err != nil {
			_ = ln.Close()
			return fmt.Errorf("listen on http.ops_addr %s: %w", cfg.HTTP.OpsAddr, err)
		}
	}
	newServer := func(deps api.Deps) *http.Server {
		return &http.Server{
			Handler:           api.NewServer(deps),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       120 * time.Second,
		}
	}
	deps := api.Deps{DB: db, Pipeline: pipeline, Logger: logger, MaxBodyBytes: cfg.HTTP.MaxBodyBytes, Metrics: m.Handler(), OpsOnly: !withAPI, Calendars: cals, TrustedProxies: cfg.TrustedProxyPrefixes()}
	if withAPI {
		if deps.Console, err = newConsole(ctx, cfg, db, pipeline, client, logger); err != nil {
			return err
		}
		if deps.Center, err = center.New(center.Deps{Pipeline: pipeline, Logger: logger,
			Secure: strings.HasPrefix(cfg.HTTP.PublicURL, "https://"), Client: api.ClientFunc(deps.TrustedProxies),
			MaxFormBytes: cfg.HTTP.MaxBodyBytes}); err != nil {
			return err
		}
	}
	errc := make(chan error, 2)
	var servers []*http.Server
	if opsLn != nil {
		opsSrv := newServer(api.Deps{DB: db, Logger: logger, MaxBodyBytes: cfg.HTTP.MaxBodyBytes, Metrics: deps.Metrics, OpsOnly: true})
		servers = append(servers, opsSrv)
		deps.Metrics = nil // served on the ops address only
		logger.Info("ops http listening", "addr", opsLn.Addr().String())
		go func() { errc <- opsSrv.Serve(opsLn) }()
		if hooks.OpsReady != nil {
			hooks.OpsReady(opsLn.Addr().String())
		}
	}
	srv := newServer(deps)
	servers = append(servers, srv)
	logger.Info("http listening", "addr", ln.Addr().String(), "api", withAPI, "metrics", deps.Metrics != nil)
	go func() { errc <- srv.Serve(ln) }()
	if hooks.Ready != nil {
		hooks.Ready(ln.Addr().String())
	}

	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			logger.Error("http stopped", "err", err)
		}
	}

	// Shut down: stop taking requests, let running jobs finish for a while,
	// then cancel them; River hands unfinished jobs to the next process.
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil {
			logger.Warn("http shutdown", "err", err)
		}
	}
	if !working {
		logger.Info("stopped")
		return nil
	}
	softCtx, softCancel := context.WithTimeout(shutdownCtx, 20*time.Second)
	defer softCancel()
	if err := client.Stop(softCtx); err != nil {
		logger.Warn("workers did not stop in time; cancelling running jobs", "err", err)
		if err := client.StopAndCancel(shutdownCtx); err != nil {
			return fmt.Errorf("stop workers: %w", err)
		}
	}
	logger.Info("stopped")
	return nil
}

// dueSoonOnStart stores sla.due_soon_at as the fraction the requests' stored
// due-soon instants are of (the on-track queue's index), and recomputes
// those that are not in the background, in short batches: after a change
// of the setting, or to finish a recompute a stopped process left midway.
// Until it is done, lists compute each request's instant instead (exact,
// slower at a large backlog). Of several processes started with different
// values, the last to start sets the stored one; each lists by its own.
// stop stops the recompute and waits for it (the next start goes on from
// there); done is closed when it has ended.
func dueSoonOnStart(ctx context.Context, cfg *config.Config, db *storage.DB, logger *slog.Logger) (stop func(), done <-chan struct{}, err error) {
	previous, changed, err := storage.SetDueSoonFraction(ctx, db.Pool, cfg.SLA.DueSoonAt)
	if err != nil {
		return nil, nil, err
	}
	if changed && previous != 0 {
		logger.Info("sla.due_soon_at changed: recomputing the open requests' due-soon instants", "from", previous, "to", cfg.SLA.DueSoonAt)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		start := time.Now()
		res, err := storage.RecomputeDueSoon(ctx, db.Pool, storage.RecomputeOptions{})
		switch {
		case err != nil && ctx.Err() != nil:
			logger.Info("due-soon recompute stopped; the next start goes on", "visited", res.Visited)
		case err != nil:
			logger.Error("due-soon recompute failed; the on-track queue computes its instants until a start completes it", "err", err)
		case res.Visited > 0:
			logger.Info("due-soon instants recomputed", "fraction", res.Fraction, "open_requests", res.Visited,
				"rewritten", res.Changed, "took", time.Since(start).Round(time.Millisecond))
			if !res.Waited {
				logger.Warn("due-soon recompute: a transaction older than the change was still open; a request it writes may keep the old instant until its deadline moves")
			}
		}
	}()
	return func() { cancel(); <-ended }, ended, nil
}

// migrateOnStart brings the database up to date before the service uses
// it. With migrate_database_url, migrations run as that role and grant the
// service's own (database_url's) role what it needs; without, the service's
// role migrates, when anything is pending, and owns everything.
func migrateOnStart(ctx context.Context, cfg *config.Config, db *storage.DB, logger *slog.Logger) error {
	var res storage.MigrateResult
	if cfg.MigrateDatabaseURL != "" {
		role, err := db.CurrentRole(ctx)
		if err != nil {
			return err
		}
		admin, err := storage.Open(ctx, cfg.MigrateDatabaseURL)
		if err != nil {
			return fmt.Errorf("migrate_database_url: %w", err)
		}
		defer admin.Close()
		if res, err = admin.MigrateWith(ctx, storage.MigrateOptions{RuntimeRole: role}); err != nil {
			return err
		}
	} else if err := db.CheckMigrations(ctx); err != nil {
		// Only when something is pending: a runtime role migrated for by
		// `datarights migrate up` may not even look at creating a table.
		if !errors.Is(err, storage.ErrMigrationsPending) {
			return err
		}
		if res, err = db.Migrate(ctx); err != nil {
			return fmt.Errorf("%w (if the tables belong to %s, run `datarights migrate up` as its member, or set migrate_database_url)", err, storage.OwnerRole)
		}
	}
	if len(res.Own)+len(res.River) > 0 {
		logger.Info("migrated database", "own", res.Own, "river", res.River)
	}
	can, err := storage.RuntimeCanRewriteAudit(ctx, db.Pool)
	if err != nil {
		return err
	}
	if can {
		logger.Warn("the service's database role can change or delete audit events: run migrations with migrate_database_url (or `datarights migrate up -runtime-role`) so that it cannot (docs/security.md §8)")
	}
	return nil
}

// registerTokens stores the configured staff tokens' hashes, and the hash of
// DATARIGHTS_STAFF_TOKEN under the name "env" with DATARIGHTS_STAFF_ROLE.
func registerTokens(ctx context.Context, db *storage.DB, cfg *config.Config) error {
	now := time.Now()
	var names []string
	for _, t := range cfg.StaffTokens {
		if err := storage.PutStaffToken(ctx, db.Pool, t.Staff(), t.SHA256, now, "config"); err != nil {
			return err
		}
		names = append(names, t.Name)
	}
	if err := storage.RevokeUnlisted(ctx, db.Pool, "config", names, now); err != nil {
		return err
	}
	names = nil
	if cfg.EnvStaffToken != "" {
		env := rights.Staff{Name: "env", Role: rights.Role(cfg.EnvStaffRole)}
		if err := storage.PutStaffToken(ctx, db.Pool, env, config.HashToken(cfg.EnvStaffToken), now, "env"); err != nil {
			return err
		}
		names = []string{"env"}
	}
	return storage.RevokeUnlisted(ctx, db.Pool, "env", names, now)
}

// newConsole is the staff web console, with the River UI for admins.
func newConsole(ctx context.Context, cfg *config.Config, db *storage.DB, pipeline *jobs.Pipeline, client *river.Client[pgx.Tx], logger *slog.Logger) (http.Handler, error) {
	deps := console.Deps{DB: db, Pipeline: pipeline, Logger: logger, Sessions: cfg.Console,
		Secure:   strings.HasPrefix(cfg.HTTP.PublicURL, "https://"),
		Register: api.RegisterWriter(api.Deps{DB: db, Pipeline: pipeline, Logger: logger})}
	ui, err := operations.RiverUI(ctx, client, db.Pool, logger, "/console/river/")
	if err != nil {
		return nil, fmt.Errorf("river ui: %w", err)
	}
	deps.Operations, deps.OperationsCSP = ui, operations.RiverUICSP
	return console.New(deps)
}

// openCountsForMetrics reads the open-request counts a worker stored last
// (jobs: open_counts_sweep), so a scrape costs one row however many
// requests are open, and adds a zero for every product, open status and band
// the status can be in that has none: dashboards and alerts see 0, not "no
// data". Counts older than five counting intervals (the workers are down or
// behind) are an error, reported as no series and a scrape error, rather
// than as a stale truth.
func openCountsForMetrics(ctx context.Context, db *storage.DB, cfg *config.Config, now time.Time) ([]metrics.OpenCount, error) {
	at, counts, err := storage.LoadOpenCounts(ctx, db.Pool)
	if err != nil {
		return nil, err
	}
	if at.IsZero() {
		return nil, errors.New("open requests not counted yet: no worker has run open_counts_sweep")
	}
	if age := now.Sub(at); age > 5*cfg.SLA.CountsInterval {
		return nil, fmt.Errorf("open request counts are %s old", age.Round(time.Second))
	}
	type key struct{ product, status, band string }
	seen := map[key]bool{}
	out := make([]metrics.OpenCount, 0, len(counts))
	for _, c := range counts {
		seen[key{c.Product, c.Status, c.Band}] = true
		out = append(out, metrics.OpenCount{Product: c.Product, Status: c.Status, Band: c.Band, Count: c.Count})
	}
	for _, product := range cfg.Products {
		for _, status := range rights.Statuses {
			if status.Terminal() {
				continue
			}
			bands := []rights.Band{rights.BandOverdue, rights.BandDueSoon, rights.BandOnTrack, rights.BandNoDeadline}
			if status == rights.StatusPaused {
				bands = []rights.Band{rights.BandPaused}
			}
			for _, band := range bands {
				if k := (key{product.Name, string(status), string(band)}); !seen[k] {
					out = append(out, metrics.OpenCount{Product: k.product, Status: k.status, Band: k.band})
				}
			}
		}
	}
	return out, nil
}
