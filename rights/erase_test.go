package rights

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestRetentionEndByHand(t *testing.T) {
	t.Parallel()
	cst := time.FixedZone("CST", 8*3600)
	cases := []struct {
		from  time.Time
		years int
		want  time.Time
	}{
		// 2021-03-05 + 5 years: the period's last day is 2026-03-05.
		{time.Date(2021, 3, 5, 10, 0, 0, 0, cst), 5, time.Date(2026, 3, 6, 0, 0, 0, 0, cst)},
		// The day is Beijing's: 23:30 UTC on 4 March is 5 March in Beijing.
		{time.Date(2021, 3, 4, 23, 30, 0, 0, time.UTC), 5, time.Date(2026, 3, 6, 0, 0, 0, 0, cst)},
		// 29 February: in a year without one, the month's last day ends it.
		{time.Date(2024, 2, 29, 12, 0, 0, 0, cst), 1, time.Date(2025, 3, 1, 0, 0, 0, 0, cst)},
		{time.Date(2024, 2, 29, 12, 0, 0, 0, cst), 4, time.Date(2028, 3, 1, 0, 0, 0, 0, cst)},
		// The last day of a year.
		{time.Date(2020, 12, 31, 0, 0, 0, 0, cst), 10, time.Date(2031, 1, 1, 0, 0, 0, 0, cst)},
	}
	for _, c := range cases {
		if got := RetentionEnd(c.from, c.years, cst); !got.Equal(c.want) {
			t.Errorf("RetentionEnd(%s, %d) = %s, want %s", c.from, c.years, got, c.want)
		}
	}
}

// TestRetentionCutoffAgreesWithEnd: a period is over at now exactly when it
// began before RetentionCutoff(now), so the sweep (which compares with the
// cutoff in SQL) deletes a row on the day RetentionEnd promised, not a day
// early or late.
func TestRetentionCutoffAgreesWithEnd(t *testing.T) {
	t.Parallel()
	cst := time.FixedZone("CST", 8*3600)
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2016, 1, 1, 0, 0, 0, 0, cst)
	for range 3000 {
		from := base.Add(time.Duration(rng.Int64N(int64(10 * 365 * 24 * time.Hour))))
		years := 1 + rng.IntN(20)
		end := RetentionEnd(from, years, cst)
		if !from.Before(RetentionCutoff(end, years, cst)) {
			t.Fatalf("from %s, %d years: not over at its end %s", from, years, end)
		}
		if before := end.Add(-time.Second); from.Before(RetentionCutoff(before, years, cst)) {
			t.Fatalf("from %s, %d years: already over at %s, before its end %s", from, years, before, end)
		}
	}
}

// TestRetentionInMonths: a period in months ends on the same day of the
// month, or with the last day of a month that lacks it, and the cutoff
// agrees with the end for every start date.
func TestRetentionInMonths(t *testing.T) {
	t.Parallel()
	cst := time.FixedZone("CST", 8*3600)
	for _, c := range []struct {
		from   time.Time
		months int
		want   time.Time
	}{
		{time.Date(2027, 1, 31, 10, 0, 0, 0, cst), 1, time.Date(2027, 3, 1, 0, 0, 0, 0, cst)},  // 28 Feb, 24:00
		{time.Date(2028, 1, 31, 10, 0, 0, 0, cst), 1, time.Date(2028, 3, 1, 0, 0, 0, 0, cst)},  // 29 Feb, 24:00
		{time.Date(2026, 3, 15, 10, 0, 0, 0, cst), 6, time.Date(2026, 9, 16, 0, 0, 0, 0, cst)}, // 15 Sep, 24:00
		{time.Date(2026, 8, 31, 10, 0, 0, 0, cst), 18, time.Date(2028, 3, 1, 0, 0, 0, 0, cst)}, // 29 Feb 2028, 24:00
		{time.Date(2026, 12, 5, 10, 0, 0, 0, cst), 1, time.Date(2027, 1, 6, 0, 0, 0, 0, cst)},  // over the year's end
		{time.Date(2024, 2, 29, 10, 0, 0, 0, cst), 12, time.Date(2025, 3, 1, 0, 0, 0, 0, cst)}, // a year, in months
	} {
		if got := RetentionEndMonths(c.from, c.months, cst); !got.Equal(c.want) {
			t.Errorf("RetentionEndMonths(%s, %d) = %s, want %s", c.from, c.months, got, c.want)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	base := time.Date(2016, 1, 1, 0, 0, 0, 0, cst)
	for range 5000 {
		from := base.Add(time.Duration(rng.Int64N(int64(10 * 365 * 24 * time.Hour))))
		months := 1 + rng.IntN(60)
		end := RetentionEndMonths(from, months, cst)
		if !from.Before(RetentionCutoffMonths(end, months, cst)) {
			t.Fatalf("from %s, %d months: not over at its end %s", from, months, end)
		}
		if before := end.Add(-time.Second); from.Before(RetentionCutoffMonths(before, months, cst)) {
			t.Fatalf("from %s, %d months: already over at %s, before its end %s", from, months, before, end)
		}
	}
}
