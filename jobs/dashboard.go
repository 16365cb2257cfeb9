package jobs

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// Dashboard is the SLA dashboard's figures at one instant, for the products
// it was asked for. It holds counts and durations only: no request ids, no
// personal data.
type Dashboard struct {
	At       time.Time `json:"at"`
	Products []string  `json:"products"`

	// Open counts the open requests of each product by SLA band (the bands
	// of Pipeline.Band and the list's band filter); OpenTotal adds them up.
	Open      []ProductBands `json:"open"`
	OpenTotal BandCounts     `json:"open_total"`

	// Due counts each product's open requests with a running clock by when
	// they are due; DueTotal adds them up.
	Due      []ProductDue `json:"due"`
	DueTotal DueCounts    `json:"due_total"`

	// Breaches counts the requests whose deadline passed this month, in
	// each product's time zone.
	Breaches      []ProductBreaches `json:"breaches_this_month"`
	BreachesTotal int               `json:"breaches_this_month_total"`

	// Weeks are the last 12 ISO weeks, oldest first, the current one last
	// (so far), in WeeksTimeZone: requests received and completed in each,
	// all products together.
	Weeks         []WeekFlow `json:"weeks"`
	WeeksTimeZone string     `json:"weeks_time_zone"`

	// Completion is how long the requests completed in the last 90 days
	// took.
	Completion CompletionTimes `json:"completion"`
}

// BandCounts counts open requests by SLA band.
type BandCounts struct {
	Overdue    int `json:"overdue"`
	DueSoon    int `json:"due_soon"`
	OnTrack    int `json:"on_track"`
	Paused     int `json:"paused"`
	NoDeadline int `json:"no_deadline"`
	Total      int `json:"total"`
}

// Of returns the count of band b (0 for closed, which are not open).
func (c BandCounts) Of(b rights.Band) int {
	switch b {
	case rights.BandOverdue:
		return c.Overdue
	case rights.BandDueSoon:
		return c.DueSoon
	case rights.BandOnTrack:
		return c.OnTrack
	case rights.BandPaused:
		return c.Paused
	case rights.BandNoDeadline:
		return c.NoDeadline
	}
	return 0
}

func (c *BandCounts) add(b rights.Band, n int) {
	switch b {
	case rights.BandOverdue:
		c.Overdue += n
	case rights.BandDueSoon:
		c.DueSoon += n
	case rights.BandOnTrack:
		c.OnTrack += n
	case rights.BandPaused:
		c.Paused += n
	case rights.BandNoDeadline:
		c.NoDeadline += n
	default:
		return
	}
	c.Total += n
}

// OpenBands are the bands an open request can be in, in queue order.
var OpenBands = []rights.Band{rights.BandOverdue, rights.BandDueSoon, rights.BandOnTrack, rights.BandPaused, rights.BandNoDeadline}

// ProductBands is one product's open requests by band.
type ProductBands struct {
	Product string `json:"product"`
	BandCounts
}

// DueCounts counts open requests whose clock is running (not paused, with
// a deadline) by when they are due. Overdue ones (due_at at or before the
// dashboard's instant) are counted apart; WithinN counts the others due by
// the N-day cut-off, cumulatively (Within3 includes Within1).
type DueCounts struct {
	Overdue int `json:"overdue"`
	Within1 int `json:"within_1_day"`
	Within3 int `json:"within_3_days"`
	Within7 int `json:"within_7_days"`
}

// ProductDue is one product's DueCounts and its cut-offs. Days count as the
// product's deadline counts them (Unit): working days on its calendar, or
// calendar days. The N-day cut-off is 24:00 local time of the Nth such day
// after today, so "within 1 working day" is due by the end of the next
// working day (today's included).
type ProductDue struct {
	Product string              `json:"product"`
	Unit    rights.DeadlineKind `json:"unit"`
	Cutoff1 time.Time           `json:"cutoff_1_day"`
	Cutoff3 time.Time           `json:"cutoff_3_days"`
	Cutoff7 time.Time           `json:"cutoff_7_days"`
	DueCounts
}

// ProductBreaches is how many of a product's requests breached their
// deadline in Month (YYYY-MM in the product's time zone).
type ProductBreaches struct {
	Product string `json:"product"`
	Month   string `json:"month"`
	Count   int    `json:"count"`
}

// WeekFlow is one ISO week's received and completed (status completed)
// requests.
type WeekFlow struct {
	Week      string `json:"week"`  // ISO week, e.g. "2026-W10"
	Start     string `json:"start"` // its Monday, YYYY-MM-DD
	Received  int    `json:"received"`
	Completed int    `json:"completed"`
}

// CompletionTimes are completion-time percentiles of the requests completed
// (status completed) since Since, in working days on each product's
// calendar from the clock's start (the start day not counted, the
// completion day counted: as deadlines count).
type CompletionTimes struct {
	Since     time.Time     `json:"since"`
	All       Percentiles   `json:"all"`
	ByRight   []Percentiles `json:"by_right"`   // in rights.Types order, rights with none left out
	ByChannel []Percentiles `json:"by_channel"` // staff, then self_service, channels with none left out
}

// Percentiles summarise completion times: P50 and P90 by nearest rank (the
// smallest time at least that share of requests took no longer than), and
// the longest. All are 0 when Count is.
type Percentiles struct {
	Key   string  `json:"key"` // the right or channel; "all"
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	Max   float64 `json:"max"`
}

// Dashboard windows.
const (
	DashboardWeeks          = 12
	DashboardCompletionDays = 90
)

// Dashboard computes the SLA dashboard's figures at now for products (nil:
// every configured product; a staff member's scope otherwise). An unknown
// product is an EInvalid error.
func (p *Pipeline) Dashboard(ctx context.Context, products []string, now time.Time) (*Dashboard, error) {
	if products == nil {
		for _, prod := range p.settings.Products {
			products = append(products, prod.Name)
		}
	}
	var problems rights.Problems
	for _, name := range products {
		if _, ok := p.policies[name]; !ok {
			problems.Add("product", "unknown product %q", name)
		}
	}
	if err := problems.Err(); err != nil {
		return nil, err
	}
	products = slices.Clone(products)
	d := &Dashboard{At: now, Products: products}
	if err := p.dashboardOpen(ctx, d, now); err != nil {
		return nil, err
	}
	if err := p.dashboardDue(ctx, d, now); err != nil {
		return nil, err
	}
	if err := p.dashboardBreaches(ctx, d, now); err != nil {
		return nil, err
	}
	if err := p.dashboardWeeks(ctx, d, now); err != nil {
		return nil, err
	}
	if err := p.dashboardCompletion(ctx, d, now); err != nil {
		return nil, err
	}
	return d, nil
}

func (p *Pipeline) dashboardOpen(ctx context.Context, d *Dashboard, now time.Time) error {
	counts, err := storage.CountOpen(ctx, p.db.Pool, now, p.settings.SLA.DueSoonAt)
	if err != nil {
		return err
	}
	byProduct := map[string]*BandCounts{}
	for _, c := range counts {
		if !slices.Contains(d.Products, c.Product) {
			continue
		}
		if byProduct[c.Product] == nil {
			byProduct[c.Product] = &BandCounts{}
		}
		byProduct[c.Product].add(rights.Band(c.Band), c.Count)
		d.OpenTotal.add(rights.Band(c.Band), c.Count)
	}
	d.Open = []ProductBands{}
	for _, name := range d.Products {
		pb := ProductBands{Product: name}
		if c := byProduct[name]; c != nil {
			pb.BandCounts = *c
		}
		d.Open = append(d.Open, pb)
	}
	return nil
}

// cutoff is 24:00 local time of the nth day (as product's deadlines count
// days) after now's day.
func (p *Pipeline) cutoff(product string, now time.Time, n int) time.Time {
	policy := p.policies[product]
	count := rights.DeadlinePolicy{Kind: policy.Kind, Days: n, ClockStart: rights.ClockReceived,
		Location: p.location(product), Calendar: policy.Calendar}
	return count.Compute(now, rights.ClockState{}, now).Due
}

func (p *Pipeline) dashboardDue(ctx context.Context, d *Dashboard, now time.Time) error {
	windows := make([]storage.DueWindow, len(d.Products))
	d.Due = make([]ProductDue, len(d.Products))
	for i, name := range d.Products {
		windows[i] = storage.DueWindow{Product: name, Within1: p.cutoff(name, now, 1),
			Within3: p.cutoff(name, now, 3), Within7: p.cutoff(name, now, 7)}
		d.Due[i] = ProductDue{Product: name, Unit: p.policies[name].Kind,
			Cutoff1: windows[i].Within1, Cutoff3: windows[i].Within3, Cutoff7: windows[i].Within7}
	}
	counts, err := storage.CountDue(ctx, p.db.Pool, now, windows)
	if err != nil {
		return err
	}
	for _, c := range counts {
		i := slices.Index(d.Products, c.Product)
		d.Due[i].DueCounts = DueCounts{Overdue: c.Overdue, Within1: c.Within1, Within3: c.Within3, Within7: c.Within7}
		d.DueTotal.Overdue += c.Overdue
		d.DueTotal.Within1 += c.Within1
		d.DueTotal.Within3 += c.Within3
		d.DueTotal.Within7 += c.Within7
	}
	return nil
}

func (p *Pipeline) dashboardBreaches(ctx context.Context, d *Dashboard, now time.Time) error {
	windows := make([]storage.ProductWindow, len(d.Products))
	d.Breaches = make([]ProductBreaches, len(d.Products))
	for i, name := range d.Products {
		local := now.In(p.location(name))
		from := time.Date(local.Year(), local.Month(), 1, 0, 0, 0, 0, local.Location())
		windows[i] = storage.ProductWindow{Product: name, From: from, To: from.AddDate(0, 1, 0)}
		d.Breaches[i] = ProductBreaches{Product: name, Month: from.Format("2006-01")}
	}
	counts, err := storage.CountBreaches(ctx, p.db.Pool, windows)
	if err != nil {
		return err
	}
	for i := range d.Breaches {
		d.Breaches[i].Count = counts[d.Breaches[i].Product]
		d.BreachesTotal += d.Breaches[i].Count
	}
	return nil
}

// dashboardZone is the zone weeks are counted in: the first product's.
func (p *Pipeline) dashboardZone(products []string) *time.Location {
	if len(products) == 0 {
		return time.UTC
	}
	return p.location(products[0])
}

func (p *Pipeline) dashboardWeeks(ctx context.Context, d *Dashboard, now time.Time) error {
	loc := p.dashboardZone(d.Products)
	d.WeeksTimeZone = loc.String()
	local := now.In(loc)
	monday := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, loc)
	monday = monday.AddDate(0, 0, -((int(monday.Weekday()) + 6) % 7))
	from := monday.AddDate(0, 0, -7*(DashboardWeeks-1))
	to := monday.AddDate(0, 0, 7)
	var flows []storage.WeekFlow
	if len(d.Products) > 0 {
		var err error
		if flows, err = storage.CountWeekly(ctx, p.db.Pool, d.Products, loc.String(), from, to); err != nil {
			return err
		}
	}
	d.Weeks = make([]WeekFlow, DashboardWeeks)
	for i := range d.Weeks {
		start := from.AddDate(0, 0, 7*i)
		year, week := start.ISOWeek()
		d.Weeks[i] = WeekFlow{Week: fmt.Sprintf("%04d-W%02d", year, week), Start: start.Format(time.DateOnly)}
		for _, f := range flows {
			if f.Start.Format(time.DateOnly) == d.Weeks[i].Start {
				d.Weeks[i].Received, d.Weeks[i].Completed = f.Received, f.Completed
			}
		}
	}
	return nil
}

func (p *Pipeline) dashboardCompletion(ctx context.Context, d *Dashboard, now time.Time) error {
	since := now.AddDate(0, 0, -DashboardCompletionDays)
	d.Completion = CompletionTimes{Since: since, ByRight: []Percentiles{}, ByChannel: []Percentiles{}}
	var all []float64
	byRight, byChannel := map[rights.Type][]float64{}, map[rights.Channel][]float64{}
	if len(d.Products) > 0 {
		err := storage.Completions(ctx, p.db.Pool, d.Products, since, now, func(c storage.Completion) error {
			days := p.workingDaysTaken(&rights.Request{Product: c.Product, ClockStartedAt: &c.ClockStartedAt, CompletedAt: &c.CompletedAt})
			all = append(all, days)
			byRight[c.Type] = append(byRight[c.Type], days)
			byChannel[c.Channel] = append(byChannel[c.Channel], days)
			return nil
		})
		if err != nil {
			return err
		}
	}
	d.Completion.All = percentiles("all", all)
	for _, t := range rights.Types {
		if v := byRight[t]; len(v) > 0 {
			d.Completion.ByRight = append(d.Completion.ByRight, percentiles(string(t), v))
		}
	}
	for _, ch := range []rights.Channel{rights.ChannelStaff, rights.ChannelSelfService, rights.ChannelPartner} {
		if v := byChannel[ch]; len(v) > 0 {
			d.Completion.ByChannel = append(d.Completion.ByChannel, percentiles(string(ch), v))
		}
	}
	return nil
}

// percentiles summarises values by nearest rank.
func percentiles(key string, values []float64) Percentiles {
	out := Percentiles{Key: key, Count: len(values)}
	if len(values) == 0 {
		return out
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	rank := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(sorted)))) - 1
		return sorted[max(0, min(i, len(sorted)-1))]
	}
	out.P50, out.P90, out.Max = rank(0.5), rank(0.9), sorted[len(sorted)-1]
	return out
}
