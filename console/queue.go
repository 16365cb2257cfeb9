package console

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// queueFilter is the queue's form: what a staff member filters by. Search
// finds a request id or a ticket reference, never personal data, so no
// name or address ever sits in a URL.
type queueFilter struct {
	Product, Right, Status, Band, Channel, Assignee, Search string
	All                                                     bool // closed requests too
	Cursor                                                  string
}

type queueRow struct {
	R        *rights.Request
	Band     rights.Band
	DaysLeft string
	LastDay  string
}

type bandCount struct {
	Band  rights.Band
	Count int
	URL   string
}

type queueData struct {
	Filter     queueFilter
	Rows       []queueRow
	Counts     []bandCount
	CountsAsOf time.Time // zero: counted for this page
	Next       string
	Products   []string
	Rights     []rights.Type
	Statuses   []rights.Status
	Bands      []rights.Band
	Channels   []rights.Channel
	Assignable []string
}

var queueBands = []rights.Band{rights.BandOverdue, rights.BandDueSoon, rights.BandOnTrack, rights.BandPaused, rights.BandNoDeadline}

func (s *server) handleQueue(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "queue.title", "queue")
	p.Path = r.URL.RequestURI()
	st := staffOf(r)
	q := r.URL.Query()
	f := queueFilter{Product: q.Get("product"), Right: q.Get("right"), Status: q.Get("status"), Band: q.Get("band"),
		Channel: q.Get("channel"), Assignee: q.Get("assignee"), Search: strings.TrimSpace(q.Get("q")),
		All: q.Get("all") == "1", Cursor: q.Get("cursor")}
	if f.All {
		p.Title = p.T("queue.all")
	}
	d := &queueData{Filter: f, Rights: rights.Types, Statuses: rights.Statuses, Bands: queueBands,
		Channels: []rights.Channel{rights.ChannelStaff, rights.ChannelSelfService, rights.ChannelPartner}}
	for _, prod := range s.Pipeline.Settings().Products {
		if st.InScope(prod.Name) {
			d.Products = append(d.Products, prod.Name)
		}
	}
	p.Data = d

	var problems rights.Problems
	if f.Product != "" && !slices.Contains(d.Products, f.Product) {
		problems.Add("product", "unknown product %q", f.Product)
	}
	if f.Right != "" && !rights.Type(f.Right).Valid() {
		problems.Add("right", "unknown right %q", f.Right)
	}
	if f.Status != "" && !rights.Status(f.Status).Valid() {
		problems.Add("status", "unknown status %q", f.Status)
	}
	if f.Band != "" && !rights.Band(f.Band).Valid() {
		problems.Add("band", "unknown band %q", f.Band)
	}
	if f.Channel != "" && !slices.Contains(d.Channels, rights.Channel(f.Channel)) {
		problems.Add("channel", "unknown channel %q", f.Channel)
	}
	if err := problems.Err(); err != nil {
		p.Error, p.Fields = p.T("error.fields"), fieldErrors(err)
		s.render(w, r, http.StatusBadRequest, "queue", p)
		return
	}

	now := s.Pipeline.Now()
	filter := storage.RequestFilter{
		Status: rights.Status(f.Status), Product: f.Product, Products: st.ProductScope(), Type: rights.Type(f.Right),
		Band: rights.Band(f.Band), Channel: rights.Channel(f.Channel), Search: f.Search, Open: !f.All && f.Status == "",
		SortByDue: true, Now: now, DueSoonAt: s.Pipeline.DueSoonAt(), Cursor: f.Cursor, Limit: 50,
	}
	switch f.Assignee {
	case "":
	case "me":
		filter.Assignee = st.Name
	case "none":
		filter.Unassigned = true
	default:
		filter.Assignee = f.Assignee
	}
	list, next, err := storage.ListRequests(r.Context(), s.DB.Pool, filter)
	if err != nil {
		if rights.ErrorCode(err) == rights.EInvalid {
			p.Error, p.Fields = p.T("error.fields"), fieldErrors(err)
			s.render(w, r, http.StatusBadRequest, "queue", p)
			return
		}
		s.fail(w, r, err)
		return
	}
	for _, req := range list {
		d.Rows = append(d.Rows, queueRow{R: req, Band: s.Pipeline.Band(req), DaysLeft: s.daysLeft(p, req), LastDay: s.Pipeline.LastDay(req)})
	}
	if next != "" {
		v := r.URL.Query()
		v.Set("cursor", next)
		d.Next = "/console/queue?" + v.Encode()
	}
	counts, asOf, err := s.bandCounts(r.Context(), st, now)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d.CountsAsOf = asOf
	for _, b := range queueBands {
		v := url.Values{"band": {string(b)}}
		d.Counts = append(d.Counts, bandCount{Band: b, Count: counts[b], URL: "/console/queue?" + v.Encode()})
	}
	// Anyone who can work on one of the products listed.
	if d.Assignable, err = storage.AssignableStaff(r.Context(), s.DB.Pool, d.Products...); err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "queue", p)
}

// handleBulkAssign assigns the ticked requests to one staff member, each
// through the same checks and audit as one at a time.
func (s *server) handleBulkAssign(w http.ResponseWriter, r *http.Request) {
	st := staffOf(r)
	assignee := assigneeFrom(r)
	ids := r.PostForm["id"]
	if len(ids) > 200 {
		ids = ids[:200]
	}
	n := 0
	for _, id := range ids {
		// These ids come in the body, not the route: Assign checks the
		// role and the product scope of each (out of scope is "not
		// found", skipped like a request that does not exist).
		if _, err := s.Pipeline.Assign(r.Context(), st, id, assignee); err != nil {
			if code := rights.ErrorCode(err); code == rights.EInvalid || code == rights.EInternal || code == rights.EUnavailable {
				s.fail(w, r, err)
				return
			}
			continue
		}
		n++
	}
	lang := pickLanguage(r)
	s.redirectWith(w, r, localPath(r.PostFormValue("back")), translate(lang, "queue.assigned", n))
}

// bandCounts returns the open requests in each band among the staff
// member's products, and when they were counted if not for this page.
func (s *server) bandCounts(ctx context.Context, st rights.Staff, now time.Time) (map[rights.Band]int, time.Time, error) {
	return storage.BandCounts(ctx, s.DB.Pool, storage.RequestFilter{Products: st.ProductScope(), Now: now, DueSoonAt: s.Pipeline.DueSoonAt()},
		storage.LiveCountLimit)
}
