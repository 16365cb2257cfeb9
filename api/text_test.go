package api

import (
	"testing"
)

func TestPathField(t *testing.T) {
	t.Parallel()
	cases := []struct{ pattern, path, want string }{
		{"GET /api/v1/requests/{id}", "/api/v1/requests/\x00", "id"},
		{"POST /api/v1/requests/{id}/tasks/{task}/retry", "/api/v1/requests/x/tasks/\xff/retry", "task"},
		{"POST /api/v1/requests/{id}/tasks/{task}/retry", "/api/v1/requests/x/tasks/t/re\x00try", "path"},
		{"/", "/no/such\x00", "path"},
		{"", "/\xff", "path"},
		{"GET /files/{rest...}", "/files/\x00", "rest"},
	}
	for _, tc := range cases {
		if got := pathField(tc.pattern, tc.path); got != tc.want {
			t.Errorf("pathField(%q, %q) = %q, want %q", tc.pattern, tc.path, got, tc.want)
		}
	}
}
