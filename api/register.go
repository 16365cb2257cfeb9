package api

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/datarights/datarights/jobs"
	"github.com/datarights/datarights/rights"
)

// handleRegister streams the register of requests received in a period,
// for a regulator or an internal audit: GET /api/v1/register?from=YYYY-MM-DD
// &to=YYYY-MM-DD[&product=…][&format=csv|json] (csv by default). One row per
// request, no personal data (see docs/register.md), of the staff member's
// products only.
func (s *server) handleRegister(w http.ResponseWriter, r *http.Request) {
	s.writeRegister(w, r, staffFrom(r.Context()))
}

// RegisterWriter is the register export for a staff member authenticated
// some other way (the console's session): the same rows, scope and errors.
func RegisterWriter(deps Deps) func(w http.ResponseWriter, r *http.Request, st rights.Staff) {
	s := &server{Deps: deps}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	return s.writeRegister
}

func (s *server) writeRegister(w http.ResponseWriter, r *http.Request, st rights.Staff) {
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		format = jobs.RegisterCSV
	}
	products := st.ProductScope()
	if product := q.Get("product"); product != "" {
		if err := st.CheckProduct(product); err != nil {
			s.error(w, r, err)
			return
		}
		products = []string{product}
	}
	if format != jobs.RegisterCSV && format != jobs.RegisterJSON {
		s.error(w, r, &rights.Error{Code: rights.EInvalid, Message: "unknown format",
			Fields: []rights.FieldProblem{{Field: "format", Reason: "must be csv or json"}}})
		return
	}
	period, err := s.Pipeline.RegisterPeriod(q.Get("from"), q.Get("to"), products)
	if err != nil {
		s.error(w, r, err)
		return
	}
	name := "register-" + period.From + "-" + period.To + "." + format
	h := w.Header()
	if format == jobs.RegisterCSV {
		h.Set("Content-Type", "text/csv; charset=utf-8")
	} else {
		h.Set("Content-Type", "application/json; charset=utf-8")
	}
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Register-Time-Zone", period.TimeZone)
	out := &countingWriter{w: w}
	if err := s.Pipeline.WriteRegister(r.Context(), out, format, period); err != nil {
		if out.n == 0 {
			h.Del("Content-Disposition")
			s.error(w, r, err)
			return
		}
		// Half a register must not pass for a whole one: cut the
		// connection instead of ending the body cleanly.
		s.Logger.ErrorContext(r.Context(), "register export broken off", "bytes", out.n,
			"err", strings.TrimSpace(err.Error()))
		panic(http.ErrAbortHandler)
	}
}

type countingWriter struct {
	w http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// handleDashboard is the SLA dashboard's figures for the staff member's
// products (counts only; see jobs.Dashboard).
func (s *server) handleDashboard(w http.ResponseWriter, r *http.Request) {
	st := staffFrom(r.Context())
	products := st.ProductScope()
	if product := r.URL.Query().Get("product"); product != "" {
		if err := st.CheckProduct(product); err != nil {
			s.error(w, r, err)
			return
		}
		products = []string{product}
	}
	d, err := s.Pipeline.Dashboard(r.Context(), products, s.Pipeline.Now())
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.json(w, http.StatusOK, d)
}
