package stores_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage/mysqltest"
	"github.com/datarights/datarights/storage/stores"
)

// The MySQL bank has customers u-1 to u-20: u-1 is a prefix of u-10 to u-19,
// in the key and in the email.

const mysqlBankCustomers = 20

func mysqlUserID(n int) string { return fmt.Sprintf("u-%d", n) }
func mysqlEmail(n int) string  { return fmt.Sprintf("u-%d@example.com", n) }
func mysqlPhone(n int) string  { return fmt.Sprintf("1380000%04d", n) }

var mysqlBankSchema = []string{
	`CREATE TABLE users (
		user_id VARCHAR(32) NOT NULL PRIMARY KEY,
		name VARCHAR(64) NOT NULL,
		email VARCHAR(128) NOT NULL UNIQUE,
		phone CHAR(11) NOT NULL UNIQUE,
		city VARCHAR(32) NOT NULL,
		score FLOAT NOT NULL,
		avatar BLOB NULL,
		created_at DATETIME NOT NULL,
		closed_at DATETIME NULL
	)`,
	`CREATE TABLE cards (
		card_id BIGINT NOT NULL PRIMARY KEY,
		user_id VARCHAR(32) NOT NULL,
		card_no CHAR(19) NOT NULL,
		bank VARCHAR(32) NOT NULL,
		kind ENUM('debit', 'credit') NOT NULL,
		opened_on DATE NOT NULL,
		FOREIGN KEY (user_id) REFERENCES users (user_id)
	)`,
	`CREATE TABLE transactions (
		txn_id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
		user_id VARCHAR(32) NOT NULL,
		card_id BIGINT NOT NULL,
		amount DECIMAL(14, 2) NOT NULL,
		fx_rate DOUBLE NOT NULL,
		memo VARCHAR(100) NOT NULL,
		booked_at DATETIME(6) NOT NULL,
		INDEX (user_id),
		FOREIGN KEY (user_id) REFERENCES users (user_id),
		FOREIGN KEY (card_id) REFERENCES cards (card_id)
	)`,
	`CREATE TABLE consents (
		consent_id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
		user_id VARCHAR(32) NOT NULL,
		purpose VARCHAR(32) NOT NULL,
		granted TINYINT(1) NOT NULL,
		details JSON NOT NULL,
		FOREIGN KEY (user_id) REFERENCES users (user_id)
	)`,
}

// mysqlBankTables are the bank's tables, parents first, with their columns
// in table order and their rows as the connector should export them.
type mysqlBankTable struct {
	name, category, orderBy string
	columns                 []string
	rows                    [][]any
}

// mysqlBank returns the bank's data; every customer has rows in every table.
func mysqlBank() []*mysqlBankTable {
	users := &mysqlBankTable{name: "users", category: "profile",
		columns: []string{"user_id", "name", "email", "phone", "city", "score", "avatar", "created_at", "closed_at"}}
	cards := &mysqlBankTable{name: "cards", category: "cards", orderBy: "card_id",
		columns: []string{"card_id", "user_id", "card_no", "bank", "kind", "opened_on"}}
	txns := &mysqlBankTable{name: "transactions", category: "transactions", orderBy: "txn_id",
		columns: []string{"txn_id", "user_id", "card_id", "amount", "fx_rate", "memo", "booked_at"}}
	consents := &mysqlBankTable{name: "consents", category: "consents", orderBy: "consent_id",
		columns: []string{"consent_id", "user_id", "purpose", "granted", "details"}}

	surnames := []string{"张", "王", "李", "赵", "陈", "刘", "𠮷"} // 𠮷 takes four bytes in UTF-8
	given := []string{"伟", "芳", "娜", "秀英", "敏", "静"}
	cities := []string{"深圳", "北京", "上海", "广州", "成都"}
	banks := []string{"招商银行", "工商银行", "微众银行"}
	memos := []string{"午餐", "转账给张三", "超市购物 🛒", "退款", "话费充值"}
	for n := 1; n <= mysqlBankCustomers; n++ {
		id := mysqlUserID(n)
		var avatar, closed any
		if n%2 == 0 {
			avatar = []byte{0x89, 'P', 'N', 'G', 0x00, 0xff, byte(n)}
		}
		if n%7 == 0 {
			closed = time.Date(2025, 6, n, 18, 0, 0, 0, time.UTC)
		}
		users.rows = append(users.rows, []any{
			id, surnames[n%len(surnames)] + given[n%len(given)], mysqlEmail(n), mysqlPhone(n),
			cities[n%len(cities)], float64(n) / 10, avatar, time.Date(2023, 1, n, 8, 30, 0, 0, time.UTC), closed,
		})
		for j := range 1 + n%3 {
			kind := "debit"
			if j%2 == 1 {
				kind = "credit"
			}
			cards.rows = append(cards.rows, []any{
				int64(n*100 + j), id, fmt.Sprintf("6222%015d", n*100+j), banks[(n+j)%len(banks)], kind,
				time.Date(2022, time.Month(j+1), n, 0, 0, 0, 0, time.UTC),
			})
		}
		for j := range 2 + n%4 {
			var txnID any = int64(n*1000 + j)
			if n == 4 && j == 1 {
				txnID = "18446744073709551615" // above int64: exported as text
			}
			amount := fmt.Sprintf("%d.%02d", n*37+j, (n*j)%100)
			if j == 1 {
				amount = "-" + amount
			}
			txns.rows = append(txns.rows, []any{
				txnID, id, int64(n * 100), amount, 6.8523 + float64(j)/1000, memos[(n+j)%len(memos)],
				time.Date(2024, 3, n, 12, j, 5, 123456000, time.UTC),
			})
		}
		for j := range 1 + n%2 {
			purpose := []string{"marketing", "analytics"}[j]
			consents.rows = append(consents.rows, []any{
				int64(n*10 + j), id, purpose, int64((n + j) % 2),
				fmt.Sprintf(`{"channel": "app", "version": %d, "note": "同意：%s"}`, j+1, purpose),
			})
		}
	}
	return []*mysqlBankTable{users, cards, txns, consents}
}

// newMySQLBank creates the bank in a database of the test's own and returns
// the database's DSN, a pool on it and a connector to it.
func newMySQLBank(t *testing.T) (string, *sql.DB, *stores.MySQL) {
	t.Helper()
	dsn := mysqltest.NewDatabase(t, "stores")
	db := mysqltest.Open(t, dsn)
	for _, stmt := range mysqlBankSchema {
		mysqlExec(t, db, stmt)
	}
	for _, table := range mysqlBank() {
		row := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(table.columns)), ", ") + ")"
		rows := strings.TrimSuffix(strings.Repeat(row+", ", len(table.rows)), ", ")
		var args []any
		for _, r := range table.rows {
			args = append(args, r...)
		}
		mysqlExec(t, db, "INSERT INTO "+table.name+" ("+strings.Join(table.columns, ", ")+") VALUES "+rows, args...)
	}
	return dsn, db, newMySQLConnector(t, mysqlBankConfig(dsn))
}

func mysqlBankConfig(dsn string) config.Store {
	cfg := config.Store{
		Name: "mysql_bank", Kind: "mysql", DSN: dsn, Key: "user_id",
		Lookups: []config.Lookup{
			{Identity: "email", Table: "users", Column: "email", KeyColumn: "user_id"},
			{Identity: "phone", Table: "users", Column: "phone", KeyColumn: "user_id"},
		},
	}
	for _, table := range mysqlBank() {
		cfg.Tables = append(cfg.Tables, config.Table{Name: table.name, Column: "user_id", Category: table.category, OrderBy: table.orderBy})
	}
	return cfg
}

func newMySQLConnector(t *testing.T, cfg config.Store) *stores.MySQL {
	t.Helper()
	m, err := stores.NewMySQL(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func mysqlExec(t *testing.T, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.ExecContext(t.Context(), query, args...); err != nil {
		t.Fatalf("%.60s...: %v", query, err)
	}
}

// mysqlCounts returns the rows each table of the bank holds for userID.
func mysqlCounts(t *testing.T, db *sql.DB, userID string) map[string]int64 {
	t.Helper()
	counts := map[string]int64{}
	for _, table := range []string{"users", "cards", "transactions", "consents"} {
		var n int64
		err := db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM "+table+" WHERE CAST(user_id AS BINARY) = ?", userID).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		counts[table] = n
	}
	return counts
}

func mysqlAllCounts(t *testing.T, db *sql.DB) map[string]map[string]int64 {
	t.Helper()
	all := map[string]map[string]int64{}
	for n := 1; n <= mysqlBankCustomers; n++ {
		all[mysqlUserID(n)] = mysqlCounts(t, db, mysqlUserID(n))
	}
	return all
}

// checkMySQLExport checks that report and sink hold exactly userID's rows,
// value for value, in every table.
func checkMySQLExport(t *testing.T, userID string, report rights.StoreReport, sink *memSink) {
	t.Helper()
	if !report.Resolved {
		t.Fatalf("report.Resolved = false, want true")
	}
	bank := mysqlBank()
	if len(report.Datasets) != len(bank) || len(sink.datasets) != len(bank) {
		t.Fatalf("got %d reported and %d written datasets, want %d", len(report.Datasets), len(sink.datasets), len(bank))
	}
	for i, table := range bank {
		got, written := report.Datasets[i], sink.datasets[i]
		if got.Name != table.name || got.Category != table.category {
			t.Errorf("dataset %d = %s (%s), want %s (%s)", i, got.Name, got.Category, table.name, table.category)
		}
		if written.name != table.name || !written.closed {
			t.Errorf("written dataset %d = %s (closed %v), want closed %s", i, written.name, written.closed, table.name)
		}
		if !slices.Equal(written.columns, table.columns) {
			t.Errorf("%s: columns %v, want %v", table.name, written.columns, table.columns)
		}
		var want [][]any
		for _, row := range table.rows {
			if row[slices.Index(table.columns, "user_id")] == userID {
				want = append(want, row)
			}
		}
		if len(want) == 0 {
			t.Fatalf("%s: %s has no rows; the bank should give every customer some", table.name, userID)
		}
		if got.Rows != int64(len(want)) || len(written.rows) != len(want) {
			t.Errorf("%s: reported %d rows, wrote %d, want %d", table.name, got.Rows, len(written.rows), len(want))
		}
		for _, v := range written.column(t, "user_id") {
			if v != userID {
				t.Errorf("%s: exported a row of %v for %s", table.name, v, userID)
			}
		}
		for r := range min(len(want), len(written.rows)) {
			for c, col := range table.columns {
				if c < len(written.rows[r]) && !mysqlSameValue(written.rows[r][c], want[r][c]) {
					t.Errorf("%s row %d: %s = %#v (%T), want %#v (%T)", table.name, r, col, written.rows[r][c], written.rows[r][c], want[r][c], want[r][c])
				}
			}
		}
	}
}

// mysqlSameValue compares an exported value with the expected one: JSON
// by meaning (MySQL rewrites JSON documents, MariaDB keeps them as written),
// the rest by type and value.
func mysqlSameValue(got, want any) bool {
	if w, ok := want.(string); ok && strings.HasPrefix(w, "{") {
		g, ok := got.(string)
		if !ok {
			return false
		}
		var gv, wv any
		return json.Unmarshal([]byte(g), &gv) == nil && json.Unmarshal([]byte(w), &wv) == nil && reflect.DeepEqual(gv, wv)
	}
	if w, ok := want.(time.Time); ok {
		g, ok := got.(time.Time)
		return ok && g.Equal(w) && g.Location() == time.UTC
	}
	return reflect.DeepEqual(got, want)
}

func TestMySQLExportReturnsOnlyTheSubjectsRows(t *testing.T) {
	t.Parallel()
	_, _, m := newMySQLBank(t)

	// u-4 has a FLOAT score, a BLOB avatar, a NULL closed_at, Chinese text, a
	// four-byte character, negative DECIMALs and a BIGINT UNSIGNED beyond
	// int64; u-7 a closed_at and no avatar.
	for _, userID := range []string{"u-4", "u-7"} {
		sink := &memSink{}
		report, err := m.Export(t.Context(), subject("user_id", userID), sink)
		if err != nil {
			t.Fatal(err)
		}
		checkMySQLExport(t, userID, report, sink)
	}
}

func TestMySQLExportDoesNotMatchLookalikeKeys(t *testing.T) {
	t.Parallel()
	_, _, m := newMySQLBank(t)

	for _, s := range []rights.Subject{
		subject("user_id", "u-1"),
		subject("email", mysqlEmail(1)),
		subject("phone", mysqlPhone(1)),
	} {
		sink := &memSink{}
		report, err := m.Export(t.Context(), s, sink)
		if err != nil {
			t.Fatal(err)
		}
		checkMySQLExport(t, "u-1", report, sink)
	}
}

func TestMySQLExportResolvesLookups(t *testing.T) {
	t.Parallel()
	_, _, m := newMySQLBank(t)

	tests := []struct {
		name    string
		subject rights.Subject
		want    string
	}{
		{"email", subject("email", mysqlEmail(5)), "u-5"},
		{"phone", subject("phone", mysqlPhone(12)), "u-12"},
		{"key wins over lookups", subject("user_id", "u-2", "email", mysqlEmail(9)), "u-2"},
		{"unknown identity types are ignored", subject("wechat_openid", "o-123", "email", mysqlEmail(20)), "u-20"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sink := &memSink{}
			report, err := m.Export(t.Context(), tt.subject, sink)
			if err != nil {
				t.Fatal(err)
			}
			checkMySQLExport(t, tt.want, report, sink)
		})
	}

	// Two identities naming two customers resolve nothing: neither
	// customer's data may go to the requester.
	sink := &memSink{}
	report, err := m.Export(t.Context(), subject("email", mysqlEmail(3), "phone", mysqlPhone(13)), sink)
	if err != nil {
		t.Fatal(err)
	}
	if report.Resolved || len(sink.datasets) != 0 {
		t.Errorf("export of two customers: resolved %v with %d datasets, want nothing", report.Resolved, len(sink.datasets))
	}
}

// mysqlUnresolved are subjects the bank does not hold, including values that
// would match everything, or a prefix, if they were spliced into SQL or used
// in a LIKE, and values MySQL's case- and space-insensitive collations would
// match.
var mysqlUnresolved = []rights.Subject{
	subject(),
	subject("user_id", "u-99"),
	subject("user_id", "U-3"),
	subject("user_id", "u-3 "),
	subject("user_id", " u-3"),
	subject("email", "nobody@example.com"),
	subject("email", "U-3@EXAMPLE.COM"),
	subject("email", mysqlEmail(3)+" "),
	subject("phone", "13800009999"),
	subject("wechat_openid", "o-123"),
	subject("user_id", "' OR 1=1 -- "),
	subject("email", "' OR 1=1 -- "),
	subject("phone", "' OR '1'='1"),
	subject("user_id", `\' OR 1=1 -- `),
	subject("user_id", "u-1%"),
	subject("email", "%"),
	subject("user_id", "u-_"),
	subject("user_id", "u-1'; DELETE FROM users; -- "),
	subject("user_id", "u-1`; DELETE FROM users; -- "),
	// An empty key is no key: the lookup decides, and finds nothing.
	subject("user_id", "", "email", "u-1@example.co"),
}

func TestMySQLUnknownSubjectIsNotResolved(t *testing.T) {
	t.Parallel()
	_, db, m := newMySQLBank(t)
	before := mysqlAllCounts(t, db)

	for _, s := range mysqlUnresolved {
		sink := &memSink{}
		report, err := m.Export(t.Context(), s, sink)
		if err != nil {
			t.Fatalf("export %q: %v", s.Identities, err)
		}
		if report.Resolved || len(report.Datasets) != 0 || len(sink.datasets) != 0 {
			t.Errorf("export %q: resolved %v with %d datasets (%d written), want nothing", s.Identities, report.Resolved, len(report.Datasets), len(sink.datasets))
		}

		report, err = m.Delete(t.Context(), s)
		if err != nil {
			t.Fatalf("delete %q: %v", s.Identities, err)
		}
		if report.Resolved || len(report.Datasets) != 0 {
			t.Errorf("delete %q: resolved %v with %d datasets, want nothing", s.Identities, report.Resolved, len(report.Datasets))
		}
	}

	if after := mysqlAllCounts(t, db); !equalCounts(before, after) {
		t.Errorf("unresolved deletes changed the bank: before %v, after %v", before, after)
	}
}

func TestMySQLDeleteRemovesOnlyTheSubjectsRows(t *testing.T) {
	t.Parallel()
	_, db, m := newMySQLBank(t)

	tests := []struct {
		userID  string
		subject rights.Subject
	}{
		{"u-1", subject("user_id", "u-1")},
		{"u-7", subject("email", mysqlEmail(7))},
		{"u-15", subject("phone", mysqlPhone(15))},
		{"u-4", subject("user_id", "u-4")}, // holds the BIGINT UNSIGNED beyond int64
	}
	for _, tt := range tests {
		before := mysqlAllCounts(t, db)

		report, err := m.Delete(t.Context(), tt.subject)
		if err != nil {
			t.Fatalf("delete %s: %v", tt.userID, err)
		}
		if !report.Resolved {
			t.Fatalf("delete %s: not resolved", tt.userID)
		}
		wantNames := []string{"users", "cards", "transactions", "consents"}
		if len(report.Datasets) != len(wantNames) {
			t.Fatalf("delete %s: %d datasets, want %d", tt.userID, len(report.Datasets), len(wantNames))
		}
		for i, d := range report.Datasets {
			if d.Name != wantNames[i] || d.Category == "" || d.Rows != before[tt.userID][d.Name] || d.Rows == 0 {
				t.Errorf("delete %s: dataset %d = %+v, want %s with %d rows", tt.userID, i, d, wantNames[i], before[tt.userID][wantNames[i]])
			}
		}

		after := mysqlAllCounts(t, db)
		for table, n := range after[tt.userID] {
			if n != 0 {
				t.Errorf("delete %s: %d rows left in %s", tt.userID, n, table)
			}
		}
		for id := range before {
			if id != tt.userID && !maps.Equal(before[id], after[id]) {
				t.Errorf("delete %s touched %s: before %v, after %v", tt.userID, id, before[id], after[id])
			}
		}

		// Again, as a retried task would: nothing is found, nothing changes.
		for _, again := range []rights.Subject{tt.subject, subject("user_id", tt.userID)} {
			report, err := m.Delete(t.Context(), again)
			if err != nil {
				t.Fatalf("delete %s again: %v", tt.userID, err)
			}
			if report.Resolved || report.Rows() != 0 {
				t.Errorf("delete %s again: resolved %v, %d rows", tt.userID, report.Resolved, report.Rows())
			}
		}
		if again := mysqlAllCounts(t, db); !equalCounts(after, again) {
			t.Errorf("delete %s again changed the bank", tt.userID)
		}
	}
}

// mysqlHookSink is a memSink that runs a function when a dataset starts.
type mysqlHookSink struct {
	memSink
	onDataset func(name string)
}

func (s *mysqlHookSink) Dataset(name string, columns []string) (rights.RowWriter, error) {
	s.onDataset(name)
	return s.memSink.Dataset(name, columns)
}

func TestMySQLExportReadsOneSnapshot(t *testing.T) {
	t.Parallel()
	_, db, m := newMySQLBank(t)

	// While users is being exported, another connection gives u-6 a card and
	// a consent and commits: the export, reading one snapshot, sees neither.
	sink := &mysqlHookSink{onDataset: func(name string) {
		if name == "users" {
			mysqlExec(t, db, "INSERT INTO cards VALUES (99999, 'u-6', '6222000000000099999', '微众银行', 'debit', '2025-01-01')")
			mysqlExec(t, db, `INSERT INTO consents (user_id, purpose, granted, details) VALUES ('u-6', 'late', 1, '{}')`)
		}
	}}
	report, err := m.Export(t.Context(), subject("user_id", "u-6"), sink)
	if err != nil {
		t.Fatal(err)
	}
	checkMySQLExport(t, "u-6", report, &sink.memSink)
	if counts := mysqlCounts(t, db, "u-6"); counts["cards"] != report.Datasets[1].Rows+1 || counts["consents"] != report.Datasets[3].Rows+1 {
		t.Errorf("the late rows were not written: counts %v, report %+v", counts, report)
	}
}

func TestMySQLSchemaQualifiedTables(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	// The connector's DSN names one database; the tables are in another.
	dsn := mysqltest.NewDatabase(t, "stores")
	coreDSN := mysqltest.NewDatabase(t, "core")
	core := mysqltest.DBName(t, coreDSN)
	db := mysqltest.Open(t, coreDSN)
	// A bigint key and a mixed-case table name: the connector must quote and
	// compare both right.
	mysqlExec(t, db, `CREATE TABLE customers (customer_no BIGINT PRIMARY KEY, email VARCHAR(100))`)
	mysqlExec(t, db, "CREATE TABLE `Orders` (id INT AUTO_INCREMENT PRIMARY KEY, customer_no BIGINT, item VARCHAR(20), FOREIGN KEY (customer_no) REFERENCES customers (customer_no))")
	mysqlExec(t, db, `INSERT INTO customers VALUES (0, 'zero@example.com'), (4, 'four@example.com'), (42, 'fortytwo@example.com'), (420, 'fourtwenty@example.com')`)
	mysqlExec(t, db, "INSERT INTO `Orders` (customer_no, item) VALUES (42, '茶'), (42, 'rice'), (4, 'milk'), (420, 'salt'), (0, 'void')")
	m := newMySQLConnector(t, config.Store{
		Name: "core", Kind: "mysql", DSN: dsn, Key: "customer_no",
		Lookups: []config.Lookup{{Identity: "email", Table: core + ".customers", Column: "email", KeyColumn: "customer_no"}},
		Tables: []config.Table{
			{Name: core + ".customers", Column: "customer_no", Category: "profile"},
			{Name: core + ".Orders", Column: "customer_no", Category: "orders", OrderBy: "id"},
		},
	})

	for _, s := range []rights.Subject{subject("customer_no", "42"), subject("email", "fortytwo@example.com")} {
		sink := &memSink{}
		report, err := m.Export(ctx, s, sink)
		if err != nil {
			t.Fatal(err)
		}
		if !report.Resolved || report.Rows() != 3 {
			t.Fatalf("export %v: resolved %v, %d rows; want 3", s.Identities, report.Resolved, report.Rows())
		}
		for _, d := range sink.datasets {
			for _, v := range d.column(t, "customer_no") {
				if v != int64(42) {
					t.Errorf("%s: exported a row of customer %v", d.name, v)
				}
			}
		}
		if got := sink.datasets[1].column(t, "item"); !slices.Equal(got, []any{"茶", "rice"}) {
			t.Errorf("orders = %v, want [茶 rice] in id order", got)
		}
	}

	// Keys match on their canonical text: not "042", and never by MySQL's
	// conversion of a string to a number ("42 OR 1=1" is 42 to MySQL, and
	// "' OR 1=1 --" is 0).
	before := mysqlTableCounts(t, db, "customers", "Orders")
	for _, key := range []string{"042", "+42", "42 ", "42.0", "42 OR 1=1", "' OR 1=1 -- ", "4%", "0x2A", "4e1"} {
		report, err := m.Export(ctx, subject("customer_no", key), &memSink{})
		if err != nil || report.Resolved {
			t.Errorf("export key %q: resolved %v, error %v; want neither", key, report.Resolved, err)
		}
		report, err = m.Delete(ctx, subject("customer_no", key))
		if err != nil || report.Resolved {
			t.Errorf("delete key %q: resolved %v, error %v; want neither", key, report.Resolved, err)
		}
	}
	if after := mysqlTableCounts(t, db, "customers", "Orders"); !maps.Equal(before, after) {
		t.Errorf("deletes of unknown keys changed the tables: before %v, after %v", before, after)
	}

	report, err := m.Delete(ctx, subject("email", "fortytwo@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if !report.Resolved || report.Datasets[0].Rows != 1 || report.Datasets[1].Rows != 2 {
		t.Errorf("delete: %+v, want 1 customer and 2 orders", report)
	}
	if got := mysqlTableCounts(t, db, "customers", "Orders"); got["customers"] != 3 || got["Orders"] != 3 {
		t.Errorf("after delete: %v left, want 3 customers and 3 orders", got)
	}
}

func mysqlTableCounts(t *testing.T, db *sql.DB, tables ...string) map[string]int64 {
	t.Helper()
	counts := map[string]int64{}
	for _, table := range tables {
		var n int64
		if err := db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM `"+table+"`").Scan(&n); err != nil {
			t.Fatal(err)
		}
		counts[table] = n
	}
	return counts
}

// TestMySQLKeyColumnTypes checks, for each kind of key column, which keys
// match: exactly the column's canonical text, whatever the column's
// collation or type would make of the others.
func TestMySQLKeyColumnTypes(t *testing.T) {
	t.Parallel()
	dsn := mysqltest.NewDatabase(t, "stores")
	db := mysqltest.Open(t, dsn)

	tests := []struct {
		column string // the key column's definition
		value  string // the row's key, as SQL
		match  []string
		miss   []string
	}{
		{"VARCHAR(20) COLLATE utf8mb4_general_ci", "'u-1'", []string{"u-1"}, []string{"U-1", "u-1 ", "u-%", "u-10"}},
		{"VARCHAR(20) COLLATE utf8mb4_unicode_ci", "'Müller'", []string{"Müller"}, []string{"muller", "Muller", "MÜLLER"}},
		{"CHAR(8)", "'ab'", []string{"ab"}, []string{"ab ", "AB", "ab\x00"}},
		{"VARBINARY(16)", "'k-1'", []string{"k-1"}, []string{"K-1", "k-1 "}},
		{"ENUM('gold', 'silver')", "'gold'", []string{"gold"}, []string{"GOLD", "1", "gold "}},
		{"INT", "-7", []string{"-7"}, []string{"-07", "+7", "7", "-7 ", "-7.0", "-7 OR 1=1"}},
		{"BIGINT UNSIGNED", "18446744073709551615", []string{"18446744073709551615"}, []string{"18446744073709551616", "-1", "1.8446744073709552e19"}},
		{"DECIMAL(6, 2)", "42.5", []string{"42.50"}, []string{"42.5", "42", "042.50", "42.50 OR 1=1"}},
		{"DATE", "'2024-03-01'", []string{"2024-03-01"}, []string{"2024-3-1", "20240301", "2024-03-01 00:00:00"}},
	}
	for i, tt := range tests {
		t.Run(tt.column, func(t *testing.T) {
			t.Parallel()
			table := fmt.Sprintf("keys_%d", i)
			mysqlExec(t, db, "CREATE TABLE "+table+" (k "+tt.column+", note VARCHAR(10))")
			mysqlExec(t, db, "INSERT INTO "+table+" VALUES ("+tt.value+", 'row')")
			m := newMySQLConnector(t, config.Store{
				Name: "keys", Kind: "mysql", DSN: dsn, Key: "k",
				Tables: []config.Table{{Name: table, Column: "k", Category: "keys"}},
			})
			for _, key := range tt.miss {
				report, err := m.Export(t.Context(), subject("k", key), &memSink{})
				if err != nil || report.Resolved {
					t.Errorf("export %q: resolved %v, error %v; want neither", key, report.Resolved, err)
				}
				report, err = m.Delete(t.Context(), subject("k", key))
				if err != nil || report.Resolved {
					t.Errorf("delete %q: resolved %v, error %v; want neither", key, report.Resolved, err)
				}
			}
			for _, key := range tt.match {
				report, err := m.Export(t.Context(), subject("k", key), &memSink{})
				if err != nil || !report.Resolved || report.Rows() != 1 {
					t.Errorf("export %q: resolved %v, %d rows, error %v; want the row", key, report.Resolved, report.Rows(), err)
				}
			}
			report, err := m.Delete(t.Context(), subject("k", tt.match[0]))
			if err != nil || !report.Resolved || report.Rows() != 1 {
				t.Errorf("delete %q: resolved %v, %d rows, error %v; want the row", tt.match[0], report.Resolved, report.Rows(), err)
			}
		})
	}
}

func TestMySQLErrorsHoldNoPersonalData(t *testing.T) {
	t.Parallel()
	dsn, db, _ := newMySQLBank(t)
	const userID = "u-4"

	// Deleting users alone violates the cards foreign key.
	cfg := mysqlBankConfig(dsn)
	cfg.Tables = cfg.Tables[:1]
	_, err := newMySQLConnector(t, cfg).Delete(t.Context(), subject("email", mysqlEmail(4)))
	if err == nil {
		t.Fatal("delete of a referenced user succeeded")
	}
	var myErr *mysql.MySQLError
	if !errors.As(err, &myErr) || myErr.Number != 1451 {
		t.Errorf("error %v does not carry the foreign key violation", err)
	}
	if msg := err.Error(); strings.Contains(msg, userID) || strings.Contains(msg, mysqlEmail(4)) || !strings.Contains(msg, "users") {
		t.Errorf("error %q names the subject or not the table", msg)
	}
	if counts := mysqlCounts(t, db, userID); counts["users"] != 1 {
		t.Errorf("failed delete left %v, want the user in place", counts)
	}

	// A trigger may say anything; its message is withheld.
	mysqlExec(t, db, `
		CREATE TRIGGER refuse BEFORE DELETE ON consents FOR EACH ROW
		BEGIN
			DECLARE msg VARCHAR(128) DEFAULT CONCAT('will not delete ', OLD.user_id);
			SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = msg;
		END`)
	_, err = newMySQLConnector(t, mysqlBankConfig(dsn)).Delete(t.Context(), subject("user_id", userID))
	if err == nil {
		t.Fatal("delete succeeded despite the trigger")
	}
	if !errors.As(err, &myErr) || string(myErr.SQLState[:]) != "45000" {
		t.Errorf("error %v does not carry the trigger's SQLSTATE", err)
	}
	if msg := err.Error(); strings.Contains(msg, userID) || !strings.Contains(msg, "consents") {
		t.Errorf("error %q names the subject or not the table", msg)
	}
	if counts := mysqlCounts(t, db, userID); counts["users"] != 1 || counts["consents"] == 0 {
		t.Errorf("failed delete left %v, want everything in place", counts)
	}
}

func TestMySQLOpen(t *testing.T) {
	t.Parallel()

	if !slices.Contains(stores.Kinds(), "mysql") {
		t.Errorf("kinds %v do not include mysql", stores.Kinds())
	}
	c, err := stores.Open(t.Context(), mysqlBankConfig("root@tcp(127.0.0.1:1)/none"))
	if err != nil {
		t.Fatalf("open is lazy and should not dial: %v", err)
	}
	if _, ok := c.(*stores.MySQL); !ok {
		t.Errorf("open mysql returned %T", c)
	}
	if err := c.Close(); err != nil {
		t.Error(err)
	}

	for _, dsn := range []string{
		"u:s3cret@tcp(127.0.0.1:3306/bank",
		"u:s3cret@tcp(127.0.0.1:3306)bank",
		"u:s3cret@tcp(127.0.0.1:3306)/bank?loc=Nowhere%2Fs3cret",
		"u:s3cret@tcp(127.0.0.1:3306)/bank?tls=s3cret",
		"postgres://u:s3cret@127.0.0.1/bank",
	} {
		c, err := stores.Open(t.Context(), mysqlBankConfig(dsn))
		if c != nil || err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("open with dsn %q = %v, %v; want nil and an error without the password", dsn, c, err)
		}
	}
}

func TestMySQLUnreachableStoreFailsTheCall(t *testing.T) {
	t.Parallel()
	m := newMySQLConnector(t, mysqlBankConfig("root:s3cret@tcp(127.0.0.1:1)/bank?timeout=2s"))
	for _, s := range []rights.Subject{subject("user_id", "u-1"), subject("email", mysqlEmail(1))} {
		_, err := m.Export(t.Context(), s, &memSink{})
		if err == nil {
			t.Error("export from an unreachable store succeeded")
		} else if msg := err.Error(); strings.Contains(msg, "s3cret") || strings.Contains(msg, "u-1") || !strings.Contains(msg, "mysql_bank") {
			t.Errorf("export error %q names the password or the subject, or not the store", msg)
		}
		_, err = m.Delete(t.Context(), s)
		if err == nil {
			t.Error("delete from an unreachable store succeeded")
		} else if msg := err.Error(); strings.Contains(msg, "s3cret") || strings.Contains(msg, "u-1") || !strings.Contains(msg, "mysql_bank") {
			t.Errorf("delete error %q names the password or the subject, or not the store", msg)
		}
	}
}

// A canceled context ends the export and leaves the pool usable.
func TestMySQLCanceledExportLeavesThePoolUsable(t *testing.T) {
	t.Parallel()
	_, _, m := newMySQLBank(t)

	ctx, cancel := context.WithCancel(t.Context())
	sink := &mysqlHookSink{onDataset: func(name string) {
		if name == "cards" {
			cancel()
		}
	}}
	if _, err := m.Export(ctx, subject("user_id", "u-8"), sink); err == nil {
		t.Error("canceled export succeeded")
	}
	// The pool hands out its most recently used connection first: one left
	// inside the canceled transaction would be used again here.
	for range 6 {
		sink := &memSink{}
		report, err := m.Export(t.Context(), subject("user_id", "u-8"), sink)
		if err != nil {
			t.Fatal(err)
		}
		checkMySQLExport(t, "u-8", report, sink)
	}
}
