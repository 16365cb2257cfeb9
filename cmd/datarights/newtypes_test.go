package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/datarights/datarights/demo"
	"github.com/datarights/datarights/jobs"
	"github.com/datarights/datarights/storage/s3test"
	"github.com/datarights/datarights/storage/stores"
)

// Issue 12: complaints, explanations, transfers, next of kin and minors,
// end to end against the demo bank with its issue 12 configuration
// (demo.NewTypesYAML).

const transferSecret = "transfer-secret-0123456789abcdef"

// transferReceiver is a receiving handler's HTTPS endpoint in the test: it
// checks each push's signature and keeps the archives it accepted.
type transferReceiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	archives map[string][]byte // by request id
	bad      []string          // why pushes were refused
	got      chan string       // request ids, as they arrive
}

func newTransferReceiver(t *testing.T) *transferReceiver {
	rc := &transferReceiver{archives: map[string][]byte{}, got: make(chan string, 10)}
	rc.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		_, err = stores.VerifyRequest([]byte(transferSecret), r.Method, r.URL.RequestURI(),
			stores.SignatureHeadersFrom(r.Header), body, time.Now(), time.Minute)
		sum := sha256.Sum256(body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		switch {
		case err != nil:
			rc.bad = append(rc.bad, "signature: "+err.Error())
			w.WriteHeader(http.StatusUnauthorized)
			return
		case r.Header.Get(jobs.TransferHeaderSHA256) != hex.EncodeToString(sum[:]):
			rc.bad = append(rc.bad, "content hash header does not match")
			w.WriteHeader(http.StatusBadRequest)
			return
		case r.Header.Get("Content-Type") != "application/zip" || r.Header.Get(jobs.TransferHeaderReceiver) != "partner_wealth":
			rc.bad = append(rc.bad, "headers: "+fmt.Sprint(r.Header))
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		id := r.Header.Get(jobs.TransferHeaderRequest)
		rc.archives[id] = body
		rc.got <- id
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// caFile writes the receiver's TLS certificate as a PEM file, for the
// receiver's ca_file.
func (rc *transferReceiver) caFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "receiver-ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rc.srv.Certificate().Raw})
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// setupNewTypes starts the service with the demo's issue 12 configuration,
// transfers pushed to rc, and more configuration from extra.
func setupNewTypes(t *testing.T, rc *transferReceiver, extra string, env map[string]string) *e2e {
	t.Helper()
	e := setupE2E(t, false, "")
	url := "http://127.0.0.1:1/unused"
	if rc != nil {
		url = rc.srv.URL + "/datarights/transfers"
	}
	e.appendConfig(t, demo.ExtrasYAML(e.bankURL)+demo.NewTypesYAML(url)+extra)
	base := e.getenv
	e.getenv = func(k string) string {
		if k == "DEMO_TRANSFER_SECRET" {
			return transferSecret
		}
		if v, ok := env[k]; ok {
			return v
		}
		return base(k)
	}
	e.start()
	return e
}

func ntTicket(product, typ, userID string, extra map[string]any) map[string]any {
	body := map[string]any{
		"product": product, "type": typ,
		"subject":        map[string]any{"identities": map[string]string{"user_id": userID}},
		"delivery_email": userID + "@example.com", "locale": "en",
		"verification": map[string]any{"method": "face_check", "reference": "FC-12"},
	}
	for k, v := range extra {
		body[k] = v
	}
	return body
}

func fieldReasons(body map[string]any) map[string]string {
	out := map[string]string{}
	errBody, _ := body["error"].(map[string]any)
	fields, _ := errBody["fields"].([]any)
	for _, f := range fields {
		m := f.(map[string]any)
		out[m["field"].(string)] = m["reason"].(string)
	}
	return out
}

func (e *e2e) file(body map[string]any) string {
	e.t.Helper()
	code, got := e.call("POST", "/api/v1/requests", testToken, body)
	if code != http.StatusCreated {
		e.t.Fatalf("POST /api/v1/requests %v = %d %v", body["type"], code, got)
	}
	return got["id"].(string)
}

func TestComplaintAnsweredAndEmailed(t *testing.T) {
	t.Parallel()
	e := setupNewTypes(t, nil, "", nil)

	// The request complained about: demo-user-3's access request.
	earlier := e.file(ntTicket("webank", "access", "demo-user-3", nil))
	e.waitStatus(earlier, "completed", 60*time.Second)
	e.smtp.WaitForMessage(t, earlier+".completion@datarights", 30*time.Second)

	// Someone else's request, or none at all, is refused with the same
	// words: a complaint does not reveal whether a request exists.
	for _, tc := range []struct {
		name     string
		product  string
		user     string
		concerns string
	}{
		{"another person's request", "webank", "demo-user-4", earlier},
		{"no such request", "webank", "demo-user-3", "0190a0a0-0000-7000-8000-000000000000"},
		{"another product's request", "wechat", "demo-user-3", earlier},
	} {
		code, got := e.call("POST", "/api/v1/requests", testToken, ntTicket(tc.product, "complaint", tc.user,
			map[string]any{"text": "You were late.", "concerns": tc.concerns}))
		reason := fieldReasons(got)["concerns"]
		if code != http.StatusBadRequest || !strings.HasPrefix(reason, "no request "+tc.concerns+" of this person in ") {
			t.Errorf("%s: complaint = %d %v", tc.name, code, got)
		}
	}
	if code, got := e.call("POST", "/api/v1/requests", testToken, ntTicket("webank", "complaint", "demo-user-3", nil)); code != http.StatusBadRequest || fieldReasons(got)["text"] == "" {
		t.Errorf("complaint without text = %d %v", code, got)
	}

	text := "Your answer to my access request did not list my card transactions."
	id := e.file(ntTicket("webank", "complaint", "demo-user-3", map[string]any{"text": text, "concerns": earlier}))
	waiting := e.waitStatus(id, "in_progress", 30*time.Second)
	if !slices.Contains(auditActions(waiting), "request.awaiting_answer") || waiting["due_at"] == nil {
		t.Fatalf("complaint waiting for its answer: due %v, audit %v", waiting["due_at"], auditActions(waiting))
	}
	details, _ := waiting["details"].(map[string]any)
	if details["text"] != text || details["concerns"] != earlier {
		t.Errorf("details = %v", details)
	}
	if tasks, _ := waiting["tasks"].([]any); len(tasks) != 0 {
		t.Errorf("a complaint asked the stores: %v", tasks)
	}
	// The complained-about request lists it.
	_, about := e.call("GET", "/api/v1/requests/"+earlier, testToken, nil)
	if !slices.Equal(anyStrings(about["complaints"]), []string{id}) {
		t.Errorf("complaints about %s = %v", earlier, about["complaints"])
	}
	// The text is never in the audit trail.
	raw, _ := json.Marshal(waiting["audit"])
	if strings.Contains(string(raw), "card transactions") {
		t.Error("the complaint's text is in the audit trail")
	}

	// Agents may not answer; approvers may.
	reply := "We checked: the transactions table was included; see the file transactions.json."
	if code, _ := e.call("POST", "/api/v1/requests/"+id+"/answer", staffToken("agent"), map[string]any{"answer": reply}); code != http.StatusForbidden {
		t.Errorf("an agent's answer = %d, want 403", code)
	}
	if code, got := e.call("POST", "/api/v1/requests/"+id+"/answer", staffToken("approver"), map[string]any{"answer": " "}); code != http.StatusBadRequest || fieldReasons(got)["answer"] == "" {
		t.Errorf("an empty answer = %d %v", code, got)
	}
	if code, got := e.call("POST", "/api/v1/requests/"+id+"/answer", staffToken("approver"), map[string]any{"answer": reply}); code != http.StatusOK {
		t.Fatalf("answer = %d %v", code, got)
	}
	done := e.waitStatus(id, "completed", 30*time.Second)
	if !slices.Contains(auditActions(done), "request.answered") {
		t.Errorf("audit = %v", auditActions(done))
	}
	if code, _ := e.call("POST", "/api/v1/requests/"+id+"/answer", staffToken("approver"), map[string]any{"answer": reply}); code != http.StatusConflict {
		t.Errorf("a second answer = %d, want 409", code)
	}

	// Self-service complaints are checked once the code is in: about one's
	// own request, linked; about someone else's, kept but not linked — and
	// the requester's answer is the same either way.
	selfComplaint := func(email string) map[string]any {
		code, got := e.call("POST", "/api/v1/self-service/requests", "", map[string]any{"product": "webank", "type": "complaint",
			"email": email, "locale": "en", "text": "Too slow.", "concerns": earlier})
		if code != http.StatusAccepted {
			t.Fatalf("self-service complaint = %d %v", code, got)
		}
		sid := got["id"].(string)
		m := codeRE.FindStringSubmatch(e.smtp.WaitForMessage(t, sid+".code.1@datarights", 30*time.Second).Text)
		if m == nil {
			t.Fatal("no code in the email")
		}
		code, got = e.call("POST", "/api/v1/self-service/requests/"+sid+"/verify", "", map[string]string{"code": m[1]})
		if code != http.StatusOK {
			t.Fatalf("verify = %d %v", code, got)
		}
		if e.accessKeys == nil {
			e.accessKeys = map[string]string{}
		}
		e.accessKeys[sid] = got["access_key"].(string)
		return e.waitStatus(sid, "in_progress", 30*time.Second)
	}
	own := selfComplaint("demo-user-3@example.com")
	ownID := own["id"].(string)
	if code, got := e.call("POST", "/api/v1/requests/"+ownID+"/answer", staffToken("approver"), map[string]any{"answer": "Sorry: we will be quicker."}); code != http.StatusOK {
		t.Fatalf("answer = %d %v", code, got)
	}
	e.waitStatus(ownID, "completed", 30*time.Second)
	if code, st := e.call("GET", "/api/v1/self-service/requests/"+ownID, e.accessKeys[ownID], nil); code != http.StatusOK || st["answer"] != "Sorry: we will be quicker." {
		t.Errorf("the requester's status = %d %v", code, st)
	}
	if d, _ := own["details"].(map[string]any); d["concerns"] != earlier || slices.Contains(auditActions(own), "complaint.unlinked") {
		t.Errorf("own complaint: details %v, audit %v", own["details"], auditActions(own))
	}
	stranger := selfComplaint("demo-user-4@example.com")
	if d, _ := stranger["details"].(map[string]any); d["concerns"] != nil || !slices.Contains(auditActions(stranger), "complaint.unlinked") {
		t.Errorf("someone else's complaint: details %v, audit %v", stranger["details"], auditActions(stranger))
	}
	msg := e.smtp.WaitForMessage(t, id+".completion@datarights", 30*time.Second)
	if !strings.Contains(msg.Subject, "complaint") || !strings.Contains(strings.ReplaceAll(msg.Text, "\r\n", "\n"), "Our reply to your complaint:\n\n"+reply) {
		t.Errorf("the reply email (%s):\n%s", msg.Subject, msg.Text)
	}
}

func TestExplainAnsweredInTheRequestsLanguage(t *testing.T) {
	t.Parallel()
	e := setupNewTypes(t, nil, "", nil)
	body := ntTicket("webank", "explain", "demo-user-5", map[string]any{"text": "为什么我的微粒贷额度被下调？", "locale": "zh-CN"})
	id := e.file(body)
	e.waitStatus(id, "in_progress", 30*time.Second)
	answer := "您的额度由自动化模型根据近 6 个月的还款记录和收入变化计算得出；您可以要求人工复核。"
	if code, got := e.call("POST", "/api/v1/requests/"+id+"/answer", testToken, map[string]any{"answer": answer}); code != http.StatusOK {
		t.Fatalf("answer = %d %v", code, got)
	}
	e.waitStatus(id, "completed", 30*time.Second)
	msg := e.smtp.WaitForMessage(t, id+".completion@datarights", 30*time.Second)
	if !strings.Contains(msg.Subject, "自动化决策说明") || strings.Index(msg.Text, "您好") > strings.Index(msg.Text, "Hello") ||
		!strings.Contains(strings.ReplaceAll(msg.Text, "\r\n", "\n"), "我们的说明：\n\n"+answer) {
		t.Errorf("the explanation email (%s):\n%s", msg.Subject, msg.Text)
	}
	// In the console: an agent files an explain ticket, an approver writes
	// the explanation on its page.
	agent := consoleClient(t, e, staffToken("agent"))
	code, page := agent.post(t, "/console/tickets/new", url.Values{"product": {"webank"}, "right": {"explain"},
		"identities": {"user_id=demo-user-6"}, "delivery_email": {"demo-user-6@example.com"}, "method": {"face_check"},
		"reference": {"FC-6"}, "relation": {"self"}, "locale": {"en"}, "text": {"Why was my card payment declined?"},
		"nonce": {"explain-6"}, "action": {"file"}})
	m := regexp.MustCompile(`id="request-id">([0-9a-f-]{36})`).FindStringSubmatch(page)
	if code != http.StatusOK || m == nil {
		t.Fatalf("console ticket = %d %s", code, snippet(page))
	}
	consoleID := m[1]
	e.waitStatus(consoleID, "in_progress", 30*time.Second)
	approver := consoleClient(t, e, staffToken("approver"))
	if _, page := approver.get(t, "/console/requests/"+consoleID); !strings.Contains(page, `id="answer-form"`) || !strings.Contains(page, "Why was my card payment declined?") {
		t.Fatalf("the request page has no answer form or text: %s", snippet(page))
	}
	if _, page := agent.get(t, "/console/requests/"+consoleID); strings.Contains(page, `id="answer-form"`) {
		t.Error("an agent is offered the answer form")
	}
	explanation := "An automated fraud rule declined it: the merchant was new and the amount unusual."
	if code, page := approver.post(t, "/console/requests/"+consoleID+"/answer", url.Values{"answer": {explanation}}); code != http.StatusOK || !strings.Contains(page, explanation) {
		t.Fatalf("console answer = %d %s", code, snippet(page))
	}
	e.waitStatus(consoleID, "completed", 30*time.Second)
	msg = e.smtp.WaitForMessage(t, consoleID+".completion@datarights", 30*time.Second)
	if !strings.Contains(strings.ReplaceAll(msg.Text, "\r\n", "\n"), "Our explanation:\n\n"+explanation) {
		t.Errorf("the console's explanation email:\n%s", msg.Text)
	}

	// With the staff CLI.
	cliID := e.fileJSON(testToken, "--product", "webank", "--type", "explain", "--identity", "user_id=demo-user-8",
		"--delivery-email", "demo-user-8@example.com", "--verification", "face_check", "--locale", "en",
		"--text", "Why was my transfer held for review?")
	e.waitStatus(cliID, "in_progress", 30*time.Second)
	if out := e.mustCLI(staffToken("approver"), "answer", cliID, "--answer", "A rule holds first transfers to new payees for an hour."); !strings.Contains(out, "answered") {
		t.Errorf("requests answer printed %q", out)
	}
	e.waitStatus(cliID, "completed", 30*time.Second)

	// An explanation may be refused while it waits (trade secrets); a copy
	// whose stores are at work may not.
	secret := e.file(ntTicket("webank", "explain", "demo-user-9", map[string]any{"text": "Show me the credit model's weights."}))
	e.waitStatus(secret, "in_progress", 30*time.Second)
	if code, got := e.call("POST", "/api/v1/requests/"+secret+"/refuse", staffToken("approver"),
		map[string]any{"reason": "trade_secrets", "message": "The model's parameters are a trade secret; we explained the factors it uses."}); code != http.StatusOK {
		t.Fatalf("refuse an explanation = %d %v", code, got)
	}
	e.waitStatus(secret, "refused", 30*time.Second)
	e.smtp.WaitForMessage(t, secret+".refusal@datarights", 30*time.Second)

	// Explanations must say what they explain.
	if code, got := e.call("POST", "/api/v1/requests", testToken, ntTicket("webank", "explain", "demo-user-5", nil)); code != http.StatusBadRequest || fieldReasons(got)["text"] == "" {
		t.Errorf("explain without text = %d %v", code, got)
	}
}

// zipFiles reads a plain zip.
func zipFiles(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("the transferred archive is not a zip: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name] = b
	}
	return out
}

// checkOwnData checks a transferred archive holds exactly userID's rows of
// the bank's tables.
func (e *e2e) checkOwnData(files map[string][]byte, userID string) {
	t := e.t
	t.Helper()
	want, err := demo.Counts(context.Background(), e.bankURL, userID)
	if err != nil {
		t.Fatal(err)
	}
	for table, count := range want {
		var rows []map[string]any
		if err := json.Unmarshal(files["data/demo_bank/"+table+".json"], &rows); err != nil {
			t.Fatalf("%s.json: %v; files %v", table, err, keys(files))
		}
		if int64(len(rows)) != count {
			t.Errorf("%s: %d rows transferred, %d in the bank", table, len(rows), count)
		}
		for _, row := range rows {
			if row["user_id"] != userID {
				t.Errorf("%s: a row of %v was transferred for %s", table, row["user_id"], userID)
			}
		}
	}
	if _, ok := files["manifest.json"]; !ok {
		t.Errorf("no manifest.json in %v", keys(files))
	}
}

func TestTransferToAReceivingHandler(t *testing.T) {
	t.Parallel()
	rc := newTransferReceiver(t)
	s3srv := s3test.NewServer(t)
	s3srv.CreateBucket(t, "insurer-inbox")
	extra := fmt.Sprintf(`  - name: insurer
    display_name: Example Insurance
    products: [webank]
    purpose: {zh-CN: 为您办理保险。, en: To insure you.}
    legal_basis: {zh-CN: 应您的请求转移。, en: At your request (PIPL Art. 45).}
    s3:
      bucket: insurer-inbox
      prefix: datarights/
      endpoint: %s
      region: %s
      path_style: true
      access_key_env: INSURER_KEY
      secret_key_env: INSURER_SECRET
`, s3srv.Endpoint(), s3srv.Region())
	// The receivers list is the first thing NewTypesYAML writes: append
	// the S3 receiver to it.
	e := setupE2E(t, false, "")
	yaml := demo.ExtrasYAML(e.bankURL) + demo.NewTypesYAML(rc.srv.URL+"/datarights/transfers")
	yaml = strings.Replace(yaml, "\n# Minors", extra+"\n# Minors", 1)
	// The receiver's HTTPS certificate is checked against its own CA.
	yaml = strings.Replace(yaml, "      timeout: 30s\n", "      timeout: 30s\n    ca_file: "+rc.caFile(t)+"\n", 1)
	e.appendConfig(t, yaml)
	base := e.getenv
	env := map[string]string{"DEMO_TRANSFER_SECRET": transferSecret, "INSURER_KEY": s3srv.AccessKey(), "INSURER_SECRET": s3srv.SecretKey()}
	e.getenv = func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return base(k)
	}
	e.start()

	// An unknown receiver is refused, naming the configured ones.
	code, got := e.call("POST", "/api/v1/requests", testToken, ntTicket("webank", "transfer", "demo-user-3", map[string]any{"receiver": "elsewhere"}))
	if reason := fieldReasons(got)["receiver"]; code != http.StatusBadRequest || !strings.Contains(reason, "partner_wealth") || !strings.Contains(reason, "insurer") {
		t.Errorf("unknown receiver = %d %v", code, got)
	}
	if code, got := e.call("POST", "/api/v1/requests", testToken, ntTicket("webank", "transfer", "demo-user-3", nil)); code != http.StatusBadRequest || fieldReasons(got)["receiver"] == "" {
		t.Errorf("transfer without a receiver = %d %v", code, got)
	}
	// Only the person may move their data.
	agentTicket := ntTicket("webank", "transfer", "demo-user-3", map[string]any{"receiver": "partner_wealth", "requester_relation": "agent"})
	if code, got := e.call("POST", "/api/v1/requests", testToken, agentTicket); code != http.StatusBadRequest || fieldReasons(got)["requester_relation"] == "" {
		t.Errorf("transfer by an agent = %d %v", code, got)
	}

	// Over HTTPS push, signed.
	id := e.file(ntTicket("webank", "transfer", "demo-user-3", map[string]any{"receiver": "partner_wealth"}))
	done := e.waitStatus(id, "completed", 60*time.Second)
	select {
	case got := <-rc.got:
		if got != id {
			t.Fatalf("the receiver got request %s, want %s", got, id)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the receiver got nothing; refused: %v", rc.bad)
	}
	rc.mu.Lock()
	archive, bad := rc.archives[id], rc.bad
	rc.mu.Unlock()
	if len(bad) > 0 {
		t.Errorf("the receiver refused pushes: %v", bad)
	}
	e.checkOwnData(zipFiles(t, archive), "demo-user-3")
	trail := auditActions(done)
	for _, want := range []string{"transfer.conditions_checked", "export.assembled", "transfer.delivered", "request.completed", "export.purged"} {
		if !slices.Contains(trail, want) {
			t.Errorf("audit lacks %s: %v", want, trail)
		}
	}
	for _, ev := range done["audit"].([]any) {
		ev := ev.(map[string]any)
		if ev["action"] != "transfer.conditions_checked" {
			continue
		}
		cond := ev["detail"].(map[string]any)["conditions"].(map[string]any)
		for _, k := range []string{"identity_verified", "receiver_configured", "own_data", "technically_feasible"} {
			if cond[k] != true {
				t.Errorf("condition %s = %v", k, cond[k])
			}
		}
		if cond["purpose"] == "" || cond["legal_basis"] == "" {
			t.Errorf("conditions = %v", cond)
		}
	}
	msg := e.smtp.WaitForMessage(t, id+".completion@datarights", 30*time.Second)
	if len(msg.Attachments) != 0 || !strings.Contains(msg.Text, "transferred to 示例理财公司") {
		t.Errorf("the requester's email (%d attachments):\n%s", len(msg.Attachments), msg.Text)
	}

	// Into the receiver's S3 bucket.
	id = e.file(ntTicket("webank", "transfer", "demo-user-7", map[string]any{"receiver": "insurer"}))
	e.waitStatus(id, "completed", 60*time.Second)
	obj, err := s3srv.Client(t).GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("insurer-inbox"),
		Key: aws.String("datarights/personal-information-" + id + ".zip")})
	if err != nil {
		t.Fatalf("the receiver's bucket: %v", err)
	}
	data, err := io.ReadAll(obj.Body)
	obj.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	e.checkOwnData(zipFiles(t, data), "demo-user-7")
}

func TestNextOfKinNeedsApprovalAndTheDeceasedsArrangement(t *testing.T) {
	t.Parallel()
	e := setupNewTypes(t, nil, "", nil)
	kin := func(typ, user string) map[string]any {
		return ntTicket("webank", typ, user, map[string]any{"requester_relation": "next_of_kin",
			"verification": map[string]any{"method": "id_document", "reference": "death-cert-2026-0110"}})
	}
	// Next of kin may not cancel the account.
	if code, got := e.call("POST", "/api/v1/requests", testToken, kin("cancel_account", demo.DeceasedNoWish)); code != http.StatusBadRequest ||
		!strings.Contains(fieldReasons(got)["type"], "next of kin may ask for access, copy, correct or delete") {
		t.Errorf("next-of-kin cancellation = %d %v", code, got)
	}

	// Approved with the evidence, the access goes ahead.
	id := e.file(kin("access", demo.DeceasedNoWish))
	waiting := e.waitStatus(id, "awaiting_approval", 30*time.Second)
	if !slices.Contains(auditActions(waiting), "next_of_kin.needs_approval") {
		t.Errorf("audit = %v", auditActions(waiting))
	}
	if code, got := e.call("POST", "/api/v1/requests/"+id+"/approve", staffToken("approver"), map[string]any{"note": "ok"}); code != http.StatusBadRequest || fieldReasons(got)["evidence"] == "" {
		t.Errorf("approval without evidence = %d %v", code, got)
	}
	// Whoever filed it cannot approve it.
	evidence := map[string]any{"note": "checked", "evidence": "death certificate 2026-0110 and household register seen"}
	if code, _ := e.call("POST", "/api/v1/requests/"+id+"/approve", testToken, evidence); code != http.StatusForbidden {
		t.Errorf("approval by the filer = %d, want 403", code)
	}
	if code, got := e.call("POST", "/api/v1/requests/"+id+"/approve", staffToken("approver"), evidence); code != http.StatusOK {
		t.Fatalf("approval = %d %v", code, got)
	}
	done := e.waitStatus(id, "completed", 60*time.Second)
	if d, _ := done["details"].(map[string]any); d["evidence"] != evidence["evidence"] {
		t.Errorf("evidence not recorded: %v", done["details"])
	}

	// The deceased said no: refused with that reason.
	id = e.file(kin("copy", demo.DeceasedArranged))
	e.waitStatus(id, "awaiting_approval", 30*time.Second)
	if code, got := e.call("POST", "/api/v1/requests/"+id+"/approve", staffToken("approver"), evidence); code != http.StatusOK {
		t.Fatalf("approval = %d %v", code, got)
	}
	refused := e.waitStatus(id, "refused", 60*time.Second)
	refusal, _ := refused["refusal"].(map[string]any)
	if refusal["reason"] != "deceased_arranged_otherwise" || !strings.Contains(refusal["message"].(string), "arranged during their lifetime") {
		t.Errorf("refusal = %v", refusal)
	}
	msg := e.smtp.WaitForMessage(t, id+".refusal@datarights", 30*time.Second)
	if !strings.Contains(msg.Text, "arranged during their lifetime") {
		t.Errorf("refusal email:\n%s", msg.Text)
	}
}

func TestMinorsAgeRules(t *testing.T) {
	t.Parallel()
	e := setupNewTypes(t, nil, "", nil)

	// WeBank serves no one under 16: the teenager's own request is refused.
	id := e.file(ntTicket("webank", "copy", demo.TeenUnder16, nil))
	refused := e.waitStatus(id, "refused", 60*time.Second)
	refusal, _ := refused["refusal"].(map[string]any)
	if refusal["reason"] != "minor_age_rule" || !strings.Contains(refusal["message"].(string), "under 16") {
		t.Errorf("refusal = %v", refusal)
	}
	if d, _ := refused["details"].(map[string]any); d["age_band"] != "under_16" {
		t.Errorf("age band = %v", refused["details"])
	}
	e.smtp.WaitForMessage(t, id+".refusal@datarights", 30*time.Second)

	// Their guardian may withdraw consent for them.
	guardian := ntTicket("webank", "withdraw_consent", demo.TeenUnder16, map[string]any{"requester_relation": "guardian",
		"purposes": []string{"personalised_ads"}, "verification": map[string]any{"method": "id_document", "reference": "household-register-19"}})
	id = e.file(guardian)
	done := e.waitStatus(id, "completed", 60*time.Second)
	if d, _ := done["details"].(map[string]any); d["age_band"] != "under_16" {
		t.Errorf("age band = %v", done["details"])
	}
	if outcome, _ := done["outcome"].(map[string]any); !slices.Equal(anyStrings(outcome["withdrawn"]), []string{"personalised_ads"}) {
		t.Errorf("outcome = %v", done["outcome"])
	}
	// ... but not cancel the account.
	guardian["type"], guardian["purposes"] = "cancel_account", nil
	if code, got := e.call("POST", "/api/v1/requests", testToken, guardian); code != http.StatusBadRequest || !strings.Contains(fieldReasons(got)["type"], "a guardian may ask for") {
		t.Errorf("guardian cancellation = %d %v", code, got)
	}

	// WeChat: a child under 14 needs their guardian.
	id = e.file(ntTicket("wechat", "access", demo.ChildUnder14, nil))
	refused = e.waitStatus(id, "refused", 60*time.Second)
	if r, _ := refused["refusal"].(map[string]any); r["reason"] != "minor_age_rule" || !strings.Contains(r["message"].(string), "guardian must make this request") {
		t.Errorf("wechat child's refusal = %v", refused["refusal"])
	}
	id = e.file(ntTicket("wechat", "delete", demo.ChildUnder14, map[string]any{"requester_relation": "guardian",
		"verification": map[string]any{"method": "id_document", "reference": "birth-certificate-18"}}))
	if done := e.waitStatus(id, "completed", 60*time.Second); done["details"].(map[string]any)["age_band"] != "under_14" {
		t.Errorf("wechat guardian delete: %v", done["details"])
	}

	// An adult is served as before, and the band is recorded.
	id = e.file(ntTicket("webank", "access", "demo-user-2", nil))
	done = e.waitStatus(id, "completed", 60*time.Second)
	if d, _ := done["details"].(map[string]any); d["age_band"] != "adult" {
		t.Errorf("age band = %v", done["details"])
	}
}

// TestDevReceiverKeepsSignedTransfersOnly: `datarights dev`'s demo
// receiving handler stores a signed push and refuses an unsigned one.
func TestDevReceiverKeepsSignedTransfersOnly(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	target, err := startDevReceiver(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	id := "0190a0a0-0000-7000-8000-000000000001"
	push := func(sign bool) int {
		body := []byte("PK zip bytes")
		req, _ := http.NewRequest("POST", target, bytes.NewReader(body))
		req.Header.Set(jobs.TransferHeaderRequest, id)
		if sign {
			stores.SignHTTPRequest(req, []byte(devTransferSecret), body, time.Now())
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := push(false); code != http.StatusUnauthorized {
		t.Errorf("unsigned push = %d, want 401", code)
	}
	if _, err := os.Stat(filepath.Join(dir, id+".zip")); !os.IsNotExist(err) {
		t.Fatalf("an unsigned push was kept (%v)", err)
	}
	if code := push(true); code != http.StatusCreated {
		t.Errorf("signed push = %d, want 201", code)
	}
	if data, err := os.ReadFile(filepath.Join(dir, id+".zip")); err != nil || string(data) != "PK zip bytes" {
		t.Errorf("kept %q (%v)", data, err)
	}
}
