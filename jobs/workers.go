package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/exporters"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// Every worker follows one pattern: read what it needs, do its outside work
// (which must be safe to repeat), then in one transaction lock the request,
// check it is still in the state this step expects — if not, an earlier run
// already did the step and this run does nothing — and record the result,
// the audit event and the next job together with the job's completion.

// verifyWorker records how staff verified a ticket's requester.
type verifyWorker struct {
	river.WorkerDefaults[VerifyArgs]
	p *Pipeline
}

func (w *verifyWorker) Work(ctx context.Context, job *river.Job[VerifyArgs]) error {
	p := w.p
	return step(ctx, p, job, func(tx pgx.Tx) error {
		r, err := storage.LockRequest(ctx, tx, job.Args.RequestID)
		if err != nil {
			return err
		}
		if r.Status != rights.StatusReceived {
			return nil
		}
		now := p.now().UTC()
		if r.Verification != nil && r.Verification.At.IsZero() {
			r.Verification.At = now
		}
		r.VerifiedAt = &now
		p.refreshDeadline(ctx, r, now)
		detail := map[string]any{}
		if r.Verification != nil {
			detail["method"], detail["by"] = r.Verification.Method, r.Verification.By
		}
		if err := p.transition(ctx, tx, r, rights.StatusVerified, now, storage.Change{
			Actor: rights.ActorSystem, Action: "request.verified", Detail: detail,
		}); err != nil {
			return err
		}
		return p.afterVerified(ctx, tx, r, now)
	})
}

// sendCodeWorker emails a self-service requester a one-time code. The code is
// stored (hashed) before it is sent; a re-run issues a fresh code, which
// replaces the earlier one, so the requester always holds a valid code.
type sendCodeWorker struct {
	river.WorkerDefaults[SendCodeArgs]
	p *Pipeline
}

func (w *sendCodeWorker) Work(ctx context.Context, job *river.Job[SendCodeArgs]) error {
	p := w.p
	r, err := storage.GetRequest(ctx, p.db.Pool, job.Args.RequestID)
	if err != nil {
		return err
	}
	if r.Status != rights.StatusAwaitingVerification {
		return nil
	}
	code, err := newCode()
	if err != nil {
		return err
	}
	now := p.now().UTC()
	expires := now.Add(p.settings.SelfService.CodeTTL)
	hash, err := p.codeMAC("", "verify", r.ID, code)
	if err != nil {
		return err
	}
	err = p.db.InTx(ctx, func(tx pgx.Tx) error {
		if err := storage.PutCode(ctx, tx, storage.Code{RequestID: r.ID, Hash: hash, ExpiresAt: expires, SentAt: &now}); err != nil {
			return err
		}
		return storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: now, Actor: rights.ActorSystem,
			Action: "verification.code_sent", Detail: map[string]any{"attempt": job.Attempt, "expires_at": expires}})
	})
	if err != nil {
		return err
	}
	msg, err := p.codeMessage(r, code, expires, fmt.Sprintf("%s.code.%d@datarights", r.ID, job.Attempt))
	if err != nil {
		return err
	}
	if err := p.mailer.Send(ctx, msg); err != nil {
		return fmt.Errorf("send code for %s: %w", r.ID, err)
	}
	return nil
}

// planWorker creates one task per store that holds the product's data.
type planWorker struct {
	river.WorkerDefaults[PlanArgs]
	p *Pipeline
}

func (w *planWorker) Work(ctx context.Context, job *river.Job[PlanArgs]) error {
	p := w.p
	current, err := storage.GetRequest(ctx, p.db.Pool, job.Args.RequestID)
	if err != nil {
		return err
	}
	// What the plan needs from outside its transaction: the identities the
	// stores resolve, an earlier cancellation of the account, and for a
	// cancellation its pre-checks. A store that is down fails the plan,
	// which River retries.
	var (
		res         resolution
		cancelledBy string
		cancelledAt time.Time
		blocked     []blockedCheck
		age         ageCheck
		arranged    *blockedCheck
		linked      = true
		conditions  map[string]bool
	)
	if current.Status == rights.StatusVerified {
		if res, err = p.resolveIdentities(ctx, current); err != nil {
			return err
		}
		resolved := *current
		resolved.Subject.Resolved = res.found
		if age, err = p.checkAge(ctx, &resolved); err != nil {
			return err
		}
		if arranged, err = p.checkArrangement(ctx, &resolved); err != nil {
			return err
		}
		if linked, err = p.checkConcernsAtPlan(ctx, current, res.found); err != nil {
			return err
		}
		if needsLiveAccount(current.Type) {
			if cancelledBy, cancelledAt, err = p.findCancellation(ctx, current, res.found); err != nil {
				return err
			}
		}
		if cancelledBy == "" && len(p.settings.PrechecksForRight(current.Product, current.Type)) > 0 {
			if blocked, err = p.runPrechecks(ctx, &resolved); err != nil {
				return err
			}
		}
		// Whether each third party received this person's data is asked
		// now, before an erasure removes what would tell.
		if cancelledBy == "" {
			if conditions, err = p.recipientConditions(ctx, &resolved); err != nil {
				return err
			}
		}
	}
	return step(ctx, p, job, func(tx pgx.Tx) error {
		r, err := storage.LockRequest(ctx, tx, job.Args.RequestID)
		if err != nil {
			return err
		}
		if r.Status != rights.StatusVerified {
			return nil
		}
		now := p.now().UTC()
		if held, err := p.holdForContact(ctx, tx, r, now); held || err != nil {
			return err
		}
		if len(res.found) > 0 || len(res.ambiguous) > 0 {
			r.Subject.Resolved = res.found
			if err := storage.SaveRequest(ctx, tx, r); err != nil {
				return err
			}
			if err := storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: now, Actor: rights.ActorSystem,
				Action: "identity.resolved", Detail: map[string]any{"resolved": sortedKeys(res.found), "ambiguous": res.ambiguous}}); err != nil {
				return err
			}
		}
		if conditions != nil {
			if r.Outcome == nil {
				r.Outcome = &rights.Outcome{}
			}
			r.Outcome.RecipientConditions = conditions
			if err := storage.SaveRequest(ctx, tx, r); err != nil {
				return err
			}
		}
		if len(res.ambiguous) > 0 && (r.Outcome == nil || len(r.Outcome.Ambiguous) == 0) {
			// An identity that matches several people is not "no data
			// found": staff decide (ask for the user id and refuse, or
			// approve to answer for nobody's data).
			if r.Outcome == nil {
				r.Outcome = &rights.Outcome{}
			}
			r.Outcome.Ambiguous = res.ambiguous
			return p.transition(ctx, tx, r, rights.StatusAwaitingApproval, now, storage.Change{
				Actor: rights.ActorSystem, Action: "identity.ambiguous",
				Detail: map[string]any{"reason": rights.ReasonSeveralPeople, "identity_types": res.ambiguous},
			})
		}
		if age.band != "" {
			r.D().AgeBand = age.band
			if err := storage.SaveRequest(ctx, tx, r); err != nil {
				return err
			}
			if err := storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: now, Actor: rights.ActorSystem,
				Action: "minor.age_checked", Detail: map[string]any{"age_band": age.band, "relation": r.Relation}}); err != nil {
				return err
			}
		}
		if !linked {
			// Not this person's request (or none at all): the complaint
			// stays, unlinked, and nobody is told why.
			r.Details.Concerns = ""
			if err := storage.SaveRequest(ctx, tx, r); err != nil {
				return err
			}
			if err := storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: now, Actor: rights.ActorSystem,
				Action: "complaint.unlinked", Detail: map[string]any{"why": "the concerned request is not this person's in this product"}}); err != nil {
				return err
			}
		}
		switch {
		case age.refuse != "":
			return p.refuseBySystem(ctx, tx, r, rights.RefuseMinor, ageRefusalMessage(age.refuse, r.Locale),
				ageRefusalMessage(age.refuse, otherLocale(r.Locale)), map[string]any{"age_band": age.band, "rule": age.refuse}, now)
		case arranged != nil:
			return p.refuseBySystem(ctx, tx, r, rights.RefuseDeceasedArranged, arranged.reason, arranged.other,
				map[string]any{"check": arranged.name}, now)
		case r.Type.Answered():
			return p.awaitAnswer(ctx, tx, r, now)
		case r.Type == rights.TypeTransfer:
			if err := p.recordTransferConditions(ctx, tx, r, now); err != nil {
				return err
			}
		}
		switch {
		case cancelledBy != "":
			return p.answerCancelled(ctx, tx, r, cancelledBy, cancelledAt, now)
		case len(blocked) > 0:
			return p.refuseBlocked(ctx, tx, r, blocked, now)
		case r.Type == rights.TypeWithdrawConsent:
			if err := p.recordWithdrawal(ctx, tx, r, r.Purposes, "request", now); err != nil {
				return err
			}
		case r.Type == rights.TypeCancelAccount:
			// A cancelled account consents to nothing any more.
			if err := p.recordWithdrawal(ctx, tx, r, p.productPurposes(r.Product), "cancellation", now); err != nil {
				return err
			}
		}
		action, ok := rights.ActionFor(r.Type)
		if !ok {
			return fmt.Errorf("request %s: no store action for %s", r.ID, r.Type)
		}
		var tasks []*rights.Task
		for _, s := range p.planStores(r, action) {
			tasks = append(tasks, &rights.Task{ID: storage.NewID(), RequestID: r.ID, Store: s.Name,
				Action: action, Status: rights.TaskPending, CreatedAt: now})
		}
		if err := storage.InsertTasks(ctx, tx, tasks); err != nil {
			return err
		}
		storeNames := make([]string, len(tasks))
		for i, t := range tasks {
			storeNames[i] = t.Store
		}
		if err := p.transition(ctx, tx, r, rights.StatusInProgress, now, storage.Change{
			Actor: rights.ActorSystem, Action: "request.planned", Detail: map[string]any{"action": action, "stores": storeNames},
		}); err != nil {
			return err
		}
		if len(tasks) == 0 {
			return p.afterTasks(ctx, tx, r, now)
		}
		for _, t := range tasks {
			if err := p.insertTx(ctx, tx, StoreTaskArgs{RequestID: r.ID, TaskID: t.ID}); err != nil {
				return err
			}
		}
		return nil
	})
}

// planStores returns the stores a request's action goes to: for a
// correction those holding one of its fields, for a withdrawal of consent
// those configured for its purposes, else every store of the product.
func (p *Pipeline) planStores(r *rights.Request, action rights.TaskAction) []config.Store {
	switch action {
	case rights.ActionWithdrawConsent:
		return p.settings.WithdrawalStores(r.Product, r.Purposes)
	case rights.ActionCorrect:
		var out []config.Store
		for _, s := range p.settings.StoresFor(r.Product) {
			if len(s.Corrects(r.Corrections)) > 0 {
				out = append(out, s)
			}
		}
		return out
	}
	return p.settings.StoresFor(r.Product)
}

// afterTasks moves a request whose store tasks have all succeeded to its next
// step: assembling the export, or telling the requester.
func (p *Pipeline) afterTasks(ctx context.Context, tx pgx.Tx, r *rights.Request, now time.Time) error {
	if r.Type.Exports() {
		if err := p.transition(ctx, tx, r, rights.StatusAssembling, now, storage.Change{Actor: rights.ActorSystem, Action: "request.assembling"}); err != nil {
			return err
		}
		return p.insertTx(ctx, tx, AssembleArgs{RequestID: r.ID})
	}
	if err := p.notifyRecipients(ctx, tx, r, now); err != nil {
		return err
	}
	if err := p.transition(ctx, tx, r, rights.StatusDelivering, now, storage.Change{Actor: rights.ActorSystem, Action: "request.delivering"}); err != nil {
		return err
	}
	return p.insertTx(ctx, tx, DeliverArgs{RequestID: r.ID})
}

// storeTaskWorker exports or deletes the subject's data in one store.
type storeTaskWorker struct {
	river.WorkerDefaults[StoreTaskArgs]
	p *Pipeline
}

func (w *storeTaskWorker) Work(ctx context.Context, job *river.Job[StoreTaskArgs]) error {
	p := w.p
	r, err := storage.GetRequest(ctx, p.db.Pool, job.Args.RequestID)
	if err != nil {
		return err
	}
	tasks, err := storage.ListTasks(ctx, p.db.Pool, r.ID)
	if err != nil {
		return err
	}
	var task *rights.Task
	for _, t := range tasks {
		if t.ID == job.Args.TaskID {
			task = t
		}
	}
	if task == nil {
		return fmt.Errorf("task %s of request %s not found", job.Args.TaskID, r.ID)
	}
	if r.Status != rights.StatusInProgress || task.Status != rights.TaskPending {
		return nil // done by an earlier run, or the request moved on
	}

	started := time.Now()
	inventory, workErr := p.takeInventory(ctx, r, task)
	var report rights.StoreReport
	if workErr == nil {
		report, workErr = p.runTask(ctx, r, task)
	}
	if workErr == nil {
		if task.Action == rights.ActionWithdrawConsent {
			report = rights.ReconcileWithdrawal(report, inventory)
		} else {
			report = rights.ReconcileErasure(report, inventory)
		}
		if p.afterStoreEffect != nil {
			workErr = p.afterStoreEffect(task.Store, task.Action) // a test's crash before the record
		}
	}
	p.metrics.StoreTask(task.Store, string(task.Action), time.Since(started), workErr)
	now := p.now().UTC()
	var waiting *rights.AwaitingConfirmation
	if errors.As(workErr, &waiting) {
		return step(ctx, p, job, func(tx pgx.Tx) error {
			r, t, err := p.lockTask(ctx, tx, r.ID, task.ID)
			if err != nil {
				return err
			}
			if r.WorkStatus() != rights.StatusInProgress || t.Status != rights.TaskPending {
				return nil
			}
			t.Status, t.Attempts = rights.TaskWaiting, job.Attempt
			if err := storage.SaveTask(ctx, tx, t); err != nil {
				return err
			}
			return storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: now, Actor: rights.ActorSystem,
				Action: "task.waiting", Detail: map[string]any{"store": t.Store, "action": t.Action, "instructions": waiting.Instructions}})
		})
	}
	if workErr != nil {
		final := lastAttempt(job.JobRow)
		err := p.db.InTx(ctx, func(tx pgx.Tx) error {
			r, t, err := p.lockTask(ctx, tx, r.ID, task.ID)
			if err != nil {
				return err
			}
			if t.Status != rights.TaskPending {
				return nil
			}
			t.Attempts, t.LastError = job.Attempt, safeError(workErr)
			detail := map[string]any{"store": t.Store, "action": t.Action, "attempt": job.Attempt, "error": t.LastError}
			if !final {
				if err := storage.SaveTask(ctx, tx, t); err != nil {
					return err
				}
				return storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: now, Actor: rights.ActorSystem,
					Action: "task.retrying", Detail: detail})
			}
			t.Status, t.FinishedAt = rights.TaskFailed, &now
			if err := storage.SaveTask(ctx, tx, t); err != nil {
				return err
			}
			if err := storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: now, Actor: rights.ActorSystem,
				Action: "task.failed", Detail: detail}); err != nil {
				return err
			}
			if r.Status == rights.StatusPaused {
				return nil // the resume fails the request (continueTasks)
			}
			return p.transition(ctx, tx, r, rights.StatusFailed, now, storage.Change{Actor: rights.ActorSystem,
				Action: "request.failed", Detail: map[string]any{"step": "store_task", "store": t.Store}})
		})
		if err != nil {
			return errors.Join(workErr, err)
		}
		return fmt.Errorf("store %s: %w", task.Store, workErr)
	}

	return step(ctx, p, job, func(tx pgx.Tx) error {
		r, t, err := p.lockTask(ctx, tx, r.ID, task.ID)
		if err != nil {
			return err
		}
		// Paused while this task ran: its result is recorded all the same
		// (the store has done it), and finishTask leaves the request paused.
		if r.WorkStatus() != rights.StatusInProgress || t.Status != rights.TaskPending {
			return nil
		}
		t.Attempts = job.Attempt
		extra := map[string]any{"duration_ms": time.Since(started).Milliseconds()}
		if fields := report.CorrectedFields(); len(fields) > 0 {
			extra["fields"] = fields // names of the fields corrected, never values
		}
		if report.Reconciled {
			extra["reconciled"] = true // rows an earlier attempt erased, counted from the inventory
		}
		return p.finishTask(ctx, tx, r, t, report, now, rights.ActorSystem, "task.succeeded", extra)
	})
}

// finishTask records a task's success and, when it was the last one, moves
// the request on. The caller holds the locks on r and t (request first).
func (p *Pipeline) finishTask(ctx context.Context, tx pgx.Tx, r *rights.Request, t *rights.Task, report rights.StoreReport,
	now time.Time, actor, action string, extra map[string]any) error {
	t.Status, t.Report, t.FinishedAt, t.LastError = rights.TaskSucceeded, &report, &now, ""
	if err := storage.SaveTask(ctx, tx, t); err != nil {
		return err
	}
	if err := p.recordHolds(ctx, tx, r, t, report, now); err != nil {
		return err
	}
	detail := map[string]any{"store": t.Store, "action": t.Action, "resolved": report.Resolved,
		"rows": report.Rows(), "datasets": len(report.Datasets)}
	for k, v := range extra {
		detail[k] = v
	}
	if err := storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: now, Actor: actor,
		Action: action, Detail: detail}); err != nil {
		return err
	}
	all, err := storage.ListTasks(ctx, tx, r.ID)
	if err != nil {
		return err
	}
	for _, other := range all {
		if other.Status != rights.TaskSucceeded {
			return nil // the last task to finish moves the request on
		}
	}
	if r.Status == rights.StatusPaused {
		return nil // the resume moves it on (continueTasks)
	}
	return p.afterTasks(ctx, tx, r, now)
}

func (p *Pipeline) runTask(ctx context.Context, r *rights.Request, t *rights.Task) (rights.StoreReport, error) {
	ctx = p.taskContext(ctx, r, t) // webhook stores name the task in their calls
	conn, err := p.connector(ctx, t.Store)
	if err != nil {
		return rights.StoreReport{}, err
	}
	switch t.Action {
	case rights.ActionExport:
		sink, err := p.staging.SinkContext(ctx, r.ID, t.Store)
		if err != nil {
			return rights.StoreReport{}, err
		}
		report, err := conn.Export(ctx, r.Subject.All(), sink)
		if err != nil {
			return report, err
		}
		// Durable before the task is recorded; until then a rerun would
		// stage every file again.
		return report, exporters.SyncSink(sink)
	case rights.ActionDelete:
		if eraser, ok := conn.(rights.Eraser); ok {
			return eraser.Erase(ctx, r.Subject.All(), p.eraseOptions(r))
		}
		return conn.Delete(ctx, r.Subject.All())
	case rights.ActionWithdrawConsent:
		return p.runWithdrawal(ctx, conn, r, t)
	case rights.ActionCorrect:
		return runCorrect(ctx, conn, r, t, p.storeFormatted(t.Store, r.Product, r.Corrections))
	}
	return rights.StoreReport{}, fmt.Errorf("unknown task action %q", t.Action)
}

// deliverWorker tells the requester the outcome. The send is recorded in the
// same transaction that completes the request; a re-run that finds the
// record sends nothing. A crash between the SMTP send and that record is the
// one window where the message goes out twice, and then it is the same
// message: its Message-ID is derived from the request.
type deliverWorker struct {
	river.WorkerDefaults[DeliverArgs]
	p *Pipeline
}

const deliveryCompletion = "completion"

func (w *deliverWorker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	p := w.p
	r, err := storage.GetRequest(ctx, p.db.Pool, job.Args.RequestID)
	if err != nil {
		return err
	}
	if r.Status != rights.StatusDelivering {
		return nil
	}
	delivery, err := storage.GetDelivery(ctx, p.db.Pool, r.ID, deliveryCompletion)
	if err != nil {
		return err
	}
	var (
		export *storage.Export
		sentAt time.Time
	)
	if delivery == nil {
		tasks, err := storage.ListTasks(ctx, p.db.Pool, r.ID)
		if err != nil {
			return err
		}
		if export, err = storage.GetExport(ctx, p.db.Pool, r.ID); err != nil {
			return err
		}
		if r.Type == rights.TypeTransfer {
			if err := p.transferArchive(ctx, r, export); err != nil {
				return err // on the last attempt the failure handler fails the request
			}
		}
		msg, err := p.completionMessage(r, tasks, export)
		if err != nil {
			return err
		}
		if err := p.mailer.Send(ctx, msg); err != nil {
			// On the last attempt the failure handler fails the request.
			return fmt.Errorf("deliver %s: %w", r.ID, err)
		}
		delivery = &storage.Delivery{RequestID: r.ID, Kind: deliveryCompletion, MessageID: msg.ID, SentAt: p.now().UTC()}
		sentAt = time.Now()
	}
	completed := false
	err = step(ctx, p, job, func(tx pgx.Tx) error {
		r, err = storage.LockRequest(ctx, tx, r.ID)
		if err != nil {
			return err
		}
		if r.Status != rights.StatusDelivering {
			return nil
		}
		if err := storage.PutDelivery(ctx, tx, *delivery); err != nil {
			return err
		}
		completed = true
		now := p.now().UTC()
		if err := p.transition(ctx, tx, r, rights.StatusCompleted, now, storage.Change{Actor: rights.ActorSystem,
			Action: "request.completed", Detail: map[string]any{"message_id": delivery.MessageID}}); err != nil {
			return err
		}
		// An attached copy is in the requester's mailbox now, a transferred
		// one with its receiver: ours goes.
		if export, err = storage.LockExport(ctx, tx, r.ID); err != nil || export == nil || (export.Delivery != "attachment" && export.Delivery != deliveryTransfer) {
			return err
		}
		return p.markPurged(ctx, tx, r.ID, "delivered", now)
	})
	if err == nil && completed {
		if !sentAt.IsZero() {
			// The window in which a crash resends the same message.
			p.metrics.SendRecorded(time.Since(sentAt))
		}
		p.metrics.RequestCompleted(r.Product, r.Type, r.Channel, p.workingDaysTaken(r))
		if export != nil && (export.Delivery == "attachment" || export.Delivery == deliveryTransfer) {
			if err := p.deleteArchive(ctx, export); err != nil {
				p.logger.WarnContext(ctx, "delete delivered export", "request_id", r.ID, "err", err) // the sweep retries
			}
		}
	}
	return err
}

func (p *Pipeline) productName(name string) string {
	if prod, ok := p.settings.Product(name); ok && prod.DisplayName != "" {
		return prod.DisplayName
	}
	return name
}
