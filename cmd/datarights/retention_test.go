package main

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/demo"
	"github.com/datarights/datarights/exporters"
	"github.com/datarights/datarights/jobs"
	"github.com/datarights/datarights/storage"
)

// loanRows returns every row of the demo loan book as text, by user_id.
func (e *e2e) loanRows(t *testing.T) map[string][]string {
	t.Helper()
	return e.bankRows(t)["loans"]
}

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// sweeper is a pipeline on the service's database with a clock of the
// test's, to run the retention sweep at chosen times.
func (e *e2e) sweeper(t *testing.T) (*jobs.Pipeline, *testClock) {
	t.Helper()
	cfg, err := config.Load(e.configPath, e.getenv)
	if err != nil {
		t.Fatal(err)
	}
	db, err := storage.Open(context.Background(), cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	mailer, err := exporters.NewMailer(e.smtp.URL(), cfg.SMTP.From, "")
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{now: time.Now()}
	p, err := jobs.New(jobs.Config{DB: db, Settings: cfg, Mailer: mailer, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.NewClient(false); err != nil { // sweeps enqueue notices
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p, clock
}

// TestDeleteRestrictsUnderRetentionThenSweepDeletes: demo-user-12 has two
// settled loans. The one settled in June 2020 is past its 5 years and is
// deleted with the rest of the customer's data; the one settled on
// 2024-03-12 is kept restricted, and the retention sweep deletes it on
// 2029-03-13, the day after its period ends, not a second before. Nobody
// else's loans change.
func TestDeleteRestrictsUnderRetentionThenSweepDeletes(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, false, "")
	e.appendConfig(t, demo.ExtrasYAML(e.bankURL))
	e.start()
	before := e.loanRows(t)
	if len(before["demo-user-12"]) != 2 {
		t.Fatalf("demo-user-12 has loans %v, want 2", before["demo-user-12"])
	}

	ticket := copyTicket("demo-user-12")
	ticket["type"] = "delete"
	code, body := e.call("POST", "/api/v1/requests", testToken, ticket)
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	done := e.waitStatus(id, "completed", 90*time.Second)

	cst, _ := time.LoadLocation("Asia/Shanghai")
	wantUntil := time.Date(2029, 3, 13, 0, 0, 0, 0, cst)
	holds, _ := done["holds"].([]any)
	if len(holds) != 1 {
		t.Fatalf("holds = %v, want the loan book's", done["holds"])
	}
	hold := holds[0].(map[string]any)
	if hold["store"] != "demo_loans" || hold["dataset"] != "loans" || hold["rows"] != 1.0 || hold["retention"] != "loan_records" {
		t.Errorf("hold = %v", hold)
	}
	if until, _ := time.Parse(time.RFC3339, hold["until"].(string)); !until.Equal(wantUntil) {
		t.Errorf("hold until %v, want %s", hold["until"], wantUntil)
	}
	after := e.loanRows(t)
	if rows := after["demo-user-12"]; len(rows) != 1 || !strings.Contains(rows[0], "loan-12-2") || strings.HasSuffix(rows[0], ",)") {
		t.Errorf("demo-user-12's loans after the delete: %v, want loan-12-2 restricted", rows)
	}
	for user, rows := range before {
		if user != "demo-user-12" && !slices.Equal(after[user], rows) {
			t.Errorf("loans of %s changed: %v → %v", user, rows, after[user])
		}
	}
	counts, err := demo.Counts(context.Background(), e.bankURL, "demo-user-12")
	if err != nil {
		t.Fatal(err)
	}
	for table, n := range counts {
		if n != 0 {
			t.Errorf("bank %s still has %d rows of demo-user-12", table, n)
		}
	}
	completion := e.smtp.WaitForMessage(t, id+".completion@datarights", 30*time.Second)
	if text := completion.Text; !strings.Contains(text, "2029-03-12") || !strings.Contains(text, "停止业务关系后 5 年内存储") {
		t.Errorf("the completion email does not say what is kept until when and why:\n%s", text)
	}

	p, clock := e.sweeper(t)
	sweep := func(at time.Time) jobs.RetentionResult {
		t.Helper()
		clock.Set(at)
		res, err := p.SweepRetention(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := sweep(time.Now()); res != (jobs.RetentionResult{}) {
		t.Errorf("sweep today = %+v, want nothing", res)
	}
	if res := sweep(wantUntil.Add(-time.Second)); res != (jobs.RetentionResult{}) {
		t.Errorf("sweep at the last second of the period = %+v, want nothing", res)
	}
	if rows := e.loanRows(t)["demo-user-12"]; len(rows) != 1 {
		t.Fatalf("the loan is gone before its period ended: %v", rows)
	}
	if res := sweep(wantUntil.Add(time.Second)); res.Released != 1 {
		t.Errorf("sweep on the expiry day = %+v, want 1 released", res)
	}
	if rows := e.loanRows(t)["demo-user-12"]; len(rows) != 0 {
		t.Errorf("the loan is still there after its period: %v", rows)
	}
	if res := sweep(wantUntil.Add(time.Hour)); res != (jobs.RetentionResult{}) {
		t.Errorf("a later sweep = %+v, want nothing", res)
	}
	final := e.loanRows(t)
	for user, rows := range before {
		if user != "demo-user-12" && !slices.Equal(final[user], rows) {
			t.Errorf("loans of %s changed: %v → %v", user, rows, final[user])
		}
	}
	_, body = e.call("GET", "/api/v1/requests/"+id, testToken, nil)
	if !hasAction(body, "retention.released") {
		t.Errorf("no retention.released in the audit: %v", auditActions(body))
	}
	if released := body["holds"].([]any)[0].(map[string]any)["released_at"]; released == nil {
		t.Errorf("the hold is not marked released: %v", body["holds"])
	}
}
