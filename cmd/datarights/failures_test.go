package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/datarights/datarights/demo"
	"github.com/datarights/datarights/storage/s3test"
)

// failedStep returns the request's failed step of kind, or nil.
func failedStep(body map[string]any, kind string) map[string]any {
	for _, f := range asSlice(body["failed_steps"]) {
		if f := f.(map[string]any); f["step"] == kind {
			return f
		}
	}
	return nil
}

// TestStepsThatRunOutOfAttemptsFailVisiblyAndResume: with one attempt per
// job, a plan that cannot reach the store, a completion email the mail
// server refuses and a refusal notice it refuses each leave a visible,
// audited failure; one staff action (resume) runs the failed step again
// and the request finishes.
func TestStepsThatRunOutOfAttemptsFailVisiblyAndResume(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, false, "worker:\n  max_attempts: 1\n")
	proxy := e.throughProxy(t)
	e.start()
	resume := func(id string) {
		t.Helper()
		if code, out := e.call("POST", "/api/v1/requests/"+id+"/resume", staffToken("agent"), map[string]any{}); code != http.StatusOK {
			t.Fatalf("resume %s = %d %v", id, code, out)
		}
	}

	// The plan: the bank is down, so the email cannot be resolved.
	code, body := e.call("POST", "/api/v1/requests", testToken, byEmail(copyTicket("demo-user-10"), 10))
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	planID := body["id"].(string)
	failed := e.waitStatus(planID, "failed", 60*time.Second)
	if f := failedStep(failed, "plan"); f == nil || f["from_status"] != "verified" || f["error_class"] == "" {
		t.Fatalf("failed steps = %v", failed["failed_steps"])
	}
	if d := auditDetail(failed, "request.failed"); d["step"] != "plan" {
		t.Errorf("request.failed = %v", d)
	}
	if code, _ := e.call("POST", "/api/v1/requests/"+planID+"/resume", staffToken("auditor"), map[string]any{}); code != http.StatusForbidden {
		t.Errorf("an auditor resumes = %d, want 403", code)
	}
	proxy.up.Store(true)
	resume(planID)
	done := e.waitStatus(planID, "completed", 60*time.Second)
	if f := failedStep(done, "plan"); f["retried_at"] == nil || f["retried_by"] != "staff:agent" || !hasAction(done, "request.resumed") {
		t.Errorf("after resuming: %v, audit %v", f, auditActions(done))
	}
	e.smtp.WaitForMessage(t, planID+".completion@datarights", 30*time.Second)
	if code, _ := e.call("POST", "/api/v1/requests/"+planID+"/resume", staffToken("agent"), map[string]any{}); code != http.StatusConflict {
		t.Errorf("resuming a completed request = %d, want 409", code)
	}

	// The delivery: the mail server refuses the completion email.
	e.smtp.FailNext(1)
	ticket := copyTicket("demo-user-11")
	ticket["type"] = "delete"
	code, body = e.call("POST", "/api/v1/requests", testToken, ticket)
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	deliverID := body["id"].(string)
	failed = e.waitStatus(deliverID, "failed", 60*time.Second)
	if f := failedStep(failed, "deliver"); f == nil || f["from_status"] != "delivering" {
		t.Fatalf("failed steps = %v", failed["failed_steps"])
	}
	resume(deliverID)
	e.waitStatus(deliverID, "completed", 60*time.Second)
	e.smtp.WaitForMessage(t, deliverID+".completion@datarights", 30*time.Second)

	// A refusal notice: the request is refused either way; the notice's
	// failure shows on it and is sent when resumed.
	code, body = e.call("POST", "/api/v1/self-service/requests", "", map[string]any{
		"product": "webank", "type": "copy", "email": demo.Email(12), "locale": "en"})
	if code != http.StatusAccepted {
		t.Fatalf("self-service = %d %v", code, body)
	}
	refusedID := body["id"].(string)
	waitFor(t, 30*time.Second, "the code email", func() bool {
		_, b := e.call("GET", "/api/v1/requests/"+refusedID, testToken, nil)
		return hasAction(b, "verification.code_sent")
	})
	e.smtp.FailNext(1)
	if code, out := e.call("POST", "/api/v1/requests/"+refusedID+"/refuse", testToken, map[string]string{
		"reason": "identity_not_verified", "message": "We could not verify who is asking."}); code != http.StatusOK {
		t.Fatalf("refuse = %d %v", code, out)
	}
	var notice map[string]any
	waitFor(t, 60*time.Second, "the failed refusal notice", func() bool {
		_, b := e.call("GET", "/api/v1/requests/"+refusedID, testToken, nil)
		notice = b
		return failedStep(b, "notice") != nil
	})
	if notice["status"] != "refused" || auditDetail(notice, "step.failed")["notice"] != "refusal" {
		t.Errorf("after the failed notice: status %v, step.failed %v", notice["status"], auditDetail(notice, "step.failed"))
	}
	resume(refusedID)
	e.smtp.WaitForMessage(t, refusedID+".refusal@datarights", 30*time.Second)
}

// TestRetriedTicketWithoutKeyIsNotFiledTwice: a client that lost the answer
// to a POST and sends the same ticket again, with no Idempotency-Key, gets
// the first request back (200), not a second one; another body is a new
// ticket, and so is the same body from another member of staff.
func TestRetriedTicketWithoutKeyIsNotFiledTwice(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "")
	ticket := copyTicket("demo-user-14")
	code, first := e.call("POST", "/api/v1/requests", testToken, ticket)
	if code != http.StatusCreated {
		t.Fatalf("first = %d %v", code, first)
	}
	code, again := e.call("POST", "/api/v1/requests", testToken, ticket)
	if code != http.StatusOK || again["id"] != first["id"] {
		t.Errorf("retry = %d %v, want 200 with %v", code, again["id"], first["id"])
	}
	code, other := e.call("POST", "/api/v1/requests", staffToken("agent"), ticket)
	if code != http.StatusCreated || other["id"] == first["id"] {
		t.Errorf("the same body from another agent = %d %v", code, other["id"])
	}
	ticket["note"] = "a different ticket"
	if code, _ := e.call("POST", "/api/v1/requests", testToken, ticket); code != http.StatusCreated {
		t.Errorf("another body = %d, want 201", code)
	}
}

// TestDatabaseOutageAnswers503: with the service's database stopped from
// under it, the API answers 503 with Retry-After, not 500.
func TestDatabaseOutageAnswers503(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, false, "")
	// The service reaches its own database through a switchable proxy.
	proxy := e.serviceThroughProxy(t)
	proxy.up.Store(true)
	e.start()
	if code, body := e.call("GET", "/api/v1/requests", testToken, nil); code != http.StatusOK {
		t.Fatalf("list = %d %v", code, body)
	}
	proxy.up.Store(false)
	proxy.dropAll()
	req, err := http.NewRequest("POST", e.base+"/api/v1/requests", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("during the outage = %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	proxy.up.Store(true)
	waitFor(t, 30*time.Second, "the database to be back", func() bool {
		code, _ := e.call("GET", "/api/v1/requests", testToken, nil)
		return code == http.StatusOK
	})
}

// TestNoticesAndAssemblyThatRunOutOfAttemptsResume: with the mail server
// refusing everything and one attempt per job, a delete's acknowledgement,
// its third party's notice and its answer all give up: each shows on the
// request and is audited; one resume sends them all. A copy whose archive
// cannot be stored (its bucket is missing) fails at assembly and completes
// once resumed after the bucket exists.
func TestNoticesAndAssemblyThatRunOutOfAttemptsResume(t *testing.T) {
	t.Parallel()
	srv := s3test.NewServer(t)
	e := setupE2E(t, false, "")
	e.appendConfig(t, demo.ExtrasYAML(e.bankURL)+fmt.Sprintf(`worker:
  max_attempts: 1
exports:
  destination: s3
  s3:
    bucket: late-bucket
    endpoint: %s
    region: us-east-1
    path_style: true
    access_key_env: EXPORTS_ACCESS
    secret_key_env: EXPORTS_SECRET
`, srv.Endpoint()))
	base := e.getenv
	e.getenv = func(k string) string {
		switch k {
		case "EXPORTS_ACCESS":
			return srv.AccessKey()
		case "EXPORTS_SECRET":
			return srv.SecretKey()
		}
		return base(k)
	}
	e.start()
	resume := func(id string) {
		t.Helper()
		if code, out := e.call("POST", "/api/v1/requests/"+id+"/resume", staffToken("agent"), map[string]any{}); code != http.StatusOK {
			t.Fatalf("resume %s = %d %v", id, code, out)
		}
	}

	e.smtp.FailNext(1 << 30)
	// demo-user-8 settled a loan (the credit bureau is told) and has none
	// open (which would block the delete).
	ticket := copyTicket("demo-user-8")
	ticket["type"] = "delete"
	code, body := e.call("POST", "/api/v1/requests", testToken, ticket)
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	var failed map[string]any
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, failed = e.call("GET", "/api/v1/requests/"+id, testToken, nil)
		if failed["status"] == "failed" && failedStep(failed, "notice") != nil && failedStep(failed, "recipient_notice") != nil &&
			failedStep(failed, "deliver") != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %v, failed steps %v, recipients %v, audit %v", failed["status"], failed["failed_steps"], failed["recipients"], auditActions(failed))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if d := auditDetail(failed, "step.failed"); d["step"] == nil {
		t.Errorf("no step.failed event: %v", auditActions(failed))
	}
	e.smtp.FailNext(0)
	resume(id)
	e.waitStatus(id, "completed", 60*time.Second)
	for _, msgID := range []string{id + ".acknowledgement@datarights", id + ".notice.credit_bureau@datarights", id + ".completion@datarights"} {
		e.smtp.WaitForMessage(t, msgID, 30*time.Second)
	}

	code, body = e.call("POST", "/api/v1/requests", testToken, copyTicket("demo-user-16"))
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	copyID := body["id"].(string)
	failed = e.waitStatus(copyID, "failed", 60*time.Second)
	if f := failedStep(failed, "assemble"); f == nil || f["from_status"] != "assembling" {
		t.Fatalf("failed steps = %v", failed["failed_steps"])
	}
	srv.CreateBucket(t, "late-bucket")
	resume(copyID)
	e.waitStatus(copyID, "completed", 60*time.Second)
}
