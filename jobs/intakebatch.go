package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/datarights/datarights/storage"
)

// Staff tickets are committed in groups ("group commit"): a ticket that
// arrives while another group's transaction is running waits for the next
// group instead of running a transaction of its own. Each ticket is still
// stored with its audit event and its first job in one transaction, and
// still answered only after that transaction committed; what the tickets
// of one group share is the transaction's begin, its round trips and its
// commit (the WAL flush), which cost as much as the rows themselves on a
// small machine. Nobody waits for a group to fill: a ticket alone is
// committed at once, so one caller sees the latency it always saw, and
// groups grow only as fast as tickets arrive while a commit is running.
//
// A group that fails is not retried as a group: each of its tickets is
// then committed alone, so one ticket's problem is reported to that ticket
// only. A group whose commit failed is not retried at all: it may have
// committed, and a ticket without an idempotency key must not be stored
// twice; its callers get the error, as a single ticket's caller did.

// maxIntakeGroup bounds a group: large enough to absorb a burst of the API's
// connections, small enough that one group's transaction stays short.
const maxIntakeGroup = 64

// Groups are committed one at a time: tickets that arrive while a group
// commits make the next group, so the busier intake is, the larger the
// groups and the fewer the commits per ticket. Two committers gave groups
// of 2.5 tickets at 8 callers and cost 1.5–1.6 ms per ticket where one
// committer cost 0.9–1.1 ms (BenchmarkIntake, side by side on the loaded
// 2-core machine).
//
// One group that stalls (waiting for a lock: a ticket whose idempotency key
// another transaction is inserting; a slow disk) would hold up every
// ticket behind it, so a group still committing after intakeStallAfter
// lets another committer take the tickets waiting behind it, up to
// maxIntakeCommitters at once.
const (
	intakeStallAfter    = 50 * time.Millisecond
	maxIntakeCommitters = 4
)

type intakeGroup struct {
	mu      sync.Mutex
	pending []*intakeItem
	running int
	// lastStart is when the newest running group began committing: when
	// it is older than intakeStallAfter, so is every running group.
	lastStart time.Time
	// lastNotify is when a group last carried River's insert
	// notification (see notifyDue).
	lastNotify time.Time
}

// notifyDue reports whether the group about to be committed should wake
// the workers, and if so counts it as done: at most once every River
// FetchCooldown, as River's own insert does. A job that goes without
// waits for a notification of a later group, or for the workers' poll.
func (g *intakeGroup) notifyDue(now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Sub(g.lastNotify) < river.FetchCooldownDefault {
		return false
	}
	g.lastNotify = now
	return true
}

// needCommitter reports whether a ticket now pending should start a
// committer of its own: when none runs, or when every running group has
// stalled. Called with g.mu held.
func (g *intakeGroup) needCommitter(now time.Time) bool {
	if len(g.pending) == 0 {
		return false
	}
	return g.running == 0 || (g.running < maxIntakeCommitters && now.Sub(g.lastStart) >= intakeStallAfter)
}

type intakeItem struct {
	received storage.Received
	done     chan error // buffered: the committer never waits for the caller
}

// commitReceived stores r with its first event and its first job, grouped
// with other tickets arriving at the same time, and returns when they are
// committed (or failed). On success it.received says whether the request
// was created or its idempotency key was taken.
func (p *Pipeline) commitReceived(ctx context.Context, it *intakeItem) error {
	it.done = make(chan error, 1)
	g := &p.intake
	g.mu.Lock()
	g.pending = append(g.pending, it)
	g.mu.Unlock()
	// The group outlives this caller's context: other callers' tickets
	// ride in it.
	p.startCommitter(context.WithoutCancel(ctx))
	select {
	case err := <-it.done:
		return err
	case <-ctx.Done():
		// The ticket may still be committed; the caller learns nothing
		// more than it would have from a cancelled transaction's commit.
		return ctx.Err()
	}
}

// commitGroups commits pending tickets, group after group, until none is
// pending.
func (p *Pipeline) commitGroups(ctx context.Context) {
	g := &p.intake
	for {
		g.mu.Lock()
		n := min(len(g.pending), maxIntakeGroup)
		if n == 0 {
			g.running--
			g.mu.Unlock()
			return
		}
		group := g.pending[:n:n]
		g.pending = append([]*intakeItem(nil), g.pending[n:]...)
		g.lastStart = time.Now()
		g.mu.Unlock()

		// Tickets already waiting when this group stalls arrive no
		// more: the timer starts their committer. It covers the retries
		// of a failed group's tickets too, which run one after another.
		stalled := time.AfterFunc(intakeStallAfter, func() { p.startCommitter(ctx) })
		err := p.commitGroup(ctx, group)
		var commitErr *groupCommitError
		switch {
		case err == nil || len(group) == 1 || errors.As(err, &commitErr):
			for _, it := range group {
				it.done <- err
			}
		default:
			// One of them failed the group: each alone, so the
			// failure is its own.
			for _, it := range group {
				it.done <- p.commitGroup(ctx, []*intakeItem{it})
			}
		}
		stalled.Stop()
	}
}

// startCommitter starts a committer for the pending tickets when
// needCommitter says one is needed: for a ticket just queued, and for the
// tickets waiting behind groups that have all been committing for
// intakeStallAfter.
func (p *Pipeline) startCommitter(ctx context.Context) {
	g := &p.intake
	g.mu.Lock()
	start := g.needCommitter(time.Now())
	if start {
		g.running++
	}
	g.mu.Unlock()
	if start {
		go p.commitGroups(ctx)
	}
}

// groupCommitError is a failure of the commit itself: the group may or may
// not have been committed, so it is not tried again.
type groupCommitError struct{ err error }

func (e *groupCommitError) Error() string { return e.err.Error() }
func (e *groupCommitError) Unwrap() error { return e.err }

func (p *Pipeline) commitGroup(ctx context.Context, group []*intakeItem) error {
	items := make([]*storage.Received, len(group))
	notify := p.intake.notifyDue(time.Now())
	for i, it := range group {
		items[i] = &it.received
		job, err := p.firstJob(it.received.Request.ID, notify && i == 0)
		if err != nil {
			return err
		}
		items[i].Job = job
	}
	// BEGIN goes out with the inserts, and so do the verify jobs: the
	// group's transaction is two round trips, this and its COMMIT.
	tx, err := storage.BeginReceived(ctx, p.db.Pool, items)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit, a no-op
	if err := tx.Commit(ctx); err != nil {
		return &groupCommitError{fmt.Errorf("intake commit: %w", err)}
	}
	return nil
}

// firstJob is a staff ticket's verify job as River would insert it with
// this pipeline's client. Not unique by args (every later step is): the
// request is new in its transaction, so no other job can name it, and
// River's unique key would cost a hash, an index entry and that index's
// upkeep at each of the job's states.
func (p *Pipeline) firstJob(requestID string, notify bool) (*storage.RiverJob, error) {
	args := VerifyArgs{RequestID: requestID}
	encoded, err := json.Marshal(args)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", args.Kind(), err)
	}
	return &storage.RiverJob{Kind: args.Kind(), Args: encoded, Queue: QueueDefault, Priority: river.PriorityDefault,
		MaxAttempts: cmp.Or(p.settings.Worker.MaxAttempts, river.MaxAttemptsDefault), Notify: notify}, nil
}

// riverClient is the client jobs are inserted with: the working job's own
// inside a worker, else the pipeline's.
func (p *Pipeline) riverClient(ctx context.Context) (*river.Client[pgx.Tx], error) {
	if c, err := river.ClientFromContextSafely[pgx.Tx](ctx); err == nil {
		return c, nil
	}
	if p.client == nil {
		return nil, errors.New("jobs: no River client (call NewClient first)")
	}
	return p.client, nil
}
