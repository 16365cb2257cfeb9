package rights

import (
	"context"
	"time"
)

// The right to delete (删除) and account cancellation (注销) erase the
// subject's data store by store and table by table, each table in the way
// the configuration says:
//
//   - delete: the rows are removed;
//   - anonymize: the rows stay (for statistics, accounting totals) with the
//     columns that identify the person overwritten, the key among them, so
//     they can no longer be linked to anyone;
//   - restrict: the rows stay, marked restricted: the company stops all
//     processing of them but storage and security (WeBank policy §7(二)).
//
// A table under a legal retention period (e.g. 10 years after the business
// relationship ends, for account records) is restricted, not deleted or
// anonymized, until its period has run; the retention sweep then erases it
// as configured.

// Erasure modes a table may declare.
const (
	EraseDelete    = "delete"
	EraseAnonymize = "anonymize"
	EraseRestrict  = "restrict"
)

// EraseModes lists the modes in documentation order.
var EraseModes = []string{EraseDelete, EraseAnonymize, EraseRestrict}

// Anonymization strategies for one column.
const (
	AnonymizeNull   = "null"   // set to NULL
	AnonymizeFixed  = "fixed"  // set to a configured value, e.g. "已注销"
	AnonymizeRandom = "random" // set to a random token unique to the row ("anon-" and a UUID)
)

// AnonymizeStrategies lists the strategies.
var AnonymizeStrategies = []string{AnonymizeNull, AnonymizeFixed, AnonymizeRandom}

// EraseOptions tell a connector when an erasure happens.
type EraseOptions struct {
	// Now is the time of the erasure: retention periods that have run by
	// then are over, and restricted rows are marked with it.
	Now time.Time
	// EndedAt is when the business relationship ended: the retention period
	// of a row counts from here unless the row says when its own began.
	EndedAt time.Time
	// Location is where days end: a retention period ends at 24:00 local
	// time of its last day. Nil means Asia/Shanghai.
	Location *time.Location
	// Tables limits the erasure to these datasets (a retention release);
	// empty means every table of the store.
	Tables []string
}

// Eraser is a connector that can erase the subject's data by each table's
// mode and retention. Like Delete it must be safe to call again: a repeated
// Erase finds deleted rows gone, anonymized rows unlinked and restricted rows
// already marked.
type Eraser interface {
	Erase(ctx context.Context, subject Subject, opts EraseOptions) (StoreReport, error)
}

// Restricted returns the datasets of the report holding rows kept
// restricted: by a running retention period (RestrictedUntil set) or with
// no end (on_delete: restrict).
func (r StoreReport) Restricted() []DatasetReport {
	var out []DatasetReport
	for _, d := range r.Datasets {
		if d.Restricted > 0 {
			out = append(out, d)
		}
	}
	return out
}

// RetentionCutoff returns the instant before which a retention period of
// years must have begun to be over at now: a period that began on day D ends
// at 24:00 (loc) of day D+years, so at now it is over for every D before
// today's date minus years. A period that began on 29 February ends, in a
// year without one, at the end of 28 February (Civil Code Art. 203: the last
// day of the month).
func RetentionCutoff(now time.Time, years int, loc *time.Location) time.Time {
	return RetentionCutoffMonths(now, 12*years, loc)
}

// RetentionEnd returns when a retention period of years that began at from
// ends: 24:00 (loc) of the same day years later, or of the month's last day
// when that day does not exist (29 February). It is the first instant at
// which RetentionCutoff has passed from.
func RetentionEnd(from time.Time, years int, loc *time.Location) time.Time {
	return RetentionEndMonths(from, 12*years, loc)
}

// RetentionEndMonths returns when a retention period of months that began
// at from ends: 24:00 (loc) of the same day of the month months later, or
// of that month's last day when it has no such day (a period of one month
// from 31 January ends with 28 or 29 February; Civil Code Art. 203).
func RetentionEndMonths(from time.Time, months int, loc *time.Location) time.Time {
	if loc == nil {
		loc = defaultLocation
	}
	l := from.In(loc)
	target := time.Date(l.Year(), l.Month()+time.Month(months), 1, 0, 0, 0, 0, loc)
	day := min(l.Day(), daysIn(target))
	return time.Date(target.Year(), target.Month(), day+1, 0, 0, 0, 0, loc)
}

// RetentionCutoffMonths returns the instant before which a retention
// period of months must have begun to be over at now: the start of the day
// after the last day D whose period ended before today.
func RetentionCutoffMonths(now time.Time, months int, loc *time.Location) time.Time {
	if loc == nil {
		loc = defaultLocation
	}
	l := now.In(loc)
	yesterday := time.Date(l.Year(), l.Month(), l.Day()-1, 0, 0, 0, 0, loc)
	target := time.Date(yesterday.Year(), yesterday.Month()-time.Month(months), 1, 0, 0, 0, 0, loc)
	day := min(yesterday.Day(), daysIn(target))
	if yesterday.AddDate(0, 0, 1).Day() == 1 {
		// Yesterday closed its month: every period ending with that
		// month's last day is over, including those from days the month
		// lacks (31 January + 1 month).
		day = daysIn(target)
	}
	return time.Date(target.Year(), target.Month(), day+1, 0, 0, 0, 0, loc)
}

// daysIn returns the number of days of t's month.
func daysIn(t time.Time) int {
	return time.Date(t.Year(), t.Month()+1, 0, 0, 0, 0, 0, t.Location()).Day()
}

var defaultLocation = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}()

// Prechecker is a SQL connector that can run a cancellation pre-check: a
// query, written by the operator, with the subject's store key as its one
// parameter. True or a number above 0 blocks the cancellation.
type Prechecker interface {
	Precheck(ctx context.Context, subject Subject, query string) (blocked bool, err error)
}
