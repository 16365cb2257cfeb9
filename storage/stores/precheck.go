package stores

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/datarights/datarights/rights"
)

// Cancellation pre-checks: before an account is cancelled, each configured
// check must pass. A SQL check is a query the operator wrote, run on a store
// with the subject's key; a webhook check asks a service.

var (
	_ rights.Prechecker = (*Postgres)(nil)
	_ rights.Prechecker = (*MySQL)(nil)
)

// Precheck runs query, in a read-only transaction, with the subject's store
// key as $1 (sent as text: cast it in the query for another key type). A
// subject the store does not hold blocks nothing.
func (p *Postgres) Precheck(ctx context.Context, subject rights.Subject, query string) (bool, error) {
	tx, err := p.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return false, p.errorf("begin pre-check", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only
	keys, err := p.resolve(ctx, tx, subject)
	if err != nil || len(keys) == 0 {
		return false, err
	}
	var value any
	if err := tx.QueryRow(ctx, query, keys[0]).Scan(&value); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return false, nil
		}
		return false, p.errorf("pre-check", err)
	}
	blocked, err := precheckValue(value)
	if err != nil {
		return false, fmt.Errorf("store %s: pre-check: %w", p.cfg.Name, err)
	}
	return blocked, nil
}

// Precheck runs query, in a read-only transaction, with the subject's store
// key as its one ? parameter. A subject the store does not hold blocks
// nothing.
func (m *MySQL) Precheck(ctx context.Context, subject rights.Subject, query string) (bool, error) {
	tx, err := m.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return false, m.errorf("begin pre-check", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	keys, err := m.session(tx).resolve(ctx, subject)
	if err != nil || len(keys) == 0 {
		return false, err
	}
	var value any
	if err := tx.QueryRowContext(ctx, query, keys[0]).Scan(&value); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		return false, m.errorf("pre-check", err)
	}
	if b, ok := value.([]byte); ok { // MySQL sends numbers as text
		value = string(b)
	}
	blocked, err := precheckValue(value)
	if err != nil {
		return false, fmt.Errorf("store %s: pre-check: %w", m.cfg.Name, err)
	}
	return blocked, nil
}

// precheckValue reads a check's result: true, or a number above 0, blocks;
// false, 0 and NULL do not.
func precheckValue(v any) (bool, error) {
	switch v := v.(type) {
	case nil:
		return false, nil
	case bool:
		return v, nil
	case int64:
		return v > 0, nil
	case int32:
		return v > 0, nil
	case int16:
		return v > 0, nil
	case float64:
		return v > 0, nil
	case pgtype.Numeric:
		if !v.Valid || v.NaN {
			return false, nil
		}
		return v.Int.Cmp(big.NewInt(0)) > 0, nil
	case string:
		if n, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			return n > 0, nil
		}
	}
	return false, errors.New("the query must return a boolean or a number")
}

// WebhookPrecheck asks a service whether the subject's account may be
// cancelled:
//
//	→ {"version":1,"kind":"cancel_account.precheck","request_id","precheck","subject":{"identities":{…}}}
//	← 200 {"allowed": true} or {"allowed": false, "reason": "…"}
//
// It returns whether the check blocks and the service's reason (told to the
// requester after the configured one). Any other answer is an error, and
// the plan step retries.
func WebhookPrecheck(ctx context.Context, poster *SignedPoster, requestID, name string, subject rights.Subject) (bool, string, error) {
	identities := subject.All().Identities
	if identities == nil {
		identities = map[string]string{}
	}
	body, err := json.Marshal(map[string]any{"version": WebhookVersion, "kind": "cancel_account.precheck",
		"request_id": requestID, "precheck": name, "subject": webhookSubject{Identities: identities}})
	if err != nil {
		return false, "", err
	}
	status, answer, err := poster.Post(ctx, requestID+"."+name, body)
	if err != nil {
		return false, "", err
	}
	if status != http.StatusOK {
		return false, "", fmt.Errorf("%s: answered %d %s; the contract is 200 with {\"allowed\": …}", poster.name, status, http.StatusText(status))
	}
	var result struct {
		Allowed *bool  `json:"allowed"`
		Reason  string `json:"reason"`
	}
	if err := json.Unmarshal(answer, &result); err != nil || result.Allowed == nil {
		return false, "", fmt.Errorf("%s: the answer must be {\"allowed\": true|false, \"reason\": \"…\"}", poster.name)
	}
	reason := result.Reason
	if len(reason) > 500 {
		reason = reason[:500]
	}
	return !*result.Allowed, reason, nil
}

var (
	_ rights.ValueLooker = (*Postgres)(nil)
	_ rights.ValueLooker = (*MySQL)(nil)
)

// LookupValue runs query, in a read-only transaction, with the subject's
// store key as $1, and returns its one value (nil when the store does not
// hold the subject or the query finds no row): e.g. the subject's date of
// birth for the age lookup.
func (p *Postgres) LookupValue(ctx context.Context, subject rights.Subject, query string) (any, error) {
	tx, err := p.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, p.errorf("begin lookup", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only
	keys, err := p.resolve(ctx, tx, subject)
	if err != nil || len(keys) != 1 {
		return nil, err // nobody, or several people: no value
	}
	var value any
	if err := tx.QueryRow(ctx, query, keys[0]).Scan(&value); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, nil
		}
		return nil, p.errorf("lookup", err)
	}
	return value, nil
}

// LookupValue runs query with the subject's store key as its one ?
// parameter and returns its one value, as Postgres.LookupValue.
func (m *MySQL) LookupValue(ctx context.Context, subject rights.Subject, query string) (any, error) {
	tx, err := m.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, m.errorf("begin lookup", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	keys, err := m.session(tx).resolve(ctx, subject)
	if err != nil || len(keys) != 1 {
		return nil, err
	}
	var value any
	if err := tx.QueryRowContext(ctx, query, keys[0]).Scan(&value); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil
		}
		return nil, m.errorf("lookup", err)
	}
	if b, ok := value.([]byte); ok {
		value = string(b)
	}
	return value, nil
}
