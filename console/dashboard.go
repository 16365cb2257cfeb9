package console

import (
	"html/template"
	"net/http"
	"time"

	"github.com/datarights/datarights/charts"
	"github.com/datarights/datarights/jobs"
	"github.com/datarights/datarights/rights"
)

type dashboardData struct {
	D         *jobs.Dashboard
	ByBand    template.HTML
	Weekly    template.HTML
	From, To  string
	CanExport bool
}

// handleDashboard is the SLA dashboard: counts only, for the staff
// member's products, charts drawn on the server.
func (s *server) handleDashboard(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "dash.title", "dashboard")
	st := staffOf(r)
	now := s.Pipeline.Now()
	d, err := s.Pipeline.Dashboard(r.Context(), st.ProductScope(), now)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var series []charts.Series
	for _, b := range jobs.OpenBands {
		series = append(series, charts.Series{Name: p.T("band." + string(b)), Class: "band-" + string(b)})
	}
	byBand := charts.Chart{Title: p.T("dash.by_band"), Desc: p.T("dash.by_band"), ID: "by-band", Series: series}
	for _, prod := range d.Open {
		row := charts.Row{Label: prod.Product}
		for _, b := range jobs.OpenBands {
			row.Values = append(row.Values, float64(prod.Of(b)))
		}
		byBand.Rows = append(byBand.Rows, row)
	}
	weekly := charts.Chart{Title: p.T("dash.weekly"), Desc: p.T("dash.weekly"), ID: "weekly",
		Series: []charts.Series{{Name: p.T("dash.received"), Class: "series-received"}, {Name: p.T("dash.completed"), Class: "series-completed"}}}
	for _, wk := range d.Weeks {
		weekly.Rows = append(weekly.Rows, charts.Row{Label: wk.Week, Values: []float64{float64(wk.Received), float64(wk.Completed)}})
	}
	local := now.In(cst)
	p.Data = dashboardData{D: d, ByBand: charts.Bars(byBand), Weekly: charts.Columns(weekly),
		From:      time.Date(local.Year(), local.Month(), 1, 0, 0, 0, 0, cst).Format("2006-01-02"),
		To:        local.Format("2006-01-02"),
		CanExport: st.Can(rights.PermAuditExport)}
	s.render(w, r, http.StatusOK, "dashboard", p)
}

// handleRegister is the API's register export, authorised by the session
// (not a bearer token): the same rows, the same scope.
func (s *server) handleRegister(w http.ResponseWriter, r *http.Request) {
	if s.Register == nil {
		s.fail(w, r, rights.Errorf(rights.ENotImplemented, "the register export is not available"))
		return
	}
	s.Register(w, r, staffOf(r))
}
