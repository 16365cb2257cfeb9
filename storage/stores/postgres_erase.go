package stores

import (
	"context"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/rights"
)

var _ rights.Eraser = (*Postgres)(nil)

var pgDialect = sqlDialect{
	ident:  func(s string) string { return pgx.Identifier{s}.Sanitize() },
	param:  func(n int) string { return "$" + strconv.Itoa(n) },
	random: "'anon-' || gen_random_uuid()::text",
}

// Erase erases the subject's rows table by table, each by its mode and
// retention class (see erase.go), in one transaction, last table first. The
// report lists the tables erased in configuration order.
func (p *Postgres) Erase(ctx context.Context, subject rights.Subject, opts rights.EraseOptions) (rights.StoreReport, error) {
	opts = eraseDefaults(opts)
	var report rights.StoreReport
	err := p.change(ctx, "erase", subject, func(tx pgx.Tx, keys []string) error {
		if len(keys) == 0 {
			return nil
		}
		order := eraseTables(p.cfg, opts)
		datasets := make([]rights.DatasetReport, len(order))
		for j, i := range order {
			ds, err := p.eraseTable(ctx, tx, p.cfg.Tables[i], keys, opts)
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

func (p *Postgres) eraseTable(ctx context.Context, tx pgx.Tx, t config.Table, keys []string, opts rights.EraseOptions) (rights.DatasetReport, error) {
	ds := rights.DatasetReport{Name: t.Name, Category: t.Category}
	if t.Retention == "" && t.EraseMode() != rights.EraseRestrict {
		n, err := p.eraseRows(ctx, tx, t, "", keys)
		finalAction(&ds, t, n)
		ds.Rows = n
		return ds, err
	}
	if t.Retention != "" {
		cutoff := rights.RetentionCutoffMonths(opts.Now, t.RetentionMonths, opts.Location)
		endedOver := opts.EndedAt.Before(cutoff)
		var n int64
		var err error
		switch {
		case t.RetentionFrom != "":
			from := pgx.Identifier{t.RetentionFrom}.Sanitize()
			cond := " AND " + from + " < $2"
			if endedOver {
				cond = " AND (" + from + " < $2 OR " + from + " IS NULL)"
			}
			n, err = p.eraseRows(ctx, tx, t, cond, keys, cutoff)
		case endedOver:
			n, err = p.eraseRows(ctx, tx, t, "", keys)
		}
		if err != nil {
			return ds, err
		}
		finalAction(&ds, t, n)
		ds.Rows = n
	}

	restrict := pgx.Identifier{t.RestrictColumn}.Sanitize()
	tag, err := tx.Exec(ctx, "UPDATE "+tableIdent(t.Name)+" SET "+restrict+" = coalesce("+restrict+", $2)"+
		" WHERE "+keyMatch(t.Column), keys, opts.Now)
	if err != nil {
		return ds, p.errorf("restrict "+t.Name, err)
	}
	ds.Restricted = tag.RowsAffected()
	ds.Rows += ds.Restricted
	if ds.Restricted == 0 || t.Retention == "" {
		return ds, nil
	}
	latest := opts.EndedAt
	if t.RetentionFrom != "" {
		from := pgx.Identifier{t.RetentionFrom}.Sanitize()
		var newest *time.Time
		var open bool
		err := tx.QueryRow(ctx, "SELECT max("+from+")::timestamptz, bool_or("+from+" IS NULL) FROM "+tableIdent(t.Name)+
			" WHERE "+keyMatch(t.Column), keys).Scan(&newest, &open)
		if err != nil {
			return ds, p.errorf("read the retention of "+t.Name, err)
		}
		if !open && newest != nil {
			latest = *newest
		} else if newest != nil && newest.After(latest) {
			latest = *newest
		}
	}
	restrictedUntil(&ds, t, latest, opts)
	return ds, nil
}

// eraseRows deletes or anonymizes, by the table's mode, the subject's rows
// that also meet cond (which may use $2 onwards, given in args after the
// keys), and returns how many.
func (p *Postgres) eraseRows(ctx context.Context, tx pgx.Tx, t config.Table, cond string, args ...any) (int64, error) {
	query := "DELETE FROM " + tableIdent(t.Name) + " WHERE " + keyMatch(t.Column) + cond
	if t.EraseMode() == rights.EraseAnonymize {
		set, setArgs := pgDialect.anonymizeSet(t, len(args)+1)
		query = "UPDATE " + tableIdent(t.Name) + " SET " + set + " WHERE " + keyMatch(t.Column) + cond
		args = append(args, setArgs...)
	}
	tag, err := tx.Exec(ctx, query, args...)
	if err != nil {
		return 0, p.errorf("erase from "+t.Name, err)
	}
	return tag.RowsAffected(), nil
}
