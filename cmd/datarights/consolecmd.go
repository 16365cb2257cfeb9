package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/console"
	"github.com/datarights/datarights/storage"
)

// runConsole: `datarights console link NAME` prints a one-time sign-in
// link to the staff console for an active staff member, e.g. for their
// first sign-in or after their token was replaced.
func runConsole(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "link" {
		return usageError("datarights console: say `console link NAME` (a one-time sign-in link for staff member NAME)")
	}
	fs, path := newFlags("console link", stderr)
	ttl := fs.Duration("ttl", config.DefaultSigninLinkTTL, "how long the link may wait to be used")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("datarights console link: name one staff member, e.g. `console link li.wei`")
	}
	if *ttl < time.Minute || *ttl > 24*time.Hour {
		return usageError("datarights console link: -ttl must be between 1m and 24h")
	}
	name := fs.Arg(0)
	base := getenv("DATARIGHTS_PUBLIC_URL")
	var dsn string
	if _, err := os.Stat(*path); err == nil {
		cfg, err := config.Load(*path, getenv)
		if err != nil {
			return err
		}
		dsn, base = cfg.DatabaseURL, cfg.HTTP.PublicURL
	} else if dsn = getenv("DATABASE_URL"); dsn == "" {
		return usageError(fmt.Sprintf("datarights console link: set DATABASE_URL or pass -config (%s not found)", *path))
	}
	db, err := storage.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	link, err := console.NewSigninLink(ctx, db.Pool, name, "cli", time.Now(), *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s%s\n(one use, valid for %s)\n", strings.TrimSuffix(base, "/"), link, *ttl)
	return nil
}
