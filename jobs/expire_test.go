package jobs_test

import (
	"context"
	"path/filepath"
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

// TestUnverifiedRequestExpiresAndIsPurged files a self-service request
// whose code is never entered, lets its code's life and the grace pass on
// the injected clock, and runs the workers: the request is expired, holds
// no personal data, has no deadline and counts as open nowhere.
func TestUnverifiedRequestExpiresAndIsPurged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, serviceURL := storagetest.NewDB(t, "expire")
	dir := t.TempDir()
	yaml := demo.ConfigYAML(serviceURL, "postgres://unused/bank", filepath.Join(dir, "data")) +
		"self_service:\n  code_ttl: 15m\n  expiry_grace: 1h\n"
	cfg, err := config.Parse("expire.yaml", []byte(yaml), nil)
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
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	clock.Set(t0)
	p, err := jobs.New(jobs.Config{DB: db, Settings: cfg, Mailer: mailer, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.NewClient(false); err != nil {
		t.Fatal(err)
	}
	r, err := p.SubmitSelfService(ctx, rights.Intake{Product: "webank", Type: rights.TypeCopy,
		Identities: map[string]string{"email": "demo-user-4@example.com"}}, jobs.Client{})
	if err != nil {
		t.Fatal(err)
	}
	if r.DueAt != nil || r.ClockStartedAt != nil {
		t.Fatalf("an unverified request has a deadline: due %v", r.DueAt)
	}
	// Its expiry is scheduled with it: code life plus grace.
	due := t0.Add(15*time.Minute + time.Hour)
	var scheduled time.Time
	if err := db.Pool.QueryRow(ctx, `SELECT scheduled_at FROM river_job WHERE kind = $1 AND args->>'request_id' = $2`,
		(jobs.ExpireArgs{}).Kind(), r.ID).Scan(&scheduled); err != nil {
		t.Fatalf("no expiry job: %v", err)
	}
	if !scheduled.Equal(due) {
		t.Errorf("expiry scheduled at %v, want %v", scheduled, due)
	}

	clock.Set(due.Add(-time.Second))
	if wait, err := p.ExpireUnverified(ctx, r.ID); err != nil || wait != time.Second {
		t.Fatalf("a second early: wait %v, %v", wait, err)
	}
	clock.Set(due)
	if wait, err := p.ExpireUnverified(ctx, r.ID); err != nil || wait != 0 {
		t.Fatalf("on time: wait %v, %v", wait, err)
	}
	// Again: nothing more happens.
	if _, err := p.ExpireUnverified(ctx, r.ID); err != nil {
		t.Fatal(err)
	}

	got, err := storage.GetRequest(ctx, db.Pool, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != rights.StatusExpired || got.DueAt != nil || len(got.Subject.Identities) != 0 || got.DeliveryEmail != "" {
		t.Fatalf("after expiry: status %s, due %v, identities %v, delivery %q", got.Status, got.DueAt, got.Subject.Identities, got.DeliveryEmail)
	}
	if band := rights.BandOf(got, time.Now(), 0.8); band != rights.BandClosed {
		t.Errorf("band = %s, want closed", band)
	}
	if code, err := storage.GetCode(ctx, db.Pool, r.ID); err != nil || code != nil {
		t.Errorf("code still kept: %v, %v", code, err)
	}
	open, err := storage.CountOpen(ctx, db.Pool, time.Now(), 0.8)
	if err != nil || len(open) != 0 {
		t.Errorf("open counts = %v, %v; want none", open, err)
	}
	actions := auditActions(t, db, r.ID)
	if actions[len(actions)-1] != "request.expired" {
		t.Errorf("audit = %v, want it to end with request.expired", actions)
	}
	var leftovers int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM requests
		WHERE id = $1 AND (subject::text LIKE '%demo-user-4%' OR delivery_email <> '' OR corrections IS NOT NULL)`, r.ID).Scan(&leftovers); err != nil {
		t.Fatal(err)
	}
	if leftovers != 0 {
		t.Error("the expired request still holds personal data")
	}
}
