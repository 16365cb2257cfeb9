package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The two database roles. The tables belong to OwnerRole, which nobody logs
// in as: migrations act as it through membership. The service connects as
// a runtime role holding only the grants below; in particular it can append
// to the audit trail and read it, never change or remove what is there, so
// a compromised or buggy service cannot rewrite history (docs/security.md §8).

// OwnerRole owns the service's tables, sequences, functions and types. Roles
// are per server: every datarights database on the server shares it.
const OwnerRole = "datarights_owner"

// MigrateOptions says which roles migrations set up.
type MigrateOptions struct {
	// RuntimeRole is the role the service connects as (database_url). It
	// must exist, log in, and be neither a superuser, the owner role's
	// member, nor the owner of the database or schema (each could drop or
	// rewrite the audit trail).
	RuntimeRole string
	// SingleRole leaves ownership and grants alone: the connecting role
	// owns everything and the service runs as it too, so nothing but the
	// triggers stands between the service and the audit trail.
	SingleRole bool
}

// runtimeTableGrants are the runtime role's privileges on tables that differ
// from runtimeDefaultGrants. A new append-only table belongs here.
var runtimeTableGrants = map[string][]string{
	"audit_events":          {"SELECT", "INSERT"},
	"audit_anchors":         {"SELECT", "INSERT"},
	"consent_events":        {"SELECT", "INSERT"},
	"staff_events":          {"SELECT", "INSERT"},
	"audit_heads":           {}, // only the chaining trigger, as the owner
	"datarights_migrations": {"SELECT"},
	"river_migration":       {"SELECT"},
}

// runtimeDefaultGrants is what the service needs on every other table,
// River's included.
var runtimeDefaultGrants = []string{"SELECT", "INSERT", "UPDATE", "DELETE"}

var tablePrivileges = []string{"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"}

// runtimeFunctions are the functions the runtime role calls (EXECUTE is
// revoked from PUBLIC on them).
var runtimeFunctions = []string{"audit_anchor_horizon()"}

// setUpRoles creates the owner role, hands it every object of the schema
// and grants the runtime role what it needs, and nothing more. It runs after
// every migration, so it also covers tables a migration (ours or River's)
// just created; it changes nothing that is already right.
func setUpRoles(ctx context.Context, conn *pgx.Conn, runtime string) error {
	owner := pgx.Identifier{OwnerRole}.Sanitize()
	rt := pgx.Identifier{runtime}.Sanitize()

	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", OwnerRole).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		// Databases migrated at once on one server race to create it.
		_, err := conn.Exec(ctx, `DO $$ BEGIN CREATE ROLE `+owner+` NOLOGIN;
			EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$`)
		if err != nil {
			return fmt.Errorf("create role %s (the migrating role needs CREATEROLE, or create it as a superuser: CREATE ROLE %s NOLOGIN): %w", OwnerRole, OwnerRole, err)
		}
	}
	var me string
	var super, member bool
	if err := conn.QueryRow(ctx, `SELECT current_user, rolsuper, pg_has_role(current_user, $1, 'MEMBER')
		FROM pg_roles WHERE rolname = current_user`, OwnerRole).Scan(&me, &super, &member); err != nil {
		return err
	}
	if !super && !member {
		if _, err := conn.Exec(ctx, "GRANT "+owner+" TO CURRENT_USER"); err != nil {
			return fmt.Errorf("the migrating role %s must be a member of %s to hand it the tables (as a superuser: GRANT %s TO %s): %w", me, OwnerRole, OwnerRole, me, err)
		}
	}
	if err := checkRuntimeRole(ctx, conn, runtime, me); err != nil {
		return err
	}

	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var schema string
		if err := tx.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
			return err
		}
		sch := pgx.Identifier{schema}.Sanitize()
		if _, err := tx.Exec(ctx, "GRANT USAGE, CREATE ON SCHEMA "+sch+" TO "+owner); err != nil {
			return fmt.Errorf("grant schema %s to %s: %w", schema, OwnerRole, err)
		}
		if err := handToOwner(ctx, tx, owner); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "GRANT USAGE ON SCHEMA "+sch+" TO "+rt+"; REVOKE CREATE ON SCHEMA "+sch+" FROM "+rt); err != nil {
			return fmt.Errorf("grant schema %s to %s: %w", schema, runtime, err)
		}
		if err := grantTables(ctx, tx, runtime, false); err != nil {
			return err
		}
		if err := grantTables(ctx, tx, runtime, true); err != nil { // what PUBLIC or another role gives cannot be revoked here
			return err
		}
		if _, err := tx.Exec(ctx, "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "+sch+" TO "+rt); err != nil {
			return fmt.Errorf("grant sequences to %s: %w", runtime, err)
		}
		for _, f := range runtimeFunctions {
			if _, err := tx.Exec(ctx, "GRANT EXECUTE ON FUNCTION "+f+" TO "+rt); err != nil {
				return fmt.Errorf("grant %s to %s: %w", f, runtime, err)
			}
		}
		return nil
	})
}

// checkRuntimeRole refuses a runtime role that could undo what the grants
// protect.
func checkRuntimeRole(ctx context.Context, conn *pgx.Conn, runtime, me string) error {
	var super, login, member, ownsDB, ownsSchema bool
	err := conn.QueryRow(ctx, `SELECT r.rolsuper, r.rolcanlogin, pg_has_role(r.oid, $2, 'MEMBER'),
			d.datdba = r.oid, n.nspowner = r.oid
		FROM pg_roles r, pg_database d, pg_namespace n
		WHERE r.rolname = $1 AND d.datname = current_database() AND n.nspname = current_schema()`,
		runtime, OwnerRole).Scan(&super, &login, &member, &ownsDB, &ownsSchema)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("runtime role %s does not exist: create it first (CREATE ROLE %s LOGIN PASSWORD '…')", runtime, runtime)
	}
	if err != nil {
		return err
	}
	switch {
	case runtime == me:
		return fmt.Errorf("runtime role %s is the role migrations connect as: the service must connect as another role (or choose a single role)", runtime)
	case super:
		return fmt.Errorf("runtime role %s is a superuser: it could rewrite the audit trail; give the service an ordinary role", runtime)
	case member:
		return fmt.Errorf("runtime role %s is a member of %s: it could change the tables; REVOKE %s FROM %s", runtime, OwnerRole, OwnerRole, runtime)
	case ownsDB:
		return fmt.Errorf("runtime role %s owns the database: it could drop the schema with the audit trail in it; ALTER DATABASE … OWNER TO another role", runtime)
	case ownsSchema:
		return fmt.Errorf("runtime role %s owns the schema: it could drop it with the audit trail in it; ALTER SCHEMA … OWNER TO another role", runtime)
	case !login:
		return fmt.Errorf("runtime role %s cannot log in: ALTER ROLE %s LOGIN", runtime, runtime)
	}
	return nil
}

// handToOwner makes the owner role own every table, view, sequence,
// function and type in the schema that it does not own yet.
func handToOwner(ctx context.Context, tx pgx.Tx, owner string) error {
	steps := []struct{ kind, query string }{
		// Tables first: their sequences and indexes follow them.
		{"TABLE", `SELECT c.oid::regclass::text FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace
			AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND c.relowner <> $1::regrole ORDER BY 1`},
		{"SEQUENCE", `SELECT c.oid::regclass::text FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace
			AND c.relkind = 'S' AND c.relowner <> $1::regrole ORDER BY 1`},
		{"ROUTINE", `SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace
			AND p.proowner <> $1::regrole ORDER BY 1`},
		{"TYPE", `SELECT t.oid::regtype::text FROM pg_type t WHERE t.typnamespace = current_schema()::regnamespace
			AND t.typtype IN ('e', 'd') AND t.typowner <> $1::regrole ORDER BY 1`},
	}
	for _, s := range steps {
		rows, err := tx.Query(ctx, s.query, OwnerRole)
		if err != nil {
			return err
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, name := range names {
			// name is Postgres' own quoted rendering of the object.
			if _, err := tx.Exec(ctx, "ALTER "+s.kind+" "+name+" OWNER TO "+owner); err != nil {
				return fmt.Errorf("hand %s to %s: %w", name, OwnerRole, err)
			}
		}
	}
	return nil
}

// grantTables makes the runtime role's privileges on each table exactly
// what it needs; with check, it only reports tables where that is not so
// (a privilege PUBLIC or another role holds cannot be revoked here).
func grantTables(ctx context.Context, tx pgx.Tx, runtime string, check bool) error {
	cols := make([]string, len(tablePrivileges))
	for i, p := range tablePrivileges {
		cols[i] = fmt.Sprintf("has_table_privilege($1, c.oid, '%s')", p)
	}
	rows, err := tx.Query(ctx, `SELECT c.relname, c.oid::regclass::text, `+strings.Join(cols, ", ")+`
		FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace
		AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1`, runtime)
	if err != nil {
		return err
	}
	type table struct {
		name, quoted string
		have         []string
	}
	var tables []table
	has := make([]bool, len(tablePrivileges))
	dest := []any{nil, nil}
	for i := range has {
		dest = append(dest, &has[i])
	}
	for rows.Next() {
		var t table
		dest[0], dest[1] = &t.name, &t.quoted
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return err
		}
		for i, ok := range has {
			if ok {
				t.have = append(t.have, tablePrivileges[i])
			}
		}
		tables = append(tables, t)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rt := pgx.Identifier{runtime}.Sanitize()
	for _, t := range tables {
		want, ok := runtimeTableGrants[t.name]
		if !ok {
			want = runtimeDefaultGrants
		}
		if slices.Equal(t.have, want) {
			continue
		}
		if check {
			return fmt.Errorf("runtime role %s has %s on %s, which should be only %v: a grant to PUBLIC or to a role it belongs to gives it; revoke that",
				runtime, strings.Join(t.have, ", "), t.name, want)
		}
		if _, err := tx.Exec(ctx, "REVOKE ALL ON "+t.quoted+" FROM "+rt); err != nil {
			return fmt.Errorf("revoke %s from %s: %w", t.name, runtime, err)
		}
		if len(want) > 0 {
			if _, err := tx.Exec(ctx, "GRANT "+strings.Join(want, ", ")+" ON "+t.quoted+" TO "+rt); err != nil {
				return fmt.Errorf("grant %s to %s: %w", t.name, runtime, err)
			}
		}
	}
	return nil
}

// RuntimeCanRewriteAudit reports whether the role q connects as could
// change or remove audit events (owner, superuser, or granted UPDATE,
// DELETE or TRUNCATE): true in a single-role setup.
func RuntimeCanRewriteAudit(ctx context.Context, q Querier) (bool, error) {
	var can bool
	err := q.QueryRow(ctx, `SELECT pg_has_role(current_user, c.relowner, 'USAGE')
			OR has_table_privilege(c.oid, 'UPDATE') OR has_table_privilege(c.oid, 'DELETE') OR has_table_privilege(c.oid, 'TRUNCATE')
		FROM pg_class c WHERE c.oid = 'audit_events'::regclass`).Scan(&can)
	if err != nil {
		return false, fmt.Errorf("check audit privileges: %w", err)
	}
	return can, nil
}

// CurrentRole returns the role the pool connects as.
func (db *DB) CurrentRole(ctx context.Context) (string, error) {
	var role string
	if err := db.Pool.QueryRow(ctx, "SELECT current_user").Scan(&role); err != nil {
		return "", fmt.Errorf("ask the database who we are: %w", err)
	}
	return role, nil
}

// isPgCode reports whether err is a Postgres error with code.
func isPgCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}
