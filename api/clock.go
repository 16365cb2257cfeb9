package api

import (
	"fmt"
	"net/http"

	"github.com/datarights/datarights/calendars"
	"github.com/datarights/datarights/jobs"
	"github.com/datarights/datarights/rights"
)

type pauseBody struct {
	Reason string `json:"reason"`
}

type extendBody struct {
	Days   int    `json:"days"`
	Reason string `json:"reason"`
}

func (s *server) handlePause(w http.ResponseWriter, r *http.Request) {
	var body pauseBody
	if _, err := s.decode(w, r, &body); err != nil {
		s.error(w, r, err)
		return
	}
	req, err := s.Pipeline.Pause(r.Context(), staffName(r.Context()), r.PathValue("id"), body.Reason)
	s.respondRequest(w, r, req, err)
}

func (s *server) handleResume(w http.ResponseWriter, r *http.Request) {
	var body struct{}
	if _, err := s.decode(w, r, &body); err != nil {
		s.error(w, r, err)
		return
	}
	req, err := s.Pipeline.Resume(r.Context(), staffName(r.Context()), r.PathValue("id"))
	s.respondRequest(w, r, req, err)
}

func (s *server) handleExtend(w http.ResponseWriter, r *http.Request) {
	var body extendBody
	if _, err := s.decode(w, r, &body); err != nil {
		s.error(w, r, err)
		return
	}
	req, err := s.Pipeline.Extend(r.Context(), staffName(r.Context()), r.PathValue("id"), body.Days, body.Reason)
	s.respondRequest(w, r, req, err)
}

// respondRequest answers with the request after a staff action.
func (s *server) respondRequest(w http.ResponseWriter, r *http.Request, req *rights.Request, err error) {
	if err != nil {
		s.error(w, r, err)
		return
	}
	view, err := s.requestView(r.Context(), req, true)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.json(w, http.StatusOK, view)
}

// handleSLADue is the deadline calculator: the same answer as
// `datarights sla due`, as JSON. It reads no data, so it needs no token.
func (s *server) handleSLADue(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	query := calendars.DueQuery{Policy: q.Get("policy"), Days: q.Get("days"), Calendar: q.Get("calendar"),
		Start: q.Get("start"), TimeZone: q.Get("time_zone")}
	switch q.Get("roll_forward") {
	case "", "false", "0":
	case "true", "1":
		query.RollForward = true
	default:
		s.error(w, r, &rights.Error{Code: rights.EInvalid, Message: "bad roll_forward",
			Fields: []rights.FieldProblem{{Field: "roll_forward", Reason: "must be true or false"}}})
		return
	}
	ans, err := query.Resolve(s.Calendars)
	if err != nil {
		s.error(w, r, err)
		return
	}
	body := map[string]any{
		"last_day": ans.LastDay, "due_at": ans.Due, "start": ans.Start, "policy": ans.Policy.Kind,
		"days": ans.Policy.Days, "calendar": query.Calendar, "roll_forward": ans.Policy.RollForward,
		"time_zone": ans.Policy.Location.String(), "sources": ans.Sources,
		"uncovered_years": ans.UncoveredYears,
	}
	if len(ans.UncoveredYears) > 0 {
		body["warning"] = fmt.Sprintf("no published calendar for %v: those days were counted as weekends only", ans.UncoveredYears)
	}
	s.json(w, http.StatusOK, body)
}

func (s *server) handleRetryTask(w http.ResponseWriter, r *http.Request) {
	var body struct{}
	if _, err := s.decode(w, r, &body); err != nil {
		s.error(w, r, err)
		return
	}
	req, err := s.Pipeline.RetryTask(r.Context(), staffName(r.Context()), r.PathValue("id"), r.PathValue("task"))
	s.respondRequest(w, r, req, err)
}

type refuseBody struct {
	Reason  rights.RefusalReason `json:"reason"`
	Message string               `json:"message"`
}

func (s *server) handleRefuse(w http.ResponseWriter, r *http.Request) {
	var body refuseBody
	if _, err := s.decode(w, r, &body); err != nil {
		s.error(w, r, err)
		return
	}
	req, err := s.Pipeline.Refuse(r.Context(), staffName(r.Context()), r.PathValue("id"), body.Reason, body.Message)
	s.respondRequest(w, r, req, err)
}

type confirmBody struct {
	Found   *bool  `json:"found"`
	Records int64  `json:"records"`
	Note    string `json:"note"`
}

func (s *server) handleConfirmTask(w http.ResponseWriter, r *http.Request) {
	var body confirmBody
	if _, err := s.decode(w, r, &body); err != nil {
		s.error(w, r, err)
		return
	}
	if body.Found == nil {
		s.error(w, r, &rights.Error{Code: rights.EInvalid, Message: "the confirmation is incomplete",
			Fields: []rights.FieldProblem{{Field: "found", Reason: "is required: true if the person's data was found in the store"}}})
		return
	}
	req, err := s.Pipeline.ConfirmTask(r.Context(), rights.ActorStaff(staffName(r.Context())), r.PathValue("id"), r.PathValue("task"),
		jobs.Confirmation{Found: *body.Found, Records: body.Records, Note: body.Note})
	s.respondRequest(w, r, req, err)
}

type approveBody struct {
	Note string `json:"note"`
	// Evidence: for a next-of-kin request, what the approver checked.
	Evidence string `json:"evidence"`
}

func (s *server) handleApprove(w http.ResponseWriter, r *http.Request) {
	var body approveBody
	if _, err := s.decode(w, r, &body); err != nil {
		s.error(w, r, err)
		return
	}
	req, err := s.Pipeline.Approve(r.Context(), staffName(r.Context()), r.PathValue("id"), body.Note, body.Evidence)
	s.respondRequest(w, r, req, err)
}

type answerBody struct {
	Answer string `json:"answer"`
}

// handleAnswer records staff's reply to a complaint or explanation of an
// automated decision, which is emailed to the requester.
func (s *server) handleAnswer(w http.ResponseWriter, r *http.Request) {
	var body answerBody
	if _, err := s.decode(w, r, &body); err != nil {
		s.error(w, r, err)
		return
	}
	req, err := s.Pipeline.Answer(r.Context(), staffName(r.Context()), r.PathValue("id"), body.Answer)
	s.respondRequest(w, r, req, err)
}
