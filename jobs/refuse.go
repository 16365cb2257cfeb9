package jobs

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// Notices: emails that change no state of their own, each sent once.
const (
	noticeRefusal         = "refusal"
	noticeAcknowledgement = "acknowledgement"
	noticeLinkExpired     = "link_expired"
	// noticeLockout tells a mailbox's owner that wrong codes locked it.
	noticeLockout = "lockout"
	// noticePaused and noticeExtended tell the requester the clock stopped
	// or the deadline moved, and why; one per pause or extension (Seq).
	noticePaused   = "clock_paused"
	noticeExtended = "deadline_extended"
)

// Refuse refuses a request on one of the stated grounds, with staff's
// explanation, and tells the requester why (PIPL Art. 50). Work that has
// started is not refused: it can be cancelled by staff, or it completes.
func (p *Pipeline) Refuse(ctx context.Context, staff, requestID string, reason rights.RefusalReason, message string) (*rights.Request, error) {
	var problems rights.Problems
	if !reason.Valid() {
		known := make([]string, 0, len(rights.RefusalReasons))
		for r := range rights.RefusalReasons {
			known = append(known, string(r))
		}
		sort.Strings(known)
		problems.Add("reason", "unknown reason %q; known: %s", reason, strings.Join(known, ", "))
	}
	switch {
	case strings.TrimSpace(message) == "":
		problems.Add("message", "is required: the requester is told why")
	case len(message) > 2000:
		problems.Add("message", "at most 2000 bytes")
	}
	if err := problems.Err(); err != nil {
		return nil, err
	}
	var r *rights.Request
	err := p.db.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if r, err = storage.LockRequest(ctx, tx, requestID); err != nil {
			return err
		}
		if !rights.CanTransition(r.Status, rights.StatusRefused) || !rights.CanTransition(r.WorkStatus(), rights.StatusRefused) ||
			(r.WorkStatus() == rights.StatusInProgress && !rights.RefusableWhileInProgress(r.Type)) {
			// A paused request is refused only if its work had not started.
			return rights.Errorf(rights.EConflict, "a %s request cannot be refused", r.WorkStatus())
		}
		if err := rights.FourEyes(r, staff, "refusing it"); err != nil {
			return err
		}
		r.Refusal = &rights.Refusal{Reason: reason, Message: message, By: staff}
		if err := p.transition(ctx, tx, r, rights.StatusRefused, p.now().UTC(), storage.Change{
			Actor: rights.ActorStaff(staff), Action: "request.refused", Detail: map[string]any{"reason": reason},
		}); err != nil {
			return err
		}
		return p.insertTx(ctx, tx, NoticeArgs{RequestID: r.ID, Notice: noticeRefusal})
	})
	if err != nil {
		return nil, err
	}
	p.metrics.RequestRefused(r.Product, string(reason))
	return r, nil
}

// noticeWorker sends a notice once: the send is recorded in deliveries, and
// a re-run that finds the record sends nothing; a crash between send and
// record resends the same message (same Message-ID).
type noticeWorker struct {
	river.WorkerDefaults[NoticeArgs]
	p *Pipeline
}

func (w *noticeWorker) Work(ctx context.Context, job *river.Job[NoticeArgs]) error {
	p := w.p
	r, err := storage.GetRequest(ctx, p.db.Pool, job.Args.RequestID)
	if err != nil {
		return err
	}
	kind := job.Args.deliveryKind()
	done, err := storage.GetDelivery(ctx, p.db.Pool, r.ID, kind)
	if err != nil || done != nil {
		return err
	}
	var msg rights.Message
	switch job.Args.Notice {
	case noticeRefusal:
		if r.Refusal == nil {
			return fmt.Errorf("request %s has no refusal to notify", r.ID)
		}
		if msg, err = p.refusalMessage(r); err != nil {
			return err
		}
	case noticeAcknowledgement:
		if msg, err = p.acknowledgementMessage(r); err != nil {
			return err
		}
	case noticeLinkExpired:
		export, err := storage.GetExport(ctx, p.db.Pool, r.ID)
		if err != nil {
			return err
		}
		if export == nil {
			return fmt.Errorf("request %s has no export whose link expired", r.ID)
		}
		if msg, err = p.linkExpiredMessage(r, export); err != nil {
			return err
		}
	case noticeContactChange:
		if r.DeliveryEmail == "" {
			return nil // expired and purged first
		}
		if msg, err = p.contactChangeMessage(r); err != nil {
			return err
		}
	case noticeLockout:
		if r.DeliveryEmail == "" {
			return nil // the request expired and was purged first: nobody to tell
		}
		if msg, err = p.lockoutMessage(r); err != nil {
			return err
		}
	case noticePaused, noticeExtended:
		if r.DeliveryEmail == "" {
			return nil // the request expired and was purged first: nobody to tell
		}
		if msg, err = p.clockMessage(r, job.Args.Notice, job.Args.Seq, r.ID+"."+kind+"@datarights"); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown notice %q", job.Args.Notice)
	}
	if err := p.mailer.Send(ctx, msg); err != nil {
		return fmt.Errorf("send %s notice for %s: %w", job.Args.Notice, r.ID, err)
	}
	return step(ctx, p, job, func(tx pgx.Tx) error {
		if err := storage.PutDelivery(ctx, tx, storage.Delivery{RequestID: r.ID, Kind: kind, MessageID: msg.ID, SentAt: p.now().UTC()}); err != nil {
			return err
		}
		return storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: p.now().UTC(), Actor: rights.ActorSystem,
			Action: "notice.sent", Detail: map[string]any{"notice": kind, "message_id": msg.ID}})
	})
}

func (p *Pipeline) refusalMessage(r *rights.Request) (rights.Message, error) {
	reason := rights.RefusalReasons[r.Refusal.Reason]
	subject, body, err := p.render(tmplRefusal, r.Locale, r.Product, func(l string) any {
		text := reason.EN
		if l == rights.LocaleZH {
			text = reason.ZH
		}
		message := r.Refusal.Message
		if l != r.Locale && r.Refusal.Translated != "" {
			message = r.Refusal.Translated
		}
		return map[string]any{"Right": rightNames[l][r.Type], "Product": p.productName(r.Product), "ID": r.ID,
			"Received": r.ReceivedAt.In(p.location(r.Product)).Format("2006-01-02 15:04"), "Reason": text, "Message": message}
	})
	return rights.Message{ID: r.ID + ".refusal@datarights", To: r.DeliveryEmail, Subject: subject, Text: body}, err
}
