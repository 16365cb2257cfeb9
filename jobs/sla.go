package jobs

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// Reminder kinds: "<percent>pct" for a fraction of the period, and "breach".
const reminderBreach = "breach"

func reminderKind(fraction float64) string { return fmt.Sprintf("%gpct", fraction*100) }

// SweepResult says what one sweep did.
type SweepResult struct {
	Reminders int // reminders recorded (each once per request and kind)
	Breaches  int // requests marked breached
	Sent      int // reminder emails sent
}

// slaBatch is how many requests one sweep transaction takes. Small batches
// keep each transaction, and the row locks a staff action could meet, to a
// few milliseconds.
const slaBatch = 100

// SweepSLA records every reminder and breach that is due at the pipeline's
// clock and emails staff about each. It visits only requests whose
// sla_check_at has come (an index serves it; migration 0020), so a sweep
// with nothing due costs one index probe however many requests are open.
// Each batch is one short transaction that skips rows someone else holds.
// A reminder row is inserted once per request and kind, in the transaction
// that audits it; the email is sent after and marked sent, so a crash in
// between resends the same message (same Message-ID) on the next sweep
// rather than losing or changing it.
func (p *Pipeline) SweepSLA(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	now := p.now().UTC()
	fractions := append([]float64(nil), p.settings.SLA.Reminders...)
	sort.Float64s(fractions)
	for {
		var (
			batch            SweepResult
			breachedProducts []string // counted once the transaction commits
			visited          int
		)
		err := p.db.InTx(ctx, func(tx pgx.Tx) error {
			batch, breachedProducts = SweepResult{}, nil
			// SKIP LOCKED: a request being changed right now is looked at by
			// the next batch or sweep (the change resets its check anyway),
			// and no staff action ever waits for a sweep.
			due, err := storage.LockSLADue(ctx, tx, now, slaBatch)
			if err != nil {
				return err
			}
			visited = len(due)
			for _, r := range due {
				breached, err := p.recordDue(ctx, tx, r, fractions, now, &batch)
				if err != nil {
					return err
				}
				if breached {
					breachedProducts = append(breachedProducts, r.Product)
				}
				// After recordDue, whose breach mark may have saved the row
				// (the trigger keeps sla_check_at then: nothing it watches
				// changed).
				if _, err := tx.Exec(ctx, `UPDATE requests SET sla_check_at = $2 WHERE id = $1`,
					r.ID, nextSLACheck(r, fractions, now)); err != nil {
					return fmt.Errorf("schedule the next check of %s: %w", r.ID, err)
				}
			}
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("sla sweep: %w", err)
		}
		for _, product := range breachedProducts {
			p.metrics.RequestBreached(product)
		}
		res.Reminders += batch.Reminders
		res.Breaches += batch.Breaches
		if visited < slaBatch {
			break
		}
	}
	sent, err := p.sendReminders(ctx)
	res.Sent = sent
	return res, err
}

// recordDue records, once each, the reminders and the breach r has reached
// at now, with their audit events, and reports whether it marked r
// breached. The caller holds r's lock.
func (p *Pipeline) recordDue(ctx context.Context, tx pgx.Tx, r *rights.Request, fractions []float64, now time.Time, res *SweepResult) (bool, error) {
	if r.Status.Terminal() || r.Status == rights.StatusPaused || r.DueAt == nil || r.ClockStartedAt == nil {
		return false, nil // changed since it was scheduled; the trigger cleared its check
	}
	breached := false
	for _, kind := range dueReminders(r, fractions, now) {
		tag, err := tx.Exec(ctx, `INSERT INTO sla_reminders (request_id, kind, due_at, created_at)
			VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, r.ID, kind, r.DueAt, now)
		if err != nil {
			return false, fmt.Errorf("record reminder %s for %s: %w", kind, r.ID, err)
		}
		if tag.RowsAffected() == 0 {
			continue // recorded by an earlier sweep
		}
		res.Reminders++
		if kind == reminderBreach {
			if r.BreachedAt == nil {
				r.BreachedAt = &now
				if err := storage.SaveRequest(ctx, tx, r); err != nil {
					return false, err
				}
				res.Breaches++
				breached = true
			}
			if err := storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: now, Actor: rights.ActorSystem,
				Action: "sla.breached", Detail: map[string]any{"due_at": r.DueAt, "status": r.Status}}); err != nil {
				return false, err
			}
			continue
		}
		if err := storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: now, Actor: rights.ActorSystem,
			Action: "sla.reminder", Detail: map[string]any{"kind": kind, "due_at": r.DueAt}}); err != nil {
			return false, err
		}
	}
	return breached, nil
}

// nextSLACheck is when r next has something due after now: the first
// reminder instant or the deadline still ahead, or nil when the breach has
// been reached (nothing more can come due until the deadline moves, which
// resets the check).
func nextSLACheck(r *rights.Request, fractions []float64, now time.Time) *time.Time {
	if r.Status.Terminal() || r.Status == rights.StatusPaused || r.DueAt == nil || r.ClockStartedAt == nil {
		return nil
	}
	start, due := *r.ClockStartedAt, *r.DueAt
	var next *time.Time
	for _, f := range fractions {
		at := start.Add(time.Duration(float64(due.Sub(start)) * f))
		if at.After(now) && (next == nil || at.Before(*next)) {
			next = &at
		}
	}
	if due.After(now) && (next == nil || due.Before(*next)) {
		next = &due
	}
	return next
}

// dueReminders lists the reminder kinds r has reached at now.
func dueReminders(r *rights.Request, fractions []float64, now time.Time) []string {
	start, due := *r.ClockStartedAt, *r.DueAt
	var kinds []string
	for _, f := range fractions {
		at := start.Add(time.Duration(float64(due.Sub(start)) * f))
		if !now.Before(at) {
			kinds = append(kinds, reminderKind(f))
		}
	}
	if !now.Before(due) {
		kinds = append(kinds, reminderBreach)
	}
	return kinds
}

// sendReminders emails staff every recorded, unsent reminder.
func (p *Pipeline) sendReminders(ctx context.Context) (int, error) {
	rows, err := p.db.Pool.Query(ctx, `SELECT request_id, kind, due_at FROM sla_reminders
		WHERE sent_at IS NULL ORDER BY created_at LIMIT 500`)
	if err != nil {
		return 0, fmt.Errorf("list unsent reminders: %w", err)
	}
	type pending struct {
		requestID, kind string
		dueAt           time.Time
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (pending, error) {
		var pr pending
		err := row.Scan(&pr.requestID, &pr.kind, &pr.dueAt)
		return pr, err
	})
	if err != nil {
		return 0, fmt.Errorf("list unsent reminders: %w", err)
	}
	sent := 0
	var errs []error
	for _, pr := range list {
		r, err := storage.GetRequest(ctx, p.db.Pool, pr.requestID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// Any failure leaves the reminder unsent, so the next sweep sends it
		// again to every recipient; those who got it get the same message.
		failed := false
		for _, to := range p.settings.SLA.Notify {
			if err := p.mailer.Send(ctx, reminderMessage(r, pr.kind, to, p.settings.HTTP.PublicURL)); err != nil {
				errs = append(errs, fmt.Errorf("send %s reminder for %s: %w", pr.kind, r.ID, err))
				failed = true
			}
		}
		if failed {
			continue
		}
		if _, err := p.db.Pool.Exec(ctx, `UPDATE sla_reminders SET sent_at = $3 WHERE request_id = $1 AND kind = $2`,
			pr.requestID, pr.kind, p.now().UTC()); err != nil {
			errs = append(errs, err)
			continue
		}
		sent++
		p.metrics.Reminder(pr.kind)
	}
	return sent, errors.Join(errs...)
}

// reminderMessage tells staff a request needs attention. It names the
// request, never the person.
func reminderMessage(r *rights.Request, kind, to, publicURL string) rights.Message {
	subject := fmt.Sprintf("[datarights] %s %s request %s: %s of its period used", r.Product, r.Type, r.ID, strings.TrimSuffix(kind, "pct")+"%")
	lead := "is approaching its deadline"
	if kind == reminderBreach {
		subject = fmt.Sprintf("[datarights] BREACH: %s %s request %s is past its deadline", r.Product, r.Type, r.ID)
		lead = "has passed its deadline without being completed"
	}
	due := r.DueAt.In(shanghai).Add(-time.Second).Format("2006-01-02") // the last day of the period
	text := fmt.Sprintf("Request %s (%s, %s, %s channel) %s.\n\nStatus: %s\nLast day of the period: %s (ends 24:00 China Standard Time)\n\n%s/api/v1/requests/%s\n",
		r.ID, r.Product, r.Type, r.Channel, lead, r.Status, due, strings.TrimRight(publicURL, "/"), r.ID)
	return rights.Message{ID: fmt.Sprintf("%s.sla-%s.%s@datarights", r.ID, kind, mailboxKey(to)), To: to, Subject: subject, Text: text}
}

// mailboxKey keeps one Message-ID per recipient without putting the address
// itself into the id.
func mailboxKey(addr string) string {
	var h uint32 = 2166136261
	for i := 0; i < len(addr); i++ {
		h = (h ^ uint32(addr[i])) * 16777619
	}
	return fmt.Sprintf("%08x", h)
}

// slaSweepWorker runs SweepSLA periodically.
type slaSweepWorker struct {
	river.WorkerDefaults[SLASweepArgs]
	p *Pipeline
}

func (w *slaSweepWorker) Work(ctx context.Context, job *river.Job[SLASweepArgs]) error {
	res, err := w.p.SweepSLA(ctx)
	if res.Reminders+res.Breaches+res.Sent > 0 {
		w.p.logger.InfoContext(ctx, "sla sweep", "reminders", res.Reminders, "breaches", res.Breaches, "sent", res.Sent)
	}
	return err
}

// CountOpen stores the open-request counts by product, status and band at
// the pipeline's clock, for every replica's metrics to report.
func (p *Pipeline) CountOpen(ctx context.Context) error {
	now := p.now().UTC()
	counts, err := storage.CountOpen(ctx, p.db.Pool, now, p.settings.SLA.DueSoonAt)
	if err != nil {
		return err
	}
	return storage.SaveOpenCounts(ctx, p.db.Pool, now, counts)
}

// openCountsWorker runs CountOpen periodically: one count per interval for
// the whole deployment, instead of one per scrape of every replica.
type openCountsWorker struct {
	river.WorkerDefaults[OpenCountsSweepArgs]
	p *Pipeline
}

func (w *openCountsWorker) Work(ctx context.Context, job *river.Job[OpenCountsSweepArgs]) error {
	return w.p.CountOpen(ctx)
}
