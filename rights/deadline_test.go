package rights_test

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/datarights/datarights/calendars"
	"github.com/datarights/datarights/rights"
)

func cn(t testing.TB) rights.Calendar {
	t.Helper()
	set, err := calendars.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	cal, ok := set.Get("cn")
	if !ok {
		t.Fatal("no cn calendar")
	}
	return cal
}

func shanghai(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestDeadlinesOnChinasCalendar checks deadlines counted by hand on the
// State Council calendars, across the 2024–2026 Spring Festival, Labour Day
// and National Day periods, including make-up Saturdays and Sundays. Each
// case's comment is the count.
func TestDeadlinesOnChinasCalendar(t *testing.T) {
	t.Parallel()
	cal, loc := cn(t), shanghai(t)
	wd := func(days int) rights.DeadlinePolicy {
		return rights.DeadlinePolicy{Kind: rights.WorkingDays, Days: days, Location: loc, Calendar: cal}
	}
	cd := func(days int, roll bool) rights.DeadlinePolicy {
		return rights.DeadlinePolicy{Kind: rights.CalendarDays, Days: days, Location: loc, Calendar: cal, RollForward: roll}
	}
	cases := []struct {
		name    string
		policy  rights.DeadlinePolicy
		start   string
		lastDay string
	}{
		// 09-27 Sat no; 09-28 Sun make-up 1; 09-29 2; 09-30 3; 10-01..08 holiday;
		// 10-09 4; 10-10 5; 10-11 Sat make-up 6; 10-13..17 7-11; 10-20..23 12-15.
		{"DESIGN example: National Day 2025", wd(15), "2025-09-26T10:00:00+08:00", "2025-10-23"},
		{"start late in the evening is the same day", wd(15), "2025-09-26T23:59:00+08:00", "2025-10-23"},
		// 23:59 on 09-25 in Shanghai: the start day is 09-25, so 09-26 counts.
		{"start instant given in UTC", wd(15), "2025-09-25T15:59:00Z", "2025-10-22"},
		// 01-25 Sat no; 01-26 Sun make-up 1; 01-27 2; 01-28..02-04 holiday; 02-05..07 3-5.
		{"Spring Festival 2025 over a make-up Sunday", wd(5), "2025-01-24T10:00:00+08:00", "2025-02-07"},
		// 02-05..07 1-3; 02-08 Sat make-up 4; 02-10..14 5-9; 02-17 10.
		{"Spring Festival 2025 from inside the eve", wd(10), "2025-01-27T09:00:00+08:00", "2025-02-17"},
		// 04-26 Sat no; 04-27 Sun make-up 1; 04-28..30 2-4; 05-01..05 holiday; 05-06 5.
		{"Labour Day 2025", wd(5), "2025-04-25T10:00:00+08:00", "2025-05-06"},
		// 02-13 Fri 1; 02-14 Sat make-up 2; 02-15..23 holiday; 02-24..26 3-5.
		{"Spring Festival 2026 over a make-up Saturday", wd(5), "2026-02-12T10:00:00+08:00", "2026-02-26"},
		// ... 02-27 6; 02-28 Sat make-up 7; 03-02 Mon 8.
		{"Spring Festival 2026, second make-up Saturday", wd(8), "2026-02-12T10:00:00+08:00", "2026-03-02"},
		// 04-30 1; 05-01..05 holiday; 05-06 2; 05-07 3.
		{"Labour Day 2026", wd(3), "2026-04-29T10:00:00+08:00", "2026-05-07"},
		// ... 05-08 4; 05-09 Sat make-up 5: a working-day deadline on a Saturday.
		{"Labour Day 2026 ends on a make-up Saturday", wd(5), "2026-04-29T10:00:00+08:00", "2026-05-09"},
		// 09-20 Sun make-up 1; 09-21..24 2-5; 09-25..27 holiday; 09-28..30 6-8;
		// 10-01..07 holiday; 10-08 9; 10-09 10; 10-10 Sat make-up 11; 10-12..15 12-15.
		{"Mid-Autumn and National Day 2026", wd(15), "2026-09-18T10:00:00+08:00", "2026-10-15"},
		// 02-09 Fri 1 (the eve was not a holiday in 2024); 02-10..17 holiday;
		// 02-18 Sun make-up 2; 02-19 3.
		{"Spring Festival 2024", wd(3), "2024-02-08T10:00:00+08:00", "2024-02-19"},
		// 15 calendar days from 09-16 is 10-01, a holiday.
		{"calendar days 2025 end on National Day", cd(15, false), "2025-09-16T10:00:00+08:00", "2025-10-01"},
		// ... rolled past 10-01..08 to Thursday 10-09.
		{"calendar days 2025 rolled past National Day", cd(15, true), "2025-09-16T10:00:00+08:00", "2025-10-09"},
		// 02-20 is in the 2026 Spring Festival holiday (02-15..23): rolled to 02-24.
		{"calendar days 2026 rolled past Spring Festival", cd(15, true), "2026-02-05T10:00:00+08:00", "2026-02-24"},
		// 10-05 is a holiday; 10-06, 10-07 too; 10-08 Thursday works.
		{"calendar days 2026 rolled past National Day", cd(15, true), "2026-09-20T10:00:00+08:00", "2026-10-08"},
		// 09-20 is a Sunday but a make-up working day: no roll.
		{"calendar days ending on a make-up Sunday stay", cd(15, true), "2026-09-05T10:00:00+08:00", "2026-09-20"},
		{"WeChat 15 days", cd(15, false), "2026-11-23T10:00:00+08:00", "2026-12-08"},

		// Starts on make-up days: the start day is never counted, working or not.
		// 01-27 Mon 1; 01-28..02-04 holiday; 02-05 2; 02-06 3.
		{"start on the 2025 make-up Sunday", wd(3), "2025-01-26T09:00:00+08:00", "2025-02-06"},
		// 02-15..23 holiday; 02-24 Tue 1.
		{"start on the 2026 make-up Saturday", wd(1), "2026-02-14T09:00:00+08:00", "2026-02-24"},
		// Both 2025 Spring Festival make-up days counted: 01-21..24 1-4;
		// 01-26 Sun 5; 01-27 6; holiday; 02-05..07 7-9; 02-08 Sat 10; 02-10..14 11-15.
		{"Spring Festival 2025, both make-up days", wd(15), "2025-01-20T10:00:00+08:00", "2025-02-14"},
		// 09-28 Sat no; 09-29 Sun make-up 1; 09-30 2; 10-01..07 holiday; 10-08..10 3-5.
		{"National Day 2024", wd(5), "2024-09-27T10:00:00+08:00", "2024-10-10"},
		// 2025-09-29 00:30 in Shanghai is still 09-28 in UTC: the start day is
		// 09-29, where the 09-28 make-up Sunday would otherwise count. 09-30 1; 10-09..11 2-4; 10-13..17 5-9; 10-20..24 10-14; 10-27 15.
		{"the start day is the policy zone's", wd(15), "2025-09-28T16:30:00Z", "2025-10-27"},

		// Across New Year, both years covered: nothing to flag.
		// 12-31 Tue 1; 2025-01-01 holiday; 01-02 2; 01-03 3.
		{"New Year 2024/2025", wd(3), "2024-12-30T10:00:00+08:00", "2025-01-03"},
		// 12-30 1; 12-31 2; 2026-01-01..03 holiday; 01-04 Sun make-up 3; 01-05 4; 01-06 5.
		{"New Year 2025/2026", wd(5), "2025-12-29T10:00:00+08:00", "2026-01-06"},

		// Calendar days, rolled forward or not.
		// 01-20 + 15 = 02-04, the last day of the holiday; 02-05 Wed works.
		{"calendar days 2025 end in Spring Festival", cd(15, false), "2025-01-20T10:00:00+08:00", "2025-02-04"},
		{"calendar days 2025 rolled past Spring Festival", cd(15, true), "2025-01-20T10:00:00+08:00", "2025-02-05"},
		// 04-21 + 10 = 05-01; 05-01..05 holiday; 05-06 Tue.
		{"calendar days 2025 rolled past Labour Day", cd(10, true), "2025-04-21T10:00:00+08:00", "2025-05-06"},
		// 09-20 + 15 = 10-05, a Sunday in the holiday; 10-06..08 holiday too.
		{"calendar days 2025 rolled from a holiday Sunday", cd(15, true), "2025-09-20T10:00:00+08:00", "2025-10-09"},
		// 09-26 + 15 = 10-11, a Saturday but a make-up working day: no roll.
		{"calendar days ending on a make-up Saturday stay", cd(15, true), "2025-09-26T10:00:00+08:00", "2025-10-11"},
		// 11-01 + 15 = 11-16, an ordinary Sunday: rolled to Monday.
		{"calendar days rolled past an ordinary weekend", cd(15, true), "2025-11-01T10:00:00+08:00", "2025-11-17"},
	}
	for _, tc := range cases {
		start, err := time.Parse(time.RFC3339, tc.start)
		if err != nil {
			t.Fatal(err)
		}
		d := tc.policy.Compute(start, rights.ClockState{}, start)
		if d.LastDay != tc.lastDay {
			t.Errorf("%s: last day %s, want %s", tc.name, d.LastDay, tc.lastDay)
		}
		last, _ := time.ParseInLocation(time.DateOnly, tc.lastDay, loc)
		if want := last.AddDate(0, 0, 1); !d.Due.Equal(want) {
			t.Errorf("%s: due %s, want 24:00 of the last day (%s)", tc.name, d.Due, want)
		}
		if len(d.UncoveredYears) != 0 {
			t.Errorf("%s: flagged %v uncovered", tc.name, d.UncoveredYears)
		}
	}
}

func TestDeadlineIntoAYearWithoutCalendarIsFlagged(t *testing.T) {
	t.Parallel()
	loc := shanghai(t)
	p := rights.DeadlinePolicy{Kind: rights.WorkingDays, Days: 15, Location: loc, Calendar: cn(t)}
	start := time.Date(2026, 12, 20, 10, 0, 0, 0, loc)
	d := p.Compute(start, rights.ClockState{}, start)
	// 12-21..25 1-5; 12-28..31 6-9; 2027-01-01 Friday 10 (2027 unknown:
	// weekends only); 01-04..08 11-15.
	if d.LastDay != "2027-01-08" || !slices.Equal(d.UncoveredYears, []int{2027}) {
		t.Fatalf("got %s flagged %v, want 2027-01-08 flagged [2027]", d.LastDay, d.UncoveredYears)
	}
	// Weekends only covers nothing: every year it counts through is flagged.
	w := rights.DeadlinePolicy{Kind: rights.WorkingDays, Days: 3, Location: loc}
	if d := w.Compute(start, rights.ClockState{}, start); !slices.Equal(d.UncoveredYears, []int{2026}) {
		t.Fatalf("weekends-only flagged %v, want [2026]", d.UncoveredYears)
	}
	// Calendar days without roll-forward need no calendar: nothing to flag.
	c := rights.DeadlinePolicy{Kind: rights.CalendarDays, Days: 30, Location: loc, Calendar: cn(t)}
	if d := c.Compute(start, rights.ClockState{}, start); len(d.UncoveredYears) != 0 {
		t.Fatalf("calendar days flagged %v", d.UncoveredYears)
	}
}

func TestExtensionsAndPausesMoveTheDeadline(t *testing.T) {
	t.Parallel()
	loc := shanghai(t)
	p := rights.DeadlinePolicy{Kind: rights.WorkingDays, Days: 15, Location: loc, Calendar: cn(t)}
	start := time.Date(2025, 9, 26, 10, 0, 0, 0, loc)
	// Last day 10-23, then 5 more working days: 10-24, 27, 28, 29, 30.
	ext := rights.ClockState{Extensions: []rights.Extension{{Days: 2}, {Days: 3}}}
	if d := p.Compute(start, ext, start); d.LastDay != "2025-10-30" {
		t.Errorf("extended by 5: %s, want 2025-10-30", d.LastDay)
	}

	c := rights.DeadlinePolicy{Kind: rights.CalendarDays, Days: 15, Location: loc}
	s := time.Date(2026, 3, 2, 10, 0, 0, 0, loc)
	from, until := time.Date(2026, 3, 2, 11, 0, 0, 0, loc), time.Date(2026, 3, 12, 11, 0, 0, 0, loc)
	// Days 03-03 … 03-11 end paused: 9 days later than 03-17.
	closed := rights.ClockState{Pauses: []rights.Pause{{From: from, Until: &until}}}
	if d := c.Compute(s, closed, until); d.LastDay != "2026-03-26" {
		t.Errorf("closed pause: %s, want 2026-03-26", d.LastDay)
	}
	// An open pause lasts until asOf.
	open := rights.ClockState{Pauses: []rights.Pause{{From: from}}}
	if d := c.Compute(s, open, until); d.LastDay != "2026-03-26" {
		t.Errorf("open pause as of its resume: %s, want 2026-03-26", d.LastDay)
	}
	if d := c.Compute(s, open, from); d.LastDay != "2026-03-17" {
		t.Errorf("open pause as of its start: %s, want 2026-03-17", d.LastDay)
	}
}

// TestDeadlineWeekendsOnlyIgnoresHolidays shows what the cn calendar is
// for: the same periods counted on weekends only end days earlier, and are
// flagged.
func TestDeadlineWeekendsOnlyIgnoresHolidays(t *testing.T) {
	t.Parallel()
	loc := shanghai(t)
	cases := []struct {
		name    string
		start   string
		days    int
		lastDay string
	}{
		// 09-29..10-03 1-5; 10-06..10 6-10; 10-13..17 11-15 (cn: 10-23).
		{"National Day 2025", "2025-09-26T10:00:00+08:00", 15, "2025-10-17"},
		// 01-21..24 1-4; 01-27..31 5-9; 02-03..07 10-14; 02-10 15 (cn: 02-14).
		{"Spring Festival 2025", "2025-01-20T10:00:00+08:00", 15, "2025-02-10"},
	}
	for _, tc := range cases {
		start, err := time.Parse(time.RFC3339, tc.start)
		if err != nil {
			t.Fatal(err)
		}
		for _, cal := range []rights.Calendar{nil, rights.WeekendsOnly{}} {
			p := rights.DeadlinePolicy{Kind: rights.WorkingDays, Days: tc.days, Location: loc, Calendar: cal}
			d := p.Compute(start, rights.ClockState{}, start)
			if d.LastDay != tc.lastDay || !slices.Equal(d.UncoveredYears, []int{2025}) {
				t.Errorf("%s (calendar %T): %s flagged %v, want %s flagged [2025]", tc.name, cal, d.LastDay, d.UncoveredYears, tc.lastDay)
			}
		}
	}
}

// TestDeadlinePausesOnWorkingDays checks the pause rule on the DESIGN
// example (15 working days from Friday 2025-09-26, last day 10-23): a day is
// counted only if the clock was running at its end, 24:00 Shanghai time.
func TestDeadlinePausesOnWorkingDays(t *testing.T) {
	t.Parallel()
	loc := shanghai(t)
	p := rights.DeadlinePolicy{Kind: rights.WorkingDays, Days: 15, Location: loc, Calendar: cn(t)}
	start := time.Date(2025, 9, 26, 10, 0, 0, 0, loc)
	at := func(month time.Month, day, hour int) time.Time {
		return time.Date(2025, month, day, hour, 0, 0, 0, loc)
	}
	closed := func(from, until time.Time) rights.Pause { return rights.Pause{From: from, Until: &until} }
	cases := []struct {
		name    string
		clock   rights.ClockState
		asOf    time.Time
		lastDay string
	}{
		{"no pause", rights.ClockState{}, start, "2025-10-23"},
		// 10-13 and 10-14 end paused: two working days fewer, so 10-24, 10-27.
		{"closed pause Mon–Wed", rights.ClockState{Pauses: []rights.Pause{closed(at(10, 13, 9), at(10, 15, 14))}}, at(10, 15, 14), "2025-10-27"},
		// No day ends inside it.
		{"pause within one day", rights.ClockState{Pauses: []rights.Pause{closed(at(10, 13, 9), at(10, 13, 17))}}, at(10, 13, 17), "2025-10-23"},
		// 10-02..05 end paused, all holidays: nothing is lost.
		{"pause over holidays", rights.ClockState{Pauses: []rights.Pause{closed(at(10, 2, 10), at(10, 6, 10))}}, at(10, 6, 10), "2025-10-23"},
		// 10-10 Fri and 10-11 (make-up Saturday) end paused: both were counted.
		// 09-28 1; 09-29 2; 09-30 3; 10-09 4; 10-13..17 5-9; 10-20..24 10-14; 10-27 15.
		{"pause over a make-up Saturday", rights.ClockState{Pauses: []rights.Pause{closed(at(10, 10, 12), at(10, 12, 9))}}, at(10, 12, 9), "2025-10-27"},
		// The first pause costs 10-13, 10-14; the second 10-20: 10-24, 27, 28.
		{"two closed pauses", rights.ClockState{Pauses: []rights.Pause{closed(at(10, 13, 9), at(10, 15, 14)), closed(at(10, 20, 9), at(10, 21, 9))}}, at(10, 21, 9), "2025-10-28"},
		// Open since 10-13 09:00, as of 10-20 12:00: 10-13..19 end paused,
		// five working days (10-13..17): 10-24, 27, 28, 29, 30.
		{"open pause, a week on", rights.ClockState{Pauses: []rights.Pause{{From: at(10, 13, 9)}}}, at(10, 20, 12), "2025-10-30"},
		// As of an hour after it began no day has ended paused yet.
		{"open pause, just begun", rights.ClockState{Pauses: []rights.Pause{{From: at(10, 13, 9)}}}, at(10, 13, 10), "2025-10-23"},
		// The closed Mon–Wed pause (10-27), then 5 more working days:
		// 10-28, 29, 30, 31, 11-03.
		{"pause and extension", rights.ClockState{Pauses: []rights.Pause{closed(at(10, 13, 9), at(10, 15, 14))}, Extensions: []rights.Extension{{Days: 5}}}, at(10, 15, 14), "2025-11-03"},
	}
	for _, tc := range cases {
		d := p.Compute(start, tc.clock, tc.asOf)
		if d.LastDay != tc.lastDay {
			t.Errorf("%s: last day %s, want %s", tc.name, d.LastDay, tc.lastDay)
		}
	}

	// Calendar days: 09-20 and 09-21 end paused, so 15 days from 09-16 end
	// on 10-03 instead of 10-01; rolled forward, past the holiday to 10-09.
	pause := rights.ClockState{Pauses: []rights.Pause{closed(at(9, 20, 10), at(9, 22, 10))}}
	c := rights.DeadlinePolicy{Kind: rights.CalendarDays, Days: 15, Location: loc, Calendar: cn(t)}
	if d := c.Compute(at(9, 16, 10), pause, at(9, 22, 10)); d.LastDay != "2025-10-03" {
		t.Errorf("calendar days paused: %s, want 2025-10-03", d.LastDay)
	}
	c.RollForward = true
	if d := c.Compute(at(9, 16, 10), pause, at(9, 22, 10)); d.LastDay != "2025-10-09" {
		t.Errorf("calendar days paused, rolled: %s, want 2025-10-09", d.LastDay)
	}

	// DueFor and DeadlineFor read the request's own clock.
	r := &rights.Request{ReceivedAt: start, UpdatedAt: at(10, 15, 14), Clock: cases[1].clock}
	if got := p.DueFor(r); got == nil || !got.Equal(time.Date(2025, 10, 28, 0, 0, 0, 0, loc)) {
		t.Errorf("DueFor = %v, want 2025-10-28T00:00+08:00 (24:00 of 10-27)", got)
	}
	if d, ok := p.DeadlineFor(r, at(10, 15, 14)); !ok || d.LastDay != "2025-10-27" {
		t.Errorf("DeadlineFor = %v %v, want 2025-10-27", d.LastDay, ok)
	}
	v := p
	v.ClockStart = rights.ClockVerified
	if _, ok := v.DeadlineFor(r, start); ok {
		t.Error("a verified-clock deadline before verification")
	}
}

// TestDeadlinePropertiesWithManyPauses checks, over many random starts in
// 2024–2026, policies of 1–30 days and sets of up to three pauses, closed or
// open: one more pause never moves a deadline earlier; a working-day or
// rolled deadline ends on a working day; the due instant is 24:00 of the
// last day and after the start; a working-day period without pauses holds
// exactly its days; and only years past 2026 are ever flagged.
func TestDeadlinePropertiesWithManyPauses(t *testing.T) {
	t.Parallel()
	cal, loc := cn(t), shanghai(t)
	rng := rand.New(rand.NewPCG(20240101, 20261231))
	first := time.Date(2024, 1, 1, 0, 0, 0, 0, loc)
	span := time.Date(2027, 1, 1, 0, 0, 0, 0, loc).Sub(first)
	working := func(d time.Time) bool { return cal.IsWorkingDay(d.Year(), d.Month(), d.Day()) }
	parse := func(day string) time.Time {
		d, err := time.ParseInLocation(time.DateOnly, day, loc)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	randomPause := func(after time.Time, open bool) rights.Pause {
		from := after.Add(time.Duration(rng.Int64N(int64(45 * 24 * time.Hour))))
		if open {
			return rights.Pause{From: from}
		}
		until := from.Add(time.Duration(rng.Int64N(int64(15 * 24 * time.Hour))))
		return rights.Pause{From: from, Until: &until}
	}
	for i := range 3000 {
		start := first.Add(time.Duration(rng.Int64N(int64(span))))
		policy := rights.DeadlinePolicy{Kind: rights.WorkingDays, Days: 1 + rng.IntN(30), Location: loc, Calendar: cal}
		if rng.IntN(2) == 0 {
			policy.Kind, policy.RollForward = rights.CalendarDays, rng.IntN(2) == 0
		}
		asOf := start.Add(time.Duration(rng.Int64N(int64(90 * 24 * time.Hour))))
		var clock rights.ClockState
		prev := policy.Compute(start, clock, asOf)

		// The count itself, with no pauses: 1..Days counted days after the
		// start day, the last of them the last day.
		startDay := time.Date(start.In(loc).Year(), start.In(loc).Month(), start.In(loc).Day(), 0, 0, 0, 0, loc)
		last := parse(prev.LastDay)
		if policy.Kind == rights.WorkingDays {
			n := 0
			for d := startDay.AddDate(0, 0, 1); !d.After(last); d = d.AddDate(0, 0, 1) {
				if working(d) {
					n++
				}
			}
			if n != policy.Days {
				t.Fatalf("case %d: %s from %s: %d working days up to %s", i, policy, start, n, prev.LastDay)
			}
		} else if !policy.RollForward && !last.Equal(startDay.AddDate(0, 0, policy.Days)) {
			t.Fatalf("case %d: %s from %s ends %s", i, policy, start, prev.LastDay)
		}

		for k := range 3 {
			// Only the last pause may be open, as in a request's clock.
			open := k == 2 && rng.IntN(2) == 0
			clock.Pauses = append(clock.Pauses, randomPause(start, open))
			d := policy.Compute(start, clock, asOf)
			if d.Due.Before(prev.Due) {
				t.Fatalf("case %d: pause %d moved %s from %s earlier: %s → %s", i, k, policy, start, prev.LastDay, d.LastDay)
			}
			last := parse(d.LastDay)
			if !d.Due.Equal(last.AddDate(0, 0, 1)) || !d.Due.After(start) {
				t.Fatalf("case %d: due %s for last day %s, start %s", i, d.Due, d.LastDay, start)
			}
			if (policy.Kind == rights.WorkingDays || policy.RollForward) && !working(last) {
				t.Fatalf("case %d: %s from %s ends on %s, a rest day", i, policy, start, d.LastDay)
			}
			for _, y := range d.UncoveredYears {
				if y < 2027 || y > last.Year() {
					t.Fatalf("case %d: flagged %d, last day %s", i, y, d.LastDay)
				}
			}
			if policy.Kind == rights.WorkingDays && last.Year() >= 2027 && !slices.Contains(d.UncoveredYears, 2027) {
				t.Fatalf("case %d: counted into %s without flagging 2027", i, d.LastDay)
			}
			prev = d
		}
	}
}

// TestDeadlineProperties checks, over many random starts, policies and
// pauses in 2024–2026: a pause never moves a deadline earlier; a working-day
// deadline always ends on a working day; so does a rolled-forward one; and
// the deadline is always after the start.
func TestDeadlineProperties(t *testing.T) {
	t.Parallel()
	cal, loc := cn(t), shanghai(t)
	rng := rand.New(rand.NewPCG(2025, 2026))
	first := time.Date(2024, 1, 1, 0, 0, 0, 0, loc)
	span := time.Date(2026, 10, 1, 0, 0, 0, 0, loc).Sub(first)
	isWorking := func(day string) bool {
		d, _ := time.Parse(time.DateOnly, day)
		return cal.IsWorkingDay(d.Year(), d.Month(), d.Day())
	}
	for i := range 3000 {
		start := first.Add(time.Duration(rng.Int64N(int64(span))))
		policy := rights.DeadlinePolicy{Days: 1 + rng.IntN(30), Location: loc, Calendar: cal, RollForward: rng.IntN(2) == 0}
		policy.Kind = rights.WorkingDays
		if rng.IntN(2) == 0 {
			policy.Kind = rights.CalendarDays
		}
		base := policy.Compute(start, rights.ClockState{}, start)
		if !base.Due.After(start) {
			t.Fatalf("case %d: due %s not after start %s", i, base.Due, start)
		}
		if (policy.Kind == rights.WorkingDays || policy.RollForward) && !isWorking(base.LastDay) {
			t.Fatalf("case %d: %s from %s ends on %s, a rest day", i, policy, start, base.LastDay)
		}
		from := start.Add(time.Duration(rng.Int64N(int64(40 * 24 * time.Hour))))
		until := from.Add(time.Duration(rng.Int64N(int64(20 * 24 * time.Hour))))
		clock := rights.ClockState{Pauses: []rights.Pause{{From: from, Until: &until}}}
		paused := policy.Compute(start, clock, until)
		if paused.Due.Before(base.Due) {
			t.Fatalf("case %d: pause %s–%s moved %s earlier: %s → %s", i, from, until, policy, base.LastDay, paused.LastDay)
		}
		if (policy.Kind == rights.WorkingDays || policy.RollForward) && !isWorking(paused.LastDay) {
			t.Fatalf("case %d: paused deadline ends on rest day %s", i, paused.LastDay)
		}
		ext := policy.Compute(start, rights.ClockState{Extensions: []rights.Extension{{Days: 1 + rng.IntN(10)}}}, start)
		// An extension never moves a deadline earlier, and moves a working-day
		// one later; a rolled calendar-day one may already sit past it.
		if ext.Due.Before(base.Due) || (policy.Kind == rights.WorkingDays && !ext.Due.After(base.Due)) {
			t.Fatalf("case %d: an extension moved %s from %s to %s", i, policy, base.LastDay, ext.LastDay)
		}
	}
}

func TestSelfServiceClockStartsAtVerificationWhateverThePolicy(t *testing.T) {
	t.Parallel()
	policy := rights.DeadlinePolicy{Kind: rights.CalendarDays, Days: 15, ClockStart: rights.ClockReceived, Location: time.UTC}
	received := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	r := &rights.Request{Channel: rights.ChannelSelfService, ReceivedAt: received}
	if _, started := policy.ClockStartFor(r); started {
		t.Fatal("an unverified self-service request's clock started")
	}
	verified := received.Add(2 * time.Hour)
	r.VerifiedAt = &verified
	if start, started := policy.ClockStartFor(r); !started || !start.Equal(verified) {
		t.Fatalf("clock start = %v, %v; want verification at %v", start, started, verified)
	}
	staff := &rights.Request{Channel: rights.ChannelStaff, ReceivedAt: received}
	if start, started := policy.ClockStartFor(staff); !started || !start.Equal(received) {
		t.Fatalf("staff ticket clock start = %v, %v; want receipt", start, started)
	}
}

func TestDaysLeftCountsAsThePolicyCounts(t *testing.T) {
	t.Parallel()
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, shanghai)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	working := rights.DeadlinePolicy{Kind: rights.WorkingDays, Days: 15, Location: shanghai}
	calendar := rights.DeadlinePolicy{Kind: rights.CalendarDays, Days: 15, Location: shanghai}
	// Last day Monday 2026-12-14 (due at 24:00 of it, i.e. 12-15 00:00).
	due := at("2026-12-15 00:00")
	for name, c := range map[string]struct {
		policy rights.DeadlinePolicy
		now    string
		want   int
	}{
		"working, from a Friday":        {working, "2026-12-11 09:00", 1}, // Sat, Sun not counted
		"calendar, from a Friday":       {calendar, "2026-12-11 09:00", 3},
		"due today":                     {working, "2026-12-14 23:59", 0},
		"late by one working day":       {working, "2026-12-15 08:00", -1},
		"late over a weekend, working":  {working, "2026-12-20 08:00", -4}, // Tue–Fri
		"late over a weekend, calendar": {calendar, "2026-12-20 08:00", -6},
	} {
		if got := c.policy.DaysLeft(due, at(c.now)); got != c.want {
			t.Errorf("%s: %d days left, want %d", name, got, c.want)
		}
	}
}
