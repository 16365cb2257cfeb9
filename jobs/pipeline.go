package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/datarights/datarights/blobs"
	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/exporters"
	"github.com/datarights/datarights/keyring"
	"github.com/datarights/datarights/metrics"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/sms"
	"github.com/datarights/datarights/storage"
	"github.com/datarights/datarights/storage/stores"
)

// Config is what the pipeline needs.
type Config struct {
	DB       *storage.DB
	Settings *config.Config
	Mailer   rights.Mailer
	// SMS sends codes to phone numbers; nil writes them to
	// <data_dir>/sms (or posts them to sms.gateway_url when configured).
	SMS    rights.SMSSender
	Logger *slog.Logger
	// Metrics receives counts and durations; nil keeps them private to the
	// pipeline (tests).
	Metrics *metrics.Metrics
	// OpenConnector opens a store's connector; defaults to stores.Open.
	OpenConnector func(ctx context.Context, s config.Store) (rights.Connector, error)
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
	// Destination keeps finished archives; defaults to the configured one.
	Destination exporters.Destination
	// AfterStoreEffect, for fault-injection tests only, is called after a
	// store task did its work and before its result is recorded; an error
	// stands for the worker dying at that line (the task is retried).
	AfterStoreEffect func(store string, action rights.TaskAction) error
}

func (c *Config) validate() error {
	switch {
	case c.DB == nil:
		return errors.New("jobs: Config.DB is required")
	case c.Settings == nil:
		return errors.New("jobs: Config.Settings is required")
	case c.Mailer == nil:
		return errors.New("jobs: Config.Mailer is required")
	case c.Settings.Keys == nil:
		return errors.New("jobs: Config.Settings.Keys is required: set DATARIGHTS_SECRET_KEY (generate one with `datarights key new`)")
	}
	return nil
}

// Pipeline runs requests. The HTTP layer calls its intake methods; River
// calls its workers.
type Pipeline struct {
	db       *storage.DB
	intake   intakeGroup // staff tickets committed together (intakebatch.go)
	settings *config.Config
	policies map[string]rights.DeadlinePolicy
	keys     *keyring.Keyring
	mailer   rights.Mailer
	sms      rights.SMSSender
	logger   *slog.Logger
	metrics  *metrics.Metrics
	now      func() time.Time
	staging  *exporters.Staging
	objects  blobs.Store // nil: the data plane's files are under data_dir
	exports  string      // directory archives are built in (and kept in, when local)
	dest     exporters.Destination
	tmpl     mailTemplates

	openConnector func(ctx context.Context, s config.Store) (rights.Connector, error)
	connMu        sync.Mutex
	connectors    map[string]rights.Connector

	client *river.Client[pgx.Tx]

	afterStoreEffect func(store string, action rights.TaskAction) error
}

// New builds a pipeline. Call Client (workers) or InsertOnlyClient (API-only
// processes) before using it.
func New(cfg Config) (*Pipeline, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p := &Pipeline{
		db:       cfg.DB,
		settings: cfg.Settings,
		policies: cfg.Settings.Policies(),
		keys:     cfg.Settings.Keys,
		mailer:   cfg.Mailer,
		sms:      cfg.SMS,
		logger:   cfg.Logger,
		metrics:  cfg.Metrics,
		now:      cfg.Now,
		staging: exporters.NewStagingWith(cfg.Settings.DataDir, exporters.StagingOptions{
			CSV: slices.Contains(cfg.Settings.Exports.Formats, config.FormatCSV), BOM: cfg.Settings.Exports.BOM()}),
		exports:       cfg.Settings.DataDir + "/exports",
		openConnector: cfg.OpenConnector,
		connectors:    map[string]rights.Connector{},
		dest:          cfg.Destination,

		afterStoreEffect: cfg.AfterStoreEffect,
	}
	if p.logger == nil {
		p.logger = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.metrics == nil {
		p.metrics = metrics.New()
	}
	if p.sms == nil {
		p.sms = &sms.Outbox{Dir: filepath.Join(cfg.Settings.DataDir, "sms")}
		if g := cfg.Settings.SMS; g.GatewayURL != "" {
			p.sms = &sms.Gateway{URL: g.GatewayURL, Secret: []byte(g.Secret)}
		}
	}
	if p.openConnector == nil {
		p.openConnector = stores.Open
	}
	if o := cfg.Settings.Objects; o.Shared() {
		objects, err := blobs.NewS3(context.Background(), *o.S3)
		if err != nil {
			return nil, fmt.Errorf("objects %w", err)
		}
		p.objects = objects
		p.staging = exporters.NewStagingIn(objects, exporters.StagingOptions{
			CSV: slices.Contains(cfg.Settings.Exports.Formats, config.FormatCSV), BOM: cfg.Settings.Exports.BOM()})
	}
	tmpl, err := loadTemplates(cfg.Settings.TemplatesDir)
	if err != nil {
		return nil, err
	}
	p.tmpl = tmpl
	if p.dest == nil {
		dest, err := exporters.NewDestination(context.Background(), cfg.Settings.Exports, p.exports)
		if err != nil {
			return nil, err
		}
		p.dest = dest
	}
	return p, nil
}

// QueueDefault is the queue of every pipeline job but the store tasks
// (config.QueueStoreTasks).
const QueueDefault = river.QueueDefault

// NewClient creates the River client that works the pipeline's jobs (and
// inserts them). With work false it only inserts, for API-only processes.
func (p *Pipeline) NewClient(work bool) (*river.Client[pgx.Tx], error) {
	w := p.settings.Worker
	cfg := &river.Config{
		Logger:      p.logger.With("component", "river"),
		MaxAttempts: w.MaxAttempts,
		// River's timeout is the liveness window; jobs beat a heartbeat and
		// run under worker.job_timeout instead (heartbeat.go).
		JobTimeout:           w.RescueAfter,
		RescueStuckJobsAfter: w.RescueAfter,
		WorkerMiddleware:     []rivertype.WorkerMiddleware{&heartbeatMiddleware{p: p, every: w.RescueAfter / 4}},
		ErrorHandler:         &failureHandler{p: p},
	}
	queues := w.WorksQueues()
	if work && len(queues) > 0 {
		workers := river.NewWorkers()
		river.AddWorker(workers, withTimeLimit(&verifyWorker{p: p}, w.JobTimeout))
		river.AddWorker(workers, withTimeLimit(&sendCodeWorker{p: p}, w.JobTimeout))
		river.AddWorker(workers, withTimeLimit(&planWorker{p: p}, w.JobTimeout))
		river.AddWorker(workers, withTimeLimit(&storeTaskWorker{p: p}, w.JobTimeout))
		river.AddWorker(workers, withTimeLimit(&assembleWorker{p: p}, w.JobTimeout))
		river.AddWorker(workers, withTimeLimit(&deliverWorker{p: p}, w.JobTimeout))
		river.AddWorker(workers, withTimeLimit(&slaSweepWorker{p: p}, w.JobTimeout))
		river.AddWorker(workers, withTimeLimit(&openCountsWorker{p: p}, w.JobTimeout))
		river.AddWorker(workers, withTimeLimit(&noticeWorker{p: p}, w.JobTimeout))
		river.AddWorker(workers, withTimeLimit(&retentionSweepWorker{p: p}, w.JobTimeout))
		river.AddWorker(workers, withTimeLimit(&recipientNoticeWorker{p: p}, w.JobTimeout))
		river.AddWorker(workers, withTimeLimit(&exportSweepWorker{p: p}, w.JobTimeout))
		river.AddWorker(workers, withTimeLimit(&expireWorker{p: p}, w.JobTimeout))
		river.AddWorker(workers, withTimeLimit(&limitsSweepWorker{p: p}, w.JobTimeout))
		river.AddWorker(workers, withTimeLimit(&sendContactCodeWorker{p: p}, w.JobTimeout))
		river.AddWorker(workers, withTimeLimit(&failuresSweepWorker{p: p}, w.JobTimeout))
		river.AddWorker(workers, withTimeLimit(&auditAnchorWorker{p: p}, w.JobTimeout))
		river.AddWorker(workers, withTimeLimit(newOpenDSRCallbackWorker(p), w.JobTimeout))
		cfg.Workers = workers
		// worker.concurrency is the process's: each queue worked gets it
		// all (River bounds each queue on its own).
		cfg.Queues = map[string]river.QueueConfig{}
		for _, q := range queues {
			cfg.Queues[q] = river.QueueConfig{MaxWorkers: w.Concurrency}
		}
		cfg.PeriodicJobs = []*river.PeriodicJob{
			river.NewPeriodicJob(
				river.PeriodicInterval(p.settings.SLA.SweepInterval),
				func() (river.JobArgs, *river.InsertOpts) { return SLASweepArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true, ID: "sla_sweep"},
			),
			river.NewPeriodicJob(
				river.PeriodicInterval(p.settings.SLA.CountsInterval),
				func() (river.JobArgs, *river.InsertOpts) { return OpenCountsSweepArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true, ID: "open_counts_sweep"},
			),
			river.NewPeriodicJob(
				river.PeriodicInterval(p.settings.Exports.SweepInterval),
				func() (river.JobArgs, *river.InsertOpts) { return ExportSweepArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true, ID: "export_sweep"},
			),
			river.NewPeriodicJob(
				river.PeriodicInterval(time.Hour),
				func() (river.JobArgs, *river.InsertOpts) { return LimitsSweepArgs{}, nil },
				&river.PeriodicJobOpts{ID: "limits_sweep"},
			),
			river.NewPeriodicJob(
				river.PeriodicInterval(time.Minute),
				func() (river.JobArgs, *river.InsertOpts) { return FailuresSweepArgs{}, nil },
				&river.PeriodicJobOpts{ID: "failures_sweep"},
			),
			river.NewPeriodicJob(
				river.PeriodicInterval(p.settings.Retention.SweepInterval),
				func() (river.JobArgs, *river.InsertOpts) { return RetentionSweepArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true, ID: "retention_sweep"},
			),
			river.NewPeriodicJob(
				river.PeriodicInterval(p.settings.Audit.AnchorInterval),
				func() (river.JobArgs, *river.InsertOpts) { return AuditAnchorArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true, ID: "audit_anchor"},
			),
		}
	}
	client, err := river.NewClient(riverpgxv5.New(p.db.Pool), cfg)
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	p.client = client
	return client, nil
}

// Close closes the store connectors the pipeline opened.
func (p *Pipeline) Close() {
	p.connMu.Lock()
	defer p.connMu.Unlock()
	for name, c := range p.connectors {
		if err := c.Close(); err != nil {
			p.logger.Warn("close connector", "store", name, "err", err)
		}
		delete(p.connectors, name)
	}
}

// connector returns the store's connector, opening it once per process.
func (p *Pipeline) connector(ctx context.Context, name string) (rights.Connector, error) {
	p.connMu.Lock()
	defer p.connMu.Unlock()
	if c, ok := p.connectors[name]; ok {
		return c, nil
	}
	for _, s := range p.settings.Stores {
		if s.Name == name {
			c, err := p.openConnector(ctx, s)
			if err != nil {
				return nil, fmt.Errorf("open store %s: %w", name, err)
			}
			p.connectors[name] = c
			return c, nil
		}
	}
	return nil, fmt.Errorf("store %s is no longer configured", name)
}

// step runs fn in a transaction that also completes job, so the step's state
// change, audit event, next job and the job's own completion commit together
// or not at all.
func step[T river.JobArgs](ctx context.Context, p *Pipeline, job *river.Job[T], fn func(tx pgx.Tx) error) error {
	return p.db.InTx(ctx, func(tx pgx.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		_, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job)
		return err
	})
}

// insertTx enqueues the next step in tx.
func (p *Pipeline) insertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs) error {
	client, err := p.riverClient(ctx)
	if err != nil {
		return err
	}
	if _, err := client.InsertTx(ctx, tx, args, uniqueByArgs); err != nil {
		return fmt.Errorf("enqueue %s: %w", args.Kind(), err)
	}
	return nil
}

// insertAt enqueues a job in tx to run at at.
func (p *Pipeline) insertAt(ctx context.Context, tx pgx.Tx, args river.JobArgs, at time.Time) error {
	client, err := p.riverClient(ctx)
	if err != nil {
		return err
	}
	opts := *uniqueByArgs
	opts.ScheduledAt = at
	if _, err := client.InsertTx(ctx, tx, args, &opts); err != nil {
		return fmt.Errorf("enqueue %s: %w", args.Kind(), err)
	}
	return nil
}

// lastAttempt reports whether River will not retry this job after a failure.
func lastAttempt(job *rivertype.JobRow) bool { return job.Attempt >= job.MaxAttempts }

// safeError is an error's text for the audit trail. Connectors and mailers
// keep personal data out of their errors; this also bounds the length.
func safeError(err error) string {
	s := err.Error()
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return s
}
