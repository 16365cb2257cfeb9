package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cli runs `datarights requests …` in-process against e's service with a
// staff token, as a person at a terminal would.
func (e *e2e) cli(token string, args ...string) (stdout, stderr string, err error) {
	e.t.Helper()
	env := map[string]string{urlEnvVar: e.base, tokenEnvVar: token}
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = run(ctx, append([]string{"requests"}, args...), func(k string) string { return env[k] }, &out, &errOut)
	return out.String(), errOut.String(), err
}

// mustCLI is cli that fails the test on an error.
func (e *e2e) mustCLI(token string, args ...string) string {
	e.t.Helper()
	out, errOut, err := e.cli(token, args...)
	if err != nil {
		e.t.Fatalf("requests %v: %v\nstderr: %s", args, err, errOut)
	}
	return out
}

// fileJSON files a ticket with the CLI and returns its id.
func (e *e2e) fileJSON(token string, args ...string) string {
	e.t.Helper()
	out := e.mustCLI(token, append([]string{"file", "--json"}, args...)...)
	var v struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.ID == "" {
		e.t.Fatalf("file --json printed %q (%v)", out, err)
	}
	return v.ID
}

// TestStaffCLIFileShowList files a ticket with the CLI, finds it in the
// queue and its summary, replays it with the same idempotency key, and
// shows the API's refusals (bad fields, a role without the permission) as
// errors naming what is wrong.
func TestStaffCLIFileShowList(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "")
	ticket := []string{"--product", "webank", "--type", "copy", "--identity", "user_id=demo-user-3",
		"--delivery-email", "demo-user-3@example.com", "--verification", "face_check", "--reference", "FC-1",
		"--locale", "en", "--note", "filed from the CLI", "--idempotency-key", "cli-test-1"}
	id := e.fileJSON(testToken, ticket...)
	// The same key again is the same ticket, said so.
	out, errOut, err := e.cli(testToken, append([]string{"file"}, ticket...)...)
	if err != nil || !strings.Contains(out, id) || !strings.Contains(errOut, "already filed") {
		t.Fatalf("file again with the same key: %v\nstdout %s\nstderr %s", err, out, errOut)
	}
	e.waitStatus(id, "completed", 60*time.Second)

	show := e.mustCLI(testToken, "show", id)
	for _, want := range []string{id, "webank", "completed", "filed by staff:env", "last day", "TASKS", "succeeded",
		"EVENTS", "request completed", "staff:env"} {
		if !strings.Contains(show, want) {
			t.Errorf("show lacks %q:\n%s", want, show)
		}
	}
	var full map[string]any
	if err := json.Unmarshal([]byte(e.mustCLI(testToken, "show", id, "--json")), &full); err != nil || full["id"] != id || full["status"] != "completed" {
		t.Errorf("show --json = %v (%v)", full, err)
	}

	list := e.mustCLI(staffToken("agent"), "list", "--product", "webank", "--sort", "due_at", "--band", "closed", "--limit", "10")
	if lines := strings.Split(strings.TrimSpace(list), "\n"); len(lines) != 2 ||
		!strings.Contains(lines[0], "DAYS LEFT") || !strings.Contains(lines[1], id) || !strings.Contains(lines[1], "completed") {
		t.Errorf("list:\n%s", list)
	}
	var page struct {
		Requests []struct {
			ID string `json:"id"`
		} `json:"requests"`
	}
	if err := json.Unmarshal([]byte(e.mustCLI(testToken, "list", "--json", "--type", "copy")), &page); err != nil ||
		len(page.Requests) != 1 || page.Requests[0].ID != id {
		t.Errorf("list --json = %+v (%v)", page, err)
	}
	if list := e.mustCLI(testToken, "list", "--status", "received"); strings.Contains(list, id) {
		t.Errorf("list --status received shows the completed request:\n%s", list)
	}

	// The API's field problems, one `field: reason` line each.
	bad := append(append([]string{"file"}, ticket[:len(ticket)-2]...), "--delivery-email", "not-an-email")
	if _, _, err := e.cli(testToken, bad...); err == nil || !strings.Contains(err.Error(), "HTTP 400") ||
		!strings.Contains(err.Error(), "\n  delivery_email: ") {
		t.Errorf("bad delivery email: %v", err)
	}
	if _, _, err := e.cli(testToken, "list", "--band", "late"); err == nil || !strings.Contains(err.Error(), "sla_band: unknown band") {
		t.Errorf("bad band: %v", err)
	}
	// An agent may not decide.
	var usage usageError
	if _, _, err := e.cli(staffToken("agent"), "approve", id, "--note", "ok"); err == nil || errors.As(err, &usage) ||
		!strings.Contains(err.Error(), "HTTP 403 forbidden") {
		t.Errorf("approve by an agent: %v", err)
	}
	if _, _, err := e.cli(testToken, "show", "r-nosuch"); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Errorf("show of no request: %v", err)
	}
	if _, _, err := e.cli("wrong-token", "list"); err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Errorf("unknown token: %v", err)
	}

	// Mistakes on the command line are usage errors, before any call.
	for _, args := range [][]string{{}, {"sell"}, {"show"}, {"show", id, "extra"}, {"list", "--colour", "red"},
		{"approve", "--note", "x"}, {"file", "--identity", "user_id"}} {
		if _, _, err := e.cli(testToken, args...); !errors.As(err, &usage) {
			t.Errorf("requests %v = %v, want a usage error", args, err)
		}
	}
	if _, _, err := e.cli("", "list"); !errors.As(err, &usage) || !strings.Contains(err.Error(), tokenEnvVar) {
		t.Errorf("no token = %v, want a usage error naming %s", err, tokenEnvVar)
	}
}

// TestStaffCLIDecisions approves, refuses, extends, pauses and resumes with
// the CLI, with the four-eyes rule enforced by the API.
func TestStaffCLIDecisions(t *testing.T) {
	t.Parallel()
	// The bank is unreachable: decisions come before any store is
	// touched, and a request that needs the bank fails, to be paused.
	e := setupE2E(t, false, "worker:\n  max_attempts: 1\n")
	yaml, err := os.ReadFile(e.configPath)
	if err != nil {
		t.Fatal(err)
	}
	dead := "postgres://postgres@" + freePort(t) + "/bank?sslmode=disable&connect_timeout=2"
	yaml = []byte(strings.Replace(string(yaml), strconv.Quote(e.bankURL), strconv.Quote(dead), 1))
	if err := os.WriteFile(e.configPath, yaml, 0o600); err != nil {
		t.Fatal(err)
	}
	e.start()
	protected := func(user, phone string) []string {
		return []string{"--product", "webank", "--type", "correct", "--identity", "user_id=" + user,
			"--delivery-email", user + "@example.com", "--verification", "id_document", "--reference", "ID-7",
			"--correct", "phone=" + phone, "--correct", "city=Xi'an"}
	}
	approveID := e.fileJSON(testToken, protected("demo-user-7", "13999990007")...)
	refuseID := e.fileJSON(testToken, protected("demo-user-8", "13999990008")...)
	e.waitStatus(approveID, "awaiting_approval", 30*time.Second)
	e.waitStatus(refuseID, "awaiting_approval", 30*time.Second)

	show := e.mustCLI(testToken, "show", approveID)
	for _, want := range []string{"awaiting_approval", "CORRECTIONS", "phone → 13999990007", "correction needs approval"} {
		if !strings.Contains(show, want) {
			t.Errorf("show lacks %q:\n%s", want, show)
		}
	}

	// Four eyes: the filer may neither approve nor refuse.
	if _, _, err := e.cli(testToken, "approve", approveID, "--note", "ID card checked"); err == nil || !strings.Contains(err.Error(), "HTTP 403") {
		t.Fatalf("approval by the filer: %v", err)
	}
	if _, _, err := e.cli(testToken, "refuse", refuseID, "--reason", "identity_not_verified", "--message", "x"); err == nil || !strings.Contains(err.Error(), "HTTP 403") {
		t.Fatalf("refusal by the filer: %v", err)
	}

	out := e.mustCLI(staffToken("approver-2"), "extend", approveID, "--days", "5", "--reason", "complex correction")
	if !strings.Contains(out, approveID+": extended") {
		t.Errorf("extend printed %q", out)
	}
	if show := e.mustCLI(testToken, "show", approveID); !strings.Contains(show, "extended 5 days by approver-2: complex correction") {
		t.Errorf("show after extend:\n%s", show)
	}
	out = e.mustCLI(staffToken("approver-2"), "approve", approveID, "--note", "ID card checked at the branch")
	if !strings.Contains(out, approveID+": approved") {
		t.Errorf("approve printed %q", out)
	}
	// Approved, it goes on to prove the new phone with a code.
	e.waitStatus(approveID, "awaiting_contact", 30*time.Second)

	if _, _, err := e.cli(staffToken("approver-2"), "refuse", refuseID, "--reason", "because", "--message", "x"); err == nil ||
		!strings.Contains(err.Error(), "HTTP 400") || !strings.Contains(err.Error(), "excessive_or_repeated") {
		t.Errorf("refusal for an unknown reason: %v", err)
	}
	out = e.mustCLI(staffToken("approver-2"), "refuse", refuseID, "--reason", "identity_not_verified", "--message", "The ID document did not match.")
	if !strings.Contains(out, refuseID+": refused; status refused") {
		t.Errorf("refuse printed %q", out)
	}
	if show := e.mustCLI(testToken, "show", refuseID); !strings.Contains(show, "identity_not_verified: The ID document did not match.") {
		t.Errorf("show after refusal:\n%s", show)
	}

	// Pause and resume a request whose store failed (work is paused only
	// before it starts or after it failed).
	ssID := e.fileJSON(staffToken("agent"), "--product", "webank", "--type", "copy", "--identity", "user_id=demo-user-9",
		"--delivery-email", "demo-user-9@example.com", "--verification", "face_check")
	e.waitStatus(ssID, "failed", 60*time.Second)
	if show := e.mustCLI(testToken, "show", ssID); !strings.Contains(show, "connection refused") || !strings.Contains(show, "request failed → failed") {
		t.Errorf("show of a failed request:\n%s", show)
	}
	if _, _, err := e.cli(staffToken("agent"), "pause", ssID); err == nil || !strings.Contains(err.Error(), "reason: ") {
		t.Errorf("pause without a reason: %v", err)
	}
	out = e.mustCLI(staffToken("agent"), "pause", ssID, "--reason", "waiting for the ID document")
	if !strings.Contains(out, ssID+": paused; status paused") {
		t.Errorf("pause printed %q", out)
	}
	if show := e.mustCLI(testToken, "show", ssID); !strings.Contains(show, "still paused by agent: waiting for the ID document") {
		t.Errorf("show while paused:\n%s", show)
	}
	if list := e.mustCLI(testToken, "list", "--band", "paused"); !strings.Contains(list, ssID) {
		t.Errorf("list --band paused:\n%s", list)
	}
	out = e.mustCLI(staffToken("agent"), "resume", ssID)
	if !strings.Contains(out, ssID+": resumed; status ") {
		t.Errorf("resume printed %q", out)
	}
	if show := e.mustCLI(testToken, "show", ssID); !strings.Contains(show, "paused") || strings.Contains(show, "still paused") {
		t.Errorf("show after resume:\n%s", show)
	}
}
