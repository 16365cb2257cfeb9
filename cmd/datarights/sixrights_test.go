package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/datarights/datarights/demo"
	"github.com/datarights/datarights/exporters/smtptest"
	"github.com/datarights/datarights/storage/mysqltest"
)

// The six rights, each end to end across the four kinds of store (Postgres,
// MariaDB, Redis, versitygw), each checked row by row: every row, key and
// object of every store is read before and after, the subject's must show
// the right's effect and everyone else's must be exactly as they were.

// snapshot is every row of every store, as text, by dataset and by the
// user it belongs to (anonymized rows under their new, random user).
type snapshot map[string]map[string][]string

func (a *allStores) snapshot(t *testing.T, e *e2e) snapshot {
	t.Helper()
	ctx := context.Background()
	out := snapshot{}
	for table, users := range e.bankRows(t) {
		out["bank."+table] = users
	}
	db := mysqltest.Open(t, a.mysqlDSN)
	for _, table := range []string{"members", "points", "marketing_prefs"} {
		out["loyalty."+table] = mysqlRows(t, db, table)
	}
	keys, err := a.redis.Keys(ctx, a.namespace+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out["sessions"] = map[string][]string{}
	for _, key := range keys {
		var value string
		switch typ := a.redis.Type(ctx, key).Val(); typ {
		case "hash":
			fields := a.redis.HGetAll(ctx, key).Val()
			names := make([]string, 0, len(fields))
			for f := range fields {
				names = append(names, f+"="+fields[f])
			}
			sort.Strings(names)
			value = strings.Join(names, ",")
		case "string":
			value = a.redis.Get(ctx, key).Val()
		default:
			t.Fatalf("key %s is a %s", key, typ)
		}
		user := key[strings.LastIndex(key, ":")+1:]
		out["sessions"][user] = append(out["sessions"][user], key+"|"+value)
	}
	list, err := a.s3.Client(t).ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(a.bucket)})
	if err != nil {
		t.Fatal(err)
	}
	out["documents"] = map[string][]string{}
	for _, obj := range list.Contents {
		user := strings.Split(*obj.Key, "/")[1]
		out["documents"][user] = append(out["documents"][user], fmt.Sprintf("%s|%s|%d", *obj.Key, aws.ToString(obj.ETag), aws.ToInt64(obj.Size)))
	}
	for _, users := range out {
		for _, rows := range users {
			sort.Strings(rows)
		}
	}
	return out
}

// mysqlRows returns every row of table as text, by user_id.
func mysqlRows(t *testing.T, db *sql.DB, table string) map[string][]string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), "SELECT * FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	userCol := slices.Index(cols, "user_id")
	out := map[string][]string{}
	for rows.Next() {
		values := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range values {
			ptrs[i] = &values[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		text := make([]string, len(values))
		for i, v := range values {
			text[i] = string(v)
		}
		user := text[userCol]
		out[user] = append(out[user], strings.Join(text, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkOnly compares before and after: every dataset of every user other
// than subject must be unchanged (rows under new anonymous users are
// allowed, and checked by the caller); the subject's datasets listed in
// changed are the caller's to check, all others must be unchanged too.
func checkOnly(t *testing.T, before, after snapshot, subject string, changed ...string) {
	t.Helper()
	for dataset, users := range before {
		for user, rows := range users {
			if user == subject && slices.Contains(changed, dataset) {
				continue
			}
			if !slices.Equal(after[dataset][user], rows) {
				t.Errorf("%s rows of %s changed:\n before %q\n after  %q", dataset, user, rows, after[dataset][user])
			}
		}
		for user, rows := range after[dataset] {
			if _, ok := users[user]; !ok && !strings.HasPrefix(user, "anon-") {
				t.Errorf("%s has new rows of %s: %q", dataset, user, rows)
			}
		}
	}
}

// anonRows returns the rows of a dataset that belong to no one.
func anonRows(s snapshot, dataset string) []string {
	var out []string
	for user, rows := range s[dataset] {
		if strings.HasPrefix(user, "anon-") {
			out = append(out, rows...)
		}
	}
	sort.Strings(out)
	return out
}

// archive opens the copy a completion email carries as a requester
// would: the password from customer service (the staff API, which shows it
// once), the archive with the real 7-Zip. It returns the files by name.
func (e *e2e) archive(t *testing.T, msg smtptest.Message) map[string][]byte {
	t.Helper()
	if len(msg.Attachments) != 1 {
		t.Fatalf("the email has %d attachments, want 1", len(msg.Attachments))
	}
	id, _, _ := strings.Cut(msg.MessageID, ".")
	if key, ok := e.accessKeys[id]; ok {
		// A self-service copy's password is its requester's alone.
		code, st := e.call("POST", "/api/v1/self-service/requests/"+id+"/password", key, nil)
		export, _ := st["export"].(map[string]any)
		if code != http.StatusOK || export["password"] == nil {
			t.Fatalf("the archive password = %d %v", code, st)
		}
		return open7z(t, msg.Attachments[0].Data, export["password"].(string))
	}
	code, pw := e.call("POST", "/api/v1/requests/"+id+"/export/password", testToken, nil)
	if code != http.StatusOK || pw["password"] == nil {
		t.Fatalf("the archive password = %d %v", code, pw)
	}
	return open7z(t, msg.Attachments[0].Data, pw["password"].(string))
}

// open7z extracts an encrypted zip with the 7z binary and returns its
// files by name.
func open7z(t *testing.T, data []byte, password string) map[string][]byte {
	t.Helper()
	sevenZip, err := exec.LookPath("7z")
	if err != nil {
		t.Fatal("7z is not installed (Debian: apt-get install p7zip-full); .ci/run installs it")
	}
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "copy.zip")
	if err := os.WriteFile(zipPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if b, err := exec.Command(sevenZip, "x", "-y", "-p"+password, "-o"+out, zipPath).CombinedOutput(); err != nil {
		t.Fatalf("7z x: %v\n%s", err, b)
	}
	files := map[string][]byte{}
	err = filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		files[filepath.ToSlash(rel)], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// submitAndComplete files a ticket and waits for it to complete; it
// returns the request and its completion email.
func (e *e2e) submitAndComplete(t *testing.T, ticket map[string]any) (map[string]any, string) {
	t.Helper()
	code, body := e.call("POST", "/api/v1/requests", testToken, ticket)
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	if corrections, _ := ticket["corrections"].(map[string]string); corrections["email"] != "" {
		e.confirmNewEmail(t, id)
	}
	done := e.waitStatus(id, "completed", 90*time.Second)
	for _, task := range done["tasks"].([]any) {
		if task := task.(map[string]any); task["status"] != "succeeded" {
			t.Errorf("task %v", task)
		}
	}
	return done, id
}

func byEmail(ticket map[string]any, n int) map[string]any {
	ticket["subject"] = map[string]any{"identities": map[string]string{"email": demo.Email(n)}}
	return ticket
}

func TestSixRightsAccess(t *testing.T) {
	t.Parallel()
	e, a := setupAllStores(t)
	before := a.snapshot(t, e)
	ticket := byEmail(copyTicket("demo-user-3"), 3)
	ticket["type"] = "access"
	_, id := e.submitAndComplete(t, ticket)
	checkOnly(t, before, a.snapshot(t, e), "") // access changes nothing anywhere

	msg := e.smtp.WaitForMessage(t, id+".completion@datarights", 30*time.Second)
	files := e.archive(t, msg)
	report := string(files["summary.html"])
	// A person can read what is held, by store and category.
	for _, want := range []string{"demo_bank", "loyalty", "sessions", "documents", "profile", "transactions", "loyalty", "recommendations", "consents"} {
		if !strings.Contains(report, want) {
			t.Errorf("summary.html does not mention %s", want)
		}
	}
	// It explains each category and where the data comes from, in both
	// languages, the request's (en) first.
	for _, want := range []string{"What each category holds", "各类信息的含义", "Your transactions: when, how much",
		"Where the data comes from", "The core banking system", "核心银行系统"} {
		if !strings.Contains(report, want) {
			t.Errorf("summary.html lacks %q", want)
		}
	}
	if strings.Index(report, "What each category holds") > strings.Index(report, "各类信息的含义") {
		t.Error("the request's language does not come first")
	}
	user := "demo-user-3"
	for _, other := range demo.Subjects() {
		// The report holds no one else's identifiers (demo-user-3 is not a
		// prefix of any other id, unlike demo-user-1).
		if other != user && strings.Contains(report, other+"\"") || strings.Contains(report, ">"+other+"<") && other != user {
			t.Errorf("summary.html mentions %s", other)
		}
	}
	checkArchiveRows(t, files, before, user)
}

func TestSixRightsCopy(t *testing.T) {
	t.Parallel()
	e, a := setupAllStores(t)
	before := a.snapshot(t, e)
	user := "demo-user-10"
	done, id := e.submitAndComplete(t, byEmail(copyTicket(user), 10))
	if !hasAction(done, "identity.resolved") {
		t.Errorf("no identity resolution: %v", auditActions(done))
	}
	checkOnly(t, before, a.snapshot(t, e), "")
	msg := e.smtp.WaitForMessage(t, id+".completion@datarights", 30*time.Second)
	checkArchiveRows(t, e.archive(t, msg), before, user)
}

// checkArchiveRows checks an export holds, for every dataset of every
// store, exactly as many rows as the store holds of user, and each of them
// user's.
func checkArchiveRows(t *testing.T, files map[string][]byte, stores snapshot, user string) {
	t.Helper()
	want := map[string]string{ // archive file → snapshot dataset
		"data/demo_bank/users.json": "bank.users", "data/demo_bank/cards.json": "bank.cards",
		"data/demo_bank/transactions.json": "bank.transactions", "data/demo_bank/consents.json": "bank.consents",
		"data/loyalty/members.json": "loyalty.members", "data/loyalty/points.json": "loyalty.points",
		"data/loyalty/marketing_prefs.json": "loyalty.marketing_prefs", "data/documents/documents.json": "documents",
	}
	for file, dataset := range want {
		var rows []map[string]any
		if err := json.Unmarshal(files[file], &rows); err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if len(rows) != len(stores[dataset][user]) {
			t.Errorf("%s: %d rows, the store holds %d of %s", file, len(rows), len(stores[dataset][user]), user)
		}
		for _, row := range rows {
			owner, _ := row["user_id"].(string)
			if key, ok := row["key"].(string); ok {
				owner = strings.Split(key, "/")[1]
			}
			if owner != user {
				t.Errorf("%s: a row of %q", file, owner)
			}
		}
	}
	sessions := 0
	for name, data := range files {
		if !strings.HasPrefix(name, "data/sessions/") || !strings.HasSuffix(name, ".json") {
			continue
		}
		var rows []map[string]any
		if err := json.Unmarshal(data, &rows); err != nil {
			t.Fatal(err)
		}
		keys := map[string]bool{}
		for _, row := range rows {
			key := row["key"].(string)
			keys[key] = true
			if !strings.HasSuffix(key, ":"+user) {
				t.Errorf("%s: key %s", name, key)
			}
		}
		sessions += len(keys)
	}
	if sessions != len(stores["sessions"][user]) {
		t.Errorf("the archive has %d cache keys, the cache holds %d of %s", sessions, len(stores["sessions"][user]), user)
	}
}

func TestSixRightsCorrect(t *testing.T) {
	t.Parallel()
	e, a := setupAllStores(t)
	before := a.snapshot(t, e)
	user, newEmail := "demo-user-13", "zhou.13@example.org"
	done, _ := e.submitAndComplete(t, byEmail(correctTicket(user, map[string]string{"email": newEmail, "city": "苏州"}), 13))
	var stores []string
	for _, task := range done["tasks"].([]any) {
		stores = append(stores, task.(map[string]any)["store"].(string))
	}
	if !slices.Equal(stores, []string{"demo_bank", "loyalty"}) {
		t.Errorf("correct tasks in %v, want the stores holding the fields", stores)
	}
	after := a.snapshot(t, e)
	checkOnly(t, before, after, user, "bank.users", "loyalty.members")
	if rows := after["bank.users"][user]; len(rows) != 1 || !strings.Contains(rows[0], ","+newEmail+",") || !strings.Contains(rows[0], ",苏州,") {
		t.Errorf("bank user after the correction: %v", rows)
	}
	if rows := after["loyalty.members"][user]; len(rows) != 1 || rows[0] != user+"|会员"+user+"|"+newEmail {
		t.Errorf("loyalty member after the correction: %v", rows)
	}
}

func TestSixRightsDelete(t *testing.T) {
	t.Parallel()
	e, a := setupAllStores(t)
	before := a.snapshot(t, e)
	user := "demo-user-2"
	ticket := byEmail(copyTicket(user), 2)
	ticket["type"] = "delete"
	e.submitAndComplete(t, ticket)
	after := a.snapshot(t, e)
	erased := []string{"bank.users", "bank.cards", "bank.transactions", "bank.consents", "loyalty.members",
		"loyalty.points", "loyalty.marketing_prefs", "sessions", "documents"}
	checkOnly(t, before, after, user, erased...)
	checkErased(t, before, after, user, erased)
}

// checkErased checks that user has nothing left in datasets, and that the
// loyalty points were anonymized, not deleted: the same rows, without the
// user.
func checkErased(t *testing.T, before, after snapshot, user string, datasets []string) {
	t.Helper()
	for _, dataset := range datasets {
		if rows := after[dataset][user]; len(rows) != 0 {
			t.Errorf("%s still holds %s: %q", dataset, user, rows)
		}
	}
	var want []string
	for _, row := range before["loyalty.points"][user] {
		want = append(want, strings.Replace(row, "|"+user+"|", "|", 1))
	}
	var got []string
	for _, row := range anonRows(after, "loyalty.points") {
		parts := strings.Split(row, "|")
		got = append(got, strings.Join(append(parts[:1:1], parts[2:]...), "|"))
	}
	sort.Strings(want)
	sort.Strings(got)
	if !slices.Equal(got, want) || len(want) == 0 {
		t.Errorf("anonymized points = %q, want %q with the user removed", got, want)
	}
}

func TestSixRightsWithdrawConsent(t *testing.T) {
	t.Parallel()
	e, a := setupAllStores(t)
	before := a.snapshot(t, e)
	user := "demo-user-1"
	ticket := byEmail(copyTicket(user), 1)
	ticket["type"], ticket["purposes"] = "withdraw_consent", []string{"personalised_ads"}
	done, _ := e.submitAndComplete(t, ticket)
	if n := len(done["tasks"].([]any)); n != 3 {
		t.Errorf("%d tasks, want the bank, loyalty and the cache", n)
	}
	after := a.snapshot(t, e)
	checkOnly(t, before, after, user, "bank.consents", "loyalty.marketing_prefs", "sessions")
	for i, row := range before["bank.consents"][user] {
		want := row
		if strings.Contains(row, ",personalised_ads,") {
			want = strings.Replace(row, ",t,", ",f,", 1)
			want = want[:strings.LastIndex(want, ",")] // updated_at is stamped
			if got := after["bank.consents"][user][i]; !strings.HasPrefix(got, want) || got == row {
				t.Errorf("bank consent %q, want withdrawn", got)
			}
			continue
		}
		if after["bank.consents"][user][i] != want {
			t.Errorf("bank consent %q changed to %q", row, after["bank.consents"][user][i])
		}
	}
	if got := after["loyalty.marketing_prefs"][user]; !slices.Equal(got, []string{user + "|marketing_email|1", user + "|personalised_ads|0"}) {
		t.Errorf("loyalty preferences = %q", got)
	}
	if got := after["sessions"][user]; len(got) != 1 || !strings.Contains(got[0], ":session:") {
		t.Errorf("cache keys = %q, want the session only (recommendations deleted)", got)
	}
}

func TestSixRightsCancelAccount(t *testing.T) {
	t.Parallel()
	e, a := setupAllStores(t)
	before := a.snapshot(t, e)
	user := "demo-user-13"
	done, id := e.submitAndComplete(t, byEmail(cancelTicket(user), 13))
	if n := len(done["tasks"].([]any)); n != 4 {
		t.Errorf("%d tasks, want every store", n)
	}
	after := a.snapshot(t, e)
	erased := []string{"bank.users", "bank.cards", "bank.transactions", "bank.consents", "loyalty.members",
		"loyalty.points", "loyalty.marketing_prefs", "sessions", "documents"}
	checkOnly(t, before, after, user, erased...)
	checkErased(t, before, after, user, erased)
	var withdrawn int
	if err := e.db.QueryRow(context.Background(), `SELECT count(*) FROM consent_events WHERE request_id = $1 AND NOT granted`, id).Scan(&withdrawn); err != nil || withdrawn != 4 {
		t.Errorf("%d consents withdrawn in the ledger (%v), want 4", withdrawn, err)
	}
}
