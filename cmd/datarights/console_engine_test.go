package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/datarights/datarights/demo"
	"github.com/datarights/datarights/exporters/smtptest"
	"github.com/datarights/datarights/jobs"
	"github.com/datarights/datarights/rights"
)

// The engine under the staff console: pause where staff work, the
// requester told about delays, assignment, notes, queue filters, the
// identity lookup, and checked verification methods and ticket numbers.

func fieldNamed(body map[string]any, field string) string {
	errBody, _ := body["error"].(map[string]any)
	for _, f := range asSlice(errBody["fields"]) {
		if fm := f.(map[string]any); fm["field"] == field {
			return fm["reason"].(string)
		}
	}
	return ""
}

func messagesEndingIn(msgs []smtptest.Message, suffix string) []smtptest.Message {
	var out []smtptest.Message
	for _, m := range msgs {
		if strings.HasSuffix(m.MessageID, suffix) {
			out = append(out, m)
		}
	}
	return out
}

// TestPauseWhileTasksRunThenResumeCompletes: a delete whose bank task has
// run and whose paper archive waits for staff is paused; the archive is
// confirmed during the pause, which records the task and leaves the
// request paused; the resume does what the last task would have done, and
// the request completes. The requester is told of the pause and of an
// extension, each once, with staff's reason.
func TestPauseWhileTasksRunThenResumeCompletes(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, paperArchive)
	ticket := copyTicket("demo-user-15")
	ticket["type"] = "delete"
	code, body := e.call("POST", "/api/v1/requests", testToken, ticket)
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	paperTask := e.waitForWaitingTask(id, "paper_archive", "task.succeeded")

	reason := "Waiting for the customer's signed form for the paper archive"
	code, body = e.call("POST", "/api/v1/requests/"+id+"/pause", staffToken("agent"), map[string]any{"reason": reason})
	if code != http.StatusOK || body["status"] != "paused" {
		t.Fatalf("pause in progress = %d %v", code, body)
	}
	code, body = e.call("POST", "/api/v1/requests/"+id+"/extend", testToken, map[string]any{"days": 5, "reason": "The archive is in another city"})
	if code != http.StatusOK {
		t.Fatalf("extend = %d %v", code, body)
	}
	code, body = e.call("POST", "/api/v1/requests/"+id+"/tasks/"+paperTask+"/confirm", testToken,
		map[string]any{"found": true, "records": 2, "note": "2 forms shredded"})
	if code != http.StatusOK || body["status"] != "paused" {
		t.Fatalf("confirm while paused = %d %v, want 200 and still paused", code, body)
	}
	for _, task := range asSlice(body["tasks"]) {
		if tm := task.(map[string]any); tm["status"] != "succeeded" {
			t.Errorf("task %v is %v after the confirmation", tm["store"], tm["status"])
		}
	}
	if code, _ := e.call("POST", "/api/v1/requests/"+id+"/refuse", staffToken("approver-2"),
		map[string]any{"reason": "excessive_or_repeated", "message": "x"}); code != http.StatusConflict {
		t.Errorf("refuse a paused request whose work started = %d, want 409", code)
	}
	code, body = e.call("POST", "/api/v1/requests/"+id+"/resume", staffToken("agent"), map[string]any{})
	if code != http.StatusOK {
		t.Fatalf("resume = %d %v", code, body)
	}
	done := e.waitStatus(id, "completed", 60*time.Second)
	for _, want := range []string{"clock.paused", "deadline.extended", "task.confirmed", "clock.resumed", "request.delivering", "request.completed"} {
		if !hasAction(done, want) {
			t.Errorf("audit lacks %s: %v", want, auditActions(done))
		}
	}

	waitFor(t, 30*time.Second, "the pause and extension notices", func() bool {
		msgs := e.smtp.Messages()
		return len(messagesEndingIn(msgs, ".clock_paused.1@datarights")) > 0 && len(messagesEndingIn(msgs, ".deadline_extended.1@datarights")) > 0
	})
	msgs := e.smtp.Messages()
	paused := messagesEndingIn(msgs, ".clock_paused.1@datarights")
	extended := messagesEndingIn(msgs, ".deadline_extended.1@datarights")
	if len(paused) != 1 || len(extended) != 1 {
		t.Fatalf("%d pause and %d extension notices, want 1 each", len(paused), len(extended))
	}
	if paused[0].MessageID != id+".clock_paused.1@datarights" || paused[0].To[0] != demo.Email(15) {
		t.Errorf("pause notice %s to %v", paused[0].MessageID, paused[0].To)
	}
	if !strings.Contains(paused[0].Text, reason) || !strings.Contains(extended[0].Text, "The archive is in another city") {
		t.Errorf("the notices do not carry staff's reasons:\n%s\n%s", paused[0].Text, extended[0].Text)
	}
	lastDay := done["last_day"].(string)
	if !strings.Contains(extended[0].Text, "5 working days") {
		t.Errorf("extension notice does not say the days:\n%s", extended[0].Text)
	}
	if lastDay == "" {
		t.Error("no last day on the completed request")
	}
	var sent int
	if err := e.db.QueryRow(context.Background(), `SELECT count(*) FROM audit_events WHERE request_id = $1 AND action = 'notice.sent'
		AND detail->>'notice' IN ('clock_paused.1', 'deadline_extended.1')`, id).Scan(&sent); err != nil || sent != 2 {
		t.Errorf("notice.sent events for the clock = %d, %v; want 2", sent, err)
	}
}

// TestAssignNotesAndQueueFilters: a ticket filed with a ticket number is
// found by it (and by its id), assigned to staff who may work on it and
// to nobody else, listed as mine and as unassigned, carries notes whose
// text never reaches the audit trail, and the queue refuses values it
// does not know.
func TestAssignNotesAndQueueFilters(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, paperArchive) // the copies wait for the archive: they stay open
	ticket := copyTicket("demo-user-16")
	ticket["ticket_ref"] = "CS-2026/0042#a"
	code, body := e.call("POST", "/api/v1/requests", testToken, ticket)
	if code != http.StatusCreated || body["ticket_ref"] != "CS-2026/0042#a" || body["assignee"] != "" {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	other := copyTicket("demo-user-17")
	if code, body := e.call("POST", "/api/v1/requests", testToken, other); code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}

	bad := copyTicket("demo-user-16")
	bad["ticket_ref"] = "CS 42; drop"
	bad["verification"] = map[string]any{"method": "facecheck"}
	code, body = e.call("POST", "/api/v1/requests", testToken, bad)
	if code != http.StatusBadRequest || fieldNamed(body, "ticket_ref") == "" ||
		!strings.Contains(fieldNamed(body, "verification.method"), "face_check") {
		t.Errorf("bad ticket_ref and method = %d %v, want 400 naming both (and the known methods)", code, body)
	}

	assign := "/api/v1/requests/" + id + "/assign"
	for name, want := range map[string]string{
		"nobody": "no staff member", "admin": "role", "agent-wechat": "wechat",
	} {
		code, body := e.call("POST", assign, testToken, map[string]any{"assignee": name})
		if code != http.StatusBadRequest || !strings.Contains(fieldNamed(body, "assignee"), want) {
			t.Errorf("assign to %s = %d %v, want 400 on assignee saying %q", name, code, body, want)
		}
	}
	if code, _ := e.call("POST", assign, staffToken("auditor"), map[string]any{"assignee": "agent"}); code != http.StatusForbidden {
		t.Errorf("an auditor assigns = %d, want 403", code)
	}
	code, body = e.call("POST", assign, testToken, map[string]any{"assignee": "agent-webank"})
	if code != http.StatusOK || body["assignee"] != "agent-webank" {
		t.Fatalf("assign = %d %v", code, body)
	}

	list := func(token, query string) (int, map[string]any) {
		return e.call("GET", "/api/v1/requests?"+query, token, nil)
	}
	ids := func(body map[string]any) []string {
		var out []string
		for _, r := range asSlice(body["requests"]) {
			out = append(out, r.(map[string]any)["id"].(string))
		}
		return out
	}
	for query, want := range map[string]int{
		"assignee=me":                                1,
		"assignee=agent-webank&open=true":            1,
		"q=" + url.QueryEscape("CS-2026/0042#a"):     1,
		"q=" + id:                                    1,
		"q=CS-2026":                                  0,
		"assignee=none&channel=staff":                1,
		"channel=self_service":                       0,
		"open=true&product=webank&sort=due_at":       2,
		"assignee=approver&product=webank&type=copy": 0,
	} {
		code, body := list(staffToken("agent-webank"), query)
		if code != http.StatusOK || len(ids(body)) != want {
			t.Errorf("list ?%s = %d, %d requests; want %d", query, code, len(ids(body)), want)
		}
	}
	code, body = list(staffToken("agent-webank"), "open=true&counts=true")
	if code != http.StatusOK {
		t.Fatalf("counts = %d %v", code, body)
	}
	counts := body["counts"].(map[string]any)
	total := 0.0
	for _, n := range counts {
		total += n.(float64)
	}
	if total != 2 || counts["overdue"] == nil {
		t.Errorf("counts = %v, want every open band and 2 in all", counts)
	}
	for query, field := range map[string]string{
		"product=webnak": "product", "channel=phone": "channel", "open=yes": "open",
		"assignee=Bad%20Name": "assignee", "q=someone%40example.com": "q",
	} {
		if code, body := list(testToken, query); code != http.StatusBadRequest || fieldNamed(body, field) == "" {
			t.Errorf("list ?%s = %d %v, want 400 on %s", query, code, body, field)
		}
	}

	notes := "/api/v1/requests/" + id + "/notes"
	secret := "Caller said her mother's maiden name is Zhang"
	code, body = e.call("POST", notes, staffToken("agent-webank"), map[string]any{"body": secret})
	if code != http.StatusCreated || body["author"] != "agent-webank" || body["body"] != secret {
		t.Fatalf("add note = %d %v", code, body)
	}
	for _, bad := range []string{"", "  ", strings.Repeat("字", 4001), "bell\a"} {
		if code, _ := e.call("POST", notes, testToken, map[string]any{"body": bad}); code != http.StatusBadRequest {
			t.Errorf("note %.20q = %d, want 400", bad, code)
		}
	}
	if code, _ := e.call("POST", notes, staffToken("agent-wechat"), map[string]any{"body": "x"}); code != http.StatusNotFound {
		t.Errorf("note by another product's agent = %d, want 404", code)
	}
	_, view := e.call("GET", "/api/v1/requests/"+id, testToken, nil)
	if n := asSlice(view["notes"]); len(n) != 1 || n[0].(map[string]any)["body"] != secret {
		t.Errorf("notes on the request = %v", view["notes"])
	}
	raw, _ := json.Marshal(view["audit"])
	if strings.Contains(string(raw), "maiden") || !hasAction(view, "note.added") || !hasAction(view, "request.assigned") {
		t.Errorf("audit: %s", raw)
	}
	code, body = e.call("POST", assign, staffToken("agent-webank"), map[string]any{"assignee": ""})
	if code != http.StatusOK || body["assignee"] != "" {
		t.Errorf("unassign = %d %v", code, body)
	}
}

// TestLookupBeforeFiling: staff learn whether identities lead to one
// person, nobody or several, per store, without any of their data; the
// probe is recorded with the identity types only.
func TestLookupBeforeFiling(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "")
	lookup := func(token string, product string, ids map[string]string) (int, map[string]any) {
		return e.call("POST", "/api/v1/lookup", token, map[string]any{"product": product, "identities": ids})
	}
	for name, c := range map[string]struct {
		ids  map[string]string
		want string
	}{
		"key":                   {map[string]string{"user_id": demo.UserID(3)}, "one_person"},
		"email":                 {map[string]string{"email": demo.Email(3)}, "one_person"},
		"email and phone":       {map[string]string{"email": demo.Email(3), "phone": demo.Phone(3)}, "one_person"},
		"unknown email":         {map[string]string{"email": "nobody-here@example.com"}, "no_one"},
		"two people":            {map[string]string{"email": demo.Email(3), "phone": demo.Phone(4)}, "several_people"},
		"key and other's email": {map[string]string{"user_id": demo.UserID(3), "email": demo.Email(4)}, "several_people"},
	} {
		code, body := lookup(staffToken("agent-webank"), "webank", c.ids)
		if code != http.StatusOK || body["outcome"] != c.want {
			t.Errorf("%s: lookup = %d %v, want %s", name, code, body, c.want)
			continue
		}
		raw, _ := json.Marshal(body)
		for _, v := range c.ids {
			if strings.Contains(string(raw), v) {
				t.Errorf("%s: the answer shows %q: %s", name, v, raw)
			}
		}
		if !strings.Contains(string(raw), `"identity_types"`) || !strings.Contains(string(raw), `"demo_bank"`) {
			t.Errorf("%s: answer lacks stores or identity types: %s", name, raw)
		}
	}
	if code, body := lookup(testToken, "webnak", map[string]string{"user_id": "x"}); code != http.StatusBadRequest || fieldNamed(body, "product") == "" {
		t.Errorf("unknown product = %d %v", code, body)
	}
	if code, body := lookup(testToken, "webank", map[string]string{"passport": "x"}); code != http.StatusBadRequest || fieldNamed(body, "identities.passport") == "" {
		t.Errorf("unknown identity type = %d %v", code, body)
	}
	if code, _ := lookup(staffToken("agent-wechat"), "webank", map[string]string{"user_id": "x"}); code != http.StatusForbidden {
		t.Errorf("another product's agent = %d, want 403", code)
	}
	var n int
	var detail string
	if err := e.db.QueryRow(context.Background(), `SELECT count(*), max(detail::text) FROM staff_events
		WHERE action = 'identity.lookup' AND actor = 'staff:agent-webank' AND product = 'webank'`).Scan(&n, &detail); err != nil || n != 6 {
		t.Fatalf("recorded lookups = %d, %v; want 6", n, err)
	}
	rows, err := e.db.Query(context.Background(), `SELECT detail::text FROM staff_events`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(d, "@") || strings.Contains(d, "demo-user") || strings.Contains(d, "1380000") {
			t.Errorf("a staff event holds a value: %s", d)
		}
	}
}

// TestStaffCLIAssignNoteAndQueue: `requests assign`, `requests note`, and
// the list's queue flags.
func TestStaffCLIAssignNoteAndQueue(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, paperArchive) // the copy waits for the archive: it stays open
	id := e.fileJSON(testToken, "--product", "webank", "--type", "copy", "--identity", "user_id=demo-user-18",
		"--delivery-email", "demo-user-18@example.com", "--verification", "face_check", "--ticket-ref", "CS-77")
	if out := e.mustCLI(testToken, "assign", id, "agent-webank"); !strings.Contains(out, "assigned to agent-webank") {
		t.Errorf("assign: %s", out)
	}
	if out := e.mustCLI(staffToken("agent-webank"), "note", id, "customer asked to be called after 6pm"); !strings.Contains(out, "note") {
		t.Errorf("note: %s", out)
	}
	list := e.mustCLI(staffToken("agent-webank"), "list", "--assignee", "me", "--open", "--q", "CS-77", "--channel", "staff")
	if lines := strings.Split(strings.TrimSpace(list), "\n"); len(lines) != 2 || !strings.Contains(lines[0], "ASSIGNEE") ||
		!strings.Contains(lines[1], id) || !strings.Contains(lines[1], "agent-webank") {
		t.Errorf("list:\n%s", list)
	}
	if show := e.mustCLI(testToken, "show", id); !strings.Contains(show, "CS-77") {
		t.Errorf("show lacks the ticket reference:\n%s", show)
	}
	if _, _, err := e.cli(testToken, "assign", id, "nobody"); err == nil || !strings.Contains(err.Error(), "assignee:") {
		t.Errorf("assign to nobody: %v", err)
	}
	if out := e.mustCLI(testToken, "assign", id, ""); !strings.Contains(out, "unassigned") {
		t.Errorf("unassign: %s", out)
	}
}

// TestStoreTaskFinishingWhilePausedIsRecorded: a store task is held after
// its store did the work; the request is paused meanwhile; the task then
// finishes and is recorded, but the request stays paused with every task
// done, until the resume moves it on to completion.
func TestStoreTaskFinishingWhilePausedIsRecorded(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, false, "")
	entered, release := make(chan string, 1), make(chan struct{})
	var once sync.Once
	e.pipelineHook = func(c *jobs.Config) {
		c.AfterStoreEffect = func(store string, action rights.TaskAction) error {
			held := false
			once.Do(func() { held = true })
			if held {
				entered <- store
				<-release
			}
			return nil
		}
	}
	e.start()
	ticket := copyTicket("demo-user-19")
	ticket["type"] = "delete"
	code, body := e.call("POST", "/api/v1/requests", testToken, ticket)
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	var held string
	select {
	case held = <-entered:
	case <-time.After(60 * time.Second):
		t.Fatal("no store task ran")
	}
	code, body = e.call("POST", "/api/v1/requests/"+id+"/pause", testToken, map[string]any{"reason": "Waiting for the customer to confirm the deletion in writing"})
	close(release)
	if code != http.StatusOK || body["status"] != "paused" {
		t.Fatalf("pause while %s runs = %d %v", held, code, body)
	}
	var paused map[string]any
	// A task not yet started when the pause came stays pending (its job
	// found the request paused); the resume enqueues it again.
	waitFor(t, 60*time.Second, "the held task to be recorded while paused", func() bool {
		_, paused = e.call("GET", "/api/v1/requests/"+id, testToken, nil)
		for _, task := range asSlice(paused["tasks"]) {
			if tm := task.(map[string]any); tm["store"] == held && tm["status"] == "succeeded" {
				return true
			}
		}
		return false
	})
	if paused["status"] != "paused" || hasAction(paused, "request.delivering") {
		t.Fatalf("with its task done during the pause the request is %v: %v", paused["status"], auditActions(paused))
	}
	if code, body := e.call("POST", "/api/v1/requests/"+id+"/resume", testToken, map[string]any{}); code != http.StatusOK {
		t.Fatalf("resume = %d %v", code, body)
	}
	done := e.waitStatus(id, "completed", 60*time.Second)
	actions := auditActions(done)
	resumedAt, deliveringAt := -1, -1
	for i, a := range actions {
		switch a {
		case "clock.resumed":
			resumedAt = i
		case "request.delivering":
			deliveringAt = i
		}
	}
	if resumedAt < 0 || deliveringAt < resumedAt {
		t.Errorf("the request moved on before the resume: %v", actions)
	}
}
