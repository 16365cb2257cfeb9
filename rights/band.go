package rights

import "time"

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
// written in SQL in storage.bandSQL; a test keeps the two in step.
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
	case r.ClockStartedAt != nil && !now.Before(r.ClockStartedAt.Add(time.Duration(float64(r.DueAt.Sub(*r.ClockStartedAt))*dueSoonAt))):
		return BandDueSoon
	}
	return BandOnTrack
}
