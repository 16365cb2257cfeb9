package stores_test

import (
	"database/sql"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage/stores"
)

// mysqlCorrectable is what the MySQL bank's users table lets be corrected.
var mysqlCorrectable = []config.FieldRule{
	{Field: "name", Column: "name", Validate: "text"},
	{Field: "email", Column: "email", Validate: "email"},
	{Field: "city", Column: "city", Validate: "text"},
	{Field: "phone", Column: "phone", Validate: "phone", Protected: true},
}

// newMySQLCorrectBank is the MySQL bank with a connector whose users table
// declares mysqlCorrectable; extra adjusts the configuration first.
func newMySQLCorrectBank(t *testing.T, extra func(*config.Store)) (*sql.DB, *stores.MySQL) {
	t.Helper()
	dsn, db, _ := newMySQLBank(t)
	cfg := mysqlBankConfig(dsn)
	cfg.Tables[0].Correctable = mysqlCorrectable
	if extra != nil {
		extra(&cfg)
	}
	return db, newMySQLConnector(t, cfg)
}

// mysqlRow is one row of the bank as text, with its user_id.
type mysqlRow struct{ userID, text string }

// mysqlSnapshot returns every row of every table of the bank, in primary
// key order.
func mysqlSnapshot(t *testing.T, db *sql.DB) map[string][]mysqlRow {
	t.Helper()
	orders := map[string]string{"users": "user_id", "cards": "card_id", "transactions": "txn_id", "consents": "consent_id"}
	out := map[string][]mysqlRow{}
	for table, order := range orders {
		rows, err := db.QueryContext(t.Context(), "SELECT * FROM "+table+" ORDER BY "+order)
		if err != nil {
			t.Fatal(err)
		}
		columns, _ := rows.Columns()
		userCol := slices.Index(columns, "user_id")
		for rows.Next() {
			values := make([]sql.RawBytes, len(columns))
			dest := make([]any, len(columns))
			for i := range values {
				dest[i] = &values[i]
			}
			if err := rows.Scan(dest...); err != nil {
				t.Fatal(err)
			}
			var parts []string
			for i, v := range values {
				parts = append(parts, fmt.Sprintf("%s=%q", columns[i], v))
			}
			out[table] = append(out[table], mysqlRow{userID: string(values[userCol]), text: strings.Join(parts, " ")})
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return out
}

// mysqlUserRow returns the correctable columns of a user.
func mysqlUserRow(t *testing.T, db *sql.DB, userID string) map[string]string {
	t.Helper()
	var name, email, city, phone string
	err := db.QueryRowContext(t.Context(), "SELECT name, email, city, phone FROM users WHERE CAST(user_id AS BINARY) = ?", userID).
		Scan(&name, &email, &city, &phone)
	if err != nil {
		t.Fatalf("read %s: %v", userID, err)
	}
	return map[string]string{"name": name, "email": email, "city": city, "phone": phone}
}

// checkMySQLOnlyUserChanged checks that no row changed between before and
// now except userID's users row, whose correctable columns are want (the
// others as before).
func checkMySQLOnlyUserChanged(t *testing.T, db *sql.DB, before map[string][]mysqlRow, userID string, want map[string]string) {
	t.Helper()
	after := mysqlSnapshot(t, db)
	for table, rows := range before {
		if len(after[table]) != len(rows) {
			t.Errorf("%s: %d rows, was %d", table, len(after[table]), len(rows))
			continue
		}
		for i, row := range rows {
			if after[table][i] != row && !(table == "users" && row.userID == userID) {
				t.Errorf("%s row %d changed:\n was %s\n now %s", table, i, row.text, after[table][i].text)
			}
		}
	}
	if got := mysqlUserRow(t, db, userID); !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %v, want %v", userID, got, want)
	}
}

func TestMySQLCorrectChangesOnlyTheSubjectsRow(t *testing.T) {
	t.Parallel()
	db, m := newMySQLCorrectBank(t, nil)
	before := mysqlSnapshot(t, db)
	// u-1 is a prefix of u-10 to u-19, in the key and the email.
	const userID = "u-1"
	want := mysqlUserRow(t, db, userID)
	want["city"], want["name"] = "拉萨", "New Name"

	changes := map[string]string{"city": "拉萨", "name": "New Name", "nickname": "not a field anywhere"}
	wantReport := rights.StoreReport{Resolved: true, Fields: []string{"city", "name"},
		Datasets: []rights.DatasetReport{{Name: "users", Category: "profile", Rows: 1}}}
	for _, s := range []rights.Subject{subject("user_id", userID), subject("email", mysqlEmail(1)), subject("phone", mysqlPhone(1))} {
		// The second and third runs write the same values again: the report
		// is the same, though MySQL changes no row.
		report, err := m.Correct(t.Context(), s, changes)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(report, wantReport) {
			t.Errorf("correct %v: report = %+v, want %+v", s.Identities, report, wantReport)
		}
		checkMySQLOnlyUserChanged(t, db, before, userID, want)
	}
}

func TestMySQLCorrectByLookupChangesTheLookupColumn(t *testing.T) {
	t.Parallel()
	db, m := newMySQLCorrectBank(t, nil)
	before := mysqlSnapshot(t, db)
	want := mysqlUserRow(t, db, "u-5")
	want["email"], want["phone"] = "five@example.org", "13912345678"

	report, err := m.Correct(t.Context(), subject("email", mysqlEmail(5)), map[string]string{"email": "five@example.org", "phone": "13912345678"})
	if err != nil {
		t.Fatal(err)
	}
	if !report.Resolved || report.Rows() != 1 || !slices.Equal(report.Fields, []string{"email", "phone"}) {
		t.Errorf("report = %+v", report)
	}
	checkMySQLOnlyUserChanged(t, db, before, "u-5", want)

	report, err = m.Correct(t.Context(), subject("email", mysqlEmail(5)), map[string]string{"city": "x"})
	if err != nil || report.Resolved {
		t.Errorf("correct by the old email = %+v, %v; want not resolved", report, err)
	}
}

func TestMySQLCorrectStoresHostileValuesLiterally(t *testing.T) {
	t.Parallel()
	db, m := newMySQLCorrectBank(t, nil)
	before := mysqlSnapshot(t, db)
	want := mysqlUserRow(t, db, "u-2")
	for _, value := range correctHostileValues {
		report, err := m.Correct(t.Context(), subject("user_id", "u-2"), map[string]string{"name": value, "city": value[:min(len(value), 28)]})
		if err != nil {
			t.Fatalf("correct to %q: %v", value, err)
		}
		if report.Rows() != 1 {
			t.Fatalf("correct to %q reported %d rows, want 1", value, report.Rows())
		}
		want["name"], want["city"] = value, value[:min(len(value), 28)]
		if got := mysqlUserRow(t, db, "u-2"); got["name"] != want["name"] || got["city"] != want["city"] {
			t.Errorf("stored %q / %q, want %q / %q", got["name"], got["city"], want["name"], want["city"])
		}
	}
	checkMySQLOnlyUserChanged(t, db, before, "u-2", want)
}

func TestMySQLCorrectUnknownSubjectChangesNothing(t *testing.T) {
	t.Parallel()
	// A lookup by city finds several customers for every city.
	db, m := newMySQLCorrectBank(t, func(cfg *config.Store) {
		cfg.Lookups = append(cfg.Lookups, config.Lookup{Identity: "city", Table: "users", Column: "city", KeyColumn: "user_id"})
	})
	before := mysqlSnapshot(t, db)
	// A city names several customers, and so do one's email and another's
	// phone: nobody's row may change.
	subjects := append(slices.Clone(mysqlUnresolved),
		subject("city", "深圳"),
		subject("email", mysqlEmail(3), "phone", mysqlPhone(13)),
	)
	for _, s := range subjects {
		report, err := m.Correct(t.Context(), s, map[string]string{"city": "Nowhere", "name": "Nobody"})
		if err != nil {
			t.Fatalf("correct %q: %v", s.Identities, err)
		}
		if report.Resolved || len(report.Datasets) != 0 || len(report.Fields) != 0 {
			t.Errorf("correct %q: report = %+v, want not resolved", s.Identities, report)
		}
	}
	if after := mysqlSnapshot(t, db); !reflect.DeepEqual(after, before) {
		t.Error("a correction of no one changed the bank")
	}
}

// TestMySQLCorrectIsAllOrNothing: a value the server refuses fails the whole
// correction with an error that does not quote it, and earlier tables are
// rolled back.
func TestMySQLCorrectIsAllOrNothing(t *testing.T) {
	t.Parallel()
	db, m := newMySQLCorrectBank(t, func(cfg *config.Store) {
		cfg.Tables[1].Correctable = []config.FieldRule{{Field: "card_opened", Column: "opened_on", Validate: "date"}}
	})
	before := mysqlSnapshot(t, db)
	_, err := m.Correct(t.Context(), subject("user_id", "u-8"), map[string]string{"city": "Atlantis", "card_opened": "2024-13-45-secret"})
	if err == nil {
		t.Fatal("an impossible date was accepted")
	}
	if msg := err.Error(); strings.Contains(msg, "secret") || strings.Contains(msg, "u-8") || !strings.Contains(msg, "cards") {
		t.Errorf("error %q quotes the value or the subject, or does not name the table", msg)
	}
	if after := mysqlSnapshot(t, db); !reflect.DeepEqual(after, before) {
		t.Error("a failed correction left changes behind")
	}

	// A real date goes into the DATE column; u-8 has 3 cards.
	report, err := m.Correct(t.Context(), subject("user_id", "u-8"), map[string]string{"city": "Atlantis", "card_opened": "2021-02-28"})
	if err != nil {
		t.Fatal(err)
	}
	want := []rights.DatasetReport{{Name: "users", Category: "profile", Rows: 1}, {Name: "cards", Category: "cards", Rows: 3}}
	if !slices.Equal(report.Datasets, want) || !slices.Equal(report.Fields, []string{"card_opened", "city"}) {
		t.Errorf("report = %+v, want datasets %+v", report, want)
	}
	var n int
	if err := db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM cards WHERE opened_on = '2021-02-28'").Scan(&n); err != nil || n != 3 {
		t.Errorf("%d cards opened on the new date (%v), want 3", n, err)
	}
}
