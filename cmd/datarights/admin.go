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
	if err := parseFlags(fs, args[1:]); err != nil {
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
	res, err := db.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(res.Own)+len(res.River) == 0 {
		fmt.Fprintln(stdout, "database is up to date")
		return nil
	}
	fmt.Fprintf(stdout, "applied river versions %v and migrations %v\n", res.River, res.Own)
	return nil
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
