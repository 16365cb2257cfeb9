package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/datarights/datarights/demo"
)

var ackLinkRE = regexp.MustCompile(`https?://\S+/recipients/ack/(\S+)`)

// recipient returns the request's notice to name, as the API shows it.
func recipientNotice(t *testing.T, body map[string]any, name string) map[string]any {
	t.Helper()
	for _, n := range body["recipients"].([]any) {
		if n := n.(map[string]any); n["recipient"] == name {
			return n
		}
	}
	t.Fatalf("no notice to %s: %v", name, body["recipients"])
	return nil
}

// TestRecipientsToldToEraseAndAcknowledge: a delete completes; the credit
// bureau gets an email with the customer's identifiers and a link, whose
// page changes nothing until the bureau confirms with its button; a
// webhook recipient is called with a signed notice, answers 202, and
// acknowledges later with a signed callback (a forged one is refused).
func TestRecipientsToldToEraseAndAcknowledge(t *testing.T) {
	t.Parallel()
	var secret [16]byte
	_, _ = rand.Read(secret[:])
	insurerSecret := hex.EncodeToString(secret[:])
	var (
		mu    sync.Mutex
		calls []map[string]any
	)
	insurer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !verifyDatarights(insurerSecret, r, body) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var call map[string]any
		_ = json.Unmarshal(body, &call)
		call["idempotency_key"] = r.Header.Get("Idempotency-Key")
		mu.Lock()
		calls = append(calls, call)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(insurer.Close)

	e := setupE2E(t, false, "")
	const env = "INSURER_WEBHOOK_SECRET"
	e.appendConfig(t, demo.ExtrasYAML(e.bankURL)+fmt.Sprintf(`  - name: insurer
    products: [webank]
    webhook:
      url: %s/erasures
      secret_env: %s
`, insurer.URL, env))
	base := e.getenv
	e.getenv = func(k string) string {
		if k == env {
			return insurerSecret
		}
		return base(k)
	}
	e.start()

	// demo-user-3 settled a loan: the credit bureau received their data.
	ticket := copyTicket("demo-user-3")
	ticket["type"] = "delete"
	code, body := e.call("POST", "/api/v1/requests", testToken, ticket)
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	e.waitStatus(id, "completed", 60*time.Second)

	// The bureau's email.
	notice := e.smtp.WaitForMessage(t, id+".notice.credit_bureau@datarights", 30*time.Second)
	if len(notice.To) != 1 || notice.To[0] != "privacy@credit-bureau.example" || !strings.Contains(notice.Text, "user_id: demo-user-3") {
		t.Errorf("notice to %v:\n%s", notice.To, notice.Text)
	}
	link := ackLinkRE.FindStringSubmatch(notice.Text)
	if link == nil {
		t.Fatalf("no acknowledgement link in:\n%s", notice.Text)
	}
	page := e.base + "/recipients/ack/" + link[1]
	completion := e.smtp.WaitForMessage(t, id+".completion@datarights", 30*time.Second)
	if !strings.Contains(completion.Text, "百行征信 (Baihang Credit)") {
		t.Errorf("the requester is not told who was notified:\n%s", completion.Text)
	}

	// Opening the link (as a mail scanner would) acknowledges nothing.
	resp, err := e.client.Get(page)
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(html), "<form method=\"post\">") {
		t.Fatalf("ack page = %d:\n%s", resp.StatusCode, html)
	}
	_, body = e.call("GET", "/api/v1/requests/"+id, testToken, nil)
	if n := recipientNotice(t, body, "credit_bureau"); n["status"] != "sent" || n["acknowledged_at"] != nil {
		t.Errorf("after opening the link the notice is %v", n)
	}
	resp, err = e.client.PostForm(page, url.Values{"note": {"deleted from the bureau's files"}})
	if err != nil {
		t.Fatal(err)
	}
	html, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(html), "Confirmed") {
		t.Fatalf("ack submit = %d:\n%s", resp.StatusCode, html)
	}
	if resp, err := e.client.Get(e.base + "/recipients/ack/not-a-token"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown token = %v %v, want 404", resp.StatusCode, err)
	}

	// The insurer's webhook.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(calls)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	if len(calls) != 1 {
		t.Fatalf("insurer called %d times, want 1", len(calls))
	}
	call := calls[0]
	mu.Unlock()
	if call["kind"] != "erasure_notice" || call["right"] != "delete" || call["idempotency_key"] != id+".insurer" ||
		call["subject"].(map[string]any)["identities"].(map[string]any)["user_id"] != "demo-user-3" {
		t.Errorf("insurer's call = %v", call)
	}
	// The call arrives before the worker records it as sent.
	waitFor(t, 30*time.Second, "the insurer's notice to be recorded as sent", func() bool {
		_, body := e.call("GET", "/api/v1/requests/"+id, testToken, nil)
		return recipientNotice(t, body, "insurer")["status"] == "sent"
	})
	ack := []byte(`{"acknowledged": true, "note": "policy records erased"}`)
	ackURL := call["ack_url"].(string)
	if code, _ := e.callback(ackURL, ack, sign("not the secret at all", time.Now(), ackURL, ack)); code != http.StatusUnauthorized {
		t.Errorf("forged acknowledgement = %d, want 401", code)
	}
	_, body = e.call("GET", "/api/v1/requests/"+id, testToken, nil)
	if n := recipientNotice(t, body, "insurer"); n["status"] != "sent" {
		t.Errorf("after a forged acknowledgement the notice is %v", n)
	}
	// A signed acknowledgement whose note holds a NUL (escaped, or raw) or
	// invalid UTF-8: a 400 naming the note, and the notice stays sent.
	for name, bad := range map[string][]byte{
		"escaped NUL":   []byte(`{"acknowledged": true, "note": "erased\u0000"}`),
		"raw NUL":       []byte("{\"acknowledged\": true, \"note\": \"erased\x00\"}"),
		"invalid UTF-8": []byte("{\"acknowledged\": true, \"note\": \"erased\xff\"}"),
	} {
		code, out := e.callback(ackURL, bad, sign(insurerSecret, time.Now(), ackURL, bad))
		if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out), "note") && !strings.Contains(fmt.Sprint(out), "UTF-8") {
			t.Errorf("acknowledgement with %s in its note = %d %v, want 400 naming the note or the encoding", name, code, out)
		}
	}
	_, body = e.call("GET", "/api/v1/requests/"+id, testToken, nil)
	if n := recipientNotice(t, body, "insurer"); n["status"] != "sent" {
		t.Errorf("after acknowledgements with bad text the notice is %v", n)
	}
	if code, out := e.callback(ackURL, ack, sign(insurerSecret, time.Now(), ackURL, ack)); code != http.StatusOK || out["status"] != "acknowledged" {
		t.Errorf("acknowledgement = %d %v", code, out)
	}

	_, body = e.call("GET", "/api/v1/requests/"+id, testToken, nil)
	for _, name := range []string{"credit_bureau", "insurer"} {
		n := recipientNotice(t, body, name)
		if n["status"] != "acknowledged" || n["acknowledged_at"] == nil {
			t.Errorf("notice to %s = %v", name, n)
		}
	}
	if n := countAction(body, "recipient.acknowledged"); n != 2 {
		t.Errorf("%d recipient.acknowledged events, want 2: %v", n, auditActions(body))
	}
	// Staff acknowledging again changes nothing.
	if code, n := e.call("POST", "/api/v1/requests/"+id+"/recipients/insurer/acknowledge", testToken, map[string]string{"note": "phoned"}); code != http.StatusOK || n["note"] != "policy records erased" {
		t.Errorf("second acknowledgement = %d %v", code, n)
	}
}
