package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Contact is an address a request must prove with a code before it goes
// on (see migration 0014).
type Contact struct {
	RequestID   string     `json:"-"`
	Field       string     `json:"field"`
	Kind        string     `json:"kind"` // email | phone
	CodeMAC     string     `json:"-"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	Attempts    int        `json:"attempts"`
	SentAt      *time.Time `json:"sent_at,omitempty"`
	ConfirmedAt *time.Time `json:"confirmed_at,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
}

const contactColumns = `request_id, field, kind, coalesce(code_mac, ''), expires_at, attempts, sent_at, confirmed_at, created_at`

func scanContact(row pgx.CollectableRow) (*Contact, error) {
	var c Contact
	err := row.Scan(&c.RequestID, &c.Field, &c.Kind, &c.CodeMAC, &c.ExpiresAt, &c.Attempts, &c.SentAt, &c.ConfirmedAt, &c.CreatedAt)
	return &c, err
}

// AddContact records that a request must prove an address; a second call
// for the same field keeps the first.
func AddContact(ctx context.Context, tx pgx.Tx, c Contact) error {
	_, err := tx.Exec(ctx, `INSERT INTO contact_confirmations (request_id, field, kind, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (request_id, field) DO NOTHING`, c.RequestID, c.Field, c.Kind, c.CreatedAt)
	if err != nil {
		return fmt.Errorf("add contact %s of %s: %w", c.Field, c.RequestID, err)
	}
	return nil
}

// ListContacts returns a request's addresses to prove, by field; with
// lock, locked for the rest of q's transaction.
func ListContacts(ctx context.Context, q Querier, requestID string, lock bool) ([]*Contact, error) {
	query := `SELECT ` + contactColumns + ` FROM contact_confirmations WHERE request_id = $1 ORDER BY field`
	if lock {
		query += ` FOR UPDATE`
	}
	rows, err := q.Query(ctx, query, requestID)
	if err != nil {
		return nil, fmt.Errorf("contacts of %s: %w", requestID, err)
	}
	contacts, err := pgx.CollectRows(rows, scanContact)
	if err != nil {
		return nil, fmt.Errorf("contacts of %s: %w", requestID, err)
	}
	return contacts, nil
}

// SaveContact saves a contact's code and progress.
func SaveContact(ctx context.Context, tx pgx.Tx, c *Contact) error {
	_, err := tx.Exec(ctx, `UPDATE contact_confirmations SET code_mac = $3, expires_at = $4, attempts = $5, sent_at = $6,
		confirmed_at = $7 WHERE request_id = $1 AND field = $2`,
		c.RequestID, c.Field, nullable(c.CodeMAC), c.ExpiresAt, c.Attempts, c.SentAt, c.ConfirmedAt)
	if err != nil {
		return fmt.Errorf("save contact %s of %s: %w", c.Field, c.RequestID, err)
	}
	return nil
}
