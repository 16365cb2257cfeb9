// Package mysqltest gives each test a database of its own on a real MySQL or
// MariaDB server, so tests run in parallel without seeing each other.
//
// The server is TEST_MYSQL_DSN, a go-sql-driver data source name, or else
// root with no password on 127.0.0.1:3306. There is no fallback: a test that
// needs the server fails when it is down. To start a local MariaDB:
//
//	start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
package mysqltest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// LocalDSN is the server used when TEST_MYSQL_DSN is not set.
const LocalDSN = "root@tcp(127.0.0.1:3306)/test"

var (
	adminOnce sync.Once
	adminCfg  *mysql.Config
	admin     *sql.DB
	adminErr  error
)

// server returns the test server's configuration and a pool on it, shared by
// the tests of a package and never closed.
func server() (*mysql.Config, *sql.DB, error) {
	adminOnce.Do(func() {
		dsn := os.Getenv("TEST_MYSQL_DSN")
		if dsn == "" {
			dsn = LocalDSN
		}
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			adminErr = fmt.Errorf("TEST_MYSQL_DSN is not a valid data source name: %w", err)
			return
		}
		if cfg.Timeout == 0 {
			cfg.Timeout = 5 * time.Second
		}
		connector, err := mysql.NewConnector(cfg)
		if err != nil {
			adminErr = err
			return
		}
		adminCfg, admin = cfg, sql.OpenDB(connector)
	})
	return adminCfg, admin, adminErr
}

// NewDatabase creates an empty utf8mb4 database for the test, drops it when
// the test ends, and returns a data source name for it (with parseTime=true).
// prefix shows up in the name to tell databases apart when debugging; the
// name is a plain identifier, so it can be a schema in a store's
// configuration. Set STORAGETEST_KEEP to keep the databases.
func NewDatabase(t testing.TB, prefix string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cfg, db, err := server()
	if err != nil {
		t.Fatalf("mysqltest: %v", err)
	}
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("mysqltest: cannot reach the MySQL/MariaDB test server %s: %v\n"+
			"Start it (e.g. `start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd`) "+
			"or set TEST_MYSQL_DSN to a server where this user may create databases.", redact(cfg), err)
	}

	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	name := "drtest_" + strings.ToLower(prefix) + "_" + hex.EncodeToString(suffix[:])
	if _, err := db.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"); err != nil {
		t.Fatalf("mysqltest: create database %s on %s: %v", name, redact(cfg), err)
	}
	t.Cleanup(func() {
		if os.Getenv("STORAGETEST_KEEP") != "" {
			t.Logf("mysqltest: keeping database %s", name)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			t.Errorf("mysqltest: drop database %s: %v", name, err)
		}
	})

	dbCfg := cfg.Clone()
	dbCfg.DBName = name
	dbCfg.ParseTime = true
	return dbCfg.FormatDSN()
}

// Open returns a pool on dsn that is closed when the test ends.
func Open(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatalf("mysqltest: open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// DBName returns the database a data source name connects to.
func DBName(t testing.TB, dsn string) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("mysqltest: parse dsn: %v", err)
	}
	return cfg.DBName
}

// redact returns the server's address and user, without the password.
func redact(cfg *mysql.Config) string {
	return cfg.User + "@" + cfg.Net + "(" + cfg.Addr + ")"
}
