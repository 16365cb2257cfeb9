package metrics

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// TestNamesCoverEveryCollector guards Names against a new metric that the
// throwaway instance in names forgets to use: such a metric would be missing
// from Names, and dashboards could not use it.
func TestNamesCoverEveryCollector(t *testing.T) {
	t.Parallel()
	m := New()
	descs := make(chan *prometheus.Desc, 100)
	for _, c := range m.own {
		c.Describe(descs)
	}
	close(descs)
	var described []string
	for d := range descs {
		// Desc has no accessor for its name; its String form is stable:
		// Desc{fqName: "name", ...}.
		_, rest, _ := strings.Cut(d.String(), `fqName: "`)
		name, _, _ := strings.Cut(rest, `"`)
		described = append(described, name)
	}
	names := Names()
	for _, name := range described {
		found := false
		for _, n := range names {
			found = found || n == name
		}
		if !found {
			t.Errorf("%s is registered but missing from Names: use it in names()", name)
		}
	}
	own := 0
	for _, n := range names {
		if strings.HasPrefix(n, namespace+"_") {
			own++
		}
	}
	if own != len(described) {
		t.Errorf("Names has %d datarights families, the collectors describe %d: %v", own, len(described), described)
	}
}

// TestOpenRequestsTimeout checks a source that hangs costs the open-request
// series of one scrape, not the scrape.
func TestOpenRequestsTimeout(t *testing.T) {
	t.Parallel()
	m := New()
	m.open.timeout = 20 * time.Millisecond
	m.SetOpenRequestsSource(func(ctx context.Context) ([]OpenCount, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	start := time.Now()
	if n := testutil.CollectAndCount(m.open, "datarights_open_requests"); n != 0 {
		t.Errorf("%d open-request series after a timeout, want none", n)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("collect took %v despite the timeout", d)
	}
	if got := testutil.ToFloat64(m.open.errors); got != 1 {
		t.Errorf("scrape errors = %v, want 1", got)
	}
}

func TestObserveJob(t *testing.T) {
	t.Parallel()
	m := New()
	job := func(state rivertype.JobState) *rivertype.JobRow {
		return &rivertype.JobRow{Kind: "plan", State: state}
	}
	stats := &river.JobStatistics{RunDuration: 250 * time.Millisecond}
	for _, e := range []*river.Event{
		{Kind: river.EventKindJobCompleted, Job: job(rivertype.JobStateCompleted), JobStats: stats},
		{Kind: river.EventKindJobFailed, Job: job(rivertype.JobStateRetryable), JobStats: stats},
		{Kind: river.EventKindJobFailed, Job: job(rivertype.JobStateDiscarded), JobStats: stats},
		{Kind: river.EventKindJobCancelled, Job: job(rivertype.JobStateCancelled), JobStats: stats},
		{Kind: river.EventKindJobSnoozed, Job: job(rivertype.JobStateScheduled), JobStats: stats},
		// Events the watcher does not subscribe to, or without a job, are
		// ignored rather than miscounted.
		{Kind: river.EventKindJobInterrupted, Job: job(rivertype.JobStateAvailable), JobStats: stats},
		{Kind: river.EventKindQueuePaused, Queue: &rivertype.Queue{Name: "default"}},
		nil,
	} {
		m.observeJob(e)
	}
	for _, outcome := range []string{OutcomeCompleted, OutcomeFailed, OutcomeDiscarded, OutcomeCancelled, OutcomeSnoozed} {
		if got := testutil.ToFloat64(m.riverJobs.WithLabelValues("plan", outcome)); got != 1 {
			t.Errorf("plan %s = %v, want 1", outcome, got)
		}
	}
	if n := testutil.CollectAndCount(m.riverJobs); n != 5 {
		t.Errorf("%d job series, want 5", n)
	}
	if err := testutil.CollectAndCompare(m.riverDuration, strings.NewReader(`
# HELP datarights_river_job_duration_seconds Time River job runs spent in their worker, by job kind.
# TYPE datarights_river_job_duration_seconds histogram
datarights_river_job_duration_seconds_bucket{kind="plan",le="0.01"} 0
datarights_river_job_duration_seconds_bucket{kind="plan",le="0.05"} 0
datarights_river_job_duration_seconds_bucket{kind="plan",le="0.1"} 0
datarights_river_job_duration_seconds_bucket{kind="plan",le="0.25"} 5
datarights_river_job_duration_seconds_bucket{kind="plan",le="0.5"} 5
datarights_river_job_duration_seconds_bucket{kind="plan",le="1"} 5
datarights_river_job_duration_seconds_bucket{kind="plan",le="2.5"} 5
datarights_river_job_duration_seconds_bucket{kind="plan",le="5"} 5
datarights_river_job_duration_seconds_bucket{kind="plan",le="10"} 5
datarights_river_job_duration_seconds_bucket{kind="plan",le="30"} 5
datarights_river_job_duration_seconds_bucket{kind="plan",le="60"} 5
datarights_river_job_duration_seconds_bucket{kind="plan",le="120"} 5
datarights_river_job_duration_seconds_bucket{kind="plan",le="300"} 5
datarights_river_job_duration_seconds_bucket{kind="plan",le="600"} 5
datarights_river_job_duration_seconds_bucket{kind="plan",le="1800"} 5
datarights_river_job_duration_seconds_bucket{kind="plan",le="+Inf"} 5
datarights_river_job_duration_seconds_sum{kind="plan"} 1.25
datarights_river_job_duration_seconds_count{kind="plan"} 5
`)); err != nil {
		t.Error(err)
	}
}
