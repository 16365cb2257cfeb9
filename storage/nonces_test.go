package storage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/storage"
)

// TestUseNonce: a nonce is spent once; a copy racing the transaction that
// spends it waits for it and then fails, or succeeds if that transaction
// rolled back; pruning removes only nonces whose window has ended.
func TestUseNonce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	now := time.Now()
	use := func(nonce string, expires time.Time) error {
		return b.db.InTx(ctx, func(tx pgx.Tx) error { return storage.UseNonce(ctx, tx, nonce, expires) })
	}
	if err := use("nonce-0000000000000001", now.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := use("nonce-0000000000000001", now.Add(5*time.Minute)); !errors.Is(err, storage.ErrNonceUsed) {
		t.Fatalf("reused nonce: %v, want ErrNonceUsed", err)
	}

	// Two transactions with the same nonce: the second waits for the first.
	for _, commit := range []bool{true, false} {
		nonce := "nonce-race-commit-" + map[bool]string{true: "yes", false: "no"}[commit]
		first, err := b.db.Pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := storage.UseNonce(ctx, first, nonce, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		second := make(chan error, 1)
		go func() { second <- use(nonce, now.Add(time.Minute)) }()
		// The second is blocked on the first's row until it ends.
		waitBlocked(t, b.db.Pool, nonce)
		if commit {
			err = first.Commit(ctx)
		} else {
			err = first.Rollback(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		err = <-second
		if commit && !errors.Is(err, storage.ErrNonceUsed) {
			t.Errorf("after the first committed: %v, want ErrNonceUsed", err)
		}
		if !commit && err != nil {
			t.Errorf("after the first rolled back: %v, want the nonce spent", err)
		}
	}

	if err := use("nonce-expired-0000001", now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	n, err := storage.PruneNonces(ctx, b.db.Pool, now, 1000)
	if err != nil || n != 1 {
		t.Fatalf("pruned %d (%v), want 1", n, err)
	}
	var left int
	if err := b.db.Pool.QueryRow(ctx, `SELECT count(*) FROM webhook_nonces`).Scan(&left); err != nil || left != 3 {
		t.Errorf("%d nonces left (%v), want 3", left, err)
	}
}

// waitBlocked waits until a session waits on a lock while inserting nonce.
func waitBlocked(t *testing.T, pool interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, nonce string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var waiting bool
		err := pool.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%webhook_nonces%')`).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no session waits to insert nonce %s", nonce)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
