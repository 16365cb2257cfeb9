package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRefusalStatesItsReason refuses a self-service request that is waiting
// for its code, and checks that the requester is told why, once, and that
// the request stays refused.
func TestRefusalStatesItsReason(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "")
	_, body := e.call("POST", "/api/v1/self-service/requests", "", map[string]any{
		"product": "webank", "type": "copy", "email": "demo-user-11@example.com", "locale": "zh-CN"})
	id := body["id"].(string)
	codeMsg := e.smtp.WaitForMessages(t, 1, 30*time.Second)[0]

	code, body := e.call("POST", "/api/v1/requests/"+id+"/refuse", testToken, map[string]string{"reason": "because", "message": "x"})
	if code != http.StatusBadRequest || !strings.Contains(errorText(body), "excessive_or_repeated") {
		t.Fatalf("unknown reason = %d %v, want 400 listing the known reasons", code, body)
	}
	if code, _ := e.call("POST", "/api/v1/requests/"+id+"/refuse", testToken, map[string]string{"reason": "excessive_or_repeated"}); code != http.StatusBadRequest {
		t.Fatalf("refusal without a message = %d, want 400", code)
	}
	code, body = e.call("POST", "/api/v1/requests/"+id+"/refuse", testToken, map[string]string{
		"reason": "excessive_or_repeated", "message": "本月已就相同内容提交 5 次请求。"})
	if code != http.StatusOK || body["status"] != "refused" || body["refusal"] == nil {
		t.Fatalf("refuse = %d %v", code, body)
	}
	if code, _ := e.call("POST", "/api/v1/requests/"+id+"/refuse", testToken, map[string]string{"reason": "trade_secrets", "message": "x"}); code != http.StatusConflict {
		t.Errorf("second refusal = %d, want 409", code)
	}
	// The code no longer starts anything: no request awaits it.
	match := codeRE.FindStringSubmatch(codeMsg.Text)
	if code, _ := e.call("POST", "/api/v1/self-service/requests/"+id+"/verify", "", map[string]string{"code": match[1]}); code != http.StatusNotFound {
		t.Errorf("verify after refusal = %d, want 404", code)
	}

	waitFor(t, 30*time.Second, "refusal notice", func() bool { return len(e.smtp.Messages()) >= 2 })
	time.Sleep(300 * time.Millisecond)
	msgs := e.smtp.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d emails, want the code and one refusal notice", len(msgs))
	}
	notice := msgs[1]
	if notice.MessageID != id+".refusal@datarights" || !slices.Equal(notice.To, []string{"demo-user-11@example.com"}) {
		t.Errorf("notice id %q to %v", notice.MessageID, notice.To)
	}
	for _, want := range []string{"无端重复或超过合理限度", "本月已就相同内容提交 5 次请求", "unfoundedly repeated or excessive"} {
		if !strings.Contains(notice.Text, want) {
			t.Errorf("notice lacks %q:\n%s", want, notice.Text)
		}
	}
	_, done := e.call("GET", "/api/v1/requests/"+id, testToken, nil)
	want := []string{"request.received", "verification.code_sent", "request.refused", "notice.sent"}
	if got := auditActions(done); !slices.Equal(got, want) {
		t.Errorf("audit = %v, want %v", got, want)
	}
}

func errorText(body map[string]any) string {
	errObj, _ := body["error"].(map[string]any)
	text, _ := errObj["message"].(string)
	for _, f := range asSlice(errObj["fields"]) {
		fm := f.(map[string]any)
		text += " | " + fm["field"].(string) + ": " + fm["reason"].(string)
	}
	return text
}

// TestRepeatedRequestWaitsForStaff: the same right for the same person again
// within the window waits for staff, who approve one repeat and refuse the
// next as excessive.
func TestRepeatedRequestWaitsForStaff(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "")
	submit := func(ticket map[string]any) string {
		t.Helper()
		code, body := e.call("POST", "/api/v1/requests", testToken, ticket)
		if code != http.StatusCreated {
			t.Fatalf("submit = %d %v", code, body)
		}
		return body["id"].(string)
	}
	first := submit(copyTicket("demo-user-2"))
	e.waitStatus(first, "completed", 60*time.Second)

	// Named by email this time: still the same person.
	again := copyTicket("demo-user-2")
	again["subject"] = map[string]any{"identities": map[string]string{"user_id": "demo-user-2", "email": "demo-user-2@example.com"}}
	second := submit(again)
	waiting := e.waitStatus(second, "awaiting_approval", 30*time.Second)
	if !hasAction(waiting, "request.repeated") {
		t.Errorf("audit = %v", auditActions(waiting))
	}
	if code, _ := e.call("POST", "/api/v1/requests/"+second+"/approve", testToken, map[string]string{}); code != http.StatusBadRequest {
		t.Errorf("approve without a note = %d, want 400", code)
	}
	if code, body := e.call("POST", "/api/v1/requests/"+second+"/approve", testToken, map[string]string{"note": "the customer lost the first email"}); code != http.StatusOK {
		t.Fatalf("approve = %d %v", code, body)
	}
	e.waitStatus(second, "completed", 60*time.Second)

	// A third ticket, not a retry of the first: same body and staff within
	// minutes would be taken for one (no Idempotency-Key).
	thirdTicket := copyTicket("demo-user-2")
	thirdTicket["note"] = "third call this month"
	third := submit(thirdTicket)
	e.waitStatus(third, "awaiting_approval", 30*time.Second)
	// Four eyes: whoever filed the ticket cannot refuse it.
	refusal := map[string]string{"reason": "excessive_or_repeated", "message": "Two copies were sent this month."}
	if code, body := e.call("POST", "/api/v1/requests/"+third+"/refuse", testToken, refusal); code != http.StatusForbidden {
		t.Fatalf("refusal by the filer = %d %v, want 403", code, body)
	}
	if code, body := e.call("POST", "/api/v1/requests/"+third+"/refuse", staffToken("approver-2"), refusal); code != http.StatusOK {
		t.Fatalf("refuse = %d %v", code, body)
	}

	// Another right for the same person, or the same right for another
	// person, is no repeat.
	del := copyTicket("demo-user-2")
	del["type"] = "delete"
	e.waitStatus(submit(del), "completed", 60*time.Second)
	e.waitStatus(submit(copyTicket("demo-user-5")), "completed", 60*time.Second)
}
