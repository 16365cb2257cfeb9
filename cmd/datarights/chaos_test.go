//go:build chaos

package main

// The chaos run: real `serve` and `worker` processes killed with SIGKILL
// every few seconds while requests of all six rights arrive, the service's
// database cut off, the mail server refusing mail, and a store refusing
// and then hanging. Then every request must end, none lost, none twice,
// every erasure's report equal to what the store lost, every copy holding
// its own subject's data only. docs/reliability.md has its numbers.
//
//	go test -tags chaos -run TestChaos -timeout 30m ./cmd/datarights
//	CHAOS_REQUESTS=1000 CHAOS_DURATION=10m go test -tags chaos -run TestChaos -timeout 60m -v ./cmd/datarights

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/keyring"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// proc is one datarights process the chaos kills and restarts.
type proc struct {
	kind, addr string
	mu         sync.Mutex
	cmd        *exec.Cmd
	log        *os.File
	kills      int
}

func (e *e2e) startProc(t *testing.T, p *proc, publicURL string) {
	t.Helper()
	cmd := exec.Command(datarightsBinary(t), p.kind, "-config", e.configPath)
	cmd.Env = append(os.Environ(),
		"DATARIGHTS_SMTP_URL="+e.getenv("DATARIGHTS_SMTP_URL"),
		"DATARIGHTS_STAFF_TOKEN="+testToken,
		keyring.EnvVar+"="+testSecretKey,
		"DATARIGHTS_HTTP_ADDR="+p.addr,
		"DATARIGHTS_PUBLIC_URL="+publicURL,
		"DATABASE_URL=",
	)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.cmd = cmd
	p.mu.Unlock()
}

func (p *proc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		_, _ = p.cmd.Process.Wait()
		p.cmd = nil
		p.kills++
	}
}

// tryPost posts body as a client would, network errors included (the API
// process may be dead this second).
func tryPost(url, token string, body any, idempotencyKey string) (int, map[string]any, error) {
	raw, _ := json.Marshal(body)
	req, err := http.NewRequest("POST", url, bytes.NewReader(raw))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Idempotency-Key", idempotencyKey)
	client := &http.Client{Timeout: 20 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, nil
}

type submitted struct {
	id, kind, subject string
}

func TestChaos(t *testing.T) {
	n := envInt("CHAOS_REQUESTS", 150)
	duration := envDuration("CHAOS_DURATION", 2*time.Minute)
	e := setupE2E(t, false, "worker:\n  job_timeout: 20s\n  rescue_after: 5s\n  max_attempts: 25\n  concurrency: 20\n"+
		"intake:\n  confirm_delivery_email: false\n")
	bank := e.throughProxy(t)
	bank.up.Store(true)
	db := e.serviceThroughProxy(t)
	db.up.Store(true)
	ctx := context.Background()

	bankConn, err := pgx.Connect(ctx, e.bankURL)
	if err != nil {
		t.Fatal(err)
	}
	defer bankConn.Close(ctx)
	deleted := map[string]bool{} // subjects erased by delete or cancel_account
	for i := 1; i <= 6; i++ {
		deleted[fmt.Sprintf("demo-user-%d", i)] = true
	}
	rowsOf := func(user string) int64 {
		var total int64
		for _, table := range []string{"users", "cards", "transactions", "consents"} {
			var n int64
			if err := bankConn.QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE user_id = $1", user).Scan(&n); err != nil {
				t.Fatal(err)
			}
			total += n
		}
		return total
	}
	before := map[string]int64{}
	for user := range deleted {
		before[user] = rowsOf(user)
	}

	apiAddr := freePort(t)
	public := "http://" + apiAddr
	e.base = public
	procs := []*proc{{kind: "serve", addr: apiAddr}, {kind: "worker", addr: freePort(t)}, {kind: "worker", addr: freePort(t)}}
	logDir := t.TempDir()
	for i, p := range procs {
		if p.log, err = os.Create(filepath.Join(logDir, fmt.Sprintf("%d-%s.log", i, p.kind))); err != nil {
			t.Fatal(err)
		}
		e.startProc(t, p, public)
	}
	t.Cleanup(func() {
		for _, p := range procs {
			p.kill()
		}
	})
	waitReady := func() {
		t.Helper()
		waitFor(t, 60*time.Second, "the API", func() bool {
			resp, err := http.Get(public + "/readyz")
			if err == nil {
				resp.Body.Close()
			}
			return err == nil && resp.StatusCode == http.StatusOK
		})
	}
	waitReady()

	// The requests: all six rights, several subjects, repeats (a second copy
	// for the same person waits for approval).
	var (
		mu   sync.Mutex
		subs []submitted
	)
	ticketFor := func(i int) (map[string]any, string) {
		kinds := []string{"copy", "access", "correct", "withdraw_consent", "copy"}
		if i < 5 {
			user := fmt.Sprintf("demo-user-%d", i+1)
			tk := copyTicket(user)
			tk["type"] = "delete"
			return tk, user
		}
		if i == 5 {
			tk := copyTicket("demo-user-6")
			tk["type"] = "cancel_account"
			return tk, "demo-user-6"
		}
		user := fmt.Sprintf("demo-user-%d", 7+i%14)
		tk := copyTicket(user)
		kind := kinds[i%len(kinds)]
		tk["type"] = kind
		switch kind {
		case "correct":
			tk["corrections"] = map[string]string{"city": "杭州-" + strconv.Itoa(i)}
		case "withdraw_consent":
			tk["purposes"] = []string{"personalised_ads"}
		}
		tk["note"] = "chaos " + strconv.Itoa(i)
		return tk, user
	}
	submit := func(i int) {
		tk, user := ticketFor(i)
		key := fmt.Sprintf("chaos-%d", i)
		deadline := time.Now().Add(duration + 5*time.Minute)
		for time.Now().Before(deadline) {
			code, body, err := tryPost(public+"/api/v1/requests", testToken, tk, key)
			if err == nil && (code == http.StatusCreated || code == http.StatusOK) {
				mu.Lock()
				subs = append(subs, submitted{id: body["id"].(string), kind: tk["type"].(string), subject: user})
				mu.Unlock()
				return
			}
			time.Sleep(time.Duration(200+rand.IntN(800)) * time.Millisecond)
		}
		t.Errorf("request %d was never accepted", i)
	}

	stop := make(chan struct{})
	var chaosWG sync.WaitGroup
	var killed atomic.Int64
	// Kill a random process every 2-6 s and start it again 0.5-2 s later.
	chaosWG.Add(1)
	go func() {
		defer chaosWG.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(2000+rand.IntN(4000)) * time.Millisecond):
			}
			p := procs[rand.IntN(len(procs))]
			p.kill()
			killed.Add(1)
			time.Sleep(time.Duration(500+rand.IntN(1500)) * time.Millisecond)
			e.startProc(t, p, public)
		}
	}()
	// The outages, one after another, while the kills go on.
	chaosWG.Add(1)
	outages := map[string]time.Duration{}
	go func() {
		defer chaosWG.Done()
		step := duration / 8
		sleep := func(d time.Duration) bool {
			select {
			case <-stop:
				return false
			case <-time.After(d):
				return true
			}
		}
		if !sleep(step) {
			return
		}
		down := min(30*time.Second, 2*step)
		db.up.Store(false)
		db.dropAll()
		sleep(down)
		db.up.Store(true)
		outages["database"] = down
		if !sleep(step / 2) {
			return
		}
		mailDown := min(2*time.Minute, 2*step)
		e.smtp.FailNext(1 << 30)
		sleep(mailDown)
		e.smtp.FailNext(0)
		outages["smtp"] = mailDown
		if !sleep(step / 2) {
			return
		}
		storeDown := min(20*time.Second, step)
		bank.up.Store(false) // refuses
		bank.dropAll()
		sleep(storeDown / 2)
		bank.hang.Store(true) // accepts and never answers
		bank.up.Store(true)
		sleep(storeDown / 2)
		bank.hang.Store(false)
		bank.up.Store(true)
		outages["store"] = storeDown
	}()

	// Submissions spread over the first half of the chaos.
	var subWG sync.WaitGroup
	started := time.Now()
	for i := range n {
		subWG.Add(1)
		go func() {
			defer subWG.Done()
			time.Sleep(time.Duration(rand.Int64N(int64(duration / 2))))
			submit(i)
		}()
	}
	time.Sleep(duration)
	close(stop)
	chaosWG.Wait()
	subWG.Wait()
	chaosTime := time.Since(started)

	// Calm: everything up, every process running.
	db.up.Store(true)
	bank.hang.Store(false)
	bank.up.Store(true)
	e.smtp.FailNext(0)
	for _, p := range procs {
		p.mu.Lock()
		running := p.cmd != nil
		p.mu.Unlock()
		if !running {
			e.startProc(t, p, public)
		}
	}
	// The API may have been restarted this instant: staff's first call
	// waits for it, as a person would, instead of failing the run.
	waitReady()

	// Settle: staff approve repeats (a second approver: four eyes) and
	// resume what failed, as they would; every request must end.
	terminal := map[string]bool{"completed": true, "refused": true, "cancelled": true, "expired": true}
	status := map[string]string{}
	settleStart := time.Now()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		open := 0
		for _, s := range subs {
			if terminal[status[s.id]] {
				continue
			}
			code, body := e.call("GET", "/api/v1/requests/"+s.id, testToken, nil)
			if code != http.StatusOK {
				open++
				continue
			}
			st := body["status"].(string)
			status[s.id] = st
			switch st {
			case "awaiting_approval":
				e.call("POST", "/api/v1/requests/"+s.id+"/approve", staffToken("approver-2"), map[string]string{"note": "chaos: a repeat the customer asked for"})
			case "failed":
				e.call("POST", "/api/v1/requests/"+s.id+"/resume", staffToken("agent"), map[string]any{})
			}
			if !terminal[st] {
				open++
			}
		}
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			var stuck []string
			for _, s := range subs {
				if !terminal[status[s.id]] {
					stuck = append(stuck, s.id+" "+s.kind+" "+status[s.id])
				}
			}
			t.Fatalf("%d requests stuck after 5 minutes of calm: %v", len(stuck), stuck)
		}
		time.Sleep(time.Second)
	}
	settle := time.Since(settleStart)

	// Lost nothing, filed nothing twice.
	if len(subs) != n {
		t.Errorf("%d of %d requests accepted", len(subs), n)
	}
	var inDB int
	if err := e.db.QueryRow(ctx, "SELECT count(*) FROM requests").Scan(&inDB); err != nil {
		t.Fatal(err)
	}
	if inDB != n {
		t.Errorf("%d requests in the database, %d submitted", inDB, n)
	}

	// Every erasure's report equals what the store lost.
	for _, s := range subs {
		if !deleted[s.subject] || status[s.id] != "completed" {
			continue
		}
		_, body := e.call("GET", "/api/v1/requests/"+s.id, testToken, nil)
		var reported int64
		for _, task := range asSlice(body["tasks"]) {
			task := task.(map[string]any)
			if task["store"] != "demo_bank" {
				continue
			}
			for _, d := range asSlice(task["report"].(map[string]any)["datasets"]) {
				if v, ok := d.(map[string]any)["deleted"].(float64); ok {
					reported += int64(v)
				}
			}
		}
		if lost := before[s.subject] - rowsOf(s.subject); reported != lost || lost == 0 {
			t.Errorf("%s of %s: report says %d rows deleted, the bank lost %d", s.kind, s.subject, reported, lost)
		}
	}

	// One Message-ID per completion; every copy holds its subject only.
	copies, resent := 0, 0
	for _, s := range subs {
		var ids []string
		var msgs int
		for _, m := range e.smtp.Messages() {
			if strings.HasPrefix(m.MessageID, s.id+".completion") {
				msgs++
				if !slices.Contains(ids, m.MessageID) {
					ids = append(ids, m.MessageID)
				}
			}
		}
		if len(ids) > 1 {
			t.Errorf("request %s: completion emails with %d Message-IDs", s.id, len(ids))
		}
		if status[s.id] == "completed" && msgs == 0 {
			t.Errorf("request %s completed without a completion email", s.id)
		}
		resent += max(0, msgs-1)
		if status[s.id] != "completed" || (s.kind != "copy" && s.kind != "access") {
			continue
		}
		msg := e.smtp.WaitForMessage(t, s.id+".completion@datarights", 0)
		if len(msg.Attachments) != 1 {
			continue // sent as a link: the staging and delivery tests cover it
		}
		files := e.archive(t, msg)
		for name, data := range files {
			if !strings.HasSuffix(name, "users.json") {
				continue
			}
			var rows []map[string]any
			_ = json.Unmarshal(data, &rows)
			for _, row := range rows {
				if row["user_id"] != s.subject {
					t.Errorf("the copy of %s holds user %v", s.subject, row["user_id"])
				}
			}
		}
		copies++
	}

	// The window between a sent completion email and its record, as the
	// processes running at the end saw it (docs/performance.md).
	buckets := map[string]float64{}
	var order []string
	for _, p := range procs {
		resp, err := http.Get("http://" + p.addr + "/metrics")
		if err != nil {
			continue
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(raw), "\n") {
			if !strings.HasPrefix(line, "datarights_send_to_record_seconds_bucket") {
				continue
			}
			le := line[strings.Index(line, `le="`)+4:]
			le = le[:strings.Index(le, `"`)]
			v, _ := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
			if _, ok := buckets[le]; !ok {
				order = append(order, le)
			}
			buckets[le] += v
		}
	}
	var window []string
	for _, le := range order {
		window = append(window, fmt.Sprintf("≤%ss:%.0f", le, buckets[le]))
	}
	t.Logf("send-to-record window (cumulative completions): %s", strings.Join(window, " "))

	var kills int
	for _, p := range procs {
		kills += p.kills
	}
	byStatus := map[string]int{}
	for _, st := range status {
		byStatus[st]++
	}
	t.Logf("chaos: %d requests over %s, %d SIGKILLs, outages %v; settled in %s; statuses %v; %d copies opened; %d completion emails resent (same Message-ID)",
		n, chaosTime.Round(time.Second), kills, outages, settle.Round(time.Second), byStatus, copies, resent)
}
