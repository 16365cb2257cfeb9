package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/keyring"
	"github.com/datarights/datarights/rights"
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
	g := group{"migrate", "  datarights migrate up [-config FILE] [-runtime-role R | -single-role]\n"}
	if _, err := g.verb(args, "up"); err != nil {
		return err
	}
	c := newCommand("migrate up", "datarights migrate up [-config FILE] [-runtime-role R | -single-role]",
		"apply the database migrations on "+config.MigrateEnvVar+" (else DATABASE_URL, else the file's URLs),\n"+
			"hand the tables to "+storage.OwnerRole+" and grant the service's role only what it needs")
	path := c.configFlag()
	runtimeRole := c.fs.String("runtime-role", "", "the role the service connects as; it is granted only what the service needs\n(default: the role of database_url, when the migrations have a URL of their own)")
	single := c.fs.Bool("single-role", false, "let one role own the tables and run the service (small setups: the service could then rewrite the audit trail)")
	if _, err := c.parse(args[1:], 0, 0); err != nil {
		return err
	}
	if *single && *runtimeRole != "" {
		return c.mistake("-runtime-role and -single-role exclude each other")
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
	g := group{"token", tokenVerbs}
	verb, err := g.verb(args, "add", "list", "revoke", "hash")
	if err != nil {
		return err
	}
	var c *command
	var path, role, products *string
	npos := 1
	switch verb {
	case "add":
		c = newCommand("token add", "datarights token add NAME --role agent|approver|auditor|admin [--products a,b] [-config FILE]",
			"create a staff token for NAME, print it once (to stdout) and store only its hash")
		role = c.fs.String("role", "", "the staff member's role: agent, approver, auditor or admin")
		products = c.fs.String("products", "", "comma-separated products they work on; empty for all")
	case "list":
		c, npos = newCommand("token list", "datarights token list [-config FILE]", "list the staff tokens: names, roles, products, who issued them, revoked when"), 0
	case "revoke":
		c = newCommand("token revoke", "datarights token revoke NAME [-config FILE]", "revoke NAME's staff token")
	case "hash":
		c = newCommand("token hash", "datarights token hash TOKEN", "print the SHA-256 of TOKEN, to put in the configuration's staff_tokens[].sha256")
	}
	if verb != "hash" {
		path = c.configFlag()
	}
	pos, err := c.parse(args[1:], npos, npos)
	if err != nil {
		return err
	}
	if verb == "hash" {
		fmt.Fprintln(stdout, config.HashToken(pos[0]))
		return nil
	}
	var name string
	if npos == 1 {
		name = pos[0]
	}
	var staff rights.Staff
	if verb == "add" {
		staff = rights.Staff{Name: name, Role: rights.Role(*role)}
		for _, p := range strings.Split(*products, ",") {
			if p = strings.TrimSpace(p); p != "" {
				staff.Products = append(staff.Products, p)
			}
		}
		if err := rights.ValidateStaff(staff); err != nil {
			return c.mistake(problemsText(err))
		}
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
		token, err := config.NewStaffToken()
		if err != nil {
			return err
		}
		if err := storage.CreateStaffToken(ctx, db.Pool, staff, config.HashToken(token), time.Now(), "cli"); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", token)
		scope := "every product"
		if len(staff.Products) > 0 {
			scope = strings.Join(staff.Products, ", ")
		}
		fmt.Fprintf(stderr, "staff token %q created (%s, %s); it is shown only now and stored hashed\n", name, staff.Role, scope)
		return nil
	case "list":
		tokens, err := storage.ListStaffTokens(ctx, db.Pool)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROLE\tPRODUCTS\tCREATED\tBY\tREVOKED")
		for _, t := range tokens {
			products, revoked := "all", ""
			if len(t.Products) > 0 {
				products = strings.Join(t.Products, ",")
			}
			if t.RevokedAt != nil {
				revoked = t.RevokedAt.Format(time.DateTime)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Role, products, t.CreatedAt.Format(time.DateTime), t.CreatedBy, revoked)
		}
		return tw.Flush()
	case "revoke":
		if err := storage.RevokeStaffToken(ctx, db.Pool, name, time.Now()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "staff token %q revoked\n", name)
		return nil
	}
	return nil // g.verb allowed no other verb
}

const tokenVerbs = `  datarights token add NAME --role agent|approver|auditor|admin [--products a,b] [-config FILE]
  datarights token list [-config FILE]
  datarights token revoke NAME [-config FILE]
  datarights token hash TOKEN`

// problemsText is a validation error's field problems on one line.
func problemsText(err error) string {
	var e *rights.Error
	if !errors.As(err, &e) || len(e.Fields) == 0 {
		return rights.ErrorMessage(err)
	}
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = "--" + f.Field + " " + f.Reason
	}
	return strings.Join(parts, "; ")
}

// runKey prints a new secret key entry. Rotation: put the new entry first
// in DATARIGHTS_SECRET_KEY and keep the old ones after it (docs/security.md).
func runKey(args []string, stdout io.Writer) error {
	g := group{"key", "  datarights key new [ID]\n"}
	if _, err := g.verb(args, "new"); err != nil {
		return err
	}
	c := newCommand("key new", "datarights key new [ID]",
		"print a new entry for "+keyring.EnvVar+" (ID defaults to today's date, e.g. 2026-12-02);\n"+
			"to rotate, put the new entry first and keep the old ones after it (docs/security.md §6)")
	pos, err := c.parse(args[1:], 0, 1)
	if err != nil {
		return err
	}
	id := time.Now().UTC().Format("2006-01-02")
	if len(pos) == 1 {
		id = pos[0]
	}
	entry, err := keyring.New(id)
	if err != nil {
		return c.mistake(err.Error())
	}
	fmt.Fprintln(stdout, entry)
	return nil
}
