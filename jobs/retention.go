package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// Retention: a delete or cancellation keeps restricted the rows a legal
// retention period still covers, and records a hold for each such dataset
// with the end of its period. The retention sweep comes back when a hold's
// period has ended and erases the rows as the table says (delete or
// anonymize), again through the store's connector; rows whose own periods
// run longer stay restricted and the hold moves to the next end.

// RetentionSweepArgs erases restricted data whose retention period has
// ended. It runs periodically on the leader.
type RetentionSweepArgs struct{}

func (RetentionSweepArgs) Kind() string { return "retention_sweep" }

// RetentionResult says what one retention sweep did.
type RetentionResult struct {
	Released int // holds whose rows are all erased now
	Extended int // holds with rows whose periods run on
	Failed   int // holds whose store could not be reached; the next sweep tries again
}

// maxHoldsPerSweep bounds one sweep; the next takes the rest.
const maxHoldsPerSweep = 500

// SweepRetention erases, at the pipeline's clock, the restricted data of
// every hold whose period has ended. Each hold is one transaction: locked
// (another sweep skips it), erased in its store, and its outcome recorded
// with an audit event on its request. A crash in between erases again on the
// next sweep, which finds those rows gone. A store that fails is recorded on
// the hold and tried again by the next sweep.
func (p *Pipeline) SweepRetention(ctx context.Context) (RetentionResult, error) {
	var res RetentionResult
	now := p.now().UTC()
	for range maxHoldsPerSweep {
		var found bool
		err := p.db.InTx(ctx, func(tx pgx.Tx) error {
			holds, err := storage.DueHolds(ctx, tx, now, now, 1)
			if err != nil || len(holds) == 0 {
				return err
			}
			found = true
			return p.releaseHold(ctx, tx, holds[0], now, &res)
		})
		if err != nil {
			return res, err
		}
		if !found {
			break
		}
	}
	return res, nil
}

func (p *Pipeline) releaseHold(ctx context.Context, tx pgx.Tx, h storage.Hold, now time.Time, res *RetentionResult) error {
	r, err := storage.GetRequest(ctx, tx, h.RequestID)
	if err != nil {
		return err
	}
	h.CheckedAt = &now
	report, eraseErr := p.eraseHold(ctx, r, h, now)
	var ds rights.DatasetReport
	if eraseErr == nil {
		ds, eraseErr = holdDataset(report, h)
	}
	if eraseErr != nil {
		res.Failed++
		h.Attempts++
		h.LastError = safeError(eraseErr)
		p.logger.WarnContext(ctx, "retention release failed", "request_id", h.RequestID, "store", h.Store,
			"dataset", h.Dataset, "attempt", h.Attempts, "err", h.LastError)
		return storage.SaveHold(ctx, tx, h)
	}
	h.Attempts, h.LastError = 0, ""
	detail := map[string]any{"store": h.Store, "dataset": h.Dataset, "retention": h.Retention,
		"deleted": ds.Deleted, "anonymized": ds.Anonymized, "restricted": ds.Restricted}
	action := "retention.released"
	if ds.Restricted > 0 && ds.RestrictedUntil != nil {
		h.Rows, h.Until = ds.Restricted, ds.RestrictedUntil
		detail["until"] = ds.RestrictedUntil
		action = "retention.extended"
		res.Extended++
	} else {
		h.Rows, h.ReleasedAt = 0, &now
		res.Released++
	}
	if err := storage.SaveHold(ctx, tx, h); err != nil {
		return err
	}
	p.metrics.RetentionReleased(h.Store, action == "retention.released")
	return storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: now, Actor: rights.ActorSystem, Action: action, Detail: detail})
}

// eraseHold erases the hold's dataset in its store, as of now.
func (p *Pipeline) eraseHold(ctx context.Context, r *rights.Request, h storage.Hold, now time.Time) (rights.StoreReport, error) {
	conn, err := p.connector(ctx, h.Store)
	if err != nil {
		return rights.StoreReport{}, err
	}
	eraser, ok := conn.(rights.Eraser)
	if !ok {
		return rights.StoreReport{}, fmt.Errorf("store %s cannot erase by retention", h.Store)
	}
	return eraser.Erase(ctx, r.Subject.All(), rights.EraseOptions{
		Now: now, EndedAt: h.EndedAt, Location: p.location(r.Product), Tables: []string{h.Dataset},
	})
}

// holdDataset returns the hold's dataset in an erasure's report. A subject
// no longer found has nothing left to erase.
func holdDataset(report rights.StoreReport, h storage.Hold) (rights.DatasetReport, error) {
	if !report.Resolved {
		return rights.DatasetReport{Name: h.Dataset}, nil
	}
	for _, d := range report.Datasets {
		if d.Name == h.Dataset {
			return d, nil
		}
	}
	return rights.DatasetReport{}, errors.New("store " + h.Store + " no longer has table " + h.Dataset + " configured")
}

// recordHolds records, in the transaction that completes an erasure task,
// a hold for every dataset the task kept restricted.
func (p *Pipeline) recordHolds(ctx context.Context, tx pgx.Tx, r *rights.Request, t *rights.Task, report rights.StoreReport, now time.Time) error {
	for _, d := range report.Restricted() {
		if err := storage.PutHold(ctx, tx, storage.Hold{RequestID: r.ID, Store: t.Store, Dataset: d.Name,
			Retention: d.Retention, Rows: d.Restricted, EndedAt: relationshipEnded(r), Until: d.RestrictedUntil, CreatedAt: now}); err != nil {
			return err
		}
	}
	return nil
}

// relationshipEnded is when a delete or cancellation ends the relationship:
// when the requester's identity was verified (the request took effect).
// Every attempt of every task of the request uses the same time, so a
// retried task computes the same periods.
func relationshipEnded(r *rights.Request) time.Time {
	if r.VerifiedAt != nil {
		return r.VerifiedAt.UTC()
	}
	return r.ReceivedAt.UTC()
}

// location is where the product's days end.
func (p *Pipeline) location(product string) *time.Location {
	if policy, ok := p.policies[product]; ok && policy.Location != nil {
		return policy.Location
	}
	return shanghai
}

// retentionSweepWorker runs SweepRetention periodically.
type retentionSweepWorker struct {
	river.WorkerDefaults[RetentionSweepArgs]
	p *Pipeline
}

func (w *retentionSweepWorker) Work(ctx context.Context, job *river.Job[RetentionSweepArgs]) error {
	res, err := w.p.SweepRetention(ctx)
	if res.Released+res.Extended+res.Failed > 0 {
		w.p.logger.InfoContext(ctx, "retention sweep", "released", res.Released, "extended", res.Extended, "failed", res.Failed)
	}
	return err
}
