package calendars

import (
	"strconv"
	"strings"
	"time"

	"github.com/datarights/datarights/rights"
)

// DueQuery is a deadline question as the calculator (CLI and HTTP) asks it,
// every field as text so that both report bad input the same way.
type DueQuery struct {
	Policy      string // calendar_days | working_days
	Days        string
	Calendar    string // a calendar name; "" or "none" for weekends only
	Start       string // RFC 3339
	RollForward bool
	TimeZone    string // default Asia/Shanghai
}

// DueAnswer is the calculator's answer.
type DueAnswer struct {
	rights.Deadline
	Policy  rights.DeadlinePolicy
	Start   time.Time
	Sources []string // the notices of the calendar years used
}

// Resolve validates q and computes the deadline, reporting bad fields as
// rights.Problems.
func (q DueQuery) Resolve(set *Set) (DueAnswer, error) {
	var p rights.Problems
	var ans DueAnswer
	days, err := strconv.Atoi(strings.TrimSpace(q.Days))
	if err != nil {
		p.Add("days", "must be a whole number of days, not %q", q.Days)
	}
	tz := q.TimeZone
	if tz == "" {
		tz = "Asia/Shanghai"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		p.Add("time_zone", "unknown time zone %q", tz)
	}
	start, err := time.Parse(time.RFC3339, q.Start)
	if err != nil {
		p.Add("start", "must be RFC 3339 like 2025-09-26T10:00:00+08:00, not %q", q.Start)
	}
	var cal *Calendar
	if q.Calendar != "" && q.Calendar != "none" {
		var ok bool
		if cal, ok = set.Get(q.Calendar); !ok {
			p.Add("calendar", "unknown calendar %q; known: %s", q.Calendar, strings.Join(set.Names(), ", "))
		}
	}
	policy := rights.DeadlinePolicy{Kind: rights.DeadlineKind(q.Policy), Days: days, ClockStart: rights.ClockReceived,
		Location: loc, RollForward: q.RollForward}
	if cal != nil {
		policy.Calendar = cal
	}
	if err := policy.Validate(); err != nil {
		if re, ok := err.(*rights.Error); ok {
			for _, f := range re.Fields {
				if f.Field != "days" || days != 0 || strings.TrimSpace(q.Days) == "0" {
					p = append(p, f) // not already said about days
				}
			}
		}
	}
	if err := p.Err(); err != nil {
		return ans, err
	}
	ans.Policy, ans.Start = policy, start
	ans.Deadline = policy.Compute(start, rights.ClockState{}, start)
	if cal != nil {
		last, _ := time.Parse(time.DateOnly, ans.LastDay)
		for y := start.In(loc).Year(); y <= last.Year(); y++ {
			if src := cal.Source(y); src != "" {
				ans.Sources = append(ans.Sources, src)
			}
		}
	}
	return ans, nil
}
