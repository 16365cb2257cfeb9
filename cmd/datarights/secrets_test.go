package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/datarights/datarights/demo"
)

// dumpDatabase returns every row of every table of the service's database
// as text: what an attacker holding a dump (or a backup) would read.
func dumpDatabase(t *testing.T, db *pgxpool.Pool) string {
	t.Helper()
	ctx := context.Background()
	rows, err := db.Query(ctx, `SELECT table_schema, table_name FROM information_schema.tables
		WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (string, error) {
		var schema, name string
		err := row.Scan(&schema, &name)
		return pgx.Identifier{schema, name}.Sanitize(), err
	})
	if err != nil {
		t.Fatal(err)
	}
	var dump strings.Builder
	for _, table := range tables {
		var text string
		if err := db.QueryRow(ctx, `SELECT coalesce(string_agg(t::text, E'\n'), '') FROM `+table+` t`).Scan(&text); err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		dump.WriteString(text + "\n")
	}
	return dump.String()
}

// TestSecretsAreNotKeptInPlain: a copy delivered by the service's link and
// a delete whose third party is emailed an acknowledgement link. Neither
// link's token, nor the archive password, appears anywhere in the
// database; the links and the password still work.
func TestSecretsAreNotKeptInPlain(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, false, "")
	e.appendConfig(t, demo.ExtrasYAML(e.bankURL)+"smtp:\n  attachment_limit_bytes: 1024\n")
	e.start()

	code, body := e.call("POST", "/api/v1/requests", testToken, copyTicket("demo-user-3"))
	if code != http.StatusCreated {
		t.Fatalf("copy = %d %v", code, body)
	}
	copyID := body["id"].(string)
	ticket := copyTicket("demo-user-4")
	ticket["type"] = "delete"
	code, body = e.call("POST", "/api/v1/requests", testToken, ticket)
	if code != http.StatusCreated {
		t.Fatalf("delete = %d %v", code, body)
	}
	deleteID := body["id"].(string)
	e.waitStatus(copyID, "completed", 60*time.Second)
	e.waitStatus(deleteID, "completed", 60*time.Second)

	link := e.linkOf(t, e.smtp.WaitForMessage(t, copyID+".completion@datarights", 30*time.Second))
	_, downloadToken, _ := strings.Cut(link, "/downloads/")
	notice := e.smtp.WaitForMessage(t, deleteID+".notice.credit_bureau@datarights", 30*time.Second)
	ack := ackLinkRE.FindStringSubmatch(notice.Text)
	if downloadToken == "" || ack == nil {
		t.Fatalf("links %q %v", link, ack)
	}
	ackToken, err := url.PathUnescape(ack[1])
	if err != nil {
		t.Fatal(err)
	}
	dump := dumpDatabase(t, e.db)

	// The password exists until it is shown: it was in the database (if
	// anywhere) when the dump was taken.
	code, pw := e.call("POST", "/api/v1/requests/"+copyID+"/export/password", testToken, nil)
	if code != http.StatusOK {
		t.Fatalf("password = %d %v", code, pw)
	}
	password := pw["password"].(string)
	for name, secret := range map[string]string{"download token": downloadToken, "ack token": ackToken, "archive password": password} {
		if len(secret) < 20 {
			t.Fatalf("%s %q is too short to search for", name, secret)
		}
		if strings.Contains(dump, secret) {
			t.Errorf("the database holds the %s in plain", name)
		}
	}
	// The staff view gives the same link the email did.
	_, export := e.call("GET", "/api/v1/requests/"+copyID+"/export", testToken, nil)
	if got := export["download_url"].(string); !strings.HasSuffix(got, "/downloads/"+downloadToken) {
		t.Errorf("staff see link %q, the email has %q", got, link)
	}
	if code, data := get(t, link); code != http.StatusOK {
		t.Errorf("download = %d %s", code, data)
	} else {
		open7z(t, data, password)
	}
	last := "A"
	if strings.HasSuffix(downloadToken, last) {
		last = "B" // a forgery must differ from the token
	}
	if code, _ := get(t, e.base+"/downloads/"+downloadToken[:len(downloadToken)-1]+last); code != http.StatusNotFound {
		t.Errorf("a forged download token = %d, want 404", code)
	}
	if code, page := get(t, e.base+"/recipients/ack/"+ack[1]); code != http.StatusOK || !strings.Contains(string(page), deleteID) {
		t.Errorf("ack page = %d", code)
	}
}

// TestPresignedLinksAreSealed: a presigned S3 URL is a bearer credential
// too; the database holds it only sealed.
func TestPresignedLinksAreSealed(t *testing.T) {
	t.Parallel()
	e, _, _ := withS3Exports(t, "presigned", time.Hour)
	code, body := e.call("POST", "/api/v1/requests", testToken, copyTicket("demo-user-5"))
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	e.waitStatus(id, "completed", 60*time.Second)
	link := e.linkOf(t, e.smtp.WaitForMessage(t, id+".completion@datarights", 30*time.Second))
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	signature := u.Query().Get("X-Amz-Signature")
	if signature == "" {
		t.Fatalf("not a presigned link: %s", link)
	}
	if strings.Contains(dumpDatabase(t, e.db), signature) {
		t.Error("the database holds the presigned URL in plain")
	}
	if code, _ := get(t, link); code != http.StatusOK {
		t.Errorf("presigned download = %d", code)
	}
	_, export := e.call("GET", "/api/v1/requests/"+id+"/export", testToken, nil)
	if export["download_url"] != link {
		t.Errorf("staff see %v, the email has %s", export["download_url"], link)
	}
}
