package rights

import "testing"

func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Demo-User-7@Example.com ": "demo-user-7@example.com",
		"\tA@B.CN\n":               "a@b.cn",
		"ｄｅｍｏ＠ｅｘａｍｐｌｅ．ｃｏｍ": "demo@example.com", // full-width, NFKC
		"STRASSE@EXAMPLE.DE": "strasse@example.de",
	} {
		if got := NormalizeEmail(in); got != want {
			t.Errorf("NormalizeEmail(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNormalizePhone(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"13800000007":       "+8613800000007",
		"138 0000 0007":     "+8613800000007",
		"+86 138-0000-0007": "+8613800000007",
		"0086 13800000007":  "+8613800000007",
		"(+86) 13800000007": "+8613800000007",
		"０１０ ６２１２ ３４５６":     "+861062123456", // full-width, trunk 0 dropped
		"+44 20 7946 0958":  "+442079460958",
	} {
		got, ok := NormalizePhone(in, "+86")
		if !ok || got != want {
			t.Errorf("NormalizePhone(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "abc", "138000", "+86 138 0000 0007 ext 5", "1234567890123456789"} {
		if got, ok := NormalizePhone(bad, "+86"); ok {
			t.Errorf("NormalizePhone(%q) = %q, want not a number", bad, got)
		}
	}
}

func TestIdentityFormatApply(t *testing.T) {
	t.Parallel()
	in := map[string]string{"email": " Demo-User-7@Example.com ", "phone": "+86 138 0000 0007", "user_id": " u-1 "}
	cases := map[IdentityFormat]map[string]string{
		{Email: EmailNormalized, Phone: PhoneNational, DefaultRegion: "+86"}: {"email": "demo-user-7@example.com", "phone": "13800000007", "user_id": " u-1 "},
		{Email: EmailExact, Phone: PhoneE164, DefaultRegion: "+86"}:          {"email": " Demo-User-7@Example.com ", "phone": "+8613800000007", "user_id": " u-1 "},
		{Email: EmailNormalized, Phone: PhoneExact}:                          {"email": "demo-user-7@example.com", "phone": "+86 138 0000 0007", "user_id": " u-1 "},
	}
	for f, want := range cases {
		got := f.Apply(in)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%+v: %s = %q, want %q", f, k, got[k], v)
			}
		}
	}
	// A foreign number in a store of national numbers stays E.164.
	if got := (IdentityFormat{Phone: PhoneNational, DefaultRegion: "+86"}).Apply(map[string]string{"phone": "+44 20 7946 0958"}); got["phone"] != "+442079460958" {
		t.Errorf("foreign number: %q", got["phone"])
	}
}
