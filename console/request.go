package console

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/jobs"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// requestData is everything the request page shows.
type requestData struct {
	R        *rights.Request
	Band     rights.Band
	DaysLeft string
	LastDay  string
	Policy   string
	// Zone is the product's time zone: the last day ends at 24:00 there.
	Zone        string
	Tasks       []*rights.Task
	Audit       []rights.AuditEvent
	Holds       []storage.Hold
	Notices     []*storage.Notice
	Contacts    []*storage.Contact
	FailedSteps []*storage.FailedStep
	Notes       []*storage.Note
	Export      *jobs.ExportView
	Identities  []keyValue
	Corrections []keyValue
	Reasons     []refusalChoice
	Assignable  []string
	// Password is the copy's password, in the one answer that reveals it.
	Password string
	Open     bool
	// Complaints are the complaints about this request.
	Complaints []string
}

// AwaitsAnswer reports whether staff should write the request's answer
// (a complaint or explain request, planned and not yet answered).
func (d *requestData) AwaitsAnswer() bool {
	return d.R.Type.Answered() && d.R.Status == rights.StatusInProgress
}

type keyValue struct{ Key, Value string }

type refusalChoice struct{ Code, Label string }

func sortedPairs(m map[string]string) []keyValue {
	out := make([]keyValue, 0, len(m))
	for k, v := range m {
		out = append(out, keyValue{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Is the request's status one of these (for the template's action list)?
func (d *requestData) Is(statuses ...string) bool {
	return slices.Contains(statuses, string(d.R.Status))
}

// CanMoveTo reports whether the lifecycle lets the request move to status
// now: an action it would refuse is not offered.
func (d *requestData) CanMoveTo(status string) bool {
	if rights.Status(status) == rights.StatusRefused && d.R.WorkStatus() == rights.StatusInProgress &&
		!rights.RefusableWhileInProgress(d.R.Type) {
		return false // store work has started
	}
	return rights.CanTransition(d.R.Status, rights.Status(status))
}

func (s *server) loadRequest(r *http.Request, p *page) (*requestData, error) {
	ctx := r.Context()
	id := r.PathValue("id")
	// One snapshot for the request and its parts (storage.DB.Snapshot).
	var d *requestData
	var req *rights.Request
	err := s.DB.Snapshot(ctx, func(tx pgx.Tx) error {
		var err error
		if req, err = storage.GetRequest(ctx, tx, id); err != nil {
			return err
		}
		d = &requestData{R: req, Band: s.Pipeline.Band(req), LastDay: s.Pipeline.LastDay(req),
			Identities: sortedPairs(req.Subject.Identities), Corrections: sortedPairs(req.Corrections),
			Open: !req.Status.Terminal()}
		if d.Tasks, err = storage.ListTasks(ctx, tx, id); err != nil {
			return err
		}
		if d.Audit, err = storage.ListAudit(ctx, tx, id); err != nil {
			return err
		}
		if req.Type.Erases() {
			if d.Holds, err = storage.ListHolds(ctx, tx, id); err != nil {
				return err
			}
		}
		if d.Notices, err = storage.ListNotices(ctx, tx, id); err != nil {
			return err
		}
		if d.Contacts, err = storage.ListContacts(ctx, tx, id, false); err != nil {
			return err
		}
		if d.FailedSteps, err = storage.ListFailedSteps(ctx, tx, id, false); err != nil {
			return err
		}
		if d.Notes, err = storage.ListNotes(ctx, tx, id); err != nil {
			return err
		}
		d.Complaints, err = storage.ComplaintsAbout(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	d.DaysLeft = s.daysLeft(p, req)
	policy := s.Pipeline.Policy(req.Product)
	d.Policy = policy.String()
	d.Zone = "UTC"
	if policy.Location != nil {
		d.Zone = policy.Location.String()
	}
	if req.Type == rights.TypeCopy || req.Type == rights.TypeAccess {
		if d.Export, err = s.Pipeline.Export(ctx, id); err != nil && rights.ErrorCode(err) != rights.ENotFound {
			return nil, err
		}
	}
	if d.Assignable, err = storage.AssignableStaff(ctx, s.DB.Pool, req.Product); err != nil {
		return nil, err
	}
	for code, words := range rights.RefusalReasons {
		label := words.EN
		if p.Lang == "zh-CN" {
			label = words.ZH
		}
		d.Reasons = append(d.Reasons, refusalChoice{string(code), label})
	}
	sort.Slice(d.Reasons, func(i, j int) bool { return d.Reasons[i].Code < d.Reasons[j].Code })
	return d, nil
}

// daysLeft says how long a request has, as its product counts.
func (s *server) daysLeft(p *page, r *rights.Request) string {
	if r.Status.Terminal() {
		return ""
	}
	n, kind, ok := s.Pipeline.DaysLeft(r)
	switch {
	case !ok:
		return p.T("days.none")
	case n == 0:
		return p.T("days.today")
	case n < 0 && kind == rights.WorkingDays:
		return p.T("days.overdue_w", -n)
	case n < 0:
		return p.T("days.overdue_c", -n)
	case kind == rights.WorkingDays:
		return p.T("days.working", n)
	}
	return p.T("days.calendar", n)
}

func (s *server) handleRequest(w http.ResponseWriter, r *http.Request) {
	s.showRequest(w, r, http.StatusOK, nil, "")
}

// showRequest renders the request page, with an action's error (its
// field problems in place) or a revealed password.
func (s *server) showRequest(w http.ResponseWriter, r *http.Request, status int, actionErr error, password string) {
	p := s.newPage(r, "req.title", "queue")
	d, err := s.loadRequest(r, p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.Title = p.T("req.title", shortID(d.R.ID))
	d.Password = password
	if actionErr != nil {
		p.Error = rights.ErrorMessage(actionErr)
		p.Fields = fieldErrors(actionErr)
	}
	p.Data = d
	s.render(w, r, status, "request", p)
}

// shortID is the end of a request id: ids are UUIDv7, whose first digits
// are the time they were made and are the same for requests made together.
func shortID(id string) string {
	if len(id) > 8 {
		return "…" + id[len(id)-8:]
	}
	return id
}

// done ends an action: back to the request page with a line saying what
// was done, or the page again with the error.
func (s *server) done(w http.ResponseWriter, r *http.Request, err error, what string) {
	if err != nil {
		if code := rights.ErrorCode(err); code == rights.EInternal || code == rights.EUnavailable {
			s.fail(w, r, err)
			return
		}
		s.showRequest(w, r, statusOf(err), err, "")
		return
	}
	s.redirectWith(w, r, "/console/requests/"+r.PathValue("id"), translate(pickLanguage(r), "req.done", translate(pickLanguage(r), what)))
}

func staffOf(r *http.Request) rights.Staff { return sessionFrom(r.Context()).staff }

func (s *server) handleApprove(w http.ResponseWriter, r *http.Request) {
	_, err := s.Pipeline.Approve(r.Context(), staffOf(r).Name, r.PathValue("id"), r.PostFormValue("note"), r.PostFormValue("evidence"))
	s.done(w, r, err, "req.approve")
}

func (s *server) handleAnswer(w http.ResponseWriter, r *http.Request) {
	_, err := s.Pipeline.Answer(r.Context(), staffOf(r).Name, r.PathValue("id"), r.PostFormValue("answer"))
	s.done(w, r, err, "req.answered")
}

func (s *server) handleRefuse(w http.ResponseWriter, r *http.Request) {
	_, err := s.Pipeline.Refuse(r.Context(), staffOf(r).Name, r.PathValue("id"),
		rights.RefusalReason(r.PostFormValue("reason")), r.PostFormValue("message"))
	s.done(w, r, err, "req.refuse")
}

func (s *server) handlePause(w http.ResponseWriter, r *http.Request) {
	_, err := s.Pipeline.Pause(r.Context(), staffOf(r).Name, r.PathValue("id"), r.PostFormValue("reason"))
	s.done(w, r, err, "req.pause")
}

func (s *server) handleResume(w http.ResponseWriter, r *http.Request) {
	_, err := s.Pipeline.Resume(r.Context(), staffOf(r).Name, r.PathValue("id"))
	s.done(w, r, err, "req.resume")
}

func (s *server) handleExtend(w http.ResponseWriter, r *http.Request) {
	days, convErr := strconv.Atoi(strings.TrimSpace(r.PostFormValue("days")))
	if convErr != nil {
		s.done(w, r, &rights.Error{Code: rights.EInvalid, Message: "the number of days is missing",
			Fields: []rights.FieldProblem{{Field: "days", Reason: "must be a whole number of days"}}}, "")
		return
	}
	_, err := s.Pipeline.Extend(r.Context(), staffOf(r).Name, r.PathValue("id"), days, r.PostFormValue("reason"))
	s.done(w, r, err, "req.extend")
}

func (s *server) handleAssign(w http.ResponseWriter, r *http.Request) {
	_, err := s.Pipeline.Assign(r.Context(), staffOf(r), r.PathValue("id"), assigneeFrom(r))
	s.done(w, r, err, "queue.assign")
}

// assigneeFrom is the assignee field, where "me" is the signed-in staff
// member.
func assigneeFrom(r *http.Request) string {
	a := strings.TrimSpace(r.PostFormValue("assignee"))
	if a == "me" {
		return staffOf(r).Name
	}
	return a
}

func (s *server) handleNote(w http.ResponseWriter, r *http.Request) {
	_, err := s.Pipeline.AddNote(r.Context(), staffOf(r), r.PathValue("id"), r.PostFormValue("body"))
	s.done(w, r, err, "req.add_note")
}

func (s *server) handleRetryTask(w http.ResponseWriter, r *http.Request) {
	_, err := s.Pipeline.RetryTask(r.Context(), staffOf(r).Name, r.PathValue("id"), r.PathValue("task"))
	s.done(w, r, err, "req.retry_task")
}

func (s *server) handleConfirmTask(w http.ResponseWriter, r *http.Request) {
	var p rights.Problems
	found := r.PostFormValue("found")
	if found != "true" && found != "false" {
		p.Add("found", "say whether the person's data was found in the store")
	}
	records, err := strconv.ParseInt(strings.TrimSpace(r.PostFormValue("records")), 10, 64)
	if err != nil || records < 0 {
		p.Add("records", "must be a number of records (0 or more)")
	}
	if err := p.Err(); err != nil {
		s.done(w, r, err, "")
		return
	}
	_, err = s.Pipeline.ConfirmTask(r.Context(), staffOf(r).Actor(), r.PathValue("id"), r.PathValue("task"),
		jobs.Confirmation{Found: found == "true", Records: records, Note: r.PostFormValue("note")})
	s.done(w, r, err, "req.confirm_task")
}

func (s *server) handleAcknowledge(w http.ResponseWriter, r *http.Request) {
	_, err := s.Pipeline.AcknowledgeNotice(r.Context(), staffOf(r).Name, r.PathValue("id"), r.PathValue("recipient"), r.PostFormValue("note"))
	s.done(w, r, err, "req.acknowledge")
}

// handleRevealPassword shows a staff ticket's archive password, once, in
// this answer only (not after a redirect: it is never stored in the clear
// on the way).
func (s *server) handleRevealPassword(w http.ResponseWriter, r *http.Request) {
	view, err := s.Pipeline.RevealPassword(r.Context(), r.PathValue("id"), "staff", staffOf(r).Actor())
	if err != nil {
		s.done(w, r, err, "")
		return
	}
	s.showRequest(w, r, http.StatusOK, nil, view.Password)
}

func (s *server) handleConfirmContact(w http.ResponseWriter, r *http.Request) {
	_, err := s.Pipeline.ConfirmContact(r.Context(), r.PathValue("id"), r.PostFormValue("field"),
		strings.TrimSpace(r.PostFormValue("code")), staffOf(r).Actor())
	s.done(w, r, err, "req.confirm_code")
}

// taskCounts sums a store report's datasets for the task table.
func taskCounts(t *rights.Task) string {
	if t.Report == nil {
		return ""
	}
	var found, changed int64
	for _, d := range t.Report.Datasets {
		found += d.Rows
		changed += d.Deleted + d.Anonymized + d.Restricted
	}
	return fmt.Sprintf("%d / %d", found, changed)
}
