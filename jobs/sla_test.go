package jobs_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/demo"
	"github.com/datarights/datarights/exporters"
	"github.com/datarights/datarights/exporters/smtptest"
	"github.com/datarights/datarights/jobs"
	"github.com/datarights/datarights/keyring"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
	"github.com/datarights/datarights/storage/storagetest"
)

// fakeClock is the pipeline's injected clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

type slaBundle struct {
	db       *storage.DB
	pipeline *jobs.Pipeline
	clock    *fakeClock
	smtp     *smtptest.Server
}

func setupSLA(t *testing.T, extraYAML string) slaBundle {
	t.Helper()
	db, serviceURL := storagetest.NewDB(t, "sla")
	dir := t.TempDir()
	// The demo configuration reminds privacy-team@example.com at 50% and 80%.
	yaml := demo.ConfigYAML(serviceURL, "postgres://unused/bank", filepath.Join(dir, "data")) + extraYAML
	cfg, err := config.Parse("sla.yaml", []byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Keys = keyring.ForTest()
	srv := smtptest.NewServer(t)
	mailer, err := exporters.NewMailer(srv.URL(), cfg.SMTP.From, "")
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{}
	p, err := jobs.New(jobs.Config{DB: db, Settings: cfg, Mailer: mailer, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.NewClient(false); err != nil {
		t.Fatal(err)
	}
	return slaBundle{db: db, pipeline: p, clock: clock, smtp: srv}
}

func (b slaBundle) submit(t *testing.T, product string) *rights.Request {
	t.Helper()
	r, _, err := b.pipeline.SubmitStaff(context.Background(), "alice", rights.Intake{
		Product: product, Type: rights.TypeCopy, Identities: map[string]string{"user_id": "demo-user-1"},
		DeliveryEmail: "demo-user-1@example.com", Verification: &rights.Verification{Method: "face_check"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (b slaBundle) sweep(t *testing.T, at time.Time) jobs.SweepResult {
	t.Helper()
	b.clock.Set(at)
	res, err := b.pipeline.SweepSLA(context.Background())
	if err != nil {
		t.Fatalf("sweep at %s: %v", at, err)
	}
	return res
}

func auditActions(t *testing.T, db *storage.DB, id string) []string {
	t.Helper()
	events, err := storage.ListAudit(context.Background(), db.Pool, id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range events {
		out = append(out, ev.Action)
	}
	return out
}

// TestSweepSendsEachReminderAndBreachOnce walks an injected clock across a
// WeChat request's 15-day period and sweeps repeatedly at each point.
func TestSweepSendsEachReminderAndBreachOnce(t *testing.T) {
	t.Parallel()
	b := setupSLA(t, "")
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, shanghai) // a Monday
	b.clock.Set(t0)
	r := b.submit(t, "wechat")
	// 15 calendar days from 2026-03-02: the last day is 2026-03-17.
	wantDue := time.Date(2026, 3, 18, 0, 0, 0, 0, shanghai)
	if r.DueAt == nil || !r.DueAt.Equal(wantDue) {
		t.Fatalf("due = %v, want %v", r.DueAt, wantDue)
	}
	period := wantDue.Sub(t0)

	type step struct {
		at                  time.Time
		reminders, breaches int
		wantMessagesSoFar   int
	}
	steps := []step{
		{t0.Add(24 * time.Hour), 0, 0, 0},
		{t0.Add(period / 2), 1, 0, 1},           // 50%
		{t0.Add(period/2 + time.Hour), 0, 0, 1}, // again: nothing new
		{t0.Add(period * 8 / 10), 1, 0, 2},      // 80%
		{wantDue.Add(-time.Minute), 0, 0, 2},    // 23:59 of the last day: not yet
		{wantDue, 1, 1, 3},                      // 24:00: breached
		{wantDue.Add(48 * time.Hour), 0, 0, 3},  // stays breached, nothing resent
	}
	for i, s := range steps {
		for round := range 2 { // every sweep twice: the second must do nothing
			res := b.sweep(t, s.at)
			wantRem, wantBreach := s.reminders, s.breaches
			if round == 1 {
				wantRem, wantBreach = 0, 0
			}
			if res.Reminders != wantRem || res.Breaches != wantBreach {
				t.Fatalf("step %d round %d at %s: %+v, want %d reminders %d breaches", i, round, s.at, res, wantRem, wantBreach)
			}
		}
		if n := len(b.smtp.Messages()); n != s.wantMessagesSoFar {
			t.Fatalf("step %d: %d emails, want %d", i, n, s.wantMessagesSoFar)
		}
	}
	msgs := b.smtp.Messages()
	for _, m := range msgs {
		if !slices.Equal(m.To, []string{"privacy-team@example.com"}) {
			t.Errorf("reminder went to %v", m.To)
		}
		if strings.Contains(m.Text, "demo-user-1") {
			t.Error("a staff reminder names the data subject")
		}
	}
	if !strings.Contains(msgs[2].Subject, "BREACH") || !strings.Contains(msgs[2].Text, "2026-03-17") {
		t.Errorf("breach notice: %q / %q", msgs[2].Subject, msgs[2].Text)
	}
	got, err := storage.GetRequest(context.Background(), b.db.Pool, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.BreachedAt == nil || !got.BreachedAt.Equal(wantDue) {
		t.Errorf("breached_at = %v, want %v", got.BreachedAt, wantDue)
	}
	if band := rights.BandOf(got, wantDue.Add(time.Hour), 0.8); band != rights.BandOverdue {
		t.Errorf("band = %s, want overdue", band)
	}
	want := []string{"request.received", "sla.reminder", "sla.reminder", "sla.breached"}
	if actions := auditActions(t, b.db, r.ID); !slices.Equal(actions, want) {
		t.Errorf("audit = %v, want %v", actions, want)
	}
}

// TestSweepResendsAnUnsentReminderWithTheSameMessageID fails the SMTP server
// once: the reminder is recorded but unsent, and the next sweep sends it —
// once, with the Message-ID the first try used.
func TestSweepResendsAnUnsentReminderWithTheSameMessageID(t *testing.T) {
	t.Parallel()
	b := setupSLA(t, "")
	t0 := time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)
	b.clock.Set(t0)
	r := b.submit(t, "wechat")
	half := t0.Add(r.DueAt.Sub(t0) / 2)

	b.smtp.FailNext(1)
	b.clock.Set(half)
	if _, err := b.pipeline.SweepSLA(context.Background()); err == nil {
		t.Fatal("sweep with a failing SMTP server reported no error")
	}
	if n := len(b.smtp.Messages()); n != 0 {
		t.Fatalf("%d emails after a failed send", n)
	}
	res := b.sweep(t, half.Add(time.Minute))
	if res.Reminders != 0 || res.Sent != 1 {
		t.Fatalf("second sweep = %+v, want 0 new reminders and 1 sent", res)
	}
	b.sweep(t, half.Add(2*time.Minute))
	msgs := b.smtp.Messages()
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0].MessageID, r.ID+".sla-50pct.") {
		t.Fatalf("emails = %d, first id %q", len(msgs), msgs[0].MessageID)
	}
}

// TestSweepLeavesPausedRequestsAlone checks that a paused request's
// clock stands still: no reminders while paused, and after resuming its
// deadline has moved out by the days it stood.
func TestSweepLeavesPausedRequestsAlone(t *testing.T) {
	t.Parallel()
	b := setupSLA(t, "")
	ctx := context.Background()
	t0 := time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)
	b.clock.Set(t0)
	r := b.submit(t, "wechat")
	due := *r.DueAt
	b.clock.Set(t0.Add(time.Hour))
	if _, err := b.pipeline.Pause(ctx, "alice", r.ID, "waiting for the requester's ID document"); err != nil {
		t.Fatal(err)
	}
	if res := b.sweep(t, due.Add(24*time.Hour)); res.Reminders != 0 {
		t.Fatalf("paused request got reminders: %+v", res)
	}
	// Resume 10 days after the pause (03-02 11:00 to 03-12 11:00 Shanghai).
	// A day counts only if the clock runs at its end: 03-03 … 03-11 end
	// paused (03-02 is the start day, never counted), so the deadline moves
	// out by 9 days.
	b.clock.Set(t0.Add(10*24*time.Hour + time.Hour))
	resumed, err := b.pipeline.Resume(ctx, "alice", r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if resumed.Status != rights.StatusReceived {
		t.Errorf("resumed to %s, want received", resumed.Status)
	}
	if want := due.AddDate(0, 0, 9); !resumed.DueAt.Equal(want) {
		t.Errorf("due after a 10-day pause = %s, want %s", resumed.DueAt, want)
	}
}

// TestExtendWithinThePolicysMaximum checks that extensions need a reason,
// are refused where the policy allows none, and are capped in total.
func TestExtendWithinThePolicysMaximum(t *testing.T) {
	t.Parallel()
	b := setupSLA(t, "")
	ctx := context.Background()
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	// No workers run here, so the webank request stays unverified: its
	// extensions are recorded and count once its clock starts.
	b.clock.Set(time.Date(2025, 9, 26, 10, 0, 0, 0, shanghai))
	r := b.submit(t, "wechat")
	if _, err := b.pipeline.Extend(ctx, "alice", r.ID, 1, "complex"); rights.ErrorCode(err) != rights.EInvalid {
		t.Fatalf("extending under a policy with no extensions: %v, want invalid", err)
	}

	wb := b.submit(t, "webank")
	if wb.DueAt != nil {
		t.Fatalf("webank deadline before verification: %v", wb.DueAt)
	}
	if _, err := b.pipeline.Extend(ctx, "alice", wb.ID, 16, "too long"); rights.ErrorCode(err) != rights.EInvalid {
		t.Fatalf("16 days over a 15-day cap: %v, want invalid", err)
	}
	ext, err := b.pipeline.Extend(ctx, "alice", wb.ID, 10, "needs records from an archive")
	if err != nil {
		t.Fatal(err)
	}
	if ext.DueAt != nil || ext.Clock.ExtensionDays() != 10 {
		t.Fatalf("extension before the clock starts: due %v, %d days", ext.DueAt, ext.Clock.ExtensionDays())
	}
	if _, err := b.pipeline.Extend(ctx, "alice", wb.ID, 6, "more"); rights.ErrorCode(err) != rights.EInvalid {
		t.Fatalf("10+6 over a 15-day cap: %v, want invalid", err)
	}
	if _, err := b.pipeline.Extend(ctx, "alice", wb.ID, 5, ""); rights.ErrorCode(err) != rights.EInvalid {
		t.Fatalf("extension without a reason: %v, want invalid", err)
	}
	want := []string{"request.received", "deadline.extended"}
	if got := auditActions(t, b.db, wb.ID); !slices.Equal(got, want) {
		t.Errorf("audit = %v, want %v", got, want)
	}
}

// slaCheckAt reads when the sweep will next look at a request (nil: never
// until something changes).
func slaCheckAt(t *testing.T, db *storage.DB, id string) *time.Time {
	t.Helper()
	var at *time.Time
	if err := db.Pool.QueryRow(context.Background(), `SELECT sla_check_at FROM requests WHERE id = $1`, id).Scan(&at); err != nil {
		t.Fatal(err)
	}
	return at
}

// TestSweepVisitsOnlyWhatIsDueAndNeverWaits checks the sweep's schedule:
// each request is looked at when its next reminder or its deadline comes,
// pausing clears that and resuming sets it again, and a request a staff
// action holds locked is skipped, not waited for.
func TestSweepVisitsOnlyWhatIsDueAndNeverWaits(t *testing.T) {
	t.Parallel()
	b := setupSLA(t, "")
	ctx := context.Background()
	t0 := time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)
	b.clock.Set(t0)
	r := b.submit(t, "wechat")
	if at := slaCheckAt(t, b.db, r.ID); at == nil || at.After(t0) {
		t.Fatalf("a new request's check = %v, want at once (its clock's start)", at)
	}
	period := r.DueAt.Sub(t0)
	half, eighty := t0.Add(period/2), t0.Add(period*8/10)

	b.sweep(t, t0.Add(time.Minute))
	if at := slaCheckAt(t, b.db, r.ID); at == nil || !at.Equal(half) {
		t.Fatalf("after the first sweep the check = %v, want the 50%% reminder at %s", at, half)
	}
	b.sweep(t, half)
	if at := slaCheckAt(t, b.db, r.ID); at == nil || !at.Equal(eighty) {
		t.Fatalf("after the 50%% reminder the check = %v, want %s", at, eighty)
	}

	// A staff action holds the request while the 80% reminder comes due:
	// the sweep goes past it at once and the next sweep records it.
	tx, err := b.db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM requests WHERE id = $1 FOR UPDATE`, r.ID); err != nil {
		t.Fatal(err)
	}
	b.clock.Set(eighty)
	sweepCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	res, err := b.pipeline.SweepSLA(sweepCtx)
	cancel()
	if err != nil || res.Reminders != 0 {
		t.Fatalf("sweep beside a locked request: %+v, %v; want it skipped without waiting", res, err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if res := b.sweep(t, eighty.Add(time.Minute)); res.Reminders != 1 {
		t.Fatalf("after the lock went: %+v, want the 80%% reminder", res)
	}
	if at := slaCheckAt(t, b.db, r.ID); at == nil || !at.Equal(*r.DueAt) {
		t.Fatalf("after the 80%% reminder the check = %v, want the deadline %s", at, r.DueAt)
	}

	b.clock.Set(eighty.Add(time.Hour))
	if _, err := b.pipeline.Pause(ctx, "alice", r.ID, "waiting for the requester"); err != nil {
		t.Fatal(err)
	}
	if at := slaCheckAt(t, b.db, r.ID); at != nil {
		t.Fatalf("a paused request's check = %v, want none", at)
	}
	b.clock.Set(eighty.Add(72 * time.Hour))
	resumed, err := b.pipeline.Resume(ctx, "alice", r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !resumed.DueAt.After(*r.DueAt) {
		t.Fatalf("resuming did not move the deadline: %s", resumed.DueAt)
	}
	b.sweep(t, eighty.Add(72*time.Hour+time.Minute))
	if at := slaCheckAt(t, b.db, r.ID); at == nil || !at.Equal(*resumed.DueAt) {
		t.Fatalf("after resuming the check = %v, want the moved deadline %s", at, resumed.DueAt)
	}
	if res := b.sweep(t, *resumed.DueAt); res.Breaches != 1 {
		t.Fatalf("at the moved deadline: %+v, want a breach", res)
	}
	if at := slaCheckAt(t, b.db, r.ID); at != nil {
		t.Fatalf("after the breach the check = %v, want none", at)
	}
}
