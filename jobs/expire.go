package jobs

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// ExpireArgs expires a self-service request that was not verified in time.
// It is scheduled when the request is received.
type ExpireArgs struct {
	RequestID string `json:"request_id"`
}

func (ExpireArgs) Kind() string { return "expire_unverified" }

// expireWorker closes a self-service request whose code was never entered:
// it becomes expired, a terminal status with no deadline, and what it held
// about a person (who it named, where to write) is erased. Anyone can file a
// request naming anyone; one that nobody proved is theirs must not linger,
// page staff about a deadline, or keep an address on file.
type expireWorker struct {
	river.WorkerDefaults[ExpireArgs]
	p *Pipeline
}

func (w *expireWorker) Work(ctx context.Context, job *river.Job[ExpireArgs]) error {
	wait, err := w.p.expireUnverified(ctx, job.Args.RequestID, func(tx pgx.Tx) error {
		_, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job)
		return err
	})
	if err != nil {
		return err
	}
	if wait > 0 {
		return river.JobSnooze(wait)
	}
	return nil
}

// ExpireUnverified expires the self-service request if it is still
// unverified and its time has passed; otherwise it returns how long until
// it has. The expiry job does this; tests call it on an injected clock.
func (p *Pipeline) ExpireUnverified(ctx context.Context, requestID string) (time.Duration, error) {
	return p.expireUnverified(ctx, requestID, nil)
}

func (p *Pipeline) expireUnverified(ctx context.Context, requestID string, complete func(pgx.Tx) error) (time.Duration, error) {
	r, err := storage.GetRequest(ctx, p.db.Pool, requestID)
	if err != nil {
		return 0, err
	}
	if r.Status == rights.StatusAwaitingVerification {
		// The code may have gone out late (the mail server was down): the
		// requester always has its whole life plus the grace.
		due := p.expiresAt(r.ReceivedAt)
		code, err := storage.GetCode(ctx, p.db.Pool, r.ID)
		if err != nil {
			return 0, err
		}
		if code != nil && code.SentAt != nil {
			if later := p.expiresAt(*code.SentAt); later.After(due) {
				due = later
			}
		}
		if now := p.now(); now.Before(due) {
			return due.Sub(now), nil
		}
	}
	if r.Status == rights.StatusAwaitingContact {
		// Each code has its whole life plus the grace from when it went.
		contacts, err := storage.ListContacts(ctx, p.db.Pool, r.ID, false)
		if err != nil {
			return 0, err
		}
		due := p.expiresAt(r.UpdatedAt)
		for _, c := range contacts {
			if c.SentAt != nil && p.expiresAt(*c.SentAt).After(due) {
				due = p.expiresAt(*c.SentAt)
			}
		}
		if now := p.now(); now.Before(due) {
			return due.Sub(now), nil
		}
	}
	return 0, p.db.InTx(ctx, func(tx pgx.Tx) error {
		if complete != nil {
			if err := complete(tx); err != nil {
				return err
			}
		}
		r, err := storage.LockRequest(ctx, tx, requestID)
		if err != nil {
			return err
		}
		reason := "not verified in time"
		switch r.Status {
		case rights.StatusAwaitingVerification:
		case rights.StatusAwaitingContact:
			reason = "an address was not confirmed in time"
		default:
			return nil // verified, refused or expired already
		}
		now := p.now().UTC()
		if err := p.transition(ctx, tx, r, rights.StatusExpired, now, storage.Change{
			Actor: rights.ActorSystem, Action: "request.expired",
			Detail: map[string]any{"reason": reason, "purged": []string{"subject", "delivery_email", "corrections", "details", "verification_code"}},
		}); err != nil {
			return err
		}
		return storage.PurgeUnverified(ctx, tx, r.ID)
	})
}

// LimitsSweepArgs prunes throttle events no limit looks back to, and the
// nonces of signed callbacks whose window has ended.
type LimitsSweepArgs struct{}

func (LimitsSweepArgs) Kind() string { return "limits_sweep" }

type limitsSweepWorker struct {
	river.WorkerDefaults[LimitsSweepArgs]
	p *Pipeline
}

// limitsHorizon is the longest window any limit counts in, with a margin.
const limitsHorizon = 48 * time.Hour

// nonceMargin keeps a nonce a little past its window: a replica whose clock
// runs behind this one's still accepts the timestamp that long.
const nonceMargin = 5 * time.Minute

func (w *limitsSweepWorker) Work(ctx context.Context, job *river.Job[LimitsSweepArgs]) error {
	before := w.p.now().Add(-limitsHorizon)
	for {
		n, err := storage.PruneThrottle(ctx, w.p.db.Pool, before, 5000)
		if err != nil {
			return err
		}
		if n < 5000 {
			break
		}
	}
	_, err := w.p.PruneNonces(ctx)
	return err
}

// PruneNonces deletes the nonces of signed callbacks whose window has ended
// (with a margin), and returns how many it deleted. The windows are on the
// wall clock the signatures were checked on, not the pipeline's clock,
// which tests move.
func (p *Pipeline) PruneNonces(ctx context.Context) (int64, error) {
	before := time.Now().Add(-nonceMargin)
	var total int64
	for {
		n, err := storage.PruneNonces(ctx, p.db.Pool, before, 5000)
		total += n
		if err != nil || n < 5000 {
			return total, err
		}
	}
}
