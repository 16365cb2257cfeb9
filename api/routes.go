package api

import "net/http"

func (s *server) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)

	mux.HandleFunc("POST /api/v1/requests", s.requireStaff(s.handleCreateRequest))
	mux.HandleFunc("GET /api/v1/requests", s.requireStaff(s.handleListRequests))
	mux.HandleFunc("GET /api/v1/requests/{id}", s.requireStaff(s.handleGetRequest))

	mux.HandleFunc("POST /api/v1/self-service/requests", s.handleSelfServiceCreate)
	mux.HandleFunc("POST /api/v1/self-service/requests/{id}/verify", s.handleSelfServiceVerify)

	mux.HandleFunc("/", s.handleNotFound)
}
