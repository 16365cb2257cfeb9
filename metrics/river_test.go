package metrics_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/datarights/datarights/metrics"
	"github.com/datarights/datarights/storage/storagetest"
)

// Job kinds of the test workers, one per outcome.
type (
	succeedArgs    struct{}
	completeTxArgs struct{} // completes itself in a transaction, as the pipeline's steps do
	failArgs       struct{}
	cancelArgs     struct{}
	snoozeArgs     struct{}
)

func (succeedArgs) Kind() string    { return "metrics_test_succeed" }
func (completeTxArgs) Kind() string { return "metrics_test_complete_tx" }
func (failArgs) Kind() string       { return "metrics_test_fail" }
func (cancelArgs) Kind() string     { return "metrics_test_cancel" }
func (snoozeArgs) Kind() string     { return "metrics_test_snooze" }

// retryMuchLater keeps a failed job from running again during the test, so
// each job reports exactly one outcome.
type retryMuchLater struct{}

func (retryMuchLater) NextRetry(*rivertype.JobRow) time.Time { return time.Now().Add(time.Hour) }

func TestWatchRiver(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	db, _ := storagetest.NewDB(t, "metrics")

	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(func(context.Context, *river.Job[succeedArgs]) error {
		time.Sleep(20 * time.Millisecond) // a run long enough to show in the duration
		return nil
	}))
	river.AddWorker(workers, river.WorkFunc(func(ctx context.Context, job *river.Job[completeTxArgs]) error {
		return db.InTx(ctx, func(tx pgx.Tx) error {
			_, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job)
			return err
		})
	}))
	river.AddWorker(workers, river.WorkFunc(func(context.Context, *river.Job[failArgs]) error {
		return errors.New("store unreachable")
	}))
	river.AddWorker(workers, river.WorkFunc(func(context.Context, *river.Job[cancelArgs]) error {
		return river.JobCancel(errors.New("request withdrawn"))
	}))
	river.AddWorker(workers, river.WorkFunc(func(context.Context, *river.Job[snoozeArgs]) error {
		return river.JobSnooze(time.Hour)
	}))
	client, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{
		Logger:            slog.New(slog.DiscardHandler),
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 10}},
		Workers:           workers,
		RetryPolicy:       retryMuchLater{},
		FetchCooldown:     10 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}

	m := metrics.New()
	stopWatching := m.WatchRiver(client)
	// A second watcher, left running until the client stops, checks that
	// stopping the client ends a watch too.
	late := metrics.New()
	stopLate := late.WatchRiver(client)
	// The test's own subscription tells when every job has reported. River
	// delivers each event to all subscriptions at once, so when this one
	// has seen them all, the watchers' buffers hold them too.
	events, unsubscribe := client.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed,
		river.EventKindJobCancelled, river.EventKindJobSnoozed)
	defer unsubscribe()

	if err := client.Start(ctx); err != nil {
		t.Fatal(err)
	}
	stopClient := func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := client.Stop(stopCtx); err != nil {
			t.Errorf("stop client: %v", err)
		}
	}
	defer stopClient()

	inserts := []river.InsertManyParams{
		{Args: succeedArgs{}}, {Args: succeedArgs{}},
		{Args: completeTxArgs{}},
		{Args: failArgs{}, InsertOpts: &river.InsertOpts{MaxAttempts: 1}}, // discarded at once
		{Args: failArgs{}, InsertOpts: &river.InsertOpts{MaxAttempts: 5}}, // will be retried
		{Args: cancelArgs{}},
		{Args: snoozeArgs{}},
	}
	if _, err := client.InsertMany(ctx, inserts); err != nil {
		t.Fatal(err)
	}
	for seen := 0; seen < len(inserts); seen++ {
		select {
		case <-events:
		case <-ctx.Done():
			t.Fatalf("only %d of %d jobs reported before the timeout", seen, len(inserts))
		}
	}
	stopWatching()
	stopWatching() // stopping twice is harmless

	for _, tc := range []struct {
		kind, outcome string
		want          float64
	}{
		{succeedArgs{}.Kind(), metrics.OutcomeCompleted, 2},
		{completeTxArgs{}.Kind(), metrics.OutcomeCompleted, 1},
		{failArgs{}.Kind(), metrics.OutcomeDiscarded, 1},
		{failArgs{}.Kind(), metrics.OutcomeFailed, 1},
		{cancelArgs{}.Kind(), metrics.OutcomeCancelled, 1},
		{snoozeArgs{}.Kind(), metrics.OutcomeSnoozed, 1},
	} {
		labels := map[string]string{"kind": tc.kind, "outcome": tc.outcome}
		if got := value(t, m, "datarights_river_jobs_total", labels); got != tc.want {
			t.Errorf("river_jobs_total%v = %v, want %v", labels, got, tc.want)
		}
	}
	if n := seriesCount(t, m, "datarights_river_jobs_total"); n != 6 {
		t.Errorf("%d river_jobs_total series, want 6", n)
	}

	succeeded := series(t, m, "datarights_river_job_duration_seconds", map[string]string{"kind": succeedArgs{}.Kind()})
	if got := succeeded.GetHistogram().GetSampleCount(); got != 2 {
		t.Errorf("timed %d runs of %s, want 2", got, succeedArgs{}.Kind())
	}
	if got := succeeded.GetHistogram().GetSampleSum(); got < 0.04 {
		t.Errorf("%s ran %vs in total, want at least 0.04s (two 20ms runs)", succeedArgs{}.Kind(), got)
	}
	if n := seriesCount(t, m, "datarights_river_job_duration_seconds"); n != 5 {
		t.Errorf("%d job duration series, want one per kind (5)", n)
	}

	// Stopping the client closes the late watcher's subscription; its stop
	// must then return rather than wait for events that never come.
	stopClient()
	done := make(chan struct{})
	go func() { stopLate(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("stop hangs after the client stopped")
	}
	if got := value(t, late, "datarights_river_jobs_total", map[string]string{"kind": succeedArgs{}.Kind(), "outcome": metrics.OutcomeCompleted}); got != 2 {
		t.Errorf("late watcher counted %v completed runs, want 2", got)
	}
}

// TestWatchRiverInsertOnly checks that watching a client that works no jobs,
// as API-only processes have, neither panics (River's Subscribe does) nor
// counts anything.
func TestWatchRiverInsertOnly(t *testing.T) {
	t.Parallel()
	client, err := river.NewClient(riverpgxv5.New(nil), &river.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	stop := m.WatchRiver(client)
	stop()
	stop()
	if stop := m.WatchRiver(nil); stop == nil {
		t.Error("WatchRiver(nil) returned a nil stop")
	} else {
		stop()
	}
}
