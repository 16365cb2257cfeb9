package exporters

import (
	"encoding/json"
	"testing"
	"time"
)

// TestReportCellsInLocalTime: a timestamp in a table is shown in the
// report's zone, as the report says; other text is left alone.
func TestReportCellsInLocalTime(t *testing.T) {
	t.Parallel()
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Skip("no tz database")
	}
	for _, tc := range []struct {
		raw  string
		loc  *time.Location
		want string
	}{
		{`"2024-05-01T01:02:03Z"`, chinaTime, "2024-05-01 09:02:03"},
		{`"2024-05-01T01:02:03.123456+00:00"`, chinaTime, "2024-05-01 09:02:03"},
		{`"2024-05-01T01:02:03Z"`, kolkata, "2024-05-01 06:32:03"},
		{`"2024-05-01"`, chinaTime, "2024-05-01"},
		{`"not a time, but long enough: T"`, chinaTime, "not a time, but long enough: T"},
		{`12`, chinaTime, "12"},
	} {
		if got := displayCell(json.RawMessage(tc.raw), tc.loc).Text; got != tc.want {
			t.Errorf("%s in %s: %q, want %q", tc.raw, tc.loc, got, tc.want)
		}
	}
	if got := utcOffset(kolkata); got != "UTC+5:30" {
		t.Errorf("Kolkata is %s", got)
	}
	if got := utcOffset(chinaTime); got != "UTC+8" {
		t.Errorf("Shanghai is %s", got)
	}
}
