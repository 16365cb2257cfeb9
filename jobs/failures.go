package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// No step runs out of attempts silently. When a job that works on a
// request gives up, its failure is recorded in failed_steps (the job to run
// again, the status it worked on, the error), audited, counted in
// datarights_steps_failed_total (an alert fires on it), and the request
// becomes failed when its status allows. Staff resume it with one action
// (Resume). Two paths record a failure, both idempotent by job id: River's
// error handler on the last attempt, and a sweep for jobs discarded without
// it (the process died; the rescuer gave up on a job killed on its last
// attempt).

// failureKinds are the job kinds that work on one request. Store tasks
// record their own failure (the task fails with the request) and are
// retried per task; they are resumed here too.
var failureKinds = []string{
	(VerifyArgs{}).Kind(), (SendCodeArgs{}).Kind(), (PlanArgs{}).Kind(), (AssembleArgs{}).Kind(),
	(DeliverArgs{}).Kind(), (NoticeArgs{}).Kind(), (RecipientNoticeArgs{}).Kind(), (SendContactCodeArgs{}).Kind(),
	(ExpireArgs{}).Kind(),
}

// stepStatus is the status each request-moving step works on: a failure
// of that step, in that status, fails the request.
var stepStatus = map[string]rights.Status{
	(VerifyArgs{}).Kind():          rights.StatusReceived,
	(PlanArgs{}).Kind():            rights.StatusVerified,
	(AssembleArgs{}).Kind():        rights.StatusAssembling,
	(DeliverArgs{}).Kind():         rights.StatusDelivering,
	(SendContactCodeArgs{}).Kind(): rights.StatusAwaitingContact,
}

type failureHandler struct {
	p *Pipeline
}

func (h *failureHandler) HandleError(ctx context.Context, job *rivertype.JobRow, err error) *river.ErrorHandlerResult {
	if job.Attempt >= job.MaxAttempts {
		h.record(ctx, job.ID, job.Kind, job.EncodedArgs, err)
	}
	return nil
}

func (h *failureHandler) HandlePanic(ctx context.Context, job *rivertype.JobRow, panicVal any, _ string) *river.ErrorHandlerResult {
	if job.Attempt >= job.MaxAttempts {
		h.record(ctx, job.ID, job.Kind, job.EncodedArgs, fmt.Errorf("panic: %v", panicVal))
	}
	return nil
}

func (h *failureHandler) record(ctx context.Context, jobID int64, kind string, args []byte, cause error) {
	if err := h.p.recordFailure(ctx, jobID, kind, args, cause); err != nil {
		// The sweep records it later.
		h.p.logger.ErrorContext(ctx, "record failed step", "job_id", jobID, "kind", kind, "err", err)
	}
}

// recordFailure records that a job gave up; a job not about one request,
// or recorded already, changes nothing.
func (p *Pipeline) recordFailure(ctx context.Context, jobID int64, kind string, args []byte, cause error) error {
	var ref struct {
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(args, &ref); err != nil || ref.RequestID == "" || kind == (StoreTaskArgs{}).Kind() {
		return nil
	}
	class := errorClass(cause)
	recorded := false
	err := p.db.InTx(ctx, func(tx pgx.Tx) error {
		r, err := storage.LockRequest(ctx, tx, ref.RequestID)
		if err != nil {
			return err
		}
		now := p.now().UTC()
		added, err := storage.AddFailedStep(ctx, tx, storage.FailedStep{JobID: jobID, RequestID: r.ID, Kind: kind, Args: args,
			FromStatus: string(r.Status), ErrorClass: class, Error: safeError(cause), FailedAt: now})
		if err != nil || !added {
			return err
		}
		recorded = true
		detail := map[string]any{"step": kind, "error_class": class, "error": safeError(cause), "job_id": jobID}
		if kind == (NoticeArgs{}).Kind() {
			var n NoticeArgs
			_ = json.Unmarshal(args, &n)
			detail["notice"] = n.Notice
		}
		if stepStatus[kind] == r.Status && rights.CanTransition(r.Status, rights.StatusFailed) {
			return p.transition(ctx, tx, r, rights.StatusFailed, now, storage.Change{
				Actor: rights.ActorSystem, Action: "request.failed", Detail: detail})
		}
		// A notice (which never moves a request: its work goes on without
		// it), an expiry, or a step the request has moved past: the request
		// stays where it is; the failure shows on it and can be retried.
		return storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: now, Actor: rights.ActorSystem,
			Action: "step.failed", Detail: detail})
	})
	if err == nil && recorded {
		p.metrics.StepFailed(kind, class)
	}
	return err
}

// errorClass names the kind of a failure for the audit and the metric
// label: a bounded set, never the error text.
func errorClass(err error) string {
	var netErr net.Error
	switch {
	case err == nil:
		return "unknown"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case rights.ErrorCode(err) != rights.EInternal:
		return string(rights.ErrorCode(err))
	case errors.As(err, &netErr):
		return "network"
	}
	return "error"
}

// FailuresSweepArgs records jobs that gave up without their error handler
// running.
type FailuresSweepArgs struct{}

func (FailuresSweepArgs) Kind() string { return "failures_sweep" }

type failuresSweepWorker struct {
	river.WorkerDefaults[FailuresSweepArgs]
	p *Pipeline
}

func (w *failuresSweepWorker) Work(ctx context.Context, job *river.Job[FailuresSweepArgs]) error {
	_, err := w.p.SweepFailures(ctx)
	return err
}

// SweepFailures records discarded request jobs not yet in failed_steps and
// returns how many it recorded.
func (p *Pipeline) SweepFailures(ctx context.Context) (int, error) {
	n := 0
	for {
		jobs, err := storage.UnrecordedDiscards(ctx, p.db.Pool, failureKinds, 100)
		if err != nil || len(jobs) == 0 {
			return n, err
		}
		for _, j := range jobs {
			var last struct {
				Error string `json:"error"`
			}
			_ = json.Unmarshal(j.Errors, &last)
			if last.Error == "" {
				last.Error = "discarded by River (the job ran out of attempts without recording an error)"
			}
			if err := p.recordFailure(ctx, j.ID, j.Kind, j.Args, errors.New(last.Error)); err != nil {
				return n, err
			}
			// A job whose request is gone or not about one still must not
			// be picked up again.
			if err := p.markSwept(ctx, j.ID, j.Kind, j.Args); err != nil {
				return n, err
			}
			n++
		}
	}
}

// markSwept makes sure a discarded job is never listed again, whether or
// not it was about a request recordFailure could record.
func (p *Pipeline) markSwept(ctx context.Context, jobID int64, kind string, args []byte) error {
	return p.db.InTx(ctx, func(tx pgx.Tx) error {
		var ref struct {
			RequestID string `json:"request_id"`
		}
		_ = json.Unmarshal(args, &ref)
		if !storage.ValidID(ref.RequestID) {
			return nil
		}
		_, err := tx.Exec(ctx, `INSERT INTO failed_steps (job_id, request_id, kind, args, from_status, error_class, error, failed_at, retried_at, retried_by)
			SELECT $1, id, $2, $3, status, 'unrecorded', 'discarded; recorded by the sweep', $4, $4, 'sweep'
			FROM requests WHERE id = $5 ON CONFLICT (job_id) DO NOTHING`, jobID, kind, args, p.now().UTC(), ref.RequestID)
		return err
	})
}

// rawArgs re-enqueues a failed step's job with its original arguments.
type rawArgs struct {
	kind string
	args json.RawMessage
}

func (a rawArgs) Kind() string                 { return a.kind }
func (a rawArgs) MarshalJSON() ([]byte, error) { return a.args, nil }

// ResumeFailed runs a failed request's failed steps again: failed store
// tasks go back to work, every step that ran out of attempts is enqueued
// again with its arguments, and the request returns to the status that
// step works on. One audited transaction; 409 when nothing failed.
func (p *Pipeline) ResumeFailed(ctx context.Context, staff, requestID string) (*rights.Request, error) {
	var r *rights.Request
	err := p.db.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if r, err = storage.LockRequest(ctx, tx, requestID); err != nil {
			return err
		}
		steps, err := storage.ListFailedSteps(ctx, tx, r.ID, true)
		if err != nil {
			return err
		}
		tasks, err := storage.ListTasks(ctx, tx, r.ID)
		if err != nil {
			return err
		}
		var failedTasks []*rights.Task
		for _, t := range tasks {
			if t.Status == rights.TaskFailed {
				failedTasks = append(failedTasks, t)
			}
		}
		if len(steps) == 0 && (r.Status != rights.StatusFailed || len(failedTasks) == 0) {
			return rights.Errorf(rights.EConflict, "request %s is %s with no failed step to resume", r.ID, r.Status)
		}
		now := p.now().UTC()
		var names []string
		target := rights.Status("")
		for _, f := range steps {
			if f.Kind == (RecipientNoticeArgs{}).Kind() {
				var a RecipientNoticeArgs
				if err := json.Unmarshal(f.Args, &a); err != nil {
					return fmt.Errorf("failed step %d: %w", f.ID, err)
				}
				if err := storage.ReopenNotice(ctx, tx, r.ID, a.Recipient); err != nil {
					return err
				}
			}
			// Not unique by arguments: the job that failed may still show as
			// running for a moment (its failure is recorded before River
			// finalizes it), and a unique insert would be skipped. The
			// failed step is retried once, here.
			if _, err := p.client.InsertTx(ctx, tx, rawArgs{kind: f.Kind, args: f.Args}, nil); err != nil {
				return fmt.Errorf("enqueue %s again: %w", f.Kind, err)
			}
			if err := storage.StepRetried(ctx, tx, f.ID, rights.ActorStaff(staff), now); err != nil {
				return err
			}
			names = append(names, f.Kind)
			if rights.Status(f.FromStatus) != rights.StatusFailed && rights.CanTransition(rights.StatusFailed, rights.Status(f.FromStatus)) {
				target = rights.Status(f.FromStatus)
			}
		}
		if r.Status == rights.StatusFailed && len(failedTasks) > 0 {
			retries, err := countAudit(ctx, tx, r.ID, "task.retry_requested")
			if err != nil {
				return err
			}
			for _, t := range failedTasks {
				t.Status, t.FinishedAt, t.LastError = rights.TaskPending, nil, ""
				if err := storage.SaveTask(ctx, tx, t); err != nil {
					return err
				}
				if err := p.insertTx(ctx, tx, StoreTaskArgs{RequestID: r.ID, TaskID: t.ID, Retry: retries + 1}); err != nil {
					return err
				}
				names = append(names, "store_task:"+t.Store)
			}
			target = rights.StatusInProgress
		}
		detail := map[string]any{"steps": names}
		if r.Status == rights.StatusFailed && target != "" {
			return p.transition(ctx, tx, r, target, now, storage.Change{
				Actor: rights.ActorStaff(staff), Action: "request.resumed", Detail: detail})
		}
		return storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: now, Actor: rights.ActorStaff(staff),
			Action: "request.resumed", Detail: detail})
	})
	return r, err
}
