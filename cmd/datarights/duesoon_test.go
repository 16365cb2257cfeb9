package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/demo"
	"github.com/datarights/datarights/storage"
	"github.com/datarights/datarights/storage/storagetest"
)

// TestStartStoresTheDueSoonFraction: a start stores sla.due_soon_at for the
// on-track queue's instants and recomputes them; a start with another
// value changes it, and says so.
func TestStartStoresTheDueSoonFraction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, url := storagetest.NewDB(t, "duesoon")
	for _, c := range []struct {
		fraction float64
		logged   string
	}{
		{0.8, ""},
		{0.8, ""},
		{0.7, `"from":0.8,"to":0.7`},
	} {
		cfg, err := config.Parse("duesoon.yaml", []byte(demo.ConfigYAML(url, "postgres://unused/bank", filepath.Join(t.TempDir(), "data"))), nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg.SLA.DueSoonAt = c.fraction
		var log bytes.Buffer
		stop, done, err := dueSoonOnStart(ctx, cfg, db, newLogger(&log))
		if err != nil {
			t.Fatal(err)
		}
		<-done
		stop()
		if ready, err := storage.DueSoonReady(ctx, db.Pool, c.fraction); err != nil || !ready {
			t.Fatalf("after a start at %v the instants are not ready: %v", c.fraction, err)
		}
		if changed := strings.Contains(log.String(), "sla.due_soon_at changed"); changed != (c.logged != "") || !strings.Contains(log.String(), c.logged) {
			t.Errorf("start at %v logged:\n%s", c.fraction, log.String())
		}
	}
}
