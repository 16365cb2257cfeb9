package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// A job whose process is killed must be retried within about a minute, not
// after the longest a legitimate job may run (a large export takes many).
//
// River's rescuer retries a running job once its attempted_at is older than
// both worker.rescue_after and the job's River timeout. So:
//
//   - River's job timeout is set to rescue_after: it is the liveness window,
//     not the job's time limit;
//   - every job beats a heartbeat (heartbeatMiddleware), moving its
//     attempted_at forward every quarter of rescue_after while its process
//     lives, so a live job, however long, is never rescued;
//   - the job's real time limit, worker.job_timeout, replaces River's
//     deadline on the job's context (timed), keeping River's cancellation
//     (shutdown, a cancelled job).
//
// A dead process stops beating: its jobs are retried within rescue_after
// plus the rescuer's interval (30 s), 90 s with the defaults.
type heartbeatMiddleware struct {
	river.MiddlewareDefaults
	p     *Pipeline
	every time.Duration
}

func (m *heartbeatMiddleware) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	beating, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(m.every)
		defer t.Stop()
		for {
			select {
			case <-beating.Done():
				return
			case <-t.C:
				// Best effort: a beat lost to a busy database is made up by
				// the next one; rescue_after is four beats long.
				_, _ = m.p.db.Pool.Exec(beating, `UPDATE river_job SET attempted_at = now() WHERE id = $1 AND state = 'running'`, job.ID)
			}
		}
	}()
	defer func() { stop(); <-done }()
	return doInner(ctx)
}

// timed runs a worker with worker.job_timeout as its time limit instead of
// River's deadline (the liveness window).
type timed[T river.JobArgs] struct {
	river.Worker[T]
	limit time.Duration
}

func withTimeLimit[T river.JobArgs](w river.Worker[T], limit time.Duration) river.Worker[T] {
	return &timed[T]{Worker: w, limit: limit}
}

func (t *timed[T]) Work(ctx context.Context, job *river.Job[T]) error {
	ctx, cancel := replaceDeadline(ctx, t.limit)
	defer cancel()
	return t.Worker.Work(ctx, job)
}

// replaceDeadline returns a context that ends limit from now, or when
// parent is cancelled for any reason but its own deadline.
func replaceDeadline(parent context.Context, limit time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), limit)
	stop := context.AfterFunc(parent, func() {
		if !errors.Is(parent.Err(), context.DeadlineExceeded) {
			cancel()
		}
	})
	return ctx, func() { stop(); cancel() }
}
