package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/rights"
)

// ConsoleSession is a signed-in staff member's console session, with the
// staff identity as it is now (role and products are read on every use).
type ConsoleSession struct {
	Staff      rights.Staff
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

// CreateSession records a new session for the holder of an active staff
// token; idHash is the SHA-256 of the session cookie.
func CreateSession(ctx context.Context, q Querier, idHash []byte, staffName, tokenSHA256 string, now, expires time.Time) error {
	_, err := q.Exec(ctx, `INSERT INTO console_sessions (id_sha256, staff_name, token_sha256, created_at, last_seen_at, expires_at)
		VALUES ($1, $2, $3, $4, $4, $5)`, idHash, staffName, tokenSHA256, now, expires)
	if err != nil {
		return fmt.Errorf("create console session for %s: %w", staffName, err)
	}
	return nil
}

// TouchSession returns the session whose cookie hashes to idHash if it is
// still alive at now (not ended, before its absolute end, used within
// idle, and its staff token neither revoked nor replaced), and marks it
// used. nil: no live session.
func TouchSession(ctx context.Context, q Querier, idHash []byte, now time.Time, idle time.Duration) (*ConsoleSession, error) {
	var s ConsoleSession
	err := q.QueryRow(ctx, `SELECT t.name, t.role, t.products, cs.created_at, cs.last_seen_at, cs.expires_at
		FROM console_sessions cs JOIN staff_tokens t ON t.name = cs.staff_name
		WHERE cs.id_sha256 = $1 AND cs.ended_at IS NULL AND cs.expires_at > $2
		  AND cs.last_seen_at > $2 - $3::interval
		  AND t.token_sha256 = cs.token_sha256 AND t.revoked_at IS NULL`,
		idHash, now, idle).Scan(&s.Staff.Name, &s.Staff.Role, &s.Staff.Products, &s.CreatedAt, &s.LastSeenAt, &s.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up console session: %w", err)
	}
	// Every page is a read; marking the session used is a write, needed
	// only to the minute for the idle end to hold.
	if now.Sub(s.LastSeenAt) >= time.Minute {
		if _, err := q.Exec(ctx, `UPDATE console_sessions SET last_seen_at = $2 WHERE id_sha256 = $1 AND last_seen_at < $2`, idHash, now); err != nil {
			return nil, fmt.Errorf("mark console session used: %w", err)
		}
		s.LastSeenAt = now
	}
	return &s, nil
}

// EndSession ends a session (sign-out); ending one already ended is not
// an error.
func EndSession(ctx context.Context, q Querier, idHash []byte, now time.Time) error {
	if _, err := q.Exec(ctx, `UPDATE console_sessions SET ended_at = $2 WHERE id_sha256 = $1 AND ended_at IS NULL`, idHash, now); err != nil {
		return fmt.Errorf("end console session: %w", err)
	}
	return nil
}

// PruneSessions deletes sessions and sign-in links that ended, expired or
// were used more than a day before now; they open nothing any more.
func PruneSessions(ctx context.Context, q Querier, now time.Time, idle time.Duration) (int64, error) {
	cut := now.Add(-24 * time.Hour)
	a, err := q.Exec(ctx, `DELETE FROM console_sessions WHERE ended_at < $1 OR expires_at < $1 OR last_seen_at < $1 - $2::interval`, cut, idle)
	if err != nil {
		return 0, fmt.Errorf("prune console sessions: %w", err)
	}
	b, err := q.Exec(ctx, `DELETE FROM console_signin_links WHERE used_at < $1 OR expires_at < $1`, cut)
	if err != nil {
		return 0, fmt.Errorf("prune sign-in links: %w", err)
	}
	return a.RowsAffected() + b.RowsAffected(), nil
}

// CreateSigninLink records a one-time sign-in link for an active staff
// member; tokenHash is the SHA-256 of the link's secret.
func CreateSigninLink(ctx context.Context, q Querier, tokenHash []byte, staffName, by string, now, expires time.Time) error {
	tag, err := q.Exec(ctx, `INSERT INTO console_signin_links (token_sha256, staff_name, created_at, created_by, expires_at)
		SELECT $1, name, $3, $4, $5 FROM staff_tokens WHERE name = $2 AND revoked_at IS NULL`,
		tokenHash, staffName, now, by, expires)
	if err != nil {
		return fmt.Errorf("create sign-in link for %s: %w", staffName, err)
	}
	if tag.RowsAffected() == 0 {
		return rights.Errorf(rights.ENotFound, "no active staff member named %q", staffName)
	}
	return nil
}

// SigninLinkStaff is the staff member an unused, unexpired sign-in link is
// for, without using it (the page that asks to confirm); "" if none.
func SigninLinkStaff(ctx context.Context, q Querier, tokenHash []byte, now time.Time) (string, error) {
	var name string
	err := q.QueryRow(ctx, `SELECT l.staff_name FROM console_signin_links l JOIN staff_tokens t ON t.name = l.staff_name
		WHERE l.token_sha256 = $1 AND l.used_at IS NULL AND l.expires_at > $2 AND t.revoked_at IS NULL`, tokenHash, now).Scan(&name)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("look up sign-in link: %w", err)
	}
	return name, nil
}

// UseSigninLink marks a sign-in link used and returns its staff member
// and their current token hash, once: a second use, an expired link or a
// revoked staff member returns "".
func UseSigninLink(ctx context.Context, q Querier, tokenHash []byte, now time.Time) (name, tokenSHA256 string, err error) {
	err = q.QueryRow(ctx, `UPDATE console_signin_links l SET used_at = $2 FROM staff_tokens t
		WHERE l.token_sha256 = $1 AND l.used_at IS NULL AND l.expires_at > $2
		  AND t.name = l.staff_name AND t.revoked_at IS NULL
		RETURNING t.name, t.token_sha256`, tokenHash, now).Scan(&name, &tokenSHA256)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("use sign-in link: %w", err)
	}
	return name, tokenSHA256, nil
}

// StaffTokenHash is the token hash of an active staff member, for a
// session opened with a token the caller has already checked.
func StaffTokenHash(ctx context.Context, q Querier, name string) (string, error) {
	var h string
	err := q.QueryRow(ctx, `SELECT token_sha256 FROM staff_tokens WHERE name = $1 AND revoked_at IS NULL`, name).Scan(&h)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", rights.Errorf(rights.ENotFound, "no active staff member named %q", name)
	}
	if err != nil {
		return "", fmt.Errorf("look up staff %s: %w", name, err)
	}
	return h, nil
}
