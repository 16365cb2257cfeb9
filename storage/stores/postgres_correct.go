package stores

import (
	"context"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/rights"
)

var _ rights.Corrector = (*Postgres)(nil)

// tableCorrection is the part of a correction one table takes: the fields
// of the request it declares correctable, in declaration order.
type tableCorrection struct {
	table config.Table
	rules []config.FieldRule
}

// fields returns the names of the fields corrected in the table.
func (tc tableCorrection) fields() []string {
	names := make([]string, len(tc.rules))
	for i, rule := range tc.rules {
		names[i] = rule.Field
	}
	return names
}

// correctionPlan returns, in table order, the tables of cfg that declare at
// least one field named in changes. Fields no table declares are ignored:
// another store holds them.
func correctionPlan(cfg config.Store, changes map[string]string) []tableCorrection {
	var plan []tableCorrection
	for _, table := range cfg.Tables {
		tc := tableCorrection{table: table}
		for _, rule := range table.Correctable {
			if _, ok := changes[rule.Field]; ok {
				tc.rules = append(tc.rules, rule)
			}
		}
		if len(tc.rules) > 0 {
			plan = append(plan, tc)
		}
	}
	return plan
}

// Correct sets the fields named in changes that the store's tables declare
// correctable to their new values, in every row of the subject, in one
// transaction: UPDATE table SET column = $n, ... WHERE the key matches, one
// statement per table, tables in configuration order. Identifiers are
// quoted; values are only ever parameters, sent as text, so the server
// converts them to the column's type (a date column takes "2024-05-01").
//
// The subject is resolved as Export and Delete resolve it. A subject that
// resolves to more than one key changes nothing and is reported as not
// resolved: writing one person's new value into another's rows is the worst
// outcome a correction can have. The report lists each table corrected, with
// the rows updated; Fields names the fields set in some row.
func (p *Postgres) Correct(ctx context.Context, subject rights.Subject, changes map[string]string) (rights.StoreReport, error) {
	plan := correctionPlan(p.cfg, changes)
	var report rights.StoreReport
	err := p.change(ctx, "correct", subject, func(tx pgx.Tx, keys []string) error {
		if len(keys) != 1 {
			return nil
		}
		report = rights.StoreReport{Resolved: true}
		for _, tc := range plan {
			args := []any{keys}
			sets := make([]string, len(tc.rules))
			for i, rule := range tc.rules {
				args = append(args, changes[rule.Field])
				sets[i] = pgx.Identifier{rule.Column}.Sanitize() + " = $" + strconv.Itoa(len(args))
			}
			query := "UPDATE " + tableIdent(tc.table.Name) + " SET " + strings.Join(sets, ", ") +
				" WHERE " + keyMatch(tc.table.Column)
			tag, err := tx.Exec(ctx, query, args...)
			if err != nil {
				return p.errorf("correct "+strings.Join(tc.fields(), ", ")+" in "+tc.table.Name, err)
			}
			report.Datasets = append(report.Datasets, rights.DatasetReport{
				Name: tc.table.Name, Category: tc.table.Category, Rows: tag.RowsAffected(),
			})
			report.AddCorrectedFields(tag.RowsAffected(), tc.fields()...)
		}
		return nil
	})
	if err != nil {
		return rights.StoreReport{}, err
	}
	return report, nil
}
