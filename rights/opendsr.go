package rights

// OpenDSR (formerly OpenGDPR, github.com/opengdpr/OpenDSR, specification
// v1.0): partners — controllers, in the specification's words — file
// requests machine to machine, and datarights answers as their processor.
// This file holds the vocabulary mapping; api/ and jobs/ do the I/O.
// docs/opendsr.md says what is implemented and where it deviates.

// ChannelPartner is a request filed by a partner through the OpenDSR API.
const ChannelPartner Channel = "partner"

// VerificationPartnerAttested is the verification method of a partner's
// request: the partner, the controller, verified the person before filing
// (OpenDSR §3.2 step 2) and answers for it by contract. It is accepted for a
// right only where rights.<type>.verification_methods allows it (or sets
// none).
const VerificationPartnerAttested = "partner_attested"

// ActorPartner is the actor of a partner's action (filing, cancelling).
func ActorPartner(name string) string { return "partner:" + name }

// OpenDSR request statuses (§8).
const (
	OpenDSRPending    = "pending"
	OpenDSRInProgress = "in_progress"
	OpenDSRCompleted  = "completed"
	OpenDSRCancelled  = "cancelled"
)

// OpenDSRStatus is the OpenDSR status (§8) a request in status s shows a
// partner. The specification has four: every state before work on the
// stores starts is pending; store work, assembling, delivering and a
// failure staff must act on (which is not final) are in_progress; a
// refusal and an expiry end the request without fulfilling it, as a
// cancellation does, so they show as cancelled (the callback's extension
// says which).
func OpenDSRStatus(s Status) string {
	switch s {
	case StatusInProgress, StatusAssembling, StatusDelivering, StatusFailed:
		return OpenDSRInProgress
	case StatusCompleted:
		return OpenDSRCompleted
	case StatusCancelled, StatusRefused, StatusExpired:
		return OpenDSRCancelled
	}
	return OpenDSRPending // awaiting_verification, received, verified, awaiting_*, paused
}

// OpenDSRCancellable reports whether a partner may still cancel a request
// in status s: while it is pending in OpenDSR terms (§9) and nothing has
// been done to the person's data.
func OpenDSRCancellable(s Status) bool {
	switch s {
	case StatusReceived, StatusVerified, StatusAwaitingApproval, StatusAwaitingContact, StatusPaused:
		return true
	}
	return false
}

// OpenDSR subject request types (§6.2).
const (
	OpenDSRAccess      = "access"
	OpenDSRPortability = "portability"
	OpenDSRErasure     = "erasure"
)

// OpenDSRTypes maps the OpenDSR subject request types to the rights that
// fulfil them: access (GDPR Art. 15, a copy of the data and how it is
// processed) to access, whose answer is the report of what is held;
// portability (Art. 20, the data in a machine-readable format) to copy,
// whose answer is the JSON and CSV archive; erasure (Art. 17) to delete.
var OpenDSRTypes = map[string]Type{
	OpenDSRAccess:      TypeAccess,
	OpenDSRPortability: TypeCopy,
	OpenDSRErasure:     TypeDelete,
}

// OpenDSRTypeNames lists the OpenDSR types in the specification's order.
var OpenDSRTypeNames = []string{OpenDSRAccess, OpenDSRPortability, OpenDSRErasure}
