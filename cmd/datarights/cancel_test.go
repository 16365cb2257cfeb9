package main

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/demo"
)

// bankRows returns every row of the demo bank's tables and loan book as
// text, by table and user_id, to compare before and after row by row.
func (e *e2e) bankRows(t *testing.T) map[string]map[string][]string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.bankURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	out := map[string]map[string][]string{}
	for _, table := range []string{"users", "cards", "transactions", "consents", "loans"} {
		rows, err := conn.Query(ctx, "SELECT user_id, t::text FROM "+table+" t ORDER BY t::text")
		if err != nil {
			t.Fatal(err)
		}
		out[table] = map[string][]string{}
		for rows.Next() {
			var user, row string
			if err := rows.Scan(&user, &row); err != nil {
				t.Fatal(err)
			}
			out[table][user] = append(out[table][user], row)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// checkOthersUnchanged fails for any row of a user other than subject that
// differs between before and after.
func checkOthersUnchanged(t *testing.T, before, after map[string]map[string][]string, subject string) {
	t.Helper()
	for table, users := range before {
		for user, rows := range users {
			if user != subject && !slices.Equal(after[table][user], rows) {
				t.Errorf("%s rows of %s changed:\n before %v\n after  %v", table, user, rows, after[table][user])
			}
		}
	}
}

func cancelTicket(userID string) map[string]any {
	ticket := copyTicket(userID)
	ticket["type"] = "cancel_account"
	return ticket
}

// TestCancelBlockedByPrecheckChangesNothing: demo-user-5 has an open loan.
// The cancellation is refused with the pre-check's reason, told to the
// requester, and not one row of the bank changes.
func TestCancelBlockedByPrecheckChangesNothing(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, false, "")
	e.appendConfig(t, demo.ExtrasYAML(e.bankURL))
	e.start()
	before := e.bankRows(t)

	code, body := e.call("POST", "/api/v1/requests", testToken, cancelTicket("demo-user-5"))
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	done := e.waitStatus(id, "refused", 60*time.Second)
	refusal, _ := done["refusal"].(map[string]any)
	if refusal["reason"] != "cancellation_blocked" || !slices.Equal(anyStrings(refusal["prechecks"]), []string{"open_loans"}) ||
		!strings.Contains(refusal["message"].(string), "loan that is not repaid") {
		t.Errorf("refusal = %v", refusal)
	}
	if tasks, _ := done["tasks"].([]any); len(tasks) != 0 {
		t.Errorf("a blocked cancellation has tasks: %v", tasks)
	}
	msg := e.smtp.WaitForMessage(t, id+".refusal@datarights", 30*time.Second)
	if !strings.Contains(msg.Text, "暂不满足注销条件") || !strings.Contains(msg.Text, "loan that is not repaid") ||
		!strings.Contains(msg.Text, "说明：您名下仍有未结清的贷款") {
		t.Errorf("refusal email %s:\n%s", msg.MessageID, msg.Text)
	}
	after := e.bankRows(t)
	checkOthersUnchanged(t, before, after, "")
	// Nothing in the consent ledger either.
	var n int
	if err := e.db.QueryRow(context.Background(), "SELECT count(*) FROM consent_events").Scan(&n); err != nil || n != 0 {
		t.Errorf("consent ledger has %d events (err %v), want none", n, err)
	}
}

// TestCancelAccountErasesEverythingOnce: demo-user-12 (two settled loans,
// no open one) cancels. Every table is erased, the loan still under its
// retention period is restricted, every consent is withdrawn in the ledger,
// nobody else's rows change; asking again is answered with the
// cancellation, and a correction of the cancelled account finds nothing to
// correct.
func TestCancelAccountErasesEverythingOnce(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, false, "")
	e.appendConfig(t, demo.ExtrasYAML(e.bankURL))
	e.start()
	before := e.bankRows(t)

	// Cancelling needs a face check or an ID document.
	weak := cancelTicket("demo-user-12")
	weak["verification"] = map[string]any{"method": "phone_call"}
	if code, body := e.call("POST", "/api/v1/requests", testToken, weak); code != http.StatusBadRequest ||
		!strings.Contains(body["error"].(map[string]any)["fields"].([]any)[0].(map[string]any)["reason"].(string), "face_check") {
		t.Fatalf("cancel verified by phone = %d %v, want 400 naming face_check", code, body)
	}

	ticket := cancelTicket("demo-user-12")
	ticket["subject"] = map[string]any{"identities": map[string]string{"email": demo.Email(12)}}
	code, body := e.call("POST", "/api/v1/requests", testToken, ticket)
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	done := e.waitStatus(id, "completed", 90*time.Second)
	for _, want := range []string{"identity.resolved", "consent.withdrawn", "request.planned", "request.completed"} {
		if !hasAction(done, want) {
			t.Errorf("audit lacks %s: %v", want, auditActions(done))
		}
	}
	after := e.bankRows(t)
	checkOthersUnchanged(t, before, after, "demo-user-12")
	for _, table := range []string{"users", "cards", "transactions", "consents"} {
		if rows := after[table]["demo-user-12"]; len(rows) != 0 {
			t.Errorf("%s still holds demo-user-12: %v", table, rows)
		}
	}
	if rows := after["loans"]["demo-user-12"]; len(rows) != 1 || strings.HasSuffix(rows[0], ",)") {
		t.Errorf("loans of demo-user-12 = %v, want the 2024 loan, restricted", rows)
	}
	var withdrawn int
	if err := e.db.QueryRow(context.Background(), `SELECT count(*) FROM consent_events
		WHERE subject = 'demo-user-12' AND NOT granted AND source = 'cancellation' AND request_id = $1`, id).Scan(&withdrawn); err != nil || withdrawn != 4 {
		t.Errorf("%d withdrawals in the ledger (err %v), want the 4 purposes", withdrawn, err)
	}
	msg := e.smtp.WaitForMessage(t, id+".completion@datarights", 30*time.Second)
	if !strings.Contains(msg.Text, "This cannot be undone") || !strings.Contains(msg.Text, "注销不可撤销") || !strings.Contains(msg.Text, "2029-03-12") {
		t.Errorf("completion email:\n%s", msg.Text)
	}

	// Later requests about the cancelled account, by the email it had.
	for _, kind := range []string{"cancel_account", "correct"} {
		again := cancelTicket("demo-user-12")
		again["type"] = kind
		again["subject"] = map[string]any{"identities": map[string]string{"email": demo.Email(12)}}
		// A new ticket, not a retry of the first (same body, same staff,
		// within minutes: taken for a retry without an Idempotency-Key).
		again["note"] = "asked again at the counter"
		if kind == "correct" {
			again["corrections"] = map[string]string{"city": "杭州"}
		}
		code, body := e.call("POST", "/api/v1/requests", testToken, again)
		if code != http.StatusCreated {
			t.Fatalf("%s again = %d %v", kind, code, body)
		}
		laterID := body["id"].(string)
		later := e.waitStatus(laterID, "completed", 60*time.Second)
		outcome, _ := later["outcome"].(map[string]any)
		if outcome["cancelled_by"] != id || !hasAction(later, "account.already_cancelled") {
			t.Errorf("%s of a cancelled account: outcome %v, audit %v", kind, outcome, auditActions(later))
		}
		if tasks, _ := later["tasks"].([]any); len(tasks) != 0 {
			t.Errorf("%s of a cancelled account ran tasks: %v", kind, tasks)
		}
		if recipients, _ := later["recipients"].([]any); len(recipients) != 0 {
			t.Errorf("%s of a cancelled account notified third parties again: %v", kind, recipients)
		}
		if m := e.smtp.WaitForMessage(t, laterID+".completion@datarights", 30*time.Second); !strings.Contains(m.Text, "there is no account left") {
			t.Errorf("answer to a request about a cancelled account:\n%s", m.Text)
		}
	}
	checkOthersUnchanged(t, before, e.bankRows(t), "demo-user-12")
}

// TestWithdrawConsent: demo-user-7 withdraws consent to personalised ads
// and location. The ledger records it with the request; the bank's consent
// rows for those purposes turn false and no other row changes; the ledger
// API shows the history.
func TestWithdrawConsent(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "")
	before := e.bankRows(t)
	ticket := copyTicket("demo-user-7")
	ticket["type"], ticket["purposes"] = "withdraw_consent", []string{"personalised_ads", "location"}
	code, body := e.call("POST", "/api/v1/requests", testToken, ticket)
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	done := e.waitStatus(id, "completed", 60*time.Second)
	if !hasAction(done, "consent.withdrawn") {
		t.Errorf("audit: %v", auditActions(done))
	}
	after := e.bankRows(t)
	checkOthersUnchanged(t, before, after, "demo-user-7")
	for table, users := range before {
		if table != "consents" && !slices.Equal(after[table]["demo-user-7"], users["demo-user-7"]) {
			t.Errorf("%s of demo-user-7 changed", table)
		}
	}
	for _, row := range after["consents"]["demo-user-7"] {
		withdrawnPurpose := strings.Contains(row, ",personalised_ads,") || strings.Contains(row, ",location,")
		if withdrawnPurpose && !strings.Contains(row, ",f,") {
			t.Errorf("consent not withdrawn: %s", row)
		}
	}
	for i, row := range before["consents"]["demo-user-7"] {
		if !strings.Contains(row, ",personalised_ads,") && !strings.Contains(row, ",location,") && after["consents"]["demo-user-7"][i] != row {
			t.Errorf("a consent not named changed: %s → %s", row, after["consents"]["demo-user-7"][i])
		}
	}
	msg := e.smtp.WaitForMessages(t, 1, 30*time.Second)[0]
	if !strings.Contains(msg.Text, "基于位置的服务、个性化广告推荐") || !strings.Contains(msg.Text, "does not affect processing carried out") {
		t.Errorf("completion email:\n%s", msg.Text)
	}

	code, ledger := e.call("POST", "/api/v1/consents/lookup", testToken, map[string]any{
		"product": "webank", "subject": map[string]any{"identities": map[string]string{"email": demo.Email(7)}}})
	if code != http.StatusOK {
		t.Fatalf("lookup = %d %v", code, ledger)
	}
	states := map[string]bool{}
	for _, c := range ledger["consents"].([]any) {
		c := c.(map[string]any)
		if c["granted"] != nil {
			states[c["purpose"].(string)] = c["granted"].(bool)
		}
	}
	if len(states) != 2 || states["personalised_ads"] || states["location"] {
		t.Errorf("ledger states = %v (%v)", states, ledger)
	}
}

func anyStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, len(list))
	for i, s := range list {
		out[i], _ = s.(string)
	}
	return out
}
