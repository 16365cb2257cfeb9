package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// handleWhoAmI tells a staff member who their token says they are, what
// they may do and on which products: for the console, and for checking a
// new token.
func (s *server) handleWhoAmI(w http.ResponseWriter, r *http.Request) {
	st := staffFrom(r.Context())
	var perms []rights.Permission
	for _, p := range rights.Permissions {
		if st.Can(p) {
			perms = append(perms, p)
		}
	}
	products := st.Products
	if products == nil {
		products = []string{}
	}
	s.json(w, http.StatusOK, map[string]any{"name": st.Name, "role": st.Role, "products": products, "permissions": perms})
}

// maxAuditPage is the most audit events one page of the export holds.
const maxAuditPage = 10000

// handleAuditExport pages through the audit trail of the auditor's
// products in the order it was written: ?after=<id of the last event
// seen>&limit=n. The answer's next_after is where the next page starts;
// an empty page means the export is complete so far.
func (s *server) handleAuditExport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var problems rights.Problems
	after, limit := int64(0), 1000
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			problems.Add("after", "must be the id of an audit event (a number ≥ 0)")
		}
		after = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxAuditPage {
			problems.Add("limit", "must be a number from 1 to %d", maxAuditPage)
		}
		limit = n
	}
	if err := problems.Err(); err != nil {
		s.error(w, r, err)
		return
	}
	events, err := storage.AuditPage(r.Context(), s.DB.Pool, after, limit, staffFrom(r.Context()).ProductScope())
	if err != nil {
		s.error(w, r, err)
		return
	}
	next := after
	if len(events) > 0 {
		next = events[len(events)-1].ID
	}
	if events == nil {
		events = []storage.ProductAuditEvent{}
	}
	s.json(w, http.StatusOK, map[string]any{"events": events, "next_after": next})
}

func (s *server) handleListTokens(w http.ResponseWriter, r *http.Request) {
	tokens, err := storage.ListStaffTokens(r.Context(), s.DB.Pool)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if tokens == nil {
		tokens = []storage.StaffToken{}
	}
	s.json(w, http.StatusOK, map[string]any{"tokens": tokens})
}

type tokenBody struct {
	Name     string   `json:"name"`
	Role     string   `json:"role"`
	Products []string `json:"products"`
}

// handleCreateToken issues a token for a new staff member. The token is in
// this answer only; the service keeps its hash.
func (s *server) handleCreateToken(w http.ResponseWriter, r *http.Request) {
	var body tokenBody
	if _, err := s.decode(w, r, &body); err != nil {
		s.error(w, r, err)
		return
	}
	st := rights.Staff{Name: body.Name, Role: rights.Role(body.Role), Products: body.Products}
	if err := rights.ValidateStaff(st); err != nil {
		s.error(w, r, err)
		return
	}
	if err := s.knownProducts(st.Products); err != nil {
		s.error(w, r, err)
		return
	}
	token, err := config.NewStaffToken()
	if err != nil {
		s.error(w, r, err)
		return
	}
	if err := storage.CreateStaffToken(r.Context(), s.DB.Pool, st, config.HashToken(token), time.Now(), staffFrom(r.Context()).Name); err != nil {
		s.error(w, r, err)
		return
	}
	s.json(w, http.StatusCreated, map[string]any{"name": st.Name, "role": st.Role, "products": body.Products, "token": token})
}

func (s *server) knownProducts(products []string) error {
	var p rights.Problems
	for i, name := range products {
		if _, ok := s.Pipeline.Settings().Product(name); !ok {
			p.Add("products["+strconv.Itoa(i)+"]", "unknown product %q", name)
		}
	}
	return p.Err()
}

func (s *server) handleRevokeToken(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := storage.RevokeStaffToken(r.Context(), s.DB.Pool, name, time.Now()); err != nil {
		s.error(w, r, err)
		return
	}
	s.Logger.InfoContext(r.Context(), "staff token revoked", "name", name, "by", staffFrom(r.Context()).Name)
	s.json(w, http.StatusOK, map[string]any{"name": name, "revoked": true})
}

// handleConfigView shows the configuration an admin may see: everything
// that shapes behaviour, nothing that opens a door (no connection strings,
// SMTP credentials, webhook secrets or keys; key ids only).
func (s *server) handleConfigView(w http.ResponseWriter, r *http.Request) {
	s.json(w, http.StatusOK, s.Pipeline.Settings().Redacted())
}
