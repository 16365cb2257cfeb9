package jobs

import "time"

// SetIntakeStallAfter sets how long an intake group may fill before the
// tickets behind it get a committer of their own (intakeStallAfter).
func SetIntakeStallAfter(p *Pipeline, d time.Duration) { p.intake.stallAfter = d }
