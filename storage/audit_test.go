package storage_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/datarights/datarights/keyring"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
	"github.com/datarights/datarights/storage/storagetest"
)

// auditRequest inserts a request with n audit events.
func auditRequest(t *testing.T, db *storage.DB, n int) string {
	t.Helper()
	ctx := context.Background()
	r := newRequest()
	err := db.InTx(ctx, func(tx pgx.Tx) error {
		if err := storage.InsertRequest(ctx, tx, r, nil); err != nil {
			return err
		}
		for i := range n {
			actor := rights.ActorSystem
			if i == 0 {
				actor = rights.ActorStaff("alice")
			}
			if err := storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: time.Now(), Actor: actor,
				Action: fmt.Sprintf("step.%d", i), Detail: map[string]any{"i": i, "note": "ü"}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return r.ID
}

func verifyOK(t *testing.T, db *storage.DB, keys *keyring.Keyring) *storage.AuditReport {
	t.Helper()
	rep, err := db.VerifyAudit(context.Background(), keys)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("verify found problems in an untouched trail: %v", rep.Problems)
	}
	return rep
}

func TestAuditChainsVerifyAndAnchor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := storagetest.NewDB(t, "auditchain")
	keys := keyring.ForTest()

	if a, err := db.AnchorAudit(ctx, keys, time.Now()); err != nil || a != nil {
		t.Fatalf("anchor of an empty trail = %v, %v; want nothing", a, err)
	}
	first := auditRequest(t, db, 3)
	auditRequest(t, db, 2)

	// Concurrent appends to one request serialise on its chain.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- db.InTx(ctx, func(tx pgx.Tx) error {
				return storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: first, At: time.Now(), Actor: rights.ActorRequester,
					Action: "concurrent", Detail: map[string]any{"n": i}})
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	rep := verifyOK(t, db, keys)
	if rep.Events != 13 || rep.Requests != 2 || rep.Anchors != 0 || rep.Unanchored != 13 {
		t.Fatalf("report = %+v, want 13 events in 2 requests, none anchored", rep)
	}
	events, err := storage.ListAudit(ctx, db.Pool, first)
	if err != nil || len(events) != 11 || events[0].Action != "step.0" {
		t.Fatalf("ListAudit = %v, %v", events, err)
	}

	a, err := db.AnchorAudit(ctx, keys, time.Now())
	if err != nil || a == nil || a.N != 1 || a.Events != 13 {
		t.Fatalf("first anchor = %+v, %v; want #1 over 13 events", a, err)
	}
	if again, err := db.AnchorAudit(ctx, keys, time.Now()); err != nil || again != nil {
		t.Fatalf("anchor with nothing new = %+v, %v; want nothing", again, err)
	}
	auditRequest(t, db, 1)
	if a, err := db.AnchorAudit(ctx, keys, time.Now()); err != nil || a == nil || a.N != 2 || a.Events != 14 {
		t.Fatalf("second anchor = %+v, %v", a, err)
	}
	auditRequest(t, db, 2)
	rep = verifyOK(t, db, keys)
	if rep.Anchors != 2 || rep.Unanchored != 2 || rep.LastAnchor.N != 2 {
		t.Fatalf("report = %+v, want 2 anchors and 2 events after them", rep)
	}

	// Another key cannot vouch for the anchors.
	other, err := keyring.Parse("other:" + strings.Repeat("A", 43) + "=")
	if err != nil {
		t.Fatal(err)
	}
	rep, err = db.VerifyAudit(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.Problems[0].Kind != storage.AuditAnchorMismatch || rep.Problems[0].Anchor != 1 {
		t.Fatalf("verify with another key = %v, want anchor #1 not matching", rep.Problems)
	}
}

func TestAuditRejectsEventsWithoutActor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := storagetest.NewDB(t, "auditactor")
	r := newRequest()
	for _, actor := range []string{"", "alice", "staff:", "robot:x"} {
		err := db.InTx(ctx, func(tx pgx.Tx) error {
			if err := storage.InsertRequest(ctx, tx, r, nil); err != nil {
				return err
			}
			return storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: time.Now(), Actor: actor, Action: "x"})
		})
		if err == nil {
			t.Errorf("actor %q accepted", actor)
		}
	}
}

// The runtime role may append to the audit trail and read it, and nothing
// else: not even through grants a trigger would have caught.
func TestAuditRuntimeRoleCannotRewrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := storagetest.NewDB(t, "auditrole")
	id := auditRequest(t, db, 2)
	if _, err := db.AnchorAudit(ctx, keyring.ForTest(), time.Now()); err != nil {
		t.Fatalf("the runtime role cannot anchor: %v", err)
	}
	var role string
	if err := db.Pool.QueryRow(ctx, "SELECT current_user").Scan(&role); err != nil || role != storagetest.RuntimeRole {
		t.Fatalf("connected as %q (%v), want %s", role, err, storagetest.RuntimeRole)
	}
	denied := func(sql string, args ...any) {
		t.Helper()
		_, err := db.Pool.Exec(ctx, sql, args...)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" { // insufficient_privilege
			t.Errorf("%s: err = %v, want permission denied", sql, err)
		}
	}
	denied("UPDATE audit_events SET detail = '{}' WHERE request_id = $1", id)
	denied("DELETE FROM audit_events WHERE request_id = $1", id)
	denied("TRUNCATE audit_events")
	denied("TRUNCATE audit_events, requests CASCADE")
	denied("UPDATE audit_anchors SET events = 0")
	denied("DELETE FROM audit_anchors")
	denied("TRUNCATE audit_anchors")
	denied("SELECT * FROM audit_heads")
	denied("UPDATE audit_heads SET hash = NULL")
	denied("DELETE FROM consent_events")
	denied("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
	denied("DROP TRIGGER audit_events_chain ON audit_events")
	denied("CREATE TABLE sneaky (id int)")
	denied("INSERT INTO datarights_migrations (version, name) VALUES (999, 'x')")

	// Appending and reading still work, and River's tables are the
	// service's to use.
	auditRequest(t, db, 1)
	if _, err := storage.ListAudit(ctx, db.Pool, id); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, "DELETE FROM river_job WHERE false"); err != nil {
		t.Fatal(err)
	}
	if can, err := storage.RuntimeCanRewriteAudit(ctx, db.Pool); err != nil || can {
		t.Fatalf("RuntimeCanRewriteAudit = %v, %v; want false", can, err)
	}
}

// Migrating again changes nothing and keeps the grants exact; a runtime
// role that could undo them is refused.
func TestMigrateTwoRolesRefusesPowerfulRuntimeRoles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, _, adminURL := storagetest.NewDBWithAdmin(t, "roles")
	admin, err := storage.Open(ctx, adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if res, err := admin.MigrateWith(ctx, storage.MigrateOptions{RuntimeRole: storagetest.RuntimeRole}); err != nil || len(res.Own) > 0 {
		t.Fatalf("second migrate = %+v, %v", res, err)
	}
	for _, role := range []string{"postgres", storage.OwnerRole, "no_such_role_here"} {
		if _, err := admin.MigrateWith(ctx, storage.MigrateOptions{RuntimeRole: role}); err == nil {
			t.Errorf("runtime role %s accepted", role)
		}
	}
	if _, err := admin.MigrateWith(ctx, storage.MigrateOptions{}); err == nil {
		t.Error("migrate without a runtime role or single role accepted")
	}
	var owner string
	if err := admin.Pool.QueryRow(ctx, "SELECT tableowner FROM pg_tables WHERE tablename = 'river_job'").Scan(&owner); err != nil || owner != storage.OwnerRole {
		t.Fatalf("river_job owned by %q (%v), want %s", owner, err, storage.OwnerRole)
	}
	if can, err := storage.RuntimeCanRewriteAudit(ctx, admin.Pool); err != nil || !can {
		t.Fatalf("RuntimeCanRewriteAudit as a superuser = %v, %v; want true", can, err)
	}
}

// Events written before the chain existed are chained by the migration.
func TestAuditChainBackfill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := storagetest.NewDatabase(t, "backfill")
	db, err := storage.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.MigrateOwnUpTo(ctx, 9); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 3 {
		r := newRequest()
		ids = append(ids, r.ID)
		if err := db.InTx(ctx, func(tx pgx.Tx) error { return storage.InsertRequest(ctx, tx, r, nil) }); err != nil {
			t.Fatal(err)
		}
	}
	// Interleaved across requests, with an actor of the old kind.
	for i := range 9 {
		actor := "system"
		if i == 4 {
			actor = "recipient (email link)"
		}
		if _, err := db.Pool.Exec(ctx, `INSERT INTO audit_events (request_id, at, actor, action, to_status, detail)
			VALUES ($1, now(), $2, 'old', CASE WHEN $3 THEN 'received' END, '{"k": [1, 2.50, "x"]}')`, ids[i%3], actor, i < 3); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.MigrateWith(ctx, storage.MigrateOptions{SingleRole: true}); err != nil {
		t.Fatal(err)
	}
	if err := db.CheckMigrations(ctx); err != nil {
		t.Fatal(err)
	}
	keys := keyring.ForTest()
	rep := verifyOK(t, db, keys)
	if rep.Events != 9 || rep.Requests != 3 {
		t.Fatalf("report = %+v", rep)
	}
	// New events chain on after the backfilled ones.
	if err := db.InTx(ctx, func(tx pgx.Tx) error {
		return storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: ids[1], At: time.Now(), Actor: rights.ActorSystem, Action: "new"})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AnchorAudit(ctx, keys, time.Now()); err != nil {
		t.Fatal(err)
	}
	if rep := verifyOK(t, db, keys); rep.Events != 10 {
		t.Fatalf("report = %+v", rep)
	}
	events, err := storage.ListAudit(ctx, db.Pool, ids[1])
	if err != nil || len(events) != 4 || events[3].Action != "new" {
		t.Fatalf("ListAudit = %v, %v", events, err)
	}
}

// Migrations merged from parallel work may be applied out of order: a
// missing version below the highest applied one is still pending.
func TestCheckMigrationsNamesEveryMissingVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _, adminURL := storagetest.NewDBWithAdmin(t, "gap")
	admin, err := storage.Open(ctx, adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Pool.Exec(ctx, "DELETE FROM datarights_migrations WHERE version = 5"); err != nil {
		t.Fatal(err)
	}
	err = db.CheckMigrations(ctx)
	if !errors.Is(err, storage.ErrMigrationsPending) || !strings.Contains(err.Error(), "0005_retention.sql") {
		t.Fatalf("CheckMigrations with 0005 missing = %v, want it pending", err)
	}
}

// An event's writer takes the request's lock before its chain's, so one
// waiting for a request another transaction holds (LockRequest) holds no
// chain that the other then needs: with the order the other way round,
// Postgres would end one of them as a deadlock. Also an event written by
// the transaction that inserted its request (intake), which skips that
// lock (migration 0030), chains as before.
func TestAuditLockOrderRequestThenChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := storagetest.NewDB(t, "auditlock")
	id := auditRequest(t, db, 2) // a chain exists: later events lock its head

	holder, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(ctx)
	if _, err := storage.LockRequest(ctx, holder, id); err != nil {
		t.Fatal(err)
	}
	var holderPID int
	if err := holder.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&holderPID); err != nil {
		t.Fatal(err)
	}

	waiterDone := make(chan error, 1)
	go func() {
		waiterDone <- db.InTx(ctx, func(tx pgx.Tx) error {
			return storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: id, At: time.Now(),
				Actor: rights.ActorSystem, Action: "waiter"})
		})
	}()
	// The waiter blocks on the holder: wait until Postgres says so.
	deadline := time.Now().Add(time.Minute)
	for {
		var waiting bool
		err := db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND $1 = ANY (pg_blocking_pids(pid)))`,
			holderPID).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		select {
		case err := <-waiterDone:
			t.Fatalf("the waiter did not wait for the request's lock (err %v)", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the waiter never waited for the holder")
		}
		time.Sleep(2 * time.Millisecond)
	}
	// The holder now writes to the chain: it must not need anything the
	// waiter holds.
	if err := storage.AppendAudit(ctx, holder, rights.AuditEvent{RequestID: id, At: time.Now(),
		Actor: rights.ActorSystem, Action: "holder"}); err != nil {
		t.Fatalf("holder's event: %v", err)
	}
	if err := holder.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-waiterDone; err != nil {
		t.Fatalf("waiter's event: %v", err)
	}
	events, err := storage.ListAudit(ctx, db.Pool, id)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, ev := range events {
		actions = append(actions, ev.Action)
	}
	if got, want := strings.Join(actions, ","), "step.0,step.1,holder,waiter"; got != want {
		t.Fatalf("chain order %s, want %s", got, want)
	}
	verifyOK(t, db, keyring.ForTest())
}

// BeginReceived's transaction, begun in its insert batch, gives its
// connection back when committed, and when a statement of the batch fails
// it is rolled back (nothing of the batch stored) and gives it back too:
// intake's pool would otherwise run dry after a few refused tickets.
func TestBeginReceivedGivesTheConnectionBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := storagetest.NewDB(t, "beginreceived")
	received := func() *storage.Received {
		r := newRequest()
		return &storage.Received{Request: r, Event: rights.AuditEvent{RequestID: r.ID, At: time.Now(),
			Actor: rights.ActorSystem, Action: "request.received"}}
	}
	good := received()
	tx, err := storage.BeginReceived(ctx, db.Pool, []*storage.Received{good})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if !good.Created {
		t.Fatal("the committed request was not reported created")
	}
	if held := db.Pool.Stat().AcquiredConns(); held != 0 {
		t.Fatalf("%d connections held after the commit", held)
	}

	first, refused := received(), received()
	refused.Request.Locale = "x\x00y" // Postgres refuses a NUL in text
	if _, err := storage.BeginReceived(ctx, db.Pool, []*storage.Received{first, refused}); err == nil {
		t.Fatal("a batch with a refused insert began a transaction")
	}
	if held := db.Pool.Stat().AcquiredConns(); held != 0 {
		t.Fatalf("%d connections held after a refused batch", held)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM requests WHERE id = $1`, first.Request.ID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatal("the request before the refused one was stored")
	}
}
