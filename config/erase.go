package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/datarights/datarights/rights"
)

// Retention configures legal retention periods and the sweep that erases
// restricted data once its period has run.
type Retention struct {
	// Classes are the retention periods tables may name.
	Classes []RetentionClass `yaml:"classes"`
	// SweepInterval is how often restricted data is checked for periods
	// that have run; default 1h.
	SweepInterval time.Duration `yaml:"sweep_interval"`
}

// RetentionClass is a legal retention period, e.g. account records kept 10
// years after the business relationship ends (WeBank policy §5).
type RetentionClass struct {
	Name string `yaml:"name"`
	// Years and Months add up to the period (e.g. years: 1, months: 6).
	Years  int `yaml:"years"`
	Months int `yaml:"months"`
	// Basis is the law or rule that requires it, shown to staff and told to
	// the requester whose data is kept.
	Basis string `yaml:"basis"`
	// BasisEN is the basis in English, for requesters who read English;
	// Basis (Chinese) is told when it is empty.
	BasisEN string `yaml:"basis_en"`
}

// PeriodMonths is the class's period in months.
func (rc RetentionClass) PeriodMonths() int { return 12*rc.Years + rc.Months }

// BasisIn returns the basis in locale.
func (rc RetentionClass) BasisIn(locale string) string {
	return LocalText{ZH: rc.Basis, EN: rc.BasisEN}.In(locale)
}

// AnonymizeRule says how one column is overwritten when a table's rows are
// anonymized.
type AnonymizeRule struct {
	Column   string `yaml:"column"`
	Strategy string `yaml:"strategy"` // null | fixed | random
	Value    string `yaml:"value"`    // the fixed value
}

// DefaultRetentionSweep is how often the retention sweep runs by default.
const DefaultRetentionSweep = time.Hour

// EraseMode returns how a delete acts on the table: delete unless it says
// otherwise.
func (t Table) EraseMode() string {
	if t.OnDelete == "" {
		return rights.EraseDelete
	}
	return t.OnDelete
}

// RetentionClass returns the class named name.
func (c *Config) RetentionClass(name string) (RetentionClass, bool) {
	for _, rc := range c.Retention.Classes {
		if rc.Name == name {
			return rc, true
		}
	}
	return RetentionClass{}, false
}

// resolveRetention copies each table's retention period in months onto the
// table, so a connector needs only its store's configuration.
func (c *Config) resolveRetention() {
	for i := range c.Stores {
		for j := range c.Stores[i].Tables {
			t := &c.Stores[i].Tables[j]
			if rc, ok := c.RetentionClass(t.Retention); ok {
				t.RetentionMonths = rc.PeriodMonths()
			}
		}
	}
}

func (c *Config) checkRetentionClasses(p *rights.Problems) {
	seen := map[string]bool{}
	for i, rc := range c.Retention.Classes {
		f := fmt.Sprintf("retention.classes[%d]", i)
		switch {
		case !identityRE.MatchString(rc.Name):
			p.Add(f+".name", "must be a lower-case name like \"account_records\", not %q", rc.Name)
		case seen[rc.Name]:
			p.Add(f+".name", "%q is declared twice", rc.Name)
		}
		seen[rc.Name] = true
		switch {
		case rc.Months < 0 || rc.Months > 1200:
			p.Add(f+".months", "must be between 0 and 1200, not %d", rc.Months)
		case rc.Months == 0 && (rc.Years < 1 || rc.Years > 100):
			p.Add(f+".years", "must be between 1 and 100, not %d (or give the period in months)", rc.Years)
		case rc.Years < 0 || rc.PeriodMonths() > 1200:
			p.Add(f+".years", "years and months must add up to between 1 month and 100 years")
		}
		if strings.TrimSpace(rc.Basis) == "" {
			p.Add(f+".basis", "is required: the law or rule that requires keeping the data (told to the requester)")
		}
	}
	if c.Retention.SweepInterval < time.Minute {
		p.Add("retention.sweep_interval", "must be at least 1m, not %s", c.Retention.SweepInterval)
	}
}

// checkErase validates how a delete acts on a SQL table; tf is the table's
// field path, e.g. "stores[0].tables[1]".
func (c *Config) checkErase(p *rights.Problems, tf string, t Table) {
	mode := t.EraseMode()
	if !slices.Contains(rights.EraseModes, mode) {
		p.Add(tf+".on_delete", "must be one of %s, not %q", strings.Join(rights.EraseModes, ", "), t.OnDelete)
		return
	}
	switch {
	case mode == rights.EraseAnonymize && len(t.Anonymize) == 0:
		p.Add(tf+".anonymize", "is required with on_delete: anonymize: the columns to overwrite and how")
	case mode != rights.EraseAnonymize && len(t.Anonymize) > 0:
		p.Add(tf+".anonymize", "is only used with on_delete: anonymize")
	}
	columns := map[string]bool{}
	for k, rule := range t.Anonymize {
		af := fmt.Sprintf("%s.anonymize[%d]", tf, k)
		checkColumn(p, af+".column", rule.Column)
		if columns[rule.Column] {
			p.Add(af+".column", "%q is anonymized twice", rule.Column)
		}
		columns[rule.Column] = true
		switch {
		case !slices.Contains(rights.AnonymizeStrategies, rule.Strategy):
			p.Add(af+".strategy", "must be one of %s, not %q", strings.Join(rights.AnonymizeStrategies, ", "), rule.Strategy)
		case rule.Strategy == rights.AnonymizeFixed && rule.Value == "":
			p.Add(af+".value", "is required with strategy fixed")
		case rule.Strategy != rights.AnonymizeFixed && rule.Value != "":
			p.Add(af+".value", "is only used with strategy fixed")
		case rule.Column == t.Column && rule.Strategy == rights.AnonymizeFixed:
			p.Add(af+".strategy", "the key column must become null or random: a fixed value would link every anonymized row together")
		}
	}
	if mode == rights.EraseAnonymize && len(t.Anonymize) > 0 && !columns[t.Column] {
		p.Add(tf+".anonymize", "must overwrite the key column %q (null or random): a row that still carries the key is not anonymous", t.Column)
	}

	restricts := mode == rights.EraseRestrict || t.Retention != ""
	switch {
	case restricts && t.RestrictColumn == "":
		p.Add(tf+".restrict_column", "is required to restrict rows: a nullable timestamp column the applications honour (NULL = not restricted)")
	case !restricts && t.RestrictColumn != "":
		p.Add(tf+".restrict_column", "is only used with on_delete: restrict or a retention class")
	case t.RestrictColumn != "":
		checkColumn(p, tf+".restrict_column", t.RestrictColumn)
		if t.RestrictColumn == t.Column {
			p.Add(tf+".restrict_column", "must not be the key column")
		}
	}
	if t.Retention == "" {
		if t.RetentionFrom != "" {
			p.Add(tf+".retention_from", "is only used with retention")
		}
		return
	}
	if _, ok := c.RetentionClass(t.Retention); !ok {
		var names []string
		for _, rc := range c.Retention.Classes {
			names = append(names, rc.Name)
		}
		if len(names) == 0 {
			p.Add(tf+".retention", "unknown retention class %q: declare it under retention.classes", t.Retention)
		} else {
			p.Add(tf+".retention", "unknown retention class %q; known: %s", t.Retention, strings.Join(names, ", "))
		}
	}
	if mode == rights.EraseRestrict {
		p.Add(tf+".on_delete", "restrict keeps rows restricted with no end; under a retention class, on_delete says what happens when the period ends (delete or anonymize)")
	}
	if t.RetentionFrom != "" {
		checkColumn(p, tf+".retention_from", t.RetentionFrom)
	}
}
