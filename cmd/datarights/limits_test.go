package main

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSelfServiceLimitsAnswerTheSameForEveryone checks the mailbox and
// network limits one by one, and that a limited address gets the same answer
// whether or not anyone has it.
func TestSelfServiceLimitsAnswerTheSameForEveryone(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, false, "self_service:\n  limits:\n    code_emails_per_hour: 2\n    code_emails_per_day: 3\n    requests_per_ip_per_hour: 3\n")
	trustLoopbackProxy(t, e)
	e.start()
	a := attacker{base: e.base, client: e.client}
	ask := func(email, xff string) (int, http.Header, map[string]any) {
		t.Helper()
		code, h, body, err := a.post("/api/v1/self-service/requests", xff, map[string]any{"product": "webank", "type": "access", "email": email})
		if err != nil {
			t.Fatal(err)
		}
		return code, h, body
	}

	// Per mailbox: two codes an hour, whatever the spelling or network.
	limitedAnswer := func(email string, spellings ...string) map[string]any {
		t.Helper()
		for i, s := range spellings[:2] {
			if code, _, body := ask(s, randomIP()); code != http.StatusAccepted {
				t.Fatalf("%s request %d = %d %v", email, i+1, code, body)
			}
		}
		code, h, body := ask(spellings[2], randomIP())
		if code != http.StatusTooManyRequests {
			t.Fatalf("third request for %s = %d %v, want 429", email, code, body)
		}
		if s := h.Get("Retry-After"); s == "" || s == "0" {
			t.Errorf("Retry-After = %q", s)
		}
		errObj := body["error"].(map[string]any)
		delete(errObj, "request_id")
		return errObj
	}
	known := limitedAnswer("known", "demo-user-6@example.com", "DEMO-USER-6@example.com", "demo-user-6+again@example.com")
	unknown := limitedAnswer("unknown", "nobody-here@example.com", "nobody-here+1@example.com", "Nobody-Here@example.com")
	if known["code"] != "too_many" || known["message"] != unknown["message"] || known["code"] != unknown["code"] {
		t.Errorf("limited answers differ: known %v, unknown %v", known, unknown)
	}

	// Per network: three requests an hour. The client is the rightmost
	// address the trusted proxy did not add; what it wrote itself to the
	// left proves nothing.
	client := "203.0.113.9"
	for i := range 3 {
		if code, _, body := ask("someone-"+string(rune('a'+i))+"@example.com", client); code != http.StatusAccepted {
			t.Fatalf("network request %d = %d %v", i+1, code, body)
		}
	}
	if code, _, _ := ask("someone-d@example.com", client); code != http.StatusTooManyRequests {
		t.Fatalf("fourth request from the network = %d, want 429", code)
	}
	if code, _, _ := ask("someone-e@example.com", "198.51.100.77, "+client); code != http.StatusTooManyRequests {
		t.Errorf("a forged hop to the left escaped the limit: %d", code)
	}
	if code, _, _ := ask("someone-f@example.com", "198.51.100.77"); code != http.StatusAccepted {
		t.Errorf("another network was limited: %d", code)
	}

	// Nothing was stored for the refused requests: one code email per
	// accepted request.
	var n int
	if err := e.db.QueryRow(t.Context(), `SELECT count(*) FROM requests`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 8 {
		t.Errorf("%d requests stored, want the 8 accepted", n)
	}
	if msgs := e.smtp.WaitForMessages(t, 8, 30*time.Second); len(msgs) != 8 {
		t.Errorf("%d emails, want 8", len(msgs))
	}
	for _, m := range e.smtp.Messages() {
		if strings.Contains(m.Subject, "0") && codeRE.MatchString(m.Subject) {
			t.Errorf("code in the subject: %q", m.Subject)
		}
	}
}
