package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// getRaw makes a GET as token and returns the answer as it is.
func (e *e2e) getRaw(path, token string) (*http.Response, string) {
	e.t.Helper()
	req, err := http.NewRequest("GET", e.base+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, string(raw)
}

// TestRegisterExport fills the register with closed requests of both
// products around March 2026 in Shanghai and reads it back as CSV and JSON,
// as auditors of every product and of one, and checks that nothing
// personal comes out and that a formula is defused.
func TestRegisterExport(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "")
	ctx := context.Background()
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	at := func(s string) *time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, shanghai)
		if err != nil {
			t.Fatal(err)
		}
		return &v
	}
	const secret = "register-secret"
	type row struct {
		id                                  string
		product                             string
		status                              rights.Status
		received, verified, due, done, late string
		refusal                             string
		extension                           int
	}
	rows := []row{
		{id: "01900000-0000-7000-8000-000000000001", product: "webank", status: rights.StatusCompleted, received: "2026-02-28 23:59",
			verified: "2026-03-01 10:00", due: "2026-03-21 00:00", done: "2026-03-05 10:00"}, // February in Shanghai: not in March's register
		{id: "01900000-0000-7000-8000-000000000002", product: "webank", status: rights.StatusRefused, received: "2026-03-01 00:00",
			verified: "2026-03-02 09:30", due: "2026-03-28 00:00", done: "2026-03-30 11:00", late: "2026-03-28 00:00",
			refusal: "=HYPERLINK(\"http://x\")", extension: 5}, // the first moment of March; a formula where a reason code goes
		{id: "01900000-0000-7000-8000-000000000003", product: "wechat", status: rights.StatusCompleted, received: "2026-03-10 10:00",
			due: "2026-03-26 00:00", done: "2026-03-12 16:00"},
		{id: "01900000-0000-7000-8000-000000000004", product: "wechat", status: rights.StatusCancelled, received: "2026-03-31 23:59",
			done: "2026-04-01 09:00"}, // the last minute of March
		{id: "01900000-0000-7000-8000-000000000005", product: "wechat", status: rights.StatusCompleted, received: "2026-04-01 00:00",
			due: "2026-04-17 00:00", done: "2026-04-02 10:00"}, // April
	}
	err := pgx.BeginFunc(ctx, e.db, func(tx pgx.Tx) error {
		for _, r := range rows {
			req := &rights.Request{ID: r.id, Product: r.product, Type: rights.TypeCopy, Channel: rights.ChannelStaff, Status: r.status,
				Subject:       rights.Subject{Identities: map[string]string{"user_id": secret + "-user"}},
				DeliveryEmail: secret + "@example.com", Relation: rights.RelationSelf, Locale: rights.LocaleEN,
				Note: secret + " note", CreatedBy: "staff:" + secret, ReceivedAt: *at(r.received), UpdatedAt: *at(r.received),
				Corrections: map[string]string{"city": secret + "-city"},
			}
			req.ClockStartedAt = &req.ReceivedAt
			if r.verified != "" {
				req.VerifiedAt = at(r.verified)
				req.ClockStartedAt = req.VerifiedAt
			}
			if r.due != "" {
				req.DueAt = at(r.due)
			}
			req.CompletedAt = at(r.done)
			if r.late != "" {
				req.BreachedAt = at(r.late)
			}
			if r.refusal != "" {
				req.Refusal = &rights.Refusal{Reason: rights.RefusalReason(r.refusal), Message: secret + " message", By: "approver"}
			}
			if r.extension > 0 {
				req.Clock.Extensions = []rights.Extension{{Days: 2, Reason: secret + " reason", By: "approver", At: *at(r.verified)},
					{Days: r.extension - 2, Reason: secret, By: "approver", At: *at(r.verified)}}
			}
			if err := storage.InsertRequest(ctx, tx, req, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	resp, csv := e.getRaw("/api/v1/register?from=2026-03-01&to=2026-03-31", staffToken("auditor"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("register = %d %s", resp.StatusCode, csv)
	}
	if ct, cd := resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"); ct != "text/csv; charset=utf-8" ||
		cd != `attachment; filename="register-2026-03-01-2026-03-31.csv"` || resp.Header.Get("X-Register-Time-Zone") != "Asia/Shanghai" {
		t.Errorf("headers: %v", resp.Header)
	}
	want := "id,product,right,channel,status,received_at,verified_at,clock_started_at,due_at,last_day,completed_at,breached,outcome,refusal_reason,extension_days\r\n" +
		"01900000-0000-7000-8000-000000000002,webank,copy,staff,refused,2026-02-28T16:00:00Z,2026-03-02T01:30:00Z,2026-03-02T01:30:00Z,2026-03-27T16:00:00Z,2026-03-27,2026-03-30T03:00:00Z,true,refused,\"'=HYPERLINK(\"\"http://x\"\")\",5\r\n" +
		"01900000-0000-7000-8000-000000000003,wechat,copy,staff,completed,2026-03-10T02:00:00Z,,2026-03-10T02:00:00Z,2026-03-25T16:00:00Z,2026-03-25,2026-03-12T08:00:00Z,false,completed,,0\r\n" +
		"01900000-0000-7000-8000-000000000004,wechat,copy,staff,cancelled,2026-03-31T15:59:00Z,,2026-03-31T15:59:00Z,,,2026-04-01T01:00:00Z,false,cancelled,,0\r\n"
	if csv != want {
		t.Errorf("CSV:\n%s\nwant:\n%s", csv, want)
	}

	resp, raw := e.getRaw("/api/v1/register?from=2026-03-01&to=2026-04-30&format=json", staffToken("auditor-wechat"))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("register as JSON = %d %v %s", resp.StatusCode, resp.Header, raw)
	}
	var doc struct {
		From, To string
		TimeZone string `json:"time_zone"`
		Requests []storage.RegisterRow
	}
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	if doc.TimeZone != "Asia/Shanghai" || len(doc.Requests) != 3 || doc.Requests[0].ID != rows[2].id || doc.Requests[2].ID != rows[4].id ||
		doc.Requests[0].LastDay != "2026-03-25" || doc.Requests[1].Outcome != "cancelled" || doc.Requests[1].DueAt != nil {
		t.Errorf("wechat auditor's register: %s", raw)
	}
	for _, out := range []string{csv, raw} {
		if strings.Contains(out, secret) {
			t.Errorf("the register holds personal data or free text:\n%s", out)
		}
	}

	// The CLI writes the same CSV, and says what is wrong.
	env := map[string]string{urlEnvVar: e.base, tokenEnvVar: staffToken("auditor")}
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"register", "export", "--from", "2026-03-01", "--to", "2026-03-31"}, func(k string) string { return env[k] }, &out, &errOut); err != nil || out.String() != want {
		t.Errorf("register export: %v\n%s\nstderr: %s", err, out.String(), errOut.String())
	}
	err = run(ctx, []string{"register", "export", "--from", "2026-03-31", "--to", "2026-03-01"}, func(k string) string { return env[k] }, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "to: must not be before from") {
		t.Errorf("register export backwards: %v", err)
	}

	// Scope, permission and bad input.
	if resp, body := e.getRaw("/api/v1/register?from=2026-03-01&to=2026-03-31&product=webank", staffToken("auditor-wechat")); resp.StatusCode != http.StatusForbidden {
		t.Errorf("another product's register = %d %s", resp.StatusCode, body)
	}
	if resp, body := e.getRaw("/api/v1/register?from=2026-03-01&to=2026-03-31&product=webank", staffToken("auditor")); resp.StatusCode != http.StatusOK ||
		strings.Count(body, "\r\n") != 2 {
		t.Errorf("webank's register = %d %s", resp.StatusCode, body)
	}
	if resp, body := e.getRaw("/api/v1/register?from=2026-03-01&to=2026-03-31", staffToken("approver")); resp.StatusCode != http.StatusForbidden {
		t.Errorf("an approver's register = %d %s", resp.StatusCode, body)
	}
	for query, field := range map[string]string{"from=2026-3-1&to=2026-03-31": "from", "to=2026-03-31": "from",
		"from=2026-03-31&to=2026-03-01": "to", "from=2026-03-01&to=2026-03-31&format=xlsx": "format"} {
		code, out := e.call("GET", "/api/v1/register?"+query, staffToken("auditor"), nil)
		if code != http.StatusBadRequest || !strings.Contains(errorText(out), field) {
			t.Errorf("register?%s = %d %v, want 400 on %s", query, code, out, field)
		}
	}
}
