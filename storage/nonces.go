package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNonceUsed says a signed message's nonce was accepted before: the
// message is a replay.
var ErrNonceUsed = errors.New("the nonce was used before")

// UseNonce records nonce as spent until expiresAt, in tx, and fails with
// ErrNonceUsed when it was spent before. Callers use it in the transaction
// that carries out the signed message, so the nonce is spent exactly when
// the message takes effect: a concurrent copy of the message waits on the
// primary key until that transaction ends, then fails.
func UseNonce(ctx context.Context, tx pgx.Tx, nonce string, expiresAt time.Time) error {
	tag, err := tx.Exec(ctx, `INSERT INTO webhook_nonces (nonce, expires_at) VALUES ($1, $2)
		ON CONFLICT (nonce) DO NOTHING`, nonce, expiresAt)
	if err != nil {
		return fmt.Errorf("use nonce: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNonceUsed
	}
	return nil
}

// PruneNonces deletes up to limit nonces that expired before before and
// returns how many it deleted.
func PruneNonces(ctx context.Context, q Querier, before time.Time, limit int) (int64, error) {
	tag, err := q.Exec(ctx, `DELETE FROM webhook_nonces WHERE nonce IN (
		SELECT nonce FROM webhook_nonces WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)`, before, limit)
	if err != nil {
		return 0, fmt.Errorf("prune webhook nonces: %w", err)
	}
	return tag.RowsAffected(), nil
}
