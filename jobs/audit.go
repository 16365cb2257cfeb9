package jobs

import (
	"context"
	"errors"

	"github.com/riverqueue/river"

	"github.com/datarights/datarights/storage"
)

// AuditAnchorArgs records an audit anchor (storage.AnchorAudit). It runs
// periodically on the leader, every audit.anchor_interval.
type AuditAnchorArgs struct{}

func (AuditAnchorArgs) Kind() string { return "audit_anchor" }

type auditAnchorWorker struct {
	river.WorkerDefaults[AuditAnchorArgs]
	p *Pipeline
}

func (w *auditAnchorWorker) Work(ctx context.Context, job *river.Job[AuditAnchorArgs]) error {
	a, err := w.p.db.AnchorAudit(ctx, w.p.keys, w.p.now())
	switch {
	case errors.Is(err, storage.ErrAnchorBusy):
		// Not a failure: the next run covers these events too.
		w.p.logger.WarnContext(ctx, "audit anchor skipped", "err", err)
		return nil
	case err != nil:
		return err
	case a != nil:
		w.p.logger.InfoContext(ctx, "audit anchored", "anchor", a.N, "last_seq", a.LastSeq, "events", a.Events)
	}
	return nil
}
