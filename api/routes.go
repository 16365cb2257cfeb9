package api

import (
	"net/http"

	"github.com/datarights/datarights/rights"
)

func (s *server) routes(mux *http.ServeMux) {
	for _, rt := range s.allRoutes() {
		if rt.handler == nil || (s.OpsOnly && rt.kind != RouteOps && rt.kind != RouteFallback) {
			continue // not served by this process (no metrics, console or center; a worker)
		}
		mux.Handle(rt.pattern, rt.handler)
	}
}

// RouteKind says what a route serves, and so whether the OpenAPI
// description (openapi.yaml) must describe it.
type RouteKind string

const (
	// RouteOps are the probes, metrics and the description itself: also
	// served by a worker (OpsOnly).
	RouteOps RouteKind = "ops"
	// RouteAPI are the JSON API and the links emailed to people and third
	// parties: all described in openapi.yaml.
	RouteAPI RouteKind = "api"
	// RouteStaff are the staff API's routes, each with its permission:
	// described in openapi.yaml with x-permission.
	RouteStaff RouteKind = "staff"
	// RoutePage are the HTML pages of the console and the privacy center,
	// and the catch-all 404: forms for a browser, not an API, left out of
	// openapi.yaml.
	RoutePage RouteKind = "page"
	// RouteOpenDSR is the OpenDSR partner API (docs/opendsr.md, with its
	// own bearer tokens, signed answers and the specification's error
	// object): described in openapi.yaml with partnerToken.
	RouteOpenDSR RouteKind = "opendsr"
	// RouteFallback is the JSON 404 for every path no other route has,
	// served by every process. OpenAPI cannot describe a catch-all; each
	// operation's 404 is the same answer.
	RouteFallback RouteKind = "fallback"
)

// Described reports whether openapi.yaml describes the routes of kind k:
// TestOpenAPIDescribesEveryRoute holds each of them to it. Only the pages
// (and the catch-all, which OpenAPI cannot describe) are left out.
func (k RouteKind) Described() bool {
	switch k {
	case RouteOps, RouteAPI, RouteStaff, RouteOpenDSR:
		return true
	}
	return false
}

type route struct {
	pattern string
	kind    RouteKind
	perm    rights.Permission // RouteStaff only
	handler http.Handler      // nil: not served by this server
}

// allRoutes is every route the server registers: the one table that
// routes serves and Routes lists, so that the OpenAPI description's test
// (openapi_test.go) sees exactly what is served. A new route goes here,
// and into openapi.yaml unless it is a page.
func (s *server) allRoutes() []route {
	f := func(h http.HandlerFunc) http.Handler { return h }
	orNil := func(h http.Handler) http.Handler {
		if h == nil {
			return nil // an untyped nil, so the check in routes sees it
		}
		return h
	}
	routes := []route{
		{"GET /healthz", RouteOps, "", f(s.handleHealthz)},
		{"GET /readyz", RouteOps, "", f(s.handleReadyz)},
		{"GET /metrics", RouteOps, "", orNil(s.Metrics)},
		{"/", RouteFallback, "", f(s.handleNotFound)},
		{"GET /api/openapi.json", RouteAPI, "", f(handleOpenAPI)},

		{"/console/", RoutePage, "", orNil(s.Console)},
		// The privacy center: its pages set their own policy (a
		// stylesheet of ours, no scripts).
		{"GET /{$}", RoutePage, "", orNil(s.Center)},
		{"/privacy/", RoutePage, "", orNil(s.Center)},
		{"/status/{id}", RoutePage, "", orNil(s.Center)}, // emailed links: a redirect into the center
	}
	for _, rt := range s.staffRoutes() {
		routes = append(routes, route{rt.pattern, RouteStaff, rt.perm, s.staff(rt.perm, rt.handler)})
	}
	routes = append(routes, s.openDSRRoutes()...)
	return append(routes, []route{
		{"GET /api/v1/sla/due", RouteAPI, "", f(s.handleSLADue)},

		{"POST /api/v1/self-service/requests", RouteAPI, "", f(s.handleSelfServiceCreate)},
		{"POST /api/v1/self-service/requests/{id}/verify", RouteAPI, "", f(s.handleSelfServiceVerify)},
		{"GET /api/v1/self-service/requests/{id}", RouteAPI, "", f(s.handleSelfServiceStatus)},             // Authorization: Bearer <access key>
		{"POST /api/v1/self-service/requests/{id}/password", RouteAPI, "", f(s.handleSelfServicePassword)}, // shown once
		{"POST /api/v1/self-service/requests/{id}/contact/confirm", RouteAPI, "", f(s.handleSelfServiceConfirmContact)},
		{"GET /downloads/{token}", RouteAPI, "", f(s.handleDownload)},
		{"POST /api/v1/callbacks/tasks/{task_id}", RouteAPI, "", f(s.handleTaskCallback)},                          // signed by the store, no token
		{"POST /api/v1/callbacks/recipients/{request_id}/{recipient}", RouteAPI, "", f(s.handleRecipientCallback)}, // signed by the recipient
		{"GET /recipients/ack/{token}", RouteAPI, "", f(s.handleAckPage)},                                          // an emailed recipient's link
		{"POST /recipients/ack/{token}", RouteAPI, "", f(s.handleAckSubmit)},
	}...)
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

// Route is a route the server registers: its pattern, what it serves and,
// for a staff route, the permission it needs.
type Route struct {
	Pattern    string
	Kind       RouteKind
	Permission rights.Permission
}

// Routes lists every route a server with everything configured (metrics,
// console, privacy center) registers, for tests and documentation.
func Routes() []Route {
	s := &server{Deps: Deps{Metrics: http.NotFoundHandler(), Console: http.NotFoundHandler(), Center: http.NotFoundHandler()}}
	var routes []Route
	for _, rt := range s.allRoutes() {
		routes = append(routes, Route{Pattern: rt.pattern, Kind: rt.kind, Permission: rt.perm})
	}
	return routes
}

// StaffRoutes lists the staff routes and their permissions, for tests and
// documentation.
func StaffRoutes() []Route {
	var routes []Route
	for _, rt := range (&server{}).staffRoutes() {
		routes = append(routes, Route{Pattern: rt.pattern, Kind: RouteStaff, Permission: rt.perm})
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
