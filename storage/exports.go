package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/rights"
)

// Export is the archive built for a request, and how it reaches the
// requester.
type Export struct {
	RequestID string
	Location  string // the destination's location of the archive
	FileName  string // what the requester's file is called
	Bytes     int64
	SHA256    string
	CreatedAt time.Time
	// Encryption is "aes" (a zip whose entries are AES-256 encrypted with
	// Password), "age" (the whole file encrypted to the requester's key),
	// or "none".
	Encryption string
	// PasswordSealed is the password that opens an aes archive, sealed
	// with the secret key. It is kept until it has been shown once
	// (PasswordShownAt, PasswordShownVia: "status_page" or "staff"), then
	// erased.
	PasswordSealed   string
	PasswordShownAt  *time.Time
	PasswordShownVia string
	// Delivery is "attachment" or "link". A link is either the service's
	// download page for a token, of which only LinkTokenHash and the
	// recipe LinkSecret to rebuild it are kept, or a presigned URL, kept
	// sealed in LinkURLSealed; it works until ExpiresAt.
	Delivery      string
	LinkTokenHash []byte
	LinkSecret    string
	LinkURLSealed string
	ExpiresAt     *time.Time
	// PurgedAt is when the archive was deleted, and PurgeReason why
	// ("delivered", "link_expired", "request_closed").
	PurgedAt    *time.Time
	PurgeReason string
}

const exportColumns = `request_id, location, file_name, bytes, sha256, created_at, encryption, coalesce(password_sealed, ''),
	password_shown_at, password_shown_via, delivery, link_token_hash, coalesce(link_secret, ''), coalesce(link_url_sealed, ''),
	expires_at, purged_at, purge_reason`

func scanExport(row pgx.Row) (*Export, error) {
	var e Export
	err := row.Scan(&e.RequestID, &e.Location, &e.FileName, &e.Bytes, &e.SHA256, &e.CreatedAt, &e.Encryption, &e.PasswordSealed,
		&e.PasswordShownAt, &e.PasswordShownVia, &e.Delivery, &e.LinkTokenHash, &e.LinkSecret, &e.LinkURLSealed, &e.ExpiresAt, &e.PurgedAt, &e.PurgeReason)
	return &e, err
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// PutExport records a request's archive; a rebuilt archive replaces the
// record.
func PutExport(ctx context.Context, tx pgx.Tx, e Export) error {
	_, err := tx.Exec(ctx, `INSERT INTO exports (request_id, location, file_name, bytes, sha256, created_at, encryption,
			password_sealed, delivery, link_token_hash, link_secret, link_url_sealed, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (request_id) DO UPDATE SET location = excluded.location, file_name = excluded.file_name,
			bytes = excluded.bytes, sha256 = excluded.sha256, created_at = excluded.created_at,
			encryption = excluded.encryption, password = NULL, password_sealed = excluded.password_sealed,
			password_shown_at = NULL, password_shown_via = '', delivery = excluded.delivery, link_token = NULL,
			link_token_hash = excluded.link_token_hash, link_secret = excluded.link_secret, link_url = '',
			link_url_sealed = excluded.link_url_sealed, expires_at = excluded.expires_at, purged_at = NULL, purge_reason = ''`,
		e.RequestID, e.Location, e.FileName, e.Bytes, e.SHA256, e.CreatedAt, e.Encryption, nullable(e.PasswordSealed),
		e.Delivery, e.LinkTokenHash, nullable(e.LinkSecret), nullable(e.LinkURLSealed), e.ExpiresAt)
	if err != nil {
		return fmt.Errorf("put export %s: %w", e.RequestID, err)
	}
	return nil
}

// GetExport returns a request's archive, or nil; with lock, locked for the
// rest of q's transaction.
func GetExport(ctx context.Context, q Querier, requestID string) (*Export, error) {
	return getExport(ctx, q, `SELECT `+exportColumns+` FROM exports WHERE request_id = $1`, requestID)
}

// LockExport is GetExport, locked for the rest of tx.
func LockExport(ctx context.Context, tx pgx.Tx, requestID string) (*Export, error) {
	return getExport(ctx, tx, `SELECT `+exportColumns+` FROM exports WHERE request_id = $1 FOR UPDATE`, requestID)
}

// ExportByTokenHash returns the export whose download link's token has
// this hash, or nil.
func ExportByTokenHash(ctx context.Context, q Querier, hash []byte) (*Export, error) {
	e, err := scanExport(q.QueryRow(ctx, `SELECT `+exportColumns+` FROM exports WHERE link_token_hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get export by link: %w", err)
	}
	return e, nil
}

func getExport(ctx context.Context, q Querier, query, arg string) (*Export, error) {
	e, err := scanExport(q.QueryRow(ctx, query, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get export: %w", err)
	}
	return e, nil
}

// PasswordShown erases an export's password, recording when and how it was
// shown.
func PasswordShown(ctx context.Context, tx pgx.Tx, requestID, via string, at time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE exports SET password = NULL, password_sealed = NULL, password_shown_at = $2, password_shown_via = $3
		WHERE request_id = $1`, requestID, at, via)
	if err != nil {
		return fmt.Errorf("password of export %s: %w", requestID, err)
	}
	return nil
}

// PurgeExport records that an export's archive is to be deleted (the file
// goes right after, see FileDeleted). A linked archive's password is erased
// with it: without the file it opens nothing. An attached one's stays until
// it is shown or expires: the file lives on in the requester's mailbox.
func PurgeExport(ctx context.Context, tx pgx.Tx, requestID, reason string, at time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE exports SET purged_at = $2, purge_reason = $3,
			password = CASE WHEN delivery = 'link' THEN NULL ELSE password END,
			password_sealed = CASE WHEN delivery = 'link' THEN NULL ELSE password_sealed END,
			link_url_sealed = NULL
		WHERE request_id = $1 AND purged_at IS NULL`, requestID, at, reason)
	if err != nil {
		return fmt.Errorf("purge export %s: %w", requestID, err)
	}
	return nil
}

// FileDeleted records that a purged export's archive is gone.
func FileDeleted(ctx context.Context, q Querier, requestID string) error {
	if _, err := q.Exec(ctx, `UPDATE exports SET file_deleted = true WHERE request_id = $1`, requestID); err != nil {
		return fmt.Errorf("export %s: %w", requestID, err)
	}
	return nil
}

// Undeleted returns purged exports whose archive may still exist.
func Undeleted(ctx context.Context, q Querier, limit int) ([]*Export, error) {
	rows, err := q.Query(ctx, `SELECT `+exportColumns+` FROM exports WHERE purged_at IS NOT NULL AND NOT file_deleted
		ORDER BY purged_at LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("undeleted exports: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Export, error) { return scanExport(row) })
	if err != nil {
		return nil, fmt.Errorf("undeleted exports: %w", err)
	}
	return out, nil
}

// ExpirePasswords erases, and returns the requests of, the passwords of
// attached archives created before cutoff that were never shown: a
// password is not kept for ever for someone who never asked for it.
func ExpirePasswords(ctx context.Context, tx pgx.Tx, cutoff time.Time) ([]string, error) {
	rows, err := tx.Query(ctx, `UPDATE exports SET password = NULL, password_sealed = NULL
		WHERE (password IS NOT NULL OR password_sealed IS NOT NULL) AND password_shown_at IS NULL AND created_at < $1
		RETURNING request_id`, cutoff)
	if err != nil {
		return nil, fmt.Errorf("expire passwords: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("expire passwords: %w", err)
	}
	return ids, nil
}

// Purgeable returns up to limit unpurged exports whose link expired by now,
// or whose request was refused or cancelled (without a link still running);
// each with why. An attached archive is purged by the transaction that
// records its email, not here.
func Purgeable(ctx context.Context, q Querier, now time.Time, limit int) ([]*Export, []string, error) {
	rows, err := q.Query(ctx, `SELECT `+exportColumns+`, CASE
			WHEN e.delivery = 'link' AND e.expires_at <= $1 THEN 'link_expired'
			ELSE 'request_closed' END
		FROM exports e JOIN requests r ON r.id = e.request_id
		WHERE e.purged_at IS NULL AND (
			(e.delivery = 'link' AND e.expires_at <= $1)
			OR (r.status IN ('refused', 'cancelled') AND (e.delivery <> 'link' OR e.expires_at <= $1)))
		ORDER BY e.created_at LIMIT $2`, now, limit)
	if err != nil {
		return nil, nil, fmt.Errorf("purgeable exports: %w", err)
	}
	defer rows.Close()
	var (
		exports []*Export
		reasons []string
	)
	for rows.Next() {
		var e Export
		var reason string
		if err := rows.Scan(&e.RequestID, &e.Location, &e.FileName, &e.Bytes, &e.SHA256, &e.CreatedAt, &e.Encryption, &e.PasswordSealed,
			&e.PasswordShownAt, &e.PasswordShownVia, &e.Delivery, &e.LinkTokenHash, &e.LinkSecret, &e.LinkURLSealed, &e.ExpiresAt, &e.PurgedAt, &e.PurgeReason,
			&reason); err != nil {
			return nil, nil, fmt.Errorf("purgeable exports: %w", err)
		}
		exports, reasons = append(exports, &e), append(reasons, reason)
	}
	return exports, reasons, rows.Err()
}

// Download is one download of an export through the service's link.
type Download struct {
	At       time.Time `json:"at"`
	Bytes    int64     `json:"bytes"`
	Complete bool      `json:"complete"`
}

// RecordDownload records a download and audits it, in one transaction.
func RecordDownload(ctx context.Context, tx pgx.Tx, requestID string, d Download) error {
	if _, err := tx.Exec(ctx, `INSERT INTO downloads (request_id, at, bytes, complete) VALUES ($1, $2, $3, $4)`,
		requestID, d.At, d.Bytes, d.Complete); err != nil {
		return fmt.Errorf("record download of %s: %w", requestID, err)
	}
	return AppendAudit(ctx, tx, rights.AuditEvent{RequestID: requestID, At: d.At, Actor: rights.ActorRequester, Action: "export.downloaded",
		Detail: map[string]any{"bytes": d.Bytes, "complete": d.Complete}})
}

// ListDownloads returns an export's downloads, oldest first.
func ListDownloads(ctx context.Context, q Querier, requestID string) ([]Download, error) {
	rows, err := q.Query(ctx, `SELECT at, bytes, complete FROM downloads WHERE request_id = $1 ORDER BY at, id`, requestID)
	if err != nil {
		return nil, fmt.Errorf("list downloads of %s: %w", requestID, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Download, error) {
		var d Download
		err := row.Scan(&d.At, &d.Bytes, &d.Complete)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("list downloads of %s: %w", requestID, err)
	}
	return out, nil
}

// SetAccessToken records the hash of a self-service requester's status
// page key.
func SetAccessToken(ctx context.Context, tx pgx.Tx, requestID, hash string) error {
	if _, err := tx.Exec(ctx, `UPDATE requests SET access_token_hash = $2 WHERE id = $1`, requestID, hash); err != nil {
		return fmt.Errorf("access token of %s: %w", requestID, err)
	}
	return nil
}

// AccessTokenHash returns the hash of a request's status page key, "" when
// it has none.
func AccessTokenHash(ctx context.Context, q Querier, requestID string) (string, error) {
	if !ValidID(requestID) {
		return "", nil
	}
	var hash *string
	err := q.QueryRow(ctx, `SELECT access_token_hash FROM requests WHERE id = $1`, requestID).Scan(&hash)
	if errors.Is(err, pgx.ErrNoRows) || hash == nil {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("access token of %s: %w", requestID, err)
	}
	return *hash, nil
}

// LegacyExportSecret is an export row written before secrets were sealed:
// its plain password, link token or presigned URL, if any.
type LegacyExportSecret struct {
	RequestID, Password, LinkToken, LinkURL string
}

// LegacyExportSecrets returns up to limit exports that still hold a plain
// secret.
func LegacyExportSecrets(ctx context.Context, q Querier, limit int) ([]LegacyExportSecret, error) {
	rows, err := q.Query(ctx, `SELECT request_id, coalesce(password, ''), coalesce(link_token, ''), link_url FROM exports
		WHERE password IS NOT NULL OR link_token IS NOT NULL OR link_url <> '' LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("legacy export secrets: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (LegacyExportSecret, error) {
		var l LegacyExportSecret
		err := row.Scan(&l.RequestID, &l.Password, &l.LinkToken, &l.LinkURL)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("legacy export secrets: %w", err)
	}
	return out, nil
}

// SealExportSecrets replaces an export's plain secrets by their sealed
// forms (an empty argument leaves the sealed column as it is).
func SealExportSecrets(ctx context.Context, tx pgx.Tx, requestID, passwordSealed, linkSecret, linkURLSealed string) error {
	_, err := tx.Exec(ctx, `UPDATE exports SET password = NULL, link_token = NULL, link_url = '',
			password_sealed = coalesce($2, password_sealed), link_secret = coalesce($3, link_secret),
			link_url_sealed = coalesce($4, link_url_sealed)
		WHERE request_id = $1`, requestID, nullable(passwordSealed), nullable(linkSecret), nullable(linkURLSealed))
	if err != nil {
		return fmt.Errorf("seal secrets of export %s: %w", requestID, err)
	}
	return nil
}
