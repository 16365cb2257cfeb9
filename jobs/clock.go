package jobs

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// refreshDeadline recomputes r's deadline from its product's policy and its
// clock (pauses, extensions). Deadlines are never set by hand: every change
// to the clock goes through here. A deadline counted through a year with no
// published calendar is flagged on the request, logged and counted.
func (p *Pipeline) refreshDeadline(ctx context.Context, r *rights.Request, asOf time.Time) {
	policy := p.policies[r.Product]
	start, started := policy.ClockStartFor(r)
	if !started {
		r.ClockStartedAt, r.DueAt, r.DeadlineUncoveredYears = nil, nil, nil
		return
	}
	d := policy.Compute(start, r.Clock, asOf)
	r.ClockStartedAt, r.DueAt, r.DeadlineUncoveredYears = &start, &d.Due, d.UncoveredYears
	if len(d.UncoveredYears) > 0 {
		p.logger.WarnContext(ctx, "deadline counted without a published calendar; weekends only",
			"request_id", r.ID, "product", r.Product, "years", d.UncoveredYears, "due_at", d.Due)
		for _, y := range d.UncoveredYears {
			p.metrics.CalendarMissing(r.Product, y)
		}
	}
}

const maxReason = 500

func checkReason(reason string) error {
	switch {
	case strings.TrimSpace(reason) == "":
		return &rights.Error{Code: rights.EInvalid, Message: "a reason is required",
			Fields: []rights.FieldProblem{{Field: "reason", Reason: "is required: it goes into the audit trail"}}}
	case len(reason) > maxReason:
		return &rights.Error{Code: rights.EInvalid, Message: "the reason is too long",
			Fields: []rights.FieldProblem{{Field: "reason", Reason: "at most 500 bytes"}}}
	}
	return nil
}

// Pause stops a request's deadline clock while the service waits for the
// requester (e.g. for a document), and tells the requester (the reason is
// written for them). A request can be paused before its work starts, while
// its store tasks run, while it waits for approval or for an address to be
// confirmed, and after it failed: tasks already running finish and are
// recorded, but nothing moves the request on until it is resumed.
func (p *Pipeline) Pause(ctx context.Context, staff, requestID, reason string) (*rights.Request, error) {
	if err := checkReason(reason); err != nil {
		return nil, err
	}
	var r *rights.Request
	err := p.db.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if r, err = storage.LockRequest(ctx, tx, requestID); err != nil {
			return err
		}
		if !rights.CanTransition(r.Status, rights.StatusPaused) {
			return rights.Errorf(rights.EConflict, "a %s request cannot be paused", r.Status)
		}
		now := p.now().UTC()
		r.Clock.Pauses = append(r.Clock.Pauses, rights.Pause{Status: r.Status, From: now, Reason: reason, By: staff, DueAt: r.DueAt})
		p.refreshDeadline(ctx, r, now)
		if err := p.transition(ctx, tx, r, rights.StatusPaused, now, storage.Change{
			Actor: rights.ActorStaff(staff), Action: "clock.paused", Detail: map[string]any{"reason": reason},
		}); err != nil {
			return err
		}
		return p.tellRequester(ctx, tx, r, noticePaused, len(r.Clock.Pauses))
	})
	return r, err
}

// tellRequester enqueues a notice to the requester about the clock (the
// seq-th pause or extension), unless there is nobody to tell.
func (p *Pipeline) tellRequester(ctx context.Context, tx pgx.Tx, r *rights.Request, notice string, seq int) error {
	if r.DeliveryEmail == "" {
		return nil // purged
	}
	return p.insertTx(ctx, tx, NoticeArgs{RequestID: r.ID, Notice: notice, Seq: seq})
}

// Resume restarts the clock of a paused request, moves its deadline out by
// the days it stood still, and picks up the work where it was left.
//
// A request that is not paused but failed (or has a failed notice) is
// resumed from the step that failed: one action for staff either way.
func (p *Pipeline) Resume(ctx context.Context, staff, requestID string) (*rights.Request, error) {
	if current, err := storage.GetRequest(ctx, p.db.Pool, requestID); err == nil && current.Status != rights.StatusPaused {
		return p.ResumeFailed(ctx, staff, requestID)
	}
	var r *rights.Request
	err := p.db.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if r, err = storage.LockRequest(ctx, tx, requestID); err != nil {
			return err
		}
		if r.Status != rights.StatusPaused || !r.Clock.Paused() {
			return rights.Errorf(rights.EConflict, "the request is %s, not paused", r.Status)
		}
		now := p.now().UTC()
		last := &r.Clock.Pauses[len(r.Clock.Pauses)-1]
		last.Until = &now
		previousDue := r.DueAt
		p.refreshDeadline(ctx, r, now)
		detail := map[string]any{"paused_seconds": int64(now.Sub(last.From).Seconds()), "due_at": r.DueAt}
		if previousDue != nil {
			detail["previous_due_at"] = previousDue
		}
		if err := p.transition(ctx, tx, r, last.Status, now, storage.Change{
			Actor: rights.ActorStaff(staff), Action: "clock.resumed", Detail: detail,
		}); err != nil {
			return err
		}
		return p.continueFrom(ctx, tx, r)
	})
	return r, err
}

// continueFrom enqueues the step that works on a request in its status.
func (p *Pipeline) continueFrom(ctx context.Context, tx pgx.Tx, r *rights.Request) error {
	switch r.Status {
	case rights.StatusReceived:
		return p.insertTx(ctx, tx, VerifyArgs{RequestID: r.ID, Resumed: len(r.Clock.Pauses)})
	case rights.StatusVerified:
		return p.insertTx(ctx, tx, PlanArgs{RequestID: r.ID, Resumed: len(r.Clock.Pauses)})
	case rights.StatusInProgress:
		return p.continueTasks(ctx, tx, r)
	case rights.StatusAwaitingContact:
		return p.continueContact(ctx, tx, r)
	}
	return nil // failed: staff decide what to retry; awaiting approval: staff decide
}

// continueTasks picks up a request's store tasks after a pause: what the
// tasks that finished during it would have done, had the request not been
// paused. A task that failed fails the request; when all succeeded the
// request moves on as after its last task; otherwise the tasks not yet run
// are enqueued again (their jobs found the request paused and stopped; a
// job still waiting or running is not doubled: jobs are unique by args).
func (p *Pipeline) continueTasks(ctx context.Context, tx pgx.Tx, r *rights.Request) error {
	if r.Type.Answered() {
		return nil // it waits for staff's answer, as before the pause
	}
	tasks, err := storage.ListTasks(ctx, tx, r.ID)
	if err != nil {
		return err
	}
	now := p.now().UTC()
	done := true
	for _, t := range tasks {
		if t.Status == rights.TaskFailed {
			return p.transition(ctx, tx, r, rights.StatusFailed, now, storage.Change{Actor: rights.ActorSystem,
				Action: "request.failed", Detail: map[string]any{"step": "store_task", "store": t.Store}})
		}
		done = done && t.Status == rights.TaskSucceeded
	}
	if done {
		return p.afterTasks(ctx, tx, r, now)
	}
	for _, t := range tasks {
		if t.Status == rights.TaskPending {
			if err := p.insertTx(ctx, tx, StoreTaskArgs{RequestID: r.ID, TaskID: t.ID}); err != nil {
				return err
			}
		}
	}
	return nil
}

// continueContact gives a request waiting for an address its time again
// after a pause: codes that expired meanwhile are sent anew, and the
// expiry counts from the resume.
func (p *Pipeline) continueContact(ctx context.Context, tx pgx.Tx, r *rights.Request) error {
	contacts, err := storage.ListContacts(ctx, tx, r.ID, false)
	if err != nil {
		return err
	}
	now := p.now()
	for _, c := range contacts {
		if c.ConfirmedAt == nil && (c.ExpiresAt == nil || !now.Before(*c.ExpiresAt)) {
			if err := p.insertTx(ctx, tx, SendContactCodeArgs{RequestID: r.ID, Field: c.Field}); err != nil {
				return err
			}
		}
	}
	return p.insertAt(ctx, tx, ExpireArgs{RequestID: r.ID}, p.expiresAt(now))
}

// Extend lengthens a request's period by days counted days, within the
// policy's maximum in total, and tells the requester the new deadline and
// the reason (written for them).
func (p *Pipeline) Extend(ctx context.Context, staff, requestID string, days int, reason string) (*rights.Request, error) {
	if err := checkReason(reason); err != nil {
		return nil, err
	}
	var r *rights.Request
	err := p.db.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if r, err = storage.LockRequest(ctx, tx, requestID); err != nil {
			return err
		}
		if r.Status.Terminal() {
			return rights.Errorf(rights.EConflict, "a %s request has no deadline to extend", r.Status)
		}
		policy := p.policies[r.Product]
		used := r.Clock.ExtensionDays()
		if days < 1 || used+days > policy.MaxExtensionDays {
			return &rights.Error{Code: rights.EInvalid, Message: "the extension is not allowed",
				Fields: []rights.FieldProblem{{Field: "days", Reason: extensionReason(policy.MaxExtensionDays, used)}}}
		}
		now := p.now().UTC()
		previousDue := r.DueAt
		r.Clock.Extensions = append(r.Clock.Extensions, rights.Extension{Days: days, Reason: reason, By: staff, At: now})
		p.refreshDeadline(ctx, r, now)
		r.Clock.Extensions[len(r.Clock.Extensions)-1].DueAt = r.DueAt
		r.UpdatedAt = now
		if err := storage.SaveRequest(ctx, tx, r); err != nil {
			return err
		}
		if err := storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: now, Actor: rights.ActorStaff(staff),
			Action: "deadline.extended", Detail: map[string]any{"days": days, "reason": reason,
				"due_at": r.DueAt, "previous_due_at": previousDue}}); err != nil {
			return err
		}
		return p.tellRequester(ctx, tx, r, noticeExtended, len(r.Clock.Extensions))
	})
	return r, err
}

func extensionReason(limit, used int) string {
	if limit == 0 {
		return "this product's policy allows no extensions"
	}
	return fmt.Sprintf("must be at least 1 and at most %d more (%d in total, %d used)", max(0, limit-used), limit, used)
}

// Band places r against its deadline at the pipeline's clock.
func (p *Pipeline) Band(r *rights.Request) rights.Band {
	return rights.BandOf(r, p.now(), p.settings.SLA.DueSoonAt)
}

// LastDay is the last day of r's period in its product's time zone, as
// YYYY-MM-DD: due_at is 24:00 of that day.
func (p *Pipeline) LastDay(r *rights.Request) string { return p.lastDayOf(r.Product, r.DueAt) }

func (p *Pipeline) lastDayOf(product string, due *time.Time) string {
	if due == nil {
		return ""
	}
	loc := p.policies[product].Location
	if loc == nil {
		loc = time.UTC
	}
	return due.In(loc).Add(-time.Nanosecond).Format("2006-01-02")
}

// Now is the pipeline's clock.
func (p *Pipeline) Now() time.Time { return p.now() }

// Settings is the configuration the pipeline runs with.
func (p *Pipeline) Settings() *config.Config { return p.settings }

// DueSoonAt is the configured due-soon fraction.
func (p *Pipeline) DueSoonAt() float64 { return p.settings.SLA.DueSoonAt }

// workingDaysTaken is how many working days (on the product's calendar) a
// request took from its clock start to completion, counting as deadlines do:
// the start day is not counted and the completion day is.
func (p *Pipeline) workingDaysTaken(r *rights.Request) float64 {
	if r.ClockStartedAt == nil || r.CompletedAt == nil {
		return 0
	}
	policy := p.policies[r.Product]
	loc := policy.Location
	if loc == nil {
		loc = time.UTC
	}
	cal := policy.Calendar
	if cal == nil {
		cal = rights.WeekendsOnly{}
	}
	start, end := r.ClockStartedAt.In(loc), r.CompletedAt.In(loc)
	day := time.Date(start.Year(), start.Month(), start.Day(), 0, 0, 0, 0, loc)
	last := time.Date(end.Year(), end.Month(), end.Day(), 0, 0, 0, 0, loc)
	n := 0
	for day.Before(last) {
		day = day.AddDate(0, 0, 1)
		if cal.IsWorkingDay(day.Year(), day.Month(), day.Day()) {
			n++
		}
	}
	return float64(n)
}

// DaysLeft is how many days r has until its last day, counted as its
// product counts its deadline (working or calendar days); negative when
// late. ok is false when r has no deadline (yet).
func (p *Pipeline) DaysLeft(r *rights.Request) (days int, kind rights.DeadlineKind, ok bool) {
	if r.DueAt == nil {
		return 0, "", false
	}
	policy := p.policies[r.Product]
	return policy.DaysLeft(*r.DueAt, p.now()), policy.Kind, true
}

// Policy is a product's deadline policy.
func (p *Pipeline) Policy(product string) rights.DeadlinePolicy { return p.policies[product] }

// Location is the time zone of product's deadlines: people see its times
// in it.
func (p *Pipeline) Location(product string) *time.Location { return p.location(product) }
