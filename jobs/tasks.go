package jobs

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// Staff actions on a request's store tasks.

// lockTask locks a request and one of its tasks, in that order (the order
// every state change takes them in).
func (p *Pipeline) lockTask(ctx context.Context, tx pgx.Tx, requestID, taskID string) (*rights.Request, *rights.Task, error) {
	r, err := storage.LockRequest(ctx, tx, requestID)
	if err != nil {
		return nil, nil, err
	}
	t, err := storage.LockTask(ctx, tx, taskID)
	if err != nil || t.RequestID != r.ID {
		return nil, nil, rights.Errorf(rights.ENotFound, "task %s of request %s not found", taskID, requestID)
	}
	return r, t, nil
}

// RetryTask puts a failed store task back to work: the task becomes pending,
// the request in progress again, and the task's job is enqueued, all in one
// audited transaction.
func (p *Pipeline) RetryTask(ctx context.Context, staff, requestID, taskID string) (*rights.Request, error) {
	var r *rights.Request
	err := p.db.InTx(ctx, func(tx pgx.Tx) error {
		var (
			t   *rights.Task
			err error
		)
		if r, t, err = p.lockTask(ctx, tx, requestID, taskID); err != nil {
			return err
		}
		if t.Status != rights.TaskFailed || r.Status != rights.StatusFailed {
			return rights.Errorf(rights.EConflict, "only a failed task of a failed request can be retried (task %s, request %s)", t.Status, r.Status)
		}
		now := p.now().UTC()
		retries, err := countAudit(ctx, tx, r.ID, "task.retry_requested")
		if err != nil {
			return err
		}
		t.Status, t.FinishedAt, t.LastError = rights.TaskPending, nil, ""
		if err := storage.SaveTask(ctx, tx, t); err != nil {
			return err
		}
		if err := p.transition(ctx, tx, r, rights.StatusInProgress, now, storage.Change{
			Actor: rights.ActorStaff(staff), Action: "task.retry_requested", Detail: map[string]any{"store": t.Store, "action": t.Action},
		}); err != nil {
			return err
		}
		return p.insertTx(ctx, tx, StoreTaskArgs{RequestID: r.ID, TaskID: t.ID, Retry: retries + 1})
	})
	return r, err
}

func countAudit(ctx context.Context, tx pgx.Tx, requestID, action string) (int, error) {
	var n int
	err := tx.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE request_id = $1 AND action = $2`, requestID, action).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count %s events of %s: %w", action, requestID, err)
	}
	return n, nil
}

// Confirmation is what staff (or an outside system) report for a waiting
// task.
type Confirmation struct {
	// Found says whether the subject's data was found in the store.
	Found bool
	// Records is how many records were exported or deleted.
	Records int64
	// Note says what was done; it is audited and shown to staff, and must
	// not contain the person's data.
	Note string
}

// ConfirmTask completes a waiting task with what was done, and moves the
// request on when it was the last task.
func (p *Pipeline) ConfirmTask(ctx context.Context, actor, requestID, taskID string, c Confirmation) (*rights.Request, error) {
	var problems rights.Problems
	if strings.TrimSpace(c.Note) == "" {
		problems.Add("note", "is required: what was done, for the audit trail")
	} else if len(c.Note) > 2000 {
		problems.Add("note", "at most 2000 bytes")
	}
	if c.Records < 0 {
		problems.Add("records", "must not be negative")
	}
	if !c.Found && c.Records > 0 {
		problems.Add("records", "must be 0 when found is false")
	}
	if err := problems.Err(); err != nil {
		return nil, err
	}
	var r *rights.Request
	err := p.db.InTx(ctx, func(tx pgx.Tx) error {
		var (
			t   *rights.Task
			err error
		)
		if r, t, err = p.lockTask(ctx, tx, requestID, taskID); err != nil {
			return err
		}
		if t.Status != rights.TaskWaiting || r.WorkStatus() != rights.StatusInProgress {
			return rights.Errorf(rights.EConflict, "the task is %s, not waiting for confirmation", t.Status)
		}
		report := rights.StoreReport{Resolved: c.Found, Note: c.Note}
		// Records handled by hand are counted, but an export's records are
		// not in the archive (there is no staged file): staff hand them over
		// as the note says.
		if c.Found && t.Action != rights.ActionExport {
			report.Datasets = []rights.DatasetReport{{Name: "manual", Rows: c.Records}}
		}
		return p.finishTask(ctx, tx, r, t, report, p.now().UTC(), actor, "task.confirmed",
			map[string]any{"note": c.Note, "records": c.Records})
	})
	return r, err
}
