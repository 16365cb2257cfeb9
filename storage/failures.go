package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// FailedStep is a request's step that ran out of attempts.
type FailedStep struct {
	ID         int64           `json:"id"`
	JobID      int64           `json:"job_id"`
	RequestID  string          `json:"-"`
	Kind       string          `json:"step"`
	Args       json.RawMessage `json:"-"`
	FromStatus string          `json:"from_status"`
	ErrorClass string          `json:"error_class"`
	Error      string          `json:"error"`
	FailedAt   time.Time       `json:"failed_at"`
	RetriedAt  *time.Time      `json:"retried_at,omitempty"`
	RetriedBy  string          `json:"retried_by,omitempty"`
}

// AddFailedStep records a step that gave up; it reports false when the job
// was recorded already.
func AddFailedStep(ctx context.Context, tx pgx.Tx, f FailedStep) (bool, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO failed_steps (job_id, request_id, kind, args, from_status, error_class, error, failed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (job_id) DO NOTHING`,
		f.JobID, f.RequestID, f.Kind, f.Args, f.FromStatus, f.ErrorClass, f.Error, f.FailedAt)
	if err != nil {
		return false, fmt.Errorf("record failed %s of %s: %w", f.Kind, f.RequestID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// ListFailedSteps returns a request's failed steps, oldest first; open
// only (not yet retried) with open.
func ListFailedSteps(ctx context.Context, q Querier, requestID string, open bool) ([]*FailedStep, error) {
	query := `SELECT id, job_id, request_id, kind, args, from_status, error_class, error, failed_at, retried_at, retried_by
		FROM failed_steps WHERE request_id = $1`
	if open {
		query += ` AND retried_at IS NULL`
	}
	rows, err := q.Query(ctx, query+` ORDER BY id`, requestID)
	if err != nil {
		return nil, fmt.Errorf("failed steps of %s: %w", requestID, err)
	}
	steps, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*FailedStep, error) {
		var f FailedStep
		err := row.Scan(&f.ID, &f.JobID, &f.RequestID, &f.Kind, &f.Args, &f.FromStatus, &f.ErrorClass, &f.Error, &f.FailedAt, &f.RetriedAt, &f.RetriedBy)
		return &f, err
	})
	if err != nil {
		return nil, fmt.Errorf("failed steps of %s: %w", requestID, err)
	}
	return steps, nil
}

// StepRetried marks a failed step as run again.
func StepRetried(ctx context.Context, tx pgx.Tx, id int64, by string, at time.Time) error {
	if _, err := tx.Exec(ctx, `UPDATE failed_steps SET retried_at = $2, retried_by = $3 WHERE id = $1`, id, at, by); err != nil {
		return fmt.Errorf("retry failed step %d: %w", id, err)
	}
	return nil
}

// DiscardedJob is a River job that ran out of attempts.
type DiscardedJob struct {
	ID       int64
	Kind     string
	Args     json.RawMessage
	Errors   []byte
	Finished time.Time
}

// UnrecordedDiscards returns up to limit discarded jobs of the given kinds
// that carry a request id and are not in failed_steps: failures whose
// error handler never ran (the process died, or the rescuer discarded a
// job that was killed on its last attempt).
func UnrecordedDiscards(ctx context.Context, q Querier, kinds []string, limit int) ([]DiscardedJob, error) {
	rows, err := q.Query(ctx, `SELECT j.id, j.kind, j.args, coalesce(j.errors[array_length(j.errors, 1)]::text, ''), coalesce(j.finalized_at, now())
		FROM river_job j
		WHERE j.state = 'discarded' AND j.kind = ANY($1) AND j.args ? 'request_id'
			AND EXISTS (SELECT 1 FROM requests r WHERE r.id::text = j.args->>'request_id')
			AND NOT EXISTS (SELECT 1 FROM failed_steps f WHERE f.job_id = j.id)
		ORDER BY j.id LIMIT $2`, kinds, limit)
	if err != nil {
		return nil, fmt.Errorf("unrecorded discarded jobs: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (DiscardedJob, error) {
		var d DiscardedJob
		err := row.Scan(&d.ID, &d.Kind, &d.Args, &d.Errors, &d.Finished)
		return d, err
	})
}
