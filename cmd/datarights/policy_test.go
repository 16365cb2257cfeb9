package main

// End-to-end tests of the policy rules of issue 12 (part A): identities
// normalised before lookup and ambiguous identities stopped for staff,
// verification and pre-checks by right, recipients told only when they
// received the person's data, and the demo's retention periods.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/demo"
	"github.com/datarights/datarights/storage/storagetest"
)

// accessTicket is a staff access ticket naming the person by identities.
func accessTicket(identities map[string]string, deliveryEmail string) map[string]any {
	return map[string]any{
		"product": "webank", "type": "access", "locale": "en",
		"subject":        map[string]any{"identities": identities},
		"delivery_email": deliveryEmail,
		"verification":   map[string]any{"method": "face_check", "reference": "FC-1"},
	}
}

// taskRows returns, per dataset, the rows a request's tasks report, and
// whether every task found the subject.
func taskRows(body map[string]any) (map[string]float64, bool) {
	rows, resolved := map[string]float64{}, len(asSlice(body["tasks"])) > 0
	for _, task := range asSlice(body["tasks"]) {
		report, _ := task.(map[string]any)["report"].(map[string]any)
		if report == nil || report["resolved"] != true {
			resolved = false
			continue
		}
		for _, ds := range asSlice(report["datasets"]) {
			d := ds.(map[string]any)
			rows[d["name"].(string)] += d["rows"].(float64)
		}
	}
	return rows, resolved
}

func (e *e2e) bankExec(t *testing.T, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.bankURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatal(err)
	}
}

// TestPolicyIdentitiesNormalised: an email typed with capitals and a
// trailing space, and a phone written +86…, 0086… or with spaces, find the
// customer the demo bank holds as demo-user-7@example.com and 13800000007.
func TestPolicyIdentitiesNormalised(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "")
	want, err := demo.Counts(context.Background(), e.bankURL, demo.UserID(7))
	if err != nil {
		t.Fatal(err)
	}
	for _, ids := range []map[string]string{
		{"email": "Demo-User-7@Example.com "},
		{"phone": "+86 138 0000 0007"},
		{"phone": "0086 13800000007"},
	} {
		code, body := e.call("POST", "/api/v1/requests", testToken, accessTicket(ids, demo.Email(7)))
		if code != http.StatusCreated {
			t.Fatalf("submit %v = %d %v", ids, code, body)
		}
		done := e.waitStatus(body["id"].(string), "completed", 60*time.Second)
		rows, resolved := taskRows(done)
		if !resolved {
			t.Errorf("%v: the store did not find demo-user-7: %v", ids, done["tasks"])
		}
		for table, n := range want {
			if rows[table] != float64(n) {
				t.Errorf("%v: %s has %v rows in the report, want %d", ids, table, rows[table], n)
			}
		}
	}
	// The lookup before filing agrees.
	code, body := e.call("POST", "/api/v1/lookup", testToken, map[string]any{"product": "webank",
		"identities": map[string]string{"email": "DEMO-USER-7@example.COM", "phone": "138-0000-0007"}})
	if code != http.StatusOK || body["outcome"] != "one_person" {
		t.Errorf("lookup = %d %v, want one_person", code, body)
	}
}

// TestPolicyAmbiguousIdentityAwaitsStaff: a phone number two customers
// share stops the request at awaiting_approval with "matches several
// people" in its audit trail (not "no data found"); approved, it goes
// ahead acting on nobody's data.
func TestPolicyAmbiguousIdentityAwaitsStaff(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "")
	e.bankExec(t, "UPDATE users SET phone = $1 WHERE user_id = $2", demo.Phone(8), demo.UserID(9))
	code, body := e.call("POST", "/api/v1/requests", testToken,
		accessTicket(map[string]string{"phone": "+86 " + demo.Phone(8)}, demo.Email(8)))
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	held := e.waitStatus(id, "awaiting_approval", 60*time.Second)
	var reason any
	for _, ev := range asSlice(held["audit"]) {
		if ev := ev.(map[string]any); ev["action"] == "identity.ambiguous" {
			reason = ev["detail"].(map[string]any)["reason"]
		}
	}
	if reason != "matches several people" {
		t.Fatalf("reason = %v; audit %v", reason, auditActions(held))
	}
	if tasks := asSlice(held["tasks"]); len(tasks) != 0 {
		t.Errorf("an ambiguous request has tasks: %v", tasks)
	}
	if out, _ := held["outcome"].(map[string]any); out == nil || len(asSlice(out["ambiguous"])) != 1 {
		t.Errorf("outcome = %v, want the ambiguous identity type", held["outcome"])
	}
	if code, body := e.call("POST", "/api/v1/requests/"+id+"/approve", staffToken("approver-2"),
		map[string]string{"note": "the requester could not give a user id; answer for nobody"}); code != http.StatusOK {
		t.Fatalf("approve = %d %v", code, body)
	}
	done := e.waitStatus(id, "completed", 60*time.Second)
	if rows, _ := taskRows(done); rows["users"] != 0 || rows["transactions"] != 0 {
		t.Errorf("an ambiguous identity exported rows: %v", rows)
	}

	// Another one staff refuse instead: finding the person would take
	// a search of the call recordings (WeBank §7(八), technically
	// impractical).
	_, body = e.call("POST", "/api/v1/requests", testToken,
		accessTicket(map[string]string{"phone": demo.Phone(8)}, demo.Email(8)))
	second := body["id"].(string)
	e.waitStatus(second, "awaiting_approval", 60*time.Second)
	code, body = e.call("POST", "/api/v1/requests/"+second+"/refuse", staffToken("approver-2"),
		map[string]string{"reason": "technically_impractical", "message": "Only the call recordings could tell which customer asked."})
	if code != http.StatusOK || body["status"] != "refused" {
		t.Fatalf("refuse = %d %v", code, body)
	}
	msg := e.smtp.WaitForMessage(t, second+".refusal@datarights", 30*time.Second)
	if !strings.Contains(msg.Text, "需要过多技术手段") || !strings.Contains(msg.Text, "call recordings") {
		t.Errorf("refusal email:\n%s", msg.Text)
	}
}

// TestPolicyDeleteNeedsStrongVerificationAndNoOpenLoan: the demo WeBank
// rules. A delete verified by an emailed code is refused at intake, and
// self-service cannot ask for one; a borrower with an open loan
// (demo-user-5) is refused with erasure_blocked and the check's reason,
// and not one row of the bank changes.
func TestPolicyDeleteNeedsStrongVerificationAndNoOpenLoan(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, false, "")
	e.appendConfig(t, demo.ExtrasYAML(e.bankURL))
	e.start()
	before := e.bankRows(t)

	weak := copyTicket("demo-user-5")
	weak["type"], weak["verification"] = "delete", map[string]any{"method": "email_code"}
	if code, body := e.call("POST", "/api/v1/requests", testToken, weak); code != http.StatusBadRequest ||
		!strings.Contains(fmt.Sprint(body), "a deletion must be verified by face_check or id_document") {
		t.Errorf("delete by email code = %d %v, want 400", code, body)
	}
	if code, body := e.call("POST", "/api/v1/self-service/requests", "", map[string]any{
		"product": "webank", "type": "delete", "email": demo.Email(5)}); code != http.StatusBadRequest {
		t.Errorf("self-service delete = %d %v, want 400", code, body)
	}

	ticket := copyTicket("demo-user-5")
	ticket["type"] = "delete"
	code, body := e.call("POST", "/api/v1/requests", testToken, ticket)
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	done := e.waitStatus(id, "refused", 60*time.Second)
	refusal, _ := done["refusal"].(map[string]any)
	if refusal["reason"] != "erasure_blocked" || !slices.Equal(anyStrings(refusal["prechecks"]), []string{"open_loans"}) ||
		!strings.Contains(refusal["message"].(string), "loan that is not repaid") {
		t.Errorf("refusal = %v", refusal)
	}
	if tasks := asSlice(done["tasks"]); len(tasks) != 0 {
		t.Errorf("a blocked delete has tasks: %v", tasks)
	}
	msg := e.smtp.WaitForMessage(t, id+".refusal@datarights", 30*time.Second)
	if !strings.Contains(msg.Text, "暂不满足删除条件") || !strings.Contains(msg.Text, "loan that is not repaid") {
		t.Errorf("refusal email:\n%s", msg.Text)
	}
	after := e.bankRows(t)
	for table, users := range before {
		if !slices.Equal(after[table]["demo-user-5"], users["demo-user-5"]) {
			t.Errorf("%s rows of demo-user-5 changed", table)
		}
	}
	checkOthersUnchanged(t, before, after, "")
	if n := recipientCount(t, e, id); n != 0 {
		t.Errorf("%d third parties told of a refused delete", n)
	}
}

func recipientCount(t *testing.T, e *e2e, id string) int {
	t.Helper()
	var n int
	if err := e.db.QueryRow(context.Background(), "SELECT count(*) FROM recipient_notices WHERE request_id = $1", id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// recipientYAML adds third parties for TestPolicyRecipients: an insurer
// told only when the loan book held rows of the person (a dataset
// condition), and a partner a login shared data with, told to stop
// processing when consent to "location" is withdrawn.
const recipientYAML = `  - name: loan_insurer
    products: [webank]
    rights: [delete]
    when: {dataset: demo_loans.loans}
    email: dpo@loan-insurer.example
  - name: login_partner
    display_name: 合作小程序 (a mini-program)
    products: [webank]
    rights: []
    stop_sharing: [withdraw_consent]
    purposes: [location]
    email: privacy@partner.example
`

func noticeTo(t *testing.T, e *e2e, id string) []string {
	t.Helper()
	rows, err := e.db.Query(context.Background(), "SELECT recipient FROM recipient_notices WHERE request_id = $1 ORDER BY recipient", id)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestPolicyRecipients: the credit bureau (condition: a query on the loan
// book, asked before the erasure) and the loan insurer (condition: rows of
// the loan book in the request's reports) are told of a borrower's delete
// and not of a non-borrower's, which is audited as recipient.not_told; a
// withdrawal of consent to location tells the login partner to stop
// processing, a withdrawal of another purpose tells it nothing; and a
// withdrawal of the whole policy withdraws every purpose.
func TestPolicyRecipients(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, false, "")
	e.editConfig(t, "consent:\n  identity: user_id\n  purposes:\n", `consent:
  identity: user_id
  purposes:
    - name: privacy_policy
      label: {zh-CN: 《微众银行隐私政策》, en: the WeBank privacy policy}
      products: [webank]
      stores: [demo_bank]
      implies_all: true
`)
	e.appendConfig(t, demo.ExtrasYAML(e.bankURL)+recipientYAML)
	e.start()

	submit := func(ticket map[string]any) string {
		t.Helper()
		code, body := e.call("POST", "/api/v1/requests", testToken, ticket)
		if code != http.StatusCreated {
			t.Fatalf("submit = %d %v", code, body)
		}
		return body["id"].(string)
	}
	deleteOf := func(user string) map[string]any {
		tk := copyTicket(user)
		tk["type"] = "delete"
		return tk
	}
	withdrawal := func(user string, purposes ...string) map[string]any {
		tk := copyTicket(user)
		tk["type"], tk["purposes"] = "withdraw_consent", purposes
		return tk
	}
	nonBorrower := submit(deleteOf("demo-user-2"))
	borrower := submit(deleteOf("demo-user-3"))
	location := submit(withdrawal("demo-user-7", "location"))
	ads := submit(withdrawal("demo-user-11", "personalised_ads"))
	whole := submit(withdrawal("demo-user-13", "privacy_policy"))
	for _, id := range []string{nonBorrower, borrower, location, ads, whole} {
		e.waitStatus(id, "completed", 90*time.Second)
	}

	// demo-user-2 never borrowed: neither the bureau nor the insurer hear
	// of them.
	_, body := e.call("GET", "/api/v1/requests/"+nonBorrower, testToken, nil)
	if got := noticeTo(t, e, nonBorrower); len(got) != 0 {
		t.Errorf("a non-borrower's delete told %v", got)
	}
	notTold := map[string]bool{}
	for _, ev := range asSlice(body["audit"]) {
		if ev := ev.(map[string]any); ev["action"] == "recipient.not_told" {
			notTold[ev["detail"].(map[string]any)["recipient"].(string)] = true
		}
	}
	if !notTold["credit_bureau"] || !notTold["loan_insurer"] {
		t.Errorf("recipient.not_told for %v; audit %v", notTold, auditActions(body))
	}
	if out, _ := body["outcome"].(map[string]any); out == nil || len(asSlice(out["recipients_not_told"])) != 2 {
		t.Errorf("outcome = %v", body["outcome"])
	}
	// demo-user-3 did: both are told, by email.
	if got := noticeTo(t, e, borrower); !slices.Equal(got, []string{"credit_bureau", "loan_insurer"}) {
		t.Errorf("a borrower's delete told %v, want the bureau and the insurer", got)
	}
	bureau := e.smtp.WaitForMessage(t, borrower+".notice.credit_bureau@datarights", 30*time.Second)
	if !strings.Contains(bureau.Subject+bureau.Text, "删除") {
		t.Errorf("bureau notice:\n%s", bureau.Text)
	}

	// Withdrawing consent to location: the partner is told to stop.
	if got := noticeTo(t, e, location); !slices.Equal(got, []string{"login_partner"}) {
		t.Errorf("a location withdrawal told %v", got)
	}
	stop := e.smtp.WaitForMessage(t, location+".notice.login_partner@datarights", 30*time.Second)
	if !strings.Contains(stop.Text, "请停止处理") || !strings.Contains(stop.Text, "please stop processing") ||
		strings.Contains(stop.Text, "请删除") || !strings.Contains(stop.Text, "user_id: demo-user-7") {
		t.Errorf("stop-sharing notice %q:\n%s", stop.Subject, stop.Text)
	}
	if got := noticeTo(t, e, ads); len(got) != 0 {
		t.Errorf("a withdrawal of personalised_ads told %v", got)
	}

	// The whole policy: every purpose of the product is withdrawn, and the
	// partner (location among them) is told to stop.
	_, body = e.call("GET", "/api/v1/requests/"+whole, testToken, nil)
	var withdrawn int
	if err := e.db.QueryRow(context.Background(), `SELECT count(*) FROM consent_events WHERE request_id = $1 AND NOT granted`, whole).Scan(&withdrawn); err != nil || withdrawn != 5 {
		t.Errorf("whole-policy withdrawal recorded %d withdrawals (%v), want 5", withdrawn, err)
	}
	if out, _ := body["outcome"].(map[string]any); out == nil || len(asSlice(out["withdrawn"])) != 5 {
		t.Errorf("outcome = %v", body["outcome"])
	}
	if got := noticeTo(t, e, whole); !slices.Equal(got, []string{"login_partner"}) {
		t.Errorf("a whole-policy withdrawal told %v", got)
	}
	rows := e.bankRows(t)["consents"]["demo-user-13"]
	for _, row := range rows {
		if !strings.Contains(row, ",f,") {
			t.Errorf("consent of demo-user-13 still granted: %s", row)
		}
	}
}

// usePolicyConfig replaces the core demo configuration of e's file with
// demo.PolicyYAML, the one `datarights dev` runs.
func (e *e2e) usePolicyConfig(t *testing.T) {
	t.Helper()
	dataDir := filepath.Join(filepath.Dir(e.configPath), "data")
	runtime := storagetest.RuntimeURL(t, e.serviceURL)
	e.editConfig(t, demo.ConfigYAML(runtime, e.bankURL, dataDir), demo.PolicyYAML(runtime, e.bankURL, dataDir))
}

// TestPolicyDemoRetention: under the demo's WeBank configuration a delete
// by demo-user-14 (wealth management, no loan) keeps the account, cards
// and transactions restricted for 10 years and the wealth records for 20,
// deletes the consents, anonymises the app usage events, and tells the
// requester why in both languages; nobody else's rows change.
func TestPolicyDemoRetention(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, false, "")
	e.usePolicyConfig(t)
	e.start()
	const user = "demo-user-14"
	before := e.bankRows(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.bankURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var eventsBefore int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM app_events").Scan(&eventsBefore); err != nil {
		t.Fatal(err)
	}

	ticket := copyTicket(user)
	ticket["type"] = "delete"
	id := e.file(ticket)
	done := e.waitStatus(id, "completed", 90*time.Second)

	after := e.bankRows(t)
	checkOthersUnchanged(t, before, after, user)
	for _, table := range []string{"users", "cards", "transactions"} {
		if len(after[table][user]) == 0 || len(after[table][user]) != len(before[table][user]) {
			t.Errorf("%s: %d rows of %s kept, want all %d", table, len(after[table][user]), user, len(before[table][user]))
		}
	}
	var unrestricted, wealthKept, wealthUnrestricted, events, anonymised int
	err = conn.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM users WHERE user_id = $1 AND restricted_at IS NULL) +
		(SELECT count(*) FROM cards WHERE user_id = $1 AND restricted_at IS NULL) +
		(SELECT count(*) FROM transactions WHERE user_id = $1 AND restricted_at IS NULL),
		(SELECT count(*) FROM wealth WHERE user_id = $1),
		(SELECT count(*) FROM wealth WHERE user_id = $1 AND restricted_at IS NULL),
		(SELECT count(*) FROM app_events),
		(SELECT count(*) FROM app_events WHERE user_id IS NULL AND device = 'anonymised')`, user).
		Scan(&unrestricted, &wealthKept, &wealthUnrestricted, &events, &anonymised)
	if err != nil {
		t.Fatal(err)
	}
	if unrestricted != 0 {
		t.Errorf("%d account rows of %s kept but not restricted", unrestricted, user)
	}
	if wealthKept != len(demo.Holdings(14)) || wealthUnrestricted != 0 {
		t.Errorf("wealth: %d rows kept (%d unrestricted), want %d restricted", wealthKept, wealthUnrestricted, len(demo.Holdings(14)))
	}
	if len(after["consents"][user]) != 0 {
		t.Errorf("consents of %s kept: %v", user, after["consents"][user])
	}
	if events != eventsBefore || anonymised != demo.AppEvents(14) {
		t.Errorf("app_events: %d rows (before %d), %d anonymised, want %d", events, eventsBefore, anonymised, demo.AppEvents(14))
	}

	classes := map[string]time.Time{}
	for _, h := range asSlice(done["holds"]) {
		h := h.(map[string]any)
		until, _ := time.Parse(time.RFC3339, h["until"].(string))
		classes[h["store"].(string)+"/"+h["dataset"].(string)+"/"+h["retention"].(string)] = until
	}
	now := time.Now()
	for key, years := range map[string]int{"demo_bank/users/account_records": 10, "demo_bank/transactions/account_records": 10,
		"demo_wealth/wealth/wealth_records": 20} {
		until, ok := classes[key]
		if !ok {
			t.Errorf("no hold %s: %v", key, done["holds"])
			continue
		}
		if want := now.AddDate(years, 0, 0); until.Before(want.Add(-48*time.Hour)) || until.After(want.Add(48*time.Hour)) {
			t.Errorf("hold %s until %s, want about %s", key, until, want)
		}
	}
	msg := e.smtp.WaitForMessage(t, id+".completion@datarights", 30*time.Second)
	for _, want := range []string{"在您使用微众银行账户期间以及停止业务关系后 10 年内存储", "for 10 years after the business relationship ends",
		"for 20 years after the business relationship ends"} {
		if !strings.Contains(msg.Text, want) {
			t.Errorf("completion email lacks %q:\n%s", want, msg.Text)
		}
	}

	// Ten years on the account records go (cards and transactions first:
	// a sweep that meets the users' foreign keys tries again next time);
	// the wealth records stay until their 20 years have run.
	p, clock := e.sweeper(t)
	sweep := func(at time.Time) {
		t.Helper()
		clock.Set(at)
		if _, err := p.SweepRetention(ctx); err != nil {
			t.Fatal(err)
		}
	}
	accountsEnd := classes["demo_bank/users/account_records"]
	sweep(accountsEnd.Add(-time.Second))
	if kept := e.bankRows(t); len(kept["transactions"][user]) != len(before["transactions"][user]) {
		t.Errorf("transactions erased before their 10 years: %d left", len(kept["transactions"][user]))
	}
	for i := range 3 { // each sweep looks again at holds checked before its time
		sweep(accountsEnd.Add(time.Duration(i+1) * time.Minute))
	}
	gone := e.bankRows(t)
	for _, table := range []string{"users", "cards", "transactions"} {
		if len(gone[table][user]) != 0 {
			t.Errorf("%s of %s still there after 10 years", table, user)
		}
	}
	checkOthersUnchanged(t, before, gone, user)
	var wealthLeft int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM wealth WHERE user_id = $1", user).Scan(&wealthLeft); err != nil || wealthLeft != len(demo.Holdings(14)) {
		t.Errorf("after 10 years %d wealth rows left (%v), want %d", wealthLeft, err, len(demo.Holdings(14)))
	}
	sweep(classes["demo_wealth/wealth/wealth_records"].Add(time.Minute))
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM wealth WHERE user_id = $1", user).Scan(&wealthLeft); err != nil || wealthLeft != 0 {
		t.Errorf("after 20 years %d wealth rows left (%v)", wealthLeft, err)
	}
}

// TestPolicyPhoneChangeProvedOnTheNewNumber: a phone change (WeBank
// §7(一)2) waits for staff, then for the code sent by text message to the
// new number; only then is it written, in the store's format (the demo
// bank keeps national numbers), so that the customer is found by it
// however it is typed.
func TestPolicyPhoneChangeProvedOnTheNewNumber(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "")
	const typed, stored = "+8613999990006", "13999990006"
	code, body := e.call("POST", "/api/v1/requests", testToken, correctTicket("demo-user-6", map[string]string{"phone": typed}))
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	e.waitStatus(id, "awaiting_approval", 30*time.Second)
	if code, body := e.call("POST", "/api/v1/requests/"+id+"/approve", staffToken("approver-2"), map[string]string{"note": "ID card seen"}); code != http.StatusOK {
		t.Fatalf("approve = %d %v", code, body)
	}
	e.waitStatus(id, "awaiting_contact", 30*time.Second)
	var phone string
	if err := pgxQueryRow(t, e.bankURL, "SELECT phone FROM users WHERE user_id = 'demo-user-6'", &phone); err != nil || phone != demo.Phone(6) {
		t.Fatalf("phone before the code = %q (%v), want unchanged", phone, err)
	}
	smsCode := e.smsCode(t, id) // waits for the text message
	files, _ := filepath.Glob(filepath.Join(filepath.Dir(e.configPath), "data", "sms", id+".contact.*"))
	if len(files) == 0 {
		t.Fatal("no text message to the new number")
	}
	if data, _ := os.ReadFile(files[0]); !strings.Contains(string(data), typed) {
		t.Errorf("the code went elsewhere than the new number: %s", data)
	}
	if c, out := e.call("POST", "/api/v1/requests/"+id+"/contact/confirm", staffToken("agent"),
		map[string]string{"field": "phone", "code": smsCode}); c != http.StatusOK {
		t.Fatalf("contact code = %d %v", c, out)
	}
	e.waitStatus(id, "completed", 60*time.Second)
	if err := pgxQueryRow(t, e.bankURL, "SELECT phone FROM users WHERE user_id = 'demo-user-6'", &phone); err != nil || phone != stored {
		t.Errorf("phone after = %q (%v), want %s", phone, err, stored)
	}
	code, body = e.call("POST", "/api/v1/lookup", testToken, map[string]any{"product": "webank",
		"identities": map[string]string{"phone": "+86 139 9999 0006"}})
	if code != http.StatusOK || body["outcome"] != "one_person" {
		t.Errorf("lookup by the new number = %d %v", code, body)
	}
}

func pgxQueryRow(t *testing.T, url, sql string, dest ...any) error {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, sql).Scan(dest...)
}
