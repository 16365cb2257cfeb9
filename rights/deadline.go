package rights

import (
	"fmt"
	"time"
)

// DeadlineKind says how a deadline counts days.
type DeadlineKind string

const (
	CalendarDays DeadlineKind = "calendar_days"
	WorkingDays  DeadlineKind = "working_days"
)

// ClockStart says which event starts a request's deadline clock.
type ClockStart string

const (
	ClockReceived ClockStart = "received"
	ClockVerified ClockStart = "verified"
)

// Calendar tells working days from rest days.
type Calendar interface {
	// IsWorkingDay reports whether the civil date is a working day.
	IsWorkingDay(year int, month time.Month, day int) bool
	// Covers reports whether the calendar knows the official holidays of
	// year. A deadline counted through a year it does not cover falls back
	// to weekends only and must be flagged.
	Covers(year int) bool
}

// WeekendsOnly is the calendar in which Monday to Friday are working days. It
// knows no public holidays and no make-up working days, so it covers no year:
// it is the explicit fallback, never a silent one.
type WeekendsOnly struct{}

func (WeekendsOnly) IsWorkingDay(year int, month time.Month, day int) bool {
	wd := time.Date(year, month, day, 12, 0, 0, 0, time.UTC).Weekday()
	return wd != time.Saturday && wd != time.Sunday
}

func (WeekendsOnly) Covers(int) bool { return false }

// DeadlinePolicy is a product's promise of how long a request may take.
type DeadlinePolicy struct {
	Kind       DeadlineKind
	Days       int
	ClockStart ClockStart
	Location   *time.Location
	// Calendar counts working days (and rolls calendar-day deadlines
	// forward); nil means weekends only.
	Calendar Calendar
	// RollForward moves a calendar-day deadline whose last day is not a
	// working day to the next working day.
	RollForward bool
	// MaxExtensionDays caps the total of all extensions of one request.
	MaxExtensionDays int
}

// Validate checks the policy's own fields.
func (p DeadlinePolicy) Validate() error {
	var problems Problems
	if p.Kind != CalendarDays && p.Kind != WorkingDays {
		problems.Add("policy", "must be %q or %q, not %q", CalendarDays, WorkingDays, p.Kind)
	}
	if p.Days < 1 || p.Days > 366 {
		problems.Add("days", "must be between 1 and 366, not %d", p.Days)
	}
	if p.ClockStart != ClockReceived && p.ClockStart != ClockVerified {
		problems.Add("clock_start", "must be %q or %q, not %q", ClockReceived, ClockVerified, p.ClockStart)
	}
	if p.MaxExtensionDays < 0 || p.MaxExtensionDays > 366 {
		problems.Add("max_extension_days", "must be between 0 and 366, not %d", p.MaxExtensionDays)
	}
	return problems.Err()
}

// Deadline is the end of a request's period.
type Deadline struct {
	// Due is the instant the period ends: 24:00 local time of LastDay,
	// written as 00:00 of the following day.
	Due time.Time
	// LastDay is the last day of the period, YYYY-MM-DD in the policy's zone.
	LastDay string
	// UncoveredYears lists the years the count looked at that the calendar
	// does not cover; those days were judged by weekends only.
	UncoveredYears []int
}

// Compute returns the deadline of a period that started at start, given what
// happened to its clock.
//
// Counting follows the Civil Code (Arts. 201–203): the day the clock starts
// is not counted, and the period ends at 24:00 local time of its last day.
// calendar_days count every day; working_days count the calendar's working
// days. Extensions add their days to the count, in the same unit.
//
// Pauses: a day is counted only if the clock was running at its end (24:00
// local time), so a day that ends inside a pause is skipped and the deadline
// moves out by one counted day for each such day. An open pause (Until nil)
// is taken to last until asOf; asOf matters for nothing else.
func (p DeadlinePolicy) Compute(start time.Time, clock ClockState, asOf time.Time) Deadline {
	loc := p.location()
	cal := p.Calendar
	if cal == nil {
		cal = WeekendsOnly{}
	}
	uncovered := map[int]bool{}
	working := func(day time.Time) bool {
		if !cal.Covers(day.Year()) {
			uncovered[day.Year()] = true
		}
		return cal.IsWorkingDay(day.Year(), day.Month(), day.Day())
	}
	paused := func(dayEnd time.Time) bool {
		for _, ps := range clock.Pauses {
			until := asOf
			if ps.Until != nil {
				until = *ps.Until
			}
			// The clock stood still from From until Until: a day ending in
			// [From, Until) ends paused.
			if !dayEnd.Before(ps.From) && dayEnd.Before(until) {
				return true
			}
		}
		return false
	}

	local := start.In(loc)
	day := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, loc)
	need := p.Days + clock.ExtensionDays()
	for counted := 0; counted < need; {
		day = day.AddDate(0, 0, 1)
		if paused(day.AddDate(0, 0, 1)) {
			continue
		}
		if p.Kind == WorkingDays && !working(day) {
			continue
		}
		counted++
	}
	if p.Kind == CalendarDays && p.RollForward {
		for !working(day) {
			day = day.AddDate(0, 0, 1)
		}
	}
	d := Deadline{Due: day.AddDate(0, 0, 1), LastDay: day.Format("2006-01-02")}
	for y := local.Year(); y <= day.Year(); y++ {
		if uncovered[y] {
			d.UncoveredYears = append(d.UncoveredYears, y)
		}
	}
	return d
}

func (p DeadlinePolicy) location() *time.Location {
	if p.Location == nil {
		return time.UTC
	}
	return p.Location
}

// Due returns the instant a period that starts at start ends, with no pauses
// or extensions.
func (p DeadlinePolicy) Due(start time.Time) time.Time {
	return p.Compute(start, ClockState{}, start).Due
}

// ClockStartFor returns when r's clock started under the policy, and false
// while it has not (a verified-clock policy before verification).
//
// A self-service request's clock starts at verification whatever the
// policy says: until the code comes back nobody knows who asked (anyone can
// type anyone's address), and PIPL lets the handler verify the requester's
// identity before answering. The policy's clock_start governs staff
// tickets, whose requester staff verified at intake.
func (p DeadlinePolicy) ClockStartFor(r *Request) (time.Time, bool) {
	if p.ClockStart == ClockVerified || r.Channel == ChannelSelfService {
		if r.VerifiedAt == nil {
			return time.Time{}, false
		}
		return *r.VerifiedAt, true
	}
	return r.ReceivedAt, true
}

// DeadlineFor returns r's deadline at asOf, and false while its clock has not
// started.
func (p DeadlinePolicy) DeadlineFor(r *Request, asOf time.Time) (Deadline, bool) {
	start, ok := p.ClockStartFor(r)
	if !ok {
		return Deadline{}, false
	}
	return p.Compute(start, r.Clock, asOf), true
}

// DueFor returns r's deadline instant, or nil while the clock has not started.
// An open pause counts as lasting until r was last updated: DueFor reads only
// the request, never the clock on the wall; use DeadlineFor to say when.
func (p DeadlinePolicy) DueFor(r *Request) *time.Time {
	d, ok := p.DeadlineFor(r, r.UpdatedAt)
	if !ok {
		return nil
	}
	return &d.Due
}

// String describes the policy for people, e.g. "15 working_days from verified".
func (p DeadlinePolicy) String() string {
	s := fmt.Sprintf("%d %s from %s", p.Days, p.Kind, p.ClockStart)
	if p.RollForward {
		s += ", rolled forward to a working day"
	}
	return s
}

// DaysLeft is how many days remain from now to the last day of a period
// ending at due (24:00 of that day), counted as the policy counts its
// deadline: working days on its calendar, or calendar days. Today is not
// counted and the last day is, so 0 means due today; a late request's
// count is negative (the days since its last day, counted the same way).
func (p DeadlinePolicy) DaysLeft(due, now time.Time) int {
	loc := p.location()
	last := civil(due.In(loc).Add(-time.Nanosecond), loc)
	today := civil(now.In(loc), loc)
	from, to, sign := today, last, 1
	if today.After(last) {
		from, to, sign = last, today, -1
	}
	n := 0
	for d := from; d.Before(to); {
		d = d.AddDate(0, 0, 1)
		if p.Kind != WorkingDays || p.calendar().IsWorkingDay(d.Year(), d.Month(), d.Day()) {
			n++
		}
	}
	return sign * n
}

func civil(t time.Time, loc *time.Location) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
}

func (p DeadlinePolicy) calendar() Calendar {
	if p.Calendar == nil {
		return WeekendsOnly{}
	}
	return p.Calendar
}
