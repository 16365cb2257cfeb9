package jobs

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
	"github.com/datarights/datarights/storage/stores"
)

// Account cancellation (注销). Before anything is erased, every pre-check
// configured for the product must pass: a blocked check refuses the request
// with its reason and changes nothing. Then every store of the product
// erases the subject's data as a delete would (retention periods restrict
// what the law keeps), and the request cannot be stopped: a failed store
// task is retried, never undone. A later request about the cancelled
// account is answered with the cancellation.

// blockedCheck is a pre-check that blocked a cancellation.
type blockedCheck struct {
	name          string
	reason, other string // in the request's locale and in the other
}

// runPrechecks runs the product's cancellation pre-checks for the subject
// and returns those that block. An error (a store or service down) means
// the plan is retried: a cancellation never goes ahead on a check that did
// not answer.
func (p *Pipeline) runPrechecks(ctx context.Context, r *rights.Request) ([]blockedCheck, error) {
	var blocked []blockedCheck
	for _, pc := range p.settings.PrechecksForRight(r.Product, r.Type) {
		block, extra, err := p.runPrecheck(ctx, r, pc)
		if err != nil {
			return nil, fmt.Errorf("pre-check %s: %w", pc.Name, err)
		}
		if block {
			reason, other := pc.Reason.In(r.Locale), pc.Reason.In(otherLocale(r.Locale))
			if extra != "" { // the service's own words, in whatever language it wrote them
				reason, other = reason+" ("+extra+")", other+" ("+extra+")"
			}
			blocked = append(blocked, blockedCheck{name: pc.Name, reason: reason, other: other})
		}
	}
	return blocked, nil
}

func (p *Pipeline) runPrecheck(ctx context.Context, r *rights.Request, pc config.Precheck) (bool, string, error) {
	subject := r.Subject.All()
	if pc.Webhook != nil {
		poster := stores.NewSignedPoster("precheck "+pc.Name, pc.Webhook.URL, pc.Webhook.Secret, pc.Webhook.Timeout)
		defer poster.Close()
		return stores.WebhookPrecheck(ctx, poster, r.ID, pc.Name, subject)
	}
	conn, err := p.connector(ctx, pc.Store)
	if err != nil {
		return false, "", err
	}
	checker, ok := conn.(rights.Prechecker)
	if !ok {
		return false, "", fmt.Errorf("store %s cannot run a pre-check", pc.Store)
	}
	blocked, err := checker.Precheck(ctx, subject, pc.Query)
	return blocked, "", err
}

// refuseBlocked refuses a request a pre-check of its right blocked (a
// cancellation: cancellation_blocked; a delete: erasure_blocked), in the
// plan's transaction, and sends the requester the reasons. Nothing was
// changed.
func (p *Pipeline) refuseBlocked(ctx context.Context, tx pgx.Tx, r *rights.Request, blocked []blockedCheck, now time.Time) error {
	names, reasons, others := make([]string, len(blocked)), make([]string, len(blocked)), make([]string, len(blocked))
	for i, b := range blocked {
		names[i], reasons[i], others[i] = b.name, b.reason, b.other
	}
	ground := rights.BlockedReason(r.Type)
	r.Refusal = &rights.Refusal{Reason: ground, Message: strings.Join(reasons, "\n"),
		Translated: strings.Join(others, "\n"), By: rights.ActorSystem, Prechecks: names}
	if err := p.transition(ctx, tx, r, rights.StatusRefused, now, storage.Change{
		Actor: rights.ActorSystem, Action: "request.refused", Detail: map[string]any{"reason": ground, "prechecks": names},
	}); err != nil {
		return err
	}
	p.metrics.RequestRefused(r.Product, string(ground))
	return p.insertTx(ctx, tx, NoticeArgs{RequestID: r.ID, Notice: noticeRefusal})
}

// needsLiveAccount reports whether a right acts on an account that exists:
// after a cancellation there is nothing to cancel, correct or withdraw
// consent from. Access, copy and delete still run: they show or erase what
// is left (restricted records).
func needsLiveAccount(t rights.Type) bool {
	return t == rights.TypeCancelAccount || t == rights.TypeCorrect || t == rights.TypeWithdrawConsent
}

// findCancellation looks for an earlier cancellation of the subject's
// account. Store keys (a user_id) are never reused, so when the subject has
// one, given or resolved, only a cancellation of that key counts; a reused
// email or phone number that now belongs to a new account must not make the
// new account look cancelled. A subject with no key (the account's rows are
// gone, so the email resolves nothing) matches on what it was named by.
func (p *Pipeline) findCancellation(ctx context.Context, r *rights.Request, resolved map[string]string) (string, time.Time, error) {
	all := rights.Subject{Identities: r.Subject.Identities, Resolved: resolved}.All().Identities
	keys := map[string]string{}
	for _, s := range p.settings.StoresFor(r.Product) {
		if v, ok := all[s.Key]; ok {
			keys[s.Key] = v
		}
	}
	if len(keys) == 0 {
		keys = all
	}
	return storage.FindCancellation(ctx, p.db.Pool, r, keys)
}

// answerCancelled completes, without store tasks, a request about an
// account an earlier request cancelled.
func (p *Pipeline) answerCancelled(ctx context.Context, tx pgx.Tx, r *rights.Request, by string, at time.Time, now time.Time) error {
	r.Outcome = &rights.Outcome{CancelledBy: by, CancelledAt: &at}
	if err := p.transition(ctx, tx, r, rights.StatusInProgress, now, storage.Change{
		Actor: rights.ActorSystem, Action: "account.already_cancelled", Detail: map[string]any{"cancel_request_id": by, "cancelled_at": at},
	}); err != nil {
		return err
	}
	return p.afterTasks(ctx, tx, r, now)
}

// checkVerificationMethod enforces rights.<type>.verification_methods
// (cancel_account.verification_methods) at intake: an erasure or a
// cancellation is irreversible, so the product may demand a strong check
// (a face check) that an emailed code is not.
func (p *Pipeline) checkVerificationMethod(in *rights.Intake, ch rights.Channel, problems *rights.Problems) {
	methods := p.settings.Rules(in.Type).VerificationMethods
	if len(methods) == 0 || hasProblem(*problems, "verification.method") || hasProblem(*problems, "type") {
		return // an unknown method is reported already
	}
	what := rightNoun(in.Type)
	switch {
	case ch == rights.ChannelSelfService && !slices.Contains(methods, "email_code"):
		problems.Add("type", "%s must be verified by %s: ask customer service", what, strings.Join(methods, " or "))
	case ch == rights.ChannelPartner && !slices.Contains(methods, rights.VerificationPartnerAttested):
		problems.Add("type", "%s must be verified by %s: a partner's attestation is not accepted for it", what, strings.Join(methods, " or "))
	case ch == rights.ChannelStaff && in.Verification != nil && in.Verification.Method != "" && !slices.Contains(methods, in.Verification.Method):
		problems.Add("verification.method", "%s must be verified by %s, not %q", what, strings.Join(methods, " or "), in.Verification.Method)
	}
}

// SelfServiceOffers reports whether a person may file right t themselves
// with an emailed code; false when the right needs stronger verification
// (rights.<type>.verification_methods without email_code: the demo's
// delete and account cancellation need a face check), which customer
// service does.
func (p *Pipeline) SelfServiceOffers(t rights.Type) bool {
	methods := p.settings.Rules(t).VerificationMethods
	return len(methods) == 0 || slices.Contains(methods, "email_code")
}

// rightNoun names a request of right t in an error message.
func rightNoun(t rights.Type) string {
	switch t {
	case rights.TypeCancelAccount:
		return "an account cancellation"
	case rights.TypeDelete:
		return "a deletion"
	case rights.TypeAccess:
		return "an access request"
	}
	return "a " + strings.ReplaceAll(string(t), "_", " ") + " request"
}
