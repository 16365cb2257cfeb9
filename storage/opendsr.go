package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/rights"
)

// OpenDSRLink is what the OpenDSR API adds to a partner's request.
type OpenDSRLink struct {
	RequestID        string
	Partner          string
	SubjectRequestID string
	CallbackURLs     []string
}

// InsertOpenDSRLink records a partner's request's OpenDSR side, in the
// transaction that inserts the request.
func InsertOpenDSRLink(ctx context.Context, tx pgx.Tx, l OpenDSRLink) error {
	urls := l.CallbackURLs
	if urls == nil {
		urls = []string{}
	}
	_, err := tx.Exec(ctx, `INSERT INTO opendsr_requests (request_id, partner, subject_request_id, callback_urls)
		VALUES ($1, $2, $3, $4)`, l.RequestID, l.Partner, l.SubjectRequestID, urls)
	if err != nil {
		return fmt.Errorf("insert opendsr link of %s: %w", l.RequestID, err)
	}
	return nil
}

// GetOpenDSRLink returns the OpenDSR side of request id, or nil when it was
// not filed through the OpenDSR API.
func GetOpenDSRLink(ctx context.Context, q Querier, requestID string) (*OpenDSRLink, error) {
	l := OpenDSRLink{RequestID: requestID}
	err := q.QueryRow(ctx, `SELECT partner, subject_request_id, callback_urls FROM opendsr_requests WHERE request_id = $1`,
		requestID).Scan(&l.Partner, &l.SubjectRequestID, &l.CallbackURLs)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get opendsr link of %s: %w", requestID, err)
	}
	return &l, nil
}

// FindPartnerRequest returns the request partner filed under
// subjectRequestID, or an ENotFound error: another partner's request is
// not found either, so its existence is not told.
func FindPartnerRequest(ctx context.Context, q Querier, partner, subjectRequestID string) (*rights.Request, *OpenDSRLink, error) {
	var id string
	err := q.QueryRow(ctx, `SELECT request_id FROM opendsr_requests WHERE partner = $1 AND subject_request_id = $2`,
		partner, subjectRequestID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, rights.Errorf(rights.ENotFound, "subject request %s not found", subjectRequestID)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("find partner request: %w", err)
	}
	r, err := GetRequest(ctx, q, id)
	if err != nil {
		return nil, nil, err
	}
	l, err := GetOpenDSRLink(ctx, q, id)
	if err != nil {
		return nil, nil, err
	}
	return r, l, nil
}

// OpenDSRCallback is one status callback owed to a partner.
type OpenDSRCallback struct {
	ID            int64
	RequestID     string
	URL           string
	RequestStatus string        // the OpenDSR status it reports
	Status        rights.Status // the request's own status at that change
	CreatedAt     time.Time
	DeliveredAt   *time.Time
	Attempts      int
}

// InsertOpenDSRCallback records a callback owed, in the transaction that
// changed the request's status, and returns its id for the job that sends
// it.
func InsertOpenDSRCallback(ctx context.Context, tx pgx.Tx, cb OpenDSRCallback) (int64, error) {
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO opendsr_callbacks (request_id, url, request_status, status, created_at)
		VALUES ($1, $2, $3, $4, $5) RETURNING id`, cb.RequestID, cb.URL, cb.RequestStatus, cb.Status, cb.CreatedAt).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("insert opendsr callback of %s: %w", cb.RequestID, err)
	}
	return id, nil
}

// GetOpenDSRCallback returns callback id; with lock, locked FOR UPDATE
// until tx ends.
func GetOpenDSRCallback(ctx context.Context, q Querier, id int64, lock bool) (*OpenDSRCallback, error) {
	suffix := ""
	if lock {
		suffix = " FOR UPDATE"
	}
	var cb OpenDSRCallback
	err := q.QueryRow(ctx, `SELECT id, request_id, url, request_status, status, created_at, delivered_at, attempts
		FROM opendsr_callbacks WHERE id = $1`+suffix, id).Scan(&cb.ID, &cb.RequestID, &cb.URL, &cb.RequestStatus,
		&cb.Status, &cb.CreatedAt, &cb.DeliveredAt, &cb.Attempts)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, rights.Errorf(rights.ENotFound, "opendsr callback %d not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get opendsr callback %d: %w", id, err)
	}
	return &cb, nil
}

// MarkOpenDSRCallbackDelivered records that the partner accepted callback id.
func MarkOpenDSRCallbackDelivered(ctx context.Context, tx pgx.Tx, id int64, at time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE opendsr_callbacks SET delivered_at = $2, attempts = attempts + 1, last_error = NULL
		WHERE id = $1`, id, at)
	if err != nil {
		return fmt.Errorf("mark opendsr callback %d delivered: %w", id, err)
	}
	return nil
}

// RecordOpenDSRCallbackFailure counts a failed attempt and keeps why
// (a status code or a network error; never the partner's answer body).
func RecordOpenDSRCallbackFailure(ctx context.Context, q Querier, id int64, reason string) error {
	_, err := q.Exec(ctx, `UPDATE opendsr_callbacks SET attempts = attempts + 1, last_error = $2 WHERE id = $1`, id, reason)
	if err != nil {
		return fmt.Errorf("record opendsr callback %d failure: %w", id, err)
	}
	return nil
}

// ListOpenDSRCallbacks returns a request's callbacks in the order they were owed.
func ListOpenDSRCallbacks(ctx context.Context, q Querier, requestID string) ([]OpenDSRCallback, error) {
	rows, err := q.Query(ctx, `SELECT id, request_id, url, request_status, status, created_at, delivered_at, attempts
		FROM opendsr_callbacks WHERE request_id = $1 ORDER BY id`, requestID)
	if err != nil {
		return nil, fmt.Errorf("list opendsr callbacks of %s: %w", requestID, err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (OpenDSRCallback, error) {
		var cb OpenDSRCallback
		err := row.Scan(&cb.ID, &cb.RequestID, &cb.URL, &cb.RequestStatus, &cb.Status, &cb.CreatedAt, &cb.DeliveredAt, &cb.Attempts)
		return cb, err
	})
}
