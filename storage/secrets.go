package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/rights"
)

// PutStaffToken stores (or replaces) the hashed token of a staff member,
// with their role and products.
func PutStaffToken(ctx context.Context, q Querier, staff rights.Staff, sha256Hex string, at time.Time, by string) error {
	products := staff.Products
	if products == nil {
		products = []string{}
	}
	_, err := q.Exec(ctx, `INSERT INTO staff_tokens (name, token_sha256, created_at, role, products, created_by)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (name) DO UPDATE SET token_sha256 = excluded.token_sha256, revoked_at = NULL,
			role = excluded.role, products = excluded.products, created_by = excluded.created_by`,
		staff.Name, sha256Hex, at, staff.Role, products, by)
	if err != nil {
		return fmt.Errorf("put staff token %s: %w", staff.Name, err)
	}
	return nil
}

// CreateStaffToken issues a token to a new staff member (or one whose
// token was revoked); an EConflict error when the name has an active token.
func CreateStaffToken(ctx context.Context, q Querier, staff rights.Staff, sha256Hex string, at time.Time, by string) error {
	products := staff.Products
	if products == nil {
		products = []string{}
	}
	tag, err := q.Exec(ctx, `INSERT INTO staff_tokens (name, token_sha256, created_at, role, products, created_by)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (name) DO UPDATE SET token_sha256 = excluded.token_sha256, created_at = excluded.created_at,
			revoked_at = NULL, role = excluded.role, products = excluded.products, created_by = excluded.created_by
		WHERE staff_tokens.revoked_at IS NOT NULL`,
		staff.Name, sha256Hex, at, staff.Role, products, by)
	if err != nil {
		return fmt.Errorf("create staff token %s: %w", staff.Name, err)
	}
	if tag.RowsAffected() == 0 {
		return rights.Errorf(rights.EConflict, "%s already has an active token; revoke it first", staff.Name)
	}
	return nil
}

// StaffToken is what is known of a staff token: never the token, nor its
// hash.
type StaffToken struct {
	rights.Staff
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at"`
	CreatedBy string     `json:"created_by"`
}

// ListStaffTokens returns every staff token, by name.
func ListStaffTokens(ctx context.Context, q Querier) ([]StaffToken, error) {
	rows, err := q.Query(ctx, `SELECT name, role, products, created_at, revoked_at, created_by FROM staff_tokens ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list staff tokens: %w", err)
	}
	tokens, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (StaffToken, error) {
		var t StaffToken
		err := row.Scan(&t.Name, &t.Role, &t.Products, &t.CreatedAt, &t.RevokedAt, &t.CreatedBy)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("list staff tokens: %w", err)
	}
	return tokens, nil
}

// RevokeStaffToken stops a staff token from working.
func RevokeStaffToken(ctx context.Context, q Querier, name string, at time.Time) error {
	tag, err := q.Exec(ctx, `UPDATE staff_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL`, name, at)
	if err != nil {
		return fmt.Errorf("revoke staff token %s: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return rights.Errorf(rights.ENotFound, "no active staff token named %s", name)
	}
	return nil
}

// StaffForToken returns the staff member whose token hashes to sha256Hex,
// or nil if no active token does.
func StaffForToken(ctx context.Context, q Querier, sha256Hex string) (*rights.Staff, error) {
	var s rights.Staff
	err := q.QueryRow(ctx, `SELECT name, role, products FROM staff_tokens WHERE token_sha256 = $1 AND revoked_at IS NULL`,
		sha256Hex).Scan(&s.Name, &s.Role, &s.Products)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up staff token: %w", err)
	}
	return &s, nil
}

// Code is a request's one-time verification code, stored hashed.
type Code struct {
	RequestID  string
	Hash       string
	ExpiresAt  time.Time
	Attempts   int
	SentAt     *time.Time
	ConsumedAt *time.Time
}

// PutCode stores a new code for a request, replacing an earlier one and
// resetting the attempt count.
func PutCode(ctx context.Context, tx pgx.Tx, c Code) error {
	_, err := tx.Exec(ctx, `INSERT INTO verification_codes (request_id, code_hash, expires_at, attempts, sent_at)
		VALUES ($1, $2, $3, 0, $4)
		ON CONFLICT (request_id) DO UPDATE SET code_hash = excluded.code_hash, expires_at = excluded.expires_at,
			attempts = 0, sent_at = excluded.sent_at, consumed_at = NULL`,
		c.RequestID, c.Hash, c.ExpiresAt, c.SentAt)
	if err != nil {
		return fmt.Errorf("put code %s: %w", c.RequestID, err)
	}
	return nil
}

// LockCode returns a request's code locked for the rest of tx, or nil.
func LockCode(ctx context.Context, tx pgx.Tx, requestID string) (*Code, error) {
	var c Code
	err := tx.QueryRow(ctx, `SELECT request_id, code_hash, expires_at, attempts, sent_at, consumed_at
		FROM verification_codes WHERE request_id = $1 FOR UPDATE`, requestID).
		Scan(&c.RequestID, &c.Hash, &c.ExpiresAt, &c.Attempts, &c.SentAt, &c.ConsumedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lock code %s: %w", requestID, err)
	}
	return &c, nil
}

// SaveCodeAttempt records a verification attempt (and consumption on success).
func SaveCodeAttempt(ctx context.Context, tx pgx.Tx, c *Code) error {
	_, err := tx.Exec(ctx, `UPDATE verification_codes SET attempts = $2, consumed_at = $3 WHERE request_id = $1`,
		c.RequestID, c.Attempts, c.ConsumedAt)
	if err != nil {
		return fmt.Errorf("save code attempt %s: %w", c.RequestID, err)
	}
	return nil
}

// Delivery records that a message was sent.
type Delivery struct {
	RequestID string
	Kind      string
	MessageID string
	SentAt    time.Time
}

// GetDelivery returns the recorded delivery of kind for a request, or nil.
func GetDelivery(ctx context.Context, q Querier, requestID, kind string) (*Delivery, error) {
	var d Delivery
	err := q.QueryRow(ctx, `SELECT request_id, kind, message_id, sent_at FROM deliveries WHERE request_id = $1 AND kind = $2`,
		requestID, kind).Scan(&d.RequestID, &d.Kind, &d.MessageID, &d.SentAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get delivery %s/%s: %w", requestID, kind, err)
	}
	return &d, nil
}

// PutDelivery records a sent message; recording the same one twice is a no-op.
func PutDelivery(ctx context.Context, tx pgx.Tx, d Delivery) error {
	_, err := tx.Exec(ctx, `INSERT INTO deliveries (request_id, kind, message_id, sent_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (request_id, kind) DO NOTHING`, d.RequestID, d.Kind, d.MessageID, d.SentAt)
	if err != nil {
		return fmt.Errorf("put delivery %s/%s: %w", d.RequestID, d.Kind, err)
	}
	return nil
}

// RevokeUnlisted revokes the tokens issued from a source ("config" or
// "env") whose names it no longer lists: a person taken out of the
// configuration loses access at the next start.
func RevokeUnlisted(ctx context.Context, q Querier, source string, names []string, at time.Time) error {
	if names == nil {
		names = []string{}
	}
	_, err := q.Exec(ctx, `UPDATE staff_tokens SET revoked_at = $3
		WHERE created_by = $1 AND NOT (name = ANY($2)) AND revoked_at IS NULL`, source, names, at)
	if err != nil {
		return fmt.Errorf("revoke unlisted %s tokens: %w", source, err)
	}
	return nil
}
