package stores_test

import (
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql on Postgres, so one test body serves both servers

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage/mysqltest"
	"github.com/datarights/datarights/storage/storagetest"
	"github.com/datarights/datarights/storage/stores"
)

// eraseBank is a store with one table per erasure mode, on Postgres or
// MariaDB, for the same checks on both.
type eraseBank struct {
	db     *sql.DB
	pg     bool
	eraser rights.Eraser
}

var eraseTimestamp = map[bool]string{true: "timestamptz", false: "DATETIME"}

func (b *eraseBank) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	if b.pg { // ? placeholders to $n
		var out strings.Builder
		n := 0
		for _, r := range query {
			if r == '?' {
				n++
				out.WriteString("$" + strconv.Itoa(n))
				continue
			}
			out.WriteRune(r)
		}
		query = out.String()
	}
	if _, err := b.db.ExecContext(t.Context(), query, args...); err != nil {
		t.Fatalf("%.80s: %v", query, err)
	}
}

// eraseUsers hold data in every table; u-1 is erased. u-10 is a lookalike of
// u-1 that a prefix match would hit.
var eraseUsers = []string{"u-1", "u-2", "u-10"}

// erasureStore is the configuration of the store: every mode, and two
// retention classes, one counted from a column of the row.
func erasureStore(kind, dsn string) config.Store {
	return config.Store{
		Name: "ledger", Kind: kind, DSN: dsn, Key: "user_id",
		Tables: []config.Table{
			{Name: "profiles", Column: "user_id", Category: "profile", OnDelete: rights.EraseAnonymize, Anonymize: []config.AnonymizeRule{
				{Column: "user_id", Strategy: rights.AnonymizeRandom},
				{Column: "email", Strategy: rights.AnonymizeNull},
				{Column: "name", Strategy: rights.AnonymizeFixed, Value: "已注销"},
			}},
			{Name: "events", Column: "user_id", Category: "activity"},
			{Name: "statements", Column: "user_id", Category: "statements", Retention: "loan_records", RetentionMonths: 60,
				RetentionFrom: "closed_at", RestrictColumn: "restricted_at"},
			{Name: "kyc", Column: "user_id", Category: "identity", Retention: "account_records", RetentionMonths: 120,
				RestrictColumn: "restricted_at"},
			{Name: "holds", Column: "user_id", Category: "legal_holds", OnDelete: rights.EraseRestrict, RestrictColumn: "restricted_at"},
		},
	}
}

func newEraseBank(t *testing.T, pg bool) *eraseBank {
	t.Helper()
	b := &eraseBank{pg: pg}
	var cfg config.Store
	if pg {
		url := storagetest.NewDatabase(t, "erase")
		db, err := sql.Open("pgx", url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		b.db, cfg = db, erasureStore("postgres", url)
	} else {
		dsn := mysqltest.NewDatabase(t, "erase")
		b.db, cfg = mysqltest.Open(t, dsn), erasureStore("mysql", dsn)
	}
	ts := eraseTimestamp[pg]
	b.exec(t, "CREATE TABLE profiles (user_id VARCHAR(64), email VARCHAR(100), name VARCHAR(100), city VARCHAR(100))")
	b.exec(t, "CREATE TABLE events (id INT PRIMARY KEY, user_id VARCHAR(64), what VARCHAR(100))")
	b.exec(t, "CREATE TABLE statements (id INT PRIMARY KEY, user_id VARCHAR(64), closed_at "+ts+" NULL, restricted_at "+ts+" NULL)")
	b.exec(t, "CREATE TABLE kyc (user_id VARCHAR(64), id_number VARCHAR(32), restricted_at "+ts+" NULL)")
	b.exec(t, "CREATE TABLE holds (user_id VARCHAR(64), reason VARCHAR(100), restricted_at "+ts+" NULL)")
	id := 0
	for _, u := range eraseUsers {
		b.exec(t, "INSERT INTO profiles VALUES (?, ?, ?, ?)", u, u+"@example.com", "name of "+u, "深圳")
		for i := range 3 {
			id++
			b.exec(t, "INSERT INTO events VALUES (?, ?, ?)", id, u, fmt.Sprintf("login %d", i))
		}
		// Closed in 2019 (its 5 years have run), closed in February 2023,
		// and still open.
		for _, closed := range []any{time.Date(2019, 5, 1, 2, 0, 0, 0, time.UTC), time.Date(2023, 2, 10, 1, 0, 0, 0, time.UTC), nil} {
			id++
			b.exec(t, "INSERT INTO statements (id, user_id, closed_at) VALUES (?, ?, ?)", id, u, closed)
		}
		b.exec(t, "INSERT INTO kyc (user_id, id_number) VALUES (?, ?)", u, "ID-"+u)
		b.exec(t, "INSERT INTO holds (user_id, reason) VALUES (?, ?)", u, "court order")
	}
	var err error
	if pg {
		b.eraser, err = stores.NewPostgres(t.Context(), cfg)
	} else {
		b.eraser, err = stores.NewMySQL(t.Context(), cfg)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.eraser.(rights.Connector).Close() })
	return b
}

// rows returns every row of table as text, by the user_id it carries.
func (b *eraseBank) rows(t *testing.T, table string) map[string][]string {
	t.Helper()
	rows, err := b.db.QueryContext(t.Context(), "SELECT * FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	userCol := slices.Index(cols, "user_id")
	out := map[string][]string{}
	for rows.Next() {
		values := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range values {
			ptrs[i] = &values[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		text := make([]string, len(values))
		for i, v := range values {
			switch v := v.(type) {
			case nil:
				text[i] = "NULL"
			case []byte:
				text[i] = string(v)
			case time.Time:
				text[i] = v.UTC().Format(time.RFC3339)
			default:
				text[i] = fmt.Sprint(v)
			}
		}
		user := text[userCol]
		out[user] = append(out[user], strings.Join(text, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, r := range out {
		slices.Sort(r)
	}
	return out
}

func (b *eraseBank) snapshot(t *testing.T) map[string]map[string][]string {
	t.Helper()
	all := map[string]map[string][]string{}
	for _, table := range []string{"profiles", "events", "statements", "kyc", "holds"} {
		all[table] = b.rows(t, table)
	}
	return all
}

// checkOthersUntouched compares, row by row, every row not of u-1.
func checkOthersUntouched(t *testing.T, before, after map[string]map[string][]string) {
	t.Helper()
	for table, byUser := range before {
		for user, rows := range byUser {
			if user == "u-1" {
				continue
			}
			if !slices.Equal(after[table][user], rows) {
				t.Errorf("%s rows of %s changed:\n before %q\n after  %q", table, user, rows, after[table][user])
			}
		}
	}
}

func dataset(t *testing.T, r rights.StoreReport, name string) rights.DatasetReport {
	t.Helper()
	for _, d := range r.Datasets {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("report has no dataset %s: %+v", name, r.Datasets)
	return rights.DatasetReport{}
}

func TestEraseModesAndRetention(t *testing.T) {
	t.Parallel()
	for _, pg := range []bool{true, false} {
		name := map[bool]string{true: "postgres", false: "mariadb"}[pg]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := newEraseBank(t, pg)
			cst := time.FixedZone("CST", 8*3600)
			now := time.Date(2026, 12, 1, 10, 0, 0, 0, cst)
			opts := rights.EraseOptions{Now: now, EndedAt: now, Location: cst}
			before := b.snapshot(t)

			report, err := b.eraser.Erase(t.Context(), subject("user_id", "u-1"), opts)
			if err != nil {
				t.Fatal(err)
			}
			if !report.Resolved || len(report.Datasets) != 5 {
				t.Fatalf("report = %+v, want 5 datasets resolved", report)
			}
			if got := slices.Collect(func(yield func(string) bool) {
				for _, d := range report.Datasets {
					yield(d.Name)
				}
			}); !slices.Equal(got, []string{"profiles", "events", "statements", "kyc", "holds"}) {
				t.Errorf("datasets in order %v, want configuration order", got)
			}
			after := b.snapshot(t)
			checkOthersUntouched(t, before, after)

			// anonymize: the row stays, unlinked, with its city.
			if d := dataset(t, report, "profiles"); d.Anonymized != 1 || d.Rows != 1 {
				t.Errorf("profiles: %+v, want 1 anonymized", d)
			}
			if len(after["profiles"]["u-1"]) != 0 {
				t.Errorf("u-1 still has a profile: %v", after["profiles"]["u-1"])
			}
			anonymized := 0
			for user, rows := range after["profiles"] {
				if strings.HasPrefix(user, "anon-") {
					anonymized++
					if rows[0] != user+"|NULL|已注销|深圳" {
						t.Errorf("anonymized profile = %q", rows[0])
					}
				}
			}
			if anonymized != 1 {
				t.Errorf("%d anonymized profiles, want 1", anonymized)
			}
			// delete
			if d := dataset(t, report, "events"); d.Deleted != 3 || len(after["events"]["u-1"]) != 0 {
				t.Errorf("events: %+v, left %v", d, after["events"]["u-1"])
			}
			// retention counted from closed_at: the 2019 statement's period
			// has run; the 2023 one and the open one are restricted, until
			// 5 years after the relationship ended (the open one's start).
			st := dataset(t, report, "statements")
			wantUntil := time.Date(2031, 12, 2, 0, 0, 0, 0, cst)
			if st.Deleted != 1 || st.Restricted != 2 || st.Retention != "loan_records" || st.RestrictedUntil == nil || !st.RestrictedUntil.Equal(wantUntil) {
				t.Errorf("statements: %+v, want 1 deleted, 2 restricted until %s", st, wantUntil)
			}
			for _, row := range after["statements"]["u-1"] {
				if strings.HasSuffix(row, "|NULL") {
					t.Errorf("statement not restricted: %s", row)
				}
			}
			// retention from the end of the relationship: all restricted.
			if d := dataset(t, report, "kyc"); d.Restricted != 1 || d.RestrictedUntil == nil || !d.RestrictedUntil.Equal(time.Date(2036, 12, 2, 0, 0, 0, 0, cst)) {
				t.Errorf("kyc: %+v", d)
			}
			// restrict with no end.
			if d := dataset(t, report, "holds"); d.Restricted != 1 || d.RestrictedUntil != nil || d.Retention != "" {
				t.Errorf("holds: %+v", d)
			}

			// Again, a day later: nothing more happens, and the restricted
			// rows keep the time they were first restricted.
			later := opts
			later.Now = now.AddDate(0, 0, 1)
			again, err := b.eraser.Erase(t.Context(), subject("user_id", "u-1"), later)
			if err != nil {
				t.Fatal(err)
			}
			if d := dataset(t, again, "statements"); d.Deleted != 0 || d.Restricted != 2 || !d.RestrictedUntil.Equal(wantUntil) {
				t.Errorf("second erase of statements: %+v", d)
			}
			if d := dataset(t, again, "profiles"); d.Anonymized != 0 {
				t.Errorf("second erase anonymized %d more", d.Anonymized)
			}
			if again := b.snapshot(t); !slices.Equal(again["statements"]["u-1"], after["statements"]["u-1"]) {
				t.Errorf("restricted rows changed on the second erase: %v → %v", after["statements"]["u-1"], again["statements"]["u-1"])
			}

			// The February 2023 statement's 5 years end at 24:00 of
			// 2028-02-10 (Beijing time): the sweep of that day keeps it,
			// the next day's deletes it; the open one stays restricted.
			release := func(at time.Time) rights.DatasetReport {
				t.Helper()
				r, err := b.eraser.Erase(t.Context(), subject("user_id", "u-1"),
					rights.EraseOptions{Now: at, EndedAt: now, Location: cst, Tables: []string{"statements"}})
				if err != nil {
					t.Fatal(err)
				}
				if len(r.Datasets) != 1 {
					t.Fatalf("release touched %d datasets, want 1", len(r.Datasets))
				}
				return r.Datasets[0]
			}
			if d := release(time.Date(2028, 2, 10, 23, 59, 59, 0, cst)); d.Deleted != 0 || d.Restricted != 2 {
				t.Errorf("on the last day of the period: %+v, want nothing deleted", d)
			}
			if d := release(time.Date(2028, 2, 11, 0, 0, 1, 0, cst)); d.Deleted != 1 || d.Restricted != 1 || !d.RestrictedUntil.Equal(wantUntil) {
				t.Errorf("the day after: %+v, want 1 deleted, 1 restricted until %s", d, wantUntil)
			}
			if d := release(wantUntil); d.Deleted != 1 || d.Restricted != 0 {
				t.Errorf("at the end of the last period: %+v, want the last one deleted", d)
			}
			checkOthersUntouched(t, before, b.snapshot(t))
		})
	}
}
