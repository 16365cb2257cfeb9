package rights

import (
	"context"
	"slices"
	"time"
)

// The right to withdraw consent (撤回同意): the person names the purposes
// (personalised advertising, location, contacts…) they no longer agree to.
// The withdrawal is recorded in the consent ledger when the request is
// verified, which is when it takes effect, and goes to every store or
// service configured for the purposes: consent records flip to withdrawn,
// data kept only for a purpose is erased, services are told to stop. It
// does not undo processing done while the consent stood (PIPL Art. 15).

// ActionWithdrawConsent withdraws the subject's consent to purposes in a
// store.
const ActionWithdrawConsent TaskAction = "withdraw_consent"

// ConsentWithdrawer is a connector that can act on a withdrawal of consent
// in its store. It must be safe to call again: a repeated withdrawal finds
// the consent already withdrawn and the data already erased.
type ConsentWithdrawer interface {
	// WithdrawConsent records the withdrawal of the subject's consent to
	// purposes, as of opts.Now, and erases (by each table's mode and
	// retention) what the store keeps for those purposes alone.
	WithdrawConsent(ctx context.Context, subject Subject, purposes []string, opts EraseOptions) (StoreReport, error)
}

// ConsentEvent is one entry of the consent ledger: a person's consent to a
// purpose granted or withdrawn at a time. The ledger is append-only; the
// current state of a consent is its newest event.
type ConsentEvent struct {
	ID      int64     `json:"id"`
	Product string    `json:"product"`
	Purpose string    `json:"purpose"`
	Granted bool      `json:"granted"`
	At      time.Time `json:"at"`
	// Source is where the event came from: "request" (a rights request),
	// "cancellation" (an account cancellation) or "api" (the product's own
	// record of a consent given or withdrawn in the app).
	Source    string `json:"source"`
	RequestID string `json:"request_id,omitempty"`
	Actor     string `json:"actor"`
	Note      string `json:"note,omitempty"`
}

const maxPurposes = 20

// validatePurposes checks an intake's purposes: required for a withdrawal
// and refused for other rights, lower-case names, no repeats. Which purposes
// exist depends on the product; the pipeline checks that.
func (in *Intake) validatePurposes(p *Problems) {
	if in.Type != TypeWithdrawConsent {
		if len(in.Purposes) > 0 {
			p.Add("purposes", "only withdraw_consent requests name purposes, not %s requests", in.Type)
		}
		return
	}
	switch {
	case len(in.Purposes) == 0:
		p.Add("purposes", `at least one purpose is required, e.g. ["personalised_ads"]`)
		return
	case len(in.Purposes) > maxPurposes:
		p.Add("purposes", "at most %d purposes", maxPurposes)
		return
	}
	seen := map[string]bool{}
	for _, name := range in.Purposes {
		switch {
		case !identityKey.MatchString(name):
			p.Add("purposes", "purposes are lower-case names like \"personalised_ads\"")
			return
		case seen[name]:
			p.Add("purposes", "%q is named twice", name)
			return
		}
		seen[name] = true
	}
	in.Purposes = slices.Sorted(slices.Values(in.Purposes))
}
