package api

import (
	"net/http"

	"github.com/datarights/datarights/rights"
)

func (s *server) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	if s.Metrics != nil {
		mux.Handle("GET /metrics", s.Metrics)
	}
	mux.HandleFunc("/", s.handleNotFound)
	if s.OpsOnly {
		return
	}

	if s.Console != nil {
		mux.Handle("/console/", s.Console)
	}
	if s.Center != nil {
		// The privacy center: its pages set their own policy (a
		// stylesheet of ours, no scripts).
		mux.Handle("GET /{$}", s.Center)
		mux.Handle("/privacy/", s.Center)
		mux.Handle("/status/{id}", s.Center) // emailed links: a redirect into the center
	}
	for _, rt := range s.staffRoutes() {
		mux.HandleFunc(rt.pattern, s.staff(rt.perm, rt.handler))
	}

	mux.HandleFunc("GET /api/v1/sla/due", s.handleSLADue)
	s.openDSRRoutes(mux)

	mux.HandleFunc("POST /api/v1/self-service/requests", s.handleSelfServiceCreate)
	mux.HandleFunc("POST /api/v1/self-service/requests/{id}/verify", s.handleSelfServiceVerify)
	mux.HandleFunc("GET /api/v1/self-service/requests/{id}", s.handleSelfServiceStatus)             // Authorization: Bearer <access key>
	mux.HandleFunc("POST /api/v1/self-service/requests/{id}/password", s.handleSelfServicePassword) // shown once
	mux.HandleFunc("POST /api/v1/self-service/requests/{id}/contact/confirm", s.handleSelfServiceConfirmContact)
	mux.HandleFunc("GET /downloads/{token}", s.handleDownload)
	mux.HandleFunc("POST /api/v1/callbacks/tasks/{task_id}", s.handleTaskCallback)                          // signed by the store, no token
	mux.HandleFunc("POST /api/v1/callbacks/recipients/{request_id}/{recipient}", s.handleRecipientCallback) // signed by the recipient
	mux.HandleFunc("GET /recipients/ack/{token}", s.handleAckPage)                                          // an emailed recipient's link
	mux.HandleFunc("POST /recipients/ack/{token}", s.handleAckSubmit)
}

type staffRoute struct {
	pattern string
	perm    rights.Permission
	handler http.HandlerFunc
}

// staffRoutes is every route staff use and the permission each needs: the
// one table roles are enforced from (see staff). Routes on one request
// ({id}) are also limited to the staff member's products.
func (s *server) staffRoutes() []staffRoute {
	return []staffRoute{
		{"POST /api/v1/requests", rights.PermFile, s.handleCreateRequest},
		{"GET /api/v1/requests", rights.PermRead, s.handleListRequests},
		{"GET /api/v1/requests/{id}", rights.PermRead, s.handleGetRequest},
		{"POST /api/v1/requests/{id}/pause", rights.PermOperate, s.handlePause},
		{"POST /api/v1/requests/{id}/resume", rights.PermOperate, s.handleResume},
		{"POST /api/v1/requests/{id}/extend", rights.PermDecide, s.handleExtend},
		{"POST /api/v1/requests/{id}/refuse", rights.PermDecide, s.handleRefuse},
		{"POST /api/v1/requests/{id}/approve", rights.PermDecide, s.handleApprove},
		{"POST /api/v1/requests/{id}/answer", rights.PermDecide, s.handleAnswer},
		{"POST /api/v1/requests/{id}/tasks/{task}/retry", rights.PermOperate, s.handleRetryTask},
		{"POST /api/v1/requests/{id}/tasks/{task}/confirm", rights.PermDecide, s.handleConfirmTask},
		{"POST /api/v1/requests/{id}/recipients/{recipient}/acknowledge", rights.PermDecide, s.handleAcknowledgeNotice},
		{"GET /api/v1/requests/{id}/export", rights.PermRead, s.handleGetExport},
		{"POST /api/v1/requests/{id}/export/password", rights.PermRevealPassword, s.handleRevealPassword},
		{"POST /api/v1/requests/{id}/contact/confirm", rights.PermFile, s.handleConfirmContact},
		{"POST /api/v1/requests/{id}/assign", rights.PermOperate, s.handleAssign},
		{"POST /api/v1/requests/{id}/notes", rights.PermOperate, s.handleAddNote},
		{"POST /api/v1/lookup", rights.PermFile, s.handleLookup},
		{"POST /api/v1/consents", rights.PermFile, s.handleRecordConsent},
		{"POST /api/v1/consents/lookup", rights.PermRead, s.handleConsentLookup},
		{"GET /api/v1/staff/me", rights.PermNone, s.handleWhoAmI},
		{"GET /api/v1/audit", rights.PermAuditExport, s.handleAuditExport},
		{"GET /api/v1/register", rights.PermAuditExport, s.handleRegister},
		{"GET /api/v1/dashboard", rights.PermReport, s.handleDashboard},
		{"GET /api/v1/admin/tokens", rights.PermAdmin, s.handleListTokens},
		{"POST /api/v1/admin/tokens", rights.PermAdmin, s.handleCreateToken},
		{"DELETE /api/v1/admin/tokens/{name}", rights.PermAdmin, s.handleRevokeToken},
		{"GET /api/v1/admin/config", rights.PermAdmin, s.handleConfigView},
	}
}

// Route is a staff route and the permission it needs.
type Route struct {
	Pattern    string
	Permission rights.Permission
}

// StaffRoutes lists the staff routes and their permissions, for tests and
// documentation.
func StaffRoutes() []Route {
	var routes []Route
	for _, rt := range (&server{}).staffRoutes() {
		routes = append(routes, Route{rt.pattern, rt.perm})
	}
	return routes
}

// MatchRoute returns the pattern a listener built from deps routes method
// and path to, without calling any handler: "/" is the catch-all that
// answers 404. Only which parts of deps are set matters (OpsOnly, Metrics,
// Console, Center), so it needs no database. The Kubernetes manifests'
// test checks every probe and scrape path with it, against the routes as
// registered here rather than a list kept beside them.
func MatchRoute(deps Deps, method, path string) string {
	mux := http.NewServeMux()
	(&server{Deps: deps}).routes(mux)
	r, err := http.NewRequest(method, path, nil)
	if err != nil {
		return ""
	}
	_, pattern := mux.Handler(r)
	return pattern
}
