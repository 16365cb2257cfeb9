package jobs

import (
	"strings"
	"testing"
	"time"

	"github.com/datarights/datarights/rights"
)

func TestAgeOfReadsAgesAndBirthDates(t *testing.T) {
	t.Parallel()
	today := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		value any
		age   int
		known bool
	}{
		{nil, 0, false},
		{int64(15), 15, true},
		{int32(13), 13, true},
		{15.9, 15, true},
		{"17", 17, true},
		{time.Date(2010, 12, 3, 0, 0, 0, 0, time.UTC), 16, true}, // the birthday is today
		{time.Date(2010, 12, 4, 0, 0, 0, 0, time.UTC), 15, true}, // tomorrow
		{"2012-03-01", 14, true},
	}
	for _, c := range cases {
		age, known, err := ageOf(c.value, today)
		if err != nil || age != c.age || known != c.known {
			t.Errorf("ageOf(%v) = %d, %v, %v; want %d, %v", c.value, age, known, err, c.age, c.known)
		}
	}
	if _, _, err := ageOf("soon", today); err == nil {
		t.Error("ageOf(\"soon\") is not an error")
	}
}

func TestAgeRefusalMessages(t *testing.T) {
	t.Parallel()
	if m := ageRefusalMessage("not_served_below_16", rights.LocaleEN); !strings.Contains(m, "under 16") || !strings.Contains(m, "guardian") {
		t.Errorf("en: %s", m)
	}
	if m := ageRefusalMessage("guardian_required_below_14", rights.LocaleZH); !strings.Contains(m, "14") || !strings.Contains(m, "监护人") {
		t.Errorf("zh: %s", m)
	}
}

func TestConcernsMatchNeedsTheSamePersonAndProduct(t *testing.T) {
	t.Parallel()
	earlier := &rights.Request{Product: "webank", DeliveryEmail: "a@example.com",
		Subject: rights.Subject{Identities: map[string]string{"user_id": "u-1"}, Resolved: map[string]string{"email": "A@example.com"}}}
	cases := []struct {
		name    string
		subject rights.Subject
		product string
		email   string
		want    bool
	}{
		{"same key", rights.Subject{Identities: map[string]string{"user_id": "u-1"}}, "webank", "", true},
		{"resolved email, any case", rights.Subject{Identities: map[string]string{"email": "a@EXAMPLE.com"}}, "webank", "", true},
		{"another person", rights.Subject{Identities: map[string]string{"user_id": "u-2"}}, "webank", "", false},
		{"another product", rights.Subject{Identities: map[string]string{"user_id": "u-1"}}, "wechat", "", false},
		{"the proved address it went to", rights.Subject{Identities: map[string]string{"phone": "+8613800000000"}}, "webank", "a@example.com", true},
	}
	for _, c := range cases {
		if got := concernsMatch(c.subject, c.product, earlier, c.email); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
