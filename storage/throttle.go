package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Throttle scopes: what a throttle event counts.
const (
	ThrottleCodeEmail = "code_email" // a verification code emailed about a mailbox or subject
	ThrottleWrongCode = "wrong_code" // a wrong code entered for a mailbox, across its requests
	ThrottleIPRequest = "ip_request" // a self-service request from a network
	ThrottleIPVerify  = "ip_verify"  // a verification attempt from a network
	// ThrottlePartnerRequest is a request filed by an OpenDSR partner.
	ThrottlePartnerRequest = "partner_request"
)

// Window is one limit: at most Limit events in any Per.
type Window struct {
	Limit int
	Per   time.Duration
}

// lockThrottle serialises every check of one (scope, key) until tx ends, so
// that concurrent callers on any replica cannot both pass a limit that has
// room for one.
func lockThrottle(ctx context.Context, tx pgx.Tx, scope string, key []byte) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || encode($2, 'hex'), 0))`, scope, key)
	if err != nil {
		return fmt.Errorf("throttle %s: %w", scope, err)
	}
	return nil
}

// CheckThrottle locks (scope, key) for the rest of tx and returns how long
// until every window has room for one more event: 0 when it has room now.
func CheckThrottle(ctx context.Context, tx pgx.Tx, scope string, key []byte, now time.Time, windows ...Window) (time.Duration, error) {
	if err := lockThrottle(ctx, tx, scope, key); err != nil {
		return 0, err
	}
	var wait time.Duration
	for _, w := range windows {
		// The window is full when it holds Limit events; room comes back
		// when the oldest of the newest Limit leaves it.
		var (
			n      int
			oldest *time.Time
		)
		err := tx.QueryRow(ctx, `SELECT count(*), min(at) FROM (
				SELECT at FROM throttle_events WHERE scope = $1 AND key = $2 AND at > $3 ORDER BY at DESC LIMIT $4) newest`,
			scope, key, now.Add(-w.Per), w.Limit).Scan(&n, &oldest)
		if err != nil {
			return 0, fmt.Errorf("throttle %s: %w", scope, err)
		}
		if n >= w.Limit && oldest != nil {
			wait = max(wait, oldest.Add(w.Per).Sub(now))
		}
	}
	if wait < 0 {
		wait = 0
	}
	return wait, nil
}

// RecordThrottle counts one event of (scope, key) at now.
func RecordThrottle(ctx context.Context, tx pgx.Tx, scope string, key []byte, now time.Time) error {
	if _, err := tx.Exec(ctx, `INSERT INTO throttle_events (scope, key, at) VALUES ($1, $2, $3)`, scope, key, now); err != nil {
		return fmt.Errorf("throttle %s: %w", scope, err)
	}
	return nil
}

// TakeThrottle records one event of (scope, key) when every window has room
// and returns 0; otherwise it records nothing and returns the wait.
func TakeThrottle(ctx context.Context, tx pgx.Tx, scope string, key []byte, now time.Time, windows ...Window) (time.Duration, error) {
	wait, err := CheckThrottle(ctx, tx, scope, key, now, windows...)
	if err != nil || wait > 0 {
		return wait, err
	}
	return 0, RecordThrottle(ctx, tx, scope, key, now)
}

// CountThrottle returns the events of (scope, key) since since.
func CountThrottle(ctx context.Context, q Querier, scope string, key []byte, since time.Time) (int, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT count(*) FROM throttle_events WHERE scope = $1 AND key = $2 AND at > $3`, scope, key, since).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("throttle %s: %w", scope, err)
	}
	return n, nil
}

// PruneThrottle deletes up to limit events older than before (no window
// looks that far back) and returns how many it deleted.
func PruneThrottle(ctx context.Context, q Querier, before time.Time, limit int) (int64, error) {
	tag, err := q.Exec(ctx, `DELETE FROM throttle_events WHERE id IN (
		SELECT id FROM throttle_events WHERE at < $1 ORDER BY at LIMIT $2)`, before, limit)
	if err != nil {
		return 0, fmt.Errorf("prune throttle events: %w", err)
	}
	return tag.RowsAffected(), nil
}

// PurgeUnverified erases the personal data of a request that expired before
// its requester was verified: who it named, where to write, what it asked to
// change, and its code. What remains says only that a request of this kind
// came and expired.
func PurgeUnverified(ctx context.Context, tx pgx.Tx, requestID string) error {
	if _, err := tx.Exec(ctx, `UPDATE requests SET subject = '{"identities": {}}', delivery_email = '',
			corrections = NULL, details = NULL, note = '', access_token_hash = NULL WHERE id = $1`, requestID); err != nil {
		return fmt.Errorf("purge request %s: %w", requestID, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM verification_codes WHERE request_id = $1`, requestID); err != nil {
		return fmt.Errorf("purge code of %s: %w", requestID, err)
	}
	return nil
}

// GetCode returns a request's code without locking it, or nil.
func GetCode(ctx context.Context, q Querier, requestID string) (*Code, error) {
	var c Code
	err := q.QueryRow(ctx, `SELECT request_id, code_hash, expires_at, attempts, sent_at, consumed_at
		FROM verification_codes WHERE request_id = $1`, requestID).
		Scan(&c.RequestID, &c.Hash, &c.ExpiresAt, &c.Attempts, &c.SentAt, &c.ConsumedAt)
	if err == pgx.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get code %s: %w", requestID, err)
	}
	return &c, nil
}
