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

// What the staff console works with besides requests: assignment, internal
// notes, and the record of staff probes that belong to no request.

// SetAssignee records who works on a request ("" for nobody). The caller
// holds the request's lock and audits the change in the same transaction.
func SetAssignee(ctx context.Context, tx pgx.Tx, requestID, assignee string, at time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE requests SET assignee = nullif($2, ''), updated_at = $3 WHERE id = $1`, requestID, assignee, at)
	if err != nil {
		return fmt.Errorf("assign request %s: %w", requestID, err)
	}
	return nil
}

// AssignableStaff returns, sorted, the names of the staff a request of one
// of products can be assigned to: an active token whose role reads
// requests and whose products include it (or are all products).
func AssignableStaff(ctx context.Context, q Querier, products ...string) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT name, role, products FROM staff_tokens WHERE revoked_at IS NULL ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list assignable staff: %w", err)
	}
	staff, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (rights.Staff, error) {
		var s rights.Staff
		err := row.Scan(&s.Name, &s.Role, &s.Products)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("list assignable staff: %w", err)
	}
	names := []string{}
	for _, s := range staff {
		// The same rule as the API's (rights.Staff), not a copy in SQL.
		if s.Can(rights.PermRead) && slices.ContainsFunc(products, s.InScope) {
			names = append(names, s.Name)
		}
	}
	return names, nil
}

// ActiveStaff returns the staff member with an active token named name, or
// nil when there is none.
func ActiveStaff(ctx context.Context, q Querier, name string) (*rights.Staff, error) {
	var s rights.Staff
	err := q.QueryRow(ctx, `SELECT name, role, products FROM staff_tokens WHERE name = $1 AND revoked_at IS NULL`,
		name).Scan(&s.Name, &s.Role, &s.Products)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up staff %s: %w", name, err)
	}
	return &s, nil
}

// Note is a staff member's internal note on a request: shown to staff,
// never emailed to anyone.
type Note struct {
	ID        int64     `json:"id"`
	RequestID string    `json:"request_id"`
	Author    string    `json:"author"` // the staff member's name
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
}

// AddNote stores a note and sets its ID. The caller audits it in tx.
func AddNote(ctx context.Context, tx pgx.Tx, n *Note) error {
	err := tx.QueryRow(ctx, `INSERT INTO request_notes (request_id, author, body, created_at) VALUES ($1, $2, $3, $4) RETURNING id`,
		n.RequestID, n.Author, n.Body, n.CreatedAt).Scan(&n.ID)
	if err != nil {
		return fmt.Errorf("add note to %s: %w", n.RequestID, err)
	}
	return nil
}

// ListNotes returns a request's notes, oldest first.
func ListNotes(ctx context.Context, q Querier, requestID string) ([]*Note, error) {
	rows, err := q.Query(ctx, `SELECT id, request_id, author, body, created_at FROM request_notes WHERE request_id = $1 ORDER BY id`, requestID)
	if err != nil {
		return nil, fmt.Errorf("list notes of %s: %w", requestID, err)
	}
	notes, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Note, error) {
		var n Note
		err := row.Scan(&n.ID, &n.RequestID, &n.Author, &n.Body, &n.CreatedAt)
		return &n, err
	})
	if err != nil {
		return nil, fmt.Errorf("list notes of %s: %w", requestID, err)
	}
	return notes, nil
}

// StaffEvent is a staff action on personal data that belongs to no request
// (an identity lookup before a ticket is filed). Detail holds types and
// names, never values. The table is append-only.
type StaffEvent struct {
	ID      int64          `json:"id"`
	At      time.Time      `json:"at"`
	Actor   string         `json:"actor"` // staff:<name>
	Action  string         `json:"action"`
	Product string         `json:"product"`
	Detail  map[string]any `json:"detail,omitempty"`
}

// AppendStaffEvent records a staff event.
func AppendStaffEvent(ctx context.Context, q Querier, ev StaffEvent) error {
	detail := ev.Detail
	if detail == nil {
		detail = map[string]any{}
	}
	_, err := q.Exec(ctx, `INSERT INTO staff_events (at, actor, action, product, detail) VALUES ($1, $2, $3, $4, $5)`,
		ev.At, ev.Actor, ev.Action, ev.Product, detail)
	if err != nil {
		return fmt.Errorf("append staff event %s: %w", ev.Action, err)
	}
	return nil
}

// ListStaffEvents returns up to limit staff events with ids after after,
// oldest first, of products (nil: every product).
func ListStaffEvents(ctx context.Context, q Querier, after int64, limit int, products []string) ([]StaffEvent, error) {
	rows, err := q.Query(ctx, `SELECT id, at, actor, action, product, detail FROM staff_events
		WHERE id > $1 AND ($3::text[] IS NULL OR product = ANY($3)) ORDER BY id LIMIT $2`, after, limit, products)
	if err != nil {
		return nil, fmt.Errorf("list staff events: %w", err)
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (StaffEvent, error) {
		var ev StaffEvent
		err := row.Scan(&ev.ID, &ev.At, &ev.Actor, &ev.Action, &ev.Product, &ev.Detail)
		return ev, err
	})
	if err != nil {
		return nil, fmt.Errorf("list staff events: %w", err)
	}
	return events, nil
}
