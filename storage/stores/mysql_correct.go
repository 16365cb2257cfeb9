package stores

import (
	"context"
	"database/sql"
	"strings"

	"github.com/datarights/datarights/rights"
)

var _ rights.Corrector = (*MySQL)(nil)

// Correct sets the fields named in changes that the store's tables declare
// correctable to their new values, in every row of the subject, in one
// transaction: UPDATE table SET column = ?, ... WHERE the key matches (as
// exact text, see MySQL), one statement per table, tables in configuration
// order. Identifiers are quoted; values are only ever parameters.
//
// The subject is resolved as Export and Delete resolve it. A subject that
// resolves to more than one key (two customers share the email) changes
// nothing and is reported as not resolved: writing one person's new value
// into another's rows is the worst outcome a correction can have.
//
// The rows reported per table are the subject's rows there, locked and
// counted before the update, so a repeated Correct reports what the first
// did: MySQL's own count is of rows whose value changed, which is none the
// second time.
func (m *MySQL) Correct(ctx context.Context, subject rights.Subject, changes map[string]string) (rights.StoreReport, error) {
	plan := correctionPlan(m.cfg, changes)
	var report rights.StoreReport
	err := m.change(ctx, "correct", subject, func(tx *sql.Tx, s *mysqlSession, keys []string) error {
		if len(keys) != 1 {
			return nil
		}
		report.Resolved = true
		for _, tc := range plan {
			op := "correct " + strings.Join(tc.fields(), ", ") + " in " + tc.table.Name
			cond, keyArgs, err := s.match(ctx, tc.table.Name, tc.table.Column, keys)
			if err != nil {
				return m.errorf(op, err)
			}
			var rows int64
			count := "SELECT COUNT(*) FROM (SELECT 1 FROM " + mysqlTable(tc.table.Name) + " WHERE " + cond + " FOR UPDATE) AS subject_rows"
			if err := tx.QueryRowContext(ctx, count, keyArgs...).Scan(&rows); err != nil {
				return m.errorf(op, err)
			}
			sets := make([]string, len(tc.rules))
			args := make([]any, 0, len(tc.rules)+len(keyArgs))
			for i, rule := range tc.rules {
				sets[i] = mysqlIdent(rule.Column) + " = ?"
				args = append(args, changes[rule.Field])
			}
			args = append(args, keyArgs...)
			query := "UPDATE " + mysqlTable(tc.table.Name) + " SET " + strings.Join(sets, ", ") + " WHERE " + cond
			if _, err := tx.ExecContext(ctx, query, args...); err != nil {
				return m.errorf(op, err)
			}
			report.Datasets = append(report.Datasets, rights.DatasetReport{
				Name: tc.table.Name, Category: tc.table.Category, Rows: rows,
			})
			report.AddCorrectedFields(rows, tc.fields()...)
		}
		return nil
	})
	if err != nil {
		return rights.StoreReport{}, err
	}
	return report, nil
}
