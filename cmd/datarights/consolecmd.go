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
	g := group{"console", "  datarights console link NAME [-config FILE] [-ttl 15m]\n"}
	if _, err := g.verb(args, "link"); err != nil {
		return err
	}
	c := newCommand("console link", "datarights console link NAME [-config FILE] [-ttl 15m]",
		"print a one-time sign-in link to the staff console (/console/) for staff member NAME,\n"+
			"with http.public_url (or DATARIGHTS_PUBLIC_URL); only the link's hash is stored")
	path := c.configFlag()
	ttl := c.fs.Duration("ttl", config.DefaultSigninLinkTTL, "how long the link may wait to be used")
	pos, err := c.parse(args[1:], 0, -1)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return c.mistake("name one staff member, e.g. `console link li.wei`")
	}
	if *ttl < time.Minute || *ttl > 24*time.Hour {
		return c.mistake("-ttl must be between 1m and 24h")
	}
	name := pos[0]
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
