package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/datarights/datarights/exporters/smtptest"
	"github.com/datarights/datarights/jobs"
	"github.com/datarights/datarights/keyring"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// datarightsBinary builds the command once per test run.
func datarightsBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "datarights-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "datarights")
		out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startProcess runs `datarights serve` as a real process and waits until it
// is ready.
func (e *e2e) startProcess(addr string) *exec.Cmd {
	t := e.t
	cmd := exec.Command(datarightsBinary(t), "serve", "-config", e.configPath)
	cmd.Env = append(os.Environ(),
		"DATARIGHTS_SMTP_URL="+e.getenv("DATARIGHTS_SMTP_URL"),
		"DATARIGHTS_STAFF_TOKEN="+testToken,
		keyring.EnvVar+"="+testSecretKey,
		"DATARIGHTS_HTTP_ADDR="+addr,
		"DATARIGHTS_PUBLIC_URL=http://"+addr,
		"DATABASE_URL=",
	)
	logPath := filepath.Join(t.TempDir(), "serve.log")
	startLogged(t, cmd, logPath)
	e.base = "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := e.client.Get(e.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd
			}
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logPath)
			t.Fatalf("datarights serve not ready after 30s; log:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestKilledWorkerResumesAndCompletesOnce kills the service with SIGKILL
// while a store task is in the middle of reading the bank, starts it again,
// and checks that the request completes exactly once.
func TestKilledWorkerResumesAndCompletesOnce(t *testing.T) {
	t.Parallel()
	// Short timeouts so the restarted process rescues the dead one's job
	// within the test; production defaults are minutes.
	e := setupE2E(t, false, "worker:\n  job_timeout: 3s\n  rescue_after: 4s\n")
	ctx := context.Background()

	// Hold the transactions table so the export blocks in the middle of the
	// store task, after it has read users and cards.
	bank, err := pgx.Connect(ctx, e.bankURL)
	if err != nil {
		t.Fatal(err)
	}
	defer bank.Close(ctx)
	lock, err := bank.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(ctx, "LOCK TABLE transactions IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}

	addr := freePort(t)
	first := e.startProcess(addr)
	code, body := e.call("POST", "/api/v1/requests", testToken, copyTicket("demo-user-7"))
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)

	waitFor(t, 30*time.Second, "store task running", func() bool {
		var n int
		err := e.db.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE kind = 'store_task' AND state = 'running'").Scan(&n)
		return err == nil && n == 1
	})
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = first.Process.Wait()
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	var status string
	if err := e.db.QueryRow(ctx, "SELECT status FROM requests WHERE id = $1", id).Scan(&status); err != nil {
		t.Fatal(err)
	}
	if status != "in_progress" {
		t.Fatalf("after the kill the request is %s, want in_progress", status)
	}

	e.startProcess(addr)
	done := e.waitStatus(id, "completed", 90*time.Second)
	if got := auditActions(done); !slices.Equal(got, wantCopyTrail) {
		t.Errorf("audit trail = %v, want %v", got, wantCopyTrail)
	}
	msgs := e.smtp.WaitForMessages(t, 1, 30*time.Second)
	time.Sleep(500 * time.Millisecond)
	if n := len(e.smtp.Messages()); n != 1 {
		t.Fatalf("%d emails after the restart, want 1", n)
	}
	e.checkExport(msgs[0], "demo-user-7")
}

// TestRerunStepsAfterCompletionDoNothing runs every pipeline step again for
// a completed request, as River would after a crash between a step's commit
// and its job's completion, and checks that nothing changes.
func TestRerunStepsAfterCompletionDoNothing(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "")
	ctx := context.Background()

	code, body := e.call("POST", "/api/v1/requests", testToken, copyTicket("demo-user-1"))
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	before := e.waitStatus(id, "completed", 60*time.Second)
	e.smtp.WaitForMessages(t, 1, 30*time.Second)
	taskID := before["tasks"].([]any)[0].(map[string]any)["id"].(string)

	client, err := river.NewClient(riverpgxv5.New(e.db), &river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range []river.JobArgs{
		jobs.VerifyArgs{RequestID: id}, jobs.PlanArgs{RequestID: id},
		jobs.StoreTaskArgs{RequestID: id, TaskID: taskID}, jobs.AssembleArgs{RequestID: id},
		jobs.DeliverArgs{RequestID: id}, jobs.SendCodeArgs{RequestID: id},
	} {
		if _, err := client.Insert(ctx, args, nil); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "re-run jobs completed", func() bool {
		var n int
		err := e.db.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE state <> 'completed'").Scan(&n)
		return err == nil && n == 0
	})
	_, after := e.call("GET", "/api/v1/requests/"+id, testToken, nil)
	if got, want := auditActions(after), auditActions(before); !slices.Equal(got, want) {
		t.Errorf("audit trail changed by re-runs: %v, was %v", got, want)
	}
	if after["status"] != "completed" {
		t.Errorf("status after re-runs = %v", after["status"])
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(e.smtp.Messages()); n != 1 {
		t.Errorf("%d emails after re-runs, want 1", n)
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestUnreachableStoreFailsVisibly points the store at a port nobody listens
// on: the task retries until its attempts run out, then the request shows
// failed, never completed, and no email goes out.
func TestUnreachableStoreFailsVisibly(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, false, "worker:\n  max_attempts: 2\n")
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

	code, body := e.call("POST", "/api/v1/requests", testToken, copyTicket("demo-user-2"))
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	failed := e.waitStatus(body["id"].(string), "failed", 60*time.Second)
	want := []string{"request.received", "request.verified", "request.planned", "task.retrying", "task.failed", "request.failed"}
	if got := auditActions(failed); !slices.Equal(got, want) {
		t.Errorf("audit trail = %v, want %v", got, want)
	}
	task := failed["tasks"].([]any)[0].(map[string]any)
	if task["status"] != "failed" || task["attempts"].(float64) != 2 || task["last_error"] == "" {
		t.Errorf("task = %v", task)
	}
	if n := len(e.smtp.Messages()); n != 0 {
		t.Errorf("%d emails for a failed request", n)
	}
}

// completions returns the completion emails of a request the server
// accepted.
func (e *e2e) completions(id string) []smtptest.Message {
	var out []smtptest.Message
	for _, m := range e.smtp.Messages() {
		if m.MessageID == id+".completion@datarights" {
			out = append(out, m)
		}
	}
	return out
}

// TestDeliveryRerunAfterRecordSendsNothing: once the completion email is
// recorded, running the delivery job again sends nothing.
func TestDeliveryRerunAfterRecordSendsNothing(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "")
	code, body := e.call("POST", "/api/v1/requests", testToken, copyTicket("demo-user-15"))
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	e.waitStatus(id, "completed", 60*time.Second)
	e.smtp.WaitForMessage(t, id+".completion@datarights", 30*time.Second)

	ctx := context.Background()
	client, err := river.NewClient[pgx.Tx](riverpgxv5.New(e.db), &river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	// A fresh job (not a duplicate of the completed one): the worker must
	// find the delivery recorded and send nothing.
	if _, err := client.Insert(ctx, jobs.DeliverArgs{RequestID: id}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the re-run delivery job to finish", func() bool {
		var n int
		err := e.db.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'deliver' AND args->>'request_id' = $1 AND state = 'completed'`, id).Scan(&n)
		return err == nil && n == 2
	})
	time.Sleep(300 * time.Millisecond)
	if n := len(e.completions(id)); n != 1 {
		t.Errorf("%d completion emails after a re-run, want 1", n)
	}
}

// TestCrashBetweenSendAndRecordResendsTheSameMessage: the SMTP server takes
// the completion email and the connection then fails before the sender
// hears back, the window no transaction can close. The delivery is retried
// and the same message (same Message-ID, same content) goes out again; the
// request completes once.
func TestCrashBetweenSendAndRecordResendsTheSameMessage(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "")
	e.smtp.DropAfterAccept(1)
	code, body := e.call("POST", "/api/v1/requests", testToken, copyTicket("demo-user-16"))
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	done := e.waitStatus(id, "completed", 90*time.Second)
	sent := e.completions(id)
	if len(sent) != 2 {
		t.Fatalf("%d completion emails, want 2 (the dropped one and its resend)", len(sent))
	}
	if sent[0].MessageID != sent[1].MessageID || sent[0].Text != sent[1].Text {
		t.Errorf("the resend is a different message: %q vs %q", sent[0].MessageID, sent[1].MessageID)
	}
	if n := countAction(done, "request.completed"); n != 1 {
		t.Errorf("request.completed %d times", n)
	}
}

// TestKillBetweenSendAndRecordResendsTheSameMessage: the same window with a
// real crash. The SMTP server takes the email and never answers; the
// process, waiting, is killed with SIGKILL; the next process delivers
// again, with the same Message-ID.
func TestKillBetweenSendAndRecordResendsTheSameMessage(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, false, "worker:\n  job_timeout: 3s\n  rescue_after: 4s\n")
	e.smtp.HoldAfterAccept(1)
	addr := freePort(t)
	first := e.startProcess(addr)
	code, body := e.call("POST", "/api/v1/requests", testToken, copyTicket("demo-user-17"))
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	e.smtp.WaitForMessage(t, id+".completion@datarights", 60*time.Second)
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = first.Process.Wait()
	var status string
	if err := e.db.QueryRow(context.Background(), "SELECT status FROM requests WHERE id = $1", id).Scan(&status); err != nil || status != "delivering" {
		t.Fatalf("after the kill the request is %s (%v), want delivering: the send was not recorded", status, err)
	}

	e.startProcess(addr)
	e.waitStatus(id, "completed", 90*time.Second)
	sent := e.completions(id)
	if len(sent) != 2 || sent[0].MessageID != sent[1].MessageID {
		t.Fatalf("completion emails = %d, want the first and its resend with the same Message-ID", len(sent))
	}
}

// startLogged starts cmd with its output in the file at logPath, and kills
// it when the test ends.
func startLogged(t *testing.T, cmd *exec.Cmd, logPath string) {
	t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		_ = logFile.Close()
	})
}
