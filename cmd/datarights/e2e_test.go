package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/datarights/datarights/api/apitest"
	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/demo"
	"github.com/datarights/datarights/exporters/smtptest"
	"github.com/datarights/datarights/jobs"
	"github.com/datarights/datarights/keyring"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage/storagetest"
)

const testToken = "test-staff-token"

// testSecretKey is the tests' DATARIGHTS_SECRET_KEY.
const testSecretKey = "test:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// e2e is a running datarights against real Postgres databases (its own and
// the demo bank) and a real SMTP server on loopback.
type e2e struct {
	t          *testing.T
	base       string // http://127.0.0.1:port
	opsBase    string // http://127.0.0.1:port of http.ops_addr, when set
	serviceURL string
	bankURL    string
	configPath string
	getenv     func(string) string
	smtp       *smtptest.Server
	db         *pgxpool.Pool // the service's own database, for checks
	// accessKeys are self-service requests' access keys, by request id,
	// for tests that open a self-service copy as its requester.
	accessKeys map[string]string
	// pipelineHook, set before start, changes the pipeline's configuration
	// (fault injection).
	pipelineHook func(*jobs.Config)
	// client makes the tests' calls to the service. It validates every
	// request and answer against the API's OpenAPI description
	// (api/openapi.yaml) and fails the test on a mismatch, so every test
	// that calls the API also checks the description.
	client *http.Client
}

// testStaff are the staff every end-to-end test's service knows besides
// testToken (named "env", an approver of every product): one per role, one
// per role scoped to each demo product, and a second approver for the
// four-eyes rule. staffToken gives a name's token.
var testStaff = func() []config.StaffToken {
	staff := []config.StaffToken{{Name: "approver-2", Role: "approver"}}
	for _, role := range rights.Roles {
		staff = append(staff, config.StaffToken{Name: string(role), Role: string(role)})
		for _, product := range []string{"webank", "wechat"} {
			staff = append(staff, config.StaffToken{Name: string(role) + "-" + product, Role: string(role), Products: []string{product}})
		}
	}
	for i := range staff {
		staff[i].SHA256 = config.HashToken(staffToken(staff[i].Name))
	}
	return staff
}()

// notPeriodic selects the River jobs that are not the periodic ones (the
// sweeps and the audit anchor), which run on their own schedule whatever a
// test does: a test counting the jobs its input made must leave them out.
const notPeriodic = "kind NOT LIKE '%\\_sweep' AND kind <> 'audit_anchor'"

func staffToken(name string) string { return "test-staff-token-" + name }

func testStaffYAML(trustDelivery bool) string {
	var b strings.Builder
	// Staff tickets' delivery emails are trusted here: the tests of other
	// features would otherwise each read a code back.
	// TestStaffCopyGoesOnlyToAConfirmedAddress covers the default.
	if trustDelivery {
		b.WriteString("intake:\n  confirm_delivery_email: false\n")
	}
	b.WriteString("staff_tokens:\n")
	for _, s := range testStaff {
		fmt.Fprintf(&b, "  - {name: %s, role: %s, sha256: %s, products: [%s]}\n", s.Name, s.Role, s.SHA256, strings.Join(s.Products, ", "))
	}
	return b.String()
}

// setupE2E prepares the databases, the SMTP server and the configuration.
// With start it also runs `serve` in-process until the test ends.
func setupE2E(t *testing.T, start bool, extraYAML string) *e2e {
	t.Helper()
	ctx := context.Background()
	e := &e2e{t: t, serviceURL: storagetest.NewDatabase(t, "svc"), bankURL: storagetest.NewDatabase(t, "bank"), smtp: smtptest.NewServer(t),
		client: apitest.Client(t)}
	if err := demo.Seed(ctx, e.bankURL); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	e.configPath = filepath.Join(dir, "datarights.yaml")
	// Staff tokens go first: the demo configuration ends in a list that
	// tests extend with appendConfig. The service runs as the runtime
	// role, with only its grants; the migrations and the tests' own pool
	// (e.db) as a superuser.
	yaml := testStaffYAML(!strings.Contains(extraYAML, "intake:")) + migrateYAML(e.serviceURL) +
		demo.ConfigYAML(storagetest.RuntimeURL(t, e.serviceURL), e.bankURL, filepath.Join(dir, "data")) + extraYAML
	if err := os.WriteFile(e.configPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"DATARIGHTS_SMTP_URL":    e.smtp.URL(),
		"DATARIGHTS_HTTP_ADDR":   "127.0.0.1:0",
		"DATARIGHTS_STAFF_TOKEN": testToken,
		keyring.EnvVar:           testSecretKey,
	}
	e.getenv = func(k string) string { return env[k] }
	pool, err := pgxpool.New(ctx, e.serviceURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	e.db = pool
	if start {
		e.start()
	}
	return e
}

// appendConfig adds to the configuration file, before start.
func (e *e2e) appendConfig(t *testing.T, yaml string) {
	t.Helper()
	f, err := os.OpenFile(e.configPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(yaml); err != nil {
		t.Fatal(err)
	}
}

// editConfig replaces old, which must be there, with new in the
// configuration file, before start.
func (e *e2e) editConfig(t *testing.T, old, new string) {
	t.Helper()
	data, err := os.ReadFile(e.configPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("the configuration has no %q", old)
	}
	if err := os.WriteFile(e.configPath, []byte(strings.Replace(string(data), old, new, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (e *e2e) start() {
	t := e.t
	cfg, err := config.Load(e.configPath, e.getenv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	hooks := serveHooks{
		Ready: func(addr string) { ready <- addr },
		// Called before Ready, from the goroutine that then calls Ready.
		OpsReady: func(addr string) { e.opsBase = "http://" + addr },
		Pipeline: e.pipelineHook,
	}
	go func() { done <- serveWith(ctx, cfg, logger, true, hooks) }()
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
}

// call makes an HTTP request and decodes the JSON answer.
func (e *e2e) call(method, path, token string, body any, headers ...string) (int, map[string]any) {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.base+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			e.t.Fatalf("%s %s: answer is not JSON: %s", method, path, raw)
		}
	}
	return resp.StatusCode, out
}

func copyTicket(userID string) map[string]any {
	return map[string]any{
		"product":            "webank",
		"type":               "copy",
		"subject":            map[string]any{"identities": map[string]string{"user_id": userID}},
		"delivery_email":     userID + "@example.com",
		"requester_relation": "self",
		"locale":             "en",
		"verification":       map[string]any{"method": "face_check", "reference": "FC-1"},
	}
}

// waitStatus polls the staff API until the request reaches status.
func (e *e2e) waitStatus(id, status string, timeout time.Duration) map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		code, body := e.call("GET", "/api/v1/requests/"+id, testToken, nil)
		if code != http.StatusOK {
			e.t.Fatalf("GET request %s: %d %v", id, code, body)
		}
		if body["status"] == status {
			return body
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("request %s is %v after %s, want %s; audit: %v", id, body["status"], timeout, status, body["audit"])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func auditActions(body map[string]any) []string {
	var out []string
	for _, ev := range body["audit"].([]any) {
		out = append(out, ev.(map[string]any)["action"].(string))
	}
	return out
}

// wantCopyTrail is a staff copy's audit trail; the attached copy is purged
// in the transaction that completes the request.
var wantCopyTrail = []string{
	"request.received", "request.verified", "request.planned", "task.succeeded",
	"request.assembling", "export.assembled", "request.completed", "export.purged",
}

// checkExport opens the emailed archive and checks it holds exactly userID's
// rows of every demo table, nothing of anyone else, and a manifest that
// matches the files.
func (e *e2e) checkExport(msg smtptest.Message, userID string) {
	t := e.t
	t.Helper()
	files := e.archive(t, msg)
	var manifest struct {
		Files []struct {
			Path   string `json:"path"`
			Rows   int64  `json:"rows"`
			SHA256 string `json:"sha256"`
		} `json:"files"`
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	for _, mf := range manifest.Files {
		sum := sha256.Sum256(files[mf.Path])
		if hex.EncodeToString(sum[:]) != mf.SHA256 {
			t.Errorf("manifest sha256 of %s does not match its content", mf.Path)
		}
	}
	if _, ok := files["summary.html"]; !ok {
		t.Error("archive has no summary.html")
	}

	want, err := demo.Counts(context.Background(), e.bankURL, userID)
	if err != nil {
		t.Fatal(err)
	}
	for table, count := range want {
		raw, ok := files["data/demo_bank/"+table+".json"]
		if !ok {
			t.Errorf("archive has no data/demo_bank/%s.json; files: %v", table, keys(files))
			continue
		}
		var rows []map[string]any
		if err := json.Unmarshal(raw, &rows); err != nil {
			t.Fatalf("%s.json: %v", table, err)
		}
		if int64(len(rows)) != count {
			t.Errorf("%s: %d rows in the export, %d in the bank", table, len(rows), count)
		}
		for _, row := range rows {
			if row["user_id"] != userID {
				t.Errorf("%s: a row of %v leaked into %s's export", table, row["user_id"], userID)
			}
		}
		for _, mf := range manifest.Files {
			if (mf.Path == "data/demo_bank/"+table+".json" || mf.Path == "data/demo_bank/"+table+".csv") && mf.Rows != count {
				t.Errorf("manifest says %d rows for %s, want %d", mf.Rows, mf.Path, count)
			}
		}
		// The same rows as CSV, for Excel: a byte order mark, a header,
		// then one record per row, every one userID's.
		csvData, ok := files["data/demo_bank/"+table+".csv"]
		if !ok {
			t.Errorf("archive has no data/demo_bank/%s.csv", table)
			continue
		}
		body, bom := bytes.CutPrefix(csvData, []byte("\uFEFF"))
		records, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		if !bom || err != nil || int64(len(records)) != count+1 {
			t.Errorf("%s.csv: BOM %v, %d records (%v), want a header and %d rows", table, bom, len(records), err, count)
			continue
		}
		col := slices.Index(records[0], "user_id")
		for _, rec := range records[1:] {
			if col < 0 || rec[col] != userID {
				t.Errorf("%s.csv: a row of another person: %v", table, rec)
			}
		}
	}
	if len(want) != 4 {
		t.Fatalf("demo bank has %d tables, want 4", len(want))
	}
	// Nothing but the four tables (as JSON and CSV), the summary and the
	// manifest.
	if len(files) != 10 {
		t.Errorf("archive holds %d files, want 10: %v", len(files), keys(files))
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestStaffCopyEndToEnd(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "")

	code, body := e.call("POST", "/api/v1/requests", testToken, copyTicket("demo-user-3"), "Idempotency-Key", "ticket-42")
	if code != http.StatusCreated {
		t.Fatalf("POST /api/v1/requests = %d %v", code, body)
	}
	id := body["id"].(string)
	if body["status"] != "received" {
		t.Errorf("new request status = %v, want received", body["status"])
	}

	// A retried submit with the same key is the same request.
	code, again := e.call("POST", "/api/v1/requests", testToken, copyTicket("demo-user-3"), "Idempotency-Key", "ticket-42")
	if code != http.StatusOK || again["id"] != id {
		t.Fatalf("retried submit = %d id %v, want 200 and %s", code, again["id"], id)
	}
	// The same key with another body is refused.
	if code, _ := e.call("POST", "/api/v1/requests", testToken, copyTicket("demo-user-4"), "Idempotency-Key", "ticket-42"); code != http.StatusConflict {
		t.Fatalf("reused key with another body = %d, want 409", code)
	}

	done := e.waitStatus(id, "completed", 60*time.Second)
	if got := auditActions(done); !slices.Equal(got, wantCopyTrail) {
		t.Errorf("audit trail = %v, want %v", got, wantCopyTrail)
	}
	if done["due_at"] == nil || done["completed_at"] == nil || done["verified_at"] == nil {
		t.Errorf("completed request lacks timestamps: due %v verified %v completed %v", done["due_at"], done["verified_at"], done["completed_at"])
	}

	msgs := e.smtp.WaitForMessages(t, 1, 30*time.Second)
	time.Sleep(300 * time.Millisecond) // a duplicate would arrive right behind
	if n := len(e.smtp.Messages()); n != 1 {
		t.Fatalf("%d emails sent, want 1", n)
	}
	msg := msgs[0]
	if !slices.Equal(msg.To, []string{"demo-user-3@example.com"}) {
		t.Errorf("email went to %v", msg.To)
	}
	if msg.MessageID != id+".completion@datarights" {
		t.Errorf("Message-ID = %q", msg.MessageID)
	}
	if len(msg.Attachments) != 1 {
		t.Fatalf("email has %d attachments, want 1", len(msg.Attachments))
	}
	e.checkExport(msg, "demo-user-3")

	// The list endpoint shows it, filtered.
	code, list := e.call("GET", "/api/v1/requests?status=completed&product=webank&type=copy", testToken, nil)
	if code != http.StatusOK || len(list["requests"].([]any)) != 1 {
		t.Fatalf("list completed = %d %v", code, list)
	}
}

var codeRE = regexp.MustCompile(`\b(\d{8})\b`)

func TestSelfServiceCopyEndToEnd(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "")

	submit := func(email string) (int, map[string]any) {
		return e.call("POST", "/api/v1/self-service/requests", "", map[string]any{
			"product": "webank", "type": "copy", "email": email, "locale": "zh-CN",
		})
	}
	code, body := submit("demo-user-3@example.com")
	if code != http.StatusAccepted {
		t.Fatalf("self-service submit = %d %v", code, body)
	}
	id := body["id"].(string)

	// An unknown address gets the same answer, bar the id.
	code2, other := submit("nobody-here@example.com")
	if code2 != code || other["status"] != body["status"] || len(other) != len(body) ||
		strings.ReplaceAll(other["message"].(string), other["id"].(string), "ID") != strings.ReplaceAll(body["message"].(string), id, "ID") {
		t.Fatalf("answers differ for known and unknown subjects: %v vs %v", body, other)
	}

	var codeMsg smtptest.Message
	for _, m := range e.smtp.WaitForMessages(t, 2, 30*time.Second) {
		if slices.Equal(m.To, []string{"demo-user-3@example.com"}) {
			codeMsg = m
		}
	}
	match := codeRE.FindStringSubmatch(codeMsg.Text)
	if match == nil {
		t.Fatalf("no code in the email: %q", codeMsg.Text)
	}
	wrong := "00000000"
	if match[1] == wrong {
		wrong = "11111111"
	}
	if code, body := e.call("POST", "/api/v1/self-service/requests/"+id+"/verify", "", map[string]string{"code": wrong}); code != http.StatusBadRequest {
		t.Fatalf("wrong code = %d %v, want 400", code, body)
	}
	code, body = e.call("POST", "/api/v1/self-service/requests/"+id+"/verify", "", map[string]string{"code": match[1]})
	if code != http.StatusOK || body["status"] != "verified" {
		t.Fatalf("verify = %d %v", code, body)
	}
	e.accessKeys = map[string]string{id: body["access_key"].(string)}
	// The code is used up: no request awaits verification under this id.
	if code, _ := e.call("POST", "/api/v1/self-service/requests/"+id+"/verify", "", map[string]string{"code": match[1]}); code != http.StatusNotFound {
		t.Fatalf("second verify = %d, want 404", code)
	}

	done := e.waitStatus(id, "completed", 60*time.Second)
	want := []string{"request.received", "verification.code_sent", "verification.failed", "request.verified", "identity.resolved",
		"request.planned", "task.succeeded", "request.assembling", "export.assembled", "request.completed", "export.purged"}
	if got := auditActions(done); !slices.Equal(got, want) {
		t.Errorf("audit trail = %v, want %v", got, want)
	}
	msgs := e.smtp.WaitForMessages(t, 3, 30*time.Second)
	var completion []smtptest.Message
	for _, m := range msgs {
		if m.MessageID == id+".completion@datarights" {
			completion = append(completion, m)
		}
	}
	if len(completion) != 1 || len(completion[0].Attachments) != 1 {
		t.Fatalf("completion emails = %d, want 1 with the archive", len(completion))
	}
	e.checkExport(completion[0], "demo-user-3")
}

func TestSelfServiceCodeLocksAfterWrongAttempts(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "self_service:\n  max_attempts: 3\n")
	_, body := e.call("POST", "/api/v1/self-service/requests", "", map[string]any{"product": "webank", "type": "access", "email": "demo-user-5@example.com"})
	id := body["id"].(string)
	msg := e.smtp.WaitForMessages(t, 1, 30*time.Second)[0]
	right := codeRE.FindStringSubmatch(msg.Text)[1]
	wrong := fmt.Sprintf("%08d", (atoi(right)+1)%100_000_000)
	for i := range 3 {
		if code, body := e.call("POST", "/api/v1/self-service/requests/"+id+"/verify", "", map[string]string{"code": wrong}); code != http.StatusBadRequest {
			t.Fatalf("wrong attempt %d = %d %v", i+1, code, body)
		}
	}
	code, body := e.call("POST", "/api/v1/self-service/requests/"+id+"/verify", "", map[string]string{"code": right})
	if code != http.StatusLocked {
		t.Fatalf("right code after the limit = %d %v, want 423", code, body)
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
