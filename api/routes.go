package api

import "net/http"

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

	mux.HandleFunc("POST /api/v1/requests", s.requireStaff(s.handleCreateRequest))
	mux.HandleFunc("GET /api/v1/requests", s.requireStaff(s.handleListRequests))
	mux.HandleFunc("GET /api/v1/requests/{id}", s.requireStaff(s.handleGetRequest))
	mux.HandleFunc("POST /api/v1/requests/{id}/pause", s.requireStaff(s.handlePause))
	mux.HandleFunc("POST /api/v1/requests/{id}/resume", s.requireStaff(s.handleResume))
	mux.HandleFunc("POST /api/v1/requests/{id}/extend", s.requireStaff(s.handleExtend))
	mux.HandleFunc("POST /api/v1/requests/{id}/refuse", s.requireStaff(s.handleRefuse))
	mux.HandleFunc("POST /api/v1/requests/{id}/approve", s.requireStaff(s.handleApprove))
	mux.HandleFunc("POST /api/v1/requests/{id}/tasks/{task}/retry", s.requireStaff(s.handleRetryTask))
	mux.HandleFunc("POST /api/v1/requests/{id}/tasks/{task}/confirm", s.requireStaff(s.handleConfirmTask))
	mux.HandleFunc("POST /api/v1/requests/{id}/recipients/{recipient}/acknowledge", s.requireStaff(s.handleAcknowledgeNotice))
	mux.HandleFunc("GET /api/v1/requests/{id}/export", s.requireStaff(s.handleGetExport))
	mux.HandleFunc("POST /api/v1/requests/{id}/export/password", s.requireStaff(s.handleRevealPassword))

	mux.HandleFunc("POST /api/v1/consents", s.requireStaff(s.handleRecordConsent))
	mux.HandleFunc("POST /api/v1/consents/lookup", s.requireStaff(s.handleConsentLookup))

	mux.HandleFunc("GET /api/v1/sla/due", s.handleSLADue)

	mux.HandleFunc("POST /api/v1/self-service/requests", s.handleSelfServiceCreate)
	mux.HandleFunc("POST /api/v1/self-service/requests/{id}/verify", s.handleSelfServiceVerify)
	mux.HandleFunc("GET /api/v1/self-service/requests/{id}", s.handleSelfServiceStatus)             // Authorization: Bearer <access key>
	mux.HandleFunc("POST /api/v1/self-service/requests/{id}/password", s.handleSelfServicePassword) // shown once
	mux.HandleFunc("GET /status/{id}", s.handleStatusPage)                                          // the same, for people
	mux.HandleFunc("POST /status/{id}", s.handleStatusPageSubmit)
	mux.HandleFunc("GET /downloads/{token}", s.handleDownload)
	mux.HandleFunc("POST /api/v1/callbacks/tasks/{task_id}", s.handleTaskCallback)                          // signed by the store, no token
	mux.HandleFunc("POST /api/v1/callbacks/recipients/{request_id}/{recipient}", s.handleRecipientCallback) // signed by the recipient
	mux.HandleFunc("GET /recipients/ack/{token}", s.handleAckPage)                                          // an emailed recipient's link
	mux.HandleFunc("POST /recipients/ack/{token}", s.handleAckSubmit)
}
