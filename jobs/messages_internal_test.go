package jobs

import (
	"testing"
	"time"

	"github.com/datarights/datarights/rights"
)

// TestEmailWords: counts are said with the right plural, zones by name.
func TestEmailWords(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		locale string
		n      int64
		want   string
	}{
		{rights.LocaleEN, 0, "0 records"}, {rights.LocaleEN, 1, "1 record"}, {rights.LocaleEN, 27, "27 records"},
		{rights.LocaleZH, 1, "1 条记录"},
	} {
		if got := records(tc.locale, tc.n); got != tc.want {
			t.Errorf("records(%s, %d) = %q, want %q", tc.locale, tc.n, got, tc.want)
		}
	}
	_, en := erasureWords(rights.StoreReport{Datasets: []rights.DatasetReport{{Name: "users", Rows: 1, Deleted: 1}}})
	if en != "1 record deleted" {
		t.Errorf("one deleted row: %q", en)
	}
	if got := zoneWords(rights.LocaleZH, shanghai); got != "北京时间" {
		t.Errorf("Shanghai in zh-CN: %q", got)
	}
	if got := zoneWords(rights.LocaleEN, time.UTC); got != "UTC" {
		t.Errorf("UTC: %q", got)
	}
}
