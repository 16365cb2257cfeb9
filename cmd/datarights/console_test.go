package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/datarights/datarights/console"
)

// noScript turns JavaScript off in a browser context: the console must
// work without it.
func noScript(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := chromedp.Run(ctx, chromedp.ActionFunc(func(ctx context.Context) error {
		return emulation.SetScriptExecutionDisabled(true).Do(ctx)
	})); err != nil {
		t.Fatal(err)
	}
}

// consoleShot saves a console screenshot to docs/console/name when
// DATARIGHTS_SCREENSHOTS is set; otherwise it only checks one can be taken.
func consoleShot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var png []byte
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(1366, 900), chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if os.Getenv("DATARIGHTS_SCREENSHOTS") == "" {
		return
	}
	if err := os.WriteFile(filepath.Join("..", "..", "docs", "console", name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// signInWithToken signs a browser in through the token form.
func signInWithToken(t *testing.T, ctx context.Context, e *e2e, token string) {
	t.Helper()
	var who string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(e.base+"/console/lang/en?back=/console/queue"),
		chromedp.WaitVisible(`#token`),
		chromedp.SendKeys(`#token`, token),
		chromedp.Click(`#signin`),
		chromedp.WaitVisible(`#who`),
		chromedp.Text(`#who`, &who),
	); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	if !strings.Contains(who, "Signed in as") {
		t.Fatalf("after sign-in the header says %q", who)
	}
}

// requestIDOnPage reads the request id from a request page.
func requestIDOnPage(t *testing.T, ctx context.Context) string {
	t.Helper()
	var text string
	if err := chromedp.Run(ctx, chromedp.Text(`#request-id`, &text)); err != nil {
		t.Fatal(err)
	}
	id := regexp.MustCompile(`[0-9a-f-]{36}`).FindString(text)
	if id == "" {
		t.Fatalf("no request id on the page: %q", text)
	}
	return id
}

// TestConsoleAgentFilesATicketWithoutJavaScript: an agent signs in with
// their token in a browser with JavaScript off, files a ticket with a
// mistake and sees the error next to the field, checks the identities
// resolve to one person, files it, and watches it complete in the queue.
// The agent's role does not offer approvers' actions, and posting one
// anyway is refused.
func TestConsoleAgentFilesATicketWithoutJavaScript(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "")
	ctx := browserFor(t, 4*time.Minute)
	noScript(t, ctx)
	signInWithToken(t, ctx, e, staffToken("agent-webank"))

	// A mistake: an identity line without "=", and no delivery email.
	var fieldErr string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(e.base+"/console/tickets/new"),
		chromedp.WaitVisible(`#ticket`),
		chromedp.SetValue(`#right`, "copy"),
		chromedp.SetValue(`#identities`, "user_id demo-user-4"),
		chromedp.SetValue(`#method`, "face_check"),
		chromedp.SetValue(`#reference`, "FC-77"),
		chromedp.SetValue(`#ticket_ref`, "CS-2026-0042"),
		chromedp.Click(`#file`),
		chromedp.WaitVisible(`#err-identities`),
		chromedp.Text(`#err-identities`, &fieldErr),
	); err != nil {
		t.Fatalf("file with a mistake: %v", err)
	}
	if !strings.Contains(fieldErr, "type=value") {
		t.Errorf("the identities error says %q", fieldErr)
	}
	var kept string
	if err := chromedp.Run(ctx, chromedp.Value(`#ticket_ref`, &kept)); err != nil || kept != "CS-2026-0042" {
		t.Errorf("the form lost what was typed: ticket_ref %q (%v)", kept, err)
	}

	// The lookup says whether the identities find exactly one person,
	// without showing any of their data.
	var lookup string
	if err := chromedp.Run(ctx,
		chromedp.SetValue(`#identities`, "user_id=demo-user-4"),
		chromedp.Click(`#lookup-button`),
		chromedp.WaitVisible(`#lookup`),
		chromedp.Text(`#lookup`, &lookup),
	); err != nil {
		t.Fatalf("lookup: %v", err)
	}
	if !strings.Contains(lookup, "exactly one person") {
		t.Errorf("lookup says %q", lookup)
	}
	if strings.Contains(lookup, "demo-user-4@") {
		t.Errorf("the lookup shows the person's data: %q", lookup)
	}
	consoleShot(t, ctx, "ticket-form.png")

	var flash string
	if err := chromedp.Run(ctx,
		chromedp.SetValue(`#delivery_email`, "demo-user-4@example.com"),
		chromedp.Click(`#file`),
		chromedp.WaitVisible(`#flash`),
		chromedp.Text(`#flash`, &flash),
	); err != nil {
		t.Fatalf("file: %v", err)
	}
	id := requestIDOnPage(t, ctx)

	// The queue finds it by ticket reference (never by personal data) and
	// shows it completed once the workers are done.
	deadline := time.Now().Add(60 * time.Second)
	for {
		var status string
		if err := chromedp.Run(ctx,
			chromedp.Navigate(e.base+"/console/queue?all=1&q=CS-2026-0042"),
			chromedp.WaitVisible(`#queue`),
			chromedp.AttributeValue(`#queue tbody tr`, "data-status", &status, nil),
		); err != nil {
			t.Fatalf("queue: %v", err)
		}
		if status == "completed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("request %s is %q in the queue after 60s", id, status)
		}
		time.Sleep(300 * time.Millisecond) // polling the page, as a person would
	}
	var page string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(e.base+"/console/requests/"+id),
		chromedp.WaitVisible(`#timeline`),
		chromedp.Text(`body`, &page),
	); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Completed", "copy", "CS-2026-0042", "agent-webank"} {
		if !strings.Contains(page, want) {
			t.Errorf("the request page lacks %q", want)
		}
	}
	// An agent is offered no approver's action…
	for _, form := range []string{"#refuse", "#extend", "#approve"} {
		var nodes []*cdp.Node
		if err := chromedp.Run(ctx, chromedp.Nodes(form, &nodes, chromedp.AtLeast(0))); err != nil {
			t.Fatal(err)
		}
		if len(nodes) > 0 {
			t.Errorf("an agent is offered %s", form)
		}
	}

	// …and one posted anyway (the agent's own session and CSRF token)
	// is refused by the same permission as the API's.
	c := consoleClient(t, e, staffToken("agent-webank"))
	open := fileByAPI(t, e, "demo-user-5", "delete")
	code, body := c.post(t, "/console/requests/"+open+"/refuse", url.Values{"reason": {"excessive_or_repeated"}, "message": {"x"}})
	if code != http.StatusForbidden || !strings.Contains(body, "may not approve, refuse, extend or confirm") {
		t.Errorf("an agent's refuse = %d %s", code, snippet(body))
	}
	// Without the CSRF token even an allowed action is refused.
	code, body = c.postRaw(t, "/console/requests/"+open+"/pause", url.Values{"reason": {"waiting for documents"}})
	if code != http.StatusForbidden {
		t.Errorf("a pause without the CSRF token = %d %s", code, snippet(body))
	}
}

// consoleSession is a plain HTTP client signed in to the console.
type consoleSession struct {
	e    *e2e
	http *http.Client
	csrf string
}

func consoleClient(t *testing.T, e *e2e, token string) *consoleSession {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &consoleSession{e: e, http: &http.Client{Jar: jar}}
	resp, err := c.http.PostForm(e.base+"/console/signin", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(body)
	if m == nil && resp.Request.URL.Path == "/console/river/" {
		return c // an admin lands on the River UI, which has no forms of ours
	}
	if m == nil {
		t.Fatalf("signed in, but no CSRF token on %s (%d)", resp.Request.URL, resp.StatusCode)
	}
	c.csrf = string(m[1])
	return c
}

func (c *consoleSession) post(t *testing.T, path string, form url.Values) (int, string) {
	t.Helper()
	form.Set("csrf", c.csrf)
	return c.postRaw(t, path, form)
}

func (c *consoleSession) postRaw(t *testing.T, path string, form url.Values) (int, string) {
	t.Helper()
	resp, err := c.http.PostForm(c.e.base+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (c *consoleSession) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := c.http.Get(c.e.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func snippet(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

var ticketSeq atomic.Int64

// fileByAPI files a ticket through the staff API and returns its id.
func fileByAPI(t *testing.T, e *e2e, user, right string) string {
	t.Helper()
	ticket := copyTicket(user)
	ticket["type"] = right
	// A note of its own: the same ticket posted twice is taken for a retry.
	ticket["note"] = fmt.Sprintf("ticket %d", ticketSeq.Add(1))
	code, body := e.call("POST", "/api/v1/requests", testToken, ticket)
	if code != http.StatusCreated {
		t.Fatalf("file %s for %s = %d %v", right, user, code, body)
	}
	return body["id"].(string)
}

// TestConsoleApproverActsOnRequests: in a browser with JavaScript off, an
// approver signs in with a one-time link (the link works once), pauses and resumes a request, extends its
// deadline, confirms a manual store's task so that it completes, refuses
// another request, and reads the SLA dashboard.
func TestConsoleApproverActsOnRequests(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, paperArchive)
	link, err := console.NewSigninLink(context.Background(), e.db, "approver", "test", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ctx := browserFor(t, 4*time.Minute)
	noScript(t, ctx)
	var who string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(e.base+"/console/lang/en?back=/console/queue"),
		chromedp.Navigate(e.base+link),
		chromedp.WaitVisible(`#signin`),
		chromedp.Click(`#signin`),
		chromedp.WaitVisible(`#who`),
		chromedp.Text(`#who`, &who),
	); err != nil {
		t.Fatalf("sign in with a link: %v", err)
	}
	if !strings.Contains(who, "approver") {
		t.Errorf("signed in as %q", who)
	}
	// The link was used: a second use signs no one in.
	if code, _ := (&consoleSession{e: e, http: http.DefaultClient}).postRaw(t, link, url.Values{}); code != http.StatusGone {
		t.Errorf("a used sign-in link answers %d, want 410", code)
	}

	// A delete across the bank and the paper archive waits for staff.
	id := fileByAPI(t, e, "demo-user-12", "delete")
	e.waitForWaitingTask(id, "paper_archive", "")
	act := func(form string, fill ...chromedp.Action) string {
		t.Helper()
		var flash string
		actions := append([]chromedp.Action{chromedp.Navigate(e.base + "/console/requests/" + id), chromedp.WaitVisible(form)}, fill...)
		actions = append(actions, chromedp.Click(form+" button"), chromedp.WaitVisible(`#flash`), chromedp.Text(`#flash`, &flash))
		if err := chromedp.Run(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", form, err)
		}
		return flash
	}
	// A pause without a reason is refused with the field named.
	var reasonErr string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(e.base+"/console/requests/"+id),
		chromedp.WaitVisible(`#pause`),
		chromedp.Click(`#pause button`),
		chromedp.WaitVisible(`#pause .field-error`),
		chromedp.Text(`#pause .field-error`, &reasonErr),
	); err != nil {
		t.Fatalf("pause without a reason: %v", err)
	}
	if !strings.Contains(reasonErr, "required") {
		t.Errorf("pause without a reason says %q", reasonErr)
	}
	act("#pause", chromedp.SendKeys(`#pause input[name=reason]`, "waiting for the customer's ID copy"))
	var status string
	if err := chromedp.Run(ctx, chromedp.AttributeValue(`#status`, "data-status", &status, nil)); err != nil || status != "paused" {
		t.Fatalf("after pause the request is %q (%v)", status, err)
	}
	act("#resume")
	act("#extend", chromedp.SetValue(`#extend input[name=days]`, "10"), chromedp.SendKeys(`#extend input[name=reason]`, "the archive is off-site this month"))
	var clock string
	if err := chromedp.Run(ctx, chromedp.Text(`#clock`, &clock)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(clock, "Paused") || !strings.Contains(clock, "Extended by 10 days") {
		t.Errorf("the clock history says %q", clock)
	}
	consoleShot(t, ctx, "request.png")

	// Confirm the manual task: the request completes.
	act(".confirm-task", chromedp.SetValue(`.confirm-task input[name=records]`, "3"), chromedp.SendKeys(`.confirm-task input[name=note]`, "3 forms shredded, certificate SH-0912"))
	e.waitStatus(id, "completed", 30*time.Second)

	// Refuse a repeated request (the same copy asked for twice), with a
	// ground from the list.
	fileByAPI(t, e, "demo-user-13", "copy")
	other := fileByAPI(t, e, "demo-user-13", "copy")
	e.waitStatus(other, "awaiting_approval", 30*time.Second)
	var refusedStatus string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(e.base+"/console/requests/"+other),
		chromedp.WaitVisible(`#refuse`),
		chromedp.SetValue(`#refuse select[name=reason]`, "excessive_or_repeated"),
		chromedp.SendKeys(`#refuse input[name=message]`, "The same request was answered last week."),
		chromedp.Click(`#refuse button`),
		chromedp.WaitVisible(`#flash, #error`),
		chromedp.AttributeValue(`#status`, "data-status", &refusedStatus, nil),
	); err != nil {
		t.Fatalf("refuse: %v", err)
	}
	if refusedStatus != "refused" {
		var page string
		_ = chromedp.Run(ctx, chromedp.Text(`main`, &page))
		t.Errorf("after refusing, the request is %q: %s", refusedStatus, snippet(page))
	}

	// The queue, in both languages, and the dashboard.
	fileByAPI(t, e, "demo-user-14", "copy")
	var counts string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(e.base+"/console/queue?all=1"),
		chromedp.WaitVisible(`#queue`),
		chromedp.Text(`#counts`, &counts),
	); err != nil {
		t.Fatal(err)
	}
	consoleShot(t, ctx, "queue.png")
	var title string
	if err := chromedp.Run(ctx,
		chromedp.Click(`#lang`),
		chromedp.WaitVisible(`#queue`),
		chromedp.Text(`h1`, &title),
	); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(title, "请求") {
		t.Errorf("after switching to Chinese the title is %q", title)
	}
	consoleShot(t, ctx, "queue-zh.png")
	var dash string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(e.base+"/console/lang/en?back=/console/dashboard"),
		chromedp.WaitVisible(`svg.chart`),
		chromedp.Text(`main`, &dash),
	); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	for _, want := range []string{"webank", "Received and completed per week"} {
		if !strings.Contains(dash, want) {
			t.Errorf("the dashboard lacks %q", want)
		}
	}
	consoleShot(t, ctx, "dashboard.png")
}

// TestConsoleSessionsEnd: the session cookie's attributes; a session ends
// when idle too long, at its absolute end, when its token is revoked, and at
// sign-out; a wrong token signs no one in; a form posted from another
// site is refused even with the right CSRF token; every page has the CSP.
func TestConsoleSessionsEnd(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "")
	ctx := context.Background()

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.PostForm(e.base+"/console/signin", url.Values{"token": {staffToken("agent")}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "dr_console" {
			cookie = c
		}
	}
	if resp.StatusCode != http.StatusSeeOther || cookie == nil {
		t.Fatalf("sign-in = %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/console/" {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/console/", cookie)
	}
	if strings.Contains(cookie.Value, staffToken("agent")) {
		t.Error("the session cookie holds the staff token")
	}
	var stored int
	if err := e.db.QueryRow(ctx, `SELECT count(*) FROM console_sessions WHERE id_sha256 = sha256($1::bytea)`, []byte(cookie.Value)).Scan(&stored); err != nil || stored != 1 {
		t.Errorf("sessions stored by the cookie's hash: %d (%v)", stored, err)
	}

	signedIn := func(c *consoleSession) bool {
		t.Helper()
		resp, err := c.http.Get(e.base + "/console/queue")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("%s has CSP %q", resp.Request.URL.Path, csp)
		}
		return resp.Request.URL.Path == "/console/queue"
	}
	for name, end := range map[string]string{
		"idle":     `UPDATE console_sessions SET last_seen_at = last_seen_at - interval '31 minutes'`,
		"absolute": `UPDATE console_sessions SET expires_at = now() - interval '1 second'`,
	} {
		c := consoleClient(t, e, staffToken("auditor"))
		if !signedIn(c) {
			t.Fatalf("%s: not signed in", name)
		}
		if _, err := e.db.Exec(ctx, end+` WHERE staff_name = 'auditor'`); err != nil {
			t.Fatal(err)
		}
		if signedIn(c) {
			t.Errorf("a session past its %s end still works", name)
		}
	}

	agent := consoleClient(t, e, staffToken("agent"))
	// From another site, even with the session's CSRF token: refused.
	req, _ := http.NewRequest("POST", e.base+"/console/signout", strings.NewReader(url.Values{"csrf": {agent.csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://evil.example")
	if resp, err := agent.http.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-site post = %v (%v), want 403", resp.StatusCode, err)
	}
	if !signedIn(agent) {
		t.Fatal("the cross-site post signed the agent out")
	}
	if code, _ := agent.post(t, "/console/signout", url.Values{}); code != http.StatusOK || signedIn(agent) {
		t.Errorf("after sign-out (%d) the session still works", code)
	}

	approver := consoleClient(t, e, staffToken("approver-webank"))
	if code, body := e.call("DELETE", "/api/v1/admin/tokens/approver-webank", staffToken("admin"), nil); code != http.StatusOK {
		t.Fatalf("revoke = %d %v", code, body)
	}
	if signedIn(approver) {
		t.Error("a session outlives the revocation of its staff token")
	}

	resp, err = http.PostForm(e.base+"/console/signin", url.Values{"token": {"not-a-token"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a wrong token = %d, want 401", resp.StatusCode)
	}
	// The River UI is the admin's only.
	if code, _ := consoleClient(t, e, staffToken("approver")).get(t, "/console/river/"); code != http.StatusForbidden {
		t.Errorf("River UI for an approver = %d, want 403", code)
	}
	code, body := consoleClient(t, e, staffToken("admin")).get(t, "/console/river/")
	if code != http.StatusOK || !strings.Contains(body, "<script") {
		t.Errorf("River UI for the admin = %d %s", code, snippet(body))
	}
}
