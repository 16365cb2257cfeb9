package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/keyring"
)

// The audit trail's tamper evidence (migration 0011_audit_chain.sql):
//
//   - each event's hash covers its contents and the hash of the event before
//     it in its request's chain, so an edited event, or one removed from the
//     middle of a chain, breaks the chain there;
//   - anchors fold every event, in global seq order, into a running hash and
//     MAC it with the secret key, so removing whole chains (or the newest
//     events of a chain), or rewriting hashes wholesale, which anyone with
//     the database can do, no longer matches an anchor made before.

// AnchorPurpose is the keyring purpose of audit anchor MACs.
const AnchorPurpose = "audit-anchor"

// auditHashTag versions the canonical encoding; the trigger uses the same.
const auditHashTag = "datarights/audit/v1"

// anchorLock serialises anchor writers ("dr-ancho" in ASCII): two leaders
// for a moment must not both append anchor n.
const anchorLock = 0x64722d616e63686f

// chainEvent is an audit event as the chain sees it.
type chainEvent struct {
	ID         int64
	RequestID  [16]byte
	Seq        int64
	RequestSeq int32
	At         time.Time
	Actor      string
	Action     string
	FromStatus *string
	ToStatus   *string
	Detail     string // jsonb as Postgres prints it
	PrevHash   []byte
	Hash       []byte
}

const chainColumns = `id, request_id, seq, request_seq, at, actor, action, from_status, to_status, detail::text, prev_hash, hash`

func scanChainEvent(rows pgx.Rows, e *chainEvent) error {
	return rows.Scan(&e.ID, &e.RequestID, &e.Seq, &e.RequestSeq, &e.At, &e.Actor, &e.Action,
		&e.FromStatus, &e.ToStatus, &e.Detail, &e.PrevHash, &e.Hash)
}

// hash computes the event's hash the way audit_event_hash does in SQL.
func (e *chainEvent) hash(buf *bytes.Buffer) []byte {
	buf.Reset()
	buf.WriteString(auditHashTag)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(e.ID))
	buf.Write(n[:])
	buf.Write(e.RequestID[:])
	binary.BigEndian.PutUint64(n[:], uint64(e.Seq))
	buf.Write(n[:])
	binary.BigEndian.PutUint32(n[:4], uint32(e.RequestSeq))
	buf.Write(n[:4])
	binary.BigEndian.PutUint64(n[:], uint64(e.At.UnixMicro()))
	buf.Write(n[:])
	field := func(b []byte, null bool) {
		l := int32(len(b))
		if null {
			l = -1
		}
		binary.BigEndian.PutUint32(n[:4], uint32(l))
		buf.Write(n[:4])
		buf.Write(b)
	}
	text := func(s *string) {
		if s == nil {
			field(nil, true)
			return
		}
		field([]byte(*s), false)
	}
	text(&e.Actor)
	text(&e.Action)
	text(e.FromStatus)
	text(e.ToStatus)
	text(&e.Detail)
	field(e.PrevHash, e.PrevHash == nil)
	sum := sha256.Sum256(buf.Bytes())
	return sum[:]
}

// foldChain adds one event to the running global hash of anchors.
func foldChain(chain []byte, seq int64, hash []byte) []byte {
	h := sha256.New()
	h.Write(chain)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(seq))
	h.Write(n[:])
	h.Write(hash)
	return h.Sum(nil)
}

// Anchor is one row of audit_anchors.
type Anchor struct {
	N         int64
	LastSeq   int64 // events with seq ≤ LastSeq are covered
	Events    int64 // how many there are
	ChainHash []byte
	At        time.Time
	KeyID     string
	MAC       []byte
}

func (a *Anchor) mac(keys *keyring.Keyring, keyID string, prevMAC []byte) ([]byte, error) {
	return keys.MAC(keyID, AnchorPurpose, be64(a.N), be64(a.LastSeq), be64(a.Events), a.ChainHash,
		be64(a.At.UnixMicro()), prevMAC)
}

func be64(v int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(v))
	return b[:]
}

const anchorColumns = `n, last_seq, events, chain_hash, at, key_id, mac`

func scanAnchor(row pgx.Row) (*Anchor, error) {
	var a Anchor
	if err := row.Scan(&a.N, &a.LastSeq, &a.Events, &a.ChainHash, &a.At, &a.KeyID, &a.MAC); err != nil {
		return nil, err
	}
	return &a, nil
}

// ErrAnchorBusy says the anchor could not wait for audit inserts in flight
// to finish; the next run anchors what this one would have.
var ErrAnchorBusy = errors.New("audit anchor: audit inserts kept the table busy; trying again next time")

// AnchorAudit records an anchor over every audit event committed so far,
// and returns it; nil when no event arrived since the last anchor.
func (db *DB) AnchorAudit(ctx context.Context, keys *keyring.Keyring, now time.Time) (*Anchor, error) {
	// First the horizon: the highest seq below which nothing is still in
	// flight. This blocks audit inserts while it waits for the ones in
	// flight, so it waits only briefly and commits at once.
	var horizon int64
	err := db.InTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '2s'"); err != nil {
			return err
		}
		return tx.QueryRow(ctx, "SELECT audit_anchor_horizon()").Scan(&horizon)
	})
	if isPgCode(err, "55P03") { // lock_not_available
		return nil, ErrAnchorBusy
	}
	if err != nil {
		return nil, fmt.Errorf("audit anchor: horizon: %w", err)
	}

	var made *Anchor
	err = db.InTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(anchorLock)); err != nil {
			return err
		}
		last, err := scanAnchor(tx.QueryRow(ctx, `SELECT `+anchorColumns+` FROM audit_anchors ORDER BY n DESC LIMIT 1`))
		if errors.Is(err, pgx.ErrNoRows) {
			last, err = &Anchor{ChainHash: make([]byte, sha256.Size)}, nil
		}
		if err != nil {
			return fmt.Errorf("last anchor: %w", err)
		}
		if horizon <= last.LastSeq {
			return nil
		}
		a := &Anchor{N: last.N + 1, LastSeq: last.LastSeq, Events: last.Events, ChainHash: last.ChainHash,
			At: now.UTC().Truncate(time.Microsecond), KeyID: keys.Primary()}
		rows, err := tx.Query(ctx, `SELECT seq, hash FROM audit_events WHERE seq > $1 AND seq <= $2 ORDER BY seq`, last.LastSeq, horizon)
		if err != nil {
			return err
		}
		var seq int64
		var hash []byte
		_, err = pgx.ForEachRow(rows, []any{&seq, &hash}, func() error {
			a.ChainHash = foldChain(a.ChainHash, seq, hash)
			a.LastSeq = seq
			a.Events++
			return nil
		})
		if err != nil {
			return fmt.Errorf("fold events: %w", err)
		}
		if a.Events == last.Events {
			return nil // only rolled-back seqs since the last anchor
		}
		var prevMAC []byte
		if last.N > 0 {
			prevMAC = last.MAC
		}
		if a.MAC, err = a.mac(keys, a.KeyID, prevMAC); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO audit_anchors (`+anchorColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			a.N, a.LastSeq, a.Events, a.ChainHash, a.At, a.KeyID, a.MAC); err != nil {
			return err
		}
		made = a
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit anchor: %w", err)
	}
	return made, nil
}

// Kinds of audit problems.
const (
	AuditEdited         = "edited"          // an event's contents no longer match its hash, or its link was rewritten
	AuditDeleted        = "deleted"         // events (or anchors) are missing
	AuditReordered      = "reordered"       // events' order was changed
	AuditInserted       = "inserted"        // events appeared where an anchor counted fewer
	AuditAnchorMismatch = "anchor mismatch" // an anchor does not match the events or its MAC
)

// AuditProblem is one broken link.
type AuditProblem struct {
	Kind      string
	RequestID string // "" when the problem is not one request's
	Seq       int64  // where in the global order it breaks; 0 when unknown
	EventID   int64  // 0 when no event is left to name
	Anchor    int64  // the anchor that showed it, if any
	Detail    string
}

func (p AuditProblem) String() string {
	s := ""
	if p.RequestID != "" {
		s += "request " + p.RequestID + ", "
	}
	if p.Seq > 0 {
		s += fmt.Sprintf("seq %d, ", p.Seq)
	}
	if p.EventID > 0 {
		s += fmt.Sprintf("event %d, ", p.EventID)
	}
	if p.Anchor > 0 {
		s += fmt.Sprintf("anchor #%d, ", p.Anchor)
	}
	if s == "" {
		s = "audit trail, "
	}
	return s[:len(s)-2] + ": " + p.Kind + ": " + p.Detail
}

// AuditReport is what VerifyAudit found.
type AuditReport struct {
	Events     int64 // events walked
	Requests   int64 // requests with at least one event
	Anchors    int64
	LastAnchor *Anchor
	Unanchored int64 // events after the last anchor: only their chains protect them
	// Problems are the first MaxAuditProblems problems in global order
	// (requests left with no event at all first); Problems[0] is the first
	// broken link.
	Problems []AuditProblem
	Counts   map[string]int64 // problems by kind, all of them
}

// OK reports whether no problem was found.
func (r *AuditReport) OK() bool { return len(r.Problems) == 0 }

// MaxAuditProblems bounds the problems a report keeps: a wholesale rewrite
// would otherwise hold one per event.
const MaxAuditProblems = 20

func (r *AuditReport) add(p AuditProblem) {
	r.Counts[p.Kind]++
	r.Problems = append(r.Problems, p)
	if len(r.Problems) >= 4*MaxAuditProblems {
		r.trim()
	}
}

func (r *AuditReport) trim() {
	sort.SliceStable(r.Problems, func(i, j int) bool { return r.Problems[i].Seq < r.Problems[j].Seq })
	if len(r.Problems) > MaxAuditProblems {
		r.Problems = r.Problems[:MaxAuditProblems]
	}
}

// VerifyAudit walks every request's chain and every anchor in one
// consistent snapshot, streaming (memory does not grow with the trail), and
// reports what is broken. keys checks the anchors' MACs.
func (db *DB) VerifyAudit(ctx context.Context, keys *keyring.Keyring) (*AuditReport, error) {
	r := &AuditReport{Counts: map[string]int64{}}
	err := pgx.BeginTxFunc(ctx, db.Pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := verifyChains(ctx, tx, r); err != nil {
			return fmt.Errorf("chains: %w", err)
		}
		if err := verifyEmptyRequests(ctx, tx, r); err != nil {
			return fmt.Errorf("requests: %w", err)
		}
		if err := verifyAnchors(ctx, tx, keys, r); err != nil {
			return fmt.Errorf("anchors: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("verify audit: %w", err)
	}
	r.trim()
	return r, nil
}

// verifyChains walks the events request by request, in chain order.
func verifyChains(ctx context.Context, tx pgx.Tx, r *AuditReport) error {
	rows, err := tx.Query(ctx, `SELECT `+chainColumns+` FROM audit_events ORDER BY request_id, request_seq`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var (
		buf     bytes.Buffer
		cur     chainEvent // the event being checked
		last    chainEvent // the one before it in the same request
		hasLast bool
		// pending is an event whose hash does not match, held for one
		// row: if the next event of its request has a lower seq, the two
		// were reordered (their seqs swapped) rather than edited.
		pending    chainEvent
		hasPending bool
	)
	flush := func() {
		if hasPending {
			r.add(AuditProblem{Kind: AuditEdited, RequestID: uuidString(pending.RequestID), Seq: pending.Seq, EventID: pending.ID,
				Detail: fmt.Sprintf("event #%d of the request (%s) does not match its hash: it was changed after it was written", pending.RequestSeq, pending.Action)})
			hasPending = false
		}
	}
	for rows.Next() {
		cur = chainEvent{}
		if err := scanChainEvent(rows, &cur); err != nil {
			return err
		}
		r.Events++
		if !hasLast || cur.RequestID != last.RequestID {
			flush()
			hasLast = false
			r.Requests++
		}
		req := uuidString(cur.RequestID)
		hashOK := bytes.Equal(cur.hash(&buf), cur.Hash)
		reordered := false
		if hasPending {
			if cur.Seq < pending.Seq {
				r.add(AuditProblem{Kind: AuditReordered, RequestID: req, Seq: cur.Seq, EventID: cur.ID,
					Detail: fmt.Sprintf("event #%d of the request (seq %d) now comes before event #%d (event %d, seq %d): their order was changed",
						cur.RequestSeq, cur.Seq, pending.RequestSeq, pending.ID, pending.Seq)})
				hasPending, reordered = false, true
			} else {
				flush()
			}
		}
		want := int32(1)
		if hasLast {
			want = last.RequestSeq + 1
		}
		switch {
		case reordered:
		case cur.RequestSeq > want:
			missing := fmt.Sprintf("event #%d is", want)
			if cur.RequestSeq-want > 1 {
				missing = fmt.Sprintf("events #%d–#%d are", want, cur.RequestSeq-1)
			}
			r.add(AuditProblem{Kind: AuditDeleted, RequestID: req, Seq: cur.Seq, EventID: cur.ID,
				Detail: fmt.Sprintf("%s missing before event #%d (%s)", missing, cur.RequestSeq, cur.Action)})
		case cur.RequestSeq < want:
			r.add(AuditProblem{Kind: AuditEdited, RequestID: req, Seq: cur.Seq, EventID: cur.ID,
				Detail: fmt.Sprintf("event #%d appears twice in the request's chain", cur.RequestSeq)})
		case hasLast && !bytes.Equal(cur.PrevHash, last.Hash), !hasLast && cur.PrevHash != nil:
			r.add(AuditProblem{Kind: AuditEdited, RequestID: req, Seq: cur.Seq, EventID: cur.ID,
				Detail: fmt.Sprintf("event #%d (%s) does not link to the event before it: its link was rewritten", cur.RequestSeq, cur.Action)})
		case hasLast && cur.Seq <= last.Seq:
			r.add(AuditProblem{Kind: AuditReordered, RequestID: req, Seq: cur.Seq, EventID: cur.ID,
				Detail: fmt.Sprintf("event #%d (seq %d) comes before event #%d (seq %d) in the global order", cur.RequestSeq, cur.Seq, last.RequestSeq, last.Seq)})
		}
		if !hashOK && !reordered {
			pending, hasPending = cur, true
		}
		last, hasLast = cur, true
	}
	if err := rows.Err(); err != nil {
		return err
	}
	flush()
	return nil
}

// verifyEmptyRequests finds requests left without a single event: every
// request is audited when it is received, so its whole trail was removed.
func verifyEmptyRequests(ctx context.Context, tx pgx.Tx, r *AuditReport) error {
	rows, err := tx.Query(ctx, `SELECT r.id FROM requests r
		WHERE NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.request_id = r.id) ORDER BY r.id`)
	if err != nil {
		return err
	}
	var id [16]byte
	_, err = pgx.ForEachRow(rows, []any{&id}, func() error {
		r.add(AuditProblem{Kind: AuditDeleted, RequestID: uuidString(id),
			Detail: "the request has no audit events at all: its whole trail was deleted"})
		return nil
	})
	return err
}

// verifyAnchors folds the events in seq order between consecutive anchors
// and compares each anchor. After a mismatch it carries on from the
// anchor's own values, so each broken range is reported on its own.
func verifyAnchors(ctx context.Context, tx pgx.Tx, keys *keyring.Keyring, r *AuditReport) error {
	prev := &Anchor{ChainHash: make([]byte, sha256.Size)}
	var prevMAC []byte
	for {
		// A page at a time: the events of each anchor's range are read
		// with their own query on the same connection.
		rows, err := tx.Query(ctx, `SELECT `+anchorColumns+` FROM audit_anchors WHERE n > $1 ORDER BY n LIMIT 500`, prev.N)
		if err != nil {
			return err
		}
		page, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Anchor, error) { return scanAnchor(row) })
		if err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		for _, a := range page {
			r.Anchors++
			if a.N != prev.N+1 {
				r.add(AuditProblem{Kind: AuditDeleted, Anchor: a.N, Seq: a.LastSeq,
					Detail: fmt.Sprintf("anchors #%d–#%d are missing", prev.N+1, a.N-1)})
			}
			switch want, err := a.mac(keys, a.KeyID, prevMAC); {
			case errors.Is(err, keyring.ErrUnknownKey):
				r.add(AuditProblem{Kind: AuditAnchorMismatch, Anchor: a.N, Seq: a.LastSeq,
					Detail: fmt.Sprintf("made with key %q, which is not in %s", a.KeyID, keyring.EnvVar)})
			case err != nil:
				return err
			case !keyring.Equal(want, a.MAC):
				r.add(AuditProblem{Kind: AuditAnchorMismatch, Anchor: a.N, Seq: a.LastSeq,
					Detail: "its MAC does not match: the anchor was forged or edited, or the one before it removed"})
			}
			chain, events, err := foldRange(ctx, tx, prev.ChainHash, prev.LastSeq, a.LastSeq)
			if err != nil {
				return err
			}
			events += prev.Events
			switch {
			case events < a.Events:
				r.add(AuditProblem{Kind: AuditDeleted, Anchor: a.N, Seq: a.LastSeq,
					Detail: fmt.Sprintf("%d of the %d events anchored with seq %d–%d are gone", a.Events-events, a.Events-prev.Events, prev.LastSeq+1, a.LastSeq)})
			case events > a.Events:
				r.add(AuditProblem{Kind: AuditInserted, Anchor: a.N, Seq: a.LastSeq,
					Detail: fmt.Sprintf("%d events with seq %d–%d were added after they were anchored", events-a.Events, prev.LastSeq+1, a.LastSeq)})
			case !bytes.Equal(chain, a.ChainHash):
				r.add(AuditProblem{Kind: AuditAnchorMismatch, Anchor: a.N, Seq: a.LastSeq,
					Detail: fmt.Sprintf("the events with seq %d–%d do not hash to the anchor: one was edited, replaced or reordered", prev.LastSeq+1, a.LastSeq)})
			}
			prev, prevMAC = a, a.MAC
		}
	}
	if prev.N > 0 {
		r.LastAnchor = prev
	}
	return tx.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE seq > $1`, prev.LastSeq).Scan(&r.Unanchored)
}

func foldRange(ctx context.Context, tx pgx.Tx, chain []byte, after, upTo int64) ([]byte, int64, error) {
	rows, err := tx.Query(ctx, `SELECT seq, hash FROM audit_events WHERE seq > $1 AND seq <= $2 ORDER BY seq`, after, upTo)
	if err != nil {
		return nil, 0, err
	}
	var (
		seq    int64
		hash   []byte
		events int64
	)
	_, err = pgx.ForEachRow(rows, []any{&seq, &hash}, func() error {
		chain = foldChain(chain, seq, hash)
		events++
		return nil
	})
	return chain, events, err
}

func uuidString(b [16]byte) string { return uuid.UUID(b).String() }
