package storage

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/datarights/datarights/rights"
)

// Querier is what reads need: a pool, a connection or a transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// NewID returns a new time-ordered id for a request or task.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// ValidID reports whether s is a well-formed id, so that a malformed id in a
// URL is a 404 rather than a database error.
func ValidID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

const requestColumns = `id, product, type, channel, status, subject, delivery_email, relation, locale,
	verification, note, created_by, received_at, verified_at, due_at, completed_at, updated_at,
	clock, clock_started_at, deadline_uncovered_years, breached_at, refusal, corrections, purposes, outcome,
	coalesce(ticket_ref, ''), coalesce(assignee, ''), details`

// baseColumns are the columns every request is written with.
const baseColumns = `id, product, type, channel, status, subject, delivery_email, relation, locale,
	verification, note, created_by, received_at, verified_at, due_at, completed_at, updated_at,
	clock, clock_started_at, deadline_uncovered_years, breached_at, refusal, corrections, purposes, outcome`

// Idempotency identifies a staff submit that may be retried.
type Idempotency struct {
	Key      string
	BodyHash string
	// Alternates are earlier keys a retry may have been stored under (a
	// derived key's previous window); only Key is stored.
	Alternates []string
}

// InsertRequest stores a new request.
func InsertRequest(ctx context.Context, tx pgx.Tx, r *rights.Request, idem *Idempotency) error {
	insert, args := requestInsert(r, idem)
	_, err := tx.Exec(ctx, insert, args...)
	return insertRequestError(r, err)
}

// Received is one new request and its first audit event, for
// InsertReceived.
type Received struct {
	Request *rights.Request
	Idem    *Idempotency
	Event   rights.AuditEvent

	// Set by InsertReceived: Created is false when the request's
	// idempotency key was already taken (by an earlier request, or by an
	// earlier one in the same call); then nothing of it was stored.
	// Otherwise Request is the row as stored (times to the microsecond,
	// JSON as Postgres keeps it) and Stored the event as stored: what
	// GetRequest and ListAudit would read back.
	Created bool
	Stored  rights.AuditEvent

	// Job, when set, is the request's first job, stored with it (and
	// not when the request is skipped for its key).
	Job *RiverJob
}

// RiverJob is a River job stored by this package's own SQL, in the same
// round trip as the rows it belongs to: River's InsertManyTx is a round
// trip of its own, a quarter of an intake group's time. The row is the
// one River's insert writes (River's other clients, in Ruby and Python,
// insert with SQL too); a test in jobs compares the two, column by
// column, so that a River upgrade which changes its insert fails there.
// Only for jobs River would insert without a unique key.
type RiverJob struct {
	Kind        string
	Args        []byte // as River encodes them: encoding/json
	Queue       string
	Priority    int
	MaxAttempts int
	// Notify wakes the queue's workers (River's insert notification)
	// when the transaction commits; without it they find the job at
	// their next poll. River itself notifies at most once per queue
	// every FetchCooldown, and so should the caller.
	Notify bool
}

// riverJobInsert is River's JobInsertFastMany (v0.51) for one job without
// a unique key, inserted only if its request is stored in this
// transaction (a request skipped for its key has no row: its id is fresh).
const riverJobInsert = `INSERT INTO river_job (args, kind, max_attempts, metadata, priority, queue, scheduled_at, state, tags)
	SELECT $2::jsonb, $3::text, $4::smallint, '{}'::jsonb, $5::smallint, $6::text, now(), 'available', '{}'::varchar(255)[]
	WHERE EXISTS (SELECT 1 FROM requests WHERE id = $1::uuid)`

// riverNotify is River's insert notification (PGNotifyMany): its
// listeners hear "<schema>.river_insert".
const riverNotify = `SELECT pg_notify(concat(current_schema(), '.river_insert'), json_build_object('queue', $1::text)::text)`

// InsertReceived stores new requests and the first audit event of each,
// all sent together (one round trip, however many). A request whose
// idempotency key is taken is skipped, with its event, rather than failing
// the transaction: the caller replays the request that holds the key. It
// needs every migration (InsertRequest does not).
func InsertReceived(ctx context.Context, tx pgx.Tx, items []*Received) error {
	b := &pgx.Batch{}
	if err := queueReceived(b, items); err != nil {
		return err
	}
	return readReceived(tx.SendBatch(ctx, b), items)
}

// BeginReceived begins a transaction on a connection of pool and stores
// items in it as InsertReceived does, with the BEGIN in the same round trip
// as the inserts (pgx's Batch.BeginTx): on the 2-core machine BEGIN alone
// took 0.7–1.1 ms of an intake group's 5–7 ms. The caller commits or rolls
// back the transaction, which gives the connection back; on an error it
// has been rolled back already.
func BeginReceived(ctx context.Context, pool *pgxpool.Pool, items []*Received) (pgx.Tx, error) {
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	if err := queueReceived(b, items); err != nil {
		return nil, err
	}
	br := pool.SendBatch(ctx, b)
	tx := br.Tx()
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		_ = tx.Rollback(ctx) // gives the connection back
		return nil, fmt.Errorf("insert requests: begin: %w", err)
	}
	if err := readReceived(br, items); err != nil {
		_ = tx.Rollback(ctx)
		return nil, err
	}
	return tx, nil
}

func queueReceived(b *pgx.Batch, items []*Received) error {
	for _, it := range items {
		auditSQL, auditArgs, err := auditInsertIfStored(it.Event)
		if err != nil {
			return err
		}
		insert, args := requestInsert(it.Request, it.Idem)
		if it.Idem != nil {
			insert += ` ON CONFLICT (created_by, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING`
		}
		// Without a key nothing can conflict, and a plain insert skips
		// the speculative insertion ON CONFLICT costs every row.
		b.Queue(insert+` RETURNING `+requestColumns, args...)
		// The event only when its request was stored just now: a request
		// skipped for its key has no row, and its id is fresh.
		b.Queue(auditSQL, auditArgs...)
		if j := it.Job; j != nil {
			b.Queue(riverJobInsert, it.Request.ID, j.Args, j.Kind, j.MaxAttempts, j.Priority, j.Queue)
			if j.Notify {
				b.Queue(riverNotify, j.Queue)
			}
		}
	}
	return nil
}

// readReceived reads the answers queueReceived's statements had and
// closes br.
func readReceived(br pgx.BatchResults, items []*Received) error {
	defer br.Close()
	for _, it := range items {
		stored, err := scanRequest(br.QueryRow())
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			it.Created = false
		case err != nil:
			return fmt.Errorf("insert request %s: %w", it.Request.ID, err)
		default:
			it.Created = true
			*it.Request = *stored
		}
		ev, err := scanAudit(br.QueryRow())
		switch {
		case errors.Is(err, pgx.ErrNoRows) && !it.Created:
		case err != nil:
			return fmt.Errorf("append audit %s for %s: %w", it.Event.Action, it.Event.RequestID, err)
		default:
			it.Stored = ev
		}
		if j := it.Job; j != nil {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("insert job %s for %s: %w", j.Kind, it.Request.ID, err)
			}
			if j.Notify {
				if _, err := br.Exec(); err != nil {
					return fmt.Errorf("notify queue %s: %w", j.Queue, err)
				}
			}
		}
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("insert requests: %w", err)
	}
	return nil
}

func requestInsert(r *rights.Request, idem *Idempotency) (string, []any) {
	var key, hash *string
	if idem != nil {
		key, hash = &idem.Key, &idem.BodyHash
	}
	args := []any{r.ID, r.Product, r.Type, r.Channel, r.Status, r.Subject, r.DeliveryEmail, r.Relation, r.Locale,
		r.Verification, r.Note, r.CreatedBy, r.ReceivedAt, r.VerifiedAt, r.DueAt, r.CompletedAt, r.UpdatedAt,
		r.Clock, r.ClockStartedAt, uncovered(r), r.BreachedAt, r.Refusal, corrections(r), purposes(r), r.Outcome, key, hash}
	columns := baseColumns + `, idempotency_key, request_hash`
	// The columns of migration 0017 are written only when set (they are
	// NULL otherwise), so a request is stored the same way in a database
	// migrated part way, as the migration tests do.
	for _, c := range []struct{ name, value string }{{"ticket_ref", r.TicketRef}, {"assignee", r.Assignee}} {
		if c.value != "" {
			columns += ", " + c.name
			args = append(args, c.value)
		}
	}
	if r.Details != nil {
		columns += ", details"
		args = append(args, r.Details)
	}
	params := make([]string, len(args))
	for i := range args {
		params[i] = fmt.Sprintf("$%d", i+1)
	}
	return `INSERT INTO requests (` + columns + `) VALUES (` + strings.Join(params, ", ") + `)`, args
}

func insertRequestError(r *rights.Request, err error) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "requests_idempotency" {
		return ErrDuplicateIdempotencyKey
	}
	return fmt.Errorf("insert request %s: %w", r.ID, err)
}

// ErrDuplicateIdempotencyKey says a concurrent submit with the same key won.
var ErrDuplicateIdempotencyKey = errors.New("idempotency key already used")

// FindByIdempotencyKey returns the request createdBy submitted under key and
// the hash of the body it was submitted with, or nil if there is none.
func FindByIdempotencyKey(ctx context.Context, q Querier, createdBy, key string) (*rights.Request, string, error) {
	row := q.QueryRow(ctx, `SELECT `+requestColumns+`, coalesce(request_hash, '') FROM requests
		WHERE created_by = $1 AND idempotency_key = $2`, createdBy, key)
	var hash string
	r, err := scanRequest(row, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("find idempotency key: %w", err)
	}
	return r, hash, nil
}

// GetRequest returns the request with id, or an ENotFound error.
func GetRequest(ctx context.Context, q Querier, id string) (*rights.Request, error) {
	return getRequest(ctx, q, id, "")
}

// LockRequest returns the request with id, locked for the rest of tx. Every
// state change locks its request first, so concurrent workers serialise.
func LockRequest(ctx context.Context, tx pgx.Tx, id string) (*rights.Request, error) {
	return getRequest(ctx, tx, id, " FOR UPDATE")
}

// LockSLADue returns up to limit requests whose SLA check has come by now
// (sla_check_at, migration 0020), earliest first, locked for the rest of
// tx; requests someone else holds are skipped, not waited for.
func LockSLADue(ctx context.Context, tx pgx.Tx, now time.Time, limit int) ([]*rights.Request, error) {
	rows, err := tx.Query(ctx, `SELECT `+requestColumns+` FROM requests WHERE sla_check_at <= $1
		ORDER BY sla_check_at LIMIT $2 FOR UPDATE SKIP LOCKED`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("requests due for the SLA sweep: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*rights.Request, error) { return scanRequest(row) })
	if err != nil {
		return nil, fmt.Errorf("requests due for the SLA sweep: %w", err)
	}
	return list, nil
}

func getRequest(ctx context.Context, q Querier, id, suffix string) (*rights.Request, error) {
	if !ValidID(id) {
		return nil, rights.Errorf(rights.ENotFound, "request %s not found", id)
	}
	r, err := scanRequest(q.QueryRow(ctx, `SELECT `+requestColumns+` FROM requests WHERE id = $1`+suffix, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, rights.Errorf(rights.ENotFound, "request %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get request %s: %w", id, err)
	}
	return r, nil
}

func scanRequest(row pgx.Row, extra ...any) (*rights.Request, error) {
	var r rights.Request
	dest := []any{&r.ID, &r.Product, &r.Type, &r.Channel, &r.Status, &r.Subject, &r.DeliveryEmail,
		&r.Relation, &r.Locale, &r.Verification, &r.Note, &r.CreatedBy, &r.ReceivedAt, &r.VerifiedAt,
		&r.DueAt, &r.CompletedAt, &r.UpdatedAt, &r.Clock, &r.ClockStartedAt, &r.DeadlineUncoveredYears, &r.BreachedAt, &r.Refusal,
		&r.Corrections, &r.Purposes, &r.Outcome, &r.TicketRef, &r.Assignee, &r.Details}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return nil, err
	}
	return &r, nil
}

// Change describes one state change of a request for its audit event.
type Change struct {
	Actor  string         // rights.ActorSystem, rights.ActorRequester, rights.ActorStaff(name), "store:<name>", "recipient:<name>"
	Action string         // e.g. "request.verified"
	Detail map[string]any // ids, counts, reasons; never personal data
}

// Transition moves r to status to, saves r's mutable fields (verification,
// timestamps, deadline) and appends the audit event, all in tx. It refuses
// moves the lifecycle does not allow.
func Transition(ctx context.Context, tx pgx.Tx, r *rights.Request, to rights.Status, at time.Time, c Change) error {
	if err := rights.CheckTransition(r.Status, to); err != nil {
		return err
	}
	from := r.Status
	r.Status, r.UpdatedAt = to, at
	switch to {
	case rights.StatusVerified:
		if r.VerifiedAt == nil {
			r.VerifiedAt = &at
		}
	case rights.StatusCompleted, rights.StatusRefused, rights.StatusCancelled, rights.StatusExpired:
		r.CompletedAt = &at
	}
	if err := SaveRequest(ctx, tx, r); err != nil {
		return err
	}
	return AppendAudit(ctx, tx, rights.AuditEvent{
		RequestID: r.ID, At: at, Actor: c.Actor, Action: c.Action,
		FromStatus: from, ToStatus: to, Detail: c.Detail,
	})
}

// SaveRequest saves r's mutable fields. Callers other than Transition use it
// for changes that keep the status (the deadline clock, a breach mark) and
// append their own audit event in the same transaction.
func SaveRequest(ctx context.Context, tx pgx.Tx, r *rights.Request) error {
	_, err := tx.Exec(ctx, `UPDATE requests SET status = $2, verification = $3, verified_at = $4,
		due_at = $5, completed_at = $6, updated_at = $7, clock = $8, clock_started_at = $9,
		deadline_uncovered_years = $10, breached_at = $11, subject = $12, refusal = $13, outcome = $14, details = $15 WHERE id = $1`,
		r.ID, r.Status, r.Verification, r.VerifiedAt, r.DueAt, r.CompletedAt, r.UpdatedAt,
		r.Clock, r.ClockStartedAt, uncovered(r), r.BreachedAt, r.Subject, r.Refusal, r.Outcome, r.Details)
	if err != nil {
		return fmt.Errorf("update request %s: %w", r.ID, err)
	}
	return nil
}

// uncovered is never NULL in the table.
func uncovered(r *rights.Request) []int {
	if r.DeadlineUncoveredYears == nil {
		return []int{}
	}
	return r.DeadlineUncoveredYears
}

// corrections is NULL in the table for requests without any.
func corrections(r *rights.Request) map[string]string {
	if len(r.Corrections) == 0 {
		return nil
	}
	return r.Corrections
}

// purposes is never NULL in the table.
func purposes(r *rights.Request) []string {
	if r.Purposes == nil {
		return []string{}
	}
	return r.Purposes
}

// AppendAudit adds one event to a request's audit trail. The database
// chains it onto the request's earlier events (migration 0011): the caller
// holds the request's chain until tx ends, so keep tx short.
func AppendAudit(ctx context.Context, tx pgx.Tx, ev rights.AuditEvent) error {
	_, err := AppendAuditEvent(ctx, tx, ev)
	return err
}

// AppendAuditEvent is AppendAudit that returns the event as stored, as
// ListAudit would read it.
func AppendAuditEvent(ctx context.Context, tx pgx.Tx, ev rights.AuditEvent) (rights.AuditEvent, error) {
	sql, args, err := auditInsert(ev)
	if err != nil {
		return rights.AuditEvent{}, err
	}
	stored, err := scanAudit(tx.QueryRow(ctx, sql, args...))
	if err != nil {
		return rights.AuditEvent{}, fmt.Errorf("append audit %s for %s: %w", ev.Action, ev.RequestID, err)
	}
	return stored, nil
}

func auditInsert(ev rights.AuditEvent) (string, []any, error) {
	if !rights.ValidActor(ev.Actor) {
		return "", nil, fmt.Errorf("append audit %s for %s: actor %q is not system, requester, staff:<name>, store:<name> or recipient:<name>",
			ev.Action, ev.RequestID, ev.Actor)
	}
	detail := ev.Detail
	if detail == nil {
		detail = map[string]any{}
	}
	return `INSERT INTO audit_events (request_id, at, actor, action, from_status, to_status, detail)
		VALUES ($1, $2, $3, $4, nullif($5, ''), nullif($6, ''), $7)
		RETURNING ` + auditColumns,
		[]any{ev.RequestID, ev.At, ev.Actor, ev.Action, string(ev.FromStatus), string(ev.ToStatus), detail}, nil
}

// auditInsertIfStored is auditInsert for the first event of a request
// inserted just before it in the same batch: the event is written only if
// the request was.
func auditInsertIfStored(ev rights.AuditEvent) (string, []any, error) {
	_, args, err := auditInsert(ev)
	if err != nil {
		return "", nil, err
	}
	return `INSERT INTO audit_events (request_id, at, actor, action, from_status, to_status, detail)
		SELECT $1::uuid, $2::timestamptz, $3::text, $4::text, nullif($5::text, ''), nullif($6::text, ''), $7::jsonb
		WHERE EXISTS (SELECT 1 FROM requests WHERE id = $1::uuid)
		RETURNING ` + auditColumns, args, nil
}

func scanAudit(row pgx.Row) (rights.AuditEvent, error) {
	var ev rights.AuditEvent
	err := row.Scan(&ev.ID, &ev.RequestID, &ev.At, &ev.Actor, &ev.Action, &ev.FromStatus, &ev.ToStatus, &ev.Detail)
	return ev, err
}

// auditColumns are an audit event's columns as ListAudit reads them.
const auditColumns = `id, request_id, at, actor, action, coalesce(from_status, ''), coalesce(to_status, ''), detail`

// ListAudit returns a request's audit trail, oldest first.
func ListAudit(ctx context.Context, q Querier, requestID string) ([]rights.AuditEvent, error) {
	rows, err := q.Query(ctx, `SELECT `+auditColumns+` FROM audit_events WHERE request_id = $1 ORDER BY request_seq`, requestID)
	if err != nil {
		return nil, fmt.Errorf("list audit %s: %w", requestID, err)
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (rights.AuditEvent, error) {
		var ev rights.AuditEvent
		err := row.Scan(&ev.ID, &ev.RequestID, &ev.At, &ev.Actor, &ev.Action, &ev.FromStatus, &ev.ToStatus, &ev.Detail)
		return ev, err
	})
	if err != nil {
		return nil, fmt.Errorf("list audit %s: %w", requestID, err)
	}
	return events, nil
}

// RequestFilter selects requests for the staff list. Every field narrows
// the list; the zero value lists everything.
type RequestFilter struct {
	Status  rights.Status
	Product string
	// Products limits the list to a staff member's scope (nil: all).
	Products []string
	Type     rights.Type
	Band     rights.Band
	Channel  rights.Channel
	// Assignee lists the requests assigned to that staff member;
	// Unassigned those assigned to nobody. ("Mine" is Assignee = self.)
	Assignee   string
	Unassigned bool
	// Open lists only requests that are not completed, refused, cancelled
	// or expired.
	Open bool
	// Search is an exact request id or ticket reference. Nothing searches
	// personal data: an email or phone in a URL would land in logs and
	// browser histories.
	Search string
	// SortByDue lists by deadline, soonest first (requests without one
	// last); otherwise newest first.
	SortByDue bool
	// Now and DueSoonAt place requests in bands.
	Now       time.Time
	DueSoonAt float64
	Limit     int
	Cursor    string // from the previous page's NextCursor
}

// terminalSQL lists the statuses no request leaves (rights.Status.Terminal).
const terminalSQL = `('completed', 'refused', 'cancelled', 'expired')`

// where returns f's conditions (all but the band's and the cursor's) on
// args, which hold $1 now and $2 the due-soon fraction.
func (f RequestFilter) where(args []any) ([]string, []any) {
	var where []string
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.Status != "" {
		add("status = $%d", f.Status)
	}
	if f.Product != "" {
		add("product = $%d", f.Product)
	}
	if f.Products != nil {
		add("product = ANY($%d)", f.Products)
	}
	if f.Type != "" {
		add("type = $%d", f.Type)
	}
	if f.Channel != "" {
		add("channel = $%d", f.Channel)
	}
	if f.Assignee != "" {
		add("assignee = $%d", f.Assignee)
	}
	if f.Unassigned {
		where = append(where, "assignee IS NULL")
	}
	if f.Open {
		// completed_at names the open requests to the partial indexes.
		where = append(where, "completed_at IS NULL AND status NOT IN "+terminalSQL)
	}
	if f.Search != "" {
		if ValidID(f.Search) {
			args = append(args, f.Search, f.Search)
			where = append(where, fmt.Sprintf("(id = $%d::uuid OR ticket_ref = $%d::text)", len(args)-1, len(args)))
		} else {
			add("ticket_ref = $%d", f.Search)
		}
	}
	return where, args
}

// bandSQL is rights.BandOf in SQL ($1 now, $2 the due-soon fraction): the
// counts read every open request anyway, so they compute each instant
// rather than depend on the stored ones being of $2.
const bandSQL = `CASE
	WHEN status IN ('completed', 'refused', 'cancelled', 'expired') THEN 'closed'
	WHEN status = 'paused' THEN 'paused'
	WHEN due_at IS NULL THEN 'no_deadline'
	WHEN $1::timestamptz >= due_at THEN 'overdue'
	WHEN clock_started_at IS NOT NULL AND $1::timestamptz >= datarights_due_soon_at(clock_started_at, due_at, $2::float8) THEN 'due_soon'
	ELSE 'on_track' END`

// bandWhere is bandSQL split into one condition per band ($1 now, $2 the
// due-soon fraction), each written so an index on open requests' deadlines
// can serve it: a CASE over every row could not use any index, which made
// the overdue queue's first page take 964 ms at 1M open requests. A test
// keeps these, onTrackStored, bandSQL and rights.BandOf in step.
//
// The overdue, due-soon and on-track conditions also bound
// coalesce(due_at, 'infinity') itself (implied by the rest, so the rows are
// the same): that expression is the index's key, and a bound on it is
// where an index scan starts or stops. Without it the due-soon queue read
// the third of all open requests that are overdue, one by one, before its
// first row (5.8 s at 1M). The paused and no-deadline bands, a few of
// all open requests, have small indexes of their own (migration 0026).
//
// The on-track condition here computes each request's due-soon instant:
// it is the fallback for when the stored instants are not of $2
// (onTrackStored).
var bandWhere = map[rights.Band]string{
	rights.BandOverdue: `completed_at IS NULL AND status <> 'paused' AND due_at <= $1::timestamptz
		AND coalesce(due_at, 'infinity') <= $1::timestamptz`,
	rights.BandDueSoon: `completed_at IS NULL AND status <> 'paused' AND due_at > $1::timestamptz
		AND coalesce(due_at, 'infinity') > $1::timestamptz
		AND clock_started_at IS NOT NULL AND $1::timestamptz >= datarights_due_soon_at(clock_started_at, due_at, $2::float8)`,
	rights.BandOnTrack: `completed_at IS NULL AND status <> 'paused' AND due_at > $1::timestamptz
		AND coalesce(due_at, 'infinity') > $1::timestamptz
		AND (clock_started_at IS NULL OR $1::timestamptz < datarights_due_soon_at(clock_started_at, due_at, $2::float8))`,
	rights.BandPaused:     `completed_at IS NULL AND status = 'paused'`,
	rights.BandNoDeadline: `completed_at IS NULL AND status <> 'paused' AND due_at IS NULL`,
	rights.BandClosed:     `(completed_at IS NOT NULL OR status IN ` + terminalSQL + `)`,
}

// onTrackStored is the on-track condition on the stored instants
// (migration 0028), for when they are all of $2 (DueSoonReady): the same
// rows as bandWhere's, served by the index on (due_soon_at, id). In
// deadline order the on-track requests come after the due-soon ones, and
// whether a request is due soon depends on its own clock start, which no
// bound on the deadline can express: that scan passed every due-soon
// request (196 ms at 1M open requests).
const onTrackStored = `completed_at IS NULL AND status <> 'paused' AND due_soon_at > $1::timestamptz AND due_at > $1::timestamptz`

// The orders a list is read in; each cursor names its own, so that a cursor
// of one is refused by another rather than read as a key of another kind.
const (
	orderReceived = "r" // newest first: (received_at, id) descending
	orderDue      = "d" // by deadline: (coalesce(due_at, 'infinity'), id)
	orderDueSoon  = "s" // the on-track band by deadline: (due-soon instant, id)
)

// Cursor limits.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// ListRequests returns one page of requests, newest first, and the cursor of
// the next page ("" on the last page).
//
// Sorted by due (f.SortByDue), requests are in deadline order, those
// without a deadline last, except the on-track band's: that is in the
// order its requests become due soon (for requests whose periods are
// equally long, deadline order), the order of its index. A request whose
// clock has no start counts as becoming due soon at its deadline.
func ListRequests(ctx context.Context, q Querier, f RequestFilter) ([]*rights.Request, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultPageSize
	}
	now := f.Now
	if now.IsZero() {
		now = time.Now()
	}
	where, args := f.where([]any{now, f.DueSoonAt})
	order := orderReceived
	if f.SortByDue {
		order = orderDue
	}
	// The due-soon instant, stored or computed from each request's clock.
	dueSoonKey := "datarights_due_soon_at(clock_started_at, due_at, $2::float8)"
	if f.Band != "" {
		cond, ok := bandWhere[f.Band]
		if !ok {
			return nil, "", rights.Errorf(rights.EInvalid, "unknown band %q", f.Band)
		}
		if f.Band == rights.BandOnTrack {
			stored, err := DueSoonReady(ctx, q, f.DueSoonAt)
			if err != nil {
				return nil, "", fmt.Errorf("list requests: %w", err)
			}
			if stored {
				cond, dueSoonKey = onTrackStored, "due_soon_at"
			}
			if f.SortByDue {
				order = orderDueSoon
			}
		}
		where = append(where, cond)
	}
	var sortKey, orderBy string
	switch order {
	case orderReceived:
		sortKey, orderBy = "received_at", " ORDER BY received_at DESC, id DESC"
	case orderDue:
		// Requests without a deadline sort last: 'infinity' keeps the
		// keyset comparison a plain row comparison. The expression is
		// indexed for open requests (migration 0022).
		sortKey = "coalesce(due_at, 'infinity')"
		orderBy = " ORDER BY " + sortKey + ", id"
	case orderDueSoon:
		sortKey = dueSoonKey
		orderBy = " ORDER BY " + sortKey + ", id"
	}
	if f.Cursor != "" {
		at, id, err := decodeCursor(f.Cursor, order)
		if err != nil {
			return nil, "", err
		}
		var atArg any = at
		if at.Equal(infinity) {
			atArg = pgtype.Timestamptz{Valid: true, InfinityModifier: pgtype.Infinity}
		}
		args = append(args, atArg, id)
		cmp := ">"
		if order == orderReceived {
			cmp = "<"
		}
		where = append(where, fmt.Sprintf("(%s, id) %s ($%d, $%d)", sortKey, cmp, len(args)-1, len(args)))
	}
	sql := `SELECT ` + requestColumns
	if order == orderDueSoon {
		// The key itself, for the cursor: as the database has it.
		sql += ", " + sortKey
	}
	sql += ` FROM requests WHERE $1::timestamptz IS NOT NULL AND $2::float8 IS NOT NULL`
	if len(where) > 0 {
		sql += " AND " + strings.Join(where, " AND ")
	}
	args = append(args, limit+1)
	sql += orderBy + fmt.Sprintf(" LIMIT $%d", len(args))
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list requests: %w", err)
	}
	var keys []time.Time
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*rights.Request, error) {
		if order != orderDueSoon {
			return scanRequest(row)
		}
		var key time.Time
		r, err := scanRequest(row, &key)
		keys = append(keys, key)
		return r, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list requests: %w", err)
	}
	var next string
	if len(list) > limit {
		list = list[:limit]
		last := list[limit-1]
		switch {
		case order == orderReceived:
			next = encodeCursor(order, last.ReceivedAt, last.ID)
		case order == orderDueSoon:
			next = encodeCursor(order, keys[limit-1], last.ID)
		case last.DueAt == nil:
			next = encodeCursor(order, infinity, last.ID)
		default:
			next = encodeCursor(order, *last.DueAt, last.ID)
		}
	}
	return list, next, nil
}

// infinity stands for Postgres' 'infinity' in a due-sorted cursor.
var infinity = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// EncodeCursor is the cursor of a deadline-ordered list (not the on-track
// band's) after the request id due at due; tools use it to start a page
// anywhere.
func EncodeCursor(due time.Time, id string) string { return encodeCursor(orderDue, due, id) }

// EncodeOnTrackCursor is the cursor of the on-track band's list (sorted by
// due) after the request id that becomes due soon at dueSoon.
func EncodeOnTrackCursor(dueSoon time.Time, id string) string {
	return encodeCursor(orderDueSoon, dueSoon, id)
}

// encodeCursor writes the list's order, the sort key and the id. Cursors
// issued before orders were written in them (key and id alone) are still
// read, by the two orders that then existed.
func encodeCursor(order string, at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(order + "|" + at.UTC().Format(time.RFC3339Nano) + "|" + id))
}

func decodeCursor(c, order string) (time.Time, string, error) {
	bad := rights.Errorf(rights.EInvalid, "cursor is not one this service issued")
	bad.Fields = []rights.FieldProblem{{Field: "cursor", Reason: "malformed"}}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", bad
	}
	parts := strings.Split(string(raw), "|")
	switch {
	case len(parts) == 3 && parts[0] == order:
		parts = parts[1:]
	case len(parts) == 2 && order != orderDueSoon:
	default:
		return time.Time{}, "", bad
	}
	at, err := time.Parse(time.RFC3339Nano, parts[0])
	if err != nil || !ValidID(parts[1]) {
		return time.Time{}, "", bad
	}
	return at, parts[1], nil
}

// InsertTasks stores a request's store tasks. A task that exists already
// (same request, store and action) is left alone, so re-planning is safe.
func InsertTasks(ctx context.Context, tx pgx.Tx, tasks []*rights.Task) error {
	for _, t := range tasks {
		err := tx.QueryRow(ctx, `INSERT INTO tasks (id, request_id, store, action, status, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (request_id, store, action) DO UPDATE SET store = excluded.store
			RETURNING id, status`,
			t.ID, t.RequestID, t.Store, t.Action, t.Status, t.CreatedAt).Scan(&t.ID, &t.Status)
		if err != nil {
			return fmt.Errorf("insert task %s/%s: %w", t.RequestID, t.Store, err)
		}
	}
	return nil
}

const taskColumns = `id, request_id, store, action, status, attempts, report, last_error, created_at, finished_at, inventory`

func scanTask(row pgx.Row) (*rights.Task, error) {
	var t rights.Task
	var report, inventory []byte
	if err := row.Scan(&t.ID, &t.RequestID, &t.Store, &t.Action, &t.Status, &t.Attempts, &report,
		&t.LastError, &t.CreatedAt, &t.FinishedAt, &inventory); err != nil {
		return nil, err
	}
	if inventory != nil {
		t.Inventory = &rights.StoreReport{}
		if err := json.Unmarshal(inventory, t.Inventory); err != nil {
			return nil, fmt.Errorf("task %s inventory: %w", t.ID, err)
		}
	}
	if report != nil {
		t.Report = &rights.StoreReport{}
		if err := json.Unmarshal(report, t.Report); err != nil {
			return nil, fmt.Errorf("task %s report: %w", t.ID, err)
		}
	}
	return &t, nil
}

// ListTasks returns a request's tasks in store order.
func ListTasks(ctx context.Context, q Querier, requestID string) ([]*rights.Task, error) {
	rows, err := q.Query(ctx, `SELECT `+taskColumns+` FROM tasks WHERE request_id = $1 ORDER BY store, action`, requestID)
	if err != nil {
		return nil, fmt.Errorf("list tasks %s: %w", requestID, err)
	}
	tasks, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*rights.Task, error) { return scanTask(row) })
	if err != nil {
		return nil, fmt.Errorf("list tasks %s: %w", requestID, err)
	}
	return tasks, nil
}

// LockTask returns the task with id, locked for the rest of tx.
func LockTask(ctx context.Context, tx pgx.Tx, id string) (*rights.Task, error) {
	if !ValidID(id) {
		return nil, rights.Errorf(rights.ENotFound, "task %s not found", id)
	}
	t, err := scanTask(tx.QueryRow(ctx, `SELECT `+taskColumns+` FROM tasks WHERE id = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, rights.Errorf(rights.ENotFound, "task %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("lock task %s: %w", id, err)
	}
	return t, nil
}

// SaveTask saves a task's status, attempts, report and error.
func SaveTask(ctx context.Context, tx pgx.Tx, t *rights.Task) error {
	_, err := tx.Exec(ctx, `UPDATE tasks SET status = $2, attempts = $3, report = $4, last_error = $5,
		finished_at = $6 WHERE id = $1`, t.ID, t.Status, t.Attempts, t.Report, t.LastError, t.FinishedAt)
	if err != nil {
		return fmt.Errorf("save task %s: %w", t.ID, err)
	}
	return nil
}

// SaveInventory records what a store held before a task's erasure; the
// first inventory taken is kept (a rerun's would see the store after it).
func SaveInventory(ctx context.Context, q Querier, taskID string, inventory rights.StoreReport) error {
	if _, err := q.Exec(ctx, `UPDATE tasks SET inventory = $2 WHERE id = $1 AND inventory IS NULL`, taskID, inventory); err != nil {
		return fmt.Errorf("save inventory of task %s: %w", taskID, err)
	}
	return nil
}

// OpenCount is how many open requests of a product are in one status and band.
type OpenCount struct {
	Product string
	Status  string
	Band    string
	Count   int
}

// CountOpen counts open (not completed, refused, cancelled or expired)
// requests by product, status and SLA band at now.
func CountOpen(ctx context.Context, q Querier, now time.Time, dueSoonAt float64) ([]OpenCount, error) {
	rows, err := q.Query(ctx, `SELECT product, status, `+bandSQL+` AS band, count(*) FROM requests
		WHERE status NOT IN ('completed', 'refused', 'cancelled', 'expired')
		GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`, now, dueSoonAt)
	if err != nil {
		return nil, fmt.Errorf("count open requests: %w", err)
	}
	counts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (OpenCount, error) {
		var c OpenCount
		err := row.Scan(&c.Product, &c.Status, &c.Band, &c.Count)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("count open requests: %w", err)
	}
	return counts, nil
}

// CountOpenByBand counts the open requests f selects in each SLA band at
// f.Now, by the rules the band filter of ListRequests uses (bandSQL): the
// counts above the staff queue. f's Band, Cursor, Limit and sort are
// ignored; every band is in the answer, zero or not, closed excepted.
func CountOpenByBand(ctx context.Context, q Querier, f RequestFilter) (map[rights.Band]int, error) {
	now := f.Now
	if now.IsZero() {
		now = time.Now()
	}
	f.Open = true
	where, args := f.where([]any{now, f.DueSoonAt})
	sql := `SELECT ` + bandSQL + ` AS band, count(*) FROM requests WHERE $1::timestamptz IS NOT NULL AND $2::float8 IS NOT NULL AND ` +
		strings.Join(where, " AND ") + ` GROUP BY 1`
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("count open requests by band: %w", err)
	}
	counts := map[rights.Band]int{}
	for _, b := range rights.Bands {
		if b != rights.BandClosed {
			counts[b] = 0
		}
	}
	var (
		band string
		n    int
	)
	_, err = pgx.ForEachRow(rows, []any{&band, &n}, func() error {
		counts[rights.Band(band)] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count open requests by band: %w", err)
	}
	return counts, nil
}

// FindCancellation returns the earlier completed cancel_account request of
// product whose subject shares one of identities (given or resolved), and
// when it completed; "" when there is none.
func FindCancellation(ctx context.Context, q Querier, r *rights.Request, identities map[string]string) (string, time.Time, error) {
	var (
		id string
		at time.Time
	)
	err := q.QueryRow(ctx, `SELECT id, completed_at FROM requests
		WHERE product = $1 AND type = 'cancel_account' AND status = 'completed' AND id <> $2
		  AND EXISTS (SELECT 1 FROM jsonb_each_text((subject->'identities') || coalesce(subject->'resolved', '{}'::jsonb)) AS theirs(k, v)
		              JOIN jsonb_each_text($3::jsonb) AS mine(k, v) ON mine.k = theirs.k AND mine.v = theirs.v)
		ORDER BY completed_at LIMIT 1`, r.Product, r.ID, identities).Scan(&id, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", time.Time{}, nil
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("find cancellation for %s: %w", r.ID, err)
	}
	return id, at, nil
}

// FindRepeat returns the id of the newest other request for the same
// product and right, naming the subject by any of the same identities,
// received since since and before r, verified and not refused or
// cancelled; "" if there is none. Unverified requests do not count: anyone
// can file one naming anyone.
//
// A complaint or explain request repeats another only with the same text
// (and concerned request), a transfer only to the same receiver: a
// follow-up complaint, or a second receiver, is a new request.
func FindRepeat(ctx context.Context, q Querier, r *rights.Request, since time.Time) (string, error) {
	if len(r.Subject.Identities) == 0 {
		return "", nil
	}
	// One containment probe per identity, so the GIN index on the
	// identities (migration 0021) serves each and a bitmap ORs them; the
	// index cannot serve "@> ANY (array)".
	args := []any{r.Product, r.Type, r.ID, since, r.ReceivedAt}
	var probes []string
	for _, k := range slices.Sorted(maps.Keys(r.Subject.Identities)) {
		args = append(args, map[string]string{k: r.Subject.Identities[k]})
		probes = append(probes, fmt.Sprintf("subject->'identities' @> $%d::jsonb", len(args)))
	}
	var id string
	var d rights.Details
	if r.Details != nil {
		d = *r.Details
	}
	err := q.QueryRow(ctx, `SELECT id FROM requests
		WHERE product = $1 AND type = $2 AND id <> $3 AND received_at >= $4 AND received_at <= $5
		  AND status NOT IN ('refused', 'cancelled', 'awaiting_verification', 'expired')
		  AND (`+strings.Join(probes, " OR ")+`)
		  AND coalesce(details->>'concerns', '') = $`+strconv.Itoa(len(args)+1)+`
		  AND coalesce(details->>'text', '') = $`+strconv.Itoa(len(args)+2)+`
		  AND coalesce(details->>'receiver', '') = $`+strconv.Itoa(len(args)+3)+`
		ORDER BY received_at DESC LIMIT 1`, append(args, d.Concerns, d.Text, d.Receiver)...).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("find repeat of %s: %w", r.ID, err)
	}
	return id, nil
}

// RequestProduct returns the product of a request; an ENotFound error when
// there is no such request.
func RequestProduct(ctx context.Context, q Querier, id string) (string, error) {
	notFound := rights.Errorf(rights.ENotFound, "request %s not found", id)
	if !ValidID(id) {
		return "", notFound
	}
	var product string
	err := q.QueryRow(ctx, `SELECT product FROM requests WHERE id = $1`, id).Scan(&product)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", notFound
	}
	if err != nil {
		return "", fmt.Errorf("product of request %s: %w", id, err)
	}
	return product, nil
}

// ProductAuditEvent is an audit event with its request's product, for the
// auditor's export.
type ProductAuditEvent struct {
	rights.AuditEvent
	Product string `json:"product"`
}

// AuditPage returns up to limit audit events with ids after after, in id
// order, of requests of products (nil: every product).
func AuditPage(ctx context.Context, q Querier, after int64, limit int, products []string) ([]ProductAuditEvent, error) {
	rows, err := q.Query(ctx, `SELECT a.id, a.request_id, a.at, a.actor, a.action, coalesce(a.from_status, ''),
			coalesce(a.to_status, ''), a.detail, r.product
		FROM audit_events a JOIN requests r ON r.id = a.request_id
		WHERE a.id > $1 AND ($3::text[] IS NULL OR r.product = ANY($3))
		ORDER BY a.id LIMIT $2`, after, limit, products)
	if err != nil {
		return nil, fmt.Errorf("audit page after %d: %w", after, err)
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ProductAuditEvent, error) {
		var ev ProductAuditEvent
		err := row.Scan(&ev.ID, &ev.RequestID, &ev.At, &ev.Actor, &ev.Action, &ev.FromStatus, &ev.ToStatus, &ev.Detail, &ev.Product)
		return ev, err
	})
	if err != nil {
		return nil, fmt.Errorf("audit page after %d: %w", after, err)
	}
	return events, nil
}

// ComplaintsAbout returns the ids of the complaints that concern the
// request, oldest first.
func ComplaintsAbout(ctx context.Context, q Querier, requestID string) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT id::text FROM requests WHERE details ? 'concerns' AND details->>'concerns' = $1
		ORDER BY received_at, id`, requestID)
	if err != nil {
		return nil, fmt.Errorf("complaints about %s: %w", requestID, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("complaints about %s: %w", requestID, err)
	}
	return ids, nil
}
