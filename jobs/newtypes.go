package jobs

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// Issue 12: complaints and explanations (answered by staff), transfers to
// receiving handlers, and who may ask for whom: next of kin (approved,
// and checked against the deceased's arrangements) and guardians of minors
// (age bands, per-product age rules).

// checkNewTypes checks at intake what the configuration decides: a
// transfer's receiver, and the rights a guardian may exercise.
func (p *Pipeline) checkNewTypes(in *rights.Intake, problems *rights.Problems) {
	if in.Type == rights.TypeTransfer && in.Receiver != "" && !hasProblem(*problems, "receiver") {
		var names []string
		for _, rc := range p.settings.ReceiversFor(in.Product) {
			names = append(names, rc.Name)
		}
		if !slices.Contains(names, in.Receiver) {
			if len(names) == 0 {
				problems.Add("receiver", "%s transfers to no receiving handler", in.Product)
			} else {
				problems.Add("receiver", "unknown receiver %q; the receiving handlers of %s: %s", in.Receiver, in.Product, strings.Join(names, ", "))
			}
		}
	}
	if in.Relation == rights.RelationGuardian && in.Type.Valid() && !slices.Contains(p.settings.Minors.GuardianRights, in.Type) {
		allowed := make([]string, len(p.settings.Minors.GuardianRights))
		for i, t := range p.settings.Minors.GuardianRights {
			allowed[i] = string(t)
		}
		problems.Add("type", "a guardian may ask for %s for a minor, not %s", strings.Join(allowed, ", "), in.Type)
	}
}

// newDetails are a new request's details from its intake; nil when it has
// none.
func newDetails(in rights.Intake) *rights.Details {
	if in.Text == "" && in.Concerns == "" && in.Receiver == "" {
		return nil
	}
	return &rights.Details{Text: in.Text, Concerns: in.Concerns, Receiver: in.Receiver}
}

// errConcerns is the one answer for a concerned request that does not
// exist, is of another product or of another person: a complaint must not
// tell anyone whether someone else's request exists.
func errConcerns(id, product string) error {
	return &rights.Error{Code: rights.EInvalid, Message: "the request has invalid fields",
		Fields: []rights.FieldProblem{{Field: "concerns", Reason: fmt.Sprintf("no request %s of this person in %s", id, product)}}}
}

// concernsMatch reports whether the request a complaint names is the same
// product's and the same person's: they share an identity (given or
// resolved), or, for a complaint made by email, the earlier answer went to
// that address.
func concernsMatch(complaint rights.Subject, product string, earlier *rights.Request, email string) bool {
	if earlier.Product != product {
		return false
	}
	theirs := earlier.Subject.All().Identities
	for kind, v := range complaint.All().Identities {
		if w, ok := theirs[kind]; ok && sameIdentity(kind, v, w) {
			return true
		}
	}
	return email != "" && earlier.DeliveryEmail != "" && sameIdentity("email", email, earlier.DeliveryEmail)
}

func sameIdentity(kind, a, b string) bool {
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	if kind == "email" {
		return strings.EqualFold(a, b)
	}
	return a == b
}

// checkConcerns checks a staff complaint's concerned request at intake.
func (p *Pipeline) checkConcerns(ctx context.Context, in rights.Intake) error {
	if in.Type != rights.TypeComplaint || in.Concerns == "" {
		return nil
	}
	earlier, err := storage.GetRequest(ctx, p.db.Pool, in.Concerns)
	if rights.ErrorCode(err) == rights.ENotFound {
		return errConcerns(in.Concerns, in.Product)
	}
	if err != nil {
		return err
	}
	if !concernsMatch(rights.Subject{Identities: in.Identities}, in.Product, earlier, "") {
		return errConcerns(in.Concerns, in.Product)
	}
	return nil
}

// checkConcernsAtPlan checks a self-service complaint's concerned request
// once the requester is verified: a request of someone else is not linked
// (the complaint stays, as a general one), and nothing is said about it.
func (p *Pipeline) checkConcernsAtPlan(ctx context.Context, r *rights.Request, resolved map[string]string) (bool, error) {
	if r.Type != rights.TypeComplaint || r.Details == nil || r.Details.Concerns == "" {
		return true, nil
	}
	earlier, err := storage.GetRequest(ctx, p.db.Pool, r.Details.Concerns)
	if rights.ErrorCode(err) == rights.ENotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	email := ""
	if r.Channel == rights.ChannelSelfService {
		email = r.DeliveryEmail // proved by the code
	}
	subject := rights.Subject{Identities: r.Subject.Identities, Resolved: resolved}
	return concernsMatch(subject, r.Product, earlier, email), nil
}

// ageCheck is what the age lookup found for a request's subject and what
// the product's rule makes of it.
type ageCheck struct {
	band   string // "" when no lookup applies
	refuse string // why the rule refuses the request ("" when it does not)
}

// checkAge looks the subject's age up when the product has an age rule or
// a guardian asks, and applies the rule: a request about someone younger
// than guardian_below must come from a guardian; someone younger than
// not_served_below is not served on their own request.
func (p *Pipeline) checkAge(ctx context.Context, r *rights.Request) (ageCheck, error) {
	rule, ruled := p.settings.AgeRule(r.Product)
	lookup := p.settings.Minors.AgeLookup
	if lookup == nil || (!ruled && r.Relation != rights.RelationGuardian) {
		return ageCheck{}, nil
	}
	conn, err := p.connector(ctx, lookup.Store)
	if err != nil {
		return ageCheck{}, err
	}
	looker, ok := conn.(rights.ValueLooker)
	if !ok {
		return ageCheck{}, fmt.Errorf("store %s cannot look the age up", lookup.Store)
	}
	value, err := looker.LookupValue(ctx, r.Subject.All(), lookup.Query)
	if err != nil {
		return ageCheck{}, fmt.Errorf("age lookup: %w", err)
	}
	age, known, err := ageOf(value, p.now().In(p.location(r.Product)))
	if err != nil {
		return ageCheck{}, fmt.Errorf("age lookup on %s: %w", lookup.Store, err)
	}
	if !known {
		return ageCheck{band: "unknown"}, nil
	}
	out := ageCheck{band: p.settings.Minors.AgeBand(age)}
	switch {
	case !ruled:
	case r.Type == rights.TypeComplaint:
		// Anyone may complain: the rules are about processing a minor's
		// data, and a complaint is answered whoever makes it.
	case rule.NotServedBelow > 0 && age < rule.NotServedBelow && r.Relation != rights.RelationGuardian:
		out.refuse = fmt.Sprintf("not_served_below_%d", rule.NotServedBelow)
	case rule.GuardianBelow > 0 && age < rule.GuardianBelow && r.Relation != rights.RelationGuardian:
		out.refuse = fmt.Sprintf("guardian_required_below_%d", rule.GuardianBelow)
	}
	return out, nil
}

// ageOf reads the age lookup's value: an age in years, or a date of birth
// (the age is then counted on today's date in the product's zone).
func ageOf(v any, today time.Time) (int, bool, error) {
	switch v := v.(type) {
	case nil:
		return 0, false, nil
	case time.Time:
		y, m, d := today.Date()
		by, bm, bd := v.Date()
		age := y - by
		if m < bm || m == bm && d < bd {
			age--
		}
		return age, true, nil
	case int64:
		return int(v), true, nil
	case int32:
		return int(v), true, nil
	case int16:
		return int(v), true, nil
	case float64:
		return int(math.Floor(v)), true, nil
	case pgtype.Numeric:
		f, err := v.Float64Value()
		if err != nil || !f.Valid {
			return 0, false, nil
		}
		return int(math.Floor(f.Float64)), true, nil
	case string:
		s := strings.TrimSpace(v)
		if n, err := strconv.Atoi(s); err == nil {
			return n, true, nil
		}
		if d, err := time.Parse(time.DateOnly, s); err == nil {
			return ageOf(d, today)
		}
	}
	return 0, false, errors.New("the query must return an age in years or a date of birth")
}

// ageRefusalMessage is what the requester is told when an age rule
// refuses the request, in locale.
func ageRefusalMessage(refuse, locale string) string {
	var age int
	guardian := strings.HasPrefix(refuse, "guardian_required_below_")
	fmt.Sscanf(refuse[strings.LastIndex(refuse, "_")+1:], "%d", &age)
	switch {
	case guardian && locale == rights.LocaleEN:
		return fmt.Sprintf("The person is under %d: their guardian must make this request for them.", age)
	case guardian:
		return fmt.Sprintf("该用户未满 %d 周岁，须由其监护人代为提出请求。", age)
	case locale == rights.LocaleEN:
		return fmt.Sprintf("We do not serve people under %d. Their guardian may ask us to stop processing or to delete their information.", age)
	default:
		return fmt.Sprintf("我们不向未满 %d 周岁的未成年人提供服务。其监护人可以要求我们停止处理或删除其个人信息。", age)
	}
}

// refuseBySystem refuses a request in the plan's transaction, with the
// message in both languages, and tells the requester.
func (p *Pipeline) refuseBySystem(ctx context.Context, tx pgx.Tx, r *rights.Request, reason rights.RefusalReason, message, translated string,
	detail map[string]any, now time.Time) error {
	r.Refusal = &rights.Refusal{Reason: reason, Message: message, Translated: translated, By: rights.ActorSystem}
	if detail == nil {
		detail = map[string]any{}
	}
	detail["reason"] = reason
	if err := p.transition(ctx, tx, r, rights.StatusRefused, now, storage.Change{
		Actor: rights.ActorSystem, Action: "request.refused", Detail: detail,
	}); err != nil {
		return err
	}
	p.metrics.RequestRefused(r.Product, string(reason))
	return p.insertTx(ctx, tx, NoticeArgs{RequestID: r.ID, Notice: noticeRefusal})
}

// checkArrangement runs the next-of-kin arrangement lookup: whether the
// deceased arranged otherwise (WeBank §7(七)). It returns the reasons to
// tell, or nothing when the request may go ahead.
func (p *Pipeline) checkArrangement(ctx context.Context, r *rights.Request) (*blockedCheck, error) {
	a := p.settings.NextOfKin.Arrangement
	if r.Relation != rights.RelationNextOfKin || a == nil {
		return nil, nil
	}
	block, extra, err := p.runPrecheck(ctx, r, *a)
	if err != nil {
		return nil, fmt.Errorf("arrangement lookup: %w", err)
	}
	if !block {
		return nil, nil
	}
	reason, other := a.Reason.In(r.Locale), a.Reason.In(otherLocale(r.Locale))
	if extra != "" {
		reason, other = reason+" ("+extra+")", other+" ("+extra+")"
	}
	return &blockedCheck{name: a.Name, reason: reason, other: other}, nil
}

// holdNextOfKin stops a verified next-of-kin request at awaiting_approval:
// an approver checks the evidence (death certificate, proof of
// relationship) and records it with the approval. It reports whether it
// did. A request already waiting (a repeat) gets the audit event only.
func (p *Pipeline) holdNextOfKin(ctx context.Context, tx pgx.Tx, r *rights.Request, now time.Time) (bool, error) {
	if r.Relation != rights.RelationNextOfKin {
		return false, nil
	}
	detail := map[string]any{"relation": r.Relation, "evidence_reference": r.Verification != nil && r.Verification.Reference != ""}
	if r.Status == rights.StatusAwaitingApproval {
		return true, storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: now, Actor: rights.ActorSystem,
			Action: "next_of_kin.needs_approval", Detail: detail})
	}
	return true, p.transition(ctx, tx, r, rights.StatusAwaitingApproval, now, storage.Change{
		Actor: rights.ActorSystem, Action: "next_of_kin.needs_approval", Detail: detail,
	})
}

// awaitAnswer moves a planned complaint or explain request to in_progress,
// where it waits for staff's answer (Answer); no store is asked anything.
func (p *Pipeline) awaitAnswer(ctx context.Context, tx pgx.Tx, r *rights.Request, now time.Time) error {
	detail := map[string]any{"type": r.Type}
	if r.Details != nil && r.Details.Concerns != "" {
		detail["concerns"] = r.Details.Concerns
	}
	return p.transition(ctx, tx, r, rights.StatusInProgress, now, storage.Change{
		Actor: rights.ActorSystem, Action: "request.awaiting_answer", Detail: detail,
	})
}

// Answer records staff's answer to a complaint or explain request and
// sends it to the requester (in the completion email, in the request's
// language). The answer is written for the requester; the audit records
// its length and who wrote it, never the text.
func (p *Pipeline) Answer(ctx context.Context, staff, requestID, text string) (*rights.Request, error) {
	switch {
	case strings.TrimSpace(text) == "":
		return nil, &rights.Error{Code: rights.EInvalid, Message: "an answer is required",
			Fields: []rights.FieldProblem{{Field: "answer", Reason: "is required: the reply or explanation the requester receives"}}}
	case len(text) > rights.MaxDetailText:
		return nil, &rights.Error{Code: rights.EInvalid, Message: "the answer is too long",
			Fields: []rights.FieldProblem{{Field: "answer", Reason: fmt.Sprintf("at most %d bytes", rights.MaxDetailText)}}}
	}
	var r *rights.Request
	err := p.db.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if r, err = storage.LockRequest(ctx, tx, requestID); err != nil {
			return err
		}
		if !r.Type.Answered() {
			return rights.Errorf(rights.EConflict, "a %s request is not answered by staff", r.Type)
		}
		if r.Status != rights.StatusInProgress {
			return rights.Errorf(rights.EConflict, "the request is %s, not waiting for an answer", r.Status)
		}
		now := p.now().UTC()
		r.D().Answer = &rights.Answer{Text: text, By: staff, At: now}
		if err := p.transition(ctx, tx, r, rights.StatusDelivering, now, storage.Change{
			Actor: rights.ActorStaff(staff), Action: "request.answered", Detail: map[string]any{"bytes": len(text)},
		}); err != nil {
			return err
		}
		return p.insertTx(ctx, tx, DeliverArgs{RequestID: r.ID})
	})
	return r, err
}
