package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Hold is data of one dataset that a delete or cancellation kept restricted,
// under a retention period (Until set) or with no end (Until nil).
type Hold struct {
	RequestID  string     `json:"request_id"`
	Store      string     `json:"store"`
	Dataset    string     `json:"dataset"`
	Retention  string     `json:"retention,omitempty"`
	Rows       int64      `json:"rows"`
	EndedAt    time.Time  `json:"relationship_ended_at"`
	Until      *time.Time `json:"until"`
	CreatedAt  time.Time  `json:"created_at"`
	CheckedAt  *time.Time `json:"checked_at,omitempty"`
	Attempts   int        `json:"attempts,omitempty"`
	LastError  string     `json:"last_error,omitempty"`
	ReleasedAt *time.Time `json:"released_at"`
}

const holdColumns = `request_id, store, dataset, retention, rows, ended_at, until, created_at, checked_at,
	attempts, last_error, released_at`

func scanHold(row pgx.Row) (Hold, error) {
	var h Hold
	err := row.Scan(&h.RequestID, &h.Store, &h.Dataset, &h.Retention, &h.Rows, &h.EndedAt, &h.Until, &h.CreatedAt,
		&h.CheckedAt, &h.Attempts, &h.LastError, &h.ReleasedAt)
	return h, err
}

// PutHold records restricted data. A store task that runs again records the
// same hold again: its rows and end are updated, and a released hold is held
// again (the data is there).
func PutHold(ctx context.Context, tx pgx.Tx, h Hold) error {
	_, err := tx.Exec(ctx, `INSERT INTO retention_holds (request_id, store, dataset, retention, rows, ended_at, until, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (request_id, store, dataset) DO UPDATE SET retention = excluded.retention, rows = excluded.rows,
			until = excluded.until, released_at = NULL`,
		h.RequestID, h.Store, h.Dataset, h.Retention, h.Rows, h.EndedAt, h.Until, h.CreatedAt)
	if err != nil {
		return fmt.Errorf("put hold %s/%s of %s: %w", h.Store, h.Dataset, h.RequestID, err)
	}
	return nil
}

// ListHolds returns a request's holds, by store and dataset.
func ListHolds(ctx context.Context, q Querier, requestID string) ([]Hold, error) {
	rows, err := q.Query(ctx, `SELECT `+holdColumns+` FROM retention_holds WHERE request_id = $1 ORDER BY store, dataset`, requestID)
	if err != nil {
		return nil, fmt.Errorf("list holds of %s: %w", requestID, err)
	}
	holds, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Hold, error) { return scanHold(row) })
	if err != nil {
		return nil, fmt.Errorf("list holds of %s: %w", requestID, err)
	}
	return holds, nil
}

// DueHolds returns up to limit unreleased holds whose period ended by now
// and that were not looked at since checkedBefore, the longest overdue
// first, locked for tx; holds another sweep has locked are skipped.
func DueHolds(ctx context.Context, tx pgx.Tx, now, checkedBefore time.Time, limit int) ([]Hold, error) {
	rows, err := tx.Query(ctx, `SELECT `+holdColumns+` FROM retention_holds
		WHERE released_at IS NULL AND until <= $1 AND (checked_at IS NULL OR checked_at < $2)
		ORDER BY until, request_id, store, dataset LIMIT $3
		FOR UPDATE SKIP LOCKED`, now, checkedBefore, limit)
	if err != nil {
		return nil, fmt.Errorf("due holds: %w", err)
	}
	holds, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Hold, error) { return scanHold(row) })
	if err != nil {
		return nil, fmt.Errorf("due holds: %w", err)
	}
	return holds, nil
}

// SaveHold saves a hold's outcome after the sweep looked at it.
func SaveHold(ctx context.Context, tx pgx.Tx, h Hold) error {
	_, err := tx.Exec(ctx, `UPDATE retention_holds SET rows = $4, until = $5, checked_at = $6, attempts = $7,
		last_error = $8, released_at = $9 WHERE request_id = $1 AND store = $2 AND dataset = $3`,
		h.RequestID, h.Store, h.Dataset, h.Rows, h.Until, h.CheckedAt, h.Attempts, h.LastError, h.ReleasedAt)
	if err != nil {
		return fmt.Errorf("save hold %s/%s of %s: %w", h.Store, h.Dataset, h.RequestID, err)
	}
	return nil
}

// CountHolds returns how many holds are unreleased, by whether their period
// has ended by now (overdue: the sweep has not erased them yet).
func CountHolds(ctx context.Context, q Querier, now time.Time) (held, overdue int64, err error) {
	err = q.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE until <= $1) FROM retention_holds
		WHERE released_at IS NULL`, now).Scan(&held, &overdue)
	if err != nil {
		return 0, 0, fmt.Errorf("count holds: %w", err)
	}
	return held, overdue, nil
}
