package rights

import (
	"math"
	"time"
)

// Band is where an open request stands against its deadline, for the staff
// queue and the dashboards.
type Band string

const (
	BandOnTrack    Band = "on_track"
	BandDueSoon    Band = "due_soon" // past the due-soon fraction of its period
	BandOverdue    Band = "overdue"  // past its deadline, still open
	BandPaused     Band = "paused"   // the clock stands still
	BandNoDeadline Band = "no_deadline"
	BandClosed     Band = "closed" // completed, refused or cancelled
)

// Bands lists the bands in queue order.
var Bands = []Band{BandOverdue, BandDueSoon, BandOnTrack, BandPaused, BandNoDeadline, BandClosed}

// Valid reports whether b is a known band.
func (b Band) Valid() bool {
	for _, known := range Bands {
		if b == known {
			return true
		}
	}
	return false
}

// BandOf places r at now. dueSoonAt is the fraction of the period (clock
// start to due) after which an open request is due soon. The same rules are
// written in SQL in storage.bandSQL and the band conditions of the staff
// queue; a test keeps them in step.
func BandOf(r *Request, now time.Time, dueSoonAt float64) Band {
	switch {
	case r.Status.Terminal():
		return BandClosed
	case r.Status == StatusPaused:
		return BandPaused
	case r.DueAt == nil:
		return BandNoDeadline
	case !now.Before(*r.DueAt):
		return BandOverdue
	case r.ClockStartedAt != nil && !now.Before(DueSoonInstant(*r.ClockStartedAt, *r.DueAt, dueSoonAt)):
		return BandDueSoon
	}
	return BandOnTrack
}

// DueSoonInstant is when a request whose clock started at start and which is
// due at due becomes due soon: fraction of the way through its period. It is
// in whole microseconds (what Postgres keeps), the offset rounded half to
// even, exactly as the database's datarights_due_soon_at computes the
// instant it stores (migration 0028), so that a request is in the same band
// in a view as in the staff queue's lists.
func DueSoonInstant(start, due time.Time, fraction float64) time.Time {
	period := due.Sub(start) / time.Microsecond
	return start.Add(time.Duration(math.RoundToEven(float64(period)*fraction)) * time.Microsecond)
}
