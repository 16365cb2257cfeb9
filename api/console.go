package api

import (
	"net/http"
)

// Routes the staff console's engine offers: assignment, internal notes and
// the identity lookup before filing.

type assignBody struct {
	Assignee string `json:"assignee"` // "" unassigns
}

func (s *server) handleAssign(w http.ResponseWriter, r *http.Request) {
	var body assignBody
	if _, err := s.decode(w, r, &body); err != nil {
		s.error(w, r, err)
		return
	}
	req, err := s.Pipeline.Assign(r.Context(), staffFrom(r.Context()), r.PathValue("id"), body.Assignee)
	s.respondRequest(w, r, req, err)
}

type noteBody struct {
	Body string `json:"body"`
}

func (s *server) handleAddNote(w http.ResponseWriter, r *http.Request) {
	var body noteBody
	if _, err := s.decode(w, r, &body); err != nil {
		s.error(w, r, err)
		return
	}
	note, err := s.Pipeline.AddNote(r.Context(), staffFrom(r.Context()), r.PathValue("id"), body.Body)
	if err != nil {
		s.error(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/requests/"+note.RequestID)
	s.json(w, http.StatusCreated, note)
}

type lookupBody struct {
	Product    string            `json:"product"`
	Identities map[string]string `json:"identities"`
}

// handleLookup tells staff, before they file a ticket, whether the
// identities lead to one person in the product's stores, without any of
// their data. The values travel in the body, never in a URL.
func (s *server) handleLookup(w http.ResponseWriter, r *http.Request) {
	var body lookupBody
	if _, err := s.decode(w, r, &body); err != nil {
		s.error(w, r, err)
		return
	}
	st := staffFrom(r.Context())
	if body.Product != "" {
		// A product outside the staff member's scope is refused before
		// anything else about the body is said.
		if err := st.CheckProduct(body.Product); err != nil {
			s.error(w, r, err)
			return
		}
	}
	res, err := s.Pipeline.Lookup(r.Context(), st, body.Product, body.Identities)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.json(w, http.StatusOK, res)
}
