package api

import (
	"net/http"
	"testing"
)

// TestMatchRoute: the probes are on every listener, /metrics only where a
// metrics handler is given, and the API only on a listener that is not
// ops-only.
func TestMatchRoute(t *testing.T) {
	t.Parallel()
	metrics := http.NotFoundHandler()
	cases := []struct {
		name         string
		deps         Deps
		method, path string
		want         string
	}{
		{"healthz on the API", Deps{}, "GET", "/healthz", "GET /healthz"},
		{"readyz on ops only", Deps{OpsOnly: true}, "GET", "/readyz", "GET /readyz"},
		{"metrics where given", Deps{OpsOnly: true, Metrics: metrics}, "GET", "/metrics", "GET /metrics"},
		{"no metrics handler, no metrics route", Deps{OpsOnly: true}, "GET", "/metrics", "/"},
		{"the API on serve", Deps{}, "GET", "/api/v1/requests/x", "GET /api/v1/requests/{id}"},
		{"no API on a worker", Deps{OpsOnly: true}, "GET", "/api/v1/requests/x", "/"},
		{"a typo is the catch-all", Deps{}, "GET", "/healthcheck", "/"},
	}
	for _, tc := range cases {
		if got := MatchRoute(tc.deps, tc.method, tc.path); got != tc.want {
			t.Errorf("%s: MatchRoute(%s %s) = %q, want %q", tc.name, tc.method, tc.path, got, tc.want)
		}
	}
}
