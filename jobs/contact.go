package jobs

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// Changing where data goes is protected. An address becomes one the
// service sends a person's codes or data to only once it has been proved
// with a code sent to it:
//
//   - a correction of a field validated as an email or a phone (it will be
//     where the person's future codes and copies go), and the old address
//     is told;
//   - a staff ticket's delivery email for a copy or access request
//     (intake.confirm_delivery_email), the code read back to staff.
//
// A self-service request's delivery email needs nothing more: its code
// went there. Until every address is proved the request waits in
// awaiting_contact; if the codes are not entered within their life and the
// grace period it expires like an unverified request.

// noticeContactChange tells the address on file that a change of contact
// details was asked for.
const noticeContactChange = "contact_change"

// FieldDeliveryEmail is the contact field of a request's delivery email.
const FieldDeliveryEmail = "delivery_email"

type contactTarget struct {
	Field, Kind, Value string
}

// contactsToProve returns the addresses r must prove before it goes on.
func (p *Pipeline) contactsToProve(r *rights.Request) []contactTarget {
	var out []contactTarget
	// A transfer's copy goes to the receiving handler, not to the email.
	if r.Type.Exports() && r.Type != rights.TypeTransfer && r.Channel == rights.ChannelStaff && *p.settings.Intake.ConfirmDeliveryEmail && r.DeliveryEmail != "" {
		out = append(out, contactTarget{FieldDeliveryEmail, "email", r.DeliveryEmail})
	}
	if r.Type == rights.TypeCorrect {
		rules := p.settings.CorrectableFields(r.Product)
		for _, field := range correctionFields(r) {
			if kind := rules[field].Validate; kind == "email" || kind == "phone" {
				out = append(out, contactTarget{field, kind, r.Corrections[field]})
			}
		}
	}
	return out
}

// holdForContact stops a verified request at awaiting_contact while an
// address it names is unproved, sends the codes and tells the old address.
// It reports whether it held the request.
func (p *Pipeline) holdForContact(ctx context.Context, tx pgx.Tx, r *rights.Request, now time.Time) (bool, error) {
	targets := p.contactsToProve(r)
	if len(targets) == 0 {
		return false, nil
	}
	existing, err := storage.ListContacts(ctx, tx, r.ID, false)
	if err != nil {
		return false, err
	}
	confirmed := map[string]bool{}
	for _, c := range existing {
		confirmed[c.Field] = c.ConfirmedAt != nil
	}
	var fields []string
	for _, t := range targets {
		if confirmed[t.Field] {
			continue
		}
		fields = append(fields, t.Field)
		if err := storage.AddContact(ctx, tx, storage.Contact{RequestID: r.ID, Field: t.Field, Kind: t.Kind, CreatedAt: now}); err != nil {
			return false, err
		}
		if err := p.insertTx(ctx, tx, SendContactCodeArgs{RequestID: r.ID, Field: t.Field}); err != nil {
			return false, err
		}
	}
	if len(fields) == 0 {
		return false, nil
	}
	if err := p.transition(ctx, tx, r, rights.StatusAwaitingContact, now, storage.Change{
		Actor: rights.ActorSystem, Action: "contact.confirmation_needed", Detail: map[string]any{"fields": fields},
	}); err != nil {
		return false, err
	}
	if r.Type == rights.TypeCorrect && r.DeliveryEmail != "" {
		if err := p.insertTx(ctx, tx, NoticeArgs{RequestID: r.ID, Notice: noticeContactChange}); err != nil {
			return false, err
		}
	}
	return true, p.insertAt(ctx, tx, ExpireArgs{RequestID: r.ID}, p.expiresAt(now))
}

// SendContactCodeArgs sends the code that proves one address of a request.
type SendContactCodeArgs struct {
	RequestID string `json:"request_id"`
	Field     string `json:"field"`
}

func (SendContactCodeArgs) Kind() string { return "send_contact_code" }

type sendContactCodeWorker struct {
	river.WorkerDefaults[SendContactCodeArgs]
	p *Pipeline
}

// Work makes a code, keeps its MAC and sends it. A rerun after a crash
// sends a new code, which replaces the first: only the latest works.
func (w *sendContactCodeWorker) Work(ctx context.Context, job *river.Job[SendContactCodeArgs]) error {
	p := w.p
	r, err := storage.GetRequest(ctx, p.db.Pool, job.Args.RequestID)
	if err != nil {
		return err
	}
	if r.Status != rights.StatusAwaitingContact {
		return nil
	}
	var target *contactTarget
	for _, t := range p.contactsToProve(r) {
		if t.Field == job.Args.Field {
			target = &t
		}
	}
	if target == nil {
		return nil
	}
	code, err := newCode()
	if err != nil {
		return err
	}
	mac, err := p.codeMAC("", contactPurpose(target.Field), r.ID, code)
	if err != nil {
		return err
	}
	now := p.now().UTC()
	expires := now.Add(p.settings.SelfService.CodeTTL)
	var wait time.Duration
	err = p.db.InTx(ctx, func(tx pgx.Tx) error {
		contacts, err := storage.ListContacts(ctx, tx, r.ID, true)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(contacts, func(c *storage.Contact) bool { return c.Field == target.Field })
		if i < 0 || contacts[i].ConfirmedAt != nil {
			return nil
		}
		// The codes count against the new address's limits, and a
		// correction's against the mailbox on file too: neither can be
		// flooded by filing requests.
		limited := []string{target.Value}
		if target.Kind == "phone" {
			limited = []string{"phone:" + digits(target.Value)}
		}
		if target.Field != FieldDeliveryEmail && r.DeliveryEmail != "" {
			limited = append(limited, r.DeliveryEmail)
		}
		if err := p.takeCodeEmail(ctx, tx, now, limited...); err != nil {
			if e, ok := err.(*rights.Error); ok && e.Code == rights.ETooMany {
				wait = e.RetryAfter
				return storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: now, Actor: rights.ActorSystem,
					Action: "contact.code_delayed", Detail: map[string]any{"field": target.Field, "retry_after_s": int(wait.Seconds())}})
			}
			return err
		}
		c := contacts[i]
		c.CodeMAC, c.ExpiresAt, c.SentAt, c.Attempts = mac, &expires, &now, 0
		if err := storage.SaveContact(ctx, tx, c); err != nil {
			return err
		}
		return storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: now, Actor: rights.ActorSystem,
			Action: "contact.code_sent", Detail: map[string]any{"field": target.Field, "kind": target.Kind, "expires_at": expires}})
	})
	if err != nil {
		return err
	}
	if wait > 0 {
		return river.JobSnooze(wait)
	}
	id := fmt.Sprintf("%s.contact.%s.%d@datarights", r.ID, target.Field, job.Attempt)
	if target.Kind == "phone" {
		text := fmt.Sprintf("【%s】验证码 %s，%s 前有效，用于确认您的新手机号码（申请 %s）。请勿告诉他人。Code %s confirms your new phone number.",
			p.productName(r.Product), code, expires.In(p.location(r.Product)).Format("01-02 15:04"), shortID(r.ID), code)
		if err := p.sms.SendSMS(ctx, rights.SMS{ID: id, To: target.Value, Text: text}); err != nil {
			return fmt.Errorf("send contact code for %s: %w", r.ID, err)
		}
		return nil
	}
	msg, err := p.contactCodeMessage(r, *target, code, expires, id)
	if err != nil {
		return err
	}
	if err := p.mailer.Send(ctx, msg); err != nil {
		return fmt.Errorf("send contact code for %s: %w", r.ID, err)
	}
	return nil
}

func contactPurpose(field string) string { return "contact/" + field }

func digits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[len(id)-8:]
	}
	return id
}

// ConfirmContact checks the code for one of a request's addresses (field;
// may be empty when only one waits). When every address is proved the
// request goes on. Wrong codes count against the address's mailbox like
// wrong verification codes do.
func (p *Pipeline) ConfirmContact(ctx context.Context, requestID, field, code, actor string) (*rights.Request, error) {
	var (
		r       *rights.Request
		outcome error
	)
	err := p.db.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if r, err = storage.LockRequest(ctx, tx, requestID); err != nil {
			return err
		}
		if r.Status != rights.StatusAwaitingContact {
			return rights.Errorf(rights.EConflict, "request %s is %s; no address of it awaits a code", requestID, r.Status)
		}
		contacts, err := storage.ListContacts(ctx, tx, r.ID, true)
		if err != nil {
			return err
		}
		var waiting []*storage.Contact
		for _, c := range contacts {
			if c.ConfirmedAt == nil {
				waiting = append(waiting, c)
			}
		}
		var c *storage.Contact
		for _, w := range waiting {
			if w.Field == field || (field == "" && len(waiting) == 1) {
				c = w
			}
		}
		if c == nil {
			names := make([]string, len(waiting))
			for i, w := range waiting {
				names[i] = w.Field
			}
			return &rights.Error{Code: rights.EInvalid, Message: "which address does the code prove?",
				Fields: []rights.FieldProblem{{Field: "field", Reason: "must be one of " + strings.Join(names, ", ")}}}
		}
		target := contactTarget{Field: c.Field, Kind: c.Kind}
		for _, t := range p.contactsToProve(r) {
			if t.Field == c.Field {
				target = t
			}
		}
		now := p.now().UTC()
		limit := p.settings.SelfService.Limits.WrongCodesPerDay
		limitValue := mailbox(target.Value)
		if target.Kind == "phone" {
			limitValue = "phone:" + digits(target.Value)
		}
		key, err := p.limitKey("mailbox", limitValue)
		if err != nil {
			return err
		}
		wait, err := storage.CheckThrottle(ctx, tx, storage.ThrottleWrongCode, key, now, storage.Window{Limit: limit, Per: wrongCodeWindow})
		if err != nil {
			return err
		}
		switch {
		case wait > 0:
			return tooMany(wait)
		case c.SentAt == nil:
			return rights.Errorf(rights.EConflict, "the code has not been sent yet; try again in a minute")
		case c.Attempts >= p.settings.SelfService.MaxAttempts:
			return rights.Errorf(rights.ELocked, "too many wrong codes for this address; file the request again")
		case !now.Before(*c.ExpiresAt):
			return rights.Errorf(rights.EExpired, "the code has expired; file the request again")
		}
		c.Attempts++
		if !WellFormedCode(code) || !p.codeMatches(c.CodeMAC, contactPurpose(c.Field), r.ID, code) {
			if err := storage.RecordThrottle(ctx, tx, storage.ThrottleWrongCode, key, now); err != nil {
				return err
			}
			if err := storage.SaveContact(ctx, tx, c); err != nil {
				return err
			}
			outcome = &rights.Error{Code: rights.EInvalid, Message: "the code is not right",
				Fields: []rights.FieldProblem{{Field: "code", Reason: fmt.Sprintf("wrong code; %d attempts left", max(0, p.settings.SelfService.MaxAttempts-c.Attempts))}}}
			return storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: now, Actor: actor,
				Action: "contact.code_failed", Detail: map[string]any{"field": c.Field, "attempts": c.Attempts}})
		}
		c.ConfirmedAt, c.CodeMAC = &now, ""
		if err := storage.SaveContact(ctx, tx, c); err != nil {
			return err
		}
		if err := storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: now, Actor: actor,
			Action: "contact.confirmed", Detail: map[string]any{"field": c.Field}}); err != nil {
			return err
		}
		if len(waiting) > 1 {
			return nil // another address still waits
		}
		if err := p.transition(ctx, tx, r, rights.StatusVerified, now, storage.Change{
			Actor: actor, Action: "contact.all_confirmed",
		}); err != nil {
			return err
		}
		return p.insertTx(ctx, tx, PlanArgs{RequestID: r.ID})
	})
	if err != nil {
		return nil, err
	}
	return r, outcome
}

// Contacts returns the addresses a request has had to prove, for staff and
// the requester's status.
func (p *Pipeline) Contacts(ctx context.Context, requestID string) ([]*storage.Contact, error) {
	return storage.ListContacts(ctx, p.db.Pool, requestID, false)
}

// contactCodeMessage is the email carrying the code that proves a new or
// delivery address. It names neither the person nor what they asked for
// beyond the right: the address is not proved yet.
func (p *Pipeline) contactCodeMessage(r *rights.Request, t contactTarget, code string, expires time.Time, id string) (rights.Message, error) {
	subject, body, err := p.render(tmplContactCode, r.Locale, r.Product, func(l string) any {
		return map[string]any{"Code": code, "ID": r.ID, "Right": rightNames[l][r.Type], "Product": p.productName(r.Product),
			"Expires": expires.In(p.location(r.Product)).Format("2006-01-02 15:04"), "Delivery": t.Field == FieldDeliveryEmail}
	})
	return rights.Message{ID: id, To: t.Value, Subject: subject, Text: body}, err
}

// contactChangeMessage tells the address on file that the person's email
// or phone is about to change, so that a change they did not ask for is
// noticed. The new value is not in it.
func (p *Pipeline) contactChangeMessage(r *rights.Request) (rights.Message, error) {
	var fields []string
	for _, t := range p.contactsToProve(r) {
		if t.Field != FieldDeliveryEmail {
			fields = append(fields, t.Field)
		}
	}
	subject, body, err := p.render(tmplContactChange, r.Locale, r.Product, func(l string) any {
		return map[string]any{"ID": r.ID, "Product": p.productName(r.Product), "Fields": strings.Join(p.fieldLabels(r.Product, fields, l), ", "),
			"Received": r.ReceivedAt.In(p.location(r.Product)).Format("2006-01-02 15:04")}
	})
	return rights.Message{ID: r.ID + ".contact-change@datarights", To: r.DeliveryEmail, Subject: subject, Text: body}, err
}
