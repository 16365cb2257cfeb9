package rights

// Status is the one visible state a request is in.
type Status string

const (
	StatusAwaitingVerification Status = "awaiting_verification" // self-service: code sent, not yet entered
	StatusReceived             Status = "received"              // staff ticket taken, verification evidence recorded
	StatusVerified             Status = "verified"              // identity verified, waiting to be planned
	StatusInProgress           Status = "in_progress"           // store tasks running
	StatusAssembling           Status = "assembling"            // building the export
	StatusDelivering           Status = "delivering"            // telling the requester
	StatusCompleted            Status = "completed"
	StatusRefused              Status = "refused"
	StatusCancelled            Status = "cancelled"
	StatusFailed               Status = "failed"            // a store task gave up; staff must act
	StatusPaused               Status = "paused"            // waiting for the requester; the deadline clock stands still
	StatusAwaitingApproval     Status = "awaiting_approval" // staff must decide before work starts (e.g. a repeated request)
	// StatusAwaitingContact: an address the request would send data to, or
	// write into the person's records (a corrected email or phone), waits
	// for the code sent to it.
	StatusAwaitingContact Status = "awaiting_contact"
	// StatusExpired: a code (for the request, or for a new address) was
	// never entered in time. Its personal data is purged.
	StatusExpired Status = "expired"
)

// Statuses lists every status in lifecycle order.
var Statuses = []Status{
	StatusAwaitingVerification, StatusReceived, StatusVerified, StatusInProgress,
	StatusAssembling, StatusDelivering, StatusCompleted, StatusRefused,
	StatusCancelled, StatusFailed, StatusPaused, StatusAwaitingApproval, StatusAwaitingContact, StatusExpired,
}

// transitions is the whole lifecycle: a status may move only to the statuses
// listed for it. Terminal statuses have no entry.
var transitions = map[Status][]Status{
	StatusAwaitingVerification: {StatusVerified, StatusRefused, StatusCancelled, StatusExpired},
	StatusReceived:             {StatusVerified, StatusRefused, StatusCancelled, StatusPaused, StatusFailed},
	StatusVerified:             {StatusInProgress, StatusRefused, StatusCancelled, StatusPaused, StatusAwaitingApproval, StatusAwaitingContact, StatusFailed},
	StatusAwaitingApproval:     {StatusVerified, StatusRefused, StatusCancelled, StatusPaused},
	StatusAwaitingContact:      {StatusVerified, StatusRefused, StatusCancelled, StatusExpired, StatusFailed, StatusPaused},
	// in_progress → refused is for requests answered by staff (complaint,
	// explain), whose work is the answer: refusing is an answer too (an
	// explanation refused as trade_secrets). Refuse allows it for those
	// only (RefusableWhileInProgress); store work already running is not
	// refused.
	StatusInProgress: {StatusAssembling, StatusDelivering, StatusFailed, StatusCancelled, StatusPaused, StatusRefused},
	StatusAssembling: {StatusDelivering, StatusFailed},
	StatusDelivering: {StatusCompleted, StatusFailed},
	// A failed request resumes from the step that failed (failed_steps):
	// the status that step works on.
	StatusFailed: {StatusInProgress, StatusCancelled, StatusPaused, StatusReceived, StatusVerified,
		StatusAwaitingContact, StatusAssembling, StatusDelivering},
	// A pause returns to the status it interrupted (see Pause.Status). Store
	// tasks running when a request in progress is paused finish and are
	// recorded, but the request stays paused; tasks not yet started wait
	// for the resume, which also moves the request on if they all finished
	// (or failed) meanwhile. Assembling and delivering are not paused: the
	// answer is being sent.
	StatusPaused: {StatusReceived, StatusVerified, StatusFailed, StatusRefused, StatusCancelled,
		StatusInProgress, StatusAwaitingApproval, StatusAwaitingContact},
}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	for _, known := range Statuses {
		if s == known {
			return true
		}
	}
	return false
}

// Terminal reports whether no transition leaves s.
func (s Status) Terminal() bool { return s.Valid() && len(transitions[s]) == 0 }

// CanTransition reports whether a request may move from one status to another.
func CanTransition(from, to Status) bool {
	for _, next := range transitions[from] {
		if next == to {
			return true
		}
	}
	return false
}

// CheckTransition returns a conflict error naming both statuses when the move
// is not in the lifecycle.
func CheckTransition(from, to Status) error {
	if CanTransition(from, to) {
		return nil
	}
	return Errorf(EConflict, "a request cannot move from %s to %s", from, to)
}

// RefusableWhileInProgress reports whether a request of type t may still be
// refused while in progress: only one answered by staff, which waits there
// for its answer and has changed nothing.
func RefusableWhileInProgress(t Type) bool { return t.Answered() }
