package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/rights"
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

// LiveCountLimit is the number of open requests up to which BandCounts
// counts for each call (milliseconds); beyond it, it answers from the
// counts one worker stores every sla.counts_interval, with their time:
// counted live, the console's queue page took two seconds at 1M open
// requests.
const LiveCountLimit = 20_000

// BandCounts is CountOpenByBand, answered from the stored counts when the
// backlog is larger than liveLimit and f filters on nothing but what they
// are kept by (products and status); asOf is then when they were taken,
// else zero. Stored counts are used however old (the caller shows their
// time): counting live instead while the worker that stores them is down
// would make every call on a large backlog cost seconds.
func BandCounts(ctx context.Context, q Querier, f RequestFilter, liveLimit int) (counts map[rights.Band]int, asOf time.Time, err error) {
	at, stored, err := LoadOpenCounts(ctx, q)
	if err != nil {
		return nil, time.Time{}, err
	}
	total := 0
	for _, c := range stored {
		total += c.Count
	}
	kept := f.Type == "" && f.Channel == "" && f.Assignee == "" && !f.Unassigned && f.Search == ""
	if at.IsZero() || total <= liveLimit || !kept {
		counts, err := CountOpenByBand(ctx, q, f)
		return counts, time.Time{}, err
	}
	counts = map[rights.Band]int{}
	for _, b := range rights.Bands {
		if b != rights.BandClosed {
			counts[b] = 0
		}
	}
	for _, c := range stored {
		switch {
		case f.Product != "" && c.Product != f.Product,
			f.Products != nil && !slices.Contains(f.Products, c.Product),
			f.Status != "" && c.Status != string(f.Status):
			continue
		}
		counts[rights.Band(c.Band)] += c.Count
	}
	return counts, at, nil
}
