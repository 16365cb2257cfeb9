package jobs_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/demo"
	"github.com/datarights/datarights/exporters"
	"github.com/datarights/datarights/jobs"
	"github.com/datarights/datarights/keyring"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
	"github.com/datarights/datarights/storage/s3test"
	"github.com/datarights/datarights/storage/storagetest"
)

// pipelineJobs is how many River jobs one request takes end to end:
// verify, plan, store task, assemble (copy only) and deliver.
var pipelineJobs = map[rights.Type]int{rights.TypeCopy: 5, rights.TypeDelete: 4}

// BenchmarkPipeline runs whole requests through the real pipeline — River
// workers, the demo bank on Postgres, the zip, the file outbox — and reports
// the time per request. Compare with BenchmarkRawRiverJobs, which works the
// same number of no-op jobs per request. copy_s3 is copy with the staged
// datasets and the archive in S3 (objects.backend: s3, a versitygw on
// loopback) instead of data_dir: what shared-nothing workers cost.
func BenchmarkPipeline(b *testing.B) {
	for _, bc := range []struct {
		name  string
		right rights.Type
		s3    bool
	}{{"copy", rights.TypeCopy, false}, {"delete", rights.TypeDelete, false}, {"copy_s3", rights.TypeCopy, true}} {
		right := bc.right
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			db, serviceURL := storagetest.NewDB(b, "bench")
			bankURL := storagetest.NewDatabase(b, "benchbank")
			if err := demo.Seed(ctx, bankURL); err != nil {
				b.Fatal(err)
			}
			dir := b.TempDir()
			yaml := demo.ConfigYAML(serviceURL, bankURL, filepath.Join(dir, "data")) +
				// A staff copy would wait for the delivery address's code
				// (issue 12): the benchmark measures the pipeline's 5 jobs.
				"intake:\n  repeat_window: 0s\n  confirm_delivery_email: false\nworker:\n  concurrency: 20\n"
			var getenv func(string) string
			if bc.s3 {
				srv := s3test.NewServer(b)
				srv.CreateBucket(b, "bench")
				yaml += fmt.Sprintf("objects:\n  backend: s3\n  s3:\n    bucket: bench\n    endpoint: %s\n    path_style: true\n"+
					"    access_key_env: OBJ_KEY\n    secret_key_env: OBJ_SECRET\n", srv.Endpoint())
				vars := map[string]string{"OBJ_KEY": srv.AccessKey(), "OBJ_SECRET": srv.SecretKey()}
				getenv = func(k string) string { return vars[k] }
			}
			cfg, err := config.Parse("bench.yaml", []byte(yaml), getenv)
			if err != nil {
				b.Fatal(err)
			}
			cfg.Keys = keyring.ForTest()

			// The workers' own pool, sized as serve sizes it
			// (worker.db_conns): each running job holds a connection.
			workerDB, err := storage.OpenWith(ctx, serviceURL, cfg.Worker.DBConns)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(workerDB.Close)
			p, err := jobs.New(jobs.Config{DB: workerDB, Settings: cfg, Mailer: &exporters.FileOutbox{Dir: filepath.Join(dir, "outbox")}})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(p.Close)
			client, err := p.NewClient(true)
			if err != nil {
				b.Fatal(err)
			}
			if err := client.Start(ctx); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = client.Stop(context.Background()) })
			awaitStartupSweeps(b, db)

			// A worker's first requests pay for its pool: each new
			// connection's server process loads its catalog caches and
			// compiles the triggers' functions, and each statement is
			// prepared once per connection. A running service pays that
			// once; the benchmark pays it before its clock starts.
			warm := pipelineWarmup()
			submit := func(from, to int) {
				for i := from; i < to; i++ {
					in := rights.Intake{Product: "webank", Type: right,
						Identities:    map[string]string{"user_id": demo.UserID(i%20 + 1)},
						DeliveryEmail: "someone@example.com", Verification: &rights.Verification{Method: "face_check"}}
					if _, _, err := p.SubmitStaff(ctx, "bench", in, nil); err != nil {
						b.Fatal(err)
					}
				}
			}
			submit(0, warm)
			waitAllCompleted(b, db, warm)
			var warmJobs int
			if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE state = 'completed'`).Scan(&warmJobs); err != nil {
				b.Fatal(err)
			}
			var warmedUp time.Time
			if err := db.Pool.QueryRow(ctx, `SELECT now()`).Scan(&warmedUp); err != nil {
				b.Fatal(err)
			}

			b.ResetTimer()
			submit(warm, warm+b.N)
			waitAllCompleted(b, db, warm+b.N)
			b.StopTimer()
			b.ReportMetric(float64(pipelineJobs[right]), "jobs/request")
			// What River really ran, per request: the pipeline's steps plus
			// any side jobs (notices, audits) the steps inserted.
			var worked int
			if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE state = 'completed'`).Scan(&worked); err == nil {
				b.ReportMetric(float64(worked-warmJobs)/float64(b.N), "worked/request")
			}
			var kinds []string
			rows, err := db.Pool.Query(ctx, `SELECT kind || '=' || count(*) || ' (' ||
				round(avg(extract(epoch FROM finalized_at - attempted_at)) * 1000, 1) || ' ms worked, ' ||
				round(avg(extract(epoch FROM attempted_at - scheduled_at)) * 1000, 1) || ' ms waited)'
				FROM river_job WHERE state = 'completed' AND scheduled_at >= $1 GROUP BY kind ORDER BY kind`, warmedUp)
			if err == nil {
				for rows.Next() {
					var k string
					_ = rows.Scan(&k)
					kinds = append(kinds, k)
				}
				rows.Close()
				b.Logf("jobs by kind for %d requests: %s", b.N, strings.Join(kinds, " "))
			}
		})
	}
}

// pipelineWarmup is how many requests BenchmarkPipeline runs before its
// clock starts: PIPELINE_BENCH_WARMUP, else 100 (0 times a cold worker).
func pipelineWarmup() int {
	if n, err := strconv.Atoi(os.Getenv("PIPELINE_BENCH_WARMUP")); err == nil && n >= 0 {
		return n
	}
	return 100
}

// startupSweeps are the periodic jobs a worker runs as soon as it starts
// (PeriodicJobOpts.RunOnStart in Pipeline.NewClient).
var startupSweeps = []string{"sla_sweep", "open_counts_sweep", "export_sweep", "retention_sweep", "audit_anchor"}

// awaitStartupSweeps waits for the sweeps a worker runs when it starts:
// they are the process's fixed cost, paid once, not work of the requests
// the benchmark times (the export sweep alone held a worker for a second
// at the start of a 4-second run).
func awaitStartupSweeps(b *testing.B, db *storage.DB) {
	b.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var done int
		err := db.Pool.QueryRow(context.Background(),
			`SELECT count(DISTINCT kind) FROM river_job WHERE kind = ANY($1) AND state = 'completed'`, startupSweeps).Scan(&done)
		if err != nil {
			b.Fatal(err)
		}
		if done == len(startupSweeps) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of the %d startup sweeps completed in a minute; %s", done, len(startupSweeps), stuckReport(db))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitAllCompleted(b *testing.B, db *storage.DB, n int) {
	b.Helper()
	wait := 10 * time.Minute
	if d, err := time.ParseDuration(os.Getenv("PIPELINE_BENCH_WAIT")); err == nil {
		wait = d
	}
	deadline := time.Now().Add(wait)
	for {
		var done, failed int
		err := db.Pool.QueryRow(context.Background(),
			`SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed') FROM requests`).Scan(&done, &failed)
		if err != nil {
			b.Fatal(err)
		}
		if failed > 0 {
			b.Fatalf("%d requests failed", failed)
		}
		if done == n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d requests completed; %s", done, n, stuckReport(db))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stuckReport says where unfinished requests are and what their jobs last
// failed with, for a benchmark that gives up waiting.
func stuckReport(db *storage.DB) string {
	ctx := context.Background()
	var out strings.Builder
	rows, err := db.Pool.Query(ctx, `SELECT status, count(*) FROM requests GROUP BY 1`)
	if err == nil {
		for rows.Next() {
			var status string
			var n int
			if rows.Scan(&status, &n) == nil {
				fmt.Fprintf(&out, "%s: %d; ", status, n)
			}
		}
		rows.Close()
	}
	rows, err = db.Pool.Query(ctx, `SELECT kind, state::text, attempt, coalesce(errors[array_length(errors, 1)]->>'error', '')
		FROM river_job WHERE state <> 'completed' ORDER BY id LIMIT 10`)
	if err == nil {
		for rows.Next() {
			var kind, state, msg string
			var attempt int
			if rows.Scan(&kind, &state, &attempt, &msg) == nil {
				fmt.Fprintf(&out, "job %s %s attempt %d: %s; ", kind, state, attempt, msg)
			}
		}
		rows.Close()
	}
	return out.String()
}

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
	done *atomic.Int64
}

func (w *noopWorker) Work(context.Context, *river.Job[noopArgs]) error {
	w.done.Add(1)
	return nil
}

// BenchmarkRawRiverJobs is the baseline for BenchmarkPipeline: River
// inserting and working 5 no-op jobs per "request" (one insert each, as the
// pipeline's steps do), same concurrency, same server.
func BenchmarkRawRiverJobs(b *testing.B) {
	ctx := context.Background()
	db, _ := storagetest.NewDB(b, "benchraw")
	var done atomic.Int64
	workers := river.NewWorkers()
	river.AddWorker(workers, &noopWorker{done: &done})
	client, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 20}},
		Workers: workers,
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := client.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = client.Stop(context.Background()) })
	const perRequest = 5
	b.ResetTimer()
	for i := range b.N * perRequest {
		err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
			_, err := client.InsertTx(ctx, tx, noopArgs{N: int64(i)}, nil)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	for done.Load() < int64(b.N*perRequest) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(perRequest, "jobs/request")
}
