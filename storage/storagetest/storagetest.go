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
// tables migrated, open for the test's duration as the runtime role (so the
// test runs with the service's grants, not a superuser's), and its URL.
func NewDB(t testing.TB, prefix string) (*storage.DB, string) {
	t.Helper()
	db, url, _ := NewDBWithAdmin(t, prefix)
	return db, url
}

// NewDBWithAdmin is NewDB, plus the URL of a superuser connection to the same
// database, for what the runtime role may not do (tampering, inspecting).
func NewDBWithAdmin(t testing.TB, prefix string) (db *storage.DB, runtimeURL, adminURL string) {
	t.Helper()
	ctx := context.Background()
	adminURL = NewDatabase(t, prefix)
	if err := Migrate(ctx, adminURL); err != nil {
		t.Fatalf("storagetest: %v", err)
	}
	runtimeURL = RuntimeURL(t, adminURL)
	db, err := storage.Open(ctx, runtimeURL)
	if err != nil {
		t.Fatalf("storagetest: %v", err)
	}
	t.Cleanup(db.Close)
	return db, runtimeURL, adminURL
}

// RuntimeRole is the role tests run the service as: a plain login role,
// granted per database by the migrations (storage.MigrateOptions). It is
// shared by every test database on the server and never dropped.
const RuntimeRole = "drtest_runtime"

// runtimePassword is the test role's password, for servers that ask for
// one; it protects nothing but test databases.
const runtimePassword = "drtest_runtime"

var (
	runtimeOnce sync.Once
	runtimeErr  error
)

// RuntimeURL returns dbURL (a superuser's URL of a test database) as
// RuntimeRole, creating the role on the server the first time.
func RuntimeURL(t testing.TB, dbURL string) string {
	t.Helper()
	if err := ensureRuntimeRoleOnce(dbURL); err != nil {
		t.Fatalf("storagetest: runtime role: %v", err)
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("storagetest: parse %s: %v", redact(dbURL), err)
	}
	u.User = url.UserPassword(RuntimeRole, runtimePassword)
	return u.String()
}

func ensureRuntimeRole(dbURL string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	// Other test packages, running at the same time, race to create it.
	_, err = conn.Exec(ctx, `DO $$ BEGIN
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '`+RuntimeRole+`') THEN
			CREATE ROLE `+RuntimeRole+` LOGIN PASSWORD '`+runtimePassword+`';
		END IF;
		EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$`)
	return err
}

// Migrate migrates the database at adminURL (a superuser's) with the two
// roles: the owner role owns the tables, RuntimeRole gets the service's
// grants.
func Migrate(ctx context.Context, adminURL string) error {
	admin, err := storage.Open(ctx, adminURL)
	if err != nil {
		return err
	}
	defer admin.Close()
	if err := ensureRuntimeRoleOnce(adminURL); err != nil {
		return err
	}
	_, err = admin.MigrateWith(ctx, storage.MigrateOptions{RuntimeRole: RuntimeRole})
	return err
}

func ensureRuntimeRoleOnce(dbURL string) error {
	runtimeOnce.Do(func() { runtimeErr = ensureRuntimeRole(dbURL) })
	return runtimeErr
}
