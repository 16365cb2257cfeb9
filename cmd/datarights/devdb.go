package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// What `datarights dev` sets up on a Postgres server. Databases and roles
// it creates carry a comment starting with devMarker: --fresh drops only
// databases so marked, and dev sets the password only of a role so marked,
// so that a DATABASE_URL pointing at someone's real database or a role
// name that happens to exist never costs them anything.
const (
	devMarker = "datarights dev"
	// devStateSchema, in the service database, keeps the runtime role's
	// password (devRuntimePassword). Not public: the schema migrations
	// hand to datarights_owner and grant the runtime role.
	devStateSchema = "datarights_dev_state"
	// devStateLock serialises the set-up of the state schema among dev
	// instances sharing a database ("drdevrol" in ASCII).
	devStateLock = 0x6472646576726f6c
	// maxIdentifier is Postgres' longest name (NAMEDATALEN-1 bytes);
	// longer names are cut silently, which could make two derived names
	// one.
	maxIdentifier = 63
)

// devDatabases says which databases and role one dev instance uses.
type devDatabases struct {
	// service is the service's database, on DATABASE_URL's server and as
	// DATABASE_URL's role (which migrates and creates the others).
	service devDatabase
	// bank is the demo bank: derived from service, or DATARIGHTS_DEMO_DSN.
	bank devDatabase
	// role is the runtime role the service connects as.
	role string
}

// devDatabase is one database: its URL (the admin role's) and its name.
type devDatabase struct {
	url  string
	name string
}

// planDevDatabases reads DATABASE_URL (databaseURL; server is the URL of
// the server to use when it names no database: the local or the private
// one) and DATARIGHTS_DEMO_DSN (demoDSN, may be empty).
//
// A DATABASE_URL naming a database is the service's database as given,
// and the demo bank is <name>_demo_bank beside it: two instances given
// two databases share nothing. Without a name, the databases are the
// ones dev always used, datarights_dev and datarights_demo_bank. The
// runtime role is <service>_runtime: a role belongs to the whole server,
// so it is per service database too (datarights_dev_runtime by default).
func planDevDatabases(databaseURL, server, demoDSN string) (devDatabases, error) {
	var p devDatabases
	base := server
	if databaseURL != "" {
		base = databaseURL
	}
	u, name, err := parseDevURL("DATABASE_URL", base)
	if err != nil {
		return p, err
	}
	bankName := devDefaultBank
	if databaseURL == "" || name == "" {
		name = devDefaultDatabase
	} else {
		bankName = derivedName(name, "_demo_bank")
	}
	p.service = devDatabase{url: withDatabase(u, name), name: name}
	p.bank = devDatabase{url: withDatabase(u, bankName), name: bankName}
	if demoDSN != "" {
		bu, bank, err := parseDevURL("DATARIGHTS_DEMO_DSN", demoDSN)
		if err != nil {
			return p, err
		}
		if bank == "" {
			return p, errors.New("DATARIGHTS_DEMO_DSN names no database: say which, e.g. postgres://postgres@127.0.0.1:5432/my_demo_bank")
		}
		p.bank = devDatabase{url: withDatabase(bu, bank), name: bank}
	}
	if p.bank.url == p.service.url {
		return p, fmt.Errorf("the demo bank and the service cannot share database %s", p.service.name)
	}
	p.role = derivedName(name, "_runtime")
	return p, nil
}

// parseDevURL parses a postgres:// URL and returns the database it names
// ("" for none). dev derives other databases' URLs from it, which a
// key=value connection string would not allow.
func parseDevURL(what, raw string) (*url.URL, string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, "", fmt.Errorf("%s must be a postgres:// URL for datarights dev, e.g. postgres://postgres@127.0.0.1:5432/my_dev", what)
	}
	return u, strings.TrimPrefix(u.Path, "/"), nil
}

func withDatabase(u *url.URL, name string) string {
	c := *u
	c.Path, c.RawPath = "/"+name, ""
	return c.String()
}

// derivedName is base+suffix, or, when that is longer than Postgres
// keeps, base cut short with a hash of all of it, so two long bases still
// make two names.
func derivedName(base, suffix string) string {
	if len(base)+len(suffix) <= maxIdentifier {
		return base + suffix
	}
	sum := sha256.Sum256([]byte(base))
	tag := "_" + hex.EncodeToString(sum[:4])
	cut := base[:maxIdentifier-len(suffix)-len(tag)]
	for !utf8.ValidString(cut) { // not in the middle of a character
		cut = cut[:len(cut)-1]
	}
	return cut + tag + suffix
}

// maintenanceConn connects to the server of dbURL through its postgres
// database, to create, inspect and drop others.
func maintenanceConn(ctx context.Context, dbURL string) (*pgx.Conn, error) {
	u, _, err := parseDevURL("the database URL", dbURL)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.Connect(ctx, withDatabase(u, "postgres"))
	if err != nil {
		return nil, fmt.Errorf("connect to Postgres: %w", err)
	}
	return conn, nil
}

// databaseState says whether database name exists on conn's server and
// whether dev made it (its comment).
func databaseState(ctx context.Context, conn *pgx.Conn, name string) (exists, ours bool, err error) {
	var comment *string
	err = conn.QueryRow(ctx, `SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1`, name).Scan(&comment)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("look up database %s: %w", name, err)
	}
	ours = comment != nil && strings.HasPrefix(*comment, devMarker)
	// Before they were marked, dev made exactly these two.
	ours = ours || name == devDefaultDatabase || name == devDefaultBank
	return true, ours, nil
}

// ensureDevDatabase creates db if it does not exist, marked as dev's.
func ensureDevDatabase(ctx context.Context, db devDatabase, what string) error {
	conn, err := maintenanceConn(ctx, db.url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	exists, _, err := databaseState(ctx, conn, db.name)
	if err != nil || exists {
		return err
	}
	return createDevDatabase(ctx, conn, db.name, what)
}

func createDevDatabase(ctx context.Context, conn *pgx.Conn, name, what string) error {
	ident := pgx.Identifier{name}.Sanitize()
	_, err := conn.Exec(ctx, "CREATE DATABASE "+ident)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database
		return nil // another dev made it a moment ago, and marks it
	}
	if err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	// The comment is a constant: nothing from outside goes in the literal.
	if _, err := conn.Exec(ctx, "COMMENT ON DATABASE "+ident+" IS '"+devMarker+": "+what+"'"); err != nil {
		return fmt.Errorf("mark database %s as datarights dev's: %w", name, err)
	}
	return nil
}

// freshDevDatabases drops and recreates the service and bank databases,
// after checking that both are dev's: nothing is dropped unless both may
// be. A database another session uses (another dev on it) is not taken
// from under it: DROP DATABASE waits a few seconds for them to leave and
// then fails, and dev says so. It returns what it did, for the user.
func freshDevDatabases(ctx context.Context, dbs devDatabases) (string, error) {
	type target struct {
		db      devDatabase
		what    string
		conn    *pgx.Conn
		existed bool
	}
	targets := []*target{{db: dbs.service, what: "service database"}, {db: dbs.bank, what: "demo bank"}}
	for _, t := range targets {
		conn, err := maintenanceConn(ctx, t.db.url)
		if err != nil {
			return "", err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		t.conn = conn
		exists, ours, err := databaseState(ctx, conn, t.db.name)
		if err != nil {
			return "", err
		}
		t.existed = exists
		if exists && !ours {
			return "", fmt.Errorf("--fresh: database %s was not created by datarights dev (it has no %q comment), so it is not dropped; "+
				"point DATABASE_URL at a new database name (dev creates it) or drop %s yourself. Nothing was dropped",
				t.db.name, devMarker, t.db.name)
		}
		if exists {
			if err := waitUnused(ctx, conn, t.db.name); err != nil {
				return "", err
			}
		}
	}
	var dropped, created []string
	for _, t := range targets {
		ident := pgx.Identifier{t.db.name}.Sanitize()
		_, err := t.conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55006" { // object_in_use
			return "", fmt.Errorf("--fresh: database %s is in use (another datarights dev running on it? stop it first): %w", t.db.name, err)
		}
		if err != nil {
			return "", fmt.Errorf("--fresh: drop database %s: %w", t.db.name, err)
		}
		if err := createDevDatabase(ctx, t.conn, t.db.name, t.what); err != nil {
			return "", err
		}
		// IF EXISTS on a database that was not there says so in a notice
		// only; the state read above says whether it was.
		if t.existed {
			dropped = append(dropped, t.db.name)
		} else {
			created = append(created, t.db.name)
		}
	}
	var said []string
	if len(dropped) > 0 {
		said = append(said, "dropped and recreated "+databasesList(dropped))
	}
	if len(created) > 0 {
		said = append(said, "created "+databasesList(created))
	}
	return strings.Join(said, "; "), nil
}

// waitUnused returns once nobody is connected to database name, or fails
// after a few seconds (as DROP DATABASE would) naming it: another
// instance is using it. Checked for both databases before either is
// dropped, so a reset refused is not half done. A dev that has just
// stopped may still have sessions closing: hence the wait.
func waitUnused(ctx context.Context, conn *pgx.Conn, name string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name).Scan(&n); err != nil {
			return fmt.Errorf("--fresh: who uses database %s: %w", name, err)
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("--fresh: database %s is in use by %d sessions (another datarights dev running on it? stop it first). Nothing was dropped", name, n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func databasesList(names []string) string {
	if len(names) == 1 {
		return "database " + names[0]
	}
	return "databases " + strings.Join(names, " and ")
}

// errNotDevRole: a role by the runtime role's name exists and dev did not
// make it; dev leaves it alone.
var errNotDevRole = errors.New("a role by that name exists and was not created by datarights dev; dev leaves it alone")

// ensureRuntimeRole creates (or reuses) a login role for the service and
// returns serviceURL (the admin's URL of the service database) as that
// role. Its password is made once per service database and kept in it
// (devStateSchema), readable by the admin only: every restart, and every
// dev instance on the same database, sets the same one, so the
// configuration file keeps working and one instance never locks out
// another. Migrations grant the role what it needs.
func ensureRuntimeRole(ctx context.Context, serviceURL, role string) (string, error) {
	conn, err := pgx.Connect(ctx, serviceURL)
	if err != nil {
		return "", fmt.Errorf("connect to Postgres: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var comment *string
	lookupErr := conn.QueryRow(ctx, `SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1`, role).Scan(&comment)
	switch {
	case errors.Is(lookupErr, pgx.ErrNoRows):
	case lookupErr != nil:
		return "", fmt.Errorf("look up role %s: %w", role, lookupErr)
	case (comment == nil || !strings.HasPrefix(*comment, devMarker)) && role != devDefaultRuntimeRole:
		// datarights_dev_runtime predates the marker.
		return "", errNotDevRole
	}
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	// Random URL-safe base64: nothing in it needs quoting beyond the
	// literal's quotes.
	password := base64.RawURLEncoding.EncodeToString(b[:])
	ident := pgx.Identifier{role}.Sanitize()
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(devStateLock)); err != nil {
			return err
		}
		schema := pgx.Identifier{devStateSchema}.Sanitize()
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+schema+`;
			REVOKE ALL ON SCHEMA `+schema+` FROM PUBLIC;
			CREATE TABLE IF NOT EXISTS `+schema+`.runtime_roles (role text PRIMARY KEY, password text NOT NULL)`); err != nil {
			return fmt.Errorf("create %s: %w", devStateSchema, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+schema+`.runtime_roles (role, password) VALUES ($1, $2) ON CONFLICT (role) DO NOTHING`, role, password); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT password FROM `+schema+`.runtime_roles WHERE role = $1`, role).Scan(&password)
	})
	if err != nil {
		return "", fmt.Errorf("keep the password of %s: %w", role, err)
	}
	if errors.Is(lookupErr, pgx.ErrNoRows) {
		_, err = conn.Exec(ctx, "CREATE ROLE "+ident+" LOGIN")
		var pgErr *pgconn.PgError
		// Another dev on the same database may have made it a moment ago.
		if err != nil && !(errors.As(err, &pgErr) && (pgErr.Code == "42710" || pgErr.Code == "23505")) { // duplicate_object, unique_violation
			return "", fmt.Errorf("create role %s: %w", role, err)
		}
	}
	if _, err := conn.Exec(ctx, "COMMENT ON ROLE "+ident+" IS '"+devMarker+": runtime role'"); err != nil {
		return "", fmt.Errorf("mark role %s as datarights dev's: %w", role, err)
	}
	if _, err := conn.Exec(ctx, "ALTER ROLE "+ident+" LOGIN PASSWORD '"+password+"'"); err != nil {
		return "", fmt.Errorf("set the password of %s: %w", role, err)
	}
	u, err := url.Parse(serviceURL)
	if err != nil {
		return "", fmt.Errorf("parse database URL: %w", err)
	}
	u.User = url.UserPassword(role, password)
	return u.String(), nil
}
