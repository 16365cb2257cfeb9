package api

import (
	"net/http"

	"github.com/datarights/datarights/rights"
)

// consentLookupBody asks for a subject's consent ledger. It is a POST so
// that identities stay out of URLs, which proxies and logs keep.
type consentLookupBody struct {
	Product string      `json:"product"`
	Subject subjectBody `json:"subject"`
}

func (s *server) handleConsentLookup(w http.ResponseWriter, r *http.Request) {
	var body consentLookupBody
	if _, err := s.decode(w, r, &body); err != nil {
		s.error(w, r, err)
		return
	}
	if err := staffFrom(r.Context()).CheckProduct(body.Product); err != nil && body.Product != "" {
		s.error(w, r, err)
		return
	}
	ledger, err := s.Pipeline.Consents(r.Context(), body.Product, body.Subject.Identities)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.json(w, http.StatusOK, ledger)
}

// consentBody records a consent given or withdrawn in the product.
type consentBody struct {
	Product string      `json:"product"`
	Subject subjectBody `json:"subject"`
	Purpose string      `json:"purpose"`
	Granted *bool       `json:"granted"`
	Note    string      `json:"note"`
}

func (s *server) handleRecordConsent(w http.ResponseWriter, r *http.Request) {
	var body consentBody
	if _, err := s.decode(w, r, &body); err != nil {
		s.error(w, r, err)
		return
	}
	if err := staffFrom(r.Context()).CheckProduct(body.Product); err != nil && body.Product != "" {
		s.error(w, r, err)
		return
	}
	if body.Granted == nil {
		s.error(w, r, &rights.Error{Code: rights.EInvalid, Message: "the consent has invalid fields",
			Fields: []rights.FieldProblem{{Field: "granted", Reason: "is required: true when consent was given, false when withdrawn"}}})
		return
	}
	ev, err := s.Pipeline.RecordConsent(r.Context(), rights.ActorStaff(staffName(r.Context())), body.Product, body.Subject.Identities, body.Purpose, *body.Granted, body.Note)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.json(w, http.StatusCreated, ev)
}
