package storage

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/rights"
)

// AppendConsent adds an event to the consent ledger of the subject, named
// by identity (the ledger's identity type) and its value.
func AppendConsent(ctx context.Context, tx pgx.Tx, identity, subject string, ev rights.ConsentEvent) error {
	var requestID *string
	if ev.RequestID != "" {
		requestID = &ev.RequestID
	}
	_, err := tx.Exec(ctx, `INSERT INTO consent_events (product, identity, subject, purpose, granted, at, source, request_id, actor, note)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		ev.Product, identity, subject, ev.Purpose, ev.Granted, ev.At, ev.Source, requestID, ev.Actor, ev.Note)
	if err != nil {
		return fmt.Errorf("append consent %s: %w", ev.Purpose, err)
	}
	return nil
}

// ConsentHistory returns the subject's consent ledger for product, oldest
// first (by time, then by order of recording).
func ConsentHistory(ctx context.Context, q Querier, product, identity, subject string) ([]rights.ConsentEvent, error) {
	rows, err := q.Query(ctx, `SELECT id, product, purpose, granted, at, source, coalesce(request_id::text, ''), actor, note
		FROM consent_events WHERE product = $1 AND identity = $2 AND subject = $3 ORDER BY at, id`, product, identity, subject)
	if err != nil {
		return nil, fmt.Errorf("consent history: %w", err)
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (rights.ConsentEvent, error) {
		var ev rights.ConsentEvent
		err := row.Scan(&ev.ID, &ev.Product, &ev.Purpose, &ev.Granted, &ev.At, &ev.Source, &ev.RequestID, &ev.Actor, &ev.Note)
		return ev, err
	})
	if err != nil {
		return nil, fmt.Errorf("consent history: %w", err)
	}
	return events, nil
}
