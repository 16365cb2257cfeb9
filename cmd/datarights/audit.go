package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/keyring"
	"github.com/datarights/datarights/storage"
)

// errAuditBroken makes `audit verify` exit non-zero once it has printed
// what is broken.
var errAuditBroken = errors.New("the audit trail is broken (see above)")

func runAudit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	g := group{"audit", "  datarights audit verify [-config FILE]\n  datarights audit anchor [-config FILE]\n"}
	if _, err := g.verb(args, "verify", "anchor"); err != nil {
		return err
	}
	about := "check every request's audit chain and every anchor; exit 1 naming the first broken link"
	if args[0] == "anchor" {
		about = "anchor the audit trail now (the service does it every audit.anchor_interval)"
	}
	c := newCommand("audit "+args[0], "datarights audit "+args[0]+" [-config FILE]", about+";\nDATABASE_URL and "+keyring.EnvVar+" override the file")
	path := c.configFlag()
	if _, err := c.parse(args[1:], 0, 0); err != nil {
		return err
	}
	url, err := databaseURL(*path, getenv)
	if err != nil {
		return err
	}
	keys, err := secretKeys(*path, getenv)
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
	started := time.Now()
	if args[0] == "anchor" {
		// What the audit_anchor job does every audit.anchor_interval, now:
		// e.g. right before a backup is taken, or after a migration.
		a, err := db.AnchorAudit(ctx, keys, time.Now())
		switch {
		case err != nil:
			return err
		case a == nil:
			fmt.Fprintln(stdout, "no audit events since the last anchor")
		default:
			fmt.Fprintf(stdout, "anchor #%d: %s up to seq %d (in %s)\n", a.N, plural(a.Events, "event"), a.LastSeq, time.Since(started).Round(time.Millisecond))
		}
		return nil
	}
	rep, err := db.VerifyAudit(ctx, keys)
	if err != nil {
		return err
	}
	printAuditReport(stdout, rep, time.Since(started))
	if !rep.OK() {
		return errAuditBroken
	}
	return nil
}

// secretKeys are the keys anchors were MACed with: DATARIGHTS_SECRET_KEY,
// from the environment (or what the configuration file's loader reads).
func secretKeys(path string, getenv func(string) string) (*keyring.Keyring, error) {
	if v := getenv(keyring.EnvVar); v != "" {
		return keyring.Parse(v)
	}
	if getenv("DATABASE_URL") == "" {
		if cfg, err := config.Load(path, getenv); err == nil && cfg.Keys != nil {
			return cfg.Keys, nil
		}
	}
	return nil, fmt.Errorf("%s is not set: the audit anchors are checked with the keys that made them (docs/security.md)", keyring.EnvVar)
}

func printAuditReport(w io.Writer, rep *storage.AuditReport, took time.Duration) {
	fmt.Fprintf(w, "audit trail: %s in %s, %s", plural(rep.Events, "event"), plural(rep.Requests, "request"), plural(rep.Anchors, "anchor"))
	if a := rep.LastAnchor; a != nil {
		fmt.Fprintf(w, " (the last, #%d, at seq %d on %s)", a.N, a.LastSeq, a.At.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "; %s after the last anchor; checked in %s\n", plural(rep.Unanchored, "event"), took.Round(time.Millisecond))
	if rep.OK() {
		fmt.Fprintln(w, "OK: every request's chain and every anchor checks out")
		return
	}
	var total int64
	kinds := make([]string, 0, len(rep.Counts))
	for k, n := range rep.Counts {
		total += n
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(kinds)
	fmt.Fprintf(w, "BROKEN: %s (%s)\n", plural(total, "problem"), strings.Join(kinds, ", "))
	fmt.Fprintf(w, "first broken link: %s\n", rep.Problems[0])
	for _, p := range rep.Problems[1:] {
		fmt.Fprintf(w, "  then: %s\n", p)
	}
	if n := total - int64(len(rep.Problems)); n > 0 {
		fmt.Fprintf(w, "  … and %d more\n", n)
	}
}

func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
