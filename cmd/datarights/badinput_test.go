package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// TestBadInputIsRefusedAndWritesNothing sends every kind of bad input to
// every endpoint and checks for a 4xx that names the problem, and that no
// request, audit event or job was written.
func TestBadInputIsRefusedAndWritesNothing(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "")

	ticket := func(mutate func(m map[string]any)) map[string]any {
		m := copyTicket("demo-user-3")
		mutate(m)
		return m
	}
	huge := `{"product":"webank","note":"` + strings.Repeat("x", 70<<10) + `"}`
	const reqPath, ssPath = "/api/v1/requests", "/api/v1/self-service/requests"

	cases := []struct {
		name       string
		method     string
		path       string
		token      string
		body       any
		headers    []string
		wantStatus int
		wantText   string // in the message or a field
	}{
		{"no token", "POST", reqPath, "", copyTicket("demo-user-3"), nil, 401, "bearer token"},
		{"bad token", "POST", reqPath, "wrong-token", copyTicket("demo-user-3"), nil, 401, "not valid"},
		{"bad token on get", "GET", reqPath, "wrong-token", nil, nil, 401, "not valid"},
		{"malformed JSON", "POST", reqPath, testToken, `{"product": "webank",`, nil, 400, "malformed JSON"},
		{"not an object", "POST", reqPath, testToken, `[1,2]`, nil, 400, "wrong type"},
		{"empty body", "POST", reqPath, testToken, ``, nil, 400, "empty"},
		{"two objects", "POST", reqPath, testToken, `{} {}`, nil, 400, "exactly one"},
		{"unknown field", "POST", reqPath, testToken, ticket(func(m map[string]any) { m["colour"] = "red" }), nil, 400, "colour"},
		{"wrong field type", "POST", reqPath, testToken, ticket(func(m map[string]any) { m["product"] = 7 }), nil, 400, "product"},
		{"unknown product", "POST", reqPath, testToken, ticket(func(m map[string]any) { m["product"] = "weibo" }), nil, 400, "unknown product"},
		{"unknown type", "POST", reqPath, testToken, ticket(func(m map[string]any) { m["type"] = "sell" }), nil, 400, "unknown right"},
		{"missing identity", "POST", reqPath, testToken, ticket(func(m map[string]any) { m["subject"] = map[string]any{} }), nil, 400, "subject.identities"},
		{"unknown identity type", "POST", reqPath, testToken, ticket(func(m map[string]any) {
			m["subject"] = map[string]any{"identities": map[string]string{"passport": "E123"}}
		}), nil, 400, "passport"},
		{"empty identity", "POST", reqPath, testToken, ticket(func(m map[string]any) {
			m["subject"] = map[string]any{"identities": map[string]string{"user_id": " "}}
		}), nil, 400, "subject.identities.user_id"},
		{"bad delivery email", "POST", reqPath, testToken, ticket(func(m map[string]any) { m["delivery_email"] = "not-an-email" }), nil, 400, "delivery_email"},
		{"missing verification", "POST", reqPath, testToken, ticket(func(m map[string]any) { delete(m, "verification") }), nil, 400, "verification.method"},
		{"next of kin without evidence", "POST", reqPath, testToken, ticket(func(m map[string]any) {
			m["requester_relation"] = "next_of_kin"
			m["verification"] = map[string]any{"method": "id_document"}
		}), nil, 400, "verification.reference"},
		{"bad relation", "POST", reqPath, testToken, ticket(func(m map[string]any) { m["requester_relation"] = "friend" }), nil, 400, "requester_relation"},
		{"bad locale", "POST", reqPath, testToken, ticket(func(m map[string]any) { m["locale"] = "fr" }), nil, 400, "locale"},
		{"oversized body", "POST", reqPath, testToken, huge, nil, 413, "larger than"},
		{"wrong content type", "POST", reqPath, testToken, copyTicket("demo-user-3"), []string{"Content-Type", "text/plain"}, 400, "Content-Type"},
		{"withdrawal without purposes", "POST", reqPath, testToken, ticket(func(m map[string]any) { m["type"] = "withdraw_consent" }), nil, 400, "purposes"},
		{"unknown purpose", "POST", reqPath, testToken, ticket(func(m map[string]any) {
			m["type"], m["purposes"] = "withdraw_consent", []string{"telepathy"}
		}), nil, 400, "unknown purpose"},
		{"purposes on a copy", "POST", reqPath, testToken, ticket(func(m map[string]any) { m["purposes"] = []string{"location"} }), nil, 400, "only withdraw_consent"},
		{"bad list status", "GET", reqPath + "?status=done", testToken, nil, nil, 400, "status"},
		{"bad list limit", "GET", reqPath + "?limit=100000", testToken, nil, nil, 400, "limit"},
		{"bad cursor", "GET", reqPath + "?cursor=zzz", testToken, nil, nil, 400, "cursor"},
		{"unknown request id", "GET", reqPath + "/01a20857-8088-7b8a-b989-77ec1bfc9ec5", testToken, nil, nil, 404, "not found"},
		{"malformed request id", "GET", reqPath + "/not-a-uuid", testToken, nil, nil, 404, "not found"},
		{"self-service malformed", "POST", ssPath, "", `{"email":`, nil, 400, "malformed JSON"},
		{"self-service missing email", "POST", ssPath, "", map[string]any{"product": "webank", "type": "copy"}, nil, 400, "email"},
		{"self-service bad email", "POST", ssPath, "", map[string]any{"product": "webank", "type": "copy", "email": "x"}, nil, 400, "email"},
		{"self-service unknown product", "POST", ssPath, "", map[string]any{"product": "nope", "type": "copy", "email": "a@example.com"}, nil, 400, "product"},
		{"self-service unknown field", "POST", ssPath, "", map[string]any{"product": "webank", "type": "copy", "email": "a@example.com", "user_id": "demo-user-1"}, nil, 400, "user_id"},
		{"self-service oversized", "POST", ssPath, "", huge, nil, 413, "larger than"},
		{"verify malformed code", "POST", ssPath + "/01a20857-8088-7b8a-b989-77ec1bfc9ec5/verify", "", map[string]string{"code": "12ab"}, nil, 400, "code"},
		{"verify unknown request", "POST", ssPath + "/01a20857-8088-7b8a-b989-77ec1bfc9ec5/verify", "", map[string]string{"code": "12345678"}, nil, 404, "awaits verification"},
		{"unknown endpoint", "GET", "/api/v1/nothing", testToken, nil, nil, 404, "no such endpoint"},
	}
	for _, tc := range cases {
		code, body := e.call(tc.method, tc.path, tc.token, tc.body, tc.headers...)
		if code != tc.wantStatus {
			t.Errorf("%s: status %d, want %d (%v)", tc.name, code, tc.wantStatus, body)
			continue
		}
		if body == nil || body["error"] == nil {
			t.Errorf("%s: no error object in the answer: %v", tc.name, body)
			continue
		}
		errObj := body["error"].(map[string]any)
		text := errObj["message"].(string)
		for _, f := range asSlice(errObj["fields"]) {
			fm := f.(map[string]any)
			text += " | " + fm["field"].(string) + ": " + fm["reason"].(string)
		}
		if !strings.Contains(text, tc.wantText) {
			t.Errorf("%s: error %q does not mention %q", tc.name, text, tc.wantText)
		}
		if code == http.StatusUnauthorized && errObj["code"] != "unauthorized" {
			t.Errorf("%s: code %v", tc.name, errObj["code"])
		}
	}

	ctx := context.Background()
	for _, table := range []string{"requests", "audit_events", "tasks", "verification_codes", "river_job"} {
		var n int
		// Periodic sweeps and the audit anchor insert their own jobs
		// whenever they like: they are not writes of the bad input.
		query := "SELECT count(*) FROM " + table
		if table == "river_job" {
			query += " WHERE " + notPeriodic
		}
		if err := e.db.QueryRow(ctx, query).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s has %d rows after only bad input, want 0", table, n)
		}
	}
	if n := len(e.smtp.Messages()); n != 0 {
		t.Errorf("%d emails sent after only bad input", n)
	}
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}
