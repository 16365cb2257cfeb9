package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/datarights/datarights/storage/storagetest"
)

// switchProxy stands between the service and a store: while down it drops
// every connection, as a crashed or unreachable server would; when up it
// forwards to the real server.
type switchProxy struct {
	ln     net.Listener
	target string
	up     atomic.Bool
	// hang, while up, accepts connections and never answers, as a server
	// stuck under load does.
	hang atomic.Bool
	wg   sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]bool
}

// dropAll closes every connection open through the proxy, as a database
// restart does to its clients.
func (p *switchProxy) dropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

func (p *switchProxy) track(c net.Conn, open bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		p.conns = map[net.Conn]bool{}
	}
	if open {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
}

func newSwitchProxy(t *testing.T, target string) *switchProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(func() { ln.Close() })
	return p
}

func (p *switchProxy) serve() {
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.up.Load() {
			conn.Close()
			continue
		}
		if p.hang.Load() {
			go func() {
				p.track(conn, true)
				defer p.track(conn, false)
				defer conn.Close()
				_, _ = io.Copy(io.Discard, conn) // until the client gives up
			}()
			continue
		}
		go func() {
			p.track(conn, true)
			defer p.track(conn, false)
			defer conn.Close()
			backend, err := net.Dial("tcp", p.target)
			if err != nil {
				return
			}
			defer backend.Close()
			done := make(chan struct{}, 2)
			go func() { io.Copy(backend, conn); done <- struct{}{} }() //nolint:errcheck
			go func() { io.Copy(conn, backend); done <- struct{}{} }() //nolint:errcheck
			<-done
		}()
	}
}

// throughProxy rewrites the demo configuration so the bank is reached
// through a switchable proxy, and returns the proxy (down).
func (e *e2e) throughProxy(t *testing.T) *switchProxy {
	t.Helper()
	return e.proxyDatabase(t, e.bankURL)
}

// serviceThroughProxy rewrites the configuration so the service reaches
// its own database (as its runtime role) through a switchable proxy, and
// returns the proxy (down). Migrations still connect directly.
func (e *e2e) serviceThroughProxy(t *testing.T) *switchProxy {
	t.Helper()
	return e.proxyDatabase(t, storagetest.RuntimeURL(t, e.serviceURL))
}

// proxyDatabase replaces the database URL dbURL in the configuration by
// one through a new switchable proxy (down), with a short connect timeout.
func (e *e2e) proxyDatabase(t *testing.T, dbURL string) *switchProxy {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newSwitchProxy(t, u.Host)
	via := *u
	via.Host = proxy.ln.Addr().String()
	q := via.Query()
	q.Set("connect_timeout", "2")
	via.RawQuery = q.Encode()
	yaml, err := os.ReadFile(e.configPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(yaml), strconv.Quote(dbURL)) {
		t.Fatalf("the configuration does not name %s", dbURL)
	}
	yaml = []byte(strings.Replace(string(yaml), strconv.Quote(dbURL), strconv.Quote(via.String()), 1))
	if err := os.WriteFile(e.configPath, yaml, 0o600); err != nil {
		t.Fatal(err)
	}
	return proxy
}

func hasAction(body map[string]any, action string) bool {
	return slices.Contains(auditActions(body), action)
}

// countAction is how many times a request's audit trail holds action.
func countAction(body map[string]any, action string) int {
	n := 0
	for _, a := range auditActions(body) {
		if a == action {
			n++
		}
	}
	return n
}

// TestStoreDownRetriesThenCompletes: the bank is down when the request
// arrives; its task retries and the request waits in progress; once the
// bank is back, the request completes, once.
func TestStoreDownRetriesThenCompletes(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, false, "")
	proxy := e.throughProxy(t)
	e.start()

	code, body := e.call("POST", "/api/v1/requests", testToken, copyTicket("demo-user-4"))
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	waitFor(t, 30*time.Second, "a failed attempt", func() bool {
		_, b := e.call("GET", "/api/v1/requests/"+id, testToken, nil)
		return hasAction(b, "task.retrying")
	})
	_, waiting := e.call("GET", "/api/v1/requests/"+id, testToken, nil)
	if waiting["status"] != "in_progress" {
		t.Fatalf("while the store is down the request is %v, want in_progress", waiting["status"])
	}
	proxy.up.Store(true)
	done := e.waitStatus(id, "completed", 60*time.Second)
	if !hasAction(done, "task.succeeded") {
		t.Errorf("audit = %v", auditActions(done))
	}
	msgs := e.smtp.WaitForMessages(t, 1, 30*time.Second)
	time.Sleep(300 * time.Millisecond)
	if len(e.smtp.Messages()) != 1 {
		t.Fatalf("%d emails, want 1", len(e.smtp.Messages()))
	}
	e.checkExport(msgs[0], "demo-user-4")
}

// TestStaffRetriesAFailedTask: the task runs out of attempts while the bank
// is down and the request shows failed; staff retry that one task once the
// bank is back, and the request completes.
func TestStaffRetriesAFailedTask(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, false, "worker:\n  max_attempts: 2\n")
	proxy := e.throughProxy(t)
	e.start()

	code, body := e.call("POST", "/api/v1/requests", testToken, copyTicket("demo-user-8"))
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	failed := e.waitStatus(id, "failed", 60*time.Second)
	taskID := failed["tasks"].([]any)[0].(map[string]any)["id"].(string)

	if code, _ := e.call("POST", "/api/v1/requests/"+id+"/tasks/not-a-task/retry", testToken, map[string]any{}); code != http.StatusNotFound {
		t.Errorf("retry of an unknown task = %d, want 404", code)
	}
	proxy.up.Store(true)
	code, body = e.call("POST", "/api/v1/requests/"+id+"/tasks/"+taskID+"/retry", testToken, map[string]any{})
	if code != http.StatusOK || body["status"] != "in_progress" {
		t.Fatalf("retry = %d %v", code, body)
	}
	if code, _ := e.call("POST", "/api/v1/requests/"+id+"/tasks/"+taskID+"/retry", testToken, map[string]any{}); code != http.StatusConflict {
		t.Errorf("second retry = %d, want 409", code)
	}
	done := e.waitStatus(id, "completed", 60*time.Second)
	want := []string{"request.received", "request.verified", "request.planned", "task.retrying", "task.failed",
		"request.failed", "task.retry_requested", "task.succeeded", "request.assembling", "export.assembled", "request.completed", "export.purged"}
	if got := auditActions(done); !slices.Equal(got, want) {
		t.Errorf("audit = %v, want %v", got, want)
	}
	e.checkExport(e.smtp.WaitForMessages(t, 1, 30*time.Second)[0], "demo-user-8")
}

// TestResumeRunsAFailedStoreTask: the one staff action for a failed
// request, resume, also puts a store task that ran out of attempts back to
// work.
func TestResumeRunsAFailedStoreTask(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, false, "worker:\n  max_attempts: 1\n")
	proxy := e.throughProxy(t)
	e.start()
	code, body := e.call("POST", "/api/v1/requests", testToken, copyTicket("demo-user-19"))
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	failed := e.waitStatus(id, "failed", 60*time.Second)
	if d := auditDetail(failed, "request.failed"); d["step"] != "store_task" {
		t.Errorf("request.failed = %v", d)
	}
	proxy.up.Store(true)
	if code, out := e.call("POST", "/api/v1/requests/"+id+"/resume", staffToken("agent"), map[string]any{}); code != http.StatusOK || out["status"] != "in_progress" {
		t.Fatalf("resume = %d %v", code, out)
	}
	done := e.waitStatus(id, "completed", 60*time.Second)
	if d := auditDetail(done, "request.resumed"); fmt.Sprint(d["steps"]) != "[store_task:demo_bank]" {
		t.Errorf("request.resumed = %v", d)
	}
}
