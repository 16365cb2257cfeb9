package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// OpenCount is how many open requests of a product are in a status and an
// SLA band (on_track, due_soon, overdue, paused, no_deadline).
type OpenCount struct {
	Product string
	Status  string
	Band    string
	Count   int
}

// openRequestsTimeout bounds one read of the open-request counts, well
// inside Prometheus' default 10s scrape timeout, so a slow database costs
// one missing sample rather than the whole scrape.
const openRequestsTimeout = 5 * time.Second

// SetOpenRequestsSource sets the function that returns the open-request
// counts. It is called on every scrape; the service's reads the counts one
// worker stored last, so every replica reports the same truth rather than
// what it happened to see; sum across replicas with max by (product,
// status, band), not sum. fn must
// honour its context's deadline. When it fails, the scrape reports no
// open-request series and increments
// datarights_open_requests_scrape_errors_total.
func (m *Metrics) SetOpenRequestsSource(fn func(ctx context.Context) ([]OpenCount, error)) {
	m.open.setSource(fn)
}

// openRequestsCollector reports the open_requests gauge from its source at
// collect time, and the errors reading it.
type openRequestsCollector struct {
	desc    *prometheus.Desc
	errors  prometheus.Counter
	timeout time.Duration // a field so tests can shorten it

	mu     sync.Mutex
	source func(ctx context.Context) ([]OpenCount, error)
}

func newOpenRequestsCollector() *openRequestsCollector {
	return &openRequestsCollector{
		desc: prometheus.NewDesc(namespace+"_open_requests",
			"Open requests (not completed, refused or cancelled) by product, status and SLA band, as last counted by a worker (sla.counts_interval).",
			[]string{"product", "status", "band"}, nil),
		// Not a vector, so it is reported as 0 from the start and
		// increase() sees the first error.
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "open_requests_scrape_errors_total",
			Help: "Scrapes in which the open-request counts could not be read; those scrapes report no open_requests.",
		}),
		timeout: openRequestsTimeout,
	}
}

func (c *openRequestsCollector) setSource(fn func(ctx context.Context) ([]OpenCount, error)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.source = fn
}

func (c *openRequestsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.desc
	c.errors.Describe(ch)
}

func (c *openRequestsCollector) Collect(ch chan<- prometheus.Metric) {
	defer c.errors.Collect(ch)
	c.mu.Lock()
	source := c.source
	c.mu.Unlock()
	if source == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	counts, err := source(ctx)
	if err != nil {
		// Reporting partial or stale counts would let an overdue alert
		// resolve on bad data; no series, plus the error count, is honest.
		c.errors.Inc()
		return
	}
	// Sum rows with the same labels: the registry rejects a scrape that
	// reports one series twice.
	type key struct{ product, status, band string }
	sums := map[key]int{}
	var order []key
	for _, oc := range counts {
		k := key{oc.Product, oc.Status, oc.Band}
		if _, seen := sums[k]; !seen {
			order = append(order, k)
		}
		sums[k] += oc.Count
	}
	for _, k := range order {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(sums[k]), k.product, k.status, k.band)
	}
}
