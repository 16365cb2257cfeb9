package jobs

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

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
	p := w.p
	r, err := storage.GetRequest(ctx, p.db.Pool, job.Args.RequestID)
	if err != nil {
		return err
	}
	if r.Status != rights.StatusAwaitingVerification {
		return nil // verified, refused or expired already
	}
	// The code may have gone out late (the mail server was down): the
	// requester always has its whole life plus the grace.
	due := p.expiresAt(r.ReceivedAt)
	code, err := storage.GetCode(ctx, p.db.Pool, r.ID)
	if err != nil {
		return err
	}
	if code != nil && code.SentAt != nil {
		if later := p.expiresAt(*code.SentAt); later.After(due) {
			due = later
		}
	}
	if now := p.now(); now.Before(due) {
		return river.JobSnooze(due.Sub(now))
	}
	return step(ctx, p, job, func(tx pgx.Tx) error {
		r, err := storage.LockRequest(ctx, tx, job.Args.RequestID)
		if err != nil {
			return err
		}
		if r.Status != rights.StatusAwaitingVerification {
			return nil
		}
		now := p.now().UTC()
		if err := storage.Transition(ctx, tx, r, rights.StatusExpired, now, storage.Change{
			Actor: rights.ActorSystem, Action: "request.expired",
			Detail: map[string]any{"reason": "not verified in time", "purged": []string{"subject", "delivery_email", "corrections", "verification_code"}},
		}); err != nil {
			return err
		}
		return storage.PurgeUnverified(ctx, tx, r.ID)
	})
}

// LimitsSweepArgs prunes throttle events no limit looks back to.
type LimitsSweepArgs struct{}

func (LimitsSweepArgs) Kind() string { return "limits_sweep" }

type limitsSweepWorker struct {
	river.WorkerDefaults[LimitsSweepArgs]
	p *Pipeline
}

// limitsHorizon is the longest window any limit counts in, with a margin.
const limitsHorizon = 48 * time.Hour

func (w *limitsSweepWorker) Work(ctx context.Context, job *river.Job[LimitsSweepArgs]) error {
	before := w.p.now().Add(-limitsHorizon)
	for {
		n, err := storage.PruneThrottle(ctx, w.p.db.Pool, before, 5000)
		if err != nil || n < 5000 {
			return err
		}
	}
}
