package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// answer is an HTTP answer as received, whatever its type.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// fields returns "field: reason" of each problem in a JSON error answer.
func (a answer) fields() []string {
	var e struct {
		Error struct {
			Fields []struct{ Field, Reason string } `json:"fields"`
		} `json:"error"`
	}
	_ = json.Unmarshal(a.body, &e)
	var out []string
	for _, f := range e.Error.Fields {
		out = append(out, f.Field+": "+f.Reason)
	}
	return out
}

func (a answer) isHTML() bool {
	mt, _, _ := mime.ParseMediaType(a.header.Get("Content-Type"))
	return mt == "text/html"
}

// do makes a request to url (e.base or e.opsBase, then the path) with a body
// sent as is, and returns the answer.
func (e *e2e) do(method, url, token, contentType, body string, headers ...string) answer {
	e.t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		e.t.Fatalf("%s %q: %v", method, url, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %q: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %q: reading the answer: %v", method, url, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: raw}
}

const someID = "01a20857-8088-7b8a-b989-77ec1bfc9ec5"

// TestHardeningBadText sends NUL bytes and invalid UTF-8 in every place a
// request carries text (path segments, query names and values, JSON keys
// and values at any depth, form names and values, the Idempotency-Key), with
// and without a staff token: each is a 400 that names the field, never a
// 500 (which is what Postgres made of them), and nothing is written.
func TestHardeningBadText(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "")
	const (
		jsonCT = "application/json"
		formCT = "application/x-www-form-urlencoded"
	)
	ticket := func(replace, with string) string {
		raw, _ := json.Marshal(copyTicket("demo-user-3"))
		out := strings.Replace(string(raw), replace, with, 1)
		if out == string(raw) {
			t.Fatalf("the ticket has no %s", replace)
		}
		return out
	}
	cases := []struct {
		name               string
		method, path       string
		contentType, body  string
		headers            []string
		field              string // named in the answer
		withoutTokenStatus int    // 0: 400 too; a staff body is not read without a token
	}{
		// Path segments: refused before routing, so before any token check.
		{name: "NUL in a request id", method: "GET", path: "/api/v1/requests/%00", field: "id"},
		{name: "invalid UTF-8 in a request id", method: "GET", path: "/api/v1/requests/%FF%FE", field: "id"},
		{name: "NUL in a task id", method: "POST", path: "/api/v1/requests/" + someID + "/tasks/%00/retry", contentType: jsonCT, body: "{}", field: "task"},
		{name: "NUL in a self-service id", method: "GET", path: "/api/v1/self-service/requests/x%00", field: "id"},
		{name: "invalid UTF-8 in a verify id", method: "POST", path: "/api/v1/self-service/requests/%C3/verify", contentType: jsonCT, body: `{"code":"12345678"}`, field: "id"},
		{name: "NUL in a status page id", method: "GET", path: "/status/%00", field: "id"},
		{name: "invalid UTF-8 in a download token", method: "GET", path: "/downloads/%FF", field: "token"},
		{name: "NUL in a task callback", method: "POST", path: "/api/v1/callbacks/tasks/%00", contentType: jsonCT, body: "{}", field: "task_id"},
		{name: "NUL in a recipient callback", method: "POST", path: "/api/v1/callbacks/recipients/" + someID + "/bureau%00", contentType: jsonCT, body: "{}", field: "recipient"},
		{name: "NUL in an acknowledgement token", method: "GET", path: "/recipients/ack/%00", field: "token"},
		{name: "NUL in an unknown path", method: "GET", path: "/no/such%00thing", field: "path"},
		// Query strings.
		{name: "NUL in a query value", method: "GET", path: "/api/v1/requests?status=%00", field: "status"},
		{name: "invalid UTF-8 in a query value", method: "GET", path: "/api/v1/requests?product=web%FFank", field: "product"},
		{name: "invalid UTF-8 in a query name", method: "GET", path: "/api/v1/requests?%FF=1", field: `query "\xff"`},
		{name: "NUL in a public query", method: "GET", path: "/api/v1/sla/due?policy=%00", field: "policy"},
		{name: "NUL in a page query", method: "GET", path: "/status/" + someID + "?lang=%00", field: "lang"},
		// JSON bodies: staff.
		{name: "NUL in a value", method: "POST", path: "/api/v1/requests", contentType: jsonCT,
			body: ticket(`"locale":"en"`, `"locale":"en","note":"call back \u0000"`), field: "note", withoutTokenStatus: 401},
		{name: "NUL in a nested value", method: "POST", path: "/api/v1/requests", contentType: jsonCT,
			body: ticket(`"demo-user-3"}`, `"demo-user-3\u0000"}`), field: "subject.identities.user_id", withoutTokenStatus: 401},
		{name: "NUL in a nested key", method: "POST", path: "/api/v1/requests", contentType: jsonCT,
			body: ticket(`{"user_id"`, `{"user\u0000id"`), field: `subject.identities."user\x00id"`, withoutTokenStatus: 401},
		{name: "raw NUL in a value", method: "POST", path: "/api/v1/requests", contentType: jsonCT,
			body: ticket(`"FC-1"`, "\"FC-\x001\""), field: "verification.reference", withoutTokenStatus: 401},
		{name: "invalid UTF-8 in a value", method: "POST", path: "/api/v1/requests", contentType: jsonCT,
			body: ticket(`"demo-user-3@example.com"`, "\"demo-user-3\xff@example.com\""), field: "delivery_email", withoutTokenStatus: 401},
		{name: "invalid UTF-8 in a key", method: "POST", path: "/api/v1/requests", contentType: jsonCT,
			body: ticket(`"locale"`, "\"loc\xe4le\""), field: "\"loc\ufffdle\"", withoutTokenStatus: 401},
		{name: "NUL in an array", method: "POST", path: "/api/v1/requests", contentType: jsonCT,
			body: ticket(`"type":"copy"`, `"type":"withdraw_consent","purposes":["location","ads\u0000"]`), field: "purposes[1]", withoutTokenStatus: 401},
		{name: "NUL in a correction", method: "POST", path: "/api/v1/requests", contentType: jsonCT,
			body: ticket(`"type":"copy"`, `"type":"correct","corrections":{"city":"杭\u0000州"}`), field: "corrections.city", withoutTokenStatus: 401},
		{name: "NUL in a pause reason", method: "POST", path: "/api/v1/requests/" + someID + "/pause", contentType: jsonCT,
			body: `{"reason":"\u0000"}`, field: "reason", withoutTokenStatus: 401},
		{name: "invalid UTF-8 in a consent lookup", method: "POST", path: "/api/v1/consents/lookup", contentType: jsonCT,
			body: "{\"product\":\"webank\",\"subject\":{\"identities\":{\"email\":\"\xc0@example.com\"}}}", field: "subject.identities.email", withoutTokenStatus: 401},
		{name: "invalid UTF-8 in the Idempotency-Key", method: "POST", path: "/api/v1/requests", contentType: jsonCT,
			body: ticket(`"FC-1"`, `"FC-2"`), headers: []string{"Idempotency-Key", "ticket-\xff"}, field: "Idempotency-Key", withoutTokenStatus: 401},
		// JSON bodies: no token needed.
		{name: "NUL in a self-service email", method: "POST", path: "/api/v1/self-service/requests", contentType: jsonCT,
			body: `{"product":"webank","type":"copy","email":"a\u0000@example.com"}`, field: "email"},
		{name: "raw NUL in a self-service product", method: "POST", path: "/api/v1/self-service/requests", contentType: jsonCT,
			body: "{\"product\":\"web\x00ank\",\"type\":\"copy\",\"email\":\"a@example.com\"}", field: "product"},
		{name: "invalid UTF-8 in a code", method: "POST", path: "/api/v1/self-service/requests/" + someID + "/verify", contentType: jsonCT,
			body: "{\"code\":\"1234567\xff\"}", field: "code"},
		// Forms.
		{name: "NUL in the access key form", method: "POST", path: "/privacy/requests/" + someID + "/key", contentType: formCT, body: "access_key=k%00", field: "access_key"},
		{name: "invalid UTF-8 in the access key form", method: "POST", path: "/privacy/requests/" + someID + "/key", contentType: formCT, body: "access_key=%FFk&reveal=1", field: "access_key"},
		{name: "NUL in a privacy center form", method: "POST", path: "/privacy/webank/copy", contentType: formCT, body: "email=a%00%40example.com", field: "email"},
		{name: "NUL in the acknowledgement form", method: "POST", path: "/recipients/ack/some-token", contentType: formCT, body: "note=done%00", field: "note"},
		{name: "invalid UTF-8 in a form name", method: "POST", path: "/recipients/ack/some-token", contentType: formCT, body: "n%F0te=done", field: `"n\xf0te"`},
	}
	for _, tc := range cases {
		for _, token := range []string{testToken, ""} {
			a := e.do(tc.method, e.base+tc.path, token, tc.contentType, tc.body, tc.headers...)
			want := http.StatusBadRequest
			if token == "" && tc.withoutTokenStatus != 0 {
				want = tc.withoutTokenStatus
			}
			who := "with a token"
			if token == "" {
				who = "without a token"
			}
			if a.status != want {
				t.Errorf("%s, %s: status %d, want %d: %s", tc.name, who, a.status, want, a.body)
				continue
			}
			if want != http.StatusBadRequest {
				continue
			}
			if a.isHTML() {
				// The status page shows the problem in the page.
				if !strings.Contains(string(a.body), tc.field+": ") {
					t.Errorf("%s, %s: the page does not name %q:\n%s", tc.name, who, tc.field, a.body)
				}
				continue
			}
			got := a.fields()
			if len(got) == 0 || !strings.HasPrefix(got[0], tc.field+": ") ||
				(!strings.Contains(got[0], "NUL byte") && !strings.Contains(got[0], "valid UTF-8")) {
				t.Errorf("%s, %s: fields %q, want %q with the reason", tc.name, who, got, tc.field)
			}
		}
	}

	// None of it reached the database or the mailbox.
	ctx := context.Background()
	for _, table := range []string{"requests", "audit_events", "tasks", "verification_codes", "consent_events", "throttle_events", "river_job"} {
		query := "SELECT count(*) FROM " + table
		if table == "river_job" {
			query += " WHERE " + notPeriodic // the periodic jobs are not the input's
		}
		var n int
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

var styleElementRE = regexp.MustCompile(`(?s)<style>(.*?)</style>`)

// TestHardeningHeaders: every answer — JSON, errors of every kind, pages,
// metrics — carries the security headers; pages allow exactly their own
// styles (by hash) and no script, and a real browser still applies them.
// Without http.ops_addr, /metrics is on the one address.
func TestHardeningHeaders(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "")
	cases := []struct {
		name, method, path, token, contentType, body string
		status                                       int
		html                                         bool
	}{
		{"health", "GET", "/healthz", "", "", "", 200, false},
		{"metrics", "GET", "/metrics", "", "", "", 200, false},
		{"list", "GET", "/api/v1/requests", testToken, "", "", 200, false},
		{"no token", "GET", "/api/v1/requests", "", "", "", 401, false},
		{"malformed JSON", "POST", "/api/v1/requests", testToken, "application/json", "{", 400, false},
		{"bad text", "GET", "/api/v1/requests/%00", "", "", "", 400, false},
		{"unknown endpoint", "GET", "/api/v1/nothing", "", "", "", 404, false},
		{"unknown request", "GET", "/api/v1/requests/" + someID, testToken, "", "", 404, false},
		{"status page (the privacy center's, through the old link)", "GET", "/status/" + someID, "", "", "", 200, true},
		{"status page, no form token", "POST", "/privacy/requests/" + someID + "/key", "", "application/x-www-form-urlencoded", "access_key=nope", 403, true},
		{"privacy center", "GET", "/", "", "", "", 200, true},
		{"expired download", "GET", "/downloads/no-such-token", "", "", "", 404, true},
		{"acknowledgement page", "GET", "/recipients/ack/no-such-token", "", "", "", 404, true},
	}
	for _, tc := range cases {
		a := e.do(tc.method, e.base+tc.path, tc.token, tc.contentType, tc.body)
		if a.status != tc.status || a.isHTML() != tc.html {
			t.Errorf("%s: status %d, HTML %v; want %d, %v: %.300s", tc.name, a.status, a.isHTML(), tc.status, tc.html, a.body)
			continue
		}
		checkSecurityHeaders(t, tc.name, a)
	}
	if a := e.do("GET", e.base+"/metrics", "", "", ""); !strings.Contains(string(a.body), "datarights_") {
		t.Errorf("/metrics on http.addr without http.ops_addr: %d %.200s", a.status, a.body)
	}

	// Chromium applies the page's styles under its policy: main is
	// max-width:46rem in the privacy center's stylesheet.
	ctx := browser(t)
	var maxWidth string
	if err := chromedp.Run(ctx, chromedp.Navigate(e.base+"/status/"+someID),
		chromedp.Evaluate(`getComputedStyle(document.querySelector("main")).maxWidth`, &maxWidth)); err != nil {
		t.Fatal(err)
	}
	if maxWidth != "736px" {
		t.Errorf("the status page's style is not applied in Chromium (main max-width %q, want 736px): its policy blocks it", maxWidth)
	}
}

// checkSecurityHeaders checks the headers every answer carries, and for a
// page that its policy allows its <style> elements by hash and nothing else.
func checkSecurityHeaders(t *testing.T, name string, a answer) {
	t.Helper()
	for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
		if got := a.header.Get(h); got != want {
			t.Errorf("%s: %s = %q, want %q", name, h, got, want)
		}
	}
	csp := a.header.Get("Content-Security-Policy")
	if len(a.header.Values("Content-Security-Policy")) != 1 {
		t.Errorf("%s: %d Content-Security-Policy headers, want 1", name, len(a.header.Values("Content-Security-Policy")))
	}
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("%s: Content-Security-Policy %q lacks %s", name, csp, want)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "script-src", "*"} {
		if strings.Contains(csp, bad) {
			t.Errorf("%s: Content-Security-Policy %q allows %s", name, csp, bad)
		}
	}
	if !a.isHTML() {
		return
	}
	styles := styleElementRE.FindAllSubmatch(a.body, -1)
	if len(styles) == 0 && !strings.Contains(csp, "style-src 'self'") {
		t.Errorf("%s: the page has no <style> and its policy allows no stylesheet of ours", name)
	}
	for _, m := range styles {
		sum := sha256.Sum256(m[1])
		if hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, "style-src "+hash) {
			t.Errorf("%s: Content-Security-Policy %q does not allow the page's style %s", name, csp, hash)
		}
	}
	if !strings.Contains(csp, "form-action 'self'") {
		t.Errorf("%s: Content-Security-Policy %q does not let the page's form post back", name, csp)
	}
}

// TestHardeningOpsAddr: with http.ops_addr, /metrics is served there (with
// the probes) and no longer on http.addr; the ops address serves no API.
func TestHardeningOpsAddr(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, false, "")
	e.editConfig(t, "http:\n", "http:\n  ops_addr: 127.0.0.1:0\n")
	e.start()
	if e.opsBase == "" || e.opsBase == e.base {
		t.Fatalf("ops address %q (API on %q): OpsReady was not called with its own address", e.opsBase, e.base)
	}
	cases := []struct {
		name, base, path, token string
		status                  int
		body                    string // in the answer
	}{
		{"metrics on the ops address", e.opsBase, "/metrics", "", 200, "datarights_"},
		{"health on the ops address", e.opsBase, "/healthz", "", 200, "ok"},
		{"ready on the ops address", e.opsBase, "/readyz", "", 200, "ready"},
		{"no API on the ops address", e.opsBase, "/api/v1/requests", testToken, 404, "no such endpoint"},
		{"no metrics on the public address", e.base, "/metrics", "", 404, "no such endpoint"},
		{"API on the public address", e.base, "/api/v1/requests", testToken, 200, "requests"},
		{"health on the public address", e.base, "/healthz", "", 200, "ok"},
	}
	for _, tc := range cases {
		a := e.do("GET", tc.base+tc.path, tc.token, "", "")
		if a.status != tc.status || !strings.Contains(string(a.body), tc.body) {
			t.Errorf("%s: %d %.200s, want %d with %q", tc.name, a.status, a.body, tc.status, tc.body)
			continue
		}
		checkSecurityHeaders(t, tc.name, a)
	}
}
