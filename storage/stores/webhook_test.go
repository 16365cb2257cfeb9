package stores_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/exporters"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage/stores"
)

const webhookSecret = "0123456789abcdef-test-webhook-secret"

// A subject whose identities must never show in an error.
var webhookSubject = rights.Subject{Identities: map[string]string{"user_id": "u-secret-42", "email": "zhang.san@example.com"}}

var webhookTask = stores.TaskRef{RequestID: "0190a000-0000-7000-8000-000000000001", TaskID: "0190a000-0000-7000-8000-000000000002",
	CallbackURL: "https://datarights.example/api/v1/callbacks/tasks/0190a000-0000-7000-8000-000000000002"}

// webhookCallBody is a call as the service sees it.
type webhookCallBody struct {
	Version     int    `json:"version"`
	RequestID   string `json:"request_id"`
	TaskID      string `json:"task_id"`
	Store       string `json:"store"`
	Action      string `json:"action"`
	CallbackURL string `json:"callback_url"`
	Subject     struct {
		Identities map[string]string `json:"identities"`
	} `json:"subject"`
	Purposes []string `json:"purposes"`
}

// verifySignature checks a call the way docs/webhook.md tells a service to,
// without the package's helpers: HMAC-SHA256 over "v2", the method, the
// request target, the timestamp, the nonce and the hex SHA-256 of the body,
// one per line, hex, prefixed "v2=", timestamp within five minutes.
func verifySignature(secret string, r *http.Request, body []byte) bool {
	ts := r.Header.Get("X-Datarights-Timestamp")
	nonce := r.Header.Get("X-Datarights-Nonce")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute || len(nonce) < 16 {
		return false
	}
	sum := sha256.Sum256(body)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v2\n" + r.Method + "\n" + r.RequestURI + "\n" + ts + "\n" + nonce + "\n" + hex.EncodeToString(sum[:])))
	want := "v2=" + hex.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(want), []byte(r.Header.Get("X-Datarights-Signature")))
}

// webhookService is a service on loopback that checks every call's signature
// and answers with answer.
type webhookService struct {
	t      *testing.T
	server *httptest.Server
	mu     sync.Mutex
	calls  []webhookCallBody
	keys   []string // Idempotency-Key of each call
}

func newWebhookService(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, call webhookCallBody)) *webhookService {
	t.Helper()
	s := &webhookService{t: t}
	s.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("call is %s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
		}
		if !verifySignature(webhookSecret, r, body) {
			t.Errorf("the call's signature does not verify")
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var call webhookCallBody
		if err := json.Unmarshal(body, &call); err != nil {
			t.Errorf("call is not JSON: %v", err)
		}
		s.mu.Lock()
		s.calls = append(s.calls, call)
		s.keys = append(s.keys, r.Header.Get("Idempotency-Key"))
		s.mu.Unlock()
		answer(w, r, call)
	}))
	t.Cleanup(s.server.Close)
	return s
}

// seen returns the calls so far and their Idempotency-Keys.
func (s *webhookService) seen() ([]webhookCallBody, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls), slices.Clone(s.keys)
}

func (s *webhookService) connector(timeout time.Duration) *stores.Webhook {
	s.t.Helper()
	return newWebhookConnector(s.t, s.server.URL+"/datarights", timeout)
}

func newWebhookConnector(t *testing.T, url string, timeout time.Duration) *stores.Webhook {
	t.Helper()
	w, err := stores.NewWebhook(config.Store{Name: "loyalty", Kind: "webhook", Key: "user_id",
		Webhook: &config.WebhookStore{URL: url, Secret: webhookSecret, Timeout: timeout}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func answerJSON(status int, body string) func(http.ResponseWriter, *http.Request, webhookCallBody) {
	return func(w http.ResponseWriter, _ *http.Request, _ webhookCallBody) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body) //nolint:errcheck
	}
}

func taskCtx(t *testing.T) context.Context {
	return stores.WithTask(t.Context(), webhookTask)
}

// checkNoPersonalData fails if err's text holds an identity or a value from
// the answers.
func checkNoPersonalData(t *testing.T, err error) {
	t.Helper()
	for _, secret := range []string{"u-secret-42", "zhang.san", "张三", "深圳", "PRIVATE-ROW-VALUE", webhookSecret} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q holds %q", err, secret)
		}
	}
}

const twoDatasets = `{"status":"done","found":true,"datasets":[
 {"name":"points","category":"loyalty","columns":["id","user_id","points","reason","earned_at"],
  "rows":[[1,"u-secret-42",120,"消费积分 张三","2024-05-01T08:00:00Z"],
          [2,"u-secret-42",12345678901234567890,"生日礼 🎂",null]]},
 {"name":"addresses","columns":["user_id","address","tags"],
  "rows":[["u-secret-42","深圳市南山区科技园",{"primary":true,"labels":["家","work"]}]]},
 {"name":"coupons","category":"loyalty","columns":["code"],"rows":[]}
]}`

func TestWebhookSyncExportStreamsDatasets(t *testing.T) {
	t.Parallel()
	svc := newWebhookService(t, answerJSON(http.StatusOK, twoDatasets))
	sink := &memSink{}
	report, err := svc.connector(0).Export(taskCtx(t), webhookSubject, sink)
	if err != nil {
		t.Fatal(err)
	}

	calls, keys := svc.seen()
	if len(calls) != 1 {
		t.Fatalf("%d calls, want 1", len(calls))
	}
	call := calls[0]
	if call.Version != 1 || call.Action != "export" || call.Store != "loyalty" || call.RequestID != webhookTask.RequestID ||
		call.TaskID != webhookTask.TaskID || call.CallbackURL != webhookTask.CallbackURL {
		t.Errorf("call = %+v", call)
	}
	if call.Subject.Identities["user_id"] != "u-secret-42" || call.Subject.Identities["email"] != "zhang.san@example.com" {
		t.Errorf("call identities = %v", call.Subject.Identities)
	}
	if keys[0] != webhookTask.TaskID {
		t.Errorf("Idempotency-Key = %q, want the task id", keys[0])
	}

	if !report.Resolved || report.Rows() != 3 || len(report.Datasets) != 3 {
		t.Fatalf("report = %+v", report)
	}
	if d := report.Datasets[0]; d.Name != "points" || d.Category != "loyalty" || d.Rows != 2 {
		t.Errorf("points report = %+v", d)
	}
	if d := report.Datasets[1]; d.Name != "addresses" || d.Category != "" || d.Rows != 1 {
		t.Errorf("addresses report = %+v", d)
	}
	if d := report.Datasets[2]; d.Name != "coupons" || d.Rows != 0 {
		t.Errorf("coupons report = %+v", d)
	}
	if len(sink.datasets) != 3 || !sink.datasets[0].closed || !sink.datasets[1].closed || !sink.datasets[2].closed {
		t.Fatalf("sink datasets = %d, all closed?", len(sink.datasets))
	}
	points := sink.datasets[0]
	if !slices.Equal(points.columns, []string{"id", "user_id", "points", "reason", "earned_at"}) {
		t.Errorf("columns = %v", points.columns)
	}
	if got := points.column(t, "reason"); got[0] != "消费积分 张三" || got[1] != "生日礼 🎂" {
		t.Errorf("reasons = %v", got)
	}
	// Numbers keep every digit.
	if got := points.column(t, "points"); got[1] != json.Number("12345678901234567890") {
		t.Errorf("points = %#v", got)
	}
	if got := sink.datasets[1].column(t, "address"); got[0] != "深圳市南山区科技园" {
		t.Errorf("address = %v", got)
	}
}

// The answer staged through the real staging sink: the files hold the
// Chinese text as written and exact numbers.
func TestWebhookSyncExportIntoStaging(t *testing.T) {
	t.Parallel()
	svc := newWebhookService(t, answerJSON(http.StatusOK, twoDatasets))
	staging := exporters.NewStaging(t.TempDir())
	sink, err := staging.Sink(webhookTask.RequestID, "loyalty")
	if err != nil {
		t.Fatal(err)
	}
	report, err := svc.connector(0).Export(taskCtx(t), webhookSubject, sink)
	if err != nil {
		t.Fatal(err)
	}
	readStaged := func(ds rights.DatasetReport) []byte {
		t.Helper()
		rc, err := exporters.OpenStaged(staging.Dir(webhookTask.RequestID), "loyalty", ds)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		raw, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	raw := readStaged(report.Datasets[0])
	var rows []map[string]any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&rows); err != nil {
		t.Fatalf("staged points: %v\n%s", err, raw)
	}
	if len(rows) != 2 || rows[0]["reason"] != "消费积分 张三" || rows[1]["points"] != json.Number("12345678901234567890") || rows[1]["earned_at"] != nil {
		t.Errorf("staged points = %v", rows)
	}
	raw = readStaged(report.Datasets[1])
	if !strings.Contains(string(raw), `"tags":{"labels":["家","work"],"primary":true}`) {
		t.Errorf("staged addresses = %s", raw)
	}
}

func TestWebhookSyncDelete(t *testing.T) {
	t.Parallel()
	svc := newWebhookService(t, answerJSON(http.StatusOK, `{"status":"done","found":true,"deleted":{"points":2,"addresses":1,"coupons":0}}`))
	report, err := svc.connector(0).Delete(taskCtx(t), webhookSubject)
	if err != nil {
		t.Fatal(err)
	}
	if calls, _ := svc.seen(); calls[0].Action != "delete" {
		t.Errorf("action = %q", calls[0].Action)
	}
	want := []rights.DatasetReport{{Name: "addresses", Rows: 1}, {Name: "coupons", Rows: 0}, {Name: "points", Rows: 2}}
	if !report.Resolved || !slices.Equal(report.Datasets, want) {
		t.Errorf("report = %+v, want resolved and %+v", report, want)
	}

	notFound := newWebhookService(t, answerJSON(http.StatusOK, `{"status":"done","found":false,"deleted":{}}`))
	report, err = notFound.connector(0).Delete(taskCtx(t), webhookSubject)
	if err != nil || report.Resolved || len(report.Datasets) != 0 {
		t.Errorf("not found: report %+v, err %v", report, err)
	}
}

func TestWebhookWithdrawConsent(t *testing.T) {
	t.Parallel()
	svc := newWebhookService(t, answerJSON(http.StatusOK, `{"status":"done","found":true,"deleted":{"ad_profile":1}}`))
	report, err := svc.connector(0).WithdrawConsent(taskCtx(t), webhookSubject, []string{"location", "personalised_ads"}, rights.EraseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	calls, _ := svc.seen()
	if calls[0].Action != "withdraw_consent" || !slices.Equal(calls[0].Purposes, []string{"location", "personalised_ads"}) {
		t.Errorf("call = %+v", calls[0])
	}
	if !report.Resolved || len(report.Datasets) != 1 || report.Datasets[0].Rows != 1 {
		t.Errorf("report = %+v", report)
	}
	// An export's datasets are not a withdrawal's answer.
	bad := newWebhookService(t, answerJSON(http.StatusOK, `{"status":"done","found":true,"datasets":[]}`))
	if _, err := bad.connector(0).WithdrawConsent(taskCtx(t), webhookSubject, []string{"location"}, rights.EraseOptions{}); err == nil {
		t.Error("a withdrawal answered with datasets was accepted")
	}
}

func TestWebhookPrecheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status        int
		answer        string
		blocked, fail bool
		reason        string
	}{
		{http.StatusOK, `{"allowed": true}`, false, false, ""},
		{http.StatusOK, `{"allowed": false, "reason": "balance ¥12.30"}`, true, false, "balance ¥12.30"},
		{http.StatusOK, `{"reason": "no verdict"}`, false, true, ""},
		{http.StatusServiceUnavailable, `{}`, false, true, ""},
	} {
		var got map[string]any
		svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if !verifySignature(webhookSecret, r, body) {
				http.Error(w, "unsigned", http.StatusUnauthorized)
				return
			}
			_ = json.Unmarshal(body, &got)
			w.WriteHeader(tc.status)
			io.WriteString(w, tc.answer)
		}))
		poster := stores.NewSignedPoster("precheck balance", svc.URL, webhookSecret, time.Second)
		blocked, reason, err := stores.WebhookPrecheck(t.Context(), poster, webhookTask.RequestID, "balance", webhookSubject)
		svc.Close()
		if (err != nil) != tc.fail || blocked != tc.blocked || reason != tc.reason {
			t.Errorf("%d %s: blocked %v reason %q err %v", tc.status, tc.answer, blocked, reason, err)
		}
		if err != nil {
			checkNoPersonalData(t, err)
		}
		if got["kind"] != "cancel_account.precheck" || got["precheck"] != "balance" {
			t.Errorf("call = %v", got)
		}
	}
}

func TestWebhookAcceptedWaitsForCallback(t *testing.T) {
	t.Parallel()
	svc := newWebhookService(t, answerJSON(http.StatusAccepted, `{"status":"accepted"}`))
	conn := svc.connector(0)
	for _, run := range []func() error{
		func() error { _, err := conn.Export(taskCtx(t), webhookSubject, &memSink{}); return err },
		func() error { _, err := conn.Delete(taskCtx(t), webhookSubject); return err },
	} {
		err := run()
		var waiting *rights.AwaitingConfirmation
		if !errors.As(err, &waiting) {
			t.Fatalf("202 gave %v, want *rights.AwaitingConfirmation", err)
		}
		if waiting.Instructions != "waiting for loyalty to call back" {
			t.Errorf("instructions = %q", waiting.Instructions)
		}
	}
	// Both calls name the same task: the service sees the same key.
	if _, keys := svc.seen(); len(keys) != 2 || keys[0] != keys[1] {
		t.Errorf("idempotency keys = %v", keys)
	}

	bad := newWebhookService(t, answerJSON(http.StatusAccepted, `{"status":"done"}`))
	if _, err := bad.connector(0).Delete(taskCtx(t), webhookSubject); err == nil || errors.As(err, new(*rights.AwaitingConfirmation)) {
		t.Errorf("202 with a wrong body = %v, want an error", err)
	}
}

func TestWebhookErrorStatuses(t *testing.T) {
	t.Parallel()
	var redirected atomic.Bool
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { redirected.Store(true) }))
	t.Cleanup(target.Close)
	for _, tc := range []struct {
		status    int
		permanent bool
	}{
		{http.StatusInternalServerError, false},
		{http.StatusBadGateway, false},
		{http.StatusServiceUnavailable, false},
		{http.StatusRequestTimeout, false},
		{http.StatusTooManyRequests, false},
		{http.StatusBadRequest, true},
		{http.StatusUnauthorized, true},
		{http.StatusNotFound, true},
		{http.StatusUnprocessableEntity, true},
		{http.StatusTemporaryRedirect, true},
		{http.StatusNoContent, true},
	} {
		svc := newWebhookService(t, func(w http.ResponseWriter, _ *http.Request, call webhookCallBody) {
			if tc.status == http.StatusTemporaryRedirect {
				w.Header().Set("Location", target.URL)
			}
			w.WriteHeader(tc.status)
			// An error page that quotes the call must not reach the error.
			io.WriteString(w, "PRIVATE-ROW-VALUE for "+call.Subject.Identities["user_id"]) //nolint:errcheck
		})
		_, err := svc.connector(0).Export(taskCtx(t), webhookSubject, &memSink{})
		var we *stores.WebhookError
		if !errors.As(err, &we) {
			t.Errorf("%d: error %v is not a *stores.WebhookError", tc.status, err)
			continue
		}
		if we.Status != tc.status || we.Permanent != tc.permanent || we.Store != "loyalty" {
			t.Errorf("%d: error = %+v, want permanent %v", tc.status, we, tc.permanent)
		}
		if !strings.Contains(err.Error(), strconv.Itoa(tc.status)) {
			t.Errorf("%d: error %q does not name the status", tc.status, err)
		}
		checkNoPersonalData(t, err)
	}
	if redirected.Load() {
		t.Error("the redirect was followed")
	}

	// No answer at all: temporary.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	_, err := newWebhookConnector(t, dead.URL, 0).Delete(taskCtx(t), webhookSubject)
	var we *stores.WebhookError
	if !errors.As(err, &we) || we.Permanent || we.Status != 0 {
		t.Errorf("unreachable service: %v", err)
	}
}

func TestWebhookMalformedAnswersAreRefused(t *testing.T) {
	t.Parallel()
	cols := `"columns":["a","b"]`
	for _, tc := range []struct {
		name   string
		action rights.TaskAction
		body   string
		want   string // in the error
	}{
		{"not json", rights.ActionExport, `PRIVATE-ROW-VALUE`, "malformed JSON"},
		{"html", rights.ActionDelete, `<html>张三</html>`, "malformed JSON"},
		{"empty", rights.ActionExport, ``, "ends early"},
		{"array", rights.ActionExport, `[{"status":"done"}]`, "must be a JSON object"},
		{"no status", rights.ActionExport, `{"found":true,"datasets":[]}`, "status is required"},
		{"accepted in a 200", rights.ActionDelete, `{"status":"accepted","found":true,"deleted":{}}`, `status must be "done"`},
		{"status not a string", rights.ActionDelete, `{"status":1,"found":true,"deleted":{}}`, "status"},
		{"no found", rights.ActionExport, `{"status":"done","datasets":[]}`, "found is required"},
		{"found a string", rights.ActionExport, `{"status":"done","found":"张三","datasets":[]}`, "found"},
		{"unknown field", rights.ActionExport, `{"status":"done","found":true,"PRIVATE-ROW-VALUE":1}`, "unknown field"},
		{"field twice", rights.ActionExport, `{"status":"done","status":"done","found":true}`, "appears twice"},
		{"trailing", rights.ActionExport, `{"status":"done","found":true}{"status":"done"}`, "exactly one JSON object"},
		{"trailing garbage", rights.ActionDelete, `{"status":"done","found":true,"deleted":{}} PRIVATE-ROW-VALUE`, "malformed JSON"},
		{"deleted in an export", rights.ActionExport, `{"status":"done","found":true,"deleted":{"a":1}}`, "deleted is for delete"},
		{"datasets in a delete", rights.ActionDelete, `{"status":"done","found":true,"datasets":[]}`, "datasets are for export"},
		{"negative count", rights.ActionDelete, `{"status":"done","found":true,"deleted":{"a":-1}}`, "whole number"},
		{"fractional count", rights.ActionDelete, `{"status":"done","found":true,"deleted":{"a":1.5}}`, "whole number"},
		{"string count", rights.ActionDelete, `{"status":"done","found":true,"deleted":{"a":"张三"}}`, "whole number"},
		{"bad dataset name in delete", rights.ActionDelete, `{"status":"done","found":true,"deleted":{"../a":1}}`, "dataset names"},
		{"not found but deleted", rights.ActionDelete, `{"status":"done","found":false,"deleted":{"a":3}}`, "found is false"},
		{"not found but rows", rights.ActionExport, `{"status":"done","found":false,"datasets":[{"name":"a",` + cols + `,"rows":[[1,2]]}]}`, "found is false"},
		{"datasets not an array", rights.ActionExport, `{"status":"done","found":true,"datasets":{}}`, "datasets must be an array"},
		{"dataset not an object", rights.ActionExport, `{"status":"done","found":true,"datasets":["a"]}`, "must be an object"},
		{"rows before columns", rights.ActionExport, `{"status":"done","found":true,"datasets":[{"name":"a","rows":[[1,2]],` + cols + `}]}`, "must come before rows"},
		{"no name", rights.ActionExport, `{"status":"done","found":true,"datasets":[{` + cols + `}]}`, "name is required"},
		{"no columns", rights.ActionExport, `{"status":"done","found":true,"datasets":[{"name":"a"}]}`, "columns is required"},
		{"empty columns", rights.ActionExport, `{"status":"done","found":true,"datasets":[{"name":"a","columns":[]}]}`, "at least one column"},
		{"columns not strings", rights.ActionExport, `{"status":"done","found":true,"datasets":[{"name":"a","columns":[1,2]}]}`, "columns"},
		{"row not an array", rights.ActionExport, `{"status":"done","found":true,"datasets":[{"name":"a",` + cols + `,"rows":[{"a":"张三"}]}]}`, "rows[0] must be an array"},
		{"rows not an array", rights.ActionExport, `{"status":"done","found":true,"datasets":[{"name":"a",` + cols + `,"rows":"张三"}]}`, "rows must be an array"},
		{"dataset unknown field", rights.ActionExport, `{"status":"done","found":true,"datasets":[{"name":"a",` + cols + `,"extra":1}]}`, "unknown field"},
		{"dataset twice", rights.ActionExport, `{"status":"done","found":true,"datasets":[{"name":"a",` + cols + `,"rows":[]},{"name":"a",` + cols + `,"rows":[]}]}`, "came before"},
		{"bad category", rights.ActionExport, `{"status":"done","found":true,"datasets":[{"name":"a","category":"Not OK",` + cols + `,"rows":[]}]}`, "category"},
		{"truncated", rights.ActionExport, `{"status":"done","found":true,"datasets":[{"name":"a",` + cols + `,"rows":[["张三",`, "ends early"},
	} {
		svc := newWebhookService(t, answerJSON(http.StatusOK, tc.body))
		conn := svc.connector(0)
		var err error
		if tc.action == rights.ActionExport {
			_, err = conn.Export(taskCtx(t), webhookSubject, &memSink{})
		} else {
			_, err = conn.Delete(taskCtx(t), webhookSubject)
		}
		t.Logf("%s: %v", tc.name, err)
		var we *stores.WebhookError
		if !errors.As(err, &we) || !we.Permanent {
			t.Errorf("%s: error %v, want a permanent *stores.WebhookError", tc.name, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "malformed") {
			t.Errorf("%s: error %q, want it to say %q", tc.name, err, tc.want)
		}
		checkNoPersonalData(t, err)
	}
}

func TestWebhookRowsMustMatchColumns(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ rows, want string }{
		{`[["u-secret-42","张三"],["u-secret-42"]]`, "rows[1] has 1 values for 2 columns"},
		{`[["u-secret-42","张三","PRIVATE-ROW-VALUE"]]`, "rows[0] has more values than the 2 columns"},
		{`[[]]`, "rows[0] has 0 values for 2 columns"},
	} {
		body := `{"status":"done","found":true,"datasets":[{"name":"profile","columns":["user_id","name"],"rows":` + tc.rows + `}]}`
		svc := newWebhookService(t, answerJSON(http.StatusOK, body))
		sink := &memSink{}
		_, err := svc.connector(0).Export(taskCtx(t), webhookSubject, sink)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("rows %s: error %v, want %q", tc.rows, err, tc.want)
			continue
		}
		checkNoPersonalData(t, err)
		if len(sink.datasets) == 1 && sink.datasets[0].closed {
			t.Errorf("rows %s: the dataset was closed as complete", tc.rows)
		}
	}
}

func TestWebhookTimeoutIsHonoured(t *testing.T) {
	t.Parallel()
	// A service that never answers, and one that starts an answer and stalls.
	release := make(chan struct{})
	silent := newWebhookService(t, func(w http.ResponseWriter, r *http.Request, _ webhookCallBody) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	stalling := newWebhookService(t, func(w http.ResponseWriter, r *http.Request, _ webhookCallBody) {
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, `{"status":"done","found":true,"datasets":[{"name":"a","columns":["x"],"rows":[["PRIVATE-ROW-VALUE"],`) //nolint:errcheck
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // before the servers close, which waits for their handlers
	for name, svc := range map[string]*webhookService{"silent": silent, "stalling": stalling} {
		start := time.Now()
		_, err := svc.connector(300*time.Millisecond).Export(taskCtx(t), webhookSubject, &memSink{})
		took := time.Since(start)
		var we *stores.WebhookError
		if !errors.As(err, &we) || we.Permanent || !strings.Contains(err.Error(), "within 300ms") {
			t.Errorf("%s: error %v, want a temporary timeout", name, err)
		}
		if took > 3*time.Second {
			t.Errorf("%s: the call took %s with a 300ms timeout", name, took)
		}
		checkNoPersonalData(t, err)
	}

	// The caller's own deadline counts too.
	ctx, cancel := context.WithTimeout(taskCtx(t), 200*time.Millisecond)
	defer cancel()
	if _, err := silent.connector(time.Minute).Delete(ctx, webhookSubject); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("with the job's deadline passed: %v", err)
	}
}

func TestWebhookCallNeedsItsTask(t *testing.T) {
	t.Parallel()
	svc := newWebhookService(t, answerJSON(http.StatusOK, `{"status":"done","found":false,"deleted":{}}`))
	if _, err := svc.connector(0).Delete(t.Context(), webhookSubject); err == nil {
		t.Error("a call without a task in the context succeeded")
	}
	if calls, _ := svc.seen(); len(calls) != 0 {
		t.Error("the service was called without a task")
	}
}

func TestWebhookConfig(t *testing.T) {
	t.Parallel()
	const base = `database_url: postgres://localhost/datarights
products:
  - name: webank
    deadline: {policy: working_days, days: 15, clock_start: verified}
stores:
`
	const loyalty = `  - name: loyalty
    kind: webhook
    key: user_id
    webhook:
      url: https://loyalty.internal/datarights
      secret_env: LOYALTY_WEBHOOK_SECRET
      timeout: 30s
`
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cfg, err := config.Parse("d.yaml", []byte(base+loyalty), env(map[string]string{"LOYALTY_WEBHOOK_SECRET": webhookSecret}))
	if err != nil {
		t.Fatal(err)
	}
	w := cfg.Stores[0].Webhook
	if w.Secret != webhookSecret || w.Timeout != 30*time.Second || w.URL != "https://loyalty.internal/datarights" {
		t.Errorf("webhook = %+v", w)
	}
	conn, err := stores.Open(t.Context(), cfg.Stores[0])
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if cfg.HTTP.SignatureWindow != stores.DefaultSignatureWindow {
		t.Errorf("http.signature_window = %s by default, want %s", cfg.HTTP.SignatureWindow, stores.DefaultSignatureWindow)
	}
	for window, want := range map[string]string{"10m": "", "10s": "http.signature_window: must be between 30s and 1h, not 10s", "2h": "must be between 30s and 1h"} {
		cfg, err := config.Parse("d.yaml", []byte("http:\n  signature_window: "+window+"\n"+base+loyalty), env(map[string]string{"LOYALTY_WEBHOOK_SECRET": webhookSecret}))
		switch {
		case want == "" && (err != nil || cfg.HTTP.SignatureWindow != 10*time.Minute):
			t.Errorf("signature_window %s: %v", window, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("signature_window %s: error %v, want %q", window, err, want)
		}
	}

	for _, tc := range []struct {
		name, yaml string
		env        map[string]string
		want       string
	}{
		{"secret unset", loyalty, nil, "stores[0].webhook.secret_env: environment variable LOYALTY_WEBHOOK_SECRET is not set"},
		{"secret short", loyalty, map[string]string{"LOYALTY_WEBHOOK_SECRET": "short-PRIVATE"}, "shorter than 16 bytes"},
		{"no secret_env", strings.Replace(loyalty, "      secret_env: LOYALTY_WEBHOOK_SECRET\n", "", 1), nil, "secret_env: is required"},
		{"bad url", strings.Replace(loyalty, "https://loyalty.internal/datarights", "ftp://loyalty.internal", 1), nil, "webhook.url: must be an http(s) URL"},
		{"url with password", strings.Replace(loyalty, "https://", "https://u:PRIVATE@", 1), nil, "must not hold credentials"},
		{"no section", "  - name: loyalty\n    kind: webhook\n    key: user_id\n", nil, "stores[0].webhook: url and secret_env are required"},
		{"section on postgres", strings.Replace(loyalty, "kind: webhook", "kind: postgres\n    dsn: postgres://x/y\n    tables: [{name: t, column: c}]", 1), nil, "stores[0].webhook: is only for webhook stores"},
		{"timeout too long", strings.Replace(loyalty, "30s", "1h", 1), nil, "webhook.timeout: must be between 1s and worker.job_timeout"},
		{"tables", loyalty + "    tables: [{name: t, column: c}]\n", nil, "tables and lookups are for SQL stores"},
	} {
		e := tc.env
		if e == nil && tc.name != "secret unset" {
			e = map[string]string{"LOYALTY_WEBHOOK_SECRET": webhookSecret}
		}
		_, err := config.Parse("d.yaml", []byte(base+tc.yaml), env(e))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "PRIVATE") || strings.Contains(err.Error(), webhookSecret) {
			t.Errorf("%s: error %q shows a secret", tc.name, err)
		}
		if strings.Contains(err.Error(), "dsn") {
			t.Errorf("%s: a webhook store is asked for a dsn: %v", tc.name, err)
		}
	}
}

// TestWebhookResultCaps: a result over a cap — columns, datasets, counts,
// or the size of a non-export result — is refused with the field at fault,
// as invalid (400) or too_large (413), and the check of a long column list
// is linear: a list at the cap is decoded at once.
func TestWebhookResultCaps(t *testing.T) {
	t.Parallel()
	names := func(n int, prefix string) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(prefix + strconv.Itoa(i)))
		}
		return b.String()
	}
	export := func(datasets string) string {
		return `{"status":"done","found":true,"datasets":[` + datasets + `]}`
	}
	datasets := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = `{"name":"d` + strconv.Itoa(i) + `","columns":["a"],"rows":[]}`
		}
		return strings.Join(parts, ",")
	}
	counts := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = `"d` + strconv.Itoa(i) + `":1`
		}
		return `{"status":"done","found":true,"deleted":{` + strings.Join(parts, ",") + `}}`
	}
	for _, tc := range []struct {
		name        string
		action      rights.TaskAction
		body        string
		code, field string // "" code: accepted
	}{
		{"1000 columns", rights.ActionExport, export(`{"name":"wide","columns":[` + names(1000, "c") + `],"rows":[]}`), "", ""},
		{"1001 columns", rights.ActionExport, export(`{"name":"wide","columns":[` + names(1001, "c") + `],"rows":[]}`), rights.EInvalid, "datasets[0].columns"},
		{"a million columns", rights.ActionExport, export(`{"name":"wide","columns":[` + names(1_000_000, "") + `],"rows":[]}`), rights.EInvalid, "datasets[0].columns"},
		{"repeated column", rights.ActionExport, export(`{"name":"a","columns":["x","y"],"rows":[]},{"name":"b","columns":["x","y","x"],"rows":[]}`), rights.EInvalid, "datasets[1].columns[2]"},
		{"column not a name", rights.ActionExport, export(`{"name":"a","columns":["x",null],"rows":[]}`), rights.EInvalid, "datasets[0].columns[1]"},
		{"NUL in a column", rights.ActionExport, export(`{"name":"a","columns":["x","y\u0000"],"rows":[]}`), rights.EInvalid, "datasets[0].columns[1]"},
		{"columns not an array", rights.ActionExport, export(`{"name":"a","columns":"x","rows":[]}`), rights.EInvalid, "datasets[0].columns"},
		{"1000 datasets", rights.ActionExport, export(datasets(1000)), "", ""},
		{"1001 datasets", rights.ActionExport, export(datasets(1001)), rights.EInvalid, "datasets"},
		{"1000 counts", rights.ActionDelete, counts(1000), "", ""},
		{"1001 counts", rights.ActionDelete, counts(1001), rights.EInvalid, "deleted"},
		{"delete result over 64 KiB", rights.ActionDelete, `{"status":"done","found":true,"deleted":{"a":1}}` + strings.Repeat(" ", 64<<10), rights.ETooLarge, "body"},
	} {
		var r io.Reader = strings.NewReader(tc.body)
		if tc.action != rights.ActionExport {
			r = io.LimitReader(r, stores.ResultLimit(tc.action)) // as the callback spools it
			if int64(len(tc.body)) > stores.ResultLimit(tc.action) {
				r = strings.NewReader("") // the spool refuses it first; checked through the connector below
			}
		}
		start := time.Now()
		_, err := stores.DecodeWebhookResult(r, tc.action, &memSink{})
		took := time.Since(start)
		if took > 5*time.Second {
			t.Errorf("%s: decoding took %s", tc.name, took)
		}
		if tc.code == rights.ETooLarge {
			svc := newWebhookService(t, answerJSON(http.StatusOK, tc.body))
			_, err := svc.connector(0).Delete(taskCtx(t), webhookSubject)
			var we *stores.WebhookError
			if !errors.As(err, &we) || !we.Permanent || !strings.Contains(err.Error(), "larger than 65536 bytes") {
				t.Errorf("%s: error %v, want a permanent error saying the answer is larger than 65536 bytes", tc.name, err)
			}
			got := stores.BodyTooLarge(stores.ResultLimit(tc.action))
			if got.Code != rights.ETooLarge || len(got.Fields) != 1 || got.Fields[0].Field != "body" {
				t.Errorf("%s: BodyTooLarge = %+v", tc.name, got)
			}
			continue
		}
		if tc.code == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		var re *rights.Error
		if !errors.As(err, &re) || re.Code != tc.code || len(re.Fields) != 1 || re.Fields[0].Field != tc.field {
			t.Errorf("%s: error %#v, want %s on field %s", tc.name, err, tc.code, tc.field)
		}
	}
}
