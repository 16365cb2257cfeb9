package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// SaveOpenCounts replaces the stored open-request counts with counts, taken
// at at.
func SaveOpenCounts(ctx context.Context, q Querier, at time.Time, counts []OpenCount) error {
	if counts == nil {
		counts = []OpenCount{}
	}
	_, err := q.Exec(ctx, `INSERT INTO open_counts (id, computed_at, counts) VALUES (true, $1, $2)
		ON CONFLICT (id) DO UPDATE SET computed_at = excluded.computed_at, counts = excluded.counts
		WHERE open_counts.computed_at <= excluded.computed_at`, at, counts)
	if err != nil {
		return fmt.Errorf("save open counts: %w", err)
	}
	return nil
}

// LoadOpenCounts returns the stored open-request counts and when they were
// taken; a zero time when none have been stored yet.
func LoadOpenCounts(ctx context.Context, q Querier) (time.Time, []OpenCount, error) {
	var at time.Time
	var counts []OpenCount
	err := q.QueryRow(ctx, `SELECT computed_at, counts FROM open_counts`).Scan(&at, &counts)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil, nil
	}
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("load open counts: %w", err)
	}
	return at, counts, nil
}
