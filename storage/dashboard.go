package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/rights"
)

// The SLA dashboard's queries. Each is bounded: by the open requests' due
// dates (the partial index requests_open_due), or by a time window on an indexed column
// (migration 0019), and grouped in SQL where the grouping needs nothing
// but SQL.

// DueWindow is one product's cut-offs for "due within 1, 3 and 7 days":
// an open request is due within n days when its due_at is at or before
// the n-day cut-off.
type DueWindow struct {
	Product                   string
	Within1, Within3, Within7 time.Time
}

// DueCount counts one product's open requests with a running clock: those
// already overdue at now, and those due from now to each cut-off
// (cumulative: Within3 includes Within1).
type DueCount struct {
	Product                            string
	Overdue, Within1, Within3, Within7 int
}

// CountDue counts the open, unpaused requests of each window's product by
// when they are due. A product without any is left out.
func CountDue(ctx context.Context, q Querier, now time.Time, windows []DueWindow) ([]DueCount, error) {
	products := make([]string, len(windows))
	c1, c3, c7 := make([]time.Time, len(windows)), make([]time.Time, len(windows)), make([]time.Time, len(windows))
	for i, w := range windows {
		products[i], c1[i], c3[i], c7[i] = w.Product, w.Within1, w.Within3, w.Within7
	}
	rows, err := q.Query(ctx, `SELECT w.product,
			count(*) FILTER (WHERE r.due_at <= $1),
			count(*) FILTER (WHERE r.due_at > $1 AND r.due_at <= w.c1),
			count(*) FILTER (WHERE r.due_at > $1 AND r.due_at <= w.c3),
			count(*) FILTER (WHERE r.due_at > $1 AND r.due_at <= w.c7)
		FROM unnest($2::text[], $3::timestamptz[], $4::timestamptz[], $5::timestamptz[]) AS w(product, c1, c3, c7)
		JOIN requests r ON r.product = w.product AND r.completed_at IS NULL AND r.due_at <= w.c7
			-- implied by the line above; the key of requests_open_due
			AND coalesce(r.due_at, 'infinity') <= w.c7
		WHERE r.status NOT IN ('completed', 'refused', 'cancelled', 'expired', 'paused')
		GROUP BY w.product ORDER BY w.product`, now, products, c1, c3, c7)
	if err != nil {
		return nil, fmt.Errorf("count due requests: %w", err)
	}
	counts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (DueCount, error) {
		var c DueCount
		err := row.Scan(&c.Product, &c.Overdue, &c.Within1, &c.Within3, &c.Within7)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("count due requests: %w", err)
	}
	return counts, nil
}

// ProductWindow is a span of time [From, To) for one product, e.g. a month
// in its time zone.
type ProductWindow struct {
	Product  string
	From, To time.Time
}

// CountBreaches counts, per product, the requests whose deadline passed
// (breached_at) within the product's window. Products without any are
// left out.
func CountBreaches(ctx context.Context, q Querier, windows []ProductWindow) (map[string]int, error) {
	products := make([]string, len(windows))
	from, to := make([]time.Time, len(windows)), make([]time.Time, len(windows))
	for i, w := range windows {
		products[i], from[i], to[i] = w.Product, w.From, w.To
	}
	rows, err := q.Query(ctx, `SELECT w.product, count(*)
		FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS w(product, from_at, to_at)
		JOIN requests r ON r.product = w.product AND r.breached_at >= w.from_at AND r.breached_at < w.to_at
		GROUP BY w.product`, products, from, to)
	if err != nil {
		return nil, fmt.Errorf("count breaches: %w", err)
	}
	out := map[string]int{}
	var (
		product string
		n       int
	)
	_, err = pgx.ForEachRow(rows, []any{&product, &n}, func() error {
		out[product] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count breaches: %w", err)
	}
	return out, nil
}

// WeekFlow is how many requests were received, and how many completed, in
// one week (Monday to Sunday in the zone asked for).
type WeekFlow struct {
	Start     time.Time // Monday 00:00 in the zone asked for
	Received  int
	Completed int
}

// CountWeekly counts the requests of products (nil: all) received and
// completed (status completed) in [from, to), per ISO week in zone (an
// IANA name). Weeks without any are left out.
func CountWeekly(ctx context.Context, q Querier, products []string, zone string, from, to time.Time) ([]WeekFlow, error) {
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, fmt.Errorf("count weekly: %w", err)
	}
	rows, err := q.Query(ctx, `SELECT to_char(week, 'YYYY-MM-DD'), sum(received)::int, sum(completed)::int FROM (
			SELECT date_trunc('week', received_at AT TIME ZONE $1) AS week, 1 AS received, 0 AS completed
			FROM requests WHERE received_at >= $2 AND received_at < $3 AND ($4::text[] IS NULL OR product = ANY($4))
			UNION ALL
			SELECT date_trunc('week', completed_at AT TIME ZONE $1), 0, 1
			FROM requests WHERE completed_at >= $2 AND completed_at < $3 AND status = 'completed'
			  AND ($4::text[] IS NULL OR product = ANY($4))
		) AS flow GROUP BY week ORDER BY week`, zone, from, to, products)
	if err != nil {
		return nil, fmt.Errorf("count weekly: %w", err)
	}
	var (
		out []WeekFlow
		day string
		w   WeekFlow
	)
	_, err = pgx.ForEachRow(rows, []any{&day, &w.Received, &w.Completed}, func() error {
		d, err := time.ParseInLocation(time.DateOnly, day, loc)
		if err != nil {
			return err
		}
		w.Start = d
		out = append(out, w)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count weekly: %w", err)
	}
	return out, nil
}

// Completion is one completed request as the completion-time figures need
// it: no subject, nothing personal.
type Completion struct {
	Product        string
	Type           rights.Type
	Channel        rights.Channel
	ClockStartedAt time.Time
	CompletedAt    time.Time
}

// Completions calls fn for each request of products (nil: all) completed
// (status completed) in [from, to) whose clock had started, in completion
// order, streaming rather than holding them.
func Completions(ctx context.Context, q Querier, products []string, from, to time.Time, fn func(Completion) error) error {
	rows, err := q.Query(ctx, `SELECT product, type, channel, clock_started_at, completed_at FROM requests
		WHERE completed_at >= $1 AND completed_at < $2 AND status = 'completed' AND clock_started_at IS NOT NULL
		  AND ($3::text[] IS NULL OR product = ANY($3))
		ORDER BY completed_at, id`, from, to, products)
	if err != nil {
		return fmt.Errorf("completions: %w", err)
	}
	var c Completion
	_, err = pgx.ForEachRow(rows, []any{&c.Product, &c.Type, &c.Channel, &c.ClockStartedAt, &c.CompletedAt}, func() error {
		return fn(c)
	})
	if err != nil {
		return fmt.Errorf("completions: %w", err)
	}
	return nil
}
