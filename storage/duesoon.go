package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The stored due-soon instants (migration 0028). Every open, unpaused
// request with a deadline carries due_soon_at, the instant it becomes due
// soon at the fraction in sla_due_soon, kept by a trigger on every write;
// the on-track queue is read in that order from an index. The fraction is
// configuration (sla.due_soon_at), so each process stores its own at start
// and a change recomputes the open requests in the background.
//
// Lists use the stored instants only while they are all of the caller's
// own fraction (DueSoonReady); otherwise they compute each request's
// instant from its clock, exactly and slowly. So whatever the state of a
// recompute, or of a rolling deploy in which replicas disagree about the
// fraction, every replica's lists place each request in the band its own
// configuration says; only the speed of the on-track list depends on it.
// Which fraction is stored follows the last process to start.

// SetDueSoonFraction stores fraction as the one due_soon_at is computed
// with, for the trigger and for RecomputeDueSoon, when it is not stored
// already; it returns the fraction stored before (0 if none) and whether
// it changed. The open requests' instants are stale until RecomputeDueSoon
// has run, and lists compute them meanwhile.
func SetDueSoonFraction(ctx context.Context, q Querier, fraction float64) (previous float64, changed bool, err error) {
	if !(fraction > 0 && fraction < 1) {
		return 0, false, fmt.Errorf("set due-soon fraction: %v is not between 0 and 1", fraction)
	}
	var prev *float64
	err = q.QueryRow(ctx, `WITH old AS (SELECT fraction FROM sla_due_soon FOR UPDATE)
		UPDATE sla_due_soon SET fraction = $1, changed_at = now(), recomputed_to = NULL, recomputed = false
		FROM old WHERE sla_due_soon.fraction IS DISTINCT FROM $1
		RETURNING old.fraction`, fraction).Scan(&prev)
	if errors.Is(err, pgx.ErrNoRows) {
		return fraction, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("set due-soon fraction: %w", err)
	}
	if prev != nil {
		previous = *prev
	}
	return previous, true, nil
}

// DueSoonReady reports whether every open request's stored due_soon_at is
// of fraction, so that a list may read the stored instants instead of
// computing them.
func DueSoonReady(ctx context.Context, q Querier, fraction float64) (bool, error) {
	var ready bool
	err := q.QueryRow(ctx, `SELECT coalesce(fraction = $1 AND recomputed, false) FROM sla_due_soon`, fraction).Scan(&ready)
	if err != nil {
		return false, fmt.Errorf("due-soon instants: %w", err)
	}
	return ready, nil
}

// RecomputeOptions tune RecomputeDueSoon.
type RecomputeOptions struct {
	// BatchSize is how many open requests one transaction recomputes
	// (default 2,000): their row locks are held for that transaction
	// only, so a staff action on one of them waits for one batch at most.
	BatchSize int
	// WaitOlder bounds the wait, before a pass, for transactions older
	// than the fraction's change (default one minute); see
	// RecomputeDueSoon.
	WaitOlder time.Duration
	// Batch, if not nil, is called after each committed batch with the
	// number of requests recomputed so far in this call.
	Batch func(done int)
}

// RecomputeResult says what RecomputeDueSoon did.
type RecomputeResult struct {
	Fraction float64 // the stored fraction the instants are now of (0: none stored)
	Visited  int     // open requests read
	Changed  int     // open requests whose instant it rewrote
	// Waited is false when transactions older than the fraction's change
	// were still open when WaitOlder ran out: a request one of them
	// writes later may keep the old fraction's instant until its deadline
	// or clock next moves.
	Waited bool
}

// RecomputeDueSoon brings every open request's due_soon_at in line with the
// stored fraction, in batches of short transactions in id order, recording
// in sla_due_soon how far it got: a pass stopped midway (the process
// killed, ctx cancelled) resumes there on the next call, and several
// processes calling it at once share one pass, batch by batch (each batch
// locks the sla_due_soon row). A change of the fraction while it runs
// starts the pass over with the new one. Once it has passed every open
// request it marks the instants recomputed, and lists read them again.
//
// The trigger reads the fraction when it computes an instant, so a
// transaction that started before the change may still write an instant
// of the old one, and commit after the pass went by. Before a pass starts
// it therefore waits, up to opts.WaitOlder, until no transaction of the
// service's role that started before then is still open (read from
// pg_stat_activity): every row such a transaction wrote is then visible to
// the pass.
func RecomputeDueSoon(ctx context.Context, pool *pgxpool.Pool, opts RecomputeOptions) (RecomputeResult, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 2000
	}
	if opts.WaitOlder <= 0 {
		opts.WaitOlder = time.Minute
	}
	res := RecomputeResult{Waited: true}
	var waitedFor time.Time // the change a wait was made for
	for {
		var (
			done     bool
			mustWait time.Time
		)
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			var (
				fraction  *float64
				changedAt *time.Time
				to        *string
				recomp    bool
			)
			if err := tx.QueryRow(ctx, `SELECT fraction, changed_at, recomputed_to::text, recomputed FROM sla_due_soon FOR UPDATE`).
				Scan(&fraction, &changedAt, &to, &recomp); err != nil {
				return err
			}
			if fraction == nil || recomp {
				if fraction != nil {
					res.Fraction = *fraction
				}
				done = true
				return nil
			}
			res.Fraction = *fraction
			if to == nil && changedAt != nil && !changedAt.Equal(waitedFor) {
				mustWait = *changedAt
				return nil
			}
			from := "00000000-0000-0000-0000-000000000000"
			if to != nil {
				from = *to
			}
			var last *string
			var visited, changed int
			err := tx.QueryRow(ctx, `WITH batch AS (
					SELECT id FROM requests WHERE completed_at IS NULL AND id > $1::uuid ORDER BY id LIMIT $2),
				fixed AS (
					UPDATE requests r SET due_soon_at = datarights_due_soon_at(r.clock_started_at, r.due_at, $3)
					FROM batch WHERE r.id = batch.id AND r.completed_at IS NULL AND r.status <> 'paused' AND r.due_at IS NOT NULL
						AND r.due_soon_at IS DISTINCT FROM datarights_due_soon_at(r.clock_started_at, r.due_at, $3)
					RETURNING 1)
				SELECT (SELECT b.id FROM batch b ORDER BY b.id DESC LIMIT 1)::text, (SELECT count(*) FROM batch), (SELECT count(*) FROM fixed)`,
				from, opts.BatchSize, *fraction).Scan(&last, &visited, &changed)
			if err != nil {
				return err
			}
			res.Visited += visited
			res.Changed += changed
			if last == nil {
				_, err = tx.Exec(ctx, `UPDATE sla_due_soon SET recomputed = true, recomputed_to = NULL`)
				done = true
				return err
			}
			_, err = tx.Exec(ctx, `UPDATE sla_due_soon SET recomputed_to = $1`, *last)
			return err
		})
		if err != nil {
			return res, fmt.Errorf("recompute due-soon instants: %w", err)
		}
		if done {
			return res, nil
		}
		if !mustWait.IsZero() {
			waited, err := waitForOlderTransactions(ctx, pool, opts.WaitOlder)
			if err != nil {
				return res, fmt.Errorf("recompute due-soon instants: %w", err)
			}
			res.Waited = res.Waited && waited
			waitedFor = mustWait
			continue
		}
		if opts.Batch != nil {
			opts.Batch(res.Visited)
		}
	}
}

// waitForOlderTransactions waits until no other session of this database
// and role has a transaction open that started before the call, up to
// limit; it reports whether that came about. Sessions of other roles are
// not visible (their xact_start reads NULL): the service writes as one.
func waitForOlderTransactions(ctx context.Context, pool *pgxpool.Pool, limit time.Duration) (bool, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Release()
	var since time.Time
	if err := conn.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&since); err != nil {
		return false, err
	}
	deadline := time.Now().Add(limit)
	poll := 10 * time.Millisecond
	for {
		var open int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND backend_type = 'client backend'
			  AND pid <> pg_backend_pid() AND xact_start < $1`, since).Scan(&open)
		if err != nil {
			return false, fmt.Errorf("wait for older transactions: %w", err)
		}
		if open == 0 {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return false, ctx.Err()
		case <-t.C:
		}
		poll = min(2*poll, 200*time.Millisecond)
	}
}
