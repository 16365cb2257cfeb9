// Package metrics is datarights' Prometheus instrumentation: how many rights
// requests arrive, finish, breach their legal deadline or are refused, how
// long they and their store tasks take, how River's jobs end, and how many
// requests are open in each SLA band.
//
// Labels carry only values that come from code or configuration: product,
// right (type), channel, status, band, store, action, reason code, reminder
// kind, job kind, outcome and calendar year. Never a request id, identity,
// email address or free text: metrics leave the service unaudited, and every
// distinct label value is a time series kept for weeks.
//
// Counters and histograms with labels appear on the first event that uses a
// label combination; nothing is pre-created with made-up values. A dashboard
// or alert that must show 0 before the first event uses an `or vector(0)`
// query, and one that must see the first event of a new series compares with
// the series' absence a while ago (see deploy/prometheus/alerts.yml), because
// increase() needs two samples.
package metrics

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/datarights/datarights/rights"
)

// namespace prefixes every metric the service defines.
const namespace = "datarights"

// Buckets of the histograms. Completion is counted in working days because
// that is how the law counts it (15 working days is a common limit); store
// tasks and River jobs range from a quick delete to a long export.
var (
	completionDayBuckets = []float64{1, 2, 3, 5, 7, 10, 12, 15, 20, 30}
	durationBuckets      = []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800}
)

// Metrics holds the service's metrics in a registry of its own, so tests and
// several instances in one process never collide in the global registry.
// Its methods are safe for concurrent use.
type Metrics struct {
	registry *prometheus.Registry
	handler  http.Handler

	received        *prometheus.CounterVec
	completed       *prometheus.CounterVec
	completionDays  *prometheus.HistogramVec
	breached        *prometheus.CounterVec
	refused         *prometheus.CounterVec
	storeDuration   *prometheus.HistogramVec
	storeErrors     *prometheus.CounterVec
	calendarMissing *prometheus.CounterVec
	reminders       *prometheus.CounterVec
	riverJobs       *prometheus.CounterVec
	riverDuration   *prometheus.HistogramVec
	retention       *prometheus.CounterVec
	consent         *prometheus.CounterVec
	notices         *prometheus.CounterVec
	stepsFailed     *prometheus.CounterVec
	sendRecorded    *prometheus.HistogramVec
	open            *openRequestsCollector
	backlog         *backlogCollector

	// own lists the collectors above, for the test that checks Names sees
	// every one of them.
	own []prometheus.Collector
}

// New returns metrics registered in a new registry together with the Go
// runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "requests_received_total",
			Help: "Rights requests received, by product, right and channel.",
		}, []string{"product", "type", "channel"}),
		completed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "requests_completed_total",
			Help: "Rights requests completed (result delivered), by product, right and channel.",
		}, []string{"product", "type", "channel"}),
		completionDays: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "request_completion_working_days",
			Help:    "Working days from the start of the deadline clock to completion, by product and right.",
			Buckets: completionDayBuckets,
		}, []string{"product", "type"}),
		breached: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "requests_breached_total",
			Help: "Requests whose legal deadline passed while they were still open, by product.",
		}, []string{"product"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "requests_refused_total",
			Help: "Requests refused, by product and configured reason code.",
		}, []string{"product", "reason"}),
		storeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "store_task_duration_seconds",
			Help:    "Duration of store task attempts (successful or not), by store and action.",
			Buckets: durationBuckets,
		}, []string{"store", "action"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "store_task_errors_total",
			Help: "Store task attempts that failed, by store and action.",
		}, []string{"store", "action"}),
		calendarMissing: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "deadline_calendar_missing_total",
			Help: "Deadlines counted through a year with no published holiday calendar (weekends only), by product and year.",
		}, []string{"product", "year"}),
		reminders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "sla_reminders_total",
			Help: "SLA reminders and breach notices sent to staff, by kind.",
		}, []string{"kind"}),
		riverJobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "river_jobs_total",
			Help: "River job runs worked by this process, by job kind and outcome (completed, failed, discarded, cancelled, snoozed).",
		}, []string{"kind", "outcome"}),
		riverDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "river_job_duration_seconds",
			Help:    "Time River job runs spent in their worker, by job kind.",
			Buckets: durationBuckets,
		}, []string{"kind"}),
		retention: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "retention_releases_total",
			Help: "Restricted datasets the retention sweep erased (released) or found still under a running period (extended), by store.",
		}, []string{"store", "outcome"}),
		consent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "consent_withdrawals_total",
			Help: "Consents withdrawn in the consent ledger, by product, purpose and source (request, cancellation, api).",
		}, []string{"product", "purpose", "source"}),
		notices: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "recipient_notices_total",
			Help: "Notices to third parties to erase shared data, by recipient and what became of them (sent, acknowledged, failed).",
		}, []string{"recipient", "outcome"}),
		stepsFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "steps_failed_total",
			Help: "Steps of requests that ran out of attempts and wait for staff to resume them, by job kind and error class.",
		}, []string{"kind", "error_class"}),
		sendRecorded: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "send_to_record_seconds",
			Help:    "Time from a completion email accepted by the mail server to the commit recording it: the window in which a crash sends the same message again.",
			Buckets: []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"kind"}),
		open:    newOpenRequestsCollector(),
		backlog: newBacklogCollector(),
	}
	m.own = []prometheus.Collector{
		m.received, m.completed, m.completionDays, m.breached, m.refused,
		m.storeDuration, m.storeErrors, m.calendarMissing, m.reminders,
		m.riverJobs, m.riverDuration, m.retention, m.consent, m.notices, m.stepsFailed, m.sendRecorded, m.open, m.backlog,
	}
	m.registry.MustRegister(m.own...)
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	// ContinueOnError: a collector that fails must not blank the SLA metrics
	// of every other one; its failure is counted in
	// promhttp_metric_handler_errors_total instead.
	m.handler = promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.registry,
	})
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler { return m.handler }

// Registry is the registry the metrics live in, for tests and for adding
// collectors of other components.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// RetentionReleased counts a restricted dataset the retention sweep looked
// at: erased (released) or kept for a period that runs on.
func (m *Metrics) RetentionReleased(store string, released bool) {
	outcome := "extended"
	if released {
		outcome = "released"
	}
	m.retention.WithLabelValues(store, outcome).Inc()
}

// ConsentWithdrawn counts a consent withdrawn in the ledger.
func (m *Metrics) ConsentWithdrawn(product, purpose, source string) {
	m.consent.WithLabelValues(product, purpose, source).Inc()
}

// RecipientNotice counts what became of a notice to a third party.
func (m *Metrics) RecipientNotice(recipient, outcome string) {
	m.notices.WithLabelValues(recipient, outcome).Inc()
}

// SendRecorded observes the time from a sent completion email to the
// commit that records it.
func (m *Metrics) SendRecorded(d time.Duration) {
	m.sendRecorded.WithLabelValues("completion").Observe(d.Seconds())
}

// StepFailed counts a request's step that ran out of attempts.
func (m *Metrics) StepFailed(kind, errorClass string) {
	m.stepsFailed.WithLabelValues(kind, errorClass).Inc()
}

// RequestReceived counts a new request.
func (m *Metrics) RequestReceived(product string, t rights.Type, ch rights.Channel) {
	m.received.WithLabelValues(product, string(t), string(ch)).Inc()
}

// RequestCompleted counts a completed request and records how many working
// days it took.
func (m *Metrics) RequestCompleted(product string, t rights.Type, ch rights.Channel, workingDays float64) {
	m.completed.WithLabelValues(product, string(t), string(ch)).Inc()
	m.completionDays.WithLabelValues(product, string(t)).Observe(workingDays)
}

// RequestBreached counts a request whose deadline passed while it was open.
func (m *Metrics) RequestBreached(product string) {
	m.breached.WithLabelValues(product).Inc()
}

// reasonCode is the shape of a refusal reason code from configuration.
var reasonCode = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// RequestRefused counts a refused request. reason must be a code from
// configuration such as "manifestly_unfounded"; anything else is counted as
// "other", because free text could carry personal data into the metrics and
// would make a new time series per refusal.
func (m *Metrics) RequestRefused(product string, reason string) {
	if !reasonCode.MatchString(reason) {
		reason = "other"
	}
	m.refused.WithLabelValues(product, reason).Inc()
}

// StoreTask records one attempt of a store task. Every attempt is timed,
// failed ones too, so the errors counter divided by the duration count is the
// error ratio.
func (m *Metrics) StoreTask(store, action string, d time.Duration, err error) {
	m.storeDuration.WithLabelValues(store, action).Observe(d.Seconds())
	if err != nil {
		m.storeErrors.WithLabelValues(store, action).Inc()
	}
}

// CalendarMissing counts a deadline computed through a year for which no
// holiday calendar is loaded, so it was counted on weekends only and may be
// wrong. Operations must load that year's calendar.
func (m *Metrics) CalendarMissing(product string, year int) {
	m.calendarMissing.WithLabelValues(product, strconv.Itoa(year)).Inc()
}

// Reminder counts an SLA reminder sent to staff; kind is e.g. "50pct",
// "80pct" or "breach".
func (m *Metrics) Reminder(kind string) {
	m.reminders.WithLabelValues(kind).Inc()
}

// Outcomes of River job runs, the values of river_jobs_total's outcome label.
const (
	OutcomeCompleted = "completed"
	OutcomeFailed    = "failed"    // errored; River will retry it
	OutcomeDiscarded = "discarded" // errored for the last time; River gives up
	OutcomeCancelled = "cancelled"
	OutcomeSnoozed   = "snoozed"
)

// riverEventBuffer is how many events may wait for the watcher. River drops
// events that do not fit (it completes jobs in batches of up to thousands),
// so the buffer is larger than River's default of 1000.
const riverEventBuffer = 10_000

// WatchRiver counts how client's job runs end, by job kind and outcome, and
// how long they ran. stop ends the watch after counting the events already
// received; it is safe to call more than once. A client that works no jobs
// (insert only) has nothing to watch, and stop does nothing.
func (m *Metrics) WatchRiver(client *river.Client[pgx.Tx]) (stop func()) {
	events, cancel, ok := subscribe(client)
	if !ok {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range events {
			m.observeJob(e)
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel() // closes events, unless stopping the client already did
			<-done
		})
	}
}

// subscribe subscribes to the events of finished job runs. River panics when
// a client that works no jobs is asked for a subscription, and has no other
// way to tell such a client apart, hence the recover.
func subscribe(client *river.Client[pgx.Tx]) (events <-chan *river.Event, cancel func(), ok bool) {
	if client == nil {
		return nil, nil, false
	}
	defer func() {
		if recover() != nil {
			events, cancel, ok = nil, nil, false
		}
	}()
	events, cancel = client.SubscribeConfig(&river.SubscribeConfig{
		ChanSize: riverEventBuffer,
		Kinds: []river.EventKind{
			river.EventKindJobCompleted,
			river.EventKindJobFailed,
			river.EventKindJobCancelled,
			river.EventKindJobSnoozed,
		},
	})
	return events, cancel, true
}

// observeJob counts one finished job run.
func (m *Metrics) observeJob(e *river.Event) {
	if e == nil || e.Job == nil {
		return
	}
	var outcome string
	switch e.Kind {
	case river.EventKindJobCompleted:
		outcome = OutcomeCompleted
	case river.EventKindJobFailed:
		outcome = OutcomeFailed
		if e.Job.State == rivertype.JobStateDiscarded {
			outcome = OutcomeDiscarded
		}
	case river.EventKindJobCancelled:
		outcome = OutcomeCancelled
	case river.EventKindJobSnoozed:
		outcome = OutcomeSnoozed
	default:
		return
	}
	m.riverJobs.WithLabelValues(e.Job.Kind, outcome).Inc()
	if e.JobStats != nil {
		m.riverDuration.WithLabelValues(e.Job.Kind).Observe(e.JobStats.RunDuration.Seconds())
	}
}

// Names lists every metric family the service exports, sorted: its own and
// the Go runtime and process families. It is derived from what a registry
// actually gathers, so it cannot drift from the code; dashboards and alert
// rules are checked against it.
func Names() []string { return slices.Clone(names()) }

var names = sync.OnceValue(func() []string {
	// Use every labelled metric once in a throwaway instance: a vector has
	// no series, and so is not gathered, until it is used.
	m := New()
	m.RequestReceived("product", rights.TypeAccess, rights.ChannelStaff)
	m.RequestCompleted("product", rights.TypeAccess, rights.ChannelStaff, 1)
	m.RequestBreached("product")
	m.RequestRefused("product", "reason")
	m.StoreTask("store", "export", time.Second, errors.New("failed"))
	m.CalendarMissing("product", 2000)
	m.Reminder("breach")
	m.RetentionReleased("store", true)
	m.ConsentWithdrawn("product", "purpose", "request")
	m.RecipientNotice("recipient", "sent")
	m.StepFailed("plan", "network")
	m.SendRecorded(time.Millisecond)
	m.observeJob(&river.Event{Kind: river.EventKindJobCompleted,
		Job: &rivertype.JobRow{Kind: "kind"}, JobStats: &river.JobStatistics{}})
	m.SetOpenRequestsSource(func(context.Context) ([]OpenCount, error) {
		return []OpenCount{{Product: "product", Status: "received", Band: "on_track", Count: 1}}, nil
	})
	m.SetBacklogSource(func(context.Context) (Backlog, error) {
		return Backlog{Unacknowledged: map[string]int{"recipient": 1}}, nil
	})
	families, err := m.registry.Gather()
	if err != nil {
		panic("metrics: gather: " + err.Error())
	}
	out := make([]string, len(families))
	for i, f := range families {
		out[i] = f.GetName()
	}
	slices.Sort(out)
	return out
})
