// Package storage is datarights' own Postgres database: requests, store
// tasks, the audit trail, staff tokens, verification codes, exports and
// deliveries, plus River's tables. Its subpackages connect to the stores that
// hold people's data.
package storage

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the advisory lock key that serialises migrations across
// processes ("datarigh" in ASCII), so several replicas may start at once.
const migrationLock = 0x6461746172696768

// DB is the service's own database.
type DB struct {
	Pool *pgxpool.Pool
	// Now is the clock; tests replace it.
	Now func() time.Time
}

// Open connects to the database at url.
func Open(ctx context.Context, url string) (*DB, error) {
	return OpenWith(ctx, url, 0)
}

// OpenWith is Open with a pool of at most maxConns connections (0: pgx's
// default, the larger of 4 and the number of CPUs).
func OpenWith(ctx context.Context, url string, maxConns int) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = int32(maxConns)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect database: %w", err)
	}
	return &DB{Pool: pool, Now: time.Now}, nil
}

// Close closes the pool.
func (db *DB) Close() { db.Pool.Close() }

// InTx runs fn in a transaction, committing when it returns nil.
func (db *DB) InTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, db.Pool, fn)
}

// Snapshot runs fn in a read-only transaction that sees one moment, so a
// view put together from several reads (a request, its audit trail, its
// failed steps) never shows a change half made: read one by one, a view
// once listed a failed step whose audit event it did not yet show.
func (db *DB) Snapshot(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, db.Pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

type migration struct {
	version int
	name    string
	sql     string
}

func ownMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		prefix, _, ok := strings.Cut(e.Name(), "_")
		version, err := strconv.Atoi(prefix)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration file %s: name must start with a number and _", e.Name())
		}
		sql, err := fs.ReadFile(migrationFiles, "migrations/"+e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: version, name: e.Name(), sql: string(sql)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// MigrateResult says what Migrate applied.
type MigrateResult struct {
	Own   []string // file names of the service's migrations applied
	River []int    // River migration versions applied
}

// Migrate brings River's and the service's tables up to date with one role
// for everything: the connection's role owns the tables and the service runs
// as it (MigrateOptions.SingleRole).
func (db *DB) Migrate(ctx context.Context) (MigrateResult, error) {
	return db.MigrateWith(ctx, MigrateOptions{SingleRole: true})
}

// MigrateWith brings River's and the service's tables up to date and, unless
// opts.SingleRole, hands them to the owner role and grants opts.RuntimeRole
// what the service needs (roles.go). It holds an advisory lock for the whole
// run, so concurrent callers (several replicas starting at once) apply each
// migration exactly once.
func (db *DB) MigrateWith(ctx context.Context, opts MigrateOptions) (MigrateResult, error) {
	var res MigrateResult
	if !opts.SingleRole && opts.RuntimeRole == "" {
		return res, errors.New("migrate: name the runtime role the service connects as, or choose a single role")
	}
	own, err := ownMigrations()
	if err != nil {
		return res, err
	}
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		return res, fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(migrationLock)); err != nil {
		return res, fmt.Errorf("migrate: take lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(migrationLock)) //nolint:errcheck // the session ends anyway

	// River applies each of its versions in its own transaction (some add
	// enum values, which cannot be used in the transaction that adds them).
	migrator, err := rivermigrate.New(riverpgxv5.New(db.Pool), nil)
	if err != nil {
		return res, fmt.Errorf("migrate: %w", err)
	}
	riverRes, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return res, fmt.Errorf("migrate river: %w", err)
	}
	for _, v := range riverRes.Versions {
		res.River = append(res.River, v.Version)
	}

	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS datarights_migrations (
			version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		applied, err := appliedVersions(ctx, tx)
		if err != nil {
			return err
		}
		for _, m := range own {
			if applied[m.version] {
				continue
			}
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO datarights_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
				return err
			}
			res.Own = append(res.Own, m.name)
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("migrate: %w", err)
	}
	if !opts.SingleRole {
		if err := setUpRoles(ctx, conn.Conn(), opts.RuntimeRole); err != nil {
			return res, fmt.Errorf("migrate: roles: %w", err)
		}
	}
	return res, nil
}

func appliedVersions(ctx context.Context, q pgx.Tx) (map[int]bool, error) {
	rows, err := q.Query(ctx, "SELECT version FROM datarights_migrations")
	if err != nil {
		return nil, err
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, err
	}
	applied := map[int]bool{}
	for _, v := range versions {
		applied[v] = true
	}
	return applied, nil
}

// ErrMigrationsPending says the database is behind this binary.
var ErrMigrationsPending = errors.New("database migrations are pending: run `datarights migrate up`")

// CheckMigrations returns nil when both River's and the service's migrations
// are all applied, ErrMigrationsPending (wrapped) when some are not, and
// another error when the database cannot be asked.
func (db *DB) CheckMigrations(ctx context.Context) error {
	migrator, err := rivermigrate.New(riverpgxv5.New(db.Pool), nil)
	if err != nil {
		return err
	}
	valid, err := migrator.Validate(ctx, nil)
	if err != nil {
		return fmt.Errorf("check river migrations: %w", err)
	}
	if !valid.OK {
		return fmt.Errorf("%w (river: %s)", ErrMigrationsPending, strings.Join(valid.Messages, "; "))
	}
	own, err := ownMigrations()
	if err != nil {
		return err
	}
	// Every version, not only the highest: migrations from work merged in
	// parallel may land below one already applied (the runner applies
	// whatever is missing, in order).
	rows, err := db.Pool.Query(ctx, "SELECT version FROM datarights_migrations")
	var versions []int
	if err == nil {
		versions, err = pgx.CollectRows(rows, pgx.RowTo[int])
	}
	if isPgCode(err, "42P01") { // undefined_table
		return ErrMigrationsPending
	}
	if err != nil {
		return fmt.Errorf("check migrations: %w", err)
	}
	applied := map[int]bool{}
	for _, v := range versions {
		applied[v] = true
	}
	var missing []string
	for _, m := range own {
		if !applied[m.version] {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w (%s)", ErrMigrationsPending, strings.Join(missing, ", "))
	}
	return nil
}
