package stores

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/rights"
)

// Postgres is the connector for a store kept in a PostgreSQL database.
//
// Store keys are compared as text: every query reads `column::text`, and key
// values are sent as a text[] parameter. For text and varchar key columns that
// costs nothing (the cast is a no-op and indexes are used). For other types
// (bigint, uuid, ...) it means a key matches on its canonical text form (a
// uuid in lower case, a number without leading zeros) and an index on the bare
// column is not used; add an index on (column::text) if such a table is large.
// Comparing as text is what keeps a malformed identity from ever raising an
// "invalid input syntax" error, whose message would quote the value.
//
// Identifiers from the configuration are quoted as written, so they are
// case-sensitive: "Users" names a different table than "users".
type Postgres struct {
	cfg  config.Store
	pool *pgxpool.Pool
}

var _ rights.Connector = (*Postgres)(nil)

// NewPostgres returns the connector for cfg. It does not connect: the pool
// dials on first use, so one unreachable store does not stop the service from
// starting, and its tasks fail (and are retried) instead. The pool holds at
// most 4 connections; pool_max_conns in the DSN changes that.
func NewPostgres(ctx context.Context, cfg config.Store) (*Postgres, error) {
	poolCfg, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		// The parse error may quote the DSN, password and all; say only where.
		return nil, fmt.Errorf("store %s: the dsn is not a valid Postgres connection string", cfg.Name)
	}
	// A store is someone else's production database: take few connections and
	// give them back soon, unless the DSN says otherwise.
	if !strings.Contains(cfg.DSN, "pool_max_conns") {
		poolCfg.MaxConns = 4
	}
	if !strings.Contains(cfg.DSN, "pool_max_conn_idle_time") {
		poolCfg.MaxConnIdleTime = 5 * time.Minute
	}
	if _, ok := poolCfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		poolCfg.ConnConfig.RuntimeParams["application_name"] = "datarights"
	}
	// Timestamps read as text (see exportText) are in UTC.
	if _, ok := poolCfg.ConnConfig.RuntimeParams["timezone"]; !ok {
		poolCfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	}
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", cfg.Name, safeError(err))
	}
	return &Postgres{cfg: cfg, pool: pool}, nil
}

// Export writes the subject's rows from every configured table to sink, all
// read in one repeatable-read transaction so the tables agree with each other.
func (p *Postgres) Export(ctx context.Context, subject rights.Subject, sink rights.Sink) (rights.StoreReport, error) {
	tx, err := p.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return rights.StoreReport{}, p.errorf("begin export", err)
	}
	defer tx.Rollback(ctx) // a no-op after Commit; read only, so nothing is lost

	keys, err := p.resolve(ctx, tx, subject)
	if err != nil || len(keys) == 0 {
		return rights.StoreReport{}, err
	}
	report := rights.StoreReport{Resolved: true}
	for _, table := range p.cfg.Tables {
		dataset, err := p.exportTable(ctx, tx, table, keys, sink)
		if err != nil {
			return rights.StoreReport{}, err
		}
		report.Datasets = append(report.Datasets, dataset)
	}
	if err := tx.Commit(ctx); err != nil {
		return rights.StoreReport{}, p.errorf("finish export", err)
	}
	return report, nil
}

func (p *Postgres) exportTable(ctx context.Context, tx pgx.Tx, table config.Table, keys []string, sink rights.Sink) (rights.DatasetReport, error) {
	query := "SELECT * FROM " + tableIdent(table.Name) +
		" WHERE " + keyMatch(table.Column) +
		" ORDER BY " + orderBy(table)
	if ts, ok := sink.(rights.TextSink); ok {
		return p.exportText(ctx, tx, table, query, keys, ts)
	}
	rows, err := tx.Query(ctx, query, keys)
	if err != nil {
		return rights.DatasetReport{}, p.errorf("export "+table.Name, err)
	}
	defer rows.Close()

	fields := rows.FieldDescriptions()
	columns := make([]string, len(fields))
	for i, f := range fields {
		columns[i] = f.Name
	}
	// An unfinished dataset is left unclosed on error: Close means "complete",
	// and the retried Export writes the dataset again from the start.
	w, err := sink.Dataset(table.Name, columns)
	if err != nil {
		return rights.DatasetReport{}, fmt.Errorf("store %s: start dataset %s: %w", p.cfg.Name, table.Name, err)
	}
	for rows.Next() {
		values, err := rows.Values()
		if err != nil {
			return rights.DatasetReport{}, p.errorf("export "+table.Name, err)
		}
		if err := w.WriteRow(values); err != nil {
			return rights.DatasetReport{}, fmt.Errorf("store %s: write dataset %s: %w", p.cfg.Name, table.Name, err)
		}
	}
	return p.finishDataset(table, rows, w.Close)
}

// change runs fn in one transaction with the subject's keys resolved in it
// (none when the subject is not in the store), and commits. A failure to
// begin or commit is named op; the store's own errors are already named.
func (p *Postgres) change(ctx context.Context, op string, subject rights.Subject, fn func(tx pgx.Tx, keys []string) error) error {
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		keys, err := p.resolve(ctx, tx, subject)
		if err != nil {
			return err
		}
		return fn(tx, keys)
	})
	var storeErr *storeError
	if err != nil && !errors.As(err, &storeErr) {
		err = p.errorf(op, err)
	}
	return err
}

// finishDataset ends an exported table: the rows' error, if any, else the
// dataset closed and named for the table.
func (p *Postgres) finishDataset(table config.Table, rows pgx.Rows, closeDataset func() (rights.DatasetReport, error)) (rights.DatasetReport, error) {
	if err := rows.Err(); err != nil {
		return rights.DatasetReport{}, p.errorf("export "+table.Name, err)
	}
	dataset, err := closeDataset()
	if err != nil {
		return rights.DatasetReport{}, fmt.Errorf("store %s: finish dataset %s: %w", p.cfg.Name, table.Name, err)
	}
	if dataset.Name == "" {
		dataset.Name = table.Name
	}
	dataset.Category = table.Category
	return dataset, nil
}

// Delete erases the subject's rows from every configured table, now, each
// by its mode and retention class (see Erase): with none configured, the rows
// are deleted, in one transaction, children first (tables are declared
// parents first, so deleting in reverse order keeps foreign keys satisfied).
// The report lists the tables in configuration order with the rows each
// lost.
func (p *Postgres) Delete(ctx context.Context, subject rights.Subject) (rights.StoreReport, error) {
	return p.Erase(ctx, subject, rights.EraseOptions{})
}

// Close closes the pool, waiting for connections in use to be returned.
func (p *Postgres) Close() error {
	p.pool.Close()
	return nil
}

// resolve finds the store keys of the subject, sorted, or none when the
// subject is not in this store.
//
// A key given directly wins over every lookup identity, even when it finds
// nothing: falling back to, say, the email could act on a different person
// than the one the key names. A direct key counts as found only when some
// configured table has a row for it, so a mistyped key is reported as "not
// found" rather than as "found, holds no data".
func (p *Postgres) resolve(ctx context.Context, tx pgx.Tx, subject rights.Subject) ([]string, error) {
	keys, err := p.candidates(ctx, tx, subject)
	if len(keys) > 1 {
		// The identities lead to more than one customer (a shared phone, an
		// email reused across accounts): acting on all of them would hand
		// one person another's data. Nothing is resolved; staff must
		// name the customer by key.
		return nil, err
	}
	return keys, err
}

// candidates returns every key the subject's identities lead to, sorted:
// the key itself when it is given and has rows, else each lookup's hits.
func (p *Postgres) candidates(ctx context.Context, tx pgx.Tx, subject rights.Subject) ([]string, error) {
	// "Demo-User-7@Example.com " and "+86 138 0000 0007" are looked up as
	// the store holds them (stores[].identity_format).
	subject.Identities = p.cfg.Format().Apply(subject.Identities)
	if key := subject.Identities[p.cfg.Key]; key != "" {
		for _, table := range p.cfg.Tables {
			var found bool
			query := "SELECT EXISTS (SELECT 1 FROM " + tableIdent(table.Name) + " WHERE " + keyMatch(table.Column) + ")"
			if err := tx.QueryRow(ctx, query, []string{key}).Scan(&found); err != nil {
				return nil, p.errorf("look for the key in "+table.Name, err)
			}
			if found {
				return []string{key}, nil
			}
		}
		return nil, nil
	}

	var keys []string
	for _, lookup := range p.cfg.Lookups {
		value := subject.Identities[lookup.Identity]
		if value == "" {
			continue
		}
		keyColumn := pgx.Identifier{lookup.KeyColumn}.Sanitize()
		query := "SELECT DISTINCT " + keyColumn + "::text FROM " + tableIdent(lookup.Table) +
			" WHERE " + pgx.Identifier{lookup.Column}.Sanitize() + "::text = $1::text" +
			" AND " + keyColumn + " IS NOT NULL"
		rows, err := tx.Query(ctx, query, value)
		if err != nil {
			return nil, p.errorf("look up "+lookup.Identity+" in "+lookup.Table, err)
		}
		found, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, p.errorf("look up "+lookup.Identity+" in "+lookup.Table, err)
		}
		keys = append(keys, found...)
	}
	slices.Sort(keys)
	return slices.Compact(keys), nil
}

// tableIdent quotes a table name that may carry a schema ("bank.users").
func tableIdent(name string) string {
	return pgx.Identifier(strings.Split(name, ".")).Sanitize()
}

// keyMatch is the condition selecting rows whose key is in the text[] $1.
func keyMatch(column string) string {
	return pgx.Identifier{column}.Sanitize() + "::text = ANY($1::text[])"
}

// orderBy returns the table's ORDER BY list: its configured columns, or the
// key column. Exports are ordered so a retried export is byte-for-byte the
// same file.
func orderBy(table config.Table) string {
	if table.OrderBy == "" {
		return pgx.Identifier{table.Column}.Sanitize()
	}
	var cols []string
	for _, col := range strings.Split(table.OrderBy, ",") {
		cols = append(cols, pgx.Identifier{strings.TrimSpace(col)}.Sanitize())
	}
	return strings.Join(cols, ", ")
}

// storeError is an error from the store's database with its personal data
// removed. It unwraps to the cleaned *pgconn.PgError (or the original non-
// Postgres error), so callers can still tell errors apart by SQLSTATE.
type storeError struct {
	op  string
	err error
}

func (e *storeError) Error() string { return e.op + ": " + e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

func (p *Postgres) errorf(op string, err error) error {
	return &storeError{op: "store " + p.cfg.Name + ": " + op, err: safeError(err)}
}

// safeError returns err without the parts of a Postgres error that may quote
// row or parameter values. Detail ("Key (user_id)=(u-42) is still
// referenced"), Where and the internal query are always dropped. The message
// is kept only for classes of error whose messages name objects, never values;
// for the others (data exceptions, errors raised by triggers, ...) only the
// SQLSTATE and object names remain.
func safeError(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	message := "message withheld: it may quote personal data"
	switch pgErr.Code[:min(2, len(pgErr.Code))] {
	case "08", // connection exception
		"23", // integrity constraint violation (values are in Detail)
		"25", // invalid transaction state
		"28", // invalid authorization
		"40", // transaction rollback (serialization failure, deadlock)
		"42", // syntax error or access rule violation (undefined table, ...)
		"53", // insufficient resources
		"54", // program limit exceeded
		"55", // object not in prerequisite state (lock not available)
		"57": // operator intervention (statement timeout, shutdown)
		message = pgErr.Message
	}
	return &pgconn.PgError{
		Severity:            pgErr.Severity,
		SeverityUnlocalized: pgErr.SeverityUnlocalized,
		Code:                pgErr.Code,
		Message:             message,
		SchemaName:          pgErr.SchemaName,
		TableName:           pgErr.TableName,
		ColumnName:          pgErr.ColumnName,
		DataTypeName:        pgErr.DataTypeName,
		ConstraintName:      pgErr.ConstraintName,
	}
}

// ProbeKeys returns every key the subject's identities lead to, several
// when they are ambiguous (rights.KeyProber): for a lookup before a ticket
// is filed, which acts on nothing.
func (p *Postgres) ProbeKeys(ctx context.Context, subject rights.Subject) (string, []string, error) {
	tx, err := p.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return "", nil, p.errorf("begin lookup", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only
	keys, err := p.candidates(ctx, tx, subject)
	return p.cfg.Key, keys, err
}

// ResolveKeys implements rights.KeyResolver with the store's lookups.
func (p *Postgres) ResolveKeys(ctx context.Context, subject rights.Subject) (string, []string, error) {
	tx, err := p.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return "", nil, p.errorf("begin lookup", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only
	keys, err := p.resolve(ctx, tx, subject)
	return p.cfg.Key, keys, err
}
