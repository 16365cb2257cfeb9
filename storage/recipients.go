package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/rights"
)

// Notice states.
const (
	NoticePending      = "pending"      // to be sent
	NoticeSent         = "sent"         // sent; the recipient has not acknowledged yet
	NoticeAcknowledged = "acknowledged" // the recipient confirmed it erased the data
	NoticeFailed       = "failed"       // could not be sent; staff must follow up
)

// Notice is a request's notice to one third party to erase the data shared
// with it.
type Notice struct {
	RequestID string `json:"-"`
	Recipient string `json:"recipient"`
	Channel   string `json:"channel"` // email | webhook
	Status    string `json:"status"`
	// AckTokenHash finds the notice an acknowledgement link names; the
	// token itself is rebuilt from AckSecret with the secret key.
	AckTokenHash   []byte     `json:"-"`
	AckSecret      string     `json:"-"`
	MessageID      string     `json:"message_id,omitempty"`
	Attempts       int        `json:"attempts"`
	LastError      string     `json:"last_error,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	SentAt         *time.Time `json:"sent_at"`
	AcknowledgedAt *time.Time `json:"acknowledged_at"`
	AcknowledgedBy string     `json:"acknowledged_by,omitempty"`
	Note           string     `json:"note,omitempty"`
}

const noticeColumns = `request_id, recipient, channel, status, ack_token_hash, coalesce(ack_secret, ''), message_id, attempts, last_error,
	created_at, sent_at, acknowledged_at, acknowledged_by, note`

func scanNotice(row pgx.Row) (*Notice, error) {
	var n Notice
	err := row.Scan(&n.RequestID, &n.Recipient, &n.Channel, &n.Status, &n.AckTokenHash, &n.AckSecret, &n.MessageID, &n.Attempts, &n.LastError,
		&n.CreatedAt, &n.SentAt, &n.AcknowledgedAt, &n.AcknowledgedBy, &n.Note)
	return &n, err
}

// InsertNotice records a notice to send; a second insert for the same
// request and recipient keeps the first.
func InsertNotice(ctx context.Context, tx pgx.Tx, n Notice) error {
	_, err := tx.Exec(ctx, `INSERT INTO recipient_notices (request_id, recipient, channel, status, ack_token_hash, ack_secret, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (request_id, recipient) DO NOTHING`,
		n.RequestID, n.Recipient, n.Channel, n.Status, n.AckTokenHash, nullable(n.AckSecret), n.CreatedAt)
	if err != nil {
		return fmt.Errorf("insert notice to %s for %s: %w", n.Recipient, n.RequestID, err)
	}
	return nil
}

// GetNotice returns a request's notice to recipient, locked for tx when
// lock is set; an ENotFound error when there is none.
func GetNotice(ctx context.Context, q Querier, requestID, recipient string, lock bool) (*Notice, error) {
	query := `SELECT ` + noticeColumns + ` FROM recipient_notices WHERE request_id = $1 AND recipient = $2`
	if lock {
		query += " FOR UPDATE"
	}
	if !ValidID(requestID) {
		return nil, rights.Errorf(rights.ENotFound, "no notice to %s for request %s", recipient, requestID)
	}
	n, err := scanNotice(q.QueryRow(ctx, query, requestID, recipient))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, rights.Errorf(rights.ENotFound, "no notice to %s for request %s", recipient, requestID)
	}
	if err != nil {
		return nil, fmt.Errorf("get notice to %s for %s: %w", recipient, requestID, err)
	}
	return n, nil
}

// NoticeByTokenHash returns the notice whose acknowledgement link's token
// has this hash, locked for tx; an ENotFound error when there is none.
func NoticeByTokenHash(ctx context.Context, tx pgx.Tx, hash []byte) (*Notice, error) {
	n, err := scanNotice(tx.QueryRow(ctx, `SELECT `+noticeColumns+` FROM recipient_notices WHERE ack_token_hash = $1 FOR UPDATE`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, rights.Errorf(rights.ENotFound, "this acknowledgement link is not valid")
	}
	if err != nil {
		return nil, fmt.Errorf("find notice by token: %w", err)
	}
	return n, nil
}

// SaveNotice saves a notice's state.
func SaveNotice(ctx context.Context, tx pgx.Tx, n *Notice) error {
	_, err := tx.Exec(ctx, `UPDATE recipient_notices SET status = $3, message_id = $4, attempts = $5, last_error = $6,
		sent_at = $7, acknowledged_at = $8, acknowledged_by = $9, note = $10 WHERE request_id = $1 AND recipient = $2`,
		n.RequestID, n.Recipient, n.Status, n.MessageID, n.Attempts, n.LastError, n.SentAt, n.AcknowledgedAt, n.AcknowledgedBy, n.Note)
	if err != nil {
		return fmt.Errorf("save notice to %s for %s: %w", n.Recipient, n.RequestID, err)
	}
	return nil
}

// ListNotices returns a request's notices, by recipient.
func ListNotices(ctx context.Context, q Querier, requestID string) ([]*Notice, error) {
	rows, err := q.Query(ctx, `SELECT `+noticeColumns+` FROM recipient_notices WHERE request_id = $1 ORDER BY recipient`, requestID)
	if err != nil {
		return nil, fmt.Errorf("list notices of %s: %w", requestID, err)
	}
	notices, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Notice, error) { return scanNotice(row) })
	if err != nil {
		return nil, fmt.Errorf("list notices of %s: %w", requestID, err)
	}
	return notices, nil
}

// CountUnacknowledged returns, per recipient, the notices sent or failed
// that the recipient has not acknowledged.
func CountUnacknowledged(ctx context.Context, q Querier) (map[string]int, error) {
	rows, err := q.Query(ctx, `SELECT recipient, count(*) FROM recipient_notices WHERE acknowledged_at IS NULL GROUP BY recipient`)
	if err != nil {
		return nil, fmt.Errorf("count unacknowledged notices: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var name string
		var n int
		if err := rows.Scan(&name, &n); err != nil {
			return nil, err
		}
		out[name] = n
	}
	return out, rows.Err()
}

// LegacyAckTokens returns up to limit notices (request id, recipient, plain
// token) whose acknowledgement token predates sealing.
func LegacyAckTokens(ctx context.Context, q Querier, limit int) ([][3]string, error) {
	rows, err := q.Query(ctx, `SELECT request_id, recipient, ack_token FROM recipient_notices WHERE ack_token IS NOT NULL LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("legacy ack tokens: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) ([3]string, error) {
		var l [3]string
		err := row.Scan(&l[0], &l[1], &l[2])
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("legacy ack tokens: %w", err)
	}
	return out, nil
}

// SealAckToken replaces a notice's plain acknowledgement token by the
// recipe that rebuilds it.
func SealAckToken(ctx context.Context, tx pgx.Tx, requestID, recipient, secret string) error {
	_, err := tx.Exec(ctx, `UPDATE recipient_notices SET ack_token = NULL, ack_secret = $3
		WHERE request_id = $1 AND recipient = $2`, requestID, recipient, secret)
	if err != nil {
		return fmt.Errorf("seal ack token to %s for %s: %w", recipient, requestID, err)
	}
	return nil
}

// ReopenNotice puts a failed notice back to pending, for its job to send
// again.
func ReopenNotice(ctx context.Context, tx pgx.Tx, requestID, recipient string) error {
	_, err := tx.Exec(ctx, `UPDATE recipient_notices SET status = $3, last_error = ''
		WHERE request_id = $1 AND recipient = $2 AND status = $4`, requestID, recipient, NoticePending, NoticeFailed)
	if err != nil {
		return fmt.Errorf("reopen notice to %s for %s: %w", recipient, requestID, err)
	}
	return nil
}
