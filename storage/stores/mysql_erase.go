package stores

import (
	"context"
	"database/sql"
	"slices"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/rights"
)

var _ rights.Eraser = (*MySQL)(nil)

var mysqlDialect = sqlDialect{
	ident:  mysqlIdent,
	param:  func(int) string { return "?" },
	random: "CONCAT('anon-', UUID())",
}

// Erase erases the subject's rows table by table, each by its mode and
// retention class (see erase.go), in one transaction, last table first. The
// report lists the tables erased in configuration order.
//
// Times are sent to the server in UTC; a retention_from or restrict_column
// of type DATETIME is read and written as UTC (the DSN's loc, UTC by
// default).
func (m *MySQL) Erase(ctx context.Context, subject rights.Subject, opts rights.EraseOptions) (rights.StoreReport, error) {
	opts = eraseDefaults(opts)
	var report rights.StoreReport
	err := m.change(ctx, "erase", subject, func(tx *sql.Tx, s *mysqlSession, keys []string) error {
		if len(keys) == 0 {
			return nil
		}
		order := eraseTables(m.cfg, opts)
		datasets := make([]rights.DatasetReport, len(order))
		for j, i := range order {
			ds, err := m.eraseTable(ctx, tx, s, m.cfg.Tables[i], keys, opts)
			if err != nil {
				return err
			}
			datasets[len(order)-1-j] = ds
		}
		report = rights.StoreReport{Resolved: true, Datasets: datasets}
		return nil
	})
	if err != nil {
		return rights.StoreReport{}, err
	}
	return report, nil
}

func (m *MySQL) eraseTable(ctx context.Context, tx *sql.Tx, s *mysqlSession, t config.Table, keys []string, opts rights.EraseOptions) (rights.DatasetReport, error) {
	ds := rights.DatasetReport{Name: t.Name, Category: t.Category}
	keyCond, keyArgs, err := s.match(ctx, t.Name, t.Column, keys)
	if err != nil {
		return ds, m.errorf("erase from "+t.Name, err)
	}
	if t.Retention == "" && t.EraseMode() != rights.EraseRestrict {
		n, err := m.eraseRows(ctx, tx, t, keyCond, keyArgs)
		finalAction(&ds, t, n)
		ds.Rows = n
		return ds, err
	}
	if t.Retention != "" {
		cutoff := rights.RetentionCutoffMonths(opts.Now, t.RetentionMonths, opts.Location).UTC()
		endedOver := opts.EndedAt.Before(cutoff)
		var n int64
		switch {
		case t.RetentionFrom != "":
			from := mysqlIdent(t.RetentionFrom)
			cond := keyCond + " AND " + from + " < ?"
			if endedOver {
				cond = keyCond + " AND (" + from + " < ? OR " + from + " IS NULL)"
			}
			n, err = m.eraseRows(ctx, tx, t, cond, append(slices.Clone(keyArgs), cutoff))
		case endedOver:
			n, err = m.eraseRows(ctx, tx, t, keyCond, keyArgs)
		}
		if err != nil {
			return ds, err
		}
		finalAction(&ds, t, n)
		ds.Rows = n
	}

	restrict := mysqlIdent(t.RestrictColumn)
	if _, err := tx.ExecContext(ctx, "UPDATE "+mysqlTable(t.Name)+" SET "+restrict+" = COALESCE("+restrict+", ?) WHERE "+keyCond,
		append([]any{opts.Now}, keyArgs...)...); err != nil {
		return ds, m.errorf("restrict "+t.Name, err)
	}
	// MySQL counts the rows an UPDATE changed, not those it matched: count
	// what is left of the subject (all of it restricted now).
	fromCol := "NULL"
	if t.RetentionFrom != "" {
		fromCol = mysqlIdent(t.RetentionFrom)
	}
	var (
		newest sql.NullTime
		open   sql.NullInt64
	)
	err = tx.QueryRowContext(ctx, "SELECT COUNT(*), MAX("+fromCol+"), SUM("+fromCol+" IS NULL) FROM "+mysqlTable(t.Name)+" WHERE "+keyCond,
		keyArgs...).Scan(&ds.Restricted, &newest, &open)
	if err != nil {
		return ds, m.errorf("read the retention of "+t.Name, err)
	}
	ds.Rows += ds.Restricted
	if ds.Restricted == 0 || t.Retention == "" {
		return ds, nil
	}
	latest := opts.EndedAt
	switch {
	case newest.Valid && open.Int64 == 0:
		latest = newest.Time
	case newest.Valid && newest.Time.After(latest):
		latest = newest.Time
	}
	restrictedUntil(&ds, t, latest, opts)
	return ds, nil
}

// eraseRows deletes or anonymizes, by the table's mode, the rows meeting
// cond (the key condition and any more), and returns how many.
func (m *MySQL) eraseRows(ctx context.Context, tx *sql.Tx, t config.Table, cond string, condArgs []any) (int64, error) {
	query, args := "DELETE FROM "+mysqlTable(t.Name)+" WHERE "+cond, condArgs
	if t.EraseMode() == rights.EraseAnonymize {
		set, setArgs := mysqlDialect.anonymizeSet(t, 1)
		query = "UPDATE " + mysqlTable(t.Name) + " SET " + set + " WHERE " + cond
		args = append(setArgs, condArgs...)
	}
	result, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, m.errorf("erase from "+t.Name, err)
	}
	n, err := result.RowsAffected()
	if err != nil {
		return 0, m.errorf("erase from "+t.Name, err)
	}
	return n, nil
}
