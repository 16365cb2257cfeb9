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
	// IsWorkingDay reports whether the civil date (year, month, day) is a
	// working day.
	IsWorkingDay(year int, month time.Month, day int) bool
}

// WeekendsOnly is the calendar in which Monday to Friday are working days. It
// knows no public holidays and no make-up working days.
type WeekendsOnly struct{}

func (WeekendsOnly) IsWorkingDay(year int, month time.Month, day int) bool {
	wd := time.Date(year, month, day, 12, 0, 0, 0, time.UTC).Weekday()
	return wd != time.Saturday && wd != time.Sunday
}

// DeadlinePolicy is a product's promise of how long a request may take.
type DeadlinePolicy struct {
	Kind       DeadlineKind
	Days       int
	ClockStart ClockStart
	Location   *time.Location
	Calendar   Calendar // used by WorkingDays; nil means weekends only
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
	return problems.Err()
}

// Due returns the instant the period that starts at start ends.
//
// It counts as the Civil Code (Arts. 201–203) does: the day on which the clock
// starts is not counted, and the period ends at 24:00 local time of its last
// day, which is returned as 00:00 of the following day.
func (p DeadlinePolicy) Due(start time.Time) time.Time {
	loc := p.Location
	if loc == nil {
		loc = time.UTC
	}
	local := start.In(loc)
	day := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, loc)
	switch p.Kind {
	case WorkingDays:
		for counted := 0; counted < p.Days; {
			day = day.AddDate(0, 0, 1)
			if p.isWorkingDay(day) {
				counted++
			}
		}
	default:
		day = day.AddDate(0, 0, p.Days)
	}
	return day.AddDate(0, 0, 1)
}

func (p DeadlinePolicy) isWorkingDay(day time.Time) bool {
	cal := p.Calendar
	if cal == nil {
		cal = WeekendsOnly{}
	}
	return cal.IsWorkingDay(day.Year(), day.Month(), day.Day())
}

// String describes the policy for people, e.g. "15 working_days from verified".
func (p DeadlinePolicy) String() string {
	return fmt.Sprintf("%d %s from %s", p.Days, p.Kind, p.ClockStart)
}

// DueFor returns the deadline of r under the policy, or nil while the clock
// has not started (a verified-clock policy before verification).
func (p DeadlinePolicy) DueFor(r *Request) *time.Time {
	start := r.ReceivedAt
	if p.ClockStart == ClockVerified {
		if r.VerifiedAt == nil {
			return nil
		}
		start = *r.VerifiedAt
	}
	due := p.Due(start)
	return &due
}
