package jobs

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// The right to withdraw consent in the pipeline. The ledger records the
// withdrawal when the plan step runs (the request is verified: the
// withdrawal takes effect), in the plan's transaction; the store tasks then
// carry it to the stores and services configured for the purposes.

// checkPurposes checks that each purpose a withdrawal names is one the
// product's people consent to.
func (p *Pipeline) checkPurposes(in *rights.Intake, problems *rights.Problems) {
	if in.Type != rights.TypeWithdrawConsent || len(in.Purposes) == 0 || hasProblem(*problems, "purposes") {
		return
	}
	if _, ok := p.settings.Product(in.Product); !ok {
		return // the product is already reported
	}
	known := map[string]bool{}
	var names []string
	for _, pur := range p.settings.PurposesFor(in.Product) {
		known[pur.Name] = true
		names = append(names, pur.Name)
	}
	whole := false
	for _, name := range in.Purposes {
		if known[name] {
			pur, _ := p.settings.Purpose(name)
			whole = whole || pur.ImpliesAll
			continue
		}
		if len(names) == 0 {
			problems.Add("purposes", "%s has no purposes configured to withdraw consent from", in.Product)
		} else {
			problems.Add("purposes", "unknown purpose %q for %s; known: %s", name, in.Product, strings.Join(names, ", "))
		}
		return
	}
	if whole {
		// Withdrawing consent to the whole policy withdraws every purpose
		// of the product: the request names them all from here on.
		in.Purposes = names
	}
}

// consentSubject returns the value of the ledger's identity for the
// subject, given or resolved; "" when the subject has none.
func (p *Pipeline) consentSubject(r *rights.Request) string {
	return r.Subject.All().Identities[p.settings.Consent.Identity]
}

// recordWithdrawal appends to the ledger, in tx, the withdrawal of the
// subject's consent to purposes, and notes it on the request's outcome. A
// subject without the ledger's identity cannot be recorded: that is
// audited, and the stores still get the withdrawal.
func (p *Pipeline) recordWithdrawal(ctx context.Context, tx pgx.Tx, r *rights.Request, purposes []string, source string, now time.Time) error {
	if len(purposes) == 0 {
		return nil
	}
	subject := p.consentSubject(r)
	if subject == "" {
		return storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: now, Actor: rights.ActorSystem,
			Action: "consent.unrecorded", Detail: map[string]any{"identity": p.settings.Consent.Identity, "purposes": purposes}})
	}
	for _, purpose := range purposes {
		if err := storage.AppendConsent(ctx, tx, p.settings.Consent.Identity, subject, rights.ConsentEvent{
			Product: r.Product, Purpose: purpose, Granted: false, At: now, Source: source, RequestID: r.ID, Actor: rights.ActorRequester,
		}); err != nil {
			return err
		}
		p.metrics.ConsentWithdrawn(r.Product, purpose, source)
	}
	if r.Outcome == nil {
		r.Outcome = &rights.Outcome{}
	}
	r.Outcome.Withdrawn, r.Outcome.WithdrawnAt = purposes, &now
	if err := storage.SaveRequest(ctx, tx, r); err != nil {
		return err
	}
	return storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: now, Actor: rights.ActorSystem,
		Action: "consent.withdrawn", Detail: map[string]any{"purposes": purposes, "source": source}})
}

// productPurposes names every purpose of the product, for a cancellation,
// which withdraws them all.
func (p *Pipeline) productPurposes(product string) []string {
	var out []string
	for _, pur := range p.settings.PurposesFor(product) {
		out = append(out, pur.Name)
	}
	return out
}

// runWithdrawal asks a store to act on a withdrawal of consent.
func (p *Pipeline) runWithdrawal(ctx context.Context, conn rights.Connector, r *rights.Request, t *rights.Task) (rights.StoreReport, error) {
	w, ok := conn.(rights.ConsentWithdrawer)
	if !ok {
		return rights.StoreReport{}, rights.Errorf(rights.ENotImplemented, "store %s cannot act on a withdrawal of consent", t.Store)
	}
	return w.WithdrawConsent(ctx, r.Subject.All(), r.Purposes, p.eraseOptions(r))
}

// eraseOptions are the options of every erasure a request makes.
func (p *Pipeline) eraseOptions(r *rights.Request) rights.EraseOptions {
	return rights.EraseOptions{Now: p.now(), EndedAt: relationshipEnded(r), Location: p.location(r.Product)}
}

// purposeLabels names purposes in the locale, for emails.
func (p *Pipeline) purposeLabels(purposes []string, locale string) string {
	labels := make([]string, len(purposes))
	for i, name := range purposes {
		labels[i] = name
		if pur, ok := p.settings.Purpose(name); ok {
			labels[i] = pur.Label.In(locale)
		}
	}
	sep := ", "
	if locale == rights.LocaleZH {
		sep = "、"
	}
	return strings.Join(labels, sep)
}

// ConsentState is one purpose of a subject's consents: its current state
// (nil when the ledger has no event for it) and its history.
type ConsentState struct {
	Purpose string                `json:"purpose"`
	Label   config.LocalText      `json:"label"`
	Granted *bool                 `json:"granted"`
	Since   *time.Time            `json:"since,omitempty"`
	History []rights.ConsentEvent `json:"history"`
}

// ConsentLedger is a subject's consents for a product.
type ConsentLedger struct {
	Product  string `json:"product"`
	Identity string `json:"identity"` // the identity type the ledger is kept under
	// Resolved is false when the subject could not be found under the
	// ledger's identity: then nothing can be said about its consents.
	Resolved bool           `json:"resolved"`
	Consents []ConsentState `json:"consents"`
}

// ledgerSubject resolves the subject to the ledger's identity (e.g. the
// user_id behind an email), as a request's plan does.
func (p *Pipeline) ledgerSubject(ctx context.Context, product string, identities map[string]string) (string, error) {
	in := rights.Intake{Product: product, Type: rights.TypeAccess, Identities: identities,
		DeliveryEmail: "ledger@localhost", Verification: &rights.Verification{Method: "api"}}
	cat := p.settings.Catalog()
	cat.VerificationMethods = nil // no one verified anyone: this is the ledger's own lookup
	if err := in.Validate(rights.ChannelStaff, cat); err != nil {
		return "", err
	}
	r := &rights.Request{Product: product, Subject: rights.Subject{Identities: identities}}
	if r.Subject.Identities[p.settings.Consent.Identity] == "" {
		res, err := p.resolveIdentities(ctx, r)
		if err != nil {
			return "", err
		}
		r.Subject.Resolved = res.found
	}
	return p.consentSubject(r), nil
}

// Consents returns the subject's consent ledger for product: every purpose
// of the product with its current state and history.
func (p *Pipeline) Consents(ctx context.Context, product string, identities map[string]string) (*ConsentLedger, error) {
	subject, err := p.ledgerSubject(ctx, product, identities)
	if err != nil {
		return nil, err
	}
	ledger := &ConsentLedger{Product: product, Identity: p.settings.Consent.Identity, Resolved: subject != "", Consents: []ConsentState{}}
	var events []rights.ConsentEvent
	if subject != "" {
		if events, err = storage.ConsentHistory(ctx, p.db.Pool, product, ledger.Identity, subject); err != nil {
			return nil, err
		}
	}
	for _, pur := range p.settings.PurposesFor(product) {
		state := ConsentState{Purpose: pur.Name, Label: pur.Label, History: []rights.ConsentEvent{}}
		for _, ev := range events {
			if ev.Purpose == pur.Name {
				state.History = append(state.History, ev)
				granted, at := ev.Granted, ev.At
				state.Granted, state.Since = &granted, &at
			}
		}
		ledger.Consents = append(ledger.Consents, state)
	}
	return ledger, nil
}

// RecordConsent appends to the ledger a consent given or withdrawn in the
// product itself (a switch in the app's settings), as reported by the
// product's backend or by staff. A withdrawal recorded this way is a fact
// for the ledger; to carry it to the stores, file a withdraw_consent
// request.
func (p *Pipeline) RecordConsent(ctx context.Context, actor, product string, identities map[string]string, purpose string, granted bool, note string) (*rights.ConsentEvent, error) {
	var problems rights.Problems
	if _, ok := p.settings.Product(product); !ok {
		problems.Add("product", "unknown product %q", product)
	}
	known := false
	for _, pur := range p.settings.PurposesFor(product) {
		known = known || pur.Name == purpose
	}
	if !known {
		problems.Add("purpose", "unknown purpose %q for %s", purpose, product)
	}
	if len(note) > 2000 {
		problems.Add("note", "at most 2000 bytes")
	}
	if err := problems.Err(); err != nil {
		return nil, err
	}
	subject, err := p.ledgerSubject(ctx, product, identities)
	if err != nil {
		return nil, err
	}
	if subject == "" {
		return nil, &rights.Error{Code: rights.EInvalid, Message: "the subject was not found",
			Fields: []rights.FieldProblem{{Field: "subject.identities", Reason: "name the " + p.settings.Consent.Identity + ", or identities that resolve to exactly one"}}}
	}
	ev := rights.ConsentEvent{Product: product, Purpose: purpose, Granted: granted, At: p.now().UTC(), Source: "api", Actor: actor, Note: note}
	err = p.db.InTx(ctx, func(tx pgx.Tx) error {
		return storage.AppendConsent(ctx, tx, p.settings.Consent.Identity, subject, ev)
	})
	if err != nil {
		return nil, err
	}
	if !granted {
		p.metrics.ConsentWithdrawn(product, purpose, "api")
	}
	return &ev, nil
}
