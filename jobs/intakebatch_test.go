package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/demo"
	"github.com/datarights/datarights/exporters"
	"github.com/datarights/datarights/jobs"
	"github.com/datarights/datarights/keyring"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
	"github.com/datarights/datarights/storage/storagetest"
)

type intakeBundle struct {
	db       *storage.DB
	adminURL string
	pipeline *jobs.Pipeline
}

func setupIntake(t *testing.T) intakeBundle {
	t.Helper()
	db, adminURL, p := newDemoPipeline(t, "intake")
	return intakeBundle{db: db, adminURL: adminURL, pipeline: p}
}

// newDemoPipeline is a pipeline on a database of its own with the demo
// configuration, its email written to a file outbox, and a River client
// to insert jobs with (no workers).
func newDemoPipeline(tb testing.TB, prefix string) (*storage.DB, string, *jobs.Pipeline) {
	tb.Helper()
	db, serviceURL, adminURL := storagetest.NewDBWithAdmin(tb, prefix)
	dir := tb.TempDir()
	cfg, err := config.Parse(prefix+".yaml", []byte(demo.ConfigYAML(serviceURL, "postgres://unused/bank", filepath.Join(dir, "data"))), nil)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Keys = keyring.ForTest()
	p, err := jobs.New(jobs.Config{DB: db, Settings: cfg, Mailer: &exporters.FileOutbox{Dir: filepath.Join(dir, "outbox")}})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := p.NewClient(false); err != nil {
		tb.Fatal(err)
	}
	return db, adminURL, p
}

func ticket(user, note string) rights.Intake {
	return rights.Intake{Product: "webank", Type: rights.TypeCopy,
		Identities:    map[string]string{"user_id": user},
		DeliveryEmail: user + "@example.com", Verification: &rights.Verification{Method: "face_check"}, Note: note}
}

// submitAll submits the tickets at once, as concurrent callers do, so that
// they are committed in groups.
func submitAll(b intakeBundle, tickets []rights.Intake, idem func(i int) *storage.Idempotency) ([]*rights.Request, []bool, []error) {
	reqs := make([]*rights.Request, len(tickets))
	created := make([]bool, len(tickets))
	errs := make([]error, len(tickets))
	var wg sync.WaitGroup
	for i, in := range tickets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reqs[i], created[i], errs[i] = b.pipeline.SubmitStaff(context.Background(), "alice", in, idem(i))
		}()
	}
	wg.Wait()
	return reqs, created, errs
}

// Each ticket committed in a group has its own row, exactly one
// "request.received" event and exactly one verify job, as if it had been
// committed alone.
func TestGroupedTicketsAreWholeEach(t *testing.T) {
	t.Parallel()
	b := setupIntake(t)
	const n = 40
	tickets := make([]rights.Intake, n)
	for i := range tickets {
		tickets[i] = ticket(fmt.Sprintf("demo-user-%d", i%20+1), fmt.Sprintf("ticket %d", i))
	}
	reqs, created, errs := submitAll(b, tickets, func(int) *storage.Idempotency { return nil })
	ctx := context.Background()
	for i := range tickets {
		if errs[i] != nil || !created[i] {
			t.Fatalf("ticket %d: created %v, %v", i, created[i], errs[i])
		}
		if reqs[i].Note != tickets[i].Note {
			t.Errorf("ticket %d answered with another ticket's request (note %q)", i, reqs[i].Note)
		}
		if got := auditActions(t, b.db, reqs[i].ID); len(got) != 1 || got[0] != "request.received" {
			t.Errorf("ticket %d: audit %v, want one request.received", i, got)
		}
		var jobs int
		if err := b.db.Pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'verify' AND args->>'request_id' = $1`,
			reqs[i].ID).Scan(&jobs); err != nil {
			t.Fatal(err)
		}
		if jobs != 1 {
			t.Errorf("ticket %d: %d verify jobs, want 1", i, jobs)
		}
	}
	var rows int
	if err := b.db.Pool.QueryRow(ctx, `SELECT count(*) FROM requests`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != n {
		t.Errorf("%d requests stored, want %d", rows, n)
	}
}

// Tickets sent at once under one idempotency key, as a client's retries
// racing each other are, store one request and all get it back; the same
// key with another body is refused, whichever group it lands in.
func TestGroupedTicketsShareOneIdempotencyKey(t *testing.T) {
	t.Parallel()
	b := setupIntake(t)
	const n = 24
	tickets := make([]rights.Intake, n)
	for i := range tickets {
		tickets[i] = ticket("demo-user-3", "same ticket")
	}
	tickets[n-1] = ticket("demo-user-4", "another body") // same key, other body
	idem := func(i int) *storage.Idempotency {
		hash := "body-a"
		if i == n-1 {
			hash = "body-b"
		}
		return &storage.Idempotency{Key: "ticket-42", BodyHash: hash}
	}
	reqs, created, errs := submitAll(b, tickets, idem)

	ids := map[string]bool{}
	var createdCount int
	for i := range n - 1 {
		if errs[i] != nil {
			// The other body may have taken the key first: then all of
			// these are the conflict.
			if rights.ErrorCode(errs[i]) != rights.EConflict {
				t.Fatalf("ticket %d: %v", i, errs[i])
			}
			continue
		}
		ids[reqs[i].ID] = true
		if created[i] {
			createdCount++
		}
	}
	var rows int
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM requests`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 1 {
		t.Fatalf("%d requests stored under one key, want 1", rows)
	}
	// Only the stored request has a job: a ticket skipped for its key
	// leaves none (its verify job is inserted with its rows).
	var verifyJobs int
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE kind = 'verify'`).Scan(&verifyJobs); err != nil {
		t.Fatal(err)
	}
	if verifyJobs != 1 {
		t.Errorf("%d verify jobs for one request", verifyJobs)
	}
	if errs[n-1] == nil {
		// The other body won the key: everyone else was refused.
		if len(ids) != 0 || !created[n-1] {
			t.Errorf("the other body got %v (created %v) while same-body tickets got %v", reqs[n-1].ID, created[n-1], ids)
		}
		return
	}
	if rights.ErrorCode(errs[n-1]) != rights.EConflict {
		t.Errorf("same key, other body: %v, want a conflict", errs[n-1])
	}
	if len(ids) != 1 || createdCount != 1 {
		t.Errorf("same key, same body: %d requests returned, %d created; want 1 and 1", len(ids), createdCount)
	}
}

// A ticket the database refuses fails alone: the others of its group are
// committed, and the refused one leaves nothing behind.
func TestGroupedTicketFailsAlone(t *testing.T) {
	t.Parallel()
	b := setupIntake(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, b.adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	// A rule of the database's that the service does not check first.
	if _, err := admin.Exec(ctx, `ALTER TABLE requests ADD CONSTRAINT test_no_poison CHECK (note IS DISTINCT FROM 'poison')`); err != nil {
		t.Fatal(err)
	}
	const n = 30
	tickets := make([]rights.Intake, n)
	for i := range tickets {
		note := fmt.Sprintf("ticket %d", i)
		if i%10 == 5 {
			note = "poison"
		}
		tickets[i] = ticket(fmt.Sprintf("demo-user-%d", i%20+1), note)
	}
	_, _, errs := submitAll(b, tickets, func(int) *storage.Idempotency { return nil })
	for i := range tickets {
		poisoned := tickets[i].Note == "poison"
		switch {
		case poisoned && (errs[i] == nil || !strings.Contains(errs[i].Error(), "test_no_poison")):
			t.Errorf("poisoned ticket %d: %v, want the constraint's refusal", i, errs[i])
		case !poisoned && errs[i] != nil:
			t.Errorf("ticket %d failed with its group's poisoned one: %v", i, errs[i])
		}
	}
	var rows, events, jobs int
	if err := b.db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM requests), (SELECT count(*) FROM audit_events),
		(SELECT count(*) FROM river_job WHERE kind = 'verify')`).Scan(&rows, &events, &jobs); err != nil {
		t.Fatal(err)
	}
	if want := n - 3; rows != want || events != want || jobs != want {
		t.Errorf("stored %d requests, %d events, %d verify jobs; want %d of each", rows, events, jobs, want)
	}
	// A failed group's transaction (begun in its insert batch) gave its
	// connection back.
	if held := b.db.Pool.Stat().AcquiredConns(); held != 0 {
		t.Errorf("%d connections still held after every ticket was answered", held)
	}
}

// A group waiting for a lock does not hold up the tickets behind it: here
// a ticket waits for another transaction inserting a request under the
// same idempotency key, and a ticket filed after it is committed (by a
// second committer) while the first still waits.
func TestStalledGroupDoesNotHoldUpIntake(t *testing.T) {
	t.Parallel()
	b := setupIntake(t)
	ctx := context.Background()
	seed, _, err := b.pipeline.SubmitStaff(ctx, "alice", ticket("demo-user-5", "seed"), &storage.Idempotency{Key: "seed", BodyHash: "s"})
	if err != nil {
		t.Fatal(err)
	}
	// Another writer (another replica, say) inserts a request under key
	// "k" and has not committed.
	blocker, err := b.db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Rollback(ctx) //nolint:errcheck // rolled back below
	if _, err := blocker.Exec(ctx, `INSERT INTO requests
		SELECT (jsonb_populate_record(r, jsonb_build_object('id', gen_random_uuid(), 'idempotency_key', 'k'))).*
		FROM requests r WHERE id = $1`, seed.ID); err != nil {
		t.Fatal(err)
	}
	var blockerPID int
	if err := blocker.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&blockerPID); err != nil {
		t.Fatal(err)
	}

	stalled := make(chan error, 1)
	go func() {
		_, _, err := b.pipeline.SubmitStaff(ctx, "alice", ticket("demo-user-6", "stalled"), &storage.Idempotency{Key: "k", BodyHash: "a"})
		stalled <- err
	}()
	deadline := time.Now().Add(time.Minute)
	for {
		var waiting bool
		if err := b.db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND $1 = ANY (pg_blocking_pids(pid)))`, blockerPID).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		select {
		case err := <-stalled:
			t.Fatalf("the ticket under a key being inserted did not wait (err %v)", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the ticket under a key being inserted never waited for it")
		}
		time.Sleep(2 * time.Millisecond)
	}

	// Bounded, so that a ticket held up fails the test rather than hangs it.
	behindCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	behind, created, err := b.pipeline.SubmitStaff(behindCtx, "alice", ticket("demo-user-7", "behind"), &storage.Idempotency{Key: "other", BodyHash: "b"})
	if err != nil || !created {
		t.Fatalf("the ticket behind the stalled group: created %v, %v", created, err)
	}
	select {
	case err := <-stalled:
		t.Fatalf("the stalled ticket ended (%v) before the transaction it waits for", err)
	default:
	}
	if err := blocker.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-stalled; err != nil {
		t.Fatalf("the stalled ticket, once the key was free: %v", err)
	}
	var rows int
	if err := b.db.Pool.QueryRow(ctx, `SELECT count(*) FROM requests WHERE id <> $1 AND id <> $2`, seed.ID, behind.ID).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 1 {
		t.Fatalf("%d requests besides the seed and the one behind, want the stalled one", rows)
	}
}

// Intake stores a ticket's verify job with its own SQL, in the round trip
// of the ticket's rows (storage.RiverJob). The row must be the one River's
// own insert writes, column by column, and its notification the one
// River's workers listen for: a River upgrade that changes either fails
// here rather than leaving tickets unworked.
func TestIntakeJobIsRiversOwn(t *testing.T) {
	t.Parallel()
	b := setupIntake(t)
	ctx := context.Background()
	listener, err := pgx.Connect(ctx, b.db.Pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close(ctx)
	var channel string
	if err := listener.QueryRow(ctx, `SELECT current_schema() || '.river_insert'`).Scan(&channel); err != nil {
		t.Fatal(err)
	}
	if _, err := listener.Exec(ctx, `LISTEN `+pgx.Identifier{channel}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	heard := func(what string) string {
		t.Helper()
		wait, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		n, err := listener.WaitForNotification(wait)
		if err != nil {
			t.Fatalf("%s: no notification on %s: %v", what, channel, err)
		}
		return n.Payload
	}

	// The first group a pipeline commits notifies.
	r, created, err := b.pipeline.SubmitStaff(ctx, "alice", ticket("demo-user-1", "ours"), nil)
	if err != nil || !created {
		t.Fatalf("submit: created %v, %v", created, err)
	}
	ourPayload := heard("intake")

	// The same job inserted by River, with the client the pipeline's
	// workers would use.
	client, err := b.pipeline.NewClient(false)
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.Insert(ctx, jobs.VerifyArgs{RequestID: r.ID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	riverPayload := heard("River's insert")
	var decodedOurs, decodedRivers map[string]any
	if json.Unmarshal([]byte(ourPayload), &decodedOurs) != nil || json.Unmarshal([]byte(riverPayload), &decodedRivers) != nil ||
		!reflect.DeepEqual(decodedOurs, decodedRivers) {
		t.Errorf("notification %q, River's %q", ourPayload, riverPayload)
	}

	row := func(where string, arg any) map[string]any {
		t.Helper()
		var j map[string]any
		err := b.db.Pool.QueryRow(ctx, `SELECT to_jsonb(j) - 'id' - 'created_at' - 'scheduled_at'
			FROM river_job j WHERE `+where, arg).Scan(&j)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	ours := row(`kind = 'verify' AND id <> $1`, res.Job.ID)
	rivers := row(`id = $1`, res.Job.ID)
	if !reflect.DeepEqual(ours, rivers) {
		t.Errorf("intake's job row differs from River's:\n ours   %v\n River's %v", ours, rivers)
	}
	var timesSet bool
	if err := b.db.Pool.QueryRow(ctx, `SELECT bool_and(created_at IS NOT NULL AND scheduled_at <= now()) FROM river_job`).Scan(&timesSet); err != nil || !timesSet {
		t.Errorf("a job without its creation time or due later: %v", err)
	}
}
