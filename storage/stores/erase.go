package stores

import (
	"slices"
	"strings"
	"time"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/rights"
)

// What the SQL connectors share of an erasure (rights.Eraser): which tables
// an erasure covers, and the SET list of an anonymization. Each table is
// erased by its mode (config.Table.EraseMode):
//
//   - no retention class: delete or anonymize every row of the subject, or,
//     with on_delete: restrict, mark them restricted;
//   - a retention class: rows whose period has run (counted from the
//     retention_from column, or from the end of the relationship where the
//     row has none) are deleted or anonymized now; the others are marked
//     restricted, and the report says when the last of their periods ends,
//     for the retention sweep to come back then.
//
// Restricting sets restrict_column to the time of the erasure where it is
// NULL, so a row keeps the time it was first restricted.

// sqlDialect is how a SQL connector writes the parts of a statement that
// differ between servers.
type sqlDialect struct {
	ident func(string) string // quote a column
	// param returns the placeholder for the n-th argument (1-based).
	param func(n int) string
	// random is an expression giving a random text token per row.
	random string
}

// anonymizeSet returns the SET list overwriting the table's anonymized
// columns, with the arguments its fixed values take, numbered from first.
func (d sqlDialect) anonymizeSet(t config.Table, first int) (string, []any) {
	sets := make([]string, len(t.Anonymize))
	var args []any
	for i, rule := range t.Anonymize {
		value := "NULL"
		switch rule.Strategy {
		case rights.AnonymizeFixed:
			args = append(args, rule.Value)
			value = d.param(first + len(args) - 1)
		case rights.AnonymizeRandom:
			value = d.random
		}
		sets[i] = d.ident(rule.Column) + " = " + value
	}
	return strings.Join(sets, ", "), args
}

// eraseTables returns the indexes of the tables an erasure acts on, last
// table first (children before parents, so foreign keys hold).
func eraseTables(cfg config.Store, opts rights.EraseOptions) []int {
	var out []int
	for i := len(cfg.Tables) - 1; i >= 0; i-- {
		if len(opts.Tables) == 0 || slices.Contains(opts.Tables, cfg.Tables[i].Name) {
			out = append(out, i)
		}
	}
	return out
}

// eraseDefaults fills the options' zero values.
func eraseDefaults(opts rights.EraseOptions) rights.EraseOptions {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.EndedAt.IsZero() {
		opts.EndedAt = opts.Now
	}
	if opts.Location == nil {
		opts.Location = shanghai
	}
	opts.Now, opts.EndedAt = opts.Now.UTC(), opts.EndedAt.UTC()
	return opts
}

var shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}()

// finalAction records, on a dataset report, rows deleted or anonymized.
func finalAction(ds *rights.DatasetReport, t config.Table, n int64) {
	if t.EraseMode() == rights.EraseAnonymize {
		ds.Anonymized += n
	} else {
		ds.Deleted += n
	}
}

// restrictedUntil records, on a dataset report, rows kept restricted under
// the table's retention class; latest is when the latest of their periods
// began.
func restrictedUntil(ds *rights.DatasetReport, t config.Table, latest time.Time, opts rights.EraseOptions) {
	until := rights.RetentionEndMonths(latest, t.RetentionMonths, opts.Location).UTC()
	ds.Retention, ds.RestrictedUntil = t.Retention, &until
}
