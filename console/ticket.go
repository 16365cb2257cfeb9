package console

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"sort"
	"strings"

	"github.com/datarights/datarights/jobs"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// ticketForm is the ticket form as typed, so that a form with a mistake
// comes back with everything still in it.
type ticketForm struct {
	Product, Right, TicketRef, Identities, DeliveryEmail, Method, Reference string
	Relation, Locale, Corrections, Purposes, Note                           string
	Text, Concerns, Receiver                                                string
	// Nonce makes the form's idempotency key: the same form posted twice
	// (a double click, a reload of the answer) files one ticket.
	Nonce string
}

type ticketData struct {
	Form          ticketForm
	Products      []string
	Rights        []rights.Type
	Relations     []rights.Relation
	Methods       []string
	IdentityTypes map[string][]string
	Purposes      map[string][]string
	Receivers     []string
	Lookup        *jobs.LookupResult
}

func (s *server) ticketData(r *http.Request, f ticketForm) *ticketData {
	st := staffOf(r)
	d := &ticketData{Form: f, Rights: rights.Types, IdentityTypes: map[string][]string{}, Purposes: map[string][]string{},
		Relations: []rights.Relation{rights.RelationSelf, rights.RelationGuardian, rights.RelationNextOfKin, rights.RelationAgent},
		Methods:   s.Pipeline.Settings().Intake.VerificationMethods}
	for _, prod := range s.Pipeline.Settings().Products {
		if !st.InScope(prod.Name) {
			continue
		}
		d.Products = append(d.Products, prod.Name)
		d.IdentityTypes[prod.Name] = s.Pipeline.IdentityTypes(prod.Name)
	}
	for _, rc := range s.Pipeline.Settings().TransferReceivers {
		d.Receivers = append(d.Receivers, rc.Name)
	}
	for _, purpose := range s.Pipeline.Settings().Consent.Purposes {
		d.Purposes[""] = append(d.Purposes[""], purpose.Name)
	}
	sort.Strings(d.Products)
	return d
}

func (s *server) handleTicketForm(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "ticket.title", "new")
	nonce, err := newSecret()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d := s.ticketData(r, ticketForm{Relation: string(rights.RelationSelf), Locale: p.Lang, Nonce: nonce})
	if len(d.Products) == 1 {
		d.Form.Product = d.Products[0]
	}
	p.Data = d
	s.render(w, r, http.StatusOK, "ticket", p)
}

func (s *server) handleTicketSubmit(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "ticket.title", "new")
	v := r.PostFormValue
	f := ticketForm{Product: v("product"), Right: v("right"), TicketRef: strings.TrimSpace(v("ticket_ref")),
		Identities: v("identities"), DeliveryEmail: strings.TrimSpace(v("delivery_email")), Method: v("method"),
		Reference: strings.TrimSpace(v("reference")), Relation: v("relation"), Locale: v("locale"),
		Corrections: v("corrections"), Purposes: v("purposes"), Note: v("note"), Nonce: v("nonce"),
		Text: v("text"), Concerns: strings.TrimSpace(v("concerns")), Receiver: v("receiver")}
	d := s.ticketData(r, f)
	p.Data = d
	st := staffOf(r)

	var problems rights.Problems
	identities := parsePairs(f.Identities, "identities", &problems)
	corrections := parsePairs(f.Corrections, "corrections", &problems)
	if v("action") == "lookup" {
		if err := problems.Err(); err != nil {
			s.formError(w, r, p, err)
			return
		}
		res, err := s.Pipeline.Lookup(r.Context(), st, f.Product, identities)
		if err != nil {
			s.formError(w, r, p, err)
			return
		}
		d.Lookup = res
		s.render(w, r, http.StatusOK, "ticket", p)
		return
	}
	if err := st.CheckProduct(f.Product); err != nil && f.Product != "" {
		s.formError(w, r, p, err)
		return
	}
	in := rights.Intake{Product: f.Product, Type: rights.Type(f.Right), Identities: identities,
		DeliveryEmail: f.DeliveryEmail, Relation: rights.Relation(f.Relation), Locale: f.Locale, Note: f.Note,
		Corrections: corrections, Purposes: lines(f.Purposes), TicketRef: f.TicketRef,
		Text: f.Text, Concerns: f.Concerns, Receiver: f.Receiver}
	if f.Method != "" || f.Reference != "" {
		in.Verification = &rights.Verification{Method: f.Method, Reference: f.Reference}
	}
	if err := problems.Err(); err != nil {
		s.formError(w, r, p, err)
		return
	}
	var idem *storage.Idempotency
	if f.Nonce != "" && len(f.Nonce) <= 64 {
		sum := sha256.Sum256([]byte(strings.Join([]string{f.Product, f.Right, f.TicketRef, f.Identities, f.DeliveryEmail,
			f.Method, f.Reference, f.Relation, f.Locale, f.Corrections, f.Purposes, f.Note, f.Text, f.Concerns, f.Receiver}, "\x00")))
		idem = &storage.Idempotency{Key: "console:" + f.Nonce, BodyHash: hex.EncodeToString(sum[:])}
	}
	req, _, err := s.Pipeline.SubmitStaff(r.Context(), st.Name, in, idem)
	if err != nil {
		s.formError(w, r, p, err)
		return
	}
	s.redirectWith(w, r, "/console/requests/"+req.ID, p.T("ticket.filed"))
}

// formError shows the form again with the problems by field; a failure
// that is not the form's goes to the error page.
func (s *server) formError(w http.ResponseWriter, r *http.Request, p *page, err error) {
	switch rights.ErrorCode(err) {
	case rights.EInvalid, rights.EForbidden, rights.EConflict:
	default:
		s.fail(w, r, err)
		return
	}
	p.Fields = fieldErrors(err)
	if len(p.Fields) > 0 {
		p.Error = p.T("error.fields")
		// Problems the form has no place for (a field of the intake the
		// form does not show) still reach the page.
		for name, reason := range p.Fields {
			if !ticketFields[fieldBase(name)] {
				p.Error += " " + name + ": " + reason
			}
		}
	} else {
		p.Error = rights.ErrorMessage(err)
	}
	s.render(w, r, statusOf(err), "ticket", p)
}

// ticketFields are the intake's field names the form shows errors next to.
var ticketFields = map[string]bool{"product": true, "type": true, "ticket_ref": true, "subject": true, "identities": true,
	"delivery_email": true, "verification": true, "requester_relation": true, "locale": true, "corrections": true,
	"purposes": true, "note": true, "text": true, "concerns": true, "receiver": true}

// fieldBase is a field path's first part: subject.identities.phone → subject.
func fieldBase(name string) string {
	base, _, _ := strings.Cut(name, ".")
	base, _, _ = strings.Cut(base, "[")
	return base
}

// parsePairs reads "key=value" lines.
func parsePairs(text, field string, p *rights.Problems) map[string]string {
	var m map[string]string
	for i, line := range lines(text) {
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			p.Add(field, "line %d must be type=value, e.g. user_id=demo-user-3", i+1)
			continue
		}
		if m == nil {
			m = map[string]string{}
		}
		m[k] = v
	}
	return m
}

func lines(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}
