package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// SubmitStaff takes a customer-service ticket. With an idempotency key, a
// retried submit with the same body returns the request the first one
// created (created is false); the same key with another body is a conflict.
func (p *Pipeline) SubmitStaff(ctx context.Context, staff string, in rights.Intake, idem *storage.Idempotency) (r *rights.Request, created bool, err error) {
	r, _, created, err = p.SubmitStaffReceived(ctx, staff, in, idem)
	return r, created, err
}

// SubmitStaffReceived is SubmitStaff that also returns, when it created the
// request, its first audit event ("request.received"). Both are as stored
// and as committed: nothing else refers to a request before its
// transaction commits, so they are the whole of it at that moment, and the
// API answers a new ticket with them without reading it back.
func (p *Pipeline) SubmitStaffReceived(ctx context.Context, staff string, in rights.Intake, idem *storage.Idempotency) (r *rights.Request, received *rights.AuditEvent, created bool, err error) {
	if err := p.validateIntake(&in, rights.ChannelStaff); err != nil {
		return nil, nil, false, err
	}
	if err := p.checkConcerns(ctx, in); err != nil {
		return nil, nil, false, err
	}
	createdBy := rights.ActorStaff(staff)
	if idem != nil && len(idem.Alternates) > 0 {
		// A derived key may have been stored under an earlier window's
		// key, which the unique index below cannot see. A key of one's
		// own (no alternates) needs no look-up first: the index refuses
		// a second request under it, and the refusal replays the first.
		if r, err := p.replay(ctx, createdBy, idem, "Idempotency-Key"); r != nil || err != nil {
			return r, nil, false, err
		}
	}
	now := p.now().UTC()
	r = p.newRequest(ctx, in, rights.ChannelStaff, rights.StatusReceived, createdBy, now)
	verification := *in.Verification
	verification.By = staff
	r.Verification = &verification

	it := &intakeItem{received: storage.Received{Request: r, Idem: idem, Event: rights.AuditEvent{
		RequestID: r.ID, At: now, Actor: createdBy, Action: "request.received", ToStatus: r.Status,
		Detail: intakeDetail(r),
	}}}
	if err := p.commitReceived(ctx, it); err != nil {
		return nil, nil, false, err
	}
	if !it.received.Created {
		// A submit with the same key committed first (a retry, or a
		// concurrent submit).
		r, err := p.replay(ctx, createdBy, idem, "Idempotency-Key")
		if err == nil && r == nil {
			err = fmt.Errorf("idempotency key %q: refused as used, then not found", idem.Key)
		}
		return r, nil, false, err
	}
	ev := it.received.Stored
	p.metrics.RequestReceived(r.Product, r.Type, r.Channel)
	return r, &ev, true, nil
}

// replay returns the request createdBy filed under idem's key (or one of
// its alternates), nil if there is none, or a conflict naming field (where
// the key came from) when it was filed with another body.
func (p *Pipeline) replay(ctx context.Context, createdBy string, idem *storage.Idempotency, field string) (*rights.Request, error) {
	var (
		r    *rights.Request
		hash string
		err  error
	)
	for _, key := range append([]string{idem.Key}, idem.Alternates...) {
		if r, hash, err = storage.FindByIdempotencyKey(ctx, p.db.Pool, createdBy, key); err != nil || r != nil {
			break
		}
	}
	if err != nil || r == nil {
		return nil, err
	}
	if hash != idem.BodyHash {
		return nil, &rights.Error{Code: rights.EConflict,
			Message: "this " + field + " was already used for a different request",
			Fields:  []rights.FieldProblem{{Field: field, Reason: "reused with a different body"}}}
	}
	return r, nil
}

// SubmitSelfService takes a request from the person themselves, identified by
// email. It stores the request and enqueues the email with a one-time code;
// processing starts only when the code comes back. The caller learns nothing
// about whether the email belongs to anyone: the answer is the same, and so
// are the limits (per network, per mailbox), which are counted before
// anything is stored.
func (p *Pipeline) SubmitSelfService(ctx context.Context, in rights.Intake, client Client) (*rights.Request, error) {
	email := strings.TrimSpace(in.Identities["email"])
	if in.Identities != nil && email != "" {
		in.Identities["email"] = email
	}
	in.DeliveryEmail = email
	if err := p.validateIntake(&in, rights.ChannelSelfService); err != nil {
		return nil, err
	}
	if err := p.takeNetwork(ctx, storage.ThrottleIPRequest, client, p.settings.SelfService.Limits.RequestsPerIPPerHour); err != nil {
		return nil, err
	}
	now := p.now().UTC()
	r := p.newRequest(ctx, in, rights.ChannelSelfService, rights.StatusAwaitingVerification, "self-service", now)
	err := p.db.InTx(ctx, func(tx pgx.Tx) error {
		// Each request sends one code: the mailbox's code limit is its
		// request limit.
		if err := p.takeCodeEmail(ctx, tx, now, email); err != nil {
			return err
		}
		if err := storage.InsertRequest(ctx, tx, r, nil); err != nil {
			return err
		}
		if err := storage.AppendAudit(ctx, tx, rights.AuditEvent{
			RequestID: r.ID, At: now, Actor: rights.ActorRequester, Action: "request.received", ToStatus: r.Status,
			Detail: intakeDetail(r),
		}); err != nil {
			return err
		}
		if err := p.insertTx(ctx, tx, SendCodeArgs{RequestID: r.ID}); err != nil {
			return err
		}
		// Unless verified in time, the request expires and is purged.
		return p.insertAt(ctx, tx, ExpireArgs{RequestID: r.ID}, p.expiresAt(r.ReceivedAt))
	})
	if err != nil {
		return nil, err
	}
	p.metrics.RequestReceived(r.Product, r.Type, r.Channel)
	return r, nil
}

// expiresAt is when an unverified request whose code was sent at sent
// expires.
func (p *Pipeline) expiresAt(sent time.Time) time.Time {
	return sent.Add(p.settings.SelfService.CodeTTL + p.settings.SelfService.ExpiryGrace)
}

func (p *Pipeline) newRequest(ctx context.Context, in rights.Intake, ch rights.Channel, status rights.Status, createdBy string, now time.Time) *rights.Request {
	r := &rights.Request{
		ID: storage.NewID(), Product: in.Product, Type: in.Type, Channel: ch, Status: status,
		Subject: rights.Subject{Identities: in.Identities}, DeliveryEmail: in.DeliveryEmail,
		Relation: in.Relation, Locale: in.Locale, Note: in.Note, TicketRef: in.TicketRef, CreatedBy: createdBy,
		ReceivedAt: now, UpdatedAt: now, Corrections: in.Corrections, Purposes: in.Purposes,
		Details: newDetails(in),
	}
	p.refreshDeadline(ctx, r, now)
	return r
}

// intakeDetail is the audit detail of a new request: which identity types
// were given (and, for a correction, which fields it changes), never their
// values.
func intakeDetail(r *rights.Request) map[string]any {
	types := make([]string, 0, len(r.Subject.Identities))
	for k := range r.Subject.Identities {
		types = append(types, k)
	}
	sort.Strings(types)
	detail := map[string]any{"product": r.Product, "type": r.Type, "channel": r.Channel,
		"relation": r.Relation, "identity_types": types}
	if len(r.Corrections) > 0 {
		detail["fields"] = correctionFields(r)
	}
	if len(r.Purposes) > 0 {
		detail["purposes"] = r.Purposes
	}
	if d := r.Details; d != nil {
		// The texts are the requester's words: their length only.
		if d.Text != "" {
			detail["text_bytes"] = len(d.Text)
		}
		if d.Concerns != "" {
			detail["concerns"] = d.Concerns
		}
		if d.Receiver != "" {
			detail["receiver"] = d.Receiver
		}
	}
	return detail
}

// VerifyCode checks a self-service code. The right code verifies the request
// and starts processing; a wrong one counts against the request (then its
// code locks) and against the mailbox across all its requests (then every
// code for it is refused for the window and the owner is told); an expired
// one must be requested again. Calls are limited per network too.
//
// No guess is evaluated once a limit is reached, not even the right one:
// the limits bound how many guesses an attacker gets at a person's codes,
// whatever they spread them over.
//
// The right code also gives the requester an access key (returned once,
// kept only as a hash) to their request's status page, where the password
// of an exported copy is shown.
func (p *Pipeline) VerifyCode(ctx context.Context, requestID, code string, client Client) (*rights.Request, string, error) {
	if err := p.takeNetwork(ctx, storage.ThrottleIPVerify, client, p.settings.SelfService.Limits.VerificationsPerIPPerHour); err != nil {
		return nil, "", err
	}
	var (
		r       *rights.Request
		outcome error
		key     string
	)
	notWaiting := rights.Errorf(rights.ENotFound, "no request %s awaits verification", requestID)
	err := p.db.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		r, err = storage.LockRequest(ctx, tx, requestID)
		if rights.ErrorCode(err) == rights.ENotFound {
			return notWaiting
		}
		if err != nil {
			return err
		}
		if r.Channel != rights.ChannelSelfService || r.Status != rights.StatusAwaitingVerification {
			return notWaiting
		}
		now := p.now().UTC()
		limit := p.settings.SelfService.Limits.WrongCodesPerDay
		mailboxKey, err := p.limitKey("mailbox", mailbox(r.DeliveryEmail))
		if err != nil {
			return err
		}
		// Locks the mailbox's count until commit: concurrent guesses at
		// its requests, on any replica, are evaluated one at a time.
		wait, err := storage.CheckThrottle(ctx, tx, storage.ThrottleWrongCode, mailboxKey, now, storage.Window{Limit: limit, Per: wrongCodeWindow})
		if err != nil {
			return err
		}
		if wait > 0 {
			return tooMany(wait)
		}
		c, err := storage.LockCode(ctx, tx, requestID)
		if err != nil {
			return err
		}
		switch {
		case c == nil:
			return rights.Errorf(rights.EConflict, "the code has not been sent yet; try again in a minute")
		case c.Attempts >= p.settings.SelfService.MaxAttempts:
			return rights.Errorf(rights.ELocked, "too many wrong codes; submit the request again")
		case !now.Before(c.ExpiresAt):
			return rights.Errorf(rights.EExpired, "the code has expired; submit the request again")
		}
		c.Attempts++
		if !p.codeMatches(c.Hash, "verify", requestID, code) {
			if err := storage.RecordThrottle(ctx, tx, storage.ThrottleWrongCode, mailboxKey, now); err != nil {
				return err
			}
			wrong, err := storage.CountThrottle(ctx, tx, storage.ThrottleWrongCode, mailboxKey, now.Add(-wrongCodeWindow))
			if err != nil {
				return err
			}
			left := min(p.settings.SelfService.MaxAttempts-c.Attempts, limit-wrong)
			// The failed attempt must be recorded even though the caller gets
			// an error, so the outcome travels outside the transaction.
			outcome = &rights.Error{Code: rights.EInvalid, Message: "the code is not correct",
				Fields: []rights.FieldProblem{{Field: "code", Reason: fmt.Sprintf("wrong code; %d attempts left", max(0, left))}}}
			if err := storage.SaveCodeAttempt(ctx, tx, c); err != nil {
				return err
			}
			detail := map[string]any{"attempt": c.Attempts}
			if wrong == limit {
				// This guess filled the window: the mailbox is locked, and
				// its owner hears of it (once per lock).
				detail["mailbox_locked"] = true
				if err := p.insertTx(ctx, tx, NoticeArgs{RequestID: r.ID, Notice: noticeLockout}); err != nil {
					return err
				}
			}
			return storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: now, Actor: rights.ActorRequester,
				Action: "verification.failed", Detail: detail})
		}
		c.ConsumedAt = &now
		if err := storage.SaveCodeAttempt(ctx, tx, c); err != nil {
			return err
		}
		if key, err = newLinkToken(); err != nil {
			return err
		}
		if err := storage.SetAccessToken(ctx, tx, r.ID, hashCode(r.ID, key)); err != nil {
			return err
		}
		r.Verification = &rights.Verification{Method: "email_code", By: rights.ActorRequester, At: now}
		r.VerifiedAt = &now
		p.refreshDeadline(ctx, r, now)
		if err := p.transition(ctx, tx, r, rights.StatusVerified, now, storage.Change{
			Actor: rights.ActorRequester, Action: "request.verified", Detail: map[string]any{"method": "email_code", "attempt": c.Attempts},
		}); err != nil {
			return err
		}
		return p.afterVerified(ctx, tx, r, now)
	})
	if err != nil {
		return nil, "", err
	}
	if outcome != nil {
		return nil, "", outcome
	}
	return r, key, nil
}

// hashCode binds a high-entropy secret (an access key) to its request, so
// one request's hash says nothing about another's key.
func hashCode(requestID, secret string) string {
	sum := sha256.Sum256([]byte(requestID + ":" + secret))
	return hex.EncodeToString(sum[:])
}

// afterVerified sends a verified request to be planned, unless it repeats a
// recent request for the same product, right and person: then it waits for
// staff, who approve it or refuse it as excessive_or_repeated.
func (p *Pipeline) afterVerified(ctx context.Context, tx pgx.Tx, r *rights.Request, now time.Time) error {
	if p.settings.Notify.Acknowledgement {
		if err := p.insertTx(ctx, tx, NoticeArgs{RequestID: r.ID, Notice: noticeAcknowledgement}); err != nil {
			return err
		}
	}
	if window := *p.settings.Intake.RepeatWindow; window > 0 {
		previous, err := storage.FindRepeat(ctx, tx, r, r.ReceivedAt.Add(-window))
		if err != nil {
			return err
		}
		if previous != "" && r.Type == rights.TypeCancelAccount {
			// Asking to cancel an account that is cancelled is not excessive,
			// just late: the plan answers it with the cancellation.
			if earlier, err := storage.GetRequest(ctx, tx, previous); err != nil {
				return err
			} else if earlier.Status == rights.StatusCompleted {
				previous = ""
			}
		}
		if previous != "" {
			if err := p.transition(ctx, tx, r, rights.StatusAwaitingApproval, now, storage.Change{
				Actor: rights.ActorSystem, Action: "request.repeated",
				Detail: map[string]any{"previous_request_id": previous, "window_hours": window.Hours()},
			}); err != nil {
				return err
			}
			if _, err := p.holdProtectedCorrection(ctx, tx, r, now); err != nil {
				return err
			}
			_, err := p.holdNextOfKin(ctx, tx, r, now)
			return err
		}
	}
	// A correction of protected fields (phone, ID number) waits for staff.
	if held, err := p.holdProtectedCorrection(ctx, tx, r, now); err != nil {
		return err
	} else if held {
		_, err := p.holdNextOfKin(ctx, tx, r, now)
		return err
	}
	// Next of kin wait for an approver to check their evidence.
	if held, err := p.holdNextOfKin(ctx, tx, r, now); held || err != nil {
		return err
	}
	return p.insertTx(ctx, tx, PlanArgs{RequestID: r.ID})
}

// Approve lets a request that waits for staff go ahead. A next-of-kin
// request also needs evidence: what the approver checked (death
// certificate, proof of relationship), recorded on the request.
func (p *Pipeline) Approve(ctx context.Context, staff, requestID, note string, evidence ...string) (*rights.Request, error) {
	ev := strings.TrimSpace(strings.Join(evidence, ""))
	if len(ev) > 2000 {
		return nil, &rights.Error{Code: rights.EInvalid, Message: "the evidence is too long",
			Fields: []rights.FieldProblem{{Field: "evidence", Reason: "at most 2000 bytes"}}}
	}
	if strings.TrimSpace(note) == "" || len(note) > 2000 {
		return nil, &rights.Error{Code: rights.EInvalid, Message: "a note is required",
			Fields: []rights.FieldProblem{{Field: "note", Reason: "why the request may go ahead, at most 2000 bytes"}}}
	}
	var r *rights.Request
	err := p.db.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if r, err = storage.LockRequest(ctx, tx, requestID); err != nil {
			return err
		}
		if r.Status != rights.StatusAwaitingApproval {
			return rights.Errorf(rights.EConflict, "the request is %s, not awaiting approval", r.Status)
		}
		if r.Type == rights.TypeCorrect && len(p.protectedCorrections(r)) > 0 {
			if err := rights.FourEyes(r, staff, "approving its protected correction"); err != nil {
				return err
			}
		}
		detail := map[string]any{"note": note}
		if r.Relation == rights.RelationNextOfKin {
			if ev == "" {
				return &rights.Error{Code: rights.EInvalid, Message: "the evidence is required",
					Fields: []rights.FieldProblem{{Field: "evidence", Reason: "a next-of-kin request needs what you checked: the death certificate and the proof of relationship"}}}
			}
			if err := rights.FourEyes(r, staff, "approving a next-of-kin request"); err != nil {
				return err
			}
			r.D().Evidence = ev
			detail["evidence_recorded"] = true
		}
		if err := p.transition(ctx, tx, r, rights.StatusVerified, p.now().UTC(), storage.Change{
			Actor: rights.ActorStaff(staff), Action: "request.approved", Detail: detail,
		}); err != nil {
			return err
		}
		return p.insertTx(ctx, tx, PlanArgs{RequestID: r.ID})
	})
	return r, err
}
