package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/datarights/datarights/jobs"
	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

func (s *server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	s.json(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz answers 200 only when the database answers and its schema is
// what this binary expects, so a load balancer sends no traffic before then.
func (s *server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	checks := map[string]string{"database": "ok", "migrations": "ok"}
	status := http.StatusOK
	if err := s.DB.Pool.Ping(ctx); err != nil {
		checks["database"], checks["migrations"] = "unreachable", "unknown"
		status = http.StatusServiceUnavailable
	} else if err := s.DB.CheckMigrations(ctx); err != nil {
		checks["migrations"] = err.Error()
		status = http.StatusServiceUnavailable
	}
	s.json(w, status, map[string]any{"status": map[bool]string{true: "ready", false: "not ready"}[status == http.StatusOK], "checks": checks})
}

// NoSuchEndpoint begins the message of the catch-all 404: the answer to a
// path no route has, and to a route this process does not serve (a worker,
// the ops address, metrics turned off).
const NoSuchEndpoint = "no such endpoint: "

func (s *server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	s.error(w, r, rights.Errorf(rights.ENotFound, "%s%s %s", NoSuchEndpoint, r.Method, r.URL.Path))
}

// requestBody is a staff ticket as posted.
type requestBody struct {
	Product           string               `json:"product"`
	Type              rights.Type          `json:"type"`
	Subject           subjectBody          `json:"subject"`
	DeliveryEmail     string               `json:"delivery_email"`
	RequesterRelation rights.Relation      `json:"requester_relation"`
	Locale            string               `json:"locale"`
	Verification      *rights.Verification `json:"verification"`
	Note              string               `json:"note"`
	// TicketRef: the customer-service system's ticket number (optional).
	TicketRef string `json:"ticket_ref"`
	// Corrections: a correct request's fields and new values.
	Corrections map[string]string `json:"corrections"`
	// Purposes: the consents a withdraw_consent request withdraws.
	Purposes []string `json:"purposes"`
	// Text: a complaint's text, or the decision an explain request asks
	// about. Concerns: the request a complaint is about. Receiver: the
	// receiving handler of a transfer.
	Text     string `json:"text"`
	Concerns string `json:"concerns"`
	Receiver string `json:"receiver"`
}

type subjectBody struct {
	Identities map[string]string `json:"identities"`
}

const maxIdempotencyKey = 255

func (s *server) handleCreateRequest(w http.ResponseWriter, r *http.Request) {
	var body requestBody
	raw, err := s.decode(w, r, &body)
	if err != nil {
		s.error(w, r, err)
		return
	}
	var idem *storage.Idempotency
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		if len(key) > maxIdempotencyKey || strings.TrimSpace(key) != key {
			s.error(w, r, &rights.Error{Code: rights.EInvalid, Message: "bad Idempotency-Key header",
				Fields: []rights.FieldProblem{{Field: "Idempotency-Key", Reason: "at most 255 bytes, no surrounding spaces"}}})
			return
		}
		if problem := rights.TextProblem(key); problem != "" {
			// Stored in a text column: Postgres would refuse it with a 500.
			s.error(w, r, &rights.Error{Code: rights.EInvalid, Message: "bad Idempotency-Key header",
				Fields: []rights.FieldProblem{{Field: "Idempotency-Key", Reason: problem}}})
			return
		}
		sum := sha256.Sum256(raw)
		idem = &storage.Idempotency{Key: key, BodyHash: hex.EncodeToString(sum[:])}
	} else {
		// No key: one is derived from the body (and, through the staff
		// member, who sent it) for a short window, so that a client
		// retrying a POST whose answer it lost does not file the ticket
		// twice. The window is two 10-minute buckets: a retry across the
		// boundary finds the previous one.
		sum := sha256.Sum256(raw)
		bucket := s.Pipeline.Now().Unix() / int64(derivedKeyWindow.Seconds())
		key := func(b int64) string { return fmt.Sprintf("auto:%x:%d", sum[:16], b) }
		idem = &storage.Idempotency{Key: key(bucket), BodyHash: hex.EncodeToString(sum[:]), Alternates: []string{key(bucket - 1)}}
	}
	if body.Verification != nil {
		// Who verified and when is recorded by the service, not taken from the body.
		body.Verification.By, body.Verification.At = "", time.Time{}
	}
	in := rights.Intake{
		Product: body.Product, Type: body.Type, Identities: body.Subject.Identities,
		DeliveryEmail: body.DeliveryEmail, Relation: body.RequesterRelation, Locale: body.Locale,
		Verification: body.Verification, Note: body.Note, TicketRef: body.TicketRef, Corrections: body.Corrections, Purposes: body.Purposes,
		Text: body.Text, Concerns: body.Concerns, Receiver: body.Receiver,
	}
	if err := staffFrom(r.Context()).CheckProduct(in.Product); err != nil && in.Product != "" {
		s.error(w, r, err)
		return
	}
	req, received, created, err := s.Pipeline.SubmitStaffReceived(r.Context(), staffName(r.Context()), in, idem)
	if err != nil {
		s.error(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/requests/"+req.ID)
	if created {
		// The request as committed: its row and its one audit event, as
		// stored. It had no tasks, holds, notices, contacts, failed steps,
		// notes or complaints then (nothing can refer to a request before
		// it exists), so there is nothing more to read back.
		view := s.requestSummary(req)
		view.Audit = []rights.AuditEvent{*received}
		s.json(w, http.StatusCreated, view)
		return
	}
	w.Header().Set("Idempotent-Replayed", "true")
	status := http.StatusOK
	view, err := s.requestView(r.Context(), req, true)
	if err != nil {
		// Saved, but the database went away before the details could be
		// read: answer from what was written, not a 500 that invites a
		// duplicate.
		view, _ = s.requestView(r.Context(), req, false)
	}
	s.json(w, status, view)
}

// derivedKeyWindow is how long a ticket posted again without an
// Idempotency-Key is taken for a retry of the first (at least this long,
// at most twice).
const derivedKeyWindow = 10 * time.Minute

func (s *server) handleGetRequest(w http.ResponseWriter, r *http.Request) {
	view, err := s.requestDetail(r.Context(), r.PathValue("id"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.json(w, http.StatusOK, view)
}

func (s *server) handleListRequests(w http.ResponseWriter, r *http.Request) {
	st := staffFrom(r.Context())
	f, err := s.requestFilter(r, st)
	if err != nil {
		s.error(w, r, err)
		return
	}
	list, next, err := storage.ListRequests(r.Context(), s.DB.Pool, f)
	if err != nil {
		s.error(w, r, err)
		return
	}
	items := make([]requestView, 0, len(list))
	for _, req := range list {
		v, err := s.requestView(r.Context(), req, false)
		if err != nil {
			s.error(w, r, err)
			return
		}
		items = append(items, v)
	}
	answer := map[string]any{"requests": items, "next_cursor": next}
	if q := r.URL.Query().Get("counts"); q == "true" {
		// The counts above the console's queue: open requests per band,
		// under the same filters (the band's aside).
		counts, asOf, err := storage.BandCounts(r.Context(), s.DB.Pool, f, storage.LiveCountLimit)
		if err != nil {
			s.error(w, r, err)
			return
		}
		answer["counts"] = counts
		if !asOf.IsZero() {
			// A large backlog: the worker's stored counts, of then.
			answer["counts_as_of"] = asOf
		}
	}
	s.json(w, http.StatusOK, answer)
}

// requestFilter reads the staff list's query: every value is checked and
// an unknown one is a 400 naming its parameter, so that a typo (a product
// that does not exist) never looks like an empty queue.
//
//	status, product, type, sla_band, channel: exact values
//	assignee: a staff name, "me" (the caller) or "none" (nobody)
//	open=true: every request not completed, refused, cancelled or expired
//	q: an exact request id or ticket reference; never personal data
//	sort=due_at|-received_at, limit, cursor (due_at: by deadline; the
//	  on_track band by the instant each request becomes due soon, the
//	  order of its index)
func (s *server) requestFilter(r *http.Request, st rights.Staff) (storage.RequestFilter, error) {
	q := r.URL.Query()
	var problems rights.Problems
	f := storage.RequestFilter{
		Status: rights.Status(q.Get("status")), Product: q.Get("product"), Type: rights.Type(q.Get("type")),
		Band: rights.Band(q.Get("sla_band")), Channel: rights.Channel(q.Get("channel")), Cursor: q.Get("cursor"),
		Search: q.Get("q"), Now: s.Pipeline.Now(), DueSoonAt: s.Pipeline.DueSoonAt(),
	}
	switch q.Get("sort") {
	case "", "-received_at":
	case "due_at":
		f.SortByDue = true
	default:
		problems.Add("sort", "must be due_at (soonest deadline first) or -received_at (newest first, the default)")
	}
	if f.Band != "" && !f.Band.Valid() {
		problems.Add("sla_band", "unknown band %q; known: overdue, due_soon, on_track, paused, no_deadline, closed", f.Band)
	}
	if f.Band.Valid() && f.Band != rights.BandClosed {
		// An open band is a working queue, listed by deadline (its index's
		// order: a page costs the same at any backlog). Newest first it
		// would read every newer request outside the band first: 0.9 s
		// for the overdue band at 1M open requests.
		switch q.Get("sort") {
		case "":
			f.SortByDue = true
		case "-received_at":
			problems.Add("sort", "a list of the %s band is in deadline order (sort=due_at, the default with sla_band); newest first is offered without an open band", f.Band)
		}
	}
	if f.Status != "" && !f.Status.Valid() {
		problems.Add("status", "unknown status %q", f.Status)
	}
	if f.Type != "" && !f.Type.Valid() {
		problems.Add("type", "unknown right %q", f.Type)
	}
	if f.Product != "" {
		if _, ok := s.Pipeline.Settings().Product(f.Product); !ok {
			problems.Add("product", "unknown product %q", f.Product)
		}
	}
	switch f.Channel {
	case "", rights.ChannelStaff, rights.ChannelSelfService, rights.ChannelPartner:
	default:
		problems.Add("channel", "unknown channel %q; known: staff, self_service, partner", f.Channel)
	}
	switch a := q.Get("assignee"); {
	case a == "":
	case a == "me":
		f.Assignee = st.Name
	case a == "none":
		f.Unassigned = true
	case rights.ValidateStaff(rights.Staff{Name: a, Role: rights.RoleAgent}) != nil:
		problems.Add("assignee", "must be a staff name, me (yourself) or none (unassigned)")
	default:
		f.Assignee = a
	}
	switch q.Get("open") {
	case "", "false":
	case "true":
		f.Open = true
	default:
		problems.Add("open", "must be true or false")
	}
	if f.Search != "" && !storage.ValidID(f.Search) && !rights.ValidTicketRef(f.Search) {
		problems.Add("q", "must be an exact request id or ticket reference (personal data is not searched)")
	}
	if v := q.Get("counts"); v != "" && v != "true" && v != "false" {
		problems.Add("counts", "must be true or false")
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > storage.MaxPageSize {
			problems.Add("limit", "must be a number from 1 to %d", storage.MaxPageSize)
		}
		f.Limit = n
	}
	if err := problems.Err(); err != nil {
		return f, err
	}
	if f.Product != "" {
		if err := st.CheckProduct(f.Product); err != nil {
			return f, err
		}
	}
	f.Products = st.ProductScope()
	return f, nil
}

// requestView is a request as the staff API shows it.
type requestView struct {
	ID                string               `json:"id"`
	Product           string               `json:"product"`
	Type              rights.Type          `json:"type"`
	Channel           rights.Channel       `json:"channel"`
	Status            rights.Status        `json:"status"`
	Subject           rights.Subject       `json:"subject"`
	DeliveryEmail     string               `json:"delivery_email"`
	RequesterRelation rights.Relation      `json:"requester_relation"`
	Locale            string               `json:"locale"`
	Verification      *rights.Verification `json:"verification,omitempty"`
	Note              string               `json:"note,omitempty"`
	// TicketRef is the customer-service ticket number; Assignee who works
	// on the request ("" for nobody).
	TicketRef  string     `json:"ticket_ref"`
	Assignee   string     `json:"assignee"`
	CreatedBy  string     `json:"created_by"`
	ReceivedAt time.Time  `json:"received_at"`
	VerifiedAt *time.Time `json:"verified_at"`
	DueAt      *time.Time `json:"due_at"`
	// LastDay is the last day of the period in the product's time zone:
	// due_at is 24:00 of it.
	LastDay        string            `json:"last_day,omitempty"`
	Band           string            `json:"sla_band"`
	ClockStartedAt *time.Time        `json:"clock_started_at"`
	Clock          rights.ClockState `json:"clock"`
	// DeadlineWarning is set when the deadline was counted through a year
	// with no published calendar: a person must check it.
	DeadlineWarning string              `json:"deadline_warning,omitempty"`
	BreachedAt      *time.Time          `json:"breached_at"`
	Refusal         *rights.Refusal     `json:"refusal,omitempty"`
	CompletedAt     *time.Time          `json:"completed_at"`
	UpdatedAt       time.Time           `json:"updated_at"`
	Tasks           []taskView          `json:"tasks,omitempty"`
	Audit           []rights.AuditEvent `json:"audit,omitempty"`
	// Corrections are a correct request's fields and new values, shown to
	// staff, who approve changes to protected fields.
	Corrections map[string]string `json:"corrections,omitempty"`
	// Holds are the data a delete or cancellation kept restricted, per
	// store and dataset, with the end of their retention period.
	Holds []storage.Hold `json:"holds,omitempty"`
	// Purposes are the consents a withdraw_consent request withdraws.
	Purposes []string `json:"purposes,omitempty"`
	// Outcome is what the answer says beyond the tasks: an earlier
	// cancellation, consents withdrawn, third parties told.
	Outcome *rights.Outcome `json:"outcome,omitempty"`
	// Recipients are the notices to third parties to erase what was
	// shared with them, and their acknowledgements.
	Recipients []*storage.Notice `json:"recipients,omitempty"`
	// Contacts are the addresses the request had to prove with a code.
	Contacts []*storage.Contact `json:"contacts,omitempty"`
	// FailedSteps are the steps that ran out of attempts (retried ones
	// show when and by whom); POST …/resume runs the open ones again.
	FailedSteps []*storage.FailedStep `json:"failed_steps,omitempty"`
	// Notes are staff's internal notes, oldest first; never emailed.
	Notes []*storage.Note `json:"notes,omitempty"`
	// Details: a complaint's text and the request it concerns, what an
	// explain request asks, a transfer's receiver, staff's answer, the
	// subject's age band, a next-of-kin approver's evidence.
	Details *rights.Details `json:"details,omitempty"`
	// Complaints are the complaints about this request.
	Complaints []string `json:"complaints,omitempty"`
}

type taskView struct {
	ID         string              `json:"id"`
	Store      string              `json:"store"`
	Action     rights.TaskAction   `json:"action"`
	Status     rights.TaskStatus   `json:"status"`
	Attempts   int                 `json:"attempts"`
	Report     *rights.StoreReport `json:"report,omitempty"`
	LastError  string              `json:"last_error,omitempty"`
	FinishedAt *time.Time          `json:"finished_at,omitempty"`
}

func (s *server) requestView(ctx context.Context, r *rights.Request, detail bool) (requestView, error) {
	if !detail {
		return s.requestSummary(r), nil
	}
	// Read again, in the same snapshot as its parts.
	return s.requestDetail(ctx, r.ID)
}

// requestDetail is the view of request id with its tasks, audit trail and
// the rest, all read in one snapshot.
func (s *server) requestDetail(ctx context.Context, id string) (requestView, error) {
	var v requestView
	err := s.DB.Snapshot(ctx, func(tx pgx.Tx) error {
		r, err := storage.GetRequest(ctx, tx, id)
		if err != nil {
			return err
		}
		v = s.requestSummary(r)
		tasks, err := storage.ListTasks(ctx, tx, r.ID)
		if err != nil {
			return err
		}
		for _, t := range tasks {
			v.Tasks = append(v.Tasks, taskView{ID: t.ID, Store: t.Store, Action: t.Action, Status: t.Status,
				Attempts: t.Attempts, Report: t.Report, LastError: t.LastError, FinishedAt: t.FinishedAt})
		}
		if v.Audit, err = storage.ListAudit(ctx, tx, r.ID); err != nil {
			return err
		}
		if r.Type.Erases() {
			if v.Holds, err = storage.ListHolds(ctx, tx, r.ID); err != nil {
				return err
			}
		}
		if v.Recipients, err = storage.ListNotices(ctx, tx, r.ID); err != nil {
			return err
		}
		if v.Contacts, err = storage.ListContacts(ctx, tx, r.ID, false); err != nil {
			return err
		}
		if v.FailedSteps, err = storage.ListFailedSteps(ctx, tx, r.ID, false); err != nil {
			return err
		}
		if v.Notes, err = storage.ListNotes(ctx, tx, r.ID); err != nil {
			return err
		}
		v.Complaints, err = storage.ComplaintsAbout(ctx, tx, r.ID)
		return err
	})
	return v, err
}

// requestSummary is a request's view without its parts.
func (s *server) requestSummary(r *rights.Request) requestView {
	v := requestView{
		ID: r.ID, Product: r.Product, Type: r.Type, Channel: r.Channel, Status: r.Status, Subject: r.Subject,
		DeliveryEmail: r.DeliveryEmail, RequesterRelation: r.Relation, Locale: r.Locale,
		Verification: r.Verification, Note: r.Note, TicketRef: r.TicketRef, Assignee: r.Assignee, CreatedBy: r.CreatedBy, ReceivedAt: r.ReceivedAt,
		VerifiedAt: r.VerifiedAt, DueAt: r.DueAt, CompletedAt: r.CompletedAt, UpdatedAt: r.UpdatedAt,
		ClockStartedAt: r.ClockStartedAt, Clock: r.Clock, BreachedAt: r.BreachedAt, Refusal: r.Refusal,
		Band: string(s.Pipeline.Band(r)), Corrections: r.Corrections, Purposes: r.Purposes, Outcome: r.Outcome,
		Details: r.Details,
	}
	if r.DueAt != nil {
		v.LastDay = s.Pipeline.LastDay(r)
	}
	if len(r.DeadlineUncoveredYears) > 0 {
		v.DeadlineWarning = fmt.Sprintf("counted without a published holiday calendar for %v (weekends only): check the deadline by hand", r.DeadlineUncoveredYears)
	}
	return v
}

// selfServiceBody is a request from the person themselves.
type selfServiceBody struct {
	Product string      `json:"product"`
	Type    rights.Type `json:"type"`
	Email   string      `json:"email"`
	Locale  string      `json:"locale"`
	// Corrections: a correct request's fields and new values.
	Corrections map[string]string `json:"corrections"`
	// Purposes: the consents a withdraw_consent request withdraws.
	Purposes []string `json:"purposes"`
	// Text, Concerns, Receiver: as for a staff ticket.
	Text     string `json:"text"`
	Concerns string `json:"concerns"`
	Receiver string `json:"receiver"`
}

func (s *server) handleSelfServiceCreate(w http.ResponseWriter, r *http.Request) {
	var body selfServiceBody
	if _, err := s.decode(w, r, &body); err != nil {
		s.error(w, r, err)
		return
	}
	in := rights.Intake{Product: body.Product, Type: body.Type, Locale: body.Locale, Relation: rights.RelationSelf,
		Corrections: body.Corrections, Purposes: body.Purposes, Text: body.Text, Concerns: body.Concerns, Receiver: body.Receiver}
	if body.Email != "" {
		in.Identities = map[string]string{"email": body.Email}
	}
	req, err := s.Pipeline.SubmitSelfService(r.Context(), in, s.client(r))
	if err != nil {
		if re, ok := err.(*rights.Error); ok {
			renameField(re, "subject.identities.email", "email")
			renameField(re, "subject.identities", "email")
			renameField(re, "delivery_email", "email")
		}
		s.error(w, r, err)
		return
	}
	// The same answer whether or not anyone with this email is known: the
	// code goes to the address, and only its owner can go on.
	s.json(w, http.StatusAccepted, map[string]any{
		"id":      req.ID,
		"status":  req.Status,
		"message": "If the address can receive mail, a verification code is on its way. Submit it to /api/v1/self-service/requests/" + req.ID + "/verify.",
	})
}

func renameField(e *rights.Error, from, to string) {
	seen := map[string]bool{}
	out := e.Fields[:0]
	for _, f := range e.Fields {
		if f.Field == from {
			f.Field = to
		}
		if key := f.Field + "\x00" + f.Reason; !seen[key] {
			seen[key] = true
			out = append(out, f)
		}
	}
	e.Fields = out
}

type verifyBody struct {
	Code string `json:"code"`
}

func (s *server) handleSelfServiceVerify(w http.ResponseWriter, r *http.Request) {
	var body verifyBody
	if _, err := s.decode(w, r, &body); err != nil {
		s.error(w, r, err)
		return
	}
	if !jobs.WellFormedCode(body.Code) {
		s.error(w, r, &rights.Error{Code: rights.EInvalid, Message: "the code is malformed",
			Fields: []rights.FieldProblem{{Field: "code", Reason: fmt.Sprintf("must be the %d digits from the email", jobs.CodeDigits)}}})
		return
	}
	req, key, err := s.Pipeline.VerifyCode(r.Context(), r.PathValue("id"), body.Code, s.client(r))
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.json(w, http.StatusOK, map[string]any{"id": req.ID, "status": req.Status, "due_at": req.DueAt,
		// Shown once: the key to the status page (and the copy's password).
		"access_key": key, "status_url": s.Pipeline.StatusURL(req.ID)})
}

// contactBody is a code proving one of a request's addresses.
type contactBody struct {
	Field string `json:"field"` // delivery_email or the corrected field; optional when one waits
	Code  string `json:"code"`
}

func (s *server) decodeContact(w http.ResponseWriter, r *http.Request) (contactBody, bool) {
	var body contactBody
	if _, err := s.decode(w, r, &body); err != nil {
		s.error(w, r, err)
		return body, false
	}
	if !jobs.WellFormedCode(body.Code) {
		s.error(w, r, &rights.Error{Code: rights.EInvalid, Message: "the code is malformed",
			Fields: []rights.FieldProblem{{Field: "code", Reason: fmt.Sprintf("must be the %d digits sent to the address", jobs.CodeDigits)}}})
		return body, false
	}
	return body, true
}

// handleConfirmContact: staff enter the code the requester read back to
// them (a staff ticket's delivery email, or a corrected address).
func (s *server) handleConfirmContact(w http.ResponseWriter, r *http.Request) {
	body, ok := s.decodeContact(w, r)
	if !ok {
		return
	}
	req, err := s.Pipeline.ConfirmContact(r.Context(), r.PathValue("id"), body.Field, body.Code, staffFrom(r.Context()).Actor())
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.json(w, http.StatusOK, map[string]any{"id": req.ID, "status": req.Status})
}

// handleSelfServiceConfirmContact: the requester enters the code sent to
// the new address, with the access key they were given at verification.
func (s *server) handleSelfServiceConfirmContact(w http.ResponseWriter, r *http.Request) {
	body, ok := s.decodeContact(w, r)
	if !ok {
		return
	}
	if _, err := s.Pipeline.CheckAccessKey(r.Context(), r.PathValue("id"), accessKey(r)); err != nil {
		s.error(w, r, err)
		return
	}
	req, err := s.Pipeline.ConfirmContact(r.Context(), r.PathValue("id"), body.Field, body.Code, rights.ActorRequester)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.json(w, http.StatusOK, map[string]any{"id": req.ID, "status": req.Status})
}
