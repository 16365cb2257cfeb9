package stores_test

import (
	"context"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/demo"
	"github.com/datarights/datarights/rights"
)

// correctHostileValues are new values a correction must store exactly as
// given: SQL, quoting and placeholder syntax, and text outside the BMP.
var correctHostileValues = []string{
	`Robert'); DROP TABLE users;--`,
	`' OR '1'='1`,
	`$1 $2 ? %s %v`,
	`back\slash \' \" \\`,
	`"double" and 'single' quotes`,
	"line one\nline two\ttab",
	"𠮷野家 🛒 张三",
	`%_* LIKE wildcards`,
}

// pgSnapshot returns every row of every demo table as JSON text, keyed by
// table, in a total order.
func pgSnapshot(t *testing.T, conn *pgx.Conn) map[string][]string {
	t.Helper()
	orders := map[string]string{"users": "user_id", "cards": "card_id", "transactions": "id", "consents": "user_id, purpose"}
	out := map[string][]string{}
	for table, order := range orders {
		rows, err := conn.Query(t.Context(), "SELECT to_jsonb(t)::text FROM "+table+" t ORDER BY "+order)
		if err != nil {
			t.Fatal(err)
		}
		out[table], err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// pgUser returns a user's row as column → text value.
func pgUser(t *testing.T, conn *pgx.Conn, userID string) map[string]string {
	t.Helper()
	var row map[string]any
	if err := conn.QueryRow(t.Context(), "SELECT to_jsonb(u) FROM users u WHERE user_id = $1", userID).Scan(&row); err != nil {
		t.Fatalf("read %s: %v", userID, err)
	}
	out := map[string]string{}
	for k, v := range row {
		s, _ := v.(string)
		out[k] = s
	}
	return out
}

func pgConn(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.WithoutCancel(t.Context())) })
	return conn
}

// checkOnlyUserChanged checks that, between before and after, no row of any
// table changed except userID's users row, which changed in exactly the
// columns of want, to want's values.
func checkOnlyUserChanged(t *testing.T, conn *pgx.Conn, before map[string][]string, userID string, userBefore map[string]string, want map[string]string) {
	t.Helper()
	after := pgSnapshot(t, conn)
	for table, rows := range before {
		if len(after[table]) != len(rows) {
			t.Errorf("%s: %d rows, was %d", table, len(after[table]), len(rows))
			continue
		}
		for i, row := range rows {
			if after[table][i] != row && !(table == "users" && strings.Contains(row, `"user_id": "`+userID+`"`)) {
				t.Errorf("%s row %d changed:\n was %s\n now %s", table, i, row, after[table][i])
			}
		}
	}
	userAfter := pgUser(t, conn, userID)
	wantRow := maps.Clone(userBefore)
	maps.Copy(wantRow, want)
	if !reflect.DeepEqual(userAfter, wantRow) {
		t.Errorf("%s after the correction = %v\nwant %v", userID, userAfter, wantRow)
	}
}

func TestPostgresCorrectChangesOnlyTheSubjectsRow(t *testing.T) {
	t.Parallel()
	url, pg := newBank(t)
	conn := pgConn(t, url)
	before := pgSnapshot(t, conn)
	// demo-user-1 is a prefix of demo-user-10 to 19: none of theirs may change.
	const userID = "demo-user-1"
	userBefore := pgUser(t, conn, userID)

	changes := map[string]string{"city": "拉萨", "name": "New Name", "nickname": "not a field anywhere"}
	report, err := pg.Correct(t.Context(), subject("user_id", userID), changes)
	if err != nil {
		t.Fatal(err)
	}
	want := rights.StoreReport{Resolved: true, Fields: []string{"city", "name"},
		Datasets: []rights.DatasetReport{{Name: "users", Category: "profile", Rows: 1}}}
	if !reflect.DeepEqual(report, want) {
		t.Errorf("report = %+v, want %+v", report, want)
	}
	checkOnlyUserChanged(t, conn, before, userID, userBefore, map[string]string{"city": "拉萨", "name": "New Name"})

	// Again: the same values, the same report (a retried task).
	again, err := pg.Correct(t.Context(), subject("user_id", userID), changes)
	if err != nil || !reflect.DeepEqual(again, want) {
		t.Errorf("repeated correct = %+v, %v; want %+v", again, err, want)
	}
	checkOnlyUserChanged(t, conn, before, userID, userBefore, map[string]string{"city": "拉萨", "name": "New Name"})
}

func TestPostgresCorrectByLookupChangesTheLookupColumn(t *testing.T) {
	t.Parallel()
	url, pg := newBank(t)
	conn := pgConn(t, url)
	before := pgSnapshot(t, conn)
	userBefore := pgUser(t, conn, "demo-user-5")

	// The subject is named by the email being corrected.
	report, err := pg.Correct(t.Context(), subject("email", demo.Email(5)),
		map[string]string{"email": "five@example.org", "phone": "13912345678"})
	if err != nil {
		t.Fatal(err)
	}
	if !report.Resolved || len(report.Datasets) != 1 || report.Datasets[0].Rows != 1 || !slices.Equal(report.Fields, []string{"email", "phone"}) {
		t.Errorf("report = %+v", report)
	}
	checkOnlyUserChanged(t, conn, before, "demo-user-5", userBefore, map[string]string{"email": "five@example.org", "phone": "13912345678"})

	// The old email now finds no one.
	report, err = pg.Correct(t.Context(), subject("email", demo.Email(5)), map[string]string{"city": "x"})
	if err != nil || report.Resolved {
		t.Errorf("correct by the old email = %+v, %v; want not resolved", report, err)
	}
}

func TestPostgresCorrectStoresHostileValuesLiterally(t *testing.T) {
	t.Parallel()
	url, pg := newBank(t)
	conn := pgConn(t, url)
	before := pgSnapshot(t, conn)
	userBefore := pgUser(t, conn, "demo-user-2")
	var last map[string]string
	for _, value := range correctHostileValues {
		last = map[string]string{"name": value, "city": value + " (city)", "id_number": value + " (id)"}
		report, err := pg.Correct(t.Context(), subject("user_id", "demo-user-2"), last)
		if err != nil {
			t.Fatalf("correct to %q: %v", value, err)
		}
		if report.Rows() != 1 {
			t.Fatalf("correct to %q updated %d rows, want 1", value, report.Rows())
		}
		if got := pgUser(t, conn, "demo-user-2"); got["name"] != value || got["city"] != value+" (city)" || got["id_number"] != value+" (id)" {
			t.Errorf("stored %q / %q / %q, want %q", got["name"], got["city"], got["id_number"], value)
		}
	}
	checkOnlyUserChanged(t, conn, before, "demo-user-2", userBefore, map[string]string{
		"name": last["name"], "city": last["city"], "id_number": last["id_number"]})
}

func TestPostgresCorrectUnknownSubjectChangesNothing(t *testing.T) {
	t.Parallel()
	url, pg := newBank(t)
	conn := pgConn(t, url)
	if _, err := conn.Exec(t.Context(), "UPDATE users SET phone = $1 WHERE user_id = 'demo-user-7'", demo.Phone(6)); err != nil {
		t.Fatal(err)
	}
	before := pgSnapshot(t, conn)
	for name, s := range map[string]rights.Subject{
		"unknown key":       subject("user_id", "demo-user-99"),
		"prefix of keys":    subject("user_id", "demo-user-"),
		"key in upper case": subject("user_id", "DEMO-USER-3"),
		"unknown email":     subject("email", "nobody@example.com"),
		"a shared phone":    subject("phone", demo.Phone(6)),
		"two customers":     subject("email", demo.Email(4), "phone", demo.Phone(5)),
	} {
		report, err := pg.Correct(t.Context(), s, map[string]string{"city": "Nowhere", "name": "Nobody"})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if report.Resolved || len(report.Datasets) != 0 || len(report.CorrectedFields()) != 0 {
			t.Errorf("%s: report = %+v, want not resolved", name, report)
		}
	}
	if after := pgSnapshot(t, conn); !reflect.DeepEqual(after, before) {
		t.Error("a correction of no one changed the bank")
	}
}

// TestPostgresCorrectIsAllOrNothing: a value the column refuses (a date that
// is not one) fails the whole correction, with an error that does not quote
// it, and the tables corrected before it are rolled back.
func TestPostgresCorrectIsAllOrNothing(t *testing.T) {
	t.Parallel()
	url, _ := newBank(t)
	conn := pgConn(t, url)
	if _, err := conn.Exec(t.Context(), `CREATE TABLE profiles (user_id text REFERENCES users, born_on date);
		INSERT INTO profiles SELECT user_id, date '1990-01-01' FROM users`); err != nil {
		t.Fatal(err)
	}
	cfg := demo.StoreConfig(url)
	cfg.Tables = append(cfg.Tables, config.Table{Name: "profiles", Column: "user_id", Category: "profile",
		Correctable: []config.FieldRule{{Field: "birthday", Column: "born_on", Validate: "date"}}})
	pg := newConnector(t, cfg)
	before := pgSnapshot(t, conn)

	_, err := pg.Correct(t.Context(), subject("user_id", "demo-user-8"), map[string]string{"city": "Atlantis", "birthday": "1990-13-45-secret"})
	if err == nil {
		t.Fatal("an impossible date was accepted")
	}
	if msg := err.Error(); strings.Contains(msg, "secret") || strings.Contains(msg, "demo-user-8") || !strings.Contains(msg, "profiles") {
		t.Errorf("error %q quotes the value or the subject, or does not name the table", msg)
	}
	if after := pgSnapshot(t, conn); !reflect.DeepEqual(after, before) {
		t.Error("a failed correction left changes behind")
	}

	// A real date goes into the date column, sent as text.
	report, err := pg.Correct(t.Context(), subject("user_id", "demo-user-8"), map[string]string{"city": "Atlantis", "birthday": "1991-02-28"})
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Datasets) != 2 || report.Datasets[1].Name != "profiles" || report.Datasets[1].Rows != 1 {
		t.Errorf("report = %+v", report)
	}
	var born string
	if err := conn.QueryRow(t.Context(), "SELECT born_on::text FROM profiles WHERE user_id = 'demo-user-8'").Scan(&born); err != nil || born != "1991-02-28" {
		t.Errorf("born_on = %q, %v", born, err)
	}
}
