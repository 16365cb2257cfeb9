package apitest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/datarights/datarights/api"
)

// TestDescriptionIsValidOpenAPI31: the served description is an OpenAPI
// 3.1 document that the 3.1 schema accepts, and the validator builds
// from it (every $ref resolves, every schema compiles).
func TestDescriptionIsValidOpenAPI31(t *testing.T) {
	t.Parallel()
	doc, err := Document()
	if err != nil {
		t.Fatal(err)
	}
	if v := doc.GetVersion(); v != "3.1.0" {
		t.Fatalf("version %q, want 3.1.0", v)
	}
	v, err := Validator()
	if err != nil {
		t.Fatal(err)
	}
	if ok, errs := v.ValidateDocument(); !ok {
		t.Fatalf("not a valid OpenAPI 3.1 document:\n%s", strings.Join(describe(errs), "\n"))
	}
}

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// TestTransportCatchesMismatches: the transport passes exchanges that
// match and fails the test on each kind of mismatch, against a fake
// server that answers what each case says.
func TestTransportCatchesMismatches(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status := 200
		_, _ = fmt.Sscan(r.Header.Get("X-Status"), &status)
		w.Header().Set("Content-Type", r.Header.Get("X-Type"))
		w.WriteHeader(status)
		_, _ = w.Write([]byte(r.Header.Get("X-Body")))
	}))
	t.Cleanup(srv.Close)
	const errBody = `{"error": {"code": "invalid", "message": "bad", "fields": [{"field": "code", "reason": "must be digits"}]}}`
	for _, tc := range []struct {
		name, method, path, token, body string
		status                          int
		typ, answer                     string
		want                            string // "" for no failure; else a part of it
	}{
		{"a matching answer", "GET", "/healthz", "", "", 200, "application/json", `{"status": "ok"}`, ""},
		{"an error as described", "POST", "/api/v1/self-service/requests/x/verify", "", `{"code": "1"}`, 400, "application/json; charset=utf-8", errBody, ""},
		{"a field the schema lacks", "GET", "/healthz", "", "", 200, "application/json", `{"status": "ok", "extra": 1}`, "the answer"},
		{"a wrong type", "GET", "/readyz", "", "", 200, "application/json", `{"status": "ready", "checks": {"database": 1, "migrations": "ok"}}`, "the answer"},
		{"an undescribed status", "GET", "/healthz", "", "", 418, "application/json", `{"status": "ok"}`, "the answer"},
		{"an undescribed content type", "GET", "/healthz", "", "", 200, "text/plain", `ok`, "the answer"},
		{"an error body of another shape", "POST", "/api/v1/self-service/requests/x/verify", "", `{"code": "1"}`, 400, "application/json", `{"message": "bad"}`, "the answer"},
		{"an unknown route answered", "GET", "/api/v1/nothing", "", "", 200, "application/json", `{}`, "not in the description"},
		{"an unknown route refused by the catch-all", "GET", "/api/v1/nothing", "", "", 404, "application/json", errBody, ""},
		{"a route this process does not serve", "GET", "/metrics", "", "", 404, "application/json", `{"error": {"code": "not_found", "message": "no such endpoint: GET /metrics"}}`, ""},
		{"a described route's undescribed 404", "GET", "/metrics", "", "", 404, "application/json", errBody, "the answer"},
		{"an unknown method answered", "DELETE", "/healthz", "", "", 200, "application/json", `{}`, "not in the description"},
		{"an invalid request refused", "POST", "/api/v1/self-service/requests/x/verify", "", `{"code": 1}`, 400, "application/json", errBody, ""},
		{"an invalid request accepted", "POST", "/api/v1/self-service/requests/x/verify", "", `{"cod": "1"}`, 200, "application/json",
			`{"id": "x", "status": "verified", "due_at": null, "access_key": "k", "status_url": "u"}`, "calls the request invalid"},
		{"no staff token, accepted", "GET", "/api/v1/staff/me", "", "", 200, "application/json",
			`{"name": "a", "role": "agent", "products": [], "permissions": ["read"]}`, "calls the request invalid"},
		{"a page of the privacy center", "GET", "/privacy/", "", "", 200, "text/html", `<p>`, ""},
		{"a partner answer unsigned", "GET", "/opendsr/v1/discovery", "", "", 200, "application/json",
			`{"api_version": "1.0", "supported_identities": [], "supported_subject_request_types": [], "processor_certificate": "http://x/opendsr/v1/cert.pem"}`,
			"Required header 'X-OpenDSR-Signature'"},
		{"a partner error in the specification's shape", "POST", "/opendsr/v1/requests", "", "", 401, "application/json",
			`{"error": {"code": 401, "message": "a partner bearer token is required"}}`, ""},
		{"a partner error in the staff API's shape", "POST", "/opendsr/v1/requests", "", "", 401, "application/json",
			`{"error": {"code": "unauthorized", "message": "no"}}`, "the answer"},
		{"the processor certificate", "GET", "/opendsr/v1/cert.pem", "", "", 200, "application/x-pem-file", "-----BEGIN CERTIFICATE-----", ""},
		{"the processor certificate as text", "GET", "/opendsr/v1/cert.pem", "", "", 200, "text/plain", "-----BEGIN CERTIFICATE-----", "the answer"},
		{"a staff token, accepted", "GET", "/api/v1/staff/me", "t", "", 200, "application/json",
			`{"name": "a", "role": "agent", "products": [], "permissions": ["read"]}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{TB: t}
			c := &http.Client{Transport: &Transport{T: rec}}
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			req.Header.Set("X-Status", fmt.Sprint(tc.status))
			req.Header.Set("X-Type", tc.typ)
			req.Header.Set("X-Body", tc.answer)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := strings.Join(rec.errors, "\n")
			switch {
			case tc.want == "" && got != "":
				t.Errorf("failed a matching exchange:\n%s", got)
			case tc.want != "" && !strings.Contains(got, tc.want):
				t.Errorf("want a failure saying %q, got %q", tc.want, got)
			}
		})
	}
}

// TestDescriptionDescribesItself: GET /api/openapi.json, from the real
// server through the transport: its 200 and its 304 are described.
func TestDescriptionDescribesItself(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(api.NewServer(api.Deps{}))
	t.Cleanup(srv.Close)
	c := Client(t)
	resp, err := c.Get(srv.URL + "/api/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/api/openapi.json", nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	again, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	again.Body.Close()
	if resp.StatusCode != http.StatusOK || again.StatusCode != http.StatusNotModified {
		t.Errorf("GET /api/openapi.json: %d, then with If-None-Match %d", resp.StatusCode, again.StatusCode)
	}
}
