package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/datarights/datarights/calendars"
	"github.com/datarights/datarights/rights"
)

// runSLA is `datarights sla due`: the deadline calculator. The first line of
// its output is the last day of the period, YYYY-MM-DD, for scripts.
func runSLA(_ context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	const synopsis = "datarights sla due --policy working_days|calendar_days --days N --start T [--calendar cn] [--roll-forward]\n" +
		"                         [--time-zone Z] [--calendars-dir D]"
	g := group{"sla", "  " + synopsis + "\n"}
	if _, err := g.verb(args, "due"); err != nil {
		return err
	}
	c := newCommand("sla due", synopsis,
		"print the last day of a period (YYYY-MM-DD, the first line, for scripts), then the deadline and how it was counted;\n"+
			"e.g. sla due --policy working_days --days 15 --calendar cn --start 2025-09-26T10:00:00+08:00")
	fs := c.fs
	var q calendars.DueQuery
	fs.StringVar(&q.Policy, "policy", "", "calendar_days or working_days")
	fs.StringVar(&q.Days, "days", "", "length of the period in days of that kind")
	fs.StringVar(&q.Calendar, "calendar", "", `holiday calendar, e.g. "cn" (empty: weekends only)`)
	fs.StringVar(&q.Start, "start", "", "when the clock started, RFC 3339 (e.g. 2025-09-26T10:00:00+08:00)")
	fs.BoolVar(&q.RollForward, "roll-forward", false, "move a calendar-day deadline that ends on a rest day to the next working day")
	fs.StringVar(&q.TimeZone, "time-zone", "Asia/Shanghai", "time zone days are counted in")
	dir := fs.String("calendars-dir", "", "directory of extra or corrected calendar years (JSON)")
	if _, err := c.parse(args[1:], 0, 0); err != nil {
		return err
	}
	set, err := calendars.Builtin()
	if err != nil {
		return err
	}
	if *dir != "" {
		if err := set.LoadDir(*dir); err != nil {
			return fmt.Errorf("datarights sla due: --calendars-dir: %w", err)
		}
	}
	ans, err := q.Resolve(set)
	if err != nil {
		var re *rights.Error
		if errors.As(err, &re) {
			msgs := make([]string, len(re.Fields))
			for i, f := range re.Fields {
				msgs[i] = "--" + strings.ReplaceAll(f.Field, "_", "-") + " " + f.Reason
			}
			return c.mistake(strings.Join(msgs, "; "))
		}
		return err
	}
	fmt.Fprintln(stdout, ans.LastDay)
	fmt.Fprintf(stdout, "due: %s (24:00 of %s, %s)\n", ans.Due.Format(time.RFC3339), ans.LastDay, ans.Policy.Location)
	// The clock start (received or verified) is the caller's --start here,
	// so the policy is described without it.
	policy := fmt.Sprintf("%d %s", ans.Policy.Days, ans.Policy.Kind)
	if ans.Policy.RollForward {
		policy += ", rolled forward to a working day"
	}
	fmt.Fprintf(stdout, "policy: %s, counted from the day after %s (start %s)\n",
		policy, ans.Start.In(ans.Policy.Location).Format(time.DateOnly), ans.Start.Format(time.RFC3339))
	if q.Calendar == "" || q.Calendar == "none" {
		fmt.Fprintln(stdout, "calendar: none (Monday to Friday are working days; no holidays)")
	}
	for _, src := range ans.Sources {
		fmt.Fprintf(stdout, "calendar %s: %s\n", q.Calendar, src)
	}
	if len(ans.UncoveredYears) > 0 {
		years := make([]string, len(ans.UncoveredYears))
		for i, y := range ans.UncoveredYears {
			years[i] = strconv.Itoa(y)
		}
		fmt.Fprintf(stdout, "WARNING: no published holiday calendar for %s: those days were counted as weekends only; check the deadline by hand\n",
			strings.Join(years, ", "))
	}
	return nil
}
