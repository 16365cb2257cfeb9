// Package storagetest gives each test a database of its own on a real
// Postgres server, so tests run in parallel without seeing each other.
package storagetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/storage"
	"github.com/datarights/datarights/storage/localpg"
)

const localURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

var (
	adminOnce sync.Once
	adminURL  string
	adminErr  error
)

// AdminURL is the server tests create their databases on: TEST_DATABASE_URL;
// else the server on 127.0.0.1:5432; else a private server started from the
// locally installed Postgres binaries in a shared temporary directory, which
// later test runs (and other test packages running at the same time) reuse.
func AdminURL() (string, error) {
	adminOnce.Do(func() {
		if v := os.Getenv("TEST_DATABASE_URL"); v != "" {
			adminURL = v
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, localURL); err == nil {
			conn.Close(ctx)
			adminURL = localURL
			return
		}
		adminURL, adminErr = privateServer()
	})
	return adminURL, adminErr
}

// privateServer starts (or adopts) the shared private server. A file lock
// keeps test packages running in parallel from starting two.
func privateServer() (string, error) {
	dir := filepath.Join(os.TempDir(), "datarights-test-postgres")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing releases it too
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := localpg.Start(ctx, localpg.Config{Dir: dir})
	if err != nil {
		return "", fmt.Errorf("no Postgres on 127.0.0.1:5432 and none could be started: %w", err)
	}
	return srv.URL("postgres"), nil
}

// NewDatabase creates an empty database for the test, drops it when the test
// ends, and returns its URL. prefix shows up in the name to tell databases
// apart when debugging.
func NewDatabase(t testing.TB, prefix string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	admin, err := AdminURL()
	if err != nil {
		t.Fatalf("storagetest: %v (set TEST_DATABASE_URL to use another server)", err)
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("storagetest: connect to %s: %v (is Postgres running? set TEST_DATABASE_URL)", redact(admin), err)
	}
	defer conn.Close(ctx)

	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	name := "drtest_" + strings.ToLower(prefix) + "_" + hex.EncodeToString(suffix[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("storagetest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if os.Getenv("STORAGETEST_KEEP") != "" {
			t.Logf("storagetest: keeping database %s", name)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("storagetest: connect to drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("storagetest: drop database %s: %v", name, err)
		}
	})

	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("storagetest: parse %s: %v", redact(admin), err)
	}
	u.Path = "/" + name
	return u.String()
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}

// NewDB gives the test a database of its own with datarights' and River's
// tables migrated, open for the test's duration, and its URL.
func NewDB(t testing.TB, prefix string) (*storage.DB, string) {
	t.Helper()
	ctx := context.Background()
	url := NewDatabase(t, prefix)
	db, err := storage.Open(ctx, url)
	if err != nil {
		t.Fatalf("storagetest: %v", err)
	}
	t.Cleanup(db.Close)
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatalf("storagetest: %v", err)
	}
	return db, url
}
