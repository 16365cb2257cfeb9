package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/keyring"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
	"github.com/datarights/datarights/storage/storagetest"
)

// auditFixture is a database with three requests of four audit events each,
// written interleaved (so each request's events are spread over the global
// order), anchored, plus one event after the anchor.
type auditFixture struct {
	url      string // the runtime role's
	admin    *pgx.Conn
	requests []string
	// events[request][n-1] is event #n of the request.
	events map[string][]fixtureEvent
}

type fixtureEvent struct {
	id, seq int64
}

func newAuditFixture(t *testing.T) *auditFixture {
	t.Helper()
	ctx := context.Background()
	db, url, adminURL := storagetest.NewDBWithAdmin(t, "audit")
	f := &auditFixture{url: url, events: map[string][]fixtureEvent{}}
	now := time.Now().UTC().Truncate(time.Microsecond)
	for i := range 3 {
		r := &rights.Request{ID: storage.NewID(), Product: "webank", Type: rights.TypeCopy, Channel: rights.ChannelStaff,
			Status: rights.StatusReceived, Subject: rights.Subject{Identities: map[string]string{"user_id": fmt.Sprintf("u-%d", i)}},
			DeliveryEmail: "u@example.com", Relation: rights.RelationSelf, Locale: rights.LocaleEN,
			CreatedBy: rights.ActorStaff("alice"), ReceivedAt: now, UpdatedAt: now}
		if err := db.InTx(ctx, func(tx pgx.Tx) error { return storage.InsertRequest(ctx, tx, r, nil) }); err != nil {
			t.Fatal(err)
		}
		f.requests = append(f.requests, r.ID)
	}
	appendEvent := func(id, action string) {
		err := db.InTx(ctx, func(tx pgx.Tx) error {
			return storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: id, At: time.Now(), Actor: rights.ActorSystem,
				Action: action, Detail: map[string]any{"store": "demo_bank", "rows": 3}})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for n := range 4 {
		for _, id := range f.requests {
			appendEvent(id, fmt.Sprintf("step.%d", n+1))
		}
	}
	keys, err := keyring.Parse(testSecretKey)
	if err != nil {
		t.Fatal(err)
	}
	if a, err := db.AnchorAudit(ctx, keys, time.Now()); err != nil || a == nil || a.Events != 12 {
		t.Fatalf("anchor = %+v, %v; want one over 12 events", a, err)
	}
	appendEvent(f.requests[0], "step.5")

	f.admin, err = pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.admin.Close(context.Background()) })
	rows, err := f.admin.Query(ctx, "SELECT request_id::text, id, seq FROM audit_events ORDER BY request_id, request_seq")
	if err != nil {
		t.Fatal(err)
	}
	var req string
	var ev fixtureEvent
	if _, err := pgx.ForEachRow(rows, []any{&req, &ev.id, &ev.seq}, func() error {
		f.events[req] = append(f.events[req], ev)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return f
}

// tamper runs statements as a superuser with triggers off, as an attacker
// with the database (not the service's role) would.
func (f *auditFixture) tamper(t *testing.T, sqls ...string) {
	t.Helper()
	ctx := context.Background()
	if _, err := f.admin.Exec(ctx, "SET session_replication_role = replica"); err != nil {
		t.Fatal(err)
	}
	for _, sql := range sqls {
		if _, err := f.admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
}

// verify runs `datarights audit verify` in-process as the runtime role.
func (f *auditFixture) verify(t *testing.T) (string, error) {
	t.Helper()
	env := map[string]string{"DATABASE_URL": f.url, keyring.EnvVar: testSecretKey}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"audit", "verify"}, func(k string) string { return env[k] }, &stdout, &stderr)
	t.Logf("audit verify: err %v\n%s%s", err, stdout.String(), stderr.String())
	return stdout.String(), err
}

func firstBrokenLink(out string) string {
	for _, line := range strings.Split(out, "\n") {
		if s, ok := strings.CutPrefix(line, "first broken link: "); ok {
			return s
		}
	}
	return ""
}

func TestAuditVerifyNamesFirstBrokenLink(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// tamper changes the trail and returns the start of the first
		// broken link verify must name, and a kind it must name after.
		tamper    func(t *testing.T, f *auditFixture) (first, then string)
		wantError bool
	}{
		{
			name: "untouched",
			tamper: func(t *testing.T, f *auditFixture) (string, string) {
				return "", ""
			},
		},
		{
			name: "edit a row's details",
			tamper: func(t *testing.T, f *auditFixture) (string, string) {
				b := f.requests[1]
				e := f.events[b][1]
				f.tamper(t, fmt.Sprintf(`UPDATE audit_events SET detail = '{"store": "demo_bank", "rows": 0}' WHERE id = %d`, e.id))
				// The anchor folded the stored hash, which is untouched:
				// the chain is what tells.
				return fmt.Sprintf("request %s, seq %d, event %d: edited", b, e.seq, e.id), ""
			},
			wantError: true,
		},
		{
			name: "delete a row",
			tamper: func(t *testing.T, f *auditFixture) (string, string) {
				b := f.requests[1]
				gone, next := f.events[b][1], f.events[b][2]
				f.tamper(t, fmt.Sprintf(`DELETE FROM audit_events WHERE id = %d`, gone.id))
				return fmt.Sprintf("request %s, seq %d, event %d: deleted: event #2 is missing", b, next.seq, next.id), "anchor #1: deleted"
			},
			wantError: true,
		},
		{
			name: "reorder by swapping seq",
			tamper: func(t *testing.T, f *auditFixture) (string, string) {
				b := f.requests[1]
				two, three := f.events[b][1], f.events[b][2]
				f.tamper(t,
					fmt.Sprintf(`UPDATE audit_events SET seq = -1 WHERE id = %d`, two.id),
					fmt.Sprintf(`UPDATE audit_events SET seq = %d WHERE id = %d`, two.seq, three.id),
					fmt.Sprintf(`UPDATE audit_events SET seq = %d WHERE id = %d`, three.seq, two.id))
				return fmt.Sprintf("request %s, seq %d, event %d: reordered", b, two.seq, three.id), "anchor #1: anchor mismatch"
			},
			wantError: true,
		},
		{
			name: "delete a whole request's events",
			tamper: func(t *testing.T, f *auditFixture) (string, string) {
				c := f.requests[2]
				f.tamper(t, fmt.Sprintf(`DELETE FROM audit_events WHERE request_id = '%s'`, c))
				return fmt.Sprintf("request %s: deleted: the request has no audit events", c), "anchor #1: deleted: 4 of the 12 events"
			},
			wantError: true,
		},
		{
			name: "delete a whole request, events and all",
			tamper: func(t *testing.T, f *auditFixture) (string, string) {
				c := f.requests[2]
				f.tamper(t, fmt.Sprintf(`DELETE FROM audit_events WHERE request_id = '%s'`, c),
					fmt.Sprintf(`DELETE FROM audit_heads WHERE request_id = '%s'`, c),
					fmt.Sprintf(`DELETE FROM requests WHERE id = '%s'`, c))
				last := f.events[f.requests[2]][3].seq // the anchor covers up to the last event of the first 12
				return fmt.Sprintf("seq %d, anchor #1: deleted: 4 of the 12 events", last), ""
			},
			wantError: true,
		},
		{
			name: "rewrite an event with a recomputed hash",
			tamper: func(t *testing.T, f *auditFixture) (string, string) {
				// Whoever knows the (public) encoding can fix up the chain;
				// only the anchor, keyed with a secret, still tells.
				b := f.requests[1]
				e := f.events[b][3] // the last of its chain: nothing links to it
				f.tamper(t, fmt.Sprintf(`UPDATE audit_events SET detail = '{"rows": 0}' WHERE id = %d`, e.id),
					fmt.Sprintf(`UPDATE audit_events SET hash = audit_event_hash(id, request_id, seq, request_seq, at, actor, action,
						from_status, to_status, detail, prev_hash) WHERE id = %d`, e.id))
				last := f.events[f.requests[2]][3].seq
				return fmt.Sprintf("seq %d, anchor #1: anchor mismatch: the events with seq", last), ""
			},
			wantError: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newAuditFixture(t)
			first, then := tc.tamper(t, f)
			out, err := f.verify(t)
			if !strings.Contains(out, "audit trail: 13 events") && !tc.wantError {
				t.Errorf("verify did not count the events: %s", out)
			}
			if !tc.wantError {
				if err != nil || !strings.Contains(out, "OK:") {
					t.Fatalf("verify of an untouched trail: %v\n%s", err, out)
				}
				return
			}
			if !errors.Is(err, errAuditBroken) {
				t.Fatalf("verify = %v, want the trail reported broken", err)
			}
			if got := firstBrokenLink(out); !strings.HasPrefix(got, first) {
				t.Errorf("first broken link = %q, want it to start %q", got, first)
			}
			if then != "" && !strings.Contains(out, then) {
				t.Errorf("verify does not report %q after the first broken link:\n%s", then, out)
			}
		})
	}
}

// A request worked by `serve`, which runs as the runtime role (River
// included), leaves a trail that verifies, is anchored by the periodic job,
// and names an actor on every event.
func TestServedRequestTrailVerifiesAndIsAnchored(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "\naudit:\n  anchor_interval: 1s\n")
	ctx := context.Background()
	rows, err := e.db.Query(ctx, `SELECT DISTINCT usename::text FROM pg_stat_activity
		WHERE datname = current_database() AND usename <> current_user`)
	if err != nil {
		t.Fatal(err)
	}
	if roles, err := pgx.CollectRows(rows, pgx.RowTo[string]); err != nil || len(roles) != 1 || roles[0] != storagetest.RuntimeRole {
		t.Errorf("serve connects as %v (%v), want only %s", roles, err, storagetest.RuntimeRole)
	}
	code, body := e.call("POST", "/api/v1/requests", testToken, copyTicket("demo-user-3"))
	if code != 201 {
		t.Fatalf("POST /api/v1/requests = %d %v", code, body)
	}
	e.waitStatus(body["id"].(string), "completed", 60*time.Second)

	waitFor(t, 30*time.Second, "an anchor over every event", func() bool {
		var unanchored int
		err := e.db.QueryRow(ctx, `SELECT count(*) FROM audit_events
			WHERE seq > coalesce((SELECT max(last_seq) FROM audit_anchors), 0)`).Scan(&unanchored)
		return err == nil && unanchored == 0
	})
	rows, err = e.db.Query(ctx, "SELECT actor FROM audit_events")
	if err != nil {
		t.Fatal(err)
	}
	actors, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(actors) == 0 {
		t.Fatalf("actors = %v, %v", actors, err)
	}
	for _, a := range actors {
		if !rights.ValidActor(a) {
			t.Errorf("event by %q, which names no actor", a)
		}
	}
	var stdout, stderr bytes.Buffer
	if err := run(ctx, []string{"audit", "verify", "-config", e.configPath}, e.getenv, &stdout, &stderr); err != nil {
		t.Fatalf("audit verify: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	if out := stdout.String(); !strings.Contains(out, "OK:") || !strings.Contains(out, "0 events after the last anchor") {
		t.Errorf("audit verify said:\n%s", out)
	}
}
