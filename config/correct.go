package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/datarights/datarights/rights"
)

// FieldRule lets a correct request change one column of a table: requests
// name the field by its public name (Field, e.g. "email"), the store writes
// Column. Protected fields (a phone number, an ID number) change only after
// staff approve the request.
type FieldRule struct {
	Field     string `yaml:"field"`
	Column    string `yaml:"column"`
	Validate  string `yaml:"validate"` // email | phone | text | date
	Protected bool   `yaml:"protected"`
	// Label names the field for people (forms, emails); the field's name
	// when unset.
	Label LocalText `yaml:"label"`
}

// checkCorrectable validates a table's correctable fields; tf is the table's
// field path, e.g. "stores[0].tables[1]".
func checkCorrectable(p *rights.Problems, tf string, t Table) {
	fields, columns := map[string]bool{}, map[string]bool{}
	for k, rule := range t.Correctable {
		cf := fmt.Sprintf("%s.correctable[%d]", tf, k)
		switch {
		case !rights.ValidFieldName(rule.Field):
			p.Add(cf+".field", "must be a lower-case name like \"email\", not %q", rule.Field)
		case fields[rule.Field]:
			p.Add(cf+".field", "%q is declared twice in this table", rule.Field)
		}
		fields[rule.Field] = true
		checkColumn(p, cf+".column", rule.Column)
		switch {
		case rule.Column == t.Column:
			p.Add(cf+".column", "%q holds the store key, which a correction must not change", rule.Column)
		case columns[rule.Column]:
			p.Add(cf+".column", "%q is corrected by two fields of this table", rule.Column)
		}
		columns[rule.Column] = true
		if !slices.Contains(rights.CorrectionValidators, rule.Validate) {
			p.Add(cf+".validate", "must be one of %s, not %q", strings.Join(rights.CorrectionValidators, ", "), rule.Validate)
		}
	}
}

// checkCorrectableAcrossStores requires a field to be checked the same way
// wherever it is declared, so a request's value is checked once at intake.
func (c *Config) checkCorrectableAcrossStores(p *rights.Problems) {
	first := map[string]string{} // field → validator
	for i, s := range c.Stores {
		for j, t := range s.Tables {
			for k, rule := range t.Correctable {
				if want, ok := first[rule.Field]; ok && want != rule.Validate && slices.Contains(rights.CorrectionValidators, rule.Validate) {
					p.Add(fmt.Sprintf("stores[%d].tables[%d].correctable[%d].validate", i, j, k),
						"field %q is validated as %s elsewhere; a field must be validated the same way in every table", rule.Field, want)
				}
				if _, ok := first[rule.Field]; !ok {
					first[rule.Field] = rule.Validate
				}
			}
		}
	}
}

// CorrectableFields returns the fields a correct request for product may
// name: every field some store of the product lets be corrected. A field
// declared in several tables is protected if any of them protects it; its
// Column is the first declaration's.
func (c *Config) CorrectableFields(product string) map[string]FieldRule {
	out := map[string]FieldRule{}
	for _, s := range c.StoresFor(product) {
		for field, rule := range s.CorrectableFields() {
			if have, ok := out[field]; ok {
				have.Protected = have.Protected || rule.Protected
				out[field] = have
				continue
			}
			out[field] = rule
		}
	}
	return out
}

// CorrectableFields returns the fields the store lets be corrected, merged
// over its tables as Config.CorrectableFields merges over stores.
func (s Store) CorrectableFields() map[string]FieldRule {
	out := map[string]FieldRule{}
	for _, t := range s.Tables {
		for _, rule := range t.Correctable {
			if have, ok := out[rule.Field]; ok {
				have.Protected = have.Protected || rule.Protected
				out[rule.Field] = have
				continue
			}
			out[rule.Field] = rule
		}
	}
	return out
}

// Corrects returns the fields of changes the store can correct, sorted; none
// when it holds none of them.
func (s Store) Corrects(changes map[string]string) []string {
	known := s.CorrectableFields()
	var fields []string
	for _, field := range slices.Sorted(maps.Keys(changes)) {
		if _, ok := known[field]; ok {
			fields = append(fields, field)
		}
	}
	return fields
}
