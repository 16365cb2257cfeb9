package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/demo"
	"github.com/datarights/datarights/exporters/smtptest"
	"github.com/datarights/datarights/storage/mysqltest"
)

// lockedBuffer collects a server's log lines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startLogged is e.start with the server's JSON log kept, to check it for
// personal data.
func (e *e2e) startLogged() *lockedBuffer {
	t := e.t
	cfg, err := config.Load(e.configPath, e.getenv)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() { done <- serve(ctx, cfg, logger, true, func(addr string) { ready <- addr }) }()
	select {
	case addr := <-ready:
		e.base = "http://" + addr
	case err := <-done:
		t.Fatalf("serve stopped before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve not ready after 30s")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return logs
}

func correctTicket(userID string, corrections map[string]string) map[string]any {
	m := copyTicket(userID)
	m["type"] = "correct"
	m["corrections"] = corrections
	return m
}

// bankUsers returns every row of the bank's users table as JSON, by user_id.
func (e *e2e) bankUsers() map[string]map[string]any {
	t := e.t
	t.Helper()
	conn, err := pgx.Connect(context.Background(), e.bankURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), "SELECT user_id, to_jsonb(u) FROM users u")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for rows.Next() {
		var id string
		var row map[string]any
		if err := rows.Scan(&id, &row); err != nil {
			t.Fatal(err)
		}
		out[id] = row
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkBankCorrected checks that only userID's users row changed, and only
// in the columns of want, to want's values.
func (e *e2e) checkBankCorrected(before map[string]map[string]any, userID string, want map[string]string) {
	t := e.t
	t.Helper()
	after := e.bankUsers()
	if len(after) != len(before) {
		t.Fatalf("the bank has %d users, had %d", len(after), len(before))
	}
	for id, row := range before {
		wantRow := row
		if id == userID {
			wantRow = map[string]any{}
			for k, v := range row {
				wantRow[k] = v
			}
			for k, v := range want {
				wantRow[k] = v
			}
		}
		if fmt.Sprint(after[id]) != fmt.Sprint(wantRow) {
			t.Errorf("user %s is\n %v\nwant\n %v", id, after[id], wantRow)
		}
	}
}

// auditJSON returns a request's audit trail as the API shows it, as JSON.
func auditJSON(t *testing.T, body map[string]any) string {
	t.Helper()
	raw, err := json.Marshal(body["audit"])
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// auditDetail returns the detail of the first event with action.
func auditDetail(body map[string]any, action string) map[string]any {
	for _, ev := range asSlice(body["audit"]) {
		if m := ev.(map[string]any); m["action"] == action {
			d, _ := m["detail"].(map[string]any)
			return d
		}
	}
	return nil
}

func TestStaffCorrectEndToEnd(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, false, "")
	logs := e.startLogged()
	before := e.bankUsers()

	const newCity, newEmail = "拉萨-city-zq7x", "demo-user-3.new-zq7x@example.org"
	code, body := e.call("POST", "/api/v1/requests", testToken,
		correctTicket("demo-user-3", map[string]string{"city": newCity, "email": newEmail}))
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	if body["type"] != "correct" {
		t.Errorf("type = %v", body["type"])
	}

	// The new email becomes where the person's codes and copies go: it is
	// proved first, with a code sent to it, and the address on file is told.
	e.waitStatus(id, "awaiting_contact", 30*time.Second)
	codeMsg := e.smtp.WaitForMessage(t, id+".contact.email.1@datarights", 30*time.Second)
	if !slices.Equal(codeMsg.To, []string{newEmail}) || codeRE.MatchString(codeMsg.Subject) {
		t.Errorf("contact code to %v, subject %q", codeMsg.To, codeMsg.Subject)
	}
	change := e.smtp.WaitForMessage(t, id+".contact-change@datarights", 30*time.Second)
	if !slices.Equal(change.To, []string{"demo-user-3@example.com"}) || !strings.Contains(change.Text, "email") || strings.Contains(change.Text, newEmail) {
		t.Errorf("change notice to %v:\n%s", change.To, change.Text)
	}
	e.checkBankCorrected(before, "", nil)
	contactCode := codeRE.FindStringSubmatch(codeMsg.Text)[1]
	wrong := "00000000"
	if contactCode == wrong {
		wrong = "11111111"
	}
	if c, out := e.call("POST", "/api/v1/requests/"+id+"/contact/confirm", staffToken("agent"), map[string]string{"code": wrong}); c != http.StatusBadRequest {
		t.Fatalf("wrong contact code = %d %v, want 400", c, out)
	}
	if c, out := e.call("POST", "/api/v1/requests/"+id+"/contact/confirm", staffToken("agent"), map[string]string{"code": contactCode}); c != http.StatusOK {
		t.Fatalf("contact code = %d %v", c, out)
	}

	done := e.waitStatus(id, "completed", 60*time.Second)
	want := []string{"request.received", "request.verified", "contact.confirmation_needed", "contact.code_sent", "notice.sent",
		"contact.code_failed", "contact.confirmed", "contact.all_confirmed", "request.planned", "task.succeeded",
		"request.delivering", "request.completed"}
	if got := auditActions(done); !sameActions(got, want) {
		t.Errorf("audit trail = %v, want %v", got, want)
	}
	e.checkBankCorrected(before, "demo-user-3", map[string]string{"city": newCity, "email": newEmail})

	// The audit names the fields, never the values.
	audit := auditJSON(t, done)
	for _, secret := range []string{newCity, newEmail, "zq7x"} {
		if strings.Contains(audit, secret) {
			t.Errorf("the audit trail holds a new value: %s", audit)
		}
	}
	if fields := auditDetail(done, "request.received")["fields"]; fmt.Sprint(fields) != "[city email]" {
		t.Errorf("request.received names fields %v, want [city email]", fields)
	}
	if fields := auditDetail(done, "task.succeeded")["fields"]; fmt.Sprint(fields) != "[city email]" {
		t.Errorf("task.succeeded names fields %v, want [city email]", fields)
	}
	tasks := asSlice(done["tasks"])
	if len(tasks) != 1 {
		t.Fatalf("tasks = %v, want one for the bank", tasks)
	}
	if task := tasks[0].(map[string]any); task["action"] != "correct" || task["status"] != "succeeded" {
		t.Errorf("task = %v", task)
	}

	// The email says which fields were corrected, not what to.
	msg := e.smtp.WaitForMessage(t, id+".completion@datarights", 30*time.Second)
	time.Sleep(300 * time.Millisecond)
	if n := len(e.smtp.Messages()); n != 3 {
		t.Fatalf("%d emails, want the contact code, the change notice and the answer", n)
	}
	if !slices.Equal(msg.To, []string{"demo-user-3@example.com"}) || len(msg.Attachments) != 0 {
		t.Errorf("email to %v with %d attachments", msg.To, len(msg.Attachments))
	}
	if !strings.Contains(msg.Text, "we corrected: city, email address") || !strings.Contains(msg.Text, "已按您的要求更正以下信息：城市, 邮箱地址") {
		t.Errorf("the email does not name the corrected fields:\n%s", msg.Text)
	}
	if strings.Contains(msg.Text, newCity) || strings.Contains(msg.Text, newEmail) || strings.Contains(msg.HTML, "zq7x") {
		t.Errorf("the email holds a new value:\n%s", msg.Text)
	}
	if log := logs.String(); !strings.Contains(log, `"status":201`) || strings.Contains(log, "zq7x") {
		t.Errorf("the log lacks the request or holds a new value:\n%s", log)
	}
}

func TestCorrectProtectedFieldWaitsForApproval(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "")
	before := e.bankUsers()

	const newPhone = "13999990004"
	code, body := e.call("POST", "/api/v1/requests", testToken,
		correctTicket("demo-user-4", map[string]string{"phone": newPhone, "city": "Ürümqi"}))
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	waiting := e.waitStatus(id, "awaiting_approval", 30*time.Second)
	if fields := auditDetail(waiting, "correction.needs_approval")["fields"]; fmt.Sprint(fields) != "[phone]" {
		t.Errorf("correction.needs_approval names %v, want [phone]; audit %v", fields, auditActions(waiting))
	}
	// Staff see what they approve.
	if c, _ := waiting["corrections"].(map[string]any); c["phone"] != newPhone {
		t.Errorf("the request shows corrections %v", waiting["corrections"])
	}
	time.Sleep(500 * time.Millisecond)
	e.checkBankCorrected(before, "", nil)
	if _, again := e.call("GET", "/api/v1/requests/"+id, testToken, nil); again["status"] != "awaiting_approval" || len(asSlice(again["tasks"])) != 0 {
		t.Fatalf("before approval: status %v, tasks %v", again["status"], again["tasks"])
	}

	// Four eyes: whoever filed the ticket cannot approve its protected
	// correction.
	if code, body := e.call("POST", "/api/v1/requests/"+id+"/approve", testToken, map[string]string{"note": "ID card checked at the branch"}); code != http.StatusForbidden || !strings.Contains(errorText(body), "four-eyes") {
		t.Fatalf("approval by the filer = %d %v, want 403", code, body)
	}
	if code, body := e.call("POST", "/api/v1/requests/"+id+"/approve", staffToken("approver-2"), map[string]string{"note": "ID card checked at the branch"}); code != http.StatusOK {
		t.Fatalf("approve = %d %v", code, body)
	}
	// The phone is where codes go too: after approval it is proved with a
	// code by text message (the outbox, here), read back to staff.
	e.waitStatus(id, "awaiting_contact", 30*time.Second)
	smsCode := e.smsCode(t, id)
	if c, out := e.call("POST", "/api/v1/requests/"+id+"/contact/confirm", staffToken("agent"), map[string]string{"field": "phone", "code": smsCode}); c != http.StatusOK {
		t.Fatalf("contact code = %d %v", c, out)
	}
	done := e.waitStatus(id, "completed", 60*time.Second)
	want := []string{"request.received", "request.verified", "correction.needs_approval", "request.approved",
		"contact.confirmation_needed", "contact.code_sent", "notice.sent", "contact.confirmed", "contact.all_confirmed",
		"request.planned", "task.succeeded", "request.delivering", "request.completed"}
	if got := auditActions(done); !sameActions(got, want) {
		t.Errorf("audit trail = %v, want %v", got, want)
	}
	e.checkBankCorrected(before, "demo-user-4", map[string]string{"phone": newPhone, "city": "Ürümqi"})
	if audit := auditJSON(t, done); strings.Contains(audit, newPhone) || strings.Contains(audit, "Ürümqi") {
		t.Errorf("the audit trail holds a new value: %s", audit)
	}
}

func TestSelfServiceCorrectEndToEnd(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "")
	before := e.bankUsers()

	code, body := e.call("POST", "/api/v1/self-service/requests", "", map[string]any{
		"product": "webank", "type": "correct", "email": demo.Email(6), "locale": "en",
		"corrections": map[string]string{"name": "陈静 (Chen Jing)"},
	})
	if code != http.StatusAccepted {
		t.Fatalf("self-service submit = %d %v", code, body)
	}
	id := body["id"].(string)
	codeMsg := e.smtp.WaitForMessages(t, 1, 30*time.Second)[0]
	match := codeRE.FindStringSubmatch(codeMsg.Text)
	if match == nil {
		t.Fatalf("no code in the email: %q", codeMsg.Text)
	}
	if code, body := e.call("POST", "/api/v1/self-service/requests/"+id+"/verify", "", map[string]string{"code": match[1]}); code != http.StatusOK {
		t.Fatalf("verify = %d %v", code, body)
	}
	done := e.waitStatus(id, "completed", 60*time.Second)
	e.checkBankCorrected(before, "demo-user-6", map[string]string{"name": "陈静 (Chen Jing)"})
	if audit := auditJSON(t, done); strings.Contains(audit, "Chen Jing") {
		t.Errorf("the audit trail holds the new value: %s", audit)
	}
	var completion *smtptest.Message
	for _, m := range e.smtp.WaitForMessages(t, 2, 30*time.Second) {
		if m.MessageID == id+".completion@datarights" {
			completion = &m
		}
	}
	if completion == nil || !strings.Contains(completion.Text, "we corrected: name") || strings.Contains(completion.Text, "Chen Jing") {
		t.Errorf("completion email = %+v", completion)
	}
}

// TestCorrectAcrossStores: a correction goes to every store that declares
// one of its fields (the bank and a MySQL CRM), and to no other store.
func TestCorrectAcrossStores(t *testing.T) {
	t.Parallel()
	crmDSN := mysqltest.NewDatabase(t, "crm")
	crm := mysqltest.Open(t, crmDSN)
	ctx := context.Background()
	if _, err := crm.ExecContext(ctx, `CREATE TABLE contacts (user_id VARCHAR(64) NOT NULL PRIMARY KEY,
		mail VARCHAR(200) NOT NULL, note VARCHAR(200) NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 12; n++ {
		if _, err := crm.ExecContext(ctx, "INSERT INTO contacts VALUES (?, ?, ?)", demo.UserID(n), demo.Email(n), "VIP"); err != nil {
			t.Fatal(err)
		}
	}
	e := setupE2E(t, true, fmt.Sprintf(`  - name: crm
    kind: mysql
    dsn: %q
    products: [webank]
    key: user_id
    tables:
      - name: contacts
        column: user_id
        correctable:
          - {field: email, column: mail, validate: email}
  - name: crm_archive
    kind: mysql
    dsn: %q
    products: [webank]
    key: user_id
    tables:
      - name: contacts
        column: user_id
`, crmDSN, crmDSN))
	before := e.bankUsers()

	const newEmail = "demo-user-1.moved@example.org"
	code, body := e.call("POST", "/api/v1/requests", testToken, correctTicket("demo-user-1", map[string]string{"email": newEmail}))
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	e.confirmNewEmail(t, body["id"].(string))
	done := e.waitStatus(body["id"].(string), "completed", 60*time.Second)
	var stores []string
	for _, task := range asSlice(done["tasks"]) {
		stores = append(stores, task.(map[string]any)["store"].(string))
	}
	if !slices.Equal(stores, []string{"crm", "demo_bank"}) {
		t.Errorf("tasks for %v, want crm and demo_bank only", stores)
	}
	e.checkBankCorrected(before, "demo-user-1", map[string]string{"email": newEmail})
	rows, err := crm.QueryContext(ctx, "SELECT user_id, mail FROM contacts ORDER BY user_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, mail string
		if err := rows.Scan(&id, &mail); err != nil {
			t.Fatal(err)
		}
		want := id + "@example.com"
		if id == "demo-user-1" {
			want = newEmail
		}
		if mail != want {
			t.Errorf("crm: %s has mail %q, want %q", id, mail, want)
		}
	}
	if strings.Contains(auditJSON(t, done), "moved") {
		t.Error("the audit trail holds the new value")
	}
}

// TestBadCorrectionsAreRefusedAndWriteNothing: unknown fields, values their
// field's validator refuses, and corrections on other rights are 400s that
// name the field, and nothing is written.
func TestBadCorrectionsAreRefusedAndWriteNothing(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "")
	copyWithCorrections := copyTicket("demo-user-3")
	copyWithCorrections["corrections"] = map[string]string{"city": "x"}
	cases := []struct {
		name, path string
		token      string
		body       any
		field      string
		wantText   []string
	}{
		{"unknown field", "/api/v1/requests", testToken, correctTicket("demo-user-3", map[string]string{"nickname": "Kiki", "city": "Hangzhou"}),
			"corrections.nickname", []string{`"nickname" cannot be corrected`, "city, email, id_number, name, phone"}},
		{"invalid email", "/api/v1/requests", testToken, correctTicket("demo-user-3", map[string]string{"email": "not-an-email-9d2c"}),
			"corrections.email", []string{"must be an email address"}},
		{"phone with spaces", "/api/v1/requests", testToken, correctTicket("demo-user-3", map[string]string{"phone": "139 9999 0000"}),
			"corrections.phone", []string{"phone number"}},
		{"blank value", "/api/v1/requests", testToken, correctTicket("demo-user-3", map[string]string{"city": " "}),
			"corrections.city", []string{"must not be empty"}},
		{"no corrections", "/api/v1/requests", testToken, correctTicket("demo-user-3", nil),
			"corrections", []string{"at least one field"}},
		{"corrections on a copy", "/api/v1/requests", testToken, copyWithCorrections,
			"corrections", []string{"only correct requests"}},
		{"corrections not strings", "/api/v1/requests", testToken, `{"product":"webank","type":"correct","corrections":{"city":7}}`,
			"corrections", []string{"must be a string"}},
		{"self-service unknown field", "/api/v1/self-service/requests", "", map[string]any{"product": "webank", "type": "correct",
			"email": demo.Email(3), "corrections": map[string]string{"user_id": "demo-user-9"}},
			"corrections.user_id", []string{"cannot be corrected"}},
		{"self-service invalid email", "/api/v1/self-service/requests", "", map[string]any{"product": "webank", "type": "correct",
			"email": demo.Email(3), "corrections": map[string]string{"email": "x@@y"}},
			"corrections.email", []string{"must be an email address"}},
	}
	for _, tc := range cases {
		code, body := e.call("POST", tc.path, tc.token, tc.body)
		if code != http.StatusBadRequest {
			t.Errorf("%s: %d %v, want 400", tc.name, code, body)
			continue
		}
		text := errorText(body)
		named := false
		errObj, _ := body["error"].(map[string]any)
		for _, f := range asSlice(errObj["fields"]) {
			named = named || f.(map[string]any)["field"] == tc.field
		}
		if !named {
			t.Errorf("%s: error %q does not name %s", tc.name, text, tc.field)
		}
		for _, want := range tc.wantText {
			if !strings.Contains(text, want) {
				t.Errorf("%s: error %q does not say %q", tc.name, text, want)
			}
		}
		if strings.Contains(text, "9d2c") || strings.Contains(text, "Kiki") {
			t.Errorf("%s: the error quotes a value: %q", tc.name, text)
		}
	}
	for _, table := range []string{"requests", "audit_events", "tasks", "verification_codes", "river_job"} {
		query := "SELECT count(*) FROM " + table
		if table == "river_job" {
			query += " WHERE " + notPeriodic
		}
		var n int
		if err := e.db.QueryRow(context.Background(), query).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s has %d rows after only bad corrections, want 0", table, n)
		}
	}
	if n := len(e.smtp.Messages()); n != 0 {
		t.Errorf("%d emails sent after only bad corrections", n)
	}
}

// sameActions compares audit trails where some events race: the change
// notice is sent by its own job, concurrently with the code.
func sameActions(got, want []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want)))
}

var smsCodeRE = regexp.MustCompile(`验证码 ([0-9]{8})`)

// smsCode waits for the text message carrying a request's contact code in
// the SMS outbox, and returns the code.
func (e *e2e) smsCode(t *testing.T, id string) string {
	t.Helper()
	dir := filepath.Join(filepath.Dir(e.configPath), "data", "sms")
	var code string
	waitFor(t, 30*time.Second, "the text message", func() bool {
		files, _ := filepath.Glob(filepath.Join(dir, id+".contact.*.txt"))
		for _, f := range files {
			data, _ := os.ReadFile(f)
			if m := smsCodeRE.FindSubmatch(data); m != nil {
				code = string(m[1])
			}
		}
		return code != ""
	})
	return code
}
