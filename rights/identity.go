package rights

import (
	"strings"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// How a store holds emails and phone numbers, so that what a requester
// types ("Demo-User-7@Example.com ", "+86 138 0000 0007") is turned into
// what the store's lookup column holds before it is looked up.
const (
	// EmailNormalized: the store holds emails trimmed, NFKC-normalised and
	// case-folded; the requester's email is normalised the same way.
	EmailNormalized = "normalized"
	// EmailExact / PhoneExact: the value is looked up as given.
	EmailExact = "exact"
	PhoneExact = "exact"
	// PhoneNational: the store holds national numbers without the country
	// code or trunk prefix (e.g. 13800000007 in China).
	PhoneNational = "national"
	// PhoneE164: the store holds E.164 numbers (+8613800000007).
	PhoneE164 = "e164"
)

// EmailFormats and PhoneFormats are the accepted formats.
var (
	EmailFormats = []string{EmailNormalized, EmailExact}
	PhoneFormats = []string{PhoneNational, PhoneE164, PhoneExact}
)

// IdentityFormat is a store's way of holding emails and phones.
type IdentityFormat struct {
	Email string // EmailNormalized (default) or EmailExact
	Phone string // PhoneNational, PhoneE164 or PhoneExact
	// DefaultRegion is the calling code numbers without one belong to,
	// e.g. "+86".
	DefaultRegion string
}

var fold = cases.Fold()

// NormalizeEmail trims an email, applies Unicode NFKC (full-width letters
// and digits become ASCII) and folds its case. Both the local part and the
// domain are folded: mailbox providers treat local parts
// case-insensitively, and a store that keeps emails normalised holds them so.
func NormalizeEmail(s string) string {
	return fold.String(norm.NFKC.String(strings.TrimSpace(s)))
}

// NormalizePhone turns a phone number as people write it — "138 0000 0007",
// "+86 138-0000-0007", "0086 13800000007", "(+86)13800000007", full-width
// digits — into E.164 ("+8613800000007"). A number without an international
// prefix belongs to defaultRegion (a calling code like "+86"); a single
// leading 0 there is a trunk prefix and is dropped. It reports false when
// the result is not 8 to 15 digits or the input holds letters.
func NormalizePhone(s, defaultRegion string) (string, bool) {
	s = norm.NFKC.String(strings.TrimSpace(s))
	var digits strings.Builder
	plus := false
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits.WriteRune(r)
		case r == '+' && digits.Len() == 0 && !plus:
			plus = true
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')' || r == '/' || unicode.IsSpace(r):
		default:
			return "", false
		}
	}
	d := digits.String()
	switch {
	case plus:
	case strings.HasPrefix(d, "00"):
		d = d[2:]
	default:
		cc := strings.TrimPrefix(strings.TrimSpace(defaultRegion), "+")
		if cc == "" {
			return "", false
		}
		d = strings.TrimPrefix(d, "0")
		if len(d) < 7 { // too short for a subscriber number
			return "", false
		}
		d = cc + d
	}
	if len(d) < 8 || len(d) > 15 || d[0] == '0' {
		return "", false
	}
	return "+" + d, true
}

// NationalPhone returns an E.164 number's national part when it belongs to
// region ("+86"), else the E.164 number itself (a foreign number is held
// as E.164 even in a store of national numbers).
func NationalPhone(e164, region string) string {
	cc := strings.TrimPrefix(strings.TrimSpace(region), "+")
	if cc != "" && strings.HasPrefix(e164, "+"+cc) {
		return strings.TrimPrefix(e164, "+"+cc)
	}
	return e164
}

// Apply returns identities with emails and phones written the way the
// store holds them; exact leaves them as given. Other identity types —
// keys — are left exactly as given: "k-1 " and "k-1" are different keys. A
// phone that cannot be read as a number is left as given: it will simply
// not be found.
func (f IdentityFormat) Apply(identities map[string]string) map[string]string {
	out := make(map[string]string, len(identities))
	for t, v := range identities {
		switch t {
		case "email":
			if f.Email == EmailNormalized {
				v = NormalizeEmail(v)
			}
		case "phone":
			if f.Phone != PhoneNational && f.Phone != PhoneE164 {
				break
			}
			if e, ok := NormalizePhone(v, f.DefaultRegion); ok {
				v = e
				if f.Phone == PhoneNational {
					v = NationalPhone(e, f.DefaultRegion)
				}
			}
		}
		out[t] = v
	}
	return out
}
