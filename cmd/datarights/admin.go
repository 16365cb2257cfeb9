package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/keyring"
	"github.com/datarights/datarights/storage"
)

// databaseURL is DATABASE_URL, or the configuration file's database_url when
// DATABASE_URL is unset: migrations and tokens need nothing else.
func databaseURL(path string, getenv func(string) string) (string, error) {
	if v := getenv("DATABASE_URL"); v != "" {
		return v, nil
	}
	if _, err := os.Stat(path); err != nil {
		return "", usageError(fmt.Sprintf("datarights: set DATABASE_URL or pass -config (%s not found)", path))
	}
	cfg, err := config.Load(path, getenv)
	if err != nil {
		return "", err
	}
	return cfg.DatabaseURL, nil
}

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "up" {
		return usageError("datarights migrate: say `migrate up`")
	}
	fs, path := newFlags("migrate up", stderr)
	runtimeRole := fs.String("runtime-role", "", "the role the service connects as; it is granted only what the service needs\n(default: the role of database_url, when the migrations have a URL of their own)")
	single := fs.Bool("single-role", false, "let one role own the tables and run the service (small setups: the service could then rewrite the audit trail)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *single && *runtimeRole != "" {
		return usageError("datarights migrate up: -runtime-role and -single-role exclude each other")
	}
	serviceURL, migrateURL, err := migrationURLs(*path, getenv)
	if err != nil {
		return err
	}
	opts := storage.MigrateOptions{RuntimeRole: *runtimeRole, SingleRole: *single}
	if !opts.SingleRole && opts.RuntimeRole == "" {
		if serviceURL == "" {
			return usageError("datarights migrate up: say -runtime-role ROLE (the role the service connects as) or -single-role;\n" +
				"or set " + config.MigrateEnvVar + " (or migrate_database_url) to migrate as another role than DATABASE_URL's")
		}
		if opts.RuntimeRole, err = roleOf(ctx, serviceURL); err != nil {
			return err
		}
	}
	db, err := storage.Open(ctx, migrateURL)
	if err != nil {
		return err
	}
	defer db.Close()
	res, err := db.MigrateWith(ctx, opts)
	if err != nil {
		return err
	}
	if len(res.Own)+len(res.River) == 0 {
		fmt.Fprintln(stdout, "database is up to date")
	} else {
		fmt.Fprintf(stdout, "applied river versions %v and migrations %v\n", res.River, res.Own)
	}
	if opts.SingleRole {
		fmt.Fprintln(stderr, "warning: single role: the role that owns the tables also runs the service, so nothing but triggers keeps it from rewriting the audit trail (docs/security.md §8)")
	} else {
		fmt.Fprintf(stdout, "tables owned by %s; runtime role %s may read and append to the audit trail, never change it\n", storage.OwnerRole, opts.RuntimeRole)
	}
	return nil
}

// migrationURLs returns the service's database URL (database_url, or ""
// when only one URL is known) and the one migrations run on
// (migrate_database_url, else database_url), from the environment or the
// configuration file.
func migrationURLs(path string, getenv func(string) string) (serviceURL, migrateURL string, err error) {
	serviceURL, migrateURL = getenv("DATABASE_URL"), getenv(config.MigrateEnvVar)
	if serviceURL == "" || migrateURL == "" {
		if _, statErr := os.Stat(path); statErr == nil {
			cfg, err := config.Load(path, getenv)
			if err != nil {
				return "", "", err
			}
			serviceURL, migrateURL = cfg.DatabaseURL, cfg.MigrateDatabaseURL
		}
	}
	switch {
	case serviceURL == "" && migrateURL == "":
		return "", "", usageError(fmt.Sprintf("datarights: set DATABASE_URL (and %s) or pass -config (%s not found)", config.MigrateEnvVar, path))
	case migrateURL == "":
		return "", serviceURL, nil
	}
	return serviceURL, migrateURL, nil
}

// roleOf returns the role a database URL connects as.
func roleOf(ctx context.Context, url string) (string, error) {
	db, err := storage.Open(ctx, url)
	if err != nil {
		return "", err
	}
	defer db.Close()
	return db.CurrentRole(ctx)
}

func runToken(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		return usageError("datarights token: say `token add NAME`, `token revoke NAME` or `token hash TOKEN`")
	}
	verb, arg := args[0], args[1]
	if verb == "hash" {
		fmt.Fprintln(stdout, config.HashToken(arg))
		return nil
	}
	fs, path := newFlags("token "+verb, stderr)
	if err := parseFlags(fs, args[2:]); err != nil {
		return err
	}
	url, err := databaseURL(*path, getenv)
	if err != nil {
		return err
	}
	db, err := storage.Open(ctx, url)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.CheckMigrations(ctx); err != nil {
		return err
	}
	switch verb {
	case "add":
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		token := "drs_" + base64.RawURLEncoding.EncodeToString(b[:])
		if err := storage.PutStaffToken(ctx, db.Pool, arg, config.HashToken(token), time.Now()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", token)
		fmt.Fprintf(stderr, "staff token %q created; it is shown only now and stored hashed\n", arg)
		return nil
	case "revoke":
		if err := storage.RevokeStaffToken(ctx, db.Pool, arg, time.Now()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "staff token %q revoked\n", arg)
		return nil
	}
	return usageError(fmt.Sprintf("datarights token: unknown verb %q", verb))
}

// runKey prints a new secret key entry. Rotation: put the new entry first
// in DATARIGHTS_SECRET_KEY and keep the old ones after it (docs/security.md).
func runKey(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "new" || len(args) > 2 {
		return usageError("datarights key: say `key new [ID]` (ID defaults to today's date, e.g. 2026-12-02)")
	}
	id := time.Now().UTC().Format("2006-01-02")
	if len(args) == 2 {
		id = args[1]
	}
	entry, err := keyring.New(id)
	if err != nil {
		return usageError("datarights key new: " + err.Error())
	}
	fmt.Fprintln(stdout, entry)
	return nil
}
