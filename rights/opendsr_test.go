package rights_test

import (
	"slices"
	"testing"

	"github.com/datarights/datarights/rights"
)

// TestOpenDSRStatus: every status shows as one of the specification's
// four, final ones as final, and only pending requests can be cancelled.
func TestOpenDSRStatus(t *testing.T) {
	t.Parallel()
	spec := []string{rights.OpenDSRPending, rights.OpenDSRInProgress, rights.OpenDSRCompleted, rights.OpenDSRCancelled}
	for _, s := range rights.Statuses {
		got := rights.OpenDSRStatus(s)
		if !slices.Contains(spec, got) {
			t.Errorf("%s shows as %q, not an OpenDSR status", s, got)
		}
		final := got == rights.OpenDSRCompleted || got == rights.OpenDSRCancelled
		if final != s.Terminal() {
			t.Errorf("%s (terminal %v) shows as %s", s, s.Terminal(), got)
		}
		if rights.OpenDSRCancellable(s) {
			if got != rights.OpenDSRPending || !rights.CanTransition(s, rights.StatusCancelled) {
				t.Errorf("%s is cancellable but shows as %s (lifecycle allows cancel: %v)", s, got, rights.CanTransition(s, rights.StatusCancelled))
			}
		}
	}
	for _, name := range rights.OpenDSRTypeNames {
		if !rights.OpenDSRTypes[name].Valid() {
			t.Errorf("OpenDSR type %s maps to no right", name)
		}
	}
	if !rights.ValidActor(rights.ActorPartner("acme")) {
		t.Error("partner:acme is not a valid actor")
	}
}

// TestPartnerIntake: a partner's request must carry the partner's
// attestation, and be the person's own.
func TestPartnerIntake(t *testing.T) {
	t.Parallel()
	cat := rights.Catalog{Products: map[string]bool{"webank": true}, IdentityTypes: map[string]bool{"email": true},
		VerificationMethods: map[string]bool{"face_check": true}}
	in := rights.Intake{Product: "webank", Type: rights.TypeCopy, Identities: map[string]string{"email": "a@example.com"},
		DeliveryEmail: "a@example.com", Verification: &rights.Verification{Method: rights.VerificationPartnerAttested}}
	if err := in.Validate(rights.ChannelPartner, cat); err != nil {
		t.Errorf("partner intake: %v", err)
	}
	in.Verification.Method, in.Relation = "face_check", rights.RelationAgent
	err := in.Validate(rights.ChannelPartner, cat)
	var fields []string
	if re, ok := err.(*rights.Error); ok {
		for _, f := range re.Fields {
			fields = append(fields, f.Field)
		}
	}
	if !slices.Equal(fields, []string{"verification.method", "requester_relation"}) {
		t.Errorf("fields = %v (%v)", fields, err)
	}
}
