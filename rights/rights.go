// Package rights is the domain of datarights: personal-information rights
// requests, their lifecycle, deadline policies and the interfaces the rest of
// the service implements. It performs no I/O.
package rights

import (
	"strings"
	"time"
)

// Type is the right a person exercises.
type Type string

const (
	TypeAccess          Type = "access"           // 查阅
	TypeCopy            Type = "copy"             // 复制
	TypeCorrect         Type = "correct"          // 更正
	TypeDelete          Type = "delete"           // 删除
	TypeWithdrawConsent Type = "withdraw_consent" // 撤回同意
	TypeCancelAccount   Type = "cancel_account"   // 注销
	// TypeTransfer exports a copy, as TypeCopy does, and delivers it to a
	// receiving handler the person names from the configured list
	// (个人信息转移, PIPL Art. 45; WeBank §7(五)).
	TypeTransfer Type = "transfer"
	// TypeExplain asks for an explanation of an automated decision (WeBank
	// §7(六), WeChat §5); staff write the answer.
	TypeExplain Type = "explain"
	// TypeComplaint is a complaint (投诉), possibly about an earlier
	// request; staff write the reply (WeBank §11, WeChat §9).
	TypeComplaint Type = "complaint"
)

// Types lists every right in a stable order.
var Types = []Type{TypeAccess, TypeCopy, TypeCorrect, TypeDelete, TypeWithdrawConsent, TypeCancelAccount,
	TypeTransfer, TypeExplain, TypeComplaint}

// Valid reports whether t is one of the rights.
func (t Type) Valid() bool {
	for _, known := range Types {
		if t == known {
			return true
		}
	}
	return false
}

// Exports reports whether fulfilling the right produces a document for the
// requester built from the stores' data.
// A transfer exports too: its document goes to the receiving handler.
func (t Type) Exports() bool { return t == TypeAccess || t == TypeCopy || t == TypeTransfer }

// Answered reports whether staff fulfil the request by writing an answer
// (an explanation, a reply to a complaint) rather than stores acting.
func (t Type) Answered() bool { return t == TypeExplain || t == TypeComplaint }

// Erases reports whether fulfilling the right erases the subject's data:
// a deletion or an account cancellation.
func (t Type) Erases() bool { return t == TypeDelete || t == TypeCancelAccount }

// Channel is how a request reached the service.
type Channel string

const (
	ChannelStaff       Channel = "staff"        // a customer-service ticket
	ChannelSelfService Channel = "self_service" // the user, verified by an emailed code
)

// Relation is who asks, relative to the person whose data it is.
type Relation string

const (
	RelationSelf      Relation = "self"
	RelationGuardian  Relation = "guardian"    // for a minor
	RelationNextOfKin Relation = "next_of_kin" // for a deceased user
	RelationAgent     Relation = "agent"       // authorised representative
)

// Valid reports whether r is a known relation.
func (r Relation) Valid() bool {
	switch r {
	case RelationSelf, RelationGuardian, RelationNextOfKin, RelationAgent:
		return true
	}
	return false
}

// Locales the service writes to people in.
const (
	LocaleZH = "zh-CN"
	LocaleEN = "en"
)

// Subject names the person whose data the request is about, by one or more
// identities (identity type → value, e.g. "user_id" → "u-42", "email" → …).
type Subject struct {
	Identities map[string]string `json:"identities"`
	// Resolved holds identities the service found for the subject through
	// the stores' lookups (e.g. the user_id behind an email), so that stores
	// keyed by them can act too. Given identities always win.
	Resolved map[string]string `json:"resolved,omitempty"`
}

// All returns the given and the resolved identities together.
func (s Subject) All() Subject {
	if len(s.Resolved) == 0 {
		return s
	}
	all := make(map[string]string, len(s.Identities)+len(s.Resolved))
	for k, v := range s.Resolved {
		all[k] = v
	}
	for k, v := range s.Identities {
		all[k] = v
	}
	return Subject{Identities: all}
}

// Verification records how a person's identity was verified.
type Verification struct {
	Method    string    `json:"method"`              // e.g. "email_code", "face_check", "id_document"
	Reference string    `json:"reference,omitempty"` // ticket or check id in another system
	By        string    `json:"by,omitempty"`        // staff member or "requester"
	At        time.Time `json:"at,omitzero"`
}

// Request is one rights request.
type Request struct {
	ID            string
	Product       string
	Type          Type
	Channel       Channel
	Status        Status
	Subject       Subject
	DeliveryEmail string
	Relation      Relation
	Locale        string
	Verification  *Verification
	CreatedBy     string // staff token name, or "self-service"
	Note          string
	// TicketRef is the customer-service system's ticket number: staff
	// search by it rather than by the person's email or phone.
	TicketRef string
	// Assignee is the staff member (token name) working on the request;
	// "" when nobody is.
	Assignee string

	ReceivedAt  time.Time
	VerifiedAt  *time.Time
	DueAt       *time.Time
	CompletedAt *time.Time
	UpdatedAt   time.Time

	// Clock records pauses and extensions of the deadline clock.
	Clock ClockState
	// ClockStartedAt is when the deadline clock started; nil until it has.
	ClockStartedAt *time.Time
	// DeadlineUncoveredYears lists years the deadline was counted through
	// without a published calendar (weekends only): flagged for a person.
	DeadlineUncoveredYears []int
	// BreachedAt is when the deadline passed with the request still open.
	BreachedAt *time.Time
	// Refusal is set when the request was refused.
	Refusal *Refusal
	// Corrections are a correct request's fields and their new values
	// (field name → value). The values are personal data: never logged or
	// audited.
	Corrections map[string]string
	// Purposes are the consents a withdraw_consent request withdraws.
	Purposes []string
	// Outcome is what the pipeline found or did beyond the store tasks,
	// for the requester's completion email.
	Outcome *Outcome
	// Details are what the newer request types carry (a complaint's text
	// and the request it concerns, a transfer's receiver, staff's answer,
	// a minor's age band); nil for requests without any.
	Details *Details
}

// Details are the parts of a request specific to complaints,
// explanations, transfers and requests made for someone else. Text and
// Answer may hold personal data: they are shown to staff and the
// requester, never logged or audited (the audit says their length).
type Details struct {
	// Text is a complaint's text, or which decision an explain request
	// wants explained.
	Text string `json:"text,omitempty"`
	// Concerns is the id of the request a complaint is about, checked to
	// be of the same person and product.
	Concerns string `json:"concerns,omitempty"`
	// Receiver is the configured receiving handler a transfer goes to.
	Receiver string `json:"receiver,omitempty"`
	// AgeBand is the subject's age band from the configured lookup, for a
	// product with age rules (e.g. "under_14").
	AgeBand string `json:"age_band,omitempty"`
	// Answer is staff's explanation or reply.
	Answer *Answer `json:"answer,omitempty"`
	// Evidence is what the approver of a next-of-kin request recorded
	// checking (death certificate, proof of relationship).
	Evidence string `json:"evidence,omitempty"`
}

// Answer is what staff wrote to the requester.
type Answer struct {
	Text string    `json:"text"`
	By   string    `json:"by"`
	At   time.Time `json:"at"`
}

// D returns the request's details, creating them when there are none.
func (r *Request) D() *Details {
	if r.Details == nil {
		r.Details = &Details{}
	}
	return r.Details
}

// Outcome is what a request's answer says beyond the store reports. It
// holds ids, names and times, never personal data.
type Outcome struct {
	// CancelledBy is the earlier request that cancelled the subject's
	// account, and CancelledAt when it completed: a later request that
	// needs a live account is answered with that.
	CancelledBy string     `json:"cancelled_by,omitempty"`
	CancelledAt *time.Time `json:"cancelled_at,omitempty"`
	// Withdrawn are the purposes whose consent the request withdrew, as of
	// WithdrawnAt, in the consent ledger.
	Withdrawn   []string   `json:"withdrawn,omitempty"`
	WithdrawnAt *time.Time `json:"withdrawn_at,omitempty"`
	// Recipients are the third parties asked to erase the data shared with
	// them.
	Recipients []string `json:"recipients,omitempty"`
	// Ambiguous are the identity types whose lookups led to several
	// people: the request stopped for staff (ReasonSeveralPeople), and
	// once approved goes ahead acting on nobody's data for them.
	Ambiguous []string `json:"ambiguous,omitempty"`
	// RecipientConditions are, per third party with a query condition
	// (recipients[].when), whether it received this person's data, as
	// asked before anything was changed.
	RecipientConditions map[string]bool `json:"recipient_conditions,omitempty"`
	// NotTold are the third parties not told because they did not receive
	// this person's data.
	NotTold []string `json:"recipients_not_told,omitempty"`
}

// ReasonSeveralPeople is why a request whose identity matches several
// people waits for staff instead of answering "no data found".
const ReasonSeveralPeople = "matches several people"

// TaskAction is what a store task does to the subject's data in one store.
type TaskAction string

const (
	ActionExport TaskAction = "export"
	ActionDelete TaskAction = "delete"
)

// ActionFor returns the store action that fulfils right t, and false when no
// store action does (the right is not supported by the pipeline yet).
func ActionFor(t Type) (TaskAction, bool) {
	switch t {
	case TypeAccess, TypeCopy, TypeTransfer:
		return ActionExport, true
	case TypeDelete:
		return ActionDelete, true
	case TypeCorrect:
		return ActionCorrect, true
	case TypeWithdrawConsent:
		return ActionWithdrawConsent, true
	case TypeCancelAccount:
		// Cancellation erases everything, irreversibly, by the same rules as
		// a delete: retention periods restrict what the law keeps.
		return ActionDelete, true
	}
	return "", false
}

// TaskStatus is the state of one store task.
type TaskStatus string

const (
	TaskPending   TaskStatus = "pending"
	TaskWaiting   TaskStatus = "waiting" // for staff or an outside system to confirm it was done
	TaskSucceeded TaskStatus = "succeeded"
	TaskFailed    TaskStatus = "failed"
)

// Task is the work one request needs from one store.
type Task struct {
	ID         string
	RequestID  string
	Store      string
	Action     TaskAction
	Status     TaskStatus
	Attempts   int
	Report     *StoreReport
	LastError  string
	CreatedAt  time.Time
	FinishedAt *time.Time
	// Inventory is what the store held before an erasure: datasets and
	// row counts, taken before anything was changed.
	Inventory *StoreReport
}

// StoreReport is what a connector found or did in its store. It holds counts
// and names, never personal data, so it can be shown and audited freely.
type StoreReport struct {
	Resolved bool            `json:"resolved"` // the subject was found in this store
	Datasets []DatasetReport `json:"datasets"`
	// Note is what staff (or an outside system) said was done, for stores
	// worked by hand or asynchronously.
	Note string `json:"note,omitempty"`
	// Fields are the fields a correction set in the store (in tables where
	// the subject has rows), sorted: names only, never values.
	Fields []string `json:"fields,omitempty"`
	// Reconciled says rows were missing on a rerun that the inventory
	// taken before the first attempt had: an earlier attempt erased them
	// and died before its report was recorded; they are counted as
	// deleted.
	Reconciled bool `json:"reconciled,omitempty"`
}

// Rows returns the total row count across datasets.
func (r StoreReport) Rows() int64 {
	var n int64
	for _, d := range r.Datasets {
		n += d.Rows
	}
	return n
}

// DatasetReport describes one table (or collection) of one store.
type DatasetReport struct {
	Name     string `json:"name"`
	Category string `json:"category,omitempty"`
	Rows     int64  `json:"rows"`
	File     string `json:"file,omitempty"`   // staged JSON, relative to the request's staging dir; its name in the archive
	SHA256   string `json:"sha256,omitempty"` // of the JSON
	Bytes    int64  `json:"bytes,omitempty"`  // of the JSON
	// Staged files are deflated as they are written, so that the archive is
	// built without compressing anything again: Deflated is the file on disk
	// (relative to the staging dir), CRC32 the checksum the zip format wants
	// of the content, DeflatedSHA256 the hash of the file on disk, checked
	// when it is copied. Deflated is empty when File holds the plain content.
	Deflated       string `json:"deflated,omitempty"`
	DeflatedSHA256 string `json:"deflated_sha256,omitempty"`
	CRC32          uint32 `json:"crc32,omitempty"`
	// CSV is the same rows as CSV, staged the same way.
	CSV *StagedFile `json:"csv,omitempty"`

	// What an erasure did with the rows (Rows is their total): deleted,
	// anonymized, or kept restricted.
	Deleted    int64 `json:"deleted,omitempty"`
	Anonymized int64 `json:"anonymized,omitempty"`
	Restricted int64 `json:"restricted,omitempty"`
	// Retention is the retention class keeping restricted rows, and
	// RestrictedUntil when the last of their periods ends; both are empty
	// for rows restricted with no end.
	Retention       string     `json:"retention,omitempty"`
	RestrictedUntil *time.Time `json:"restricted_until,omitempty"`
}

// StagedFile is one more staged file of a dataset, in another format.
type StagedFile struct {
	File           string `json:"file"` // its name in the archive, relative to the store's folder
	SHA256         string `json:"sha256"`
	Bytes          int64  `json:"bytes"`
	Deflated       string `json:"deflated"`
	DeflatedSHA256 string `json:"deflated_sha256"`
	CRC32          uint32 `json:"crc32"`
}

// Actors of audit events: who made a change. Staff are named
// ("staff:<name>", ActorStaff), third parties by their configured name
// ("store:<name>", "recipient:<name>", "partner:<name>"). Use these, never literals.
const (
	ActorRequester = "requester" // the person who asked, proving it with a code or key
	ActorSystem    = "system"    // the service itself
)

// ActorStaff is the actor of a staff member's action.
func ActorStaff(name string) string { return "staff:" + name }

// ActorStore is the actor of a store's service calling back.
func ActorStore(name string) string { return "store:" + name }

// ActorRecipient is the actor of a third party acknowledging a notice.
func ActorRecipient(name string) string { return "recipient:" + name }

// ValidActor reports whether s names an actor in one of the forms above.
// The audit trail refuses events without one (so does a CHECK constraint
// in the database), so that every event says who acted.
func ValidActor(s string) bool {
	if s == ActorRequester || s == ActorSystem {
		return true
	}
	kind, name, ok := strings.Cut(s, ":")
	return ok && name != "" && (kind == "staff" || kind == "store" || kind == "recipient" || kind == "partner")
}

// AuditEvent is one entry in a request's append-only audit trail. Detail
// holds ids, counts and reasons, never personal data.
type AuditEvent struct {
	ID         int64          `json:"id"`
	RequestID  string         `json:"request_id"`
	At         time.Time      `json:"at"`
	Actor      string         `json:"actor"`
	Action     string         `json:"action"`
	FromStatus Status         `json:"from_status,omitempty"`
	ToStatus   Status         `json:"to_status,omitempty"`
	Detail     map[string]any `json:"detail,omitempty"`
}

// Pause is a stretch of time during which a request's deadline clock stood
// still, e.g. while waiting for the requester to send something.
type Pause struct {
	// Status is what the request was doing when paused; resuming returns to it.
	Status Status     `json:"status"`
	From   time.Time  `json:"from"`
	Until  *time.Time `json:"until,omitempty"` // nil while the pause lasts
	Reason string     `json:"reason"`
	By     string     `json:"by"`
	// DueAt is the deadline when the clock stopped: the requester's notice
	// says it, and a resent notice must say the same.
	DueAt *time.Time `json:"due_at,omitempty"`
}

// Extension lengthens a request's period by Days counted days.
type Extension struct {
	Days   int       `json:"days"`
	Reason string    `json:"reason"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	// DueAt is the deadline the extension set, for the requester's notice.
	DueAt *time.Time `json:"due_at,omitempty"`
}

// ClockState is what has happened to a request's deadline clock.
type ClockState struct {
	Pauses     []Pause     `json:"pauses,omitempty"`
	Extensions []Extension `json:"extensions,omitempty"`
}

// ExtensionDays is the total of all extensions.
func (c ClockState) ExtensionDays() int {
	n := 0
	for _, e := range c.Extensions {
		n += e.Days
	}
	return n
}

// WorkStatus is the status the request's work is in: for a paused
// request, the status its pause interrupted (work already running when it
// was paused still finishes and is recorded, but moves nothing on).
func (r *Request) WorkStatus() Status {
	if r.Status == StatusPaused && r.Clock.Paused() {
		return r.Clock.Pauses[len(r.Clock.Pauses)-1].Status
	}
	return r.Status
}

// Paused reports whether a pause is open.
func (c ClockState) Paused() bool {
	return len(c.Pauses) > 0 && c.Pauses[len(c.Pauses)-1].Until == nil
}
