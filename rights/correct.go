package rights

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The right to correct (更正): the person names fields of their data (by the
// public names the configuration gives them, e.g. "email") and the values
// they should hold. Values are personal data: they live on the request and
// go to the stores, never into logs, errors, metrics or the audit trail,
// which record field names only.

// ActionCorrect sets the subject's named fields to the new values in a store.
const ActionCorrect TaskAction = "correct"

// Corrector is a connector that can correct the subject's data in its store.
// Like Delete, Correct must be safe to call again: a repeated Correct writes
// the same values again.
type Corrector interface {
	// Correct sets each field named in changes (field name → new value) that
	// the store knows to its new value in every row of the subject, and
	// reports the rows updated per dataset. Fields the store does not know
	// are ignored. A subject not found in the store is reported as
	// Resolved: false, and nothing is changed.
	Correct(ctx context.Context, subject Subject, changes map[string]string) (StoreReport, error)
}

// Validators a correctable field may declare: how a new value is checked
// before it is accepted.
const (
	ValidateText  = "text"  // any non-blank text without control characters
	ValidateEmail = "email" // a plain email address
	ValidatePhone = "phone" // digits, optionally after a + sign
	ValidateDate  = "date"  // YYYY-MM-DD, a real calendar date
)

// CorrectionValidators lists the known validators.
var CorrectionValidators = []string{ValidateEmail, ValidatePhone, ValidateText, ValidateDate}

// Limits on corrections.
const (
	MaxCorrectionValue = 1000 // bytes of one new value
	maxCorrections     = 20   // fields in one request
)

var (
	fieldNameRE  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
	phoneDigitRE = regexp.MustCompile(`^\+?[0-9]{5,20}$`)
)

// ValidFieldName reports whether name can name a correctable field: a
// lower-case identifier like "email" or "id_number".
func ValidFieldName(name string) bool { return fieldNameRE.MatchString(name) }

// CheckCorrection returns why value cannot be the new value of a field
// checked by validator, or "" when it can. The reason never quotes the value.
func CheckCorrection(validator, value string) string {
	switch {
	case !utf8.ValidString(value) || len(value) > MaxCorrectionValue:
		return "must be valid text of at most 1000 bytes"
	case strings.TrimSpace(value) == "":
		return "must not be empty"
	case strings.ContainsFunc(value, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' }):
		return "must not contain control characters"
	}
	switch validator {
	case ValidateText:
		return ""
	case ValidateEmail:
		if !validEmail(value) {
			return "must be an email address"
		}
	case ValidatePhone:
		if !phoneDigitRE.MatchString(value) {
			return "must be a phone number: 5 to 20 digits, optionally after +, no spaces"
		}
	case ValidateDate:
		d, err := time.Parse(time.DateOnly, value)
		if err != nil || d.Format(time.DateOnly) != value {
			return "must be a date written YYYY-MM-DD"
		}
	default:
		return "cannot be checked: the field's validator is not known"
	}
	return ""
}

// validateCorrections checks the corrections of an intake: required for a
// correct request and forbidden for the others, named by lower-case field
// names, values valid text. Which fields exist and how their values are
// checked depends on the product's stores; the pipeline checks that.
func (in *Intake) validateCorrections(p *Problems) {
	if in.Type != TypeCorrect {
		if len(in.Corrections) > 0 {
			p.Add("corrections", "only correct requests carry corrections, not %s requests", in.Type)
		}
		return
	}
	switch {
	case len(in.Corrections) == 0:
		p.Add("corrections", `at least one field is required: {"field": "new value"}`)
		return
	case len(in.Corrections) > maxCorrections:
		p.Add("corrections", "at most %d fields", maxCorrections)
		return
	}
	for _, field := range sortedKeys(in.Corrections) {
		if !ValidFieldName(field) {
			p.Add("corrections", "field names are lower-case names like \"email\" (letters, digits, _; at most 32)")
			continue
		}
		value := in.Corrections[field]
		switch {
		case !utf8.ValidString(value) || len(value) > MaxCorrectionValue:
			p.Add("corrections."+field, "must be valid text of at most %d bytes", MaxCorrectionValue)
		case strings.TrimSpace(value) == "":
			p.Add("corrections."+field, "must not be empty")
		}
	}
}

// CorrectedFields returns the names of the fields a correction changed in
// the store: none unless the subject was found.
func (r StoreReport) CorrectedFields() []string {
	if !r.Resolved {
		return nil
	}
	return r.Fields
}

// AddCorrectedFields records that fields were set in rows of the subject,
// keeping Fields sorted and without repeats. Connectors call it per table
// they corrected.
func (r *StoreReport) AddCorrectedFields(rows int64, fields ...string) {
	if rows == 0 {
		return
	}
	r.Fields = append(r.Fields, fields...)
	slices.Sort(r.Fields)
	r.Fields = slices.Compact(r.Fields)
}
