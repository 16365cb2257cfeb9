package api

import (
	"net/http"

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
