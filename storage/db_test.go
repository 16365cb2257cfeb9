package storage_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
	"github.com/datarights/datarights/storage/storagetest"
)

type testBundle struct {
	db  *storage.DB
	url string
}

func setup(t *testing.T) testBundle {
	t.Helper()
	db, url := storagetest.NewDB(t, "storage")
	return testBundle{db: db, url: url}
}

func TestMigrateConcurrentlyAppliesOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := storagetest.NewDatabase(t, "migrate")

	var wg sync.WaitGroup
	results := make([]storage.MigrateResult, 4)
	errs := make([]error, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := storage.Open(ctx, url)
			if err != nil {
				errs[i] = err
				return
			}
			defer db.Close()
			results[i], errs[i] = db.Migrate(ctx)
		}()
	}
	wg.Wait()
	applied := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("migrate %d: %v", i, err)
		}
		if len(results[i].Own) > 0 {
			applied++
		}
	}
	if applied != 1 {
		t.Fatalf("own migrations applied by %d processes, want exactly 1", applied)
	}

	db, err := storage.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.CheckMigrations(ctx); err != nil {
		t.Fatalf("CheckMigrations after migrate: %v", err)
	}
}

func TestCheckMigrationsOnEmptyDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := storage.Open(ctx, storagetest.NewDatabase(t, "empty"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.CheckMigrations(ctx); !errors.Is(err, storage.ErrMigrationsPending) {
		t.Fatalf("CheckMigrations on empty database = %v, want ErrMigrationsPending", err)
	}
}

func newRequest() *rights.Request {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return &rights.Request{
		ID: storage.NewID(), Product: "webank", Type: rights.TypeCopy, Channel: rights.ChannelStaff,
		Status: rights.StatusReceived, Subject: rights.Subject{Identities: map[string]string{"user_id": "u-1"}},
		DeliveryEmail: "u1@example.com", Relation: rights.RelationSelf, Locale: rights.LocaleEN,
		CreatedBy: "staff:alice", ReceivedAt: now, UpdatedAt: now,
	}
}

func TestTransitionWritesAuditAndRefusesIllegalMoves(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	r := newRequest()
	err := b.db.InTx(ctx, func(tx pgx.Tx) error {
		if err := storage.InsertRequest(ctx, tx, r, nil); err != nil {
			return err
		}
		return storage.Transition(ctx, tx, r, rights.StatusVerified, time.Now(), storage.Change{Actor: "system", Action: "request.verified"})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = b.db.InTx(ctx, func(tx pgx.Tx) error {
		locked, err := storage.LockRequest(ctx, tx, r.ID)
		if err != nil {
			return err
		}
		return storage.Transition(ctx, tx, locked, rights.StatusCompleted, time.Now(), storage.Change{Actor: "system", Action: "request.completed"})
	})
	if rights.ErrorCode(err) != rights.EConflict {
		t.Fatalf("verified → completed: err = %v, want conflict", err)
	}
	got, err := storage.GetRequest(ctx, b.db.Pool, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != rights.StatusVerified || got.VerifiedAt == nil {
		t.Fatalf("status = %s verified_at = %v, want verified with a time", got.Status, got.VerifiedAt)
	}
	events, err := storage.ListAudit(ctx, b.db.Pool, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].FromStatus != rights.StatusReceived || events[0].ToStatus != rights.StatusVerified {
		t.Fatalf("audit = %+v, want one received → verified event", events)
	}
}

func TestAuditIsAppendOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	r := newRequest()
	err := b.db.InTx(ctx, func(tx pgx.Tx) error {
		if err := storage.InsertRequest(ctx, tx, r, nil); err != nil {
			return err
		}
		return storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: time.Now(), Actor: "system", Action: "request.received"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.db.Pool.Exec(ctx, "UPDATE audit_events SET actor = 'someone else'"); err == nil {
		t.Fatal("updating the audit trail succeeded, want an error")
	}
	if _, err := b.db.Pool.Exec(ctx, "DELETE FROM audit_events"); err == nil {
		t.Fatal("deleting the audit trail succeeded, want an error")
	}
}

func TestListRequestsPaginates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	const total = 7
	base := time.Now().UTC().Truncate(time.Microsecond)
	for i := range total {
		r := newRequest()
		r.ReceivedAt = base.Add(time.Duration(i) * time.Second)
		if i%2 == 0 {
			r.Product = "wechat"
		}
		if err := b.db.InTx(ctx, func(tx pgx.Tx) error { return storage.InsertRequest(ctx, tx, r, nil) }); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	cursor, pages := "", 0
	for {
		page, next, err := storage.ListRequests(ctx, b.db.Pool, storage.RequestFilter{Limit: 3, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range page {
			if seen[r.ID] {
				t.Fatalf("request %s on two pages", r.ID)
			}
			seen[r.ID] = true
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != total || pages != 3 {
		t.Fatalf("saw %d requests on %d pages, want %d on 3", len(seen), pages, total)
	}
	wechat, _, err := storage.ListRequests(ctx, b.db.Pool, storage.RequestFilter{Product: "wechat"})
	if err != nil {
		t.Fatal(err)
	}
	if len(wechat) != 4 {
		t.Fatalf("wechat requests = %d, want 4", len(wechat))
	}
	if _, _, err := storage.ListRequests(ctx, b.db.Pool, storage.RequestFilter{Cursor: "not-a-cursor"}); rights.ErrorCode(err) != rights.EInvalid {
		t.Fatalf("bad cursor: err = %v, want invalid", err)
	}
}
