package metrics

import (
	"context"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Backlog is what the service still owes outside open requests: restricted
// data whose retention period has ended but that the sweep has not erased
// yet, and notices to third parties they have not acknowledged.
type Backlog struct {
	// HoldsRestricted are datasets kept restricted under a running period
	// (or with no end); HoldsOverdue those whose period has ended.
	HoldsRestricted, HoldsOverdue int
	// Unacknowledged counts notices not acknowledged, by recipient.
	Unacknowledged map[string]int
}

// SetBacklogSource sets the function that reads the backlog. Like the open
// requests, it is read from the database at scrape time, so every replica
// reports the same; take max across replicas. When it fails, the scrape
// reports no backlog series.
func (m *Metrics) SetBacklogSource(fn func(ctx context.Context) (Backlog, error)) {
	m.backlog.mu.Lock()
	defer m.backlog.mu.Unlock()
	m.backlog.source = fn
}

type backlogCollector struct {
	holds, notices *prometheus.Desc

	mu     sync.Mutex
	source func(ctx context.Context) (Backlog, error)
}

func newBacklogCollector() *backlogCollector {
	return &backlogCollector{
		holds: prometheus.NewDesc(namespace+"_retention_holds",
			"Datasets kept restricted by deletes and cancellations, by state: restricted (period running or no end) or overdue (period ended, not yet erased by the retention sweep). Read from the database at scrape time.",
			[]string{"state"}, nil),
		notices: prometheus.NewDesc(namespace+"_recipient_notices_unacknowledged",
			"Notices to third parties to erase shared data that they have not acknowledged (sent, or failed to send), by recipient. Read from the database at scrape time.",
			[]string{"recipient"}, nil),
	}
}

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.holds
	ch <- c.notices
}

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	source := c.source
	c.mu.Unlock()
	if source == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), openRequestsTimeout)
	defer cancel()
	b, err := source(ctx)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.holds, prometheus.GaugeValue, float64(b.HoldsRestricted), "restricted")
	ch <- prometheus.MustNewConstMetric(c.holds, prometheus.GaugeValue, float64(b.HoldsOverdue), "overdue")
	for recipient, n := range b.Unacknowledged {
		ch <- prometheus.MustNewConstMetric(c.notices, prometheus.GaugeValue, float64(n), recipient)
	}
}
