package metrics_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/datarights/datarights/metrics"
	"github.com/datarights/datarights/rights"
)

// family returns the gathered family called name, or nil when the registry
// reports no such family.
func family(t *testing.T, m *metrics.Metrics, name string) *dto.MetricFamily {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f
		}
	}
	return nil
}

// series returns the series of family name whose labels are exactly labels,
// or nil.
func series(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	f := family(t, m, name)
	if f == nil {
		return nil
	}
	for _, s := range f.GetMetric() {
		if len(s.GetLabel()) != len(labels) {
			continue
		}
		match := true
		for _, l := range s.GetLabel() {
			if v, ok := labels[l.GetName()]; !ok || v != l.GetValue() {
				match = false
			}
		}
		if match {
			return s
		}
	}
	return nil
}

// value is a series' counter or gauge value, or its histogram's sample
// count; 0 when the series does not exist.
func value(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	s := series(t, m, name, labels)
	switch {
	case s == nil:
		return 0
	case s.Counter != nil:
		return s.Counter.GetValue()
	case s.Gauge != nil:
		return s.Gauge.GetValue()
	case s.Histogram != nil:
		return float64(s.Histogram.GetSampleCount())
	}
	t.Fatalf("%s%v: unexpected metric type", name, labels)
	return 0
}

// seriesCount is how many series family name has.
func seriesCount(t *testing.T, m *metrics.Metrics, name string) int {
	t.Helper()
	n, err := testutil.GatherAndCount(m.Registry(), name)
	if err != nil {
		t.Fatalf("count %s: %v", name, err)
	}
	return n
}

func TestNew(t *testing.T) {
	t.Parallel()
	m := metrics.New()

	t.Run("RegistersRuntimeCollectors", func(t *testing.T) {
		t.Parallel()
		for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_start_time_seconds"} {
			if family(t, m, name) == nil {
				t.Errorf("%s not registered", name)
			}
		}
	})

	t.Run("PreCreatesNothing", func(t *testing.T) {
		t.Parallel()
		// Only the unlabelled scrape-errors counter exists before any event.
		families, err := metrics.New().Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			name := f.GetName()
			if strings.HasPrefix(name, "datarights_") && name != "datarights_open_requests_scrape_errors_total" {
				t.Errorf("%s reported before anything happened", name)
			}
		}
	})

	t.Run("OwnRegistry", func(t *testing.T) {
		t.Parallel()
		// Two instances in one process must not collide (a global registry
		// would panic on the second registration).
		a, b := metrics.New(), metrics.New()
		a.RequestBreached("webank")
		if got := value(t, b, "datarights_requests_breached_total", map[string]string{"product": "webank"}); got != 0 {
			t.Errorf("second instance sees the first one's breach: %v", got)
		}
	})
}

func TestRequestReceivedAndCompleted(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	m.RequestReceived("webank", rights.TypeAccess, rights.ChannelStaff)
	m.RequestReceived("webank", rights.TypeAccess, rights.ChannelStaff)
	m.RequestReceived("wechat", rights.TypeDelete, rights.ChannelSelfService)
	m.RequestCompleted("webank", rights.TypeAccess, rights.ChannelStaff, 4)
	m.RequestCompleted("webank", rights.TypeAccess, rights.ChannelSelfService, 16)

	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"datarights_requests_received_total", map[string]string{"product": "webank", "type": "access", "channel": "staff"}, 2},
		{"datarights_requests_received_total", map[string]string{"product": "wechat", "type": "delete", "channel": "self_service"}, 1},
		{"datarights_requests_completed_total", map[string]string{"product": "webank", "type": "access", "channel": "staff"}, 1},
		{"datarights_requests_completed_total", map[string]string{"product": "webank", "type": "access", "channel": "self_service"}, 1},
		// The histogram has no channel: both completions land in one series.
		{"datarights_request_completion_working_days", map[string]string{"product": "webank", "type": "access"}, 2},
	} {
		if got := value(t, m, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}

	want := `
# HELP datarights_request_completion_working_days Working days from the start of the deadline clock to completion, by product and right.
# TYPE datarights_request_completion_working_days histogram
datarights_request_completion_working_days_bucket{product="webank",type="access",le="1"} 0
datarights_request_completion_working_days_bucket{product="webank",type="access",le="2"} 0
datarights_request_completion_working_days_bucket{product="webank",type="access",le="3"} 0
datarights_request_completion_working_days_bucket{product="webank",type="access",le="5"} 1
datarights_request_completion_working_days_bucket{product="webank",type="access",le="7"} 1
datarights_request_completion_working_days_bucket{product="webank",type="access",le="10"} 1
datarights_request_completion_working_days_bucket{product="webank",type="access",le="12"} 1
datarights_request_completion_working_days_bucket{product="webank",type="access",le="15"} 1
datarights_request_completion_working_days_bucket{product="webank",type="access",le="20"} 2
datarights_request_completion_working_days_bucket{product="webank",type="access",le="30"} 2
datarights_request_completion_working_days_bucket{product="webank",type="access",le="+Inf"} 2
datarights_request_completion_working_days_sum{product="webank",type="access"} 20
datarights_request_completion_working_days_count{product="webank",type="access"} 2
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "datarights_request_completion_working_days"); err != nil {
		t.Error(err)
	}
}

func TestRequestBreached(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	m.RequestBreached("webank")
	m.RequestBreached("webank")
	m.RequestBreached("wechat")
	if got := value(t, m, "datarights_requests_breached_total", map[string]string{"product": "webank"}); got != 2 {
		t.Errorf("webank breaches = %v, want 2", got)
	}
	if got := seriesCount(t, m, "datarights_requests_breached_total"); got != 2 {
		t.Errorf("%d breach series, want 2", got)
	}
}

func TestRequestRefused(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	m.RequestRefused("webank", "manifestly_unfounded")
	// Free text, which could name the requester, must not become a label.
	m.RequestRefused("webank", "张三 asked for the third time")
	m.RequestRefused("webank", "")
	m.RequestRefused("webank", "Not_A_Code")

	if got := value(t, m, "datarights_requests_refused_total", map[string]string{"product": "webank", "reason": "manifestly_unfounded"}); got != 1 {
		t.Errorf("manifestly_unfounded = %v, want 1", got)
	}
	if got := value(t, m, "datarights_requests_refused_total", map[string]string{"product": "webank", "reason": "other"}); got != 3 {
		t.Errorf("other = %v, want 3", got)
	}
	if got := seriesCount(t, m, "datarights_requests_refused_total"); got != 2 {
		t.Errorf("%d refusal series, want 2", got)
	}
}

func TestStoreTask(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	m.StoreTask("core_db", "export", 2*time.Second, nil)
	if f := family(t, m, "datarights_store_task_errors_total"); f != nil {
		t.Errorf("a successful attempt created the errors counter: %v", f)
	}
	m.StoreTask("core_db", "export", 500*time.Millisecond, errors.New("connection refused"))
	m.StoreTask("core_db", "delete", time.Second, nil)

	labels := map[string]string{"store": "core_db", "action": "export"}
	if got := value(t, m, "datarights_store_task_duration_seconds", labels); got != 2 {
		t.Errorf("timed export attempts = %v, want 2 (failed attempts are timed too)", got)
	}
	if got := series(t, m, "datarights_store_task_duration_seconds", labels).GetHistogram().GetSampleSum(); got != 2.5 {
		t.Errorf("export seconds = %v, want 2.5", got)
	}
	if got := value(t, m, "datarights_store_task_errors_total", labels); got != 1 {
		t.Errorf("export errors = %v, want 1", got)
	}
	if s := series(t, m, "datarights_store_task_errors_total", map[string]string{"store": "core_db", "action": "delete"}); s != nil {
		t.Errorf("delete has an errors series without an error: %v", s)
	}
}

func TestCalendarMissing(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	m.CalendarMissing("webank", 2027)
	m.CalendarMissing("webank", 2027)
	m.CalendarMissing("webank", 2028)
	if got := value(t, m, "datarights_deadline_calendar_missing_total", map[string]string{"product": "webank", "year": "2027"}); got != 2 {
		t.Errorf("2027 = %v, want 2", got)
	}
	if got := value(t, m, "datarights_deadline_calendar_missing_total", map[string]string{"product": "webank", "year": "2028"}); got != 1 {
		t.Errorf("2028 = %v, want 1", got)
	}
}

func TestReminder(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	for _, kind := range []string{"50pct", "80pct", "80pct", "breach"} {
		m.Reminder(kind)
	}
	for kind, want := range map[string]float64{"50pct": 1, "80pct": 2, "breach": 1} {
		if got := value(t, m, "datarights_sla_reminders_total", map[string]string{"kind": kind}); got != want {
			t.Errorf("%s reminders = %v, want %v", kind, got, want)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				m.RequestReceived("webank", rights.TypeCopy, rights.ChannelStaff)
			}
		})
	}
	wg.Wait()
	if got := value(t, m, "datarights_requests_received_total", map[string]string{"product": "webank", "type": "copy", "channel": "staff"}); got != 800 {
		t.Errorf("received = %v, want 800", got)
	}
}

func TestHandler(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	m.RequestReceived("webank", rights.TypeAccess, rights.ChannelStaff)

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want the text exposition format", ct)
	}
	for _, want := range []string{
		`datarights_requests_received_total{channel="staff",product="webank",type="access"} 1`,
		"datarights_open_requests_scrape_errors_total 0",
		"go_goroutines ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	names := metrics.Names()
	if !slices.IsSorted(names) {
		t.Errorf("Names is not sorted: %v", names)
	}
	if len(slices.Compact(slices.Clone(names))) != len(names) {
		t.Errorf("Names has duplicates: %v", names)
	}
	for _, want := range []string{
		"datarights_requests_received_total",
		"datarights_requests_completed_total",
		"datarights_request_completion_working_days",
		"datarights_requests_breached_total",
		"datarights_requests_refused_total",
		"datarights_open_requests",
		"datarights_open_requests_scrape_errors_total",
		"datarights_store_task_duration_seconds",
		"datarights_store_task_errors_total",
		"datarights_deadline_calendar_missing_total",
		"datarights_sla_reminders_total",
		"datarights_river_jobs_total",
		"datarights_river_job_duration_seconds",
		"go_goroutines",
		"process_start_time_seconds",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("Names lacks %s", want)
		}
	}
	names[0] = "changed by the caller"
	if metrics.Names()[0] == "changed by the caller" {
		t.Error("Names returns its own slice, which callers can change")
	}
}

// TestLint holds the service's own metrics to Prometheus' naming rules
// (units, _total on counters, help text).
func TestLint(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	m.RequestReceived("p", rights.TypeAccess, rights.ChannelStaff)
	m.RequestCompleted("p", rights.TypeAccess, rights.ChannelStaff, 1)
	m.RequestBreached("p")
	m.RequestRefused("p", "r")
	m.StoreTask("s", "export", time.Second, errors.New("x"))
	m.CalendarMissing("p", 2030)
	m.Reminder("breach")
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		// Working days are the law's unit, not a duration: they skip
		// weekends and holidays and cannot be converted to seconds.
		if p.Metric == "datarights_request_completion_working_days" && strings.Contains(p.Text, `"days"`) {
			continue
		}
		if strings.HasPrefix(p.Metric, "datarights_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}
