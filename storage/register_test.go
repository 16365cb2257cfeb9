package storage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/storage"
)

// TestRegisterRowsPagesByKey walks seven requests, three received at the
// same instant, two rows a page: each once, in (received_at, id) order,
// and within the period only.
func TestRegisterRowsPagesByKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	offsets := []time.Duration{-time.Second, 0, time.Hour, time.Hour, time.Hour, 2 * time.Hour, 24 * time.Hour}
	var want []string
	err := b.db.InTx(ctx, func(tx pgx.Tx) error {
		for i, off := range offsets {
			r := newRequest()
			r.ReceivedAt, r.UpdatedAt = base.Add(off), base.Add(off)
			if err := storage.InsertRequest(ctx, tx, r, nil); err != nil {
				return err
			}
			if i >= 1 && i <= 5 {
				want = append(want, r.ID) // ids are time-ordered: insertion order is id order
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f := storage.RegisterFilter{From: base, To: base.Add(24 * time.Hour), PageSize: 2}
	var got []string
	err = storage.RegisterRows(ctx, b.db.Pool, f, func(r storage.RegisterRow) error {
		got = append(got, r.ID)
		if r.Outcome != "pending" || r.Breached || r.LastDay != "" {
			t.Errorf("row %+v", r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d rows %v, want %v", len(got), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d = %s, want %s", i, got[i], want[i])
		}
	}
	// Another product's scope sees none; fn's error stops the walk.
	f.Products = []string{"wechat"}
	if err := storage.RegisterRows(ctx, b.db.Pool, f, func(storage.RegisterRow) error { t.Error("a row of webank"); return nil }); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	n := 0
	f.Products = nil
	if err := storage.RegisterRows(ctx, b.db.Pool, f, func(storage.RegisterRow) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("stopped walk: %v after %d rows", err, n)
	}
}
