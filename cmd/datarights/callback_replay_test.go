package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// capturedCallback is a signed callback as an attacker on the path between
// a service and datarights sees it: body and headers, all valid.
type capturedCallback struct {
	body []byte
	h    signedHeaders
}

// snapshot is every row of the service's database that a callback about
// the given requests could change, and what is staged for them: the
// requests, their tasks (with their results), audit events and notices,
// their jobs, and the spent nonces.
func (e *e2e) snapshot(ids ...string) string {
	e.t.Helper()
	ctx := context.Background()
	var out strings.Builder
	for _, q := range []string{
		// sla_check_at is the SLA sweep's own schedule, which a periodic
		// sweep may move at any moment: not a change of the request.
		`SELECT coalesce(json_agg(to_jsonb(x) - 'sla_check_at' ORDER BY x.id), '[]') FROM requests x WHERE id::text = ANY($1)`,
		`SELECT coalesce(json_agg(x ORDER BY x.id), '[]') FROM tasks x WHERE request_id::text = ANY($1)`,
		`SELECT coalesce(json_agg(x ORDER BY x.id), '[]') FROM audit_events x WHERE request_id::text = ANY($1)`,
		`SELECT coalesce(json_agg(x ORDER BY x.request_id, x.recipient), '[]') FROM recipient_notices x WHERE request_id::text = ANY($1)`,
		`SELECT coalesce(json_agg(x ORDER BY x.request_id, x.store), '[]') FROM retention_holds x WHERE request_id::text = ANY($1)`,
		`SELECT coalesce(json_agg(json_build_object('id', x.id, 'kind', x.kind, 'args', x.args) ORDER BY x.id), '[]')
			FROM river_job x WHERE x.args->>'request_id' = ANY($1)`,
		`SELECT json_build_object('nonces', count(*))::text FROM webhook_nonces WHERE $1::text[] IS NOT NULL`,
	} {
		var rows string
		if err := e.db.QueryRow(ctx, q, ids).Scan(&rows); err != nil {
			e.t.Fatalf("snapshot: %s: %v", q, err)
		}
		out.WriteString(rows + "\n")
	}
	dataDir := filepath.Join(filepath.Dir(e.configPath), "data")
	for _, id := range ids {
		root := filepath.Join(dataDir, "staging", id)
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			data, _ := os.ReadFile(path)
			fmt.Fprintf(&out, "staged %s %d bytes %x\n", strings.TrimPrefix(path, root), len(data), data[:min(len(data), 16)])
			return nil
		})
	}
	return out.String()
}

// post sends a captured (or forged) callback to the path of target (a
// callback_url or ack_url).
func (e *e2e) post(target string, c capturedCallback) (int, map[string]any) {
	e.t.Helper()
	return e.callback(target, c.body, c.h)
}

// urlPath is the path of a URL datarights handed out.
func urlPath(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Path
}

// waitWaiting waits until the loyalty task of each request waits for its
// callback and every other task has finished, so nothing moves on its own.
func (e *e2e) waitWaiting(ids ...string) {
	e.t.Helper()
	for _, id := range ids {
		waitFor(e.t, 60*time.Second, "request "+id+" to wait for loyalty only", func() bool {
			_, b := e.call("GET", "/api/v1/requests/"+id, testToken, nil)
			tasks := asSlice(b["tasks"])
			if b["status"] != "in_progress" || len(tasks) < 2 {
				return false
			}
			for _, task := range tasks {
				tm := task.(map[string]any)
				if want := map[bool]string{true: "waiting", false: "succeeded"}[tm["store"] == "loyalty"]; tm["status"] != want {
					return false
				}
			}
			return true
		})
	}
}

// TestCallbacksCannotBeReplayed: the review's attack, a captured valid
// callback replayed onto another target, fails. A loyalty service's
// callback for person A's copy, replayed onto person B's copy (and onto a
// deletion), and its callback for C's deletion replayed onto D's deletion,
// are 401 — as are a reused nonce, a wrong method, a stale timestamp, a
// replay onto the same task — and change no row. So is an insurer's
// acknowledgement for C's notice replayed onto D's. The genuine callbacks
// then complete B and D, and B's copy holds B's loyalty rows, not A's.
func TestCallbacksCannotBeReplayed(t *testing.T) {
	t.Parallel()
	svc := newAcceptingLoyaltyService(t)

	var secret [16]byte
	_, _ = rand.Read(secret[:])
	insurerSecret := hex.EncodeToString(secret[:])
	var (
		mu      sync.Mutex
		notices = map[string]map[string]any{} // by request id
	)
	insurer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !verifyDatarights(insurerSecret, r, body) {
			t.Errorf("a notice to the insurer does not verify")
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var call map[string]any
		_ = json.Unmarshal(body, &call)
		mu.Lock()
		notices[call["request_id"].(string)] = call
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(insurer.Close)

	const (
		loyaltyEnv = "LOYALTY_WEBHOOK_SECRET"
		insurerEnv = "INSURER_WEBHOOK_SECRET"
	)
	e := setupE2E(t, false, fmt.Sprintf(`  - name: loyalty
    kind: webhook
    key: user_id
    products: [webank]
    webhook:
      url: %s/datarights
      secret_env: %s
      timeout: 10s

recipients:
  - name: insurer
    products: [webank]
    webhook:
      url: %s/erasures
      secret_env: %s
`, svc.server.URL, loyaltyEnv, insurer.URL, insurerEnv))
	base := e.getenv
	e.getenv = func(k string) string {
		switch k {
		case loyaltyEnv:
			return svc.secret
		case insurerEnv:
			return insurerSecret
		}
		return base(k)
	}
	e.start()

	submit := func(kind, user string) string {
		ticket := copyTicket(user)
		ticket["type"] = kind
		code, body := e.call("POST", "/api/v1/requests", testToken, ticket)
		if code != http.StatusCreated {
			t.Fatalf("submit %s for %s = %d %v", kind, user, code, body)
		}
		return body["id"].(string)
	}
	copyA, copyB := submit("copy", "demo-user-3"), submit("copy", "demo-user-4")
	deleteC, deleteD := submit("delete", "demo-user-9"), submit("delete", "demo-user-10")
	e.waitWaiting(copyA, copyB, deleteC, deleteD)
	calls := map[string]loyaltyCall{}
	for _, c := range svc.seen() {
		calls[c.RequestID] = c
	}
	if len(calls) != 4 {
		t.Fatalf("the loyalty service saw calls for %d requests, want 4", len(calls))
	}
	cbURL := func(id string) string { return calls[id].CallbackURL }

	// The service calls back for A and C, and an attacker captures both.
	now := time.Now()
	result := func(id string) []byte {
		if calls[id].Action == "export" {
			return []byte(loyaltyExport(calls[id].Subject.Identities["user_id"]))
		}
		return []byte(`{"status":"done","found":true,"deleted":{"points":4,"coupons":1}}`)
	}
	capture := func(id string) capturedCallback {
		body := result(id)
		return capturedCallback{body: body, h: sign(svc.secret, now, calls[id].CallbackURL, body)}
	}
	cbA, cbC := capture(copyA), capture(deleteC)
	for id, cb := range map[string]capturedCallback{copyA: cbA, deleteC: cbC} {
		if code, body := e.post(cbURL(id), cb); code != http.StatusOK || body["status"] != "succeeded" {
			t.Fatalf("the genuine callback for %s = %d %v", id, code, body)
		}
	}

	// Replays and forgeries, each 401 and none changing anything.
	before := e.snapshot(copyB, deleteD)
	bodyB := result(copyB)
	with := func(h signedHeaders, f func(*signedHeaders)) signedHeaders { f(&h); return h }
	signedAs := func(method string) signedHeaders {
		h := sign(svc.secret, now, calls[copyB].CallbackURL, bodyB)
		h.sig = signature(svc.secret, method, urlPath(t, cbURL(copyB)), h.ts, h.nonce, bodyB)
		return h
	}
	attacks := []struct {
		name, target string
		cb           capturedCallback
	}{
		{"A's copy callback replayed onto B's copy", cbURL(copyB), cbA},
		{"A's copy callback replayed onto D's deletion", cbURL(deleteD), cbA},
		{"C's deletion callback replayed onto D's deletion", cbURL(deleteD), cbC},
		{"C's deletion callback replayed onto B's copy", cbURL(copyB), cbC},
		{"A's copy callback replayed onto A", cbURL(copyA), cbA},
		{"B's data signed for A's task, sent to B", cbURL(copyB), capturedCallback{body: bodyB, h: sign(svc.secret, now, calls[copyA].CallbackURL, bodyB)}},
		{"B's callback reusing A's spent nonce", cbURL(copyB), capturedCallback{body: bodyB,
			h: with(sign(svc.secret, now, calls[copyB].CallbackURL, bodyB), func(h *signedHeaders) {
				h.nonce = cbA.h.nonce
				h.sig = signature(svc.secret, "POST", urlPath(t, cbURL(copyB)), h.ts, h.nonce, bodyB)
			})}},
		{"B's callback signed for PUT", cbURL(copyB), capturedCallback{body: bodyB, h: signedAs(http.MethodPut)}},
		{"B's callback signed for GET", cbURL(copyB), capturedCallback{body: bodyB, h: signedAs(http.MethodGet)}},
		{"B's callback signed 6 minutes ago", cbURL(copyB), capturedCallback{body: bodyB, h: sign(svc.secret, now.Add(-6*time.Minute), calls[copyB].CallbackURL, bodyB)}},
		{"B's callback signed 6 minutes ahead", cbURL(copyB), capturedCallback{body: bodyB, h: sign(svc.secret, now.Add(6*time.Minute), calls[copyB].CallbackURL, bodyB)}},
	}
	for _, a := range attacks {
		if code, body := e.post(a.target, a.cb); code != http.StatusUnauthorized {
			t.Errorf("%s: %d %v, want 401", a.name, code, body)
		}
	}
	if after := e.snapshot(copyB, deleteD); after != before {
		t.Errorf("the refused callbacks changed rows:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// The genuine callbacks for B and D complete them; B's copy holds B's
	// loyalty rows only.
	for _, id := range []string{copyB, deleteD} {
		if code, body := e.post(cbURL(id), capture(id)); code != http.StatusOK {
			t.Fatalf("the genuine callback for %s = %d %v", id, code, body)
		}
	}
	for _, id := range []string{copyA, copyB, deleteC, deleteD} {
		e.waitStatus(id, "completed", 60*time.Second)
	}
	files := e.archive(t, e.smtp.WaitForMessage(t, copyB+".completion@datarights", 30*time.Second))
	var points []map[string]any
	if err := json.Unmarshal(files["data/loyalty/points.json"], &points); err != nil || len(points) != 2 {
		t.Fatalf("B's loyalty points: %v %v", points, err)
	}
	for _, p := range points {
		if p["user_id"] != "demo-user-4" {
			t.Errorf("B's copy holds loyalty rows of %v", p["user_id"])
		}
	}

	// The insurer is told of C's and D's deletions and acknowledges C's; the
	// captured acknowledgement replayed onto D's (or C's again) is refused.
	waitFor(t, 60*time.Second, "the insurer's notices", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return notices[deleteC] != nil && notices[deleteD] != nil
	})
	ackURL := func(id string) string {
		mu.Lock()
		defer mu.Unlock()
		return notices[id]["ack_url"].(string)
	}
	waitFor(t, 60*time.Second, "the notices recorded as sent", func() bool {
		for _, id := range []string{deleteC, deleteD} {
			_, b := e.call("GET", "/api/v1/requests/"+id, testToken, nil)
			if n := recipientNotice(t, b, "insurer"); n["status"] != "sent" {
				return false
			}
		}
		return true
	})
	ack := []byte(`{"acknowledged": true, "note": "policy records erased"}`)
	ackC := capturedCallback{body: ack, h: sign(insurerSecret, time.Now(), ackURL(deleteC), ack)}
	if code, body := e.callback(ackURL(deleteC), ack, ackC.h); code != http.StatusOK || body["status"] != "acknowledged" {
		t.Fatalf("the insurer's acknowledgement of C = %d %v", code, body)
	}
	before = e.snapshot(deleteD)
	ackURLC, ackD := ackURL(deleteC), ackURL(deleteD)
	for name, a := range map[string]struct {
		target string
		cb     capturedCallback
	}{
		"C's acknowledgement replayed onto D": {ackD, ackC},
		"C's acknowledgement replayed onto C": {ackURLC, ackC},
		"D's acknowledgement signed for C":    {ackD, capturedCallback{body: ack, h: sign(insurerSecret, time.Now(), ackURLC, ack)}},
		"D's acknowledgement reusing C's nonce": {ackD, capturedCallback{body: ack, h: with(sign(insurerSecret, time.Now(), ackD, ack), func(h *signedHeaders) {
			h.nonce = ackC.h.nonce
			h.sig = signature(insurerSecret, "POST", urlPath(t, ackD), h.ts, h.nonce, ack)
		})}},
		"D's acknowledgement signed with the loyalty secret": {ackD, capturedCallback{body: ack, h: sign(svc.secret, time.Now(), ackD, ack)}},
	} {
		if code, body := e.post(a.target, a.cb); code != http.StatusUnauthorized {
			t.Errorf("%s: %d %v, want 401", name, code, body)
		}
	}
	if after := e.snapshot(deleteD); after != before {
		t.Errorf("the refused acknowledgements changed rows:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	_, b := e.call("GET", "/api/v1/requests/"+deleteD, testToken, nil)
	if n := recipientNotice(t, b, "insurer"); n["status"] != "sent" || n["acknowledged_at"] != nil {
		t.Errorf("D's notice after the replays: %v", n)
	}

	// D's own acknowledgement is accepted.
	if code, body := e.post(ackD, capturedCallback{body: ack, h: sign(insurerSecret, time.Now(), ackD, ack)}); code != http.StatusOK {
		t.Errorf("the insurer's acknowledgement of D = %d %v", code, body)
	}
}
