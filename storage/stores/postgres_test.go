package stores_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/demo"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage/storagetest"
	"github.com/datarights/datarights/storage/stores"
)

// memSink keeps exported datasets in memory. Only tests may do that; real
// sinks stream to files.
type memSink struct {
	mu       sync.Mutex
	datasets []*memDataset
}

type memDataset struct {
	name    string
	columns []string
	rows    [][]any
	closed  bool
}

func (s *memSink) Dataset(name string, columns []string) (rights.RowWriter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := &memDataset{name: name, columns: slices.Clone(columns)}
	s.datasets = append(s.datasets, d)
	return d, nil
}

func (d *memDataset) WriteRow(values []any) error {
	if d.closed {
		return errors.New("memSink: write after close")
	}
	if len(values) != len(d.columns) {
		return errors.New("memSink: row does not match the columns")
	}
	d.rows = append(d.rows, slices.Clone(values))
	return nil
}

func (d *memDataset) Close() (rights.DatasetReport, error) {
	d.closed = true
	return rights.DatasetReport{Name: d.name, Rows: int64(len(d.rows))}, nil
}

// column returns the values of one column in every row of d.
func (d *memDataset) column(t *testing.T, name string) []any {
	t.Helper()
	i := slices.Index(d.columns, name)
	if i < 0 {
		t.Fatalf("dataset %s has no column %s (columns %v)", d.name, name, d.columns)
	}
	values := make([]any, len(d.rows))
	for j, row := range d.rows {
		values[j] = row[i]
	}
	return values
}

// newBank seeds a demo bank in a database of the test's own and returns its
// URL and a connector to it.
func newBank(t *testing.T) (string, *stores.Postgres) {
	t.Helper()
	url := storagetest.NewDatabase(t, "stores")
	if err := demo.Seed(t.Context(), url); err != nil {
		t.Fatal(err)
	}
	return url, newConnector(t, demo.StoreConfig(url))
}

func newConnector(t *testing.T, cfg config.Store) *stores.Postgres {
	t.Helper()
	pg, err := stores.NewPostgres(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	return pg
}

func subject(identities ...string) rights.Subject {
	s := rights.Subject{Identities: map[string]string{}}
	for i := 0; i+1 < len(identities); i += 2 {
		s.Identities[identities[i]] = identities[i+1]
	}
	return s
}

func allCounts(t *testing.T, url string) map[string]map[string]int64 {
	t.Helper()
	all := map[string]map[string]int64{}
	for _, id := range demo.Subjects() {
		counts, err := demo.Counts(t.Context(), url, id)
		if err != nil {
			t.Fatal(err)
		}
		all[id] = counts
	}
	return all
}

// checkExport checks that report and sink hold exactly userID's rows: every
// table, every row's user_id, and the counts the database has for userID.
func checkExport(t *testing.T, url, userID string, report rights.StoreReport, sink *memSink) {
	t.Helper()
	want, err := demo.Counts(t.Context(), url, userID)
	if err != nil {
		t.Fatal(err)
	}
	if !report.Resolved {
		t.Fatalf("report.Resolved = false, want true")
	}
	wantTables := []struct{ name, category string }{
		{"users", "profile"}, {"cards", "cards"}, {"transactions", "transactions"}, {"consents", "consents"},
	}
	if len(report.Datasets) != len(wantTables) || len(sink.datasets) != len(wantTables) {
		t.Fatalf("got %d reported and %d written datasets, want %d", len(report.Datasets), len(sink.datasets), len(wantTables))
	}
	for i, wt := range wantTables {
		got, written := report.Datasets[i], sink.datasets[i]
		if got.Name != wt.name || got.Category != wt.category {
			t.Errorf("dataset %d = %s (%s), want %s (%s)", i, got.Name, got.Category, wt.name, wt.category)
		}
		if written.name != wt.name || !written.closed {
			t.Errorf("written dataset %d = %s (closed %v), want closed %s", i, written.name, written.closed, wt.name)
		}
		if got.Rows != want[wt.name] || int64(len(written.rows)) != want[wt.name] {
			t.Errorf("%s: reported %d rows, wrote %d, the database has %d", wt.name, got.Rows, len(written.rows), want[wt.name])
		}
		if want[wt.name] == 0 {
			t.Errorf("%s: %s has no rows; the demo data should give every customer some", wt.name, userID)
		}
		for _, v := range written.column(t, "user_id") {
			if v != userID {
				t.Errorf("%s: exported a row of %v for %s", wt.name, v, userID)
			}
		}
	}
}

func TestExportReturnsOnlyTheSubjectsRows(t *testing.T) {
	t.Parallel()
	url, pg := newBank(t)

	sink := &memSink{}
	report, err := pg.Export(t.Context(), subject("user_id", "demo-user-3"), sink)
	if err != nil {
		t.Fatal(err)
	}
	checkExport(t, url, "demo-user-3", report, sink)

	users := sink.datasets[0]
	if want := []string{"user_id", "name", "email", "phone", "id_number", "city", "created_at", "restricted_at"}; !slices.Equal(users.columns, want) {
		t.Errorf("users columns = %v, want %v", users.columns, want)
	}
	if got := users.column(t, "email"); got[0] != demo.Email(3) {
		t.Errorf("exported email %v, want %s", got[0], demo.Email(3))
	}
}

func TestExportDoesNotMatchLookalikeKeys(t *testing.T) {
	t.Parallel()
	url, pg := newBank(t)

	// demo-user-1 is a prefix of demo-user-10 to demo-user-19, in the key and
	// in the email.
	for _, s := range []rights.Subject{
		subject("user_id", "demo-user-1"),
		subject("email", demo.Email(1)),
		subject("phone", demo.Phone(1)),
	} {
		sink := &memSink{}
		report, err := pg.Export(t.Context(), s, sink)
		if err != nil {
			t.Fatal(err)
		}
		checkExport(t, url, "demo-user-1", report, sink)
	}
}

func TestExportResolvesLookups(t *testing.T) {
	t.Parallel()
	url, pg := newBank(t)

	tests := []struct {
		name    string
		subject rights.Subject
		want    string
	}{
		{"email", subject("email", demo.Email(5)), "demo-user-5"},
		{"phone", subject("phone", demo.Phone(12)), "demo-user-12"},
		{"key wins over lookups", subject("user_id", "demo-user-2", "email", demo.Email(9)), "demo-user-2"},
		{"unknown identity types are ignored", subject("wechat_openid", "o-123", "email", demo.Email(20)), "demo-user-20"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sink := &memSink{}
			report, err := pg.Export(t.Context(), tt.subject, sink)
			if err != nil {
				t.Fatal(err)
			}
			checkExport(t, url, tt.want, report, sink)
		})
	}
}

// unresolved are subjects the demo bank does not hold, including values that
// would match everything, or a prefix, if they were spliced into SQL or used
// in a LIKE.
var unresolved = []rights.Subject{
	subject(),
	subject("user_id", "demo-user-99"),
	subject("user_id", "DEMO-USER-3"),
	subject("email", "nobody@example.com"),
	subject("phone", "13800009999"),
	subject("wechat_openid", "o-123"),
	subject("user_id", "' OR 1=1 --"),
	subject("email", "' OR 1=1 --"),
	subject("phone", "' OR '1'='1"),
	subject("user_id", "demo-user-1%"),
	subject("email", "%"),
	subject("user_id", "demo-user-_"),
	subject("user_id", "demo-user-1'; DELETE FROM users; --"),
	// An empty key is no key: the lookup decides, and finds nothing.
	subject("user_id", "", "email", "demo-user-1@example.co"),
}

func TestUnknownSubjectIsNotResolved(t *testing.T) {
	t.Parallel()
	url, pg := newBank(t)
	before := allCounts(t, url)

	for _, s := range unresolved {
		sink := &memSink{}
		report, err := pg.Export(t.Context(), s, sink)
		if err != nil {
			t.Fatalf("export %v: %v", s.Identities, err)
		}
		if report.Resolved || len(report.Datasets) != 0 || len(sink.datasets) != 0 {
			t.Errorf("export %v: resolved %v with %d datasets (%d written), want nothing", s.Identities, report.Resolved, len(report.Datasets), len(sink.datasets))
		}

		report, err = pg.Delete(t.Context(), s)
		if err != nil {
			t.Fatalf("delete %v: %v", s.Identities, err)
		}
		if report.Resolved || len(report.Datasets) != 0 {
			t.Errorf("delete %v: resolved %v with %d datasets, want nothing", s.Identities, report.Resolved, len(report.Datasets))
		}
	}

	if after := allCounts(t, url); !equalCounts(before, after) {
		t.Errorf("unresolved deletes changed the bank: before %v, after %v", before, after)
	}
}

func equalCounts(a, b map[string]map[string]int64) bool {
	return maps.EqualFunc(a, b, maps.Equal)
}

func TestDeleteRemovesOnlyTheSubjectsRows(t *testing.T) {
	t.Parallel()
	url, pg := newBank(t)

	tests := []struct {
		userID  string
		subject rights.Subject
	}{
		{"demo-user-1", subject("user_id", "demo-user-1")},
		{"demo-user-7", subject("email", demo.Email(7))},
		{"demo-user-15", subject("phone", demo.Phone(15))},
	}
	for _, tt := range tests {
		before := allCounts(t, url)

		report, err := pg.Delete(t.Context(), tt.subject)
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
			if d.Name != wantNames[i] || d.Category == "" || d.Rows != before[tt.userID][d.Name] {
				t.Errorf("delete %s: dataset %d = %+v, want %s with %d rows", tt.userID, i, d, wantNames[i], before[tt.userID][wantNames[i]])
			}
		}

		after := allCounts(t, url)
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
			report, err := pg.Delete(t.Context(), again)
			if err != nil {
				t.Fatalf("delete %s again: %v", tt.userID, err)
			}
			if report.Resolved || report.Rows() != 0 {
				t.Errorf("delete %s again: resolved %v, %d rows", tt.userID, report.Resolved, report.Rows())
			}
		}
		if again := allCounts(t, url); !equalCounts(after, again) {
			t.Errorf("delete %s again changed the bank", tt.userID)
		}
	}
}

func TestSchemaQualifiedTables(t *testing.T) {
	t.Parallel()
	url := storagetest.NewDatabase(t, "stores")
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// A bigint key, a case-sensitive table name and a table outside the
	// search path: the connector must quote and compare all of them right.
	_, err = conn.Exec(ctx, `
		CREATE SCHEMA core;
		CREATE TABLE core.customers (customer_no bigint PRIMARY KEY, email text);
		CREATE TABLE core."Orders" (id serial PRIMARY KEY, customer_no bigint REFERENCES core.customers, item text);
		INSERT INTO core.customers VALUES (4, 'four@example.com'), (42, 'fortytwo@example.com'), (420, 'fourtwenty@example.com');
		INSERT INTO core."Orders" (customer_no, item) VALUES (42, 'tea'), (42, 'rice'), (4, 'milk'), (420, 'salt');
	`)
	if err != nil {
		t.Fatal(err)
	}
	pg := newConnector(t, config.Store{
		Name: "core", Kind: "postgres", DSN: url, Key: "customer_no",
		Lookups: []config.Lookup{{Identity: "email", Table: "core.customers", Column: "email", KeyColumn: "customer_no"}},
		Tables: []config.Table{
			{Name: "core.customers", Column: "customer_no", Category: "profile"},
			{Name: "core.Orders", Column: "customer_no", Category: "orders", OrderBy: "id"},
		},
	})

	for _, s := range []rights.Subject{subject("customer_no", "42"), subject("email", "fortytwo@example.com")} {
		sink := &memSink{}
		report, err := pg.Export(ctx, s, sink)
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
		if got := sink.datasets[1].column(t, "item"); !slices.Equal(got, []any{"tea", "rice"}) {
			t.Errorf("orders = %v, want [tea rice] in id order", got)
		}
	}

	// Keys match on their canonical text: not "042", and never by error.
	for _, key := range []string{"042", "42 OR 1=1", "' OR 1=1 --", "4%"} {
		report, err := pg.Export(ctx, subject("customer_no", key), &memSink{})
		if err != nil || report.Resolved {
			t.Errorf("export key %q: resolved %v, error %v; want neither", key, report.Resolved, err)
		}
	}

	report, err := pg.Delete(ctx, subject("email", "fortytwo@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if !report.Resolved || report.Datasets[0].Rows != 1 || report.Datasets[1].Rows != 2 {
		t.Errorf("delete: %+v, want 1 customer and 2 orders", report)
	}
	var customers, orders int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM core.customers), (SELECT count(*) FROM core."Orders")`).Scan(&customers, &orders); err != nil {
		t.Fatal(err)
	}
	if customers != 2 || orders != 2 {
		t.Errorf("after delete: %d customers and %d orders left, want 2 and 2", customers, orders)
	}
}

func TestErrorsHoldNoPersonalData(t *testing.T) {
	t.Parallel()
	url, _ := newBank(t)
	const userID = "demo-user-4"

	// Deleting users alone violates the cards foreign key, and Postgres puts
	// the key value in the error's detail.
	cfg := demo.StoreConfig(url)
	cfg.Tables = cfg.Tables[:1]
	pg := newConnector(t, cfg)
	_, err := pg.Delete(t.Context(), subject("email", demo.Email(4)))
	if err == nil {
		t.Fatal("delete of a referenced user succeeded")
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23503" || pgErr.ConstraintName == "" {
		t.Errorf("error %v does not carry the foreign key violation", err)
	} else if pgErr.Detail != "" || pgErr.Where != "" {
		t.Errorf("error keeps detail %q, where %q", pgErr.Detail, pgErr.Where)
	}
	if msg := err.Error(); strings.Contains(msg, userID) || strings.Contains(msg, demo.Email(4)) {
		t.Errorf("error %q names the subject", msg)
	}
	if counts, err := demo.Counts(t.Context(), url, userID); err != nil || counts["users"] != 1 {
		t.Errorf("failed delete left %v (%v), want the user in place", counts, err)
	}

	// A trigger may raise anything; its message is withheld.
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	_, err = conn.Exec(t.Context(), `
		CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'will not delete %', OLD.user_id; END $$;
		CREATE TRIGGER refuse BEFORE DELETE ON consents FOR EACH ROW EXECUTE FUNCTION refuse();
	`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = newConnector(t, demo.StoreConfig(url)).Delete(t.Context(), subject("user_id", userID))
	if err == nil {
		t.Fatal("delete succeeded despite the trigger")
	}
	if msg := err.Error(); strings.Contains(msg, userID) || !strings.Contains(msg, "consents") {
		t.Errorf("error %q names the subject or not the table", msg)
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()

	c, err := stores.Open(t.Context(), demo.StoreConfig("postgres://postgres@127.0.0.1:1/none"))
	if err != nil {
		t.Fatalf("open is lazy and should not dial: %v", err)
	}
	if _, ok := c.(*stores.Postgres); !ok {
		t.Errorf("open postgres returned %T", c)
	}
	if err := c.Close(); err != nil {
		t.Error(err)
	}

	cfg := demo.StoreConfig("postgres://postgres@127.0.0.1/none")
	cfg.Kind = "carrier-pigeon"
	c, err = stores.Open(t.Context(), cfg)
	if c != nil || rights.ErrorCode(err) != rights.ENotImplemented {
		t.Errorf("open unknown kind = %v, %v; want nil and a not_implemented error", c, err)
	}

	c, err = stores.Open(t.Context(), demo.StoreConfig("postgres://u:s3cret@[::1/x"))
	if c != nil || err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("open with a broken dsn = %v, %v; want nil and an error without the password", c, err)
	}
}

func TestUnreachableStoreFailsTheCall(t *testing.T) {
	t.Parallel()
	pg := newConnector(t, demo.StoreConfig("postgres://postgres@127.0.0.1:1/none?connect_timeout=2"))
	if _, err := pg.Export(t.Context(), subject("user_id", "demo-user-1"), &memSink{}); err == nil {
		t.Error("export from an unreachable store succeeded")
	}
	if _, err := pg.Delete(t.Context(), subject("user_id", "demo-user-1")); err == nil {
		t.Error("delete from an unreachable store succeeded")
	}
}

// TestAmbiguousLookupsResolveNothing: identities that lead to two customers
// (here one's email and another's phone, and a phone two customers share)
// resolve nothing, so neither customer's data goes to the requester.
func TestAmbiguousLookupsResolveNothing(t *testing.T) {
	t.Parallel()
	url, pg := newBank(t)
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	if _, err := conn.Exec(t.Context(), "UPDATE users SET phone = $1 WHERE user_id = 'demo-user-7'", demo.Phone(6)); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]rights.Subject{
		"two identities, two customers": subject("email", demo.Email(4), "phone", demo.Phone(5)),
		"a shared phone":                subject("phone", demo.Phone(6)),
	} {
		sink := &memSink{}
		report, err := pg.Export(t.Context(), s, sink)
		if err != nil {
			t.Fatal(err)
		}
		if report.Resolved || len(report.Datasets) != 0 {
			t.Errorf("%s: resolved %v with %d datasets, want nothing", name, report.Resolved, len(report.Datasets))
		}
		if _, keys, err := pg.ResolveKeys(t.Context(), s); err != nil || len(keys) != 0 {
			t.Errorf("%s: ResolveKeys = %v, %v; want none", name, keys, err)
		}
	}
	// The same email and phone of one customer still resolve.
	if _, keys, err := pg.ResolveKeys(t.Context(), subject("email", demo.Email(4), "phone", demo.Phone(4))); err != nil || len(keys) != 1 {
		t.Errorf("one customer's email and phone: %v, %v", keys, err)
	}
}
