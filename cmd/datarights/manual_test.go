package main

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/datarights/datarights/demo"
)

const paperArchive = `  - name: paper_archive
    kind: manual
    key: user_id
    products: [webank]
    instructions: "Search the branch paper archive (cabinet B) by customer number; shred the subject's forms."
`

// TestManualStoreWaitsForStaff: a delete across the bank and a paper archive
// deletes in the bank at once, waits for staff to confirm the archive, and
// completes only then.
func TestManualStoreWaitsForStaff(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, paperArchive)
	ticket := copyTicket("demo-user-12")
	ticket["type"] = "delete"
	code, body := e.call("POST", "/api/v1/requests", testToken, ticket)
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)

	paperTask := e.waitForWaitingTask(id, "paper_archive", "task.succeeded")
	_, waiting := e.call("GET", "/api/v1/requests/"+id, testToken, nil)
	if waiting["status"] != "in_progress" {
		t.Fatalf("with a task waiting the request is %v", waiting["status"])
	}
	counts, err := demo.Counts(context.Background(), e.bankURL, "demo-user-12")
	if err != nil {
		t.Fatal(err)
	}
	for table, n := range counts {
		if n != 0 {
			t.Errorf("bank table %s still has %d rows of the subject", table, n)
		}
	}

	confirm := "/api/v1/requests/" + id + "/tasks/" + paperTask + "/confirm"
	if code, _ := e.call("POST", confirm, testToken, map[string]any{"found": true, "records": 3}); code != http.StatusBadRequest {
		t.Errorf("confirm without a note = %d, want 400", code)
	}
	if code, _ := e.call("POST", confirm, testToken, map[string]any{"note": "x"}); code != http.StatusBadRequest {
		t.Errorf("confirm without found = %d, want 400", code)
	}
	code, body = e.call("POST", confirm, testToken, map[string]any{"found": true, "records": 3, "note": "3 account forms shredded, certificate SH-0912"})
	if code != http.StatusOK {
		t.Fatalf("confirm = %d %v", code, body)
	}
	if code, _ := e.call("POST", confirm, testToken, map[string]any{"found": true, "records": 3, "note": "again"}); code != http.StatusConflict {
		t.Errorf("second confirm = %d, want 409", code)
	}
	done := e.waitStatus(id, "completed", 30*time.Second)
	for _, want := range []string{"task.waiting", "task.confirmed", "request.completed"} {
		if !hasAction(done, want) {
			t.Errorf("audit lacks %s: %v", want, auditActions(done))
		}
	}
	msgs := e.smtp.WaitForMessages(t, 1, 30*time.Second)
	if !slices.Equal(msgs[0].To, []string{"demo-user-12@example.com"}) {
		t.Errorf("completion went to %v", msgs[0].To)
	}
}

// TestManualStoreInACopy: a copy waits for the archive too, and the archive
// built afterwards holds the bank's data; the manual part is noted, not
// invented.
func TestManualStoreInACopy(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, paperArchive)
	code, body := e.call("POST", "/api/v1/requests", testToken, copyTicket("demo-user-14"))
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	paperTask := e.waitForWaitingTask(id, "paper_archive", "")
	code, body = e.call("POST", "/api/v1/requests/"+id+"/tasks/"+paperTask+"/confirm", testToken,
		map[string]any{"found": true, "records": 2, "note": "2 signed forms scanned and posted to the customer"})
	if code != http.StatusOK {
		t.Fatalf("confirm = %d %v", code, body)
	}
	e.waitStatus(id, "completed", 30*time.Second)
	msg := e.smtp.WaitForMessages(t, 1, 30*time.Second)[0]
	e.checkExport(msg, "demo-user-14")
}

// waitForWaitingTask waits until the request's task in store waits for
// staff (and, when given, the audit holds action too), and returns the
// task's id.
func (e *e2e) waitForWaitingTask(id, store, action string) string {
	e.t.Helper()
	var taskID string
	waitFor(e.t, 30*time.Second, "the "+store+" task to wait", func() bool {
		_, b := e.call("GET", "/api/v1/requests/"+id, testToken, nil)
		for _, task := range asSlice(b["tasks"]) {
			if tm := task.(map[string]any); tm["store"] == store && tm["status"] == "waiting" {
				taskID = tm["id"].(string)
			}
		}
		return taskID != "" && (action == "" || hasAction(b, action))
	})
	return taskID
}
