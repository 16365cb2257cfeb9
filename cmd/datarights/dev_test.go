package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/exporters/smtptest"
	"github.com/datarights/datarights/storage/storagetest"
)

// TestPlanDevDatabases: which databases and runtime role dev uses for
// each DATABASE_URL and DATARIGHTS_DEMO_DSN.
func TestPlanDevDatabases(t *testing.T) {
	t.Parallel()
	const server = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	long := strings.Repeat("a", 60)
	for _, c := range []struct {
		name, databaseURL, demoDSN   string
		service, bank, role, errSays string
		wantURL                      string
	}{
		{name: "unset: the defaults", service: "datarights_dev", bank: "datarights_demo_bank", role: "datarights_dev_runtime"},
		{name: "a server without a database: the defaults", databaseURL: "postgres://u:p@db.example:6543?sslmode=disable",
			service: "datarights_dev", bank: "datarights_demo_bank", role: "datarights_dev_runtime"},
		{name: "a database as given", databaseURL: "postgres://u:p@db.example:6543/mine?sslmode=disable",
			service: "mine", bank: "mine_demo_bank", role: "mine_runtime", wantURL: "postgres://u:p@db.example:6543/mine?sslmode=disable"},
		{name: "the bank from DATARIGHTS_DEMO_DSN", databaseURL: "postgres://u@h/mine", demoDSN: "postgresql://b@other/bank1",
			service: "mine", bank: "bank1", role: "mine_runtime"},
		{name: "long names stay apart", databaseURL: "postgres://u@h/" + long + "x",
			service: long + "x", bank: derivedName(long+"x", "_demo_bank"), role: derivedName(long+"x", "_runtime")},
		{name: "a key=value DSN", databaseURL: "host=h dbname=mine", errSays: "must be a postgres:// URL"},
		{name: "a demo DSN without a database", databaseURL: "postgres://u@h/mine", demoDSN: "postgres://u@h", errSays: "names no database"},
		{name: "the bank is the service", databaseURL: "postgres://u@h/mine", demoDSN: "postgres://u@h/mine", errSays: "cannot share"},
	} {
		p, err := planDevDatabases(c.databaseURL, server, c.demoDSN)
		if c.errSays != "" {
			if err == nil || !strings.Contains(err.Error(), c.errSays) {
				t.Errorf("%s: %v, want an error saying %q", c.name, err, c.errSays)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if p.service.name != c.service || p.bank.name != c.bank || p.role != c.role {
			t.Errorf("%s: service %s, bank %s, role %s; want %s, %s, %s", c.name, p.service.name, p.bank.name, p.role, c.service, c.bank, c.role)
		}
		if c.wantURL != "" && (p.service.url != c.wantURL || p.bank.url != strings.Replace(c.wantURL, "/mine?", "/mine_demo_bank?", 1)) {
			t.Errorf("%s: URLs %s and %s, want %s and its bank beside it", c.name, p.service.url, p.bank.url, c.wantURL)
		}
	}
	a, b := derivedName(long+"x", "_runtime"), derivedName(long+"y", "_runtime")
	if a == b || len(a) > maxIdentifier || len(b) > maxIdentifier {
		t.Errorf("long names: %q and %q (at most %d bytes, and apart)", a, b, maxIdentifier)
	}
}

// TestWriteDevConfigKeepsEdits: dev writes its configuration when it is
// absent, unchanged since it wrote it, or written by an older dev; an
// edited one is kept, except with -fresh.
func TestWriteDevConfigKeepsEdits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "datarights.yaml")
	read := func() string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	write := func(content string, force, wantKept bool) {
		t.Helper()
		kept, err := writeDevConfig(path, content, force)
		if err != nil {
			t.Fatal(err)
		}
		if kept != wantKept {
			t.Fatalf("writeDevConfig(%q, force %v): kept %v, want %v", content, force, kept, wantKept)
		}
	}
	write(devConfigHeader+"one: 1\n", false, false) // absent
	if got := read(); !strings.HasPrefix(got, devConfigHeader+"one: 1\n"+devConfigTrailer) {
		t.Fatalf("written:\n%s", got)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, %v; want 0600: it holds database passwords", fi.Mode(), err)
	}
	write(devConfigHeader+"two: 2\n", false, false) // unchanged since written
	if got := read(); !strings.Contains(got, "two: 2") || strings.Contains(got, "one: 1") {
		t.Fatalf("rewritten:\n%s", got)
	}
	edited := strings.Replace(read(), "two: 2", "two: 22", 1)
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	write(devConfigHeader+"three: 3\n", false, true)
	if read() != edited {
		t.Fatalf("the edit was lost:\n%s", read())
	}
	// A trailer deleted is an edit too.
	mine := devConfigHeader + "mine: 1\n"
	if err := os.WriteFile(path, []byte(mine), 0o600); err != nil {
		t.Fatal(err)
	}
	write(devConfigHeader+"three: 3\n", false, true)
	// So is a file of one's own.
	if err := os.WriteFile(path, []byte("database_url: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	write(devConfigHeader+"three: 3\n", false, true)
	// -fresh writes anyway.
	write(devConfigHeader+"three: 3\n", true, false)
	if !strings.Contains(read(), "three: 3") {
		t.Fatalf("-fresh did not write:\n%s", read())
	}
	// An older dev rewrote its file at every start: no edit to keep.
	legacy := "migrate_database_url: x\n\n" + devConfigLegacyHeader + "\ndatabase_url: y\n"
	if err := os.WriteFile(path, []byte(legacy), 0o600); err != nil {
		t.Fatal(err)
	}
	write(devConfigHeader+"four: 4\n", false, false)
	if !strings.Contains(read(), "four: 4") {
		t.Fatalf("an older dev's file was kept:\n%s", read())
	}
}

// devDatabaseURL is a URL naming a database that does not exist yet on the
// tests' server, for dev to create; the test drops it, its derived demo
// bank and runtime role when it ends.
func devDatabaseURL(t *testing.T, prefix string) string {
	t.Helper()
	admin, err := storagetest.AdminURL()
	if err != nil {
		t.Fatal(err)
	}
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	name := "drtest_" + prefix + "_" + hex.EncodeToString(suffix[:])
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("connect to drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		for _, db := range []string{name, derivedName(name, "_demo_bank")} {
			if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)"); err != nil {
				t.Errorf("drop database %s: %v", db, err)
			}
		}
		if _, err := conn.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{derivedName(name, "_runtime")}.Sanitize()); err != nil {
			t.Errorf("drop role: %v", err)
		}
	})
	return u.String()
}

// TestDevFreshRefusesAForeignDatabase: a newcomer pointing DATABASE_URL at
// a database dev did not create keeps it: -fresh drops nothing, and says
// why.
func TestDevFreshRefusesAForeignDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := storagetest.NewDatabase(t, "devforeign")
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE precious (x int); INSERT INTO precious VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string {
		if k == "DATABASE_URL" {
			return dbURL
		}
		return ""
	}
	var stderr bytes.Buffer
	err = run(ctx, []string{"dev", "-fresh", "-dir", t.TempDir(), "-addr", "127.0.0.1:0"}, getenv, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "was not created by datarights dev") || !strings.Contains(err.Error(), "Nothing was dropped") {
		t.Fatalf("dev -fresh on a foreign database: %v\nstderr: %s", err, stderr.String())
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM precious").Scan(&n); err != nil || n != 1 {
		t.Fatalf("the foreign database lost its table: %d, %v", n, err)
	}
	bank := derivedName(databaseName(dbURL), "_demo_bank")
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", bank).Scan(&exists); err != nil || exists {
		t.Errorf("database %s exists (%v): a refused -fresh created it", bank, err)
	}
}

// devInstance is one `datarights dev` process.
type devInstance struct {
	t      *testing.T
	dir    string
	env    []string
	cmd    *exec.Cmd
	base   string
	stderr *lockedBuffer
	exited chan error
	done   bool // stopped
}

// devEnv is the test's environment without anything of datarights' own
// (the CI's or the developer's), plus DATABASE_URL.
func devEnv(databaseURL string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "DATARIGHTS_") || k == "DATABASE_URL" || k == "DEMO_TRANSFER_SECRET" || k == cliChildEnv {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "DATABASE_URL="+databaseURL)
}

// startDev runs the built binary as `datarights dev -dir dir -addr
// 127.0.0.1:0 args…` and waits for its banner, which says the address it
// got.
func startDev(t *testing.T, env []string, dir string, args ...string) *devInstance {
	t.Helper()
	cmd := exec.Command(datarightsBinary(t), append([]string{"dev", "-dir", dir, "-addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = env
	logFile, err := os.Create(filepath.Join(t.TempDir(), "dev.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() })
	cmd.Stdout = logFile
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &devInstance{t: t, dir: dir, env: env, cmd: cmd, stderr: &lockedBuffer{}, exited: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			line := sc.Text()
			d.stderr.Write([]byte(line + "\n")) //nolint:errcheck // a buffer
			if rest, ok := strings.CutPrefix(line, "datarights dev is running on "); ok {
				addr <- rest
			}
		}
		d.exited <- cmd.Wait()
	}()
	t.Cleanup(func() { d.stop() })
	// Migrations and the seed on a loaded 2-core machine.
	select {
	case d.base = <-addr:
	case err := <-d.exited:
		d.exited <- err
		t.Fatalf("datarights dev exited (%v) before it was ready:\n%s", err, d.stderr.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("datarights dev not ready after 2 minutes:\n%s", d.stderr.String())
	}
	if !strings.HasPrefix(d.base, "http://127.0.0.1:") || strings.HasSuffix(d.base, ":0") {
		t.Fatalf("dev says it runs on %q", d.base)
	}
	return d
}

// stop interrupts the process (Ctrl-C) and waits until it has exited.
func (d *devInstance) stop() {
	if d.done {
		return
	}
	d.done = true
	_ = d.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-d.exited:
		d.exited <- err
		if err != nil {
			d.t.Errorf("datarights dev exited with %v after Ctrl-C:\n%s", err, d.stderr.String())
		}
	case <-time.After(90 * time.Second):
		_ = d.cmd.Process.Kill()
		d.t.Errorf("datarights dev still running 90 s after Ctrl-C")
	}
}

func (d *devInstance) call(method, path, token string, body any, headers ...string) (int, map[string]any) {
	d.t.Helper()
	var r io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, d.base+path, r)
	if err != nil {
		d.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			d.t.Fatalf("%s %s: answer is not JSON: %s", method, path, raw)
		}
	}
	return resp.StatusCode, out
}

// waitStatus polls the request until it reaches status, failing at once
// if it stops somewhere the README's example never goes.
func (d *devInstance) waitStatus(id, status string) map[string]any {
	d.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		code, body := d.call("GET", "/api/v1/requests/"+id, devStaffToken, nil)
		if code != http.StatusOK {
			d.t.Fatalf("GET request %s: %d %v", id, code, body)
		}
		switch body["status"] {
		case status:
			return body
		case "awaiting_approval", "failed", "refused", "expired":
			d.t.Fatalf("request %s is %v, waiting for %s; audit: %v", id, body["status"], status, body["audit"])
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("request %s is %v after 90 s, want %s; audit: %v", id, body["status"], status, body["audit"])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// outboxMessage waits for the email with message id in the instance's
// outbox (written whole, by a rename).
func (d *devInstance) outboxMessage(id string) smtptest.Message {
	d.t.Helper()
	path := filepath.Join(d.dir, "data", "outbox", id+".eml")
	var raw []byte
	waitFor(d.t, 60*time.Second, path, func() bool {
		var err error
		raw, err = os.ReadFile(path)
		return err == nil
	})
	msg, err := smtptest.ParseMessage(raw)
	if err != nil {
		d.t.Fatalf("%s: %v", path, err)
	}
	return msg
}

// readmeCopy is the README's "With curl" copy example, as a newcomer
// pastes it: the staff ticket, the code from the outbox read back, the
// request followed to completed and its email with the zip.
func (d *devInstance) readmeCopy() string {
	d.t.Helper()
	code, body := d.call("POST", "/api/v1/requests", devStaffToken, map[string]any{
		"product":        "webank",
		"type":           "copy",
		"subject":        map[string]any{"identities": map[string]string{"user_id": "demo-user-3"}},
		"delivery_email": "demo-user-3@example.com",
		"verification":   map[string]string{"method": "face_check", "reference": "FC-1001"},
	}, "Idempotency-Key", "ticket-1001")
	if code != http.StatusCreated && code != http.StatusAccepted {
		d.t.Fatalf("file the copy: %d %v", code, body)
	}
	id := body["id"].(string)
	d.waitStatus(id, "awaiting_contact")
	msg := d.outboxMessage(id + ".contact.delivery_email.1@datarights")
	m := codeRE.FindStringSubmatch(msg.Text)
	if m == nil {
		d.t.Fatalf("no code in the contact email:\n%s", msg.Text)
	}
	if code, body := d.call("POST", "/api/v1/requests/"+id+"/contact/confirm", "dev-agent-token",
		map[string]string{"field": "delivery_email", "code": m[1]}); code != http.StatusOK {
		d.t.Fatalf("confirm: %d %v", code, body)
	}
	d.waitStatus(id, "completed")
	done := d.outboxMessage(id + ".completion@datarights")
	if to := done.Header.Get("To"); !strings.Contains(to, "demo-user-3@example.com") || len(done.Attachments) != 1 ||
		!strings.HasSuffix(done.Attachments[0].Filename, ".zip") {
		d.t.Errorf("completion email to %q with %d attachments, want demo-user-3's zip", to, len(done.Attachments))
	}
	return id
}

func outboxHas(t *testing.T, dir, id string) bool {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "data", "outbox"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), id+".") {
			return true
		}
	}
	return false
}

// TestDevNewcomer is issue 14's newcomer: two `datarights dev` processes
// with their own DATABASE_URL, -dir and a free port run side by side
// without seeing each other's requests or mail; `dev -fresh` twice in a
// row runs the README's copy example to completion both times (no repeat
// request waiting for approval) without touching the other instance; and
// an edited configuration survives a restart.
func TestDevNewcomer(t *testing.T) {
	t.Parallel()
	urlA, urlB := devDatabaseURL(t, "deva"), devDatabaseURL(t, "devb")
	dirA, dirB := t.TempDir(), t.TempDir()
	nameA := databaseName(urlA)

	b := startDev(t, devEnv(urlB), dirB)
	a := startDev(t, devEnv(urlA), dirA, "-fresh")
	if want := "--fresh: created databases " + nameA + " and " + nameA + "_demo_bank"; !strings.Contains(a.stderr.String(), want) {
		t.Errorf("first -fresh does not say %q:\n%s", want, a.stderr.String())
	}
	if a.base == b.base {
		t.Fatalf("both on %s", a.base)
	}

	// A's copy is A's alone.
	first := a.readmeCopy()
	if code, _ := b.call("GET", "/api/v1/requests/"+first, devStaffToken, nil); code != http.StatusNotFound {
		t.Errorf("B sees A's request %s: %d", first, code)
	}
	if outboxHas(t, dirB, first) {
		t.Errorf("A's mail for %s is in B's outbox", first)
	}
	// B's request is B's alone, and lives through A's reset.
	code, body := b.call("POST", "/api/v1/requests", devStaffToken, copyTicket("demo-user-4"))
	if code != http.StatusCreated && code != http.StatusAccepted {
		t.Fatalf("file on B: %d %v", code, body)
	}
	other := body["id"].(string)
	if code, _ := a.call("GET", "/api/v1/requests/"+other, devStaffToken, nil); code != http.StatusNotFound {
		t.Errorf("A sees B's request %s: %d", other, code)
	}
	b.waitStatus(other, "awaiting_contact")
	b.outboxMessage(other + ".contact.delivery_email.1@datarights")
	if outboxHas(t, dirA, other) {
		t.Errorf("B's mail for %s is in A's outbox", other)
	}

	// -fresh again: the same example, the same person, the same
	// idempotency key completes again instead of stopping as a repeat.
	a.stop()
	a = startDev(t, devEnv(urlA), dirA, "-fresh")
	if want := "--fresh: dropped and recreated databases " + nameA + " and " + nameA + "_demo_bank"; !strings.Contains(a.stderr.String(), want) {
		t.Errorf("second -fresh does not say %q:\n%s", want, a.stderr.String())
	}
	second := a.readmeCopy()
	if second == first {
		t.Errorf("the second run answered with the first request %s", first)
	}
	if code, _ := a.call("GET", "/api/v1/requests/"+first, devStaffToken, nil); code != http.StatusNotFound {
		t.Errorf("the reset kept the first request: %d", code)
	}
	if code, body := b.call("GET", "/api/v1/requests/"+other, devStaffToken, nil); code != http.StatusOK || body["status"] != "awaiting_contact" {
		t.Errorf("B's request after A's reset: %d %v", code, body["status"])
	}

	// B's configuration, edited, is kept across a restart, and still
	// reaches B's databases.
	b.stop()
	path := filepath.Join(dirB, "datarights.yaml")
	yaml, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(yaml), "reminders: [0.5, 0.8]", "reminders: [0.5, 0.9]", 1)
	if edited == string(yaml) {
		t.Fatalf("nothing to edit in %s", path)
	}
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	b = startDev(t, devEnv(urlB), dirB)
	if !strings.Contains(b.stderr.String(), "keeping "+path+": it was edited") {
		t.Errorf("no word of the edited configuration kept:\n%s", b.stderr.String())
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != edited {
		t.Errorf("the edit was lost (%v)", err)
	}
	if code, body := b.call("GET", "/api/v1/requests/"+other, devStaffToken, nil); code != http.StatusOK || body["status"] != "awaiting_contact" {
		t.Errorf("B's request after its restart: %d %v", code, body["status"])
	}
}

// TestDevFreshLeavesADatabaseInUse: -fresh does not take a database from
// under another instance (here, the demo bank shared through
// DATARIGHTS_DEMO_DSN), and refuses before dropping either database.
func TestDevFreshLeavesADatabaseInUse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbs, err := planDevDatabases(devDatabaseURL(t, "devinuse"), "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := freshDevDatabases(ctx, dbs); err != nil {
		t.Fatal(err)
	}
	service, err := pgx.Connect(ctx, dbs.service.url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := service.Exec(ctx, "CREATE TABLE kept (x int)"); err != nil {
		t.Fatal(err)
	}
	service.Close(ctx)
	other, err := pgx.Connect(ctx, dbs.bank.url) // the other instance
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	_, err = freshDevDatabases(ctx, dbs)
	if err == nil || !strings.Contains(err.Error(), "database "+dbs.bank.name+" is in use") || !strings.Contains(err.Error(), "Nothing was dropped") {
		t.Fatalf("-fresh with the bank in use: %v", err)
	}
	if err := other.Ping(ctx); err != nil {
		t.Errorf("the other instance lost its connection: %v", err)
	}
	service, err = pgx.Connect(ctx, dbs.service.url)
	if err != nil {
		t.Fatal(err)
	}
	defer service.Close(ctx)
	if _, err := service.Exec(ctx, "SELECT * FROM kept"); err != nil {
		t.Errorf("the service database was dropped all the same: %v", err)
	}
}
