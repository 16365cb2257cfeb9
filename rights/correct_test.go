package rights_test

import (
	"strings"
	"testing"

	"github.com/datarights/datarights/rights"
)

func TestCorrectIsSupported(t *testing.T) {
	t.Parallel()
	if action, ok := rights.ActionFor(rights.TypeCorrect); !ok || action != rights.ActionCorrect {
		t.Fatalf("ActionFor(correct) = %q, %v; want correct, true", action, ok)
	}
}

func TestIntakeValidatesCorrections(t *testing.T) {
	t.Parallel()
	cat := rights.Catalog{Products: map[string]bool{"webank": true}, IdentityTypes: map[string]bool{"user_id": true}}
	intake := func(typ rights.Type, corrections map[string]string) rights.Intake {
		return rights.Intake{Product: "webank", Type: typ, Identities: map[string]string{"user_id": "u-1"},
			DeliveryEmail: "a@example.com", Verification: &rights.Verification{Method: "face_check"}, Corrections: corrections}
	}
	good := intake(rights.TypeCorrect, map[string]string{"city": "杭州", "email": "new@example.com"})
	if err := good.Validate(rights.ChannelStaff, cat); err != nil {
		t.Fatalf("good correction: %v", err)
	}
	secret := "s3cret-value-" + strings.Repeat("x", 1000)
	cases := map[string]struct {
		in    rights.Intake
		field string
	}{
		"correct without corrections": {intake(rights.TypeCorrect, nil), "corrections"},
		"correct with empty map":      {intake(rights.TypeCorrect, map[string]string{}), "corrections"},
		"corrections on a copy":       {intake(rights.TypeCopy, map[string]string{"city": "杭州"}), "corrections"},
		"upper-case field name":       {intake(rights.TypeCorrect, map[string]string{"City": "杭州"}), "corrections"},
		"field name with a space":     {intake(rights.TypeCorrect, map[string]string{"home city": "杭州"}), "corrections"},
		"value too long":              {intake(rights.TypeCorrect, map[string]string{"city": secret}), "corrections.city"},
		"value not UTF-8":             {intake(rights.TypeCorrect, map[string]string{"city": "\xff\xfe"}), "corrections.city"},
		"blank value":                 {intake(rights.TypeCorrect, map[string]string{"city": "  "}), "corrections.city"},
		"corrections on a delete":     {intake(rights.TypeDelete, map[string]string{"city": "x"}), "corrections"},
	}
	for name, tc := range cases {
		err := tc.in.Validate(rights.ChannelStaff, cat)
		e, ok := err.(*rights.Error)
		if !ok {
			t.Errorf("%s: err = %v, want a problem with %s", name, err, tc.field)
			continue
		}
		found := false
		for _, f := range e.Fields {
			found = found || f.Field == tc.field
			if strings.Contains(f.Reason, "s3cret") || strings.Contains(f.Reason, "杭州") {
				t.Errorf("%s: the reason quotes the value: %q", name, f.Reason)
			}
		}
		if !found {
			t.Errorf("%s: err = %v, want a problem with %s", name, err, tc.field)
		}
	}
}

func TestCheckCorrection(t *testing.T) {
	t.Parallel()
	cases := []struct {
		validator, value string
		ok               bool
	}{
		{rights.ValidateText, "杭州", true},
		{rights.ValidateText, "Robert'); DROP TABLE users;--", true},
		{rights.ValidateText, "line one\nline two", true},
		{rights.ValidateText, "nul\x00byte", false},
		{rights.ValidateText, " ", false},
		{rights.ValidateText, strings.Repeat("a", 1001), false},
		{rights.ValidateText, strings.Repeat("a", 1000), true},
		{rights.ValidateEmail, "new@example.com", true},
		{rights.ValidateEmail, "New Name <new@example.com>", false},
		{rights.ValidateEmail, "not-an-email", false},
		{rights.ValidatePhone, "13800001234", true},
		{rights.ValidatePhone, "+8613800001234", true},
		{rights.ValidatePhone, "138 0000 1234", false},
		{rights.ValidatePhone, "call me", false},
		{rights.ValidateDate, "2024-02-29", true},
		{rights.ValidateDate, "2023-02-29", false},
		{rights.ValidateDate, "2024-2-9", false},
		{rights.ValidateDate, "29/02/2024", false},
		{"colour", "red", false},
	}
	for _, tc := range cases {
		reason := rights.CheckCorrection(tc.validator, tc.value)
		if (reason == "") != tc.ok {
			t.Errorf("CheckCorrection(%s, %.20q) = %q, want ok %v", tc.validator, tc.value, reason, tc.ok)
		}
		if reason != "" && len(strings.TrimSpace(tc.value)) > 3 && strings.Contains(reason, tc.value) {
			t.Errorf("CheckCorrection(%s, %.20q): the reason quotes the value", tc.validator, tc.value)
		}
	}
}

func TestCorrectedFields(t *testing.T) {
	t.Parallel()
	var r rights.StoreReport
	r.AddCorrectedFields(0, "phone")
	r.AddCorrectedFields(1, "email", "city")
	r.AddCorrectedFields(2, "city")
	if got := r.CorrectedFields(); got != nil {
		t.Errorf("unresolved report corrected %v, want none", got)
	}
	r.Resolved = true
	if got := strings.Join(r.CorrectedFields(), ","); got != "city,email" {
		t.Errorf("CorrectedFields = %s, want city,email", got)
	}
}
