package jobs_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/jobs"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// dashRow is a request as the dashboard sees it; times are in Shanghai.
type dashRow struct {
	product  string
	typ      rights.Type
	channel  rights.Channel
	status   rights.Status
	received string
	started  string // clock start
	due      string
	breached string
	done     string // completed_at
}

func insertDashRows(t *testing.T, db *storage.DB, rows []dashRow) {
	t.Helper()
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	at := func(s string) *time.Time {
		if s == "" {
			return nil
		}
		v, err := time.ParseInLocation("2006-01-02 15:04", s, shanghai)
		if err != nil {
			t.Fatal(err)
		}
		return &v
	}
	ctx := context.Background()
	err := db.InTx(ctx, func(tx pgx.Tx) error {
		for _, row := range rows {
			typ, channel := row.typ, row.channel
			if typ == "" {
				typ = rights.TypeCopy
			}
			if channel == "" {
				channel = rights.ChannelStaff
			}
			r := &rights.Request{
				ID: storage.NewID(), Product: row.product, Type: typ, Channel: channel, Status: row.status,
				Subject:       rights.Subject{Identities: map[string]string{"user_id": "dash-user"}},
				DeliveryEmail: "dash@example.com", Relation: rights.RelationSelf, Locale: rights.LocaleEN,
				CreatedBy: "staff:alice", ReceivedAt: *at(row.received), UpdatedAt: *at(row.received),
				ClockStartedAt: at(row.started), DueAt: at(row.due), BreachedAt: at(row.breached), CompletedAt: at(row.done),
			}
			if err := storage.InsertRequest(ctx, tx, r, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDashboardFigures places requests of both demo products around
// Wednesday 2026-03-11 10:00 in Shanghai and checks every figure exactly.
// WeChat counts 15 calendar days, WeBank 15 working days, both on the cn
// calendar (2026-02-28, a Saturday, is a make-up working day).
func TestDashboardFigures(t *testing.T) {
	t.Parallel()
	b := setupSLA(t, "")
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	now := time.Date(2026, 3, 11, 10, 0, 0, 0, shanghai)
	insertDashRows(t, b.db, []dashRow{
		// Open WeBank requests.
		{product: "webank", status: rights.StatusInProgress, received: "2026-02-19 10:00", started: "2026-02-20 10:00",
			due: "2026-03-11 00:00", breached: "2026-03-11 00:00"}, // overdue, breached this month
		{product: "webank", status: rights.StatusVerified, received: "2026-02-27 10:00", started: "2026-03-01 00:00",
			due: "2026-03-13 00:00"}, // due soon; within 1 working day
		{product: "webank", status: rights.StatusReceived, received: "2026-03-06 10:00", started: "2026-03-09 00:00",
			due: "2026-03-17 00:00"}, // on track; within 3 working days
		{product: "webank", status: rights.StatusPaused, received: "2026-03-02 10:00", started: "2026-03-02 10:00",
			due: "2026-03-12 00:00"}, // paused: not counted as due
		{product: "webank", status: rights.StatusAwaitingVerification, channel: rights.ChannelSelfService,
			received: "2026-03-11 09:00"}, // no deadline yet
		// Closed WeBank requests.
		{product: "webank", status: rights.StatusCompleted, received: "2026-03-02 09:00", started: "2026-03-02 10:00",
			due: "2026-03-24 00:00", done: "2026-03-06 15:00"}, // 4 working days, copy, staff
		{product: "webank", typ: rights.TypeAccess, channel: rights.ChannelSelfService, status: rights.StatusCompleted,
			received: "2026-03-01 22:00", started: "2026-03-02 10:00", due: "2026-03-24 00:00", done: "2026-03-10 12:00"}, // 6 working days
		{product: "webank", status: rights.StatusRefused, received: "2026-02-10 10:00", started: "2026-02-10 10:00",
			due: "2026-02-28 00:00", breached: "2026-02-28 20:00", done: "2026-03-02 10:00"}, // breached in February; refused
		// WeChat.
		{product: "wechat", status: rights.StatusInProgress, received: "2026-03-05 10:00", started: "2026-03-05 10:00",
			due: "2026-03-19 00:00"}, // on track; within 7 calendar days
		{product: "wechat", status: rights.StatusInProgress, received: "2026-02-28 10:00", started: "2026-02-28 10:00",
			due: "2026-03-14 00:00"}, // due soon; within 3 calendar days
		{product: "wechat", status: rights.StatusCompleted, received: "2026-03-06 10:00", started: "2026-03-06 10:00",
			due: "2026-03-21 00:00", done: "2026-03-09 09:00"}, // 1 working day (a weekend between)
		{product: "wechat", typ: rights.TypeDelete, status: rights.StatusCompleted, received: "2026-02-24 10:00",
			started: "2026-02-24 10:00", due: "2026-03-01 00:00", breached: "2026-03-01 00:00",
			done: "2026-03-03 12:00"}, // 6 working days with the make-up Saturday; breached in March in Shanghai (February in UTC)
		{product: "wechat", status: rights.StatusCompleted, received: "2025-10-15 10:00", started: "2025-10-15 10:00",
			due: "2025-10-31 00:00", done: "2025-11-01 10:00"}, // completed more than 90 days ago
		{product: "wechat", status: rights.StatusCancelled, received: "2025-12-21 23:00", done: "2025-12-23 10:00"}, // the week before the 12
		{product: "wechat", status: rights.StatusCancelled, received: "2025-12-22 00:30", done: "2025-12-23 10:00"}, // the first of the 12 (Sunday in UTC)
	})

	d, err := b.pipeline.Dashboard(context.Background(), nil, now)
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, _ := time.ParseInLocation(time.DateOnly, s, shanghai)
		return v
	}
	if len(d.Products) != 2 || d.Products[0] != "wechat" || d.Products[1] != "webank" {
		t.Fatalf("products = %v", d.Products)
	}
	wantOpen := []jobs.ProductBands{
		{Product: "wechat", BandCounts: jobs.BandCounts{DueSoon: 1, OnTrack: 1, Total: 2}},
		{Product: "webank", BandCounts: jobs.BandCounts{Overdue: 1, DueSoon: 1, OnTrack: 1, Paused: 1, NoDeadline: 1, Total: 5}},
	}
	for i, want := range wantOpen {
		if d.Open[i] != want {
			t.Errorf("open[%d] = %+v, want %+v", i, d.Open[i], want)
		}
	}
	if want := (jobs.BandCounts{Overdue: 1, DueSoon: 2, OnTrack: 2, Paused: 1, NoDeadline: 1, Total: 7}); d.OpenTotal != want {
		t.Errorf("open total = %+v, want %+v", d.OpenTotal, want)
	}

	wantDue := []jobs.ProductDue{
		{Product: "wechat", Unit: rights.CalendarDays, Cutoff1: at("2026-03-13"), Cutoff3: at("2026-03-15"), Cutoff7: at("2026-03-19"),
			DueCounts: jobs.DueCounts{Overdue: 0, Within1: 0, Within3: 1, Within7: 2}},
		{Product: "webank", Unit: rights.WorkingDays, Cutoff1: at("2026-03-13"), Cutoff3: at("2026-03-17"), Cutoff7: at("2026-03-21"),
			DueCounts: jobs.DueCounts{Overdue: 1, Within1: 1, Within3: 2, Within7: 2}},
	}
	for i, want := range wantDue {
		got := d.Due[i]
		if got.Product != want.Product || got.Unit != want.Unit || !got.Cutoff1.Equal(want.Cutoff1) ||
			!got.Cutoff3.Equal(want.Cutoff3) || !got.Cutoff7.Equal(want.Cutoff7) || got.DueCounts != want.DueCounts {
			t.Errorf("due[%d] = %+v, want %+v", i, got, want)
		}
	}
	if want := (jobs.DueCounts{Overdue: 1, Within1: 1, Within3: 3, Within7: 4}); d.DueTotal != want {
		t.Errorf("due total = %+v, want %+v", d.DueTotal, want)
	}

	wantBreaches := []jobs.ProductBreaches{{"wechat", "2026-03", 1}, {"webank", "2026-03", 1}}
	for i, want := range wantBreaches {
		if d.Breaches[i] != want {
			t.Errorf("breaches[%d] = %+v, want %+v", i, d.Breaches[i], want)
		}
	}
	if d.BreachesTotal != 2 {
		t.Errorf("breaches total = %d, want 2", d.BreachesTotal)
	}

	if d.WeeksTimeZone != "Asia/Shanghai" || len(d.Weeks) != 12 {
		t.Fatalf("weeks in %s: %d", d.WeeksTimeZone, len(d.Weeks))
	}
	wantWeeks := map[string][2]int{"2025-W52": {1, 0}, "2026-W07": {1, 0}, "2026-W08": {1, 0},
		"2026-W09": {4, 0}, "2026-W10": {5, 2}, "2026-W11": {1, 2}}
	if d.Weeks[0].Week != "2025-W52" || d.Weeks[0].Start != "2025-12-22" || d.Weeks[1].Week != "2026-W01" ||
		d.Weeks[11].Week != "2026-W11" || d.Weeks[11].Start != "2026-03-09" {
		t.Errorf("weeks run %+v … %+v", d.Weeks[0], d.Weeks[11])
	}
	for _, w := range d.Weeks {
		if want := wantWeeks[w.Week]; w.Received != want[0] || w.Completed != want[1] {
			t.Errorf("week %s: received %d, completed %d; want %d, %d", w.Week, w.Received, w.Completed, want[0], want[1])
		}
	}

	c := d.Completion
	if !c.Since.Equal(now.AddDate(0, 0, -90)) {
		t.Errorf("completion since %s", c.Since)
	}
	if want := (jobs.Percentiles{Key: "all", Count: 4, P50: 4, P90: 6, Max: 6}); c.All != want {
		t.Errorf("completion all = %+v, want %+v", c.All, want)
	}
	wantRight := []jobs.Percentiles{{"access", 1, 6, 6, 6}, {"copy", 2, 1, 4, 4}, {"delete", 1, 6, 6, 6}}
	if len(c.ByRight) != len(wantRight) {
		t.Fatalf("by right = %+v", c.ByRight)
	}
	for i, want := range wantRight {
		if c.ByRight[i] != want {
			t.Errorf("by right[%d] = %+v, want %+v", i, c.ByRight[i], want)
		}
	}
	wantChannel := []jobs.Percentiles{{"staff", 3, 4, 6, 6}, {"self_service", 1, 6, 6, 6}}
	if len(c.ByChannel) != len(wantChannel) {
		t.Fatalf("by channel = %+v", c.ByChannel)
	}
	for i, want := range wantChannel {
		if c.ByChannel[i] != want {
			t.Errorf("by channel[%d] = %+v, want %+v", i, c.ByChannel[i], want)
		}
	}

	// The JSON holds figures only, under stable names.
	raw, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"at", "products", "open", "open_total", "due", "due_total", "breaches_this_month",
		"breaches_this_month_total", "weeks", "weeks_time_zone", "completion"} {
		if _, ok := generic[key]; !ok {
			t.Errorf("JSON has no %q: %s", key, raw)
		}
	}
	if open := generic["open"].([]any)[1].(map[string]any); open["product"] != "webank" || open["overdue"] != 1.0 {
		t.Errorf("open[1] as JSON = %v", open)
	}

	// One product: its figures only.
	d, err = b.pipeline.Dashboard(context.Background(), []string{"wechat"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Open) != 1 || d.OpenTotal.Total != 2 || d.DueTotal.Within7 != 2 || d.BreachesTotal != 1 || d.Completion.All.Count != 2 {
		t.Errorf("wechat only: open %+v, due %+v, breaches %d, completion %+v", d.OpenTotal, d.DueTotal, d.BreachesTotal, d.Completion.All)
	}
	if w := d.Weeks[10]; w.Received != 2 || w.Completed != 1 {
		t.Errorf("wechat only, week %s = %+v", w.Week, w)
	}

	// An empty scope is no figures, and an unknown product an error.
	if d, err = b.pipeline.Dashboard(context.Background(), []string{}, now); err != nil || d.OpenTotal.Total != 0 || len(d.Weeks) != 12 {
		t.Errorf("no products: %+v, %v", d, err)
	}
	if _, err := b.pipeline.Dashboard(context.Background(), []string{"wechat", "webnak"}, now); rights.ErrorCode(err) != rights.EInvalid {
		t.Errorf("unknown product: %v, want invalid", err)
	}
}
