package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
	"github.com/datarights/datarights/storage/stores"
)

// Third parties the data was shared with. When a request that erases (or
// corrects) a person's data has succeeded in every store, each configured
// recipient of the product is told, in its own job, to do the same with its
// copy: by email with a link to acknowledge, or by a signed webhook that
// acknowledges at once or later. Notices and acknowledgements are recorded
// per request and recipient and audited; the request does not wait for
// them (a third party's silence must not hold up the answer the law
// requires), but staff see every open notice, and a metric counts them.

// RecipientNoticeArgs sends one notice.
type RecipientNoticeArgs struct {
	RequestID string `json:"request_id"`
	Recipient string `json:"recipient"`
}

func (RecipientNoticeArgs) Kind() string { return "recipient_notice" }

// notifyRecipients records and enqueues, in the transaction that finished
// the request's store tasks, a notice to every recipient of the product for
// the right, unless the subject was found in no store (then nothing of
// theirs was shared).
func (p *Pipeline) notifyRecipients(ctx context.Context, tx pgx.Tx, r *rights.Request, now time.Time) error {
	recipients := p.settings.RecipientsFor(r.Product, r.Type)
	if len(recipients) == 0 || (r.Outcome != nil && r.Outcome.CancelledBy != "") {
		return nil
	}
	tasks, err := storage.ListTasks(ctx, tx, r.ID)
	if err != nil {
		return err
	}
	found := false
	for _, t := range tasks {
		found = found || (t.Report != nil && t.Report.Resolved)
	}
	if !found {
		return nil
	}
	var names, notTold []string
	for _, rc := range recipients {
		if r.Type == rights.TypeWithdrawConsent && !rc.Concerns(r.Purposes) {
			continue // not a purpose it received data for
		}
		if ok, why := recipientReceived(r, rc, tasks); !ok {
			// Told only when it received this person's data: a credit
			// bureau hears nothing of a customer who never borrowed.
			notTold = append(notTold, rc.Name)
			if err := storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: now, Actor: rights.ActorSystem,
				Action: "recipient.not_told", Detail: map[string]any{"recipient": rc.Name, "reason": why}}); err != nil {
				return err
			}
			continue
		}
		n := storage.Notice{RequestID: r.ID, Recipient: rc.Name, Channel: "webhook", Status: storage.NoticePending, CreatedAt: now}
		if rc.Email != "" {
			n.Channel = "email"
			if n.AckSecret, n.AckTokenHash, err = p.newToken(purposeAckLink, r.ID, rc.Name); err != nil {
				return err
			}
		}
		if err := storage.InsertNotice(ctx, tx, n); err != nil {
			return err
		}
		if err := p.insertTx(ctx, tx, RecipientNoticeArgs{RequestID: r.ID, Recipient: rc.Name}); err != nil {
			return err
		}
		names = append(names, rc.Label())
	}
	if len(names) == 0 && len(notTold) == 0 {
		return nil
	}
	if r.Outcome == nil {
		r.Outcome = &rights.Outcome{}
	}
	r.Outcome.Recipients, r.Outcome.NotTold = names, notTold
	return nil
}

// recipientReceived reports whether the recipient received this person's
// data by its condition (recipients[].when), and if not, why.
func recipientReceived(r *rights.Request, rc config.Recipient, tasks []*rights.Task) (bool, string) {
	w := rc.When
	switch {
	case w == nil:
		return true, ""
	case w.Dataset != "":
		store, table, _ := strings.Cut(w.Dataset, ".")
		for _, t := range tasks {
			if t.Store != store {
				continue
			}
			for _, rep := range []*rights.StoreReport{t.Inventory, t.Report} {
				if rep == nil {
					continue
				}
				for _, d := range rep.Datasets {
					if d.Name == table && d.Rows+d.Deleted+d.Anonymized+d.Restricted > 0 {
						return true, ""
					}
				}
			}
		}
		return false, "no rows of " + w.Dataset
	default:
		if r.Outcome != nil && r.Outcome.RecipientConditions[rc.Name] {
			return true, ""
		}
		return false, "condition on " + w.Store + " is false"
	}
}

// recipientConditions asks, for each third party of the request's right
// with a query condition, whether it received this person's data. A store
// that does not answer fails the plan, which is retried: nobody is told
// or left untold on a guess.
func (p *Pipeline) recipientConditions(ctx context.Context, r *rights.Request) (map[string]bool, error) {
	var out map[string]bool
	for _, rc := range p.settings.RecipientsFor(r.Product, r.Type) {
		if rc.When == nil || rc.When.Store == "" {
			continue
		}
		conn, err := p.connector(ctx, rc.When.Store)
		if err != nil {
			return nil, err
		}
		checker, ok := conn.(rights.Prechecker)
		if !ok {
			return nil, fmt.Errorf("store %s cannot run the condition of recipient %s", rc.When.Store, rc.Name)
		}
		held, err := checker.Precheck(ctx, r.Subject.All(), rc.When.Query)
		if err != nil {
			return nil, fmt.Errorf("condition of recipient %s: %w", rc.Name, err)
		}
		if out == nil {
			out = map[string]bool{}
		}
		out[rc.Name] = held
	}
	return out, nil
}

// AckURL is the page where an emailed recipient acknowledges a notice.
func (p *Pipeline) AckURL(token string) string {
	return strings.TrimSuffix(p.settings.HTTP.PublicURL, "/") + "/recipients/ack/" + url.PathEscape(token)
}

// RecipientCallbackURL is where a webhook recipient posts its
// acknowledgement later.
func (p *Pipeline) RecipientCallbackURL(requestID, recipient string) string {
	return strings.TrimSuffix(p.settings.HTTP.PublicURL, "/") + "/api/v1/callbacks/recipients/" + requestID + "/" + recipient
}

// recipientNoticeWorker sends one notice. An email is recorded as sent in
// the same transaction as its audit event; a crash in between resends the
// same message (same Message-ID, same link). A webhook call is the same
// call each time (same Idempotency-Key).
type recipientNoticeWorker struct {
	river.WorkerDefaults[RecipientNoticeArgs]
	p *Pipeline
}

func (w *recipientNoticeWorker) Work(ctx context.Context, job *river.Job[RecipientNoticeArgs]) error {
	p := w.p
	n, err := storage.GetNotice(ctx, p.db.Pool, job.Args.RequestID, job.Args.Recipient, false)
	if err != nil {
		return err
	}
	if n.Status != storage.NoticePending {
		return nil
	}
	r, err := storage.GetRequest(ctx, p.db.Pool, n.RequestID)
	if err != nil {
		return err
	}
	rc, ok := p.settings.Recipient(n.Recipient)
	var (
		status  = storage.NoticeSent
		msgID   string
		sendErr error
	)
	switch {
	case !ok:
		sendErr = fmt.Errorf("recipient %s is no longer configured", n.Recipient)
	case n.Channel == "email":
		var msg rights.Message
		if msg, sendErr = p.recipientMessage(r, rc, n); sendErr == nil {
			msgID = msg.ID
			sendErr = p.mailer.Send(ctx, msg)
		}
	default:
		var acked bool
		acked, sendErr = p.callRecipient(ctx, r, rc)
		if acked {
			status = storage.NoticeAcknowledged
		}
	}
	if sendErr != nil && !lastAttempt(job.JobRow) {
		return fmt.Errorf("notice to %s for %s: %w", n.Recipient, r.ID, sendErr)
	}
	now := p.now().UTC()
	err = step(ctx, p, job, func(tx pgx.Tx) error {
		n, err := storage.GetNotice(ctx, tx, job.Args.RequestID, job.Args.Recipient, true)
		if err != nil || n.Status != storage.NoticePending {
			return err
		}
		n.Attempts = job.Attempt
		detail := map[string]any{"recipient": n.Recipient, "channel": n.Channel}
		action := "recipient.notified"
		switch {
		case sendErr != nil:
			n.Status, n.LastError = storage.NoticeFailed, safeError(sendErr)
			detail["error"], action = n.LastError, "recipient.failed"
		case status == storage.NoticeAcknowledged:
			n.Status, n.SentAt, n.AcknowledgedAt, n.AcknowledgedBy = status, &now, &now, "recipient"
			action = "recipient.acknowledged"
		default:
			n.Status, n.SentAt, n.MessageID = status, &now, msgID
			if msgID != "" {
				detail["message_id"] = msgID
			}
		}
		if err := storage.SaveNotice(ctx, tx, n); err != nil {
			return err
		}
		p.metrics.RecipientNotice(n.Recipient, n.Status)
		return storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: n.RequestID, At: now, Actor: rights.ActorSystem, Action: action, Detail: detail})
	})
	if err != nil {
		return err
	}
	if sendErr != nil {
		return fmt.Errorf("notice to %s for %s gave up: %w", job.Args.Recipient, job.Args.RequestID, sendErr)
	}
	return nil
}

// callRecipient posts the notice to a webhook recipient:
//
//	→ {"version":1,"kind":"erasure_notice","request_id","recipient","right","subject":{"identities":{…}},"ack_url"}
//	← 200 {"acknowledged": true}  done already
//	← 202                         will acknowledge at ack_url, signed
//
// and reports whether it acknowledged at once.
func (p *Pipeline) callRecipient(ctx context.Context, r *rights.Request, rc config.Recipient) (bool, error) {
	identities := r.Subject.All().Identities
	kind := "erasure_notice"
	if rc.StopsSharing(r.Type) {
		kind = "stop_sharing_notice"
	}
	call := map[string]any{"version": stores.WebhookVersion, "kind": kind,
		"request_id": r.ID, "recipient": rc.Name, "right": r.Type,
		"subject": map[string]any{"identities": identities}, "ack_url": p.RecipientCallbackURL(r.ID, rc.Name)}
	if len(r.Purposes) > 0 {
		call["purposes"] = r.Purposes
	}
	body, err := json.Marshal(call)
	if err != nil {
		return false, err
	}
	poster := stores.NewSignedPoster("recipient "+rc.Name, rc.Webhook.URL, rc.Webhook.Secret, rc.Webhook.Timeout)
	defer poster.Close()
	status, answer, err := poster.Post(ctx, r.ID+"."+rc.Name, body)
	switch {
	case err != nil:
		return false, err
	case status == http.StatusAccepted:
		return false, nil
	case status != http.StatusOK:
		return false, fmt.Errorf("recipient %s answered %d %s", rc.Name, status, http.StatusText(status))
	}
	var result struct {
		Acknowledged bool `json:"acknowledged"`
	}
	if err := json.Unmarshal(answer, &result); err != nil || !result.Acknowledged {
		return false, fmt.Errorf("recipient %s: a 200 answer must be {\"acknowledged\": true}; answer 202 to acknowledge later", rc.Name)
	}
	return true, nil
}

// Acknowledgement is a recipient's confirmation that it erased the data.
type Acknowledgement struct {
	By   string // "staff:<name>", "recipient", "recipient (email link)"
	Note string
}

// acknowledge records an acknowledgement of n, locked in tx. An
// acknowledged notice stays as it was: acknowledging twice is harmless.
func (p *Pipeline) acknowledge(ctx context.Context, tx pgx.Tx, n *storage.Notice, ack Acknowledgement) error {
	if n.Status == storage.NoticeAcknowledged {
		return nil
	}
	if n.Status == storage.NoticePending {
		return rights.Errorf(rights.EConflict, "the notice to %s has not been sent yet", n.Recipient)
	}
	if len(ack.Note) > 2000 {
		return &rights.Error{Code: rights.EInvalid, Message: "the note is too long",
			Fields: []rights.FieldProblem{{Field: "note", Reason: "at most 2000 bytes"}}}
	}
	now := p.now().UTC()
	n.Status, n.AcknowledgedAt, n.AcknowledgedBy, n.Note = storage.NoticeAcknowledged, &now, ack.By, ack.Note
	if n.SentAt == nil {
		n.SentAt = &now // a failed notice followed up by hand
	}
	if err := storage.SaveNotice(ctx, tx, n); err != nil {
		return err
	}
	p.metrics.RecipientNotice(n.Recipient, n.Status)
	// The note is the recipient's or staff's free text: kept on the notice,
	// not copied into the audit trail.
	// Staff acknowledging on the recipient's behalf act as themselves; the
	// recipient itself is the actor otherwise, and how it answered is kept.
	actor, detail := ack.By, map[string]any{"recipient": n.Recipient, "channel": n.Channel}
	if !strings.HasPrefix(actor, "staff:") {
		actor, detail["via"] = rights.ActorRecipient(n.Recipient), ack.By
	}
	return storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: n.RequestID, At: now, Actor: actor,
		Action: "recipient.acknowledged", Detail: detail})
}

// AcknowledgeNotice records that staff confirmed the recipient erased the
// data (by phone, by letter, after a failed notice).
func (p *Pipeline) AcknowledgeNotice(ctx context.Context, staff, requestID, recipient, note string) (*storage.Notice, error) {
	if strings.TrimSpace(note) == "" {
		return nil, &rights.Error{Code: rights.EInvalid, Message: "a note is required",
			Fields: []rights.FieldProblem{{Field: "note", Reason: "how the recipient confirmed it, at most 2000 bytes"}}}
	}
	var n *storage.Notice
	err := p.db.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if n, err = storage.GetNotice(ctx, tx, requestID, recipient, true); err != nil {
			return err
		}
		return p.acknowledge(ctx, tx, n, Acknowledgement{By: rights.ActorStaff(staff), Note: note})
	})
	return n, err
}

// AcknowledgeByToken records an acknowledgement made on the page an
// emailed notice links to.
func (p *Pipeline) AcknowledgeByToken(ctx context.Context, token, note string) (*storage.Notice, error) {
	var n *storage.Notice
	err := p.db.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if n, err = storage.NoticeByTokenHash(ctx, tx, tokenHash(token)); err != nil {
			return err
		}
		return p.acknowledge(ctx, tx, n, Acknowledgement{By: "recipient (email link)", Note: note})
	})
	return n, err
}

// NoticeForToken returns the notice an acknowledgement link names, for the
// page that asks the recipient to confirm.
func (p *Pipeline) NoticeForToken(ctx context.Context, token string) (*storage.Notice, error) {
	var n *storage.Notice
	err := p.db.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		n, err = storage.NoticeByTokenHash(ctx, tx, tokenHash(token))
		return err
	})
	return n, err
}

// RecipientCallback is a webhook recipient's signed acknowledgement.
type RecipientCallback struct {
	RequestID, Recipient string
	// Method is the HTTP method the callback came with; it is signed.
	Method    string
	Signature stores.SignatureHeaders
	Body      io.Reader
}

// AcknowledgeFromCallback checks the callback's signature with the
// recipient's secret and records its acknowledgement, {"acknowledged": true,
// "note": "…"}.
//
// The signature (scheme v2) must be for this method, the ack_url of this
// request and recipient, and this body, within the signature window, with a
// nonce not spent before: anything wrong with it — or an unknown recipient,
// or one that is not a webhook — is one unauthorized error, so the route
// does not tell which recipients exist. A body over
// stores.WebhookMaxSmallResult is too_large. The nonce is spent in the
// transaction that records the acknowledgement, so a replay is unauthorized
// and changes nothing.
func (p *Pipeline) AcknowledgeFromCallback(ctx context.Context, cb RecipientCallback) (*storage.Notice, error) {
	unauthorized := rights.Errorf(rights.EUnauthorized, "%v", stores.ErrWebhookSignature)
	rc, ok := p.settings.Recipient(cb.Recipient)
	if !ok || rc.Webhook == nil || !storage.ValidID(cb.RequestID) {
		return nil, unauthorized
	}
	target, err := signedTarget(p.RecipientCallbackURL(cb.RequestID, rc.Name))
	if err != nil {
		return nil, err
	}
	verifier, err := stores.NewRequestVerifierAny(rc.Webhook.VerifyingSecrets(), cb.Method, target, cb.Signature, time.Now(), p.signatureWindow())
	if err != nil {
		return nil, unauthorized
	}
	var buf bytes.Buffer
	limit := stores.WebhookMaxSmallResult
	n, err := io.Copy(io.MultiWriter(&buf, verifier), io.LimitReader(cb.Body, limit+1))
	switch {
	case err != nil:
		return nil, rights.Errorf(rights.EInvalid, "the body could not be read")
	case n > limit:
		return nil, stores.BodyTooLarge(limit)
	}
	signed, err := verifier.Verify()
	if err != nil {
		return nil, unauthorized
	}
	// encoding/json would turn invalid UTF-8 into U+FFFD, silently
	// changing what the recipient wrote, and decode \u0000 into a NUL that
	// Postgres refuses in text (a 500): both are refused here, by name, as
	// the API refuses them in staff bodies.
	if p := rights.JSONTextProblems(buf.Bytes()); len(p) > 0 {
		return nil, &rights.Error{Code: rights.EInvalid, Message: "the body holds text that is not valid UTF-8 or holds a NUL byte", Fields: p}
	}
	var body struct {
		Acknowledged bool   `json:"acknowledged"`
		Note         string `json:"note"`
	}
	err = json.Unmarshal(buf.Bytes(), &body)
	if err != nil || !body.Acknowledged {
		return nil, &rights.Error{Code: rights.EInvalid, Message: "the body must be {\"acknowledged\": true, \"note\": \"…\"}",
			Fields: []rights.FieldProblem{{Field: "acknowledged", Reason: "must be true"}}}
	}
	var notice *storage.Notice
	err = p.db.InTx(ctx, func(tx pgx.Tx) error {
		if err := storage.UseNonce(ctx, tx, signed.Nonce, signed.NonceExpiresAt); err != nil {
			if errors.Is(err, storage.ErrNonceUsed) {
				return unauthorized
			}
			return fmt.Errorf("acknowledgement of %s for %s: %w", rc.Name, cb.RequestID, err)
		}
		var err error
		if notice, err = storage.GetNotice(ctx, tx, cb.RequestID, rc.Name, true); err != nil {
			return err
		}
		return p.acknowledge(ctx, tx, notice, Acknowledgement{By: "recipient", Note: body.Note})
	})
	return notice, err
}

// recipientMessage is the notice emailed to a recipient: in Chinese first,
// English below. It names the subject by identity types and values, which
// the recipient needs to find the data it holds.
func (p *Pipeline) recipientMessage(r *rights.Request, rc config.Recipient, n *storage.Notice) (rights.Message, error) {
	all := r.Subject.All().Identities
	var identities []string
	for _, k := range sortedKeys(all) {
		identities = append(identities, k+": "+all[k])
	}
	completed := n.CreatedAt // when the stores finished: the same text on a resend
	token, err := p.ackToken(n)
	if err != nil {
		return rights.Message{}, err
	}
	subject, body, err := p.render(tmplRecipientNotice, rights.LocaleZH, r.Product, func(l string) any {
		return map[string]any{"Recipient": rc.Label(), "Product": p.productName(r.Product), "ID": r.ID,
			"Right": rightNames[l][r.Type], "Completed": completed.In(p.location(r.Product)).Format("2006-01-02"),
			"Identities": identities, "AckURL": p.AckURL(token), "StopSharing": rc.StopsSharing(r.Type)}
	})
	return rights.Message{ID: r.ID + ".notice." + rc.Name + "@datarights", To: rc.Email, Subject: subject, Text: body}, err
}
