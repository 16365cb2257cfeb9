package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/datarights/datarights/demo"
)

// loyaltyService is an internal service holding loyalty data, answering
// datarights' webhook contract on loopback. It verifies every call's
// signature the way docs/webhook.md says, and answers with answer.
type loyaltyService struct {
	t      *testing.T
	secret string
	server *httptest.Server
	answer func(w http.ResponseWriter, call loyaltyCall)

	mu    sync.Mutex
	calls []loyaltyCall
}

type loyaltyCall struct {
	Version     int    `json:"version"`
	RequestID   string `json:"request_id"`
	TaskID      string `json:"task_id"`
	Store       string `json:"store"`
	Action      string `json:"action"`
	CallbackURL string `json:"callback_url"`
	Subject     struct {
		Identities map[string]string `json:"identities"`
	} `json:"subject"`
	idempotencyKey string
}

func newLoyaltyService(t *testing.T, answer func(w http.ResponseWriter, call loyaltyCall)) *loyaltyService {
	t.Helper()
	var b [24]byte
	_, _ = rand.Read(b[:])
	s := &loyaltyService{t: t, secret: hex.EncodeToString(b[:]), answer: answer}
	s.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || !verifyDatarights(s.secret, r, body) {
			t.Errorf("a call to the loyalty service does not verify")
			http.Error(w, `{"error":"bad signature"}`, http.StatusUnauthorized)
			return
		}
		var call loyaltyCall
		if err := json.Unmarshal(body, &call); err != nil {
			t.Errorf("call: %v", err)
		}
		call.idempotencyKey = r.Header.Get("Idempotency-Key")
		s.mu.Lock()
		s.calls = append(s.calls, call)
		s.mu.Unlock()
		s.answer(w, call)
	}))
	t.Cleanup(s.server.Close)
	return s
}

func (s *loyaltyService) seen() []loyaltyCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// verifyDatarights is the receiving side of docs/webhook.md, written out
// without datarights' helpers: HMAC-SHA256 over "v2", the method, the
// request target, the timestamp, the nonce and the hex SHA-256 of the body,
// one per line; the timestamp within 5 minutes.
func verifyDatarights(secret string, r *http.Request, body []byte) bool {
	ts, nonce := r.Header.Get("X-Datarights-Timestamp"), r.Header.Get("X-Datarights-Nonce")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute || len(nonce) < 16 {
		return false
	}
	want := signature(secret, r.Method, r.RequestURI, ts, nonce, body)
	return hmac.Equal([]byte(want), []byte(r.Header.Get("X-Datarights-Signature")))
}

func signature(secret, method, target, ts, nonce string, body []byte) string {
	sum := sha256.Sum256(body)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v2\n" + method + "\n" + target + "\n" + ts + "\n" + nonce + "\n" + hex.EncodeToString(sum[:])))
	return "v2=" + hex.EncodeToString(mac.Sum(nil))
}

// signedHeaders are a callback's signing headers.
type signedHeaders struct{ ts, nonce, sig string }

// sign signs a POST of body to the path of callbackURL at t with secret and
// a fresh nonce, as a service signs its callback.
func sign(secret string, at time.Time, callbackURL string, body []byte) signedHeaders {
	u, err := url.Parse(callbackURL)
	if err != nil {
		panic(err)
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := signedHeaders{ts: strconv.FormatInt(at.Unix(), 10), nonce: hex.EncodeToString(b[:])}
	h.sig = signature(secret, http.MethodPost, u.RequestURI(), h.ts, h.nonce, body)
	return h
}

// withLoyalty starts datarights with the demo bank and the loyalty service
// as a webhook store of webank, its secret in an environment variable that
// only this test's configuration sees.
func withLoyalty(t *testing.T, svc *loyaltyService) *e2e {
	t.Helper()
	return withLoyaltyRotating(t, svc, "")
}

// withLoyaltyRotating is withLoyalty in the middle of a secret rotation:
// previous, when not empty, is the secret being replaced
// (webhook.previous_secret_env).
func withLoyaltyRotating(t *testing.T, svc *loyaltyService, previous string) *e2e {
	t.Helper()
	const env, previousEnv = "LOYALTY_WEBHOOK_SECRET", "LOYALTY_WEBHOOK_PREVIOUS" // seen only through this test's getenv
	rotation := ""
	if previous != "" {
		rotation = "      previous_secret_env: " + previousEnv + "\n"
	}
	e := setupE2E(t, false, fmt.Sprintf(`  - name: loyalty
    kind: webhook
    key: user_id
    products: [webank]
    webhook:
      url: %s/datarights
      secret_env: %s
%s      timeout: 10s
`, svc.server.URL, env, rotation))
	base := e.getenv
	e.getenv = func(k string) string {
		switch k {
		case env:
			return svc.secret
		case previousEnv:
			return previous
		}
		return base(k)
	}
	e.start()
	return e
}

// newAcceptingLoyaltyService is a loyalty service that answers every call
// 202: it will call back later (or a test will, for it).
func newAcceptingLoyaltyService(t *testing.T) *loyaltyService {
	t.Helper()
	return newLoyaltyService(t, func(w http.ResponseWriter, _ loyaltyCall) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"status":"accepted"}`) //nolint:errcheck
	})
}

// submitLoyaltyDelete files a staff delete for user and waits until its
// loyalty task waits for the service's callback; it returns the request's
// id.
func submitLoyaltyDelete(t *testing.T, e *e2e, user string) string {
	t.Helper()
	ticket := copyTicket(user)
	ticket["type"] = "delete"
	id := e.file(ticket)
	waitFor(t, 30*time.Second, "the loyalty task to wait", func() bool {
		task := e.task(id, "loyalty")
		return task != nil && task["status"] == "waiting"
	})
	return id
}

// TestWebhookCallbackDuringSecretRotation: with previous_secret_env set,
// a callback signed with the secret being replaced is accepted (the
// service has not switched yet), one signed with any other secret is not,
// and datarights' own calls are signed with the new secret only (the
// loyalty service checks them with it).
func TestWebhookCallbackDuringSecretRotation(t *testing.T) {
	t.Parallel()
	svc := newAcceptingLoyaltyService(t)
	const previous = "the-secret-being-replaced-0123456789"
	e := withLoyaltyRotating(t, svc, previous)
	id := submitLoyaltyDelete(t, e, "demo-user-9")
	calls := svc.seen()
	if len(calls) != 1 {
		t.Fatalf("calls = %+v", calls)
	}
	call := calls[0]
	result := []byte(`{"status":"done","found":true,"deleted":{"points":1}}`)
	if code, body := e.callback(call.CallbackURL, result, sign("some-other-secret-0123456789abcdef", time.Now(), call.CallbackURL, result)); code != http.StatusUnauthorized {
		t.Fatalf("callback signed with another secret = %d %v, want 401", code, body)
	}
	if code, answer := e.callback(call.CallbackURL, result, sign(previous, time.Now(), call.CallbackURL, result)); code != http.StatusOK || answer["status"] != "succeeded" {
		t.Fatalf("callback signed with the previous secret = %d %v, want 200 succeeded", code, answer)
	}
	e.waitStatus(id, "completed", 30*time.Second)
}

// callback posts body to the callback path of callbackURL on the service
// under test, with the given signing headers (those left empty are not
// sent).
func (e *e2e) callback(callbackURL string, body []byte, h signedHeaders) (int, map[string]any) {
	e.t.Helper()
	u, err := url.Parse(callbackURL)
	if err != nil {
		e.t.Fatal(err)
	}
	var headers []string
	for _, kv := range [][2]string{{"X-Datarights-Timestamp", h.ts}, {"X-Datarights-Nonce", h.nonce}, {"X-Datarights-Signature", h.sig}} {
		if kv[1] != "" {
			headers = append(headers, kv[0], kv[1])
		}
	}
	return e.call("POST", u.Path, "", string(body), headers...)
}

func (e *e2e) task(requestID, store string) map[string]any {
	e.t.Helper()
	_, b := e.call("GET", "/api/v1/requests/"+requestID, testToken, nil)
	for _, task := range asSlice(b["tasks"]) {
		if tm := task.(map[string]any); tm["store"] == store {
			return tm
		}
	}
	return nil
}

func loyaltyExport(userID string) string {
	return fmt.Sprintf(`{"status":"done","found":true,"datasets":[
  {"name":"points","category":"loyalty","columns":["user_id","points","reason"],
   "rows":[[%[1]q,120,"消费积分"],[%[1]q,30,"生日礼 🎂"]]},
  {"name":"coupons","category":"loyalty","columns":["user_id","code","store"],
   "rows":[[%[1]q,"CNY-2024","深圳南山店"]]}
]}`, userID)
}

// checkLoyaltyArchive checks the emailed archive holds the bank's data of
// userID and the loyalty service's datasets as it sent them.
func (e *e2e) checkLoyaltyArchive(userID string) {
	t := e.t
	t.Helper()
	msg := e.smtp.WaitForMessages(t, 1, 30*time.Second)[0]
	if len(msg.Attachments) != 1 {
		t.Fatalf("%d attachments", len(msg.Attachments))
	}
	files := e.archive(t, msg)
	want, err := demo.Counts(context.Background(), e.bankURL, userID)
	if err != nil {
		t.Fatal(err)
	}
	for table, n := range want {
		var rows []map[string]any
		if err := json.Unmarshal(files["data/demo_bank/"+table+".json"], &rows); err != nil || int64(len(rows)) != n {
			t.Errorf("bank %s: %d rows (%v), want %d; files %v", table, len(rows), err, n, keys(files))
		}
	}
	e.checkBankOnly(files, userID)

	var points, coupons []map[string]any
	if err := json.Unmarshal(files["data/loyalty/points.json"], &points); err != nil {
		t.Fatalf("points.json: %v; files %v", err, keys(files))
	}
	if err := json.Unmarshal(files["data/loyalty/coupons.json"], &coupons); err != nil {
		t.Fatalf("coupons.json: %v", err)
	}
	if len(points) != 2 || points[0]["reason"] != "消费积分" || points[1]["reason"] != "生日礼 🎂" || points[0]["points"] != 120.0 {
		t.Errorf("points = %v", points)
	}
	if len(coupons) != 1 || coupons[0]["store"] != "深圳南山店" || coupons[0]["user_id"] != userID {
		t.Errorf("coupons = %v", coupons)
	}
	var manifest struct {
		Files []struct {
			Path   string `json:"path"`
			Rows   int64  `json:"rows"`
			SHA256 string `json:"sha256"`
		} `json:"files"`
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil {
		t.Fatal(err)
	}
	listed := map[string]int64{}
	for _, f := range manifest.Files {
		sum := sha256.Sum256(files[f.Path])
		if hex.EncodeToString(sum[:]) != f.SHA256 {
			t.Errorf("manifest sha256 of %s does not match", f.Path)
		}
		listed[f.Path] = f.Rows
	}
	if listed["data/loyalty/points.json"] != 2 || listed["data/loyalty/coupons.json"] != 1 {
		t.Errorf("manifest = %v", listed)
	}
}

// TestWebhookSyncCopy: a copy across the bank and a webhook store that
// answers at once; the archive holds both.
func TestWebhookSyncCopy(t *testing.T) {
	t.Parallel()
	svc := newLoyaltyService(t, func(w http.ResponseWriter, call loyaltyCall) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, loyaltyExport(call.Subject.Identities["user_id"])) //nolint:errcheck
	})
	e := withLoyalty(t, svc)
	code, body := e.call("POST", "/api/v1/requests", testToken, copyTicket("demo-user-6"))
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	done := e.waitStatus(id, "completed", 60*time.Second)

	calls := svc.seen()
	if len(calls) != 1 {
		t.Fatalf("the service was called %d times, want 1", len(calls))
	}
	call := calls[0]
	task := e.task(id, "loyalty")
	if call.Version != 1 || call.Action != "export" || call.Store != "loyalty" || call.RequestID != id ||
		call.TaskID != task["id"] || call.idempotencyKey != task["id"] || call.Subject.Identities["user_id"] != "demo-user-6" ||
		!strings.HasSuffix(call.CallbackURL, "/api/v1/callbacks/tasks/"+call.TaskID) {
		t.Errorf("call = %+v", call)
	}
	report := task["report"].(map[string]any)
	if task["status"] != "succeeded" || report["resolved"] != true || len(asSlice(report["datasets"])) != 2 {
		t.Errorf("loyalty task = %v", task)
	}
	if hasAction(done, "task.waiting") {
		t.Errorf("a sync answer made the task wait: %v", auditActions(done))
	}
	e.checkLoyaltyArchive("demo-user-6")
}

// TestWebhookAsyncDelete: the service accepts the delete and calls back
// later. Forged callbacks — another secret, a stale timestamp, another
// target, a changed body or nonce, a v1 signature, no signature — are
// refused alike and change nothing; the signed one completes the request,
// its replay is refused (401), and a fresh one finds the task done (409).
func TestWebhookAsyncDelete(t *testing.T) {
	t.Parallel()
	svc := newAcceptingLoyaltyService(t)
	e := withLoyalty(t, svc)
	id := submitLoyaltyDelete(t, e, "demo-user-7")
	waitFor(t, 30*time.Second, "the loyalty task's call to be recorded", func() bool {
		_, b := e.call("GET", "/api/v1/requests/"+id, testToken, nil)
		return hasAction(b, "task.succeeded")
	})
	calls := svc.seen()
	if len(calls) != 1 || calls[0].Action != "delete" || calls[0].Subject.Identities["user_id"] != "demo-user-7" {
		t.Fatalf("calls = %+v", calls)
	}
	call := calls[0]
	if task := e.task(id, "loyalty"); call.TaskID != task["id"] {
		t.Fatalf("the call names task %s, the request has %v", call.TaskID, task["id"])
	}

	result := []byte(`{"status":"done","found":true,"deleted":{"points":3,"coupons":1}}`)
	now := time.Now()
	good := sign(svc.secret, now, call.CallbackURL, result)
	changed := []byte(`{"status":"done","found":true,"deleted":{"points":0,"coupons":0}}`)
	with := func(f func(h *signedHeaders)) signedHeaders { h := good; f(&h); return h }
	var unauthorized []string
	for name, forged := range map[string]struct {
		body []byte
		h    signedHeaders
	}{
		"another secret":    {result, sign("another-secret-0123456789abcdef", now, call.CallbackURL, result)},
		"stale timestamp":   {result, sign(svc.secret, now.Add(-10*time.Minute), call.CallbackURL, result)},
		"future timestamp":  {result, sign(svc.secret, now.Add(10*time.Minute), call.CallbackURL, result)},
		"another target":    {result, sign(svc.secret, now, call.CallbackURL+"x", result)},
		"changed body":      {changed, good},
		"changed timestamp": {result, with(func(h *signedHeaders) { h.ts = strconv.FormatInt(now.Unix()+1, 10) })},
		"changed nonce":     {result, with(func(h *signedHeaders) { h.nonce = strings.Repeat("0", 32) })},
		"v1 signature":      {result, with(func(h *signedHeaders) { h.sig = "v1=" + h.sig[3:] })},
		"no nonce":          {result, with(func(h *signedHeaders) { h.nonce = "" })},
		"no signature":      {result, with(func(h *signedHeaders) { h.sig = "" })},
		"no headers":        {result, signedHeaders{}},
	} {
		code, body := e.callback(call.CallbackURL, forged.body, forged.h)
		if code != http.StatusUnauthorized {
			t.Errorf("%s: callback = %d %v, want 401", name, code, body)
			continue
		}
		unauthorized = append(unauthorized, errorText(body))
	}
	// Every refusal says the same: nothing tells a forger what to fix.
	slices.Sort(unauthorized)
	if len(slices.Compact(unauthorized)) != 1 {
		t.Errorf("refusals differ: %v", unauthorized)
	}
	// A task that does not exist: 404 before any signature is checked.
	if code, body := e.callback(strings.Replace(call.CallbackURL, call.TaskID, "0190a000-0000-7000-8000-00000000dead", 1), result, good); code != http.StatusNotFound {
		t.Errorf("unknown task: %d %v, want 404", code, body)
	}
	// A result of the wrong shape, signed: refused, nothing changes.
	malformed := []byte(`{"status":"done","found":true,"datasets":[]}`)
	if code, body := e.callback(call.CallbackURL, malformed, sign(svc.secret, now, call.CallbackURL, malformed)); code != http.StatusBadRequest {
		t.Errorf("malformed result: %d %v, want 400", code, body)
	}
	// NUL characters, signed, where the report keeps text (a dataset's
	// name, the store's message): refused with a 400, as Postgres would
	// refuse them in the task's report, and nothing changes.
	for name, bad := range map[string][]byte{
		"escaped NUL in a dataset name": []byte(`{"status":"done","found":true,"deleted":{"po\u0000ints":3}}`),
		"raw NUL in a dataset name":     []byte("{\"status\":\"done\",\"found\":true,\"deleted\":{\"po\x00ints\":3}}"),
		"escaped NUL in a message":      []byte(`{"status":"failed","error":"no\u0000thing"}`),
	} {
		if code, body := e.callback(call.CallbackURL, bad, sign(svc.secret, now, call.CallbackURL, bad)); code != http.StatusBadRequest {
			t.Errorf("%s: %d %v, want 400", name, code, body)
		}
	}
	// A delete result over 64 KiB, signed: 413 naming the body.
	large := append([]byte(`{"status":"done","found":true,"deleted":{"points":3}}`), bytes.Repeat([]byte(" "), 64<<10)...)
	if code, body := e.callback(call.CallbackURL, large, sign(svc.secret, now, call.CallbackURL, large)); code != http.StatusRequestEntityTooLarge ||
		!strings.Contains(fmt.Sprint(body), "body") {
		t.Errorf("large result: %d %v, want 413 naming the body", code, body)
	}
	_, still := e.call("GET", "/api/v1/requests/"+id, testToken, nil)
	if task := e.task(id, "loyalty"); still["status"] != "in_progress" || task["status"] != "waiting" || hasAction(still, "task.called_back") {
		t.Fatalf("after forged callbacks: request %v, task %v, audit %v", still["status"], task["status"], auditActions(still))
	}

	code, answer := e.callback(call.CallbackURL, result, good)
	if code != http.StatusOK || answer["status"] != "succeeded" || answer["task_id"] != call.TaskID {
		t.Fatalf("signed callback = %d %v", code, answer)
	}
	if len(answer) != 2 {
		t.Errorf("the callback's answer says more than the task's fate: %v", answer)
	}
	// The same callback again, within the window: its nonce is spent.
	if code, body := e.callback(call.CallbackURL, result, good); code != http.StatusUnauthorized {
		t.Errorf("replayed callback = %d %v, want 401", code, body)
	}
	// Signed afresh: the task is done.
	if code, body := e.callback(call.CallbackURL, result, sign(svc.secret, time.Now(), call.CallbackURL, result)); code != http.StatusConflict {
		t.Errorf("repeated callback = %d %v, want 409", code, body)
	}

	done := e.waitStatus(id, "completed", 30*time.Second)
	for _, want := range []string{"task.waiting", "task.called_back", "request.completed"} {
		if !hasAction(done, want) {
			t.Errorf("audit lacks %s: %v", want, auditActions(done))
		}
	}
	for _, ev := range asSlice(done["audit"]) {
		if ev := ev.(map[string]any); ev["action"] == "task.called_back" && ev["actor"] != "store:loyalty" {
			t.Errorf("task.called_back by %v, want store:loyalty", ev["actor"])
		}
	}
	task := e.task(id, "loyalty")
	report := task["report"].(map[string]any)
	if task["status"] != "succeeded" || report["resolved"] != true || len(asSlice(report["datasets"])) != 2 {
		t.Errorf("loyalty task = %v", task)
	}
	if len(svc.seen()) != 1 {
		t.Errorf("the service was called %d times, want 1", len(svc.seen()))
	}
	e.smtp.WaitForMessages(t, 1, 30*time.Second)
}

// TestWebhookAsyncCopyCallsBackAtOnce: the service answers 202 and calls
// back with the data straight away, racing the worker's record of the 202;
// the datasets called back end up in the archive.
func TestWebhookAsyncCopyCallsBackAtOnce(t *testing.T) {
	t.Parallel()
	var (
		e      *e2e
		ready  = make(chan struct{})
		wg     sync.WaitGroup
		status = make(chan int, 4)
	)
	var svc *loyaltyService
	svc = newLoyaltyService(t, func(w http.ResponseWriter, call loyaltyCall) {
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"status":"accepted"}`) //nolint:errcheck
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-ready
			result := []byte(loyaltyExport(call.Subject.Identities["user_id"]))
			h := sign(svc.secret, time.Now(), call.CallbackURL, result)
			u, _ := url.Parse(call.CallbackURL)
			req, _ := http.NewRequest("POST", e.base+u.Path, bytes.NewReader(result))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Datarights-Timestamp", h.ts)
			req.Header.Set("X-Datarights-Nonce", h.nonce)
			req.Header.Set("X-Datarights-Signature", h.sig)
			resp, err := e.client.Do(req)
			if err != nil {
				t.Errorf("callback: %v", err)
				status <- 0
				return
			}
			resp.Body.Close()
			status <- resp.StatusCode
		}()
	})
	e = withLoyalty(t, svc)
	close(ready)
	t.Cleanup(wg.Wait)
	code, body := e.call("POST", "/api/v1/requests", testToken, copyTicket("demo-user-8"))
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	select {
	case got := <-status:
		if got != http.StatusOK {
			t.Fatalf("callback = %d, want 200", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the service never called back")
	}
	done := e.waitStatus(id, "completed", 60*time.Second)
	if !hasAction(done, "task.called_back") {
		t.Errorf("audit lacks task.called_back: %v", auditActions(done))
	}
	e.checkLoyaltyArchive("demo-user-8")
}
