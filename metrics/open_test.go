package metrics_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/datarights/datarights/metrics"
)

func TestOpenRequests(t *testing.T) {
	t.Parallel()

	t.Run("ReadAtScrapeTime", func(t *testing.T) {
		t.Parallel()
		m := metrics.New()
		var calls atomic.Int32
		m.SetOpenRequestsSource(func(ctx context.Context) ([]metrics.OpenCount, error) {
			calls.Add(1)
			if _, ok := ctx.Deadline(); !ok {
				t.Error("the source's context has no deadline: a slow database would hang the scrape")
			}
			return []metrics.OpenCount{
				{Product: "webank", Status: "in_progress", Band: "on_track", Count: 3},
				{Product: "webank", Status: "in_progress", Band: "overdue", Count: 1},
				{Product: "wechat", Status: "paused", Band: "paused", Count: 2},
			}, nil
		})
		if calls.Load() != 0 {
			t.Fatal("the source was called before any scrape")
		}
		want := `
# HELP datarights_open_requests Open requests (not completed, refused or cancelled) by product, status and SLA band, as last counted by a worker (sla.counts_interval).
# TYPE datarights_open_requests gauge
datarights_open_requests{band="on_track",product="webank",status="in_progress"} 3
datarights_open_requests{band="overdue",product="webank",status="in_progress"} 1
datarights_open_requests{band="paused",product="wechat",status="paused"} 2
# HELP datarights_open_requests_scrape_errors_total Scrapes in which the open-request counts could not be read; those scrapes report no open_requests.
# TYPE datarights_open_requests_scrape_errors_total counter
datarights_open_requests_scrape_errors_total 0
`
		if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
			"datarights_open_requests", "datarights_open_requests_scrape_errors_total"); err != nil {
			t.Error(err)
		}
		if calls.Load() != 1 {
			t.Errorf("source called %d times in one scrape, want 1", calls.Load())
		}
	})

	t.Run("DuplicateRowsAreSummed", func(t *testing.T) {
		t.Parallel()
		m := metrics.New()
		m.SetOpenRequestsSource(func(context.Context) ([]metrics.OpenCount, error) {
			return []metrics.OpenCount{
				{Product: "webank", Status: "verified", Band: "due_soon", Count: 2},
				{Product: "webank", Status: "verified", Band: "due_soon", Count: 5},
			}, nil
		})
		if got := value(t, m, "datarights_open_requests", map[string]string{"product": "webank", "status": "verified", "band": "due_soon"}); got != 7 {
			t.Errorf("due_soon = %v, want 7", got)
		}
	})

	t.Run("NoSource", func(t *testing.T) {
		t.Parallel()
		m := metrics.New()
		if n := seriesCount(t, m, "datarights_open_requests"); n != 0 {
			t.Errorf("%d open-request series without a source", n)
		}
		if got := value(t, m, "datarights_open_requests_scrape_errors_total", map[string]string{}); got != 0 {
			t.Errorf("scrape errors = %v without a source, want 0", got)
		}
	})

	t.Run("Error", func(t *testing.T) {
		t.Parallel()
		m := metrics.New()
		var failing atomic.Bool
		failing.Store(true)
		m.SetOpenRequestsSource(func(context.Context) ([]metrics.OpenCount, error) {
			if failing.Load() {
				// Partial rows with an error must not be reported.
				return []metrics.OpenCount{{Product: "webank", Status: "received", Band: "on_track", Count: 1}},
					errors.New("count open requests: connection refused")
			}
			return []metrics.OpenCount{{Product: "webank", Status: "received", Band: "overdue", Count: 4}}, nil
		})

		for scrape := 1; scrape <= 2; scrape++ {
			// One Gather is one scrape: the source is called once.
			families, err := m.Registry().Gather()
			if err != nil {
				t.Fatalf("scrape %d: gather: %v (a failing source must not fail the scrape)", scrape, err)
			}
			var errorsTotal float64
			for _, f := range families {
				switch f.GetName() {
				case "datarights_open_requests":
					t.Errorf("scrape %d: %d open-request series from a failing source, want none", scrape, len(f.GetMetric()))
				case "datarights_open_requests_scrape_errors_total":
					errorsTotal = f.GetMetric()[0].GetCounter().GetValue()
				}
			}
			if errorsTotal != float64(scrape) {
				t.Errorf("scrape %d: scrape errors = %v, want %d", scrape, errorsTotal, scrape)
			}
		}

		failing.Store(false) // the database is back
		want := `
# HELP datarights_open_requests Open requests (not completed, refused or cancelled) by product, status and SLA band, as last counted by a worker (sla.counts_interval).
# TYPE datarights_open_requests gauge
datarights_open_requests{band="overdue",product="webank",status="received"} 4
# HELP datarights_open_requests_scrape_errors_total Scrapes in which the open-request counts could not be read; those scrapes report no open_requests.
# TYPE datarights_open_requests_scrape_errors_total counter
datarights_open_requests_scrape_errors_total 2
`
		if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
			"datarights_open_requests", "datarights_open_requests_scrape_errors_total"); err != nil {
			t.Errorf("after recovery: %v", err)
		}
	})

	t.Run("ErrorKeepsOtherMetrics", func(t *testing.T) {
		t.Parallel()
		m := metrics.New()
		m.RequestBreached("webank")
		m.SetOpenRequestsSource(func(context.Context) ([]metrics.OpenCount, error) {
			return nil, errors.New("timeout")
		})
		if got := value(t, m, "datarights_requests_breached_total", map[string]string{"product": "webank"}); got != 1 {
			t.Errorf("breaches = %v while the open counts fail, want 1", got)
		}
	})
}
