package config

import (
	"regexp"
	"slices"
	"strings"

	"github.com/datarights/datarights/rights"
)

// IdentityFormat says how a SQL store holds emails and phone numbers, so
// that a requester's "Demo-User-7@Example.com " or "+86 138 0000 0007" is
// written the store's way before its lookups run.
type IdentityFormat struct {
	// Email: normalized (default once the section is there: trimmed, NFKC,
	// case-folded) or exact.
	Email string `yaml:"email"`
	// Phone: national (default: the national number of default_region,
	// e.g. 13800000007), e164 (+8613800000007) or exact.
	Phone string `yaml:"phone"`
	// DefaultRegion is the calling code of numbers written without one;
	// default "+86".
	DefaultRegion string `yaml:"default_region"`
}

// DefaultRegion is the calling code assumed for phone numbers written
// without one, unless a store says otherwise.
const DefaultRegion = "+86"

var regionRE = regexp.MustCompile(`^\+[1-9][0-9]{0,2}$`)

// Format returns how the store holds emails and phones. A store without
// identity_format looks values up exactly as given, as it always did: which
// customer a lookup finds never changes behind an operator's back. With
// identity_format (even {}), emails are normalised and phones national in
// +86 unless it says otherwise.
func (s Store) Format() rights.IdentityFormat {
	if s.IdentityFormat == nil {
		return rights.IdentityFormat{Email: rights.EmailExact, Phone: rights.PhoneExact}
	}
	f := rights.IdentityFormat{Email: rights.EmailNormalized, Phone: rights.PhoneNational, DefaultRegion: DefaultRegion}
	if s.IdentityFormat.Email != "" {
		f.Email = s.IdentityFormat.Email
	}
	if s.IdentityFormat.Phone != "" {
		f.Phone = s.IdentityFormat.Phone
	}
	if s.IdentityFormat.DefaultRegion != "" {
		f.DefaultRegion = s.IdentityFormat.DefaultRegion
	}
	return f
}

func checkIdentityFormat(p *rights.Problems, f string, s Store) {
	idf := s.IdentityFormat
	if idf == nil {
		return
	}
	if !slices.Contains(sqlKinds, s.Kind) {
		p.Add(f, "is for SQL stores (postgres, mysql), whose lookups it shapes, not %s", s.Kind)
	}
	if idf.Email != "" && !slices.Contains(rights.EmailFormats, idf.Email) {
		p.Add(f+".email", "must be one of %s, not %q", strings.Join(rights.EmailFormats, ", "), idf.Email)
	}
	if idf.Phone != "" && !slices.Contains(rights.PhoneFormats, idf.Phone) {
		p.Add(f+".phone", "must be one of %s, not %q", strings.Join(rights.PhoneFormats, ", "), idf.Phone)
	}
	if idf.DefaultRegion != "" && !regionRE.MatchString(idf.DefaultRegion) {
		p.Add(f+".default_region", "must be a calling code like \"+86\", not %q", idf.DefaultRegion)
	}
}
