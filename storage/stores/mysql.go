package stores

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/rights"
)

// MySQL is the connector for a store kept in a MySQL or MariaDB database.
//
// Store keys are compared as exact text, as the Postgres connector compares
// them. A plain `column IN (?, ...)` does not do that in MySQL: the usual
// collations ignore case and trailing spaces ("U-1 " = "u-1"), and a string
// compared with a number is converted to one ("42 OR 1=1" = 42, with no more
// than a warning, even in a DELETE). So the connector reads the key column's
// type from the server (an empty SELECT) before it builds a condition:
//
//   - character and binary columns (CHAR, VARCHAR, TEXT, ENUM, SET, BINARY,
//     VARBINARY, BLOB) match `column IN (?, ...)`, which uses the column's
//     index, and then CAST(column AS BINARY) IN (?, ...), which makes the
//     match byte for byte. Keys are sent as utf8mb4, so such key columns
//     should be utf8mb4 (or hold ASCII only).
//   - integer columns match `column IN (?, ...)` with the keys that are
//     integers in canonical form ("42"; not "042", "+42" or "42 OR 1=1"),
//     sent as numbers; other keys match nothing there. The index is used.
//   - other columns (DECIMAL, DATE, DATETIME, ...) match on their canonical
//     text, CAST(column AS BINARY) IN (?, ...), like Postgres' column::text:
//     42.50 is "42.50". No index is used, so every row of such a table is
//     read (and, in a delete, locked); give large tables a text or integer
//     key.
//
// Nothing is compared with a value spliced into SQL and no value is
// converted by the server, so no identity can raise an error that quotes it.
//
// Exported values are: string for character, JSON, DECIMAL, ENUM, SET and
// TIME columns; []byte for binary columns (BINARY, VARBINARY, BLOB, BIT,
// GEOMETRY); time.Time for DATE, DATETIME and TIMESTAMP; int64 for integers
// (an unsigned BIGINT above the int64 range as its decimal string); float64
// for FLOAT and DOUBLE; nil for NULL.
//
// Identifiers from the configuration are quoted with backticks as written;
// "schema.table" names a table in another database of the same server.
// Whether table names are case-sensitive is the server's
// lower_case_table_names (on Linux they are, by default).
type MySQL struct {
	cfg config.Store
	db  *sql.DB
}

var _ rights.Connector = (*MySQL)(nil)

func init() {
	register("mysql", func(ctx context.Context, cfg config.Store) (rights.Connector, error) {
		m, err := NewMySQL(ctx, cfg)
		if err != nil {
			return nil, err // not m: a nil *MySQL in an interface is not nil
		}
		return m, nil
	})
}

// NewMySQL returns the connector for cfg, whose DSN is a go-sql-driver data
// source name such as "user:pass@tcp(db.internal:3306)/bank". It does not
// connect: the pool dials on first use, so one unreachable store does not
// stop the service from starting, and its tasks fail (and are retried)
// instead.
//
// Whatever the DSN says, parseTime is on (dates are exported as time.Time)
// and the connection character set is utf8mb4 (text is exported as UTF-8,
// keys are compared as UTF-8); a utf8mb4 collation in the DSN is kept. Times
// are read in the DSN's loc, by default UTC. Unless the DSN sets them, the
// dial timeout is 10 seconds and the connection attribute program_name is
// "datarights". The pool holds at most 4 connections and closes those idle
// for 5 minutes: a store is someone else's production database.
func NewMySQL(ctx context.Context, cfg config.Store) (*MySQL, error) {
	dsn, err := mysql.ParseDSN(cfg.DSN)
	if err != nil {
		// The parse error may quote the DSN, password and all; say only where.
		return nil, fmt.Errorf("store %s: the dsn is not a valid MySQL data source name", cfg.Name)
	}
	dsn.ParseTime = true
	collation := ""
	if strings.HasPrefix(dsn.Collation, "utf8mb4_") {
		collation = dsn.Collation
	}
	if err := dsn.Apply(mysql.Charset("utf8mb4", collation)); err != nil {
		return nil, fmt.Errorf("store %s: set the connection character set: %w", cfg.Name, err)
	}
	if dsn.Timeout == 0 {
		dsn.Timeout = 10 * time.Second
	}
	if dsn.ConnectionAttributes == "" {
		dsn.ConnectionAttributes = "program_name:datarights"
	}
	connector, err := mysql.NewConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("store %s: the dsn is not usable (check its tls and serverPubKey settings)", cfg.Name)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return &MySQL{cfg: cfg, db: db}, nil
}

// Export writes the subject's rows from every configured table to sink, all
// read in one read-only transaction started WITH CONSISTENT SNAPSHOT at
// REPEATABLE READ, so the tables agree with each other.
func (m *MySQL) Export(ctx context.Context, subject rights.Subject, sink rights.Sink) (rights.StoreReport, error) {
	conn, err := m.db.Conn(ctx)
	if err != nil {
		return rights.StoreReport{}, m.errorf("begin export", err)
	}
	committed := false
	defer func() {
		if !committed {
			// The connection may still be inside the transaction, or hold
			// the isolation level set for it: close it, which rolls back,
			// rather than give it back to the pool.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
	}()

	// database/sql's BeginTx cannot ask for a consistent snapshot, so the
	// transaction is started by hand on a connection of its own.
	if _, err := conn.ExecContext(ctx, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"); err != nil {
		return rights.StoreReport{}, m.errorf("begin export", err)
	}
	if _, err := conn.ExecContext(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"); err != nil {
		return rights.StoreReport{}, m.errorf("begin export", err)
	}
	report, err := m.export(ctx, m.session(conn), subject, sink)
	if err != nil {
		return rights.StoreReport{}, err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return rights.StoreReport{}, m.errorf("finish export", err)
	}
	committed = true
	return report, nil
}

func (m *MySQL) export(ctx context.Context, s *mysqlSession, subject rights.Subject, sink rights.Sink) (rights.StoreReport, error) {
	keys, err := s.resolve(ctx, subject)
	if err != nil || len(keys) == 0 {
		return rights.StoreReport{}, err
	}
	report := rights.StoreReport{Resolved: true}
	for _, table := range m.cfg.Tables {
		dataset, err := s.exportTable(ctx, table, keys, sink)
		if err != nil {
			return rights.StoreReport{}, err
		}
		report.Datasets = append(report.Datasets, dataset)
	}
	return report, nil
}

func (s *mysqlSession) exportTable(ctx context.Context, table config.Table, keys []string, sink rights.Sink) (rights.DatasetReport, error) {
	m := s.m
	cond, args, err := s.match(ctx, table.Name, table.Column, keys)
	if err != nil {
		return rights.DatasetReport{}, m.errorf("export "+table.Name, err)
	}
	query := "SELECT * FROM " + mysqlTable(table.Name) +
		" WHERE " + cond +
		" ORDER BY " + mysqlOrderBy(table)
	rows, err := s.q.QueryContext(ctx, query, args...)
	if err != nil {
		return rights.DatasetReport{}, m.errorf("export "+table.Name, err)
	}
	defer rows.Close()

	types, err := rows.ColumnTypes()
	if err != nil {
		return rights.DatasetReport{}, m.errorf("export "+table.Name, err)
	}
	columns := make([]string, len(types))
	binary := make([]bool, len(types))
	for i, ct := range types {
		columns[i] = ct.Name()
		binary[i] = mysqlBinaryTypes[ct.DatabaseTypeName()]
	}
	// An unfinished dataset is left unclosed on error: Close means "complete",
	// and the retried Export writes the dataset again from the start.
	w, err := sink.Dataset(table.Name, columns)
	if err != nil {
		return rights.DatasetReport{}, fmt.Errorf("store %s: start dataset %s: %w", m.cfg.Name, table.Name, err)
	}
	scanned := make([]any, len(columns))
	dest := make([]any, len(columns))
	for i := range scanned {
		dest[i] = &scanned[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return rights.DatasetReport{}, m.errorf("export "+table.Name, err)
		}
		values := make([]any, len(scanned))
		for i, v := range scanned {
			values[i] = mysqlValue(v, binary[i])
		}
		if err := w.WriteRow(values); err != nil {
			return rights.DatasetReport{}, fmt.Errorf("store %s: write dataset %s: %w", m.cfg.Name, table.Name, err)
		}
	}
	if err := rows.Err(); err != nil {
		return rights.DatasetReport{}, m.errorf("export "+table.Name, err)
	}
	dataset, err := w.Close()
	if err != nil {
		return rights.DatasetReport{}, fmt.Errorf("store %s: finish dataset %s: %w", m.cfg.Name, table.Name, err)
	}
	if dataset.Name == "" {
		dataset.Name = table.Name
	}
	dataset.Category = table.Category
	return dataset, nil
}

// mysqlBinaryTypes are the column types (as the driver names them) whose
// values are bytes, not text.
var mysqlBinaryTypes = map[string]bool{
	"BINARY": true, "VARBINARY": true,
	"TINYBLOB": true, "BLOB": true, "MEDIUMBLOB": true, "LONGBLOB": true,
	"BIT": true, "GEOMETRY": true, "VECTOR": true,
}

// mysqlValue turns a value from the driver into the value exported: the
// driver returns text, DECIMAL and JSON columns as []byte, FLOAT as float32,
// and an unsigned BIGINT as uint64 or, above the int64 range, as []byte.
func mysqlValue(v any, binary bool) any {
	switch v := v.(type) {
	case []byte:
		if binary {
			return v
		}
		return string(v)
	case float32:
		// Through its shortest decimal form, so FLOAT 0.1 exports as 0.1
		// rather than 0.10000000149011612.
		f, err := strconv.ParseFloat(strconv.FormatFloat(float64(v), 'g', -1, 32), 64)
		if err != nil {
			return float64(v)
		}
		return f
	case uint64:
		if v <= math.MaxInt64 {
			return int64(v)
		}
		return strconv.FormatUint(v, 10)
	default: // nil, int64, float64, time.Time
		return v
	}
}

// Delete erases the subject's rows from every configured table, now, each
// by its mode and retention class (see Erase): with none configured, the rows
// are deleted, in one transaction, children first (tables are declared
// parents first, so deleting in reverse order keeps foreign keys satisfied).
// The report lists the tables in configuration order with the rows each
// lost.
func (m *MySQL) Delete(ctx context.Context, subject rights.Subject) (rights.StoreReport, error) {
	return m.Erase(ctx, subject, rights.EraseOptions{})
}

// change runs fn in one read-write transaction with the subject's keys
// resolved in it (none when the subject is not in the store), and commits.
// op names the change in errors.
func (m *MySQL) change(ctx context.Context, op string, subject rights.Subject, fn func(tx *sql.Tx, s *mysqlSession, keys []string) error) error {
	tx, err := m.db.BeginTx(ctx, nil)
	if err != nil {
		return m.errorf("begin "+op, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	s := m.session(tx)
	keys, err := s.resolve(ctx, subject)
	if err != nil {
		return err
	}
	if err := fn(tx, s, keys); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return m.errorf("finish "+op, err)
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be returned.
func (m *MySQL) Close() error {
	return m.db.Close()
}

// mysqlQuerier is what a session runs its statements on: the connection of
// an export or the transaction of a delete.
type mysqlQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// mysqlSession is one transaction of a connector, with the key column types
// it has read.
type mysqlSession struct {
	m     *MySQL
	q     mysqlQuerier
	kinds map[[2]string]mysqlKeyKind // by table and column
}

func (m *MySQL) session(q mysqlQuerier) *mysqlSession {
	return &mysqlSession{m: m, q: q, kinds: map[[2]string]mysqlKeyKind{}}
}

// resolve finds the store keys of the subject, sorted, or none when the
// subject is not in this store.
//
// A key given directly wins over every lookup identity, even when it finds
// nothing: falling back to, say, the email could act on a different person
// than the one the key names. A direct key counts as found only when some
// configured table has a row for it, so a mistyped key is reported as "not
// found" rather than as "found, holds no data".
func (s *mysqlSession) resolve(ctx context.Context, subject rights.Subject) ([]string, error) {
	m := s.m
	subject.Identities = m.cfg.Format().Apply(subject.Identities)
	if key := subject.Identities[m.cfg.Key]; key != "" {
		for _, table := range m.cfg.Tables {
			cond, args, err := s.match(ctx, table.Name, table.Column, []string{key})
			if err != nil {
				return nil, m.errorf("look for the key in "+table.Name, err)
			}
			var found bool
			query := "SELECT EXISTS (SELECT 1 FROM " + mysqlTable(table.Name) + " WHERE " + cond + ")"
			if err := s.q.QueryRowContext(ctx, query, args...).Scan(&found); err != nil {
				return nil, m.errorf("look for the key in "+table.Name, err)
			}
			if found {
				return []string{key}, nil
			}
		}
		return nil, nil
	}

	var keys []string
	for _, lookup := range m.cfg.Lookups {
		value := subject.Identities[lookup.Identity]
		if value == "" {
			continue
		}
		found, err := s.lookup(ctx, lookup, value)
		if err != nil {
			return nil, m.errorf("look up "+lookup.Identity+" in "+lookup.Table, err)
		}
		keys = append(keys, found...)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	if len(keys) > 1 {
		// The identities lead to more than one customer (a shared phone, an
		// email reused across accounts): acting on all of them would hand
		// one person another's data. Nothing is resolved, as in Postgres.
		return nil, nil
	}
	return keys, nil
}

// lookup returns the keys of the rows whose lookup column is value, each in
// the canonical text form that match compares keys in.
func (s *mysqlSession) lookup(ctx context.Context, lookup config.Lookup, value string) ([]string, error) {
	cond, args, err := s.match(ctx, lookup.Table, lookup.Column, []string{value})
	if err != nil {
		return nil, err
	}
	keyColumn := mysqlIdent(lookup.KeyColumn)
	query := "SELECT DISTINCT CAST(" + keyColumn + " AS BINARY) FROM " + mysqlTable(lookup.Table) +
		" WHERE " + cond + " AND " + keyColumn + " IS NOT NULL"
	rows, err := s.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var key []byte
		if err := rows.Scan(&key); err != nil {
			return nil, err
		}
		keys = append(keys, string(key))
	}
	return keys, rows.Err()
}

// mysqlKeyKind is how a column is compared with keys; see MySQL.
type mysqlKeyKind int

const (
	mysqlOtherKey    mysqlKeyKind = iota // compared on CAST(column AS BINARY)
	mysqlStringKey                       // character or binary string
	mysqlIntegerKey                      // signed integer
	mysqlUnsignedKey                     // unsigned integer
)

// keyKind reads the type of column in table, once per session.
func (s *mysqlSession) keyKind(ctx context.Context, table, column string) (mysqlKeyKind, error) {
	id := [2]string{table, column}
	if kind, ok := s.kinds[id]; ok {
		return kind, nil
	}
	rows, err := s.q.QueryContext(ctx, "SELECT "+mysqlIdent(column)+" FROM "+mysqlTable(table)+" LIMIT 0")
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		return 0, err
	}
	if len(types) != 1 {
		return 0, fmt.Errorf("reading the type of %s.%s returned %d columns", table, column, len(types))
	}
	kind := mysqlOtherKey
	switch name := types[0].DatabaseTypeName(); name {
	case "CHAR", "VARCHAR", "TINYTEXT", "TEXT", "MEDIUMTEXT", "LONGTEXT", "ENUM", "SET",
		"BINARY", "VARBINARY", "TINYBLOB", "BLOB", "MEDIUMBLOB", "LONGBLOB":
		kind = mysqlStringKey
	case "TINYINT", "SMALLINT", "MEDIUMINT", "INT", "BIGINT":
		kind = mysqlIntegerKey
	case "UNSIGNED TINYINT", "UNSIGNED SMALLINT", "UNSIGNED MEDIUMINT", "UNSIGNED INT", "UNSIGNED BIGINT":
		kind = mysqlUnsignedKey
	}
	if err := rows.Close(); err != nil {
		return 0, err
	}
	s.kinds[id] = kind
	return kind, nil
}

// match returns the condition selecting the rows of table whose column is
// one of keys, compared as exact text (see MySQL), and its arguments.
func (s *mysqlSession) match(ctx context.Context, table, column string, keys []string) (string, []any, error) {
	kind, err := s.keyKind(ctx, table, column)
	if err != nil {
		return "", nil, err
	}
	col := mysqlIdent(column)
	switch kind {
	case mysqlIntegerKey, mysqlUnsignedKey:
		var args []any
		for _, key := range keys {
			if kind == mysqlIntegerKey {
				if n, err := strconv.ParseInt(key, 10, 64); err == nil && strconv.FormatInt(n, 10) == key {
					args = append(args, n)
				}
			} else if n, err := strconv.ParseUint(key, 10, 64); err == nil && strconv.FormatUint(n, 10) == key {
				args = append(args, n)
			}
		}
		if len(args) == 0 {
			return "FALSE", nil, nil // no key is a number: none can match
		}
		return col + " IN (" + mysqlParams(len(args)) + ")", args, nil
	case mysqlStringKey:
		args := make([]any, 0, 2*len(keys))
		for _, key := range keys {
			args = append(args, key)
		}
		for _, key := range keys {
			args = append(args, key)
		}
		params := mysqlParams(len(keys))
		return col + " IN (" + params + ") AND CAST(" + col + " AS BINARY) IN (" + params + ")", args, nil
	default:
		args := make([]any, len(keys))
		for i, key := range keys {
			args[i] = key
		}
		return "CAST(" + col + " AS BINARY) IN (" + mysqlParams(len(keys)) + ")", args, nil
	}
}

// mysqlParams returns n comma-separated placeholders.
func mysqlParams(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// mysqlIdent quotes an identifier with backticks.
func mysqlIdent(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

// mysqlTable quotes a table name that may carry a database ("bank.users").
func mysqlTable(name string) string {
	parts := strings.Split(name, ".")
	for i, part := range parts {
		parts[i] = mysqlIdent(part)
	}
	return strings.Join(parts, ".")
}

// mysqlOrderBy returns the table's ORDER BY list: its configured columns, or
// the key column. Exports are ordered so a retried export is byte-for-byte
// the same file.
func mysqlOrderBy(table config.Table) string {
	if table.OrderBy == "" {
		return mysqlIdent(table.Column)
	}
	var cols []string
	for _, col := range strings.Split(table.OrderBy, ",") {
		cols = append(cols, mysqlIdent(strings.TrimSpace(col)))
	}
	return strings.Join(cols, ", ")
}

func (m *MySQL) errorf(op string, err error) error {
	return &storeError{op: "store " + m.cfg.Name + ": " + op, err: mysqlSafeError(err)}
}

// mysqlSafeError returns err without a server message that may quote row or
// parameter values ("Duplicate entry 'u-42' for key ...", "Incorrect string
// value: ...", whatever a trigger's SIGNAL says). The message is kept only
// for errors whose messages name objects, never values: connection, access,
// transaction and syntax errors (SQLSTATE classes 08, 25, 28, 40 and 42),
// foreign key and NOT NULL violations, lock and statement timeouts, and the
// server being read-only or shutting down. The others keep their error number
// and SQLSTATE only. The result is a *mysql.MySQLError, so callers can still
// tell errors apart by number.
func mysqlSafeError(err error) error {
	var myErr *mysql.MySQLError
	if !errors.As(err, &myErr) {
		return err
	}
	message := "message withheld: it may quote personal data"
	if mysqlMessageIsSafe(myErr) {
		message = myErr.Message
	}
	return &mysql.MySQLError{Number: myErr.Number, SQLState: myErr.SQLState, Message: message}
}

func mysqlMessageIsSafe(err *mysql.MySQLError) bool {
	switch err.Number {
	case 1642, 1643, 1644: // SIGNAL, RESIGNAL: a trigger's or procedure's own text
		return false
	case 1040, // too many connections
		1048,       // column cannot be null (names the column)
		1053,       // server shutdown in progress
		1205,       // lock wait timeout
		1216, 1217, // foreign key violations (older servers)
		1451, 1452, // foreign key violations (name the constraint, not the key)
		1290, 1836, // the server is read-only
		1317, 1927, // query interrupted, connection killed
		1969, 3024, 4031: // statement timeouts (MariaDB, MySQL), idle client timeout
		return true
	}
	switch string(err.SQLState[:2]) {
	case "08", // connection exception
		"25", // invalid transaction state (read-only transaction)
		"28", // invalid authorization
		"40", // transaction rollback (deadlock)
		"42": // syntax error or access rule violation (unknown table, ...)
		return true
	}
	return false
}
