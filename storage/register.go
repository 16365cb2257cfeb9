package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/rights"
)

// RegisterFilter selects the requests of the register: received in
// [From, To), of Products (nil: every product).
type RegisterFilter struct {
	From, To time.Time
	Products []string
	// Locations are the products' time zones, for each row's LastDay
	// (config.Config.Policies gives them); a product without one is UTC.
	Locations map[string]*time.Location
	// PageSize is how many rows each query reads (keyset pagination);
	// 0 means 500.
	PageSize int
}

// RegisterRow is one request in the register of requests, for a regulator
// or an internal audit: what was asked, when, against which deadline, and
// how it ended. It holds no personal data: no subject, identities,
// addresses, notes, corrections or free-text reasons.
type RegisterRow struct {
	ID             string         `json:"id"`
	Product        string         `json:"product"`
	Right          rights.Type    `json:"right"`
	Channel        rights.Channel `json:"channel"`
	Status         rights.Status  `json:"status"`
	ReceivedAt     time.Time      `json:"received_at"`
	VerifiedAt     *time.Time     `json:"verified_at"`
	ClockStartedAt *time.Time     `json:"clock_started_at"`
	DueAt          *time.Time     `json:"due_at"`
	// LastDay is the last day of the period in the product's zone
	// (YYYY-MM-DD; due_at is 24:00 of it); "" without a deadline.
	LastDay     string     `json:"last_day"`
	CompletedAt *time.Time `json:"completed_at"`
	// Breached says the deadline passed with the request still open.
	Breached bool `json:"breached"`
	// Outcome is how the request ended: completed, refused, cancelled,
	// expired; failed (waiting for staff); pending while it is open.
	Outcome string `json:"outcome"`
	// RefusalReason is a refused request's reason code
	// (rights.RefusalReason); "" otherwise.
	RefusalReason string `json:"refusal_reason"`
	// ExtensionDays is the total of the deadline's extensions, in the
	// product's deadline unit.
	ExtensionDays int `json:"extension_days"`
}

// RegisterColumns are the register's CSV columns, in order; Fields gives
// a row's values in the same order.
var RegisterColumns = []string{"id", "product", "right", "channel", "status", "received_at", "verified_at",
	"clock_started_at", "due_at", "last_day", "completed_at", "breached", "outcome", "refusal_reason", "extension_days"}

// Fields is r as text in RegisterColumns' order: times in RFC 3339 UTC,
// missing ones empty; breached true or false.
func (r RegisterRow) Fields() []string {
	t := func(v *time.Time) string {
		if v == nil {
			return ""
		}
		return v.UTC().Format(time.RFC3339)
	}
	received := r.ReceivedAt
	return []string{r.ID, r.Product, string(r.Right), string(r.Channel), string(r.Status), t(&received),
		t(r.VerifiedAt), t(r.ClockStartedAt), t(r.DueAt), r.LastDay, t(r.CompletedAt),
		fmt.Sprint(r.Breached), r.Outcome, r.RefusalReason, fmt.Sprint(r.ExtensionDays)}
}

// RegisterRows calls fn for each request f selects, oldest received first
// (then by id), reading PageSize rows at a time: memory stays flat however
// long the period. fn's error stops the walk and is returned.
func RegisterRows(ctx context.Context, q Querier, f RegisterFilter, fn func(RegisterRow) error) error {
	size := f.PageSize
	if size <= 0 {
		size = 500
	}
	// The first page starts after a key no row has.
	afterAt, afterID := f.From.Add(-time.Microsecond), "00000000-0000-0000-0000-000000000000"
	for {
		rows, err := q.Query(ctx, `SELECT id, product, type, channel, status, received_at, verified_at,
				clock_started_at, due_at, completed_at, breached_at IS NOT NULL,
				CASE WHEN status IN ('completed', 'refused', 'cancelled', 'expired', 'failed') THEN status ELSE 'pending' END,
				coalesce(refusal->>'reason', ''),
				coalesce((SELECT sum((e->>'days')::int) FROM jsonb_array_elements(
					CASE WHEN jsonb_typeof(clock->'extensions') = 'array' THEN clock->'extensions' ELSE '[]' END) AS e), 0)::int
			FROM requests
			WHERE received_at >= $1 AND received_at < $2 AND ($3::text[] IS NULL OR product = ANY($3))
			  AND (received_at, id) > ($4, $5::uuid)
			ORDER BY received_at, id LIMIT $6`,
			f.From, f.To, f.Products, afterAt, afterID, size)
		if err != nil {
			return fmt.Errorf("register: %w", err)
		}
		page, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (RegisterRow, error) {
			var r RegisterRow
			err := row.Scan(&r.ID, &r.Product, &r.Right, &r.Channel, &r.Status, &r.ReceivedAt, &r.VerifiedAt,
				&r.ClockStartedAt, &r.DueAt, &r.CompletedAt, &r.Breached, &r.Outcome, &r.RefusalReason, &r.ExtensionDays)
			return r, err
		})
		if err != nil {
			return fmt.Errorf("register: %w", err)
		}
		for _, r := range page {
			if r.DueAt != nil {
				loc := f.Locations[r.Product]
				if loc == nil {
					loc = time.UTC
				}
				r.LastDay = r.DueAt.In(loc).Add(-time.Nanosecond).Format(time.DateOnly)
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(page) < size {
			return nil
		}
		last := page[len(page)-1]
		afterAt, afterID = last.ReceivedAt, last.ID
	}
}
