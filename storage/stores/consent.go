package stores

import (
	"context"
	"database/sql"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/rights"
)

// Withdrawals of consent (rights.ConsentWithdrawer). A SQL store flips the
// subject's rows of its consent table (consent:) for the purposes to not
// granted and erases, by each table's mode and retention, the tables kept
// for those purposes alone (tables[].purposes); a Redis store deletes the
// keys kept for them (keys[].purposes); a webhook store is called with
// action withdraw_consent; a manual store asks staff.

var (
	_ rights.ConsentWithdrawer = (*Postgres)(nil)
	_ rights.ConsentWithdrawer = (*MySQL)(nil)
	_ rights.ConsentWithdrawer = (*Redis)(nil)
	_ rights.ConsentWithdrawer = (*Webhook)(nil)
	_ rights.ConsentWithdrawer = (*Manual)(nil)
)

// purposeTables returns the indexes of the tables kept for one of purposes
// alone, last table first, as an erasure goes.
func purposeTables(cfg config.Store, purposes []string) []int {
	var out []int
	for i := len(cfg.Tables) - 1; i >= 0; i-- {
		if slices.ContainsFunc(cfg.Tables[i].Purposes, func(p string) bool { return slices.Contains(purposes, p) }) {
			out = append(out, i)
		}
	}
	return out
}

// consentDataset names the consent table's dataset in a report.
func consentDataset(c *config.ConsentTable) rights.DatasetReport {
	return rights.DatasetReport{Name: c.Table, Category: "consents"}
}

// WithdrawConsent flips the subject's consents to purposes and erases the
// tables kept for them, in one transaction.
func (p *Postgres) WithdrawConsent(ctx context.Context, subject rights.Subject, purposes []string, opts rights.EraseOptions) (rights.StoreReport, error) {
	opts = eraseDefaults(opts)
	var report rights.StoreReport
	err := p.change(ctx, "withdraw consent", subject, func(tx pgx.Tx, keys []string) error {
		if len(keys) == 0 {
			return nil
		}
		report = rights.StoreReport{Resolved: true}
		if c := p.cfg.Consent; c != nil {
			granted := pgx.Identifier{c.GrantedColumn}.Sanitize()
			set := granted + " = false"
			args := []any{keys, purposes}
			if c.UpdatedColumn != "" {
				set += ", " + pgx.Identifier{c.UpdatedColumn}.Sanitize() + " = $3"
				args = append(args, opts.Now)
			}
			// Rows already withdrawn are counted too: the count is of the
			// subject's consents to the purposes, now all withdrawn, so a
			// repeated withdrawal reports what the first did.
			tag, err := tx.Exec(ctx, "UPDATE "+tableIdent(c.Table)+" SET "+set+
				" WHERE "+keyMatch(c.Column)+" AND "+pgx.Identifier{c.PurposeColumn}.Sanitize()+"::text = ANY($2::text[])", args...)
			if err != nil {
				return p.errorf("withdraw consent in "+c.Table, err)
			}
			ds := consentDataset(c)
			ds.Rows = tag.RowsAffected()
			report.Datasets = append(report.Datasets, ds)
		}
		for _, i := range purposeTables(p.cfg, purposes) {
			ds, err := p.eraseTable(ctx, tx, p.cfg.Tables[i], keys, opts)
			if err != nil {
				return err
			}
			report.Datasets = append(report.Datasets, ds)
		}
		return nil
	})
	if err != nil {
		return rights.StoreReport{}, err
	}
	return report, nil
}

// WithdrawConsent flips the subject's consents to purposes and erases the
// tables kept for them, in one transaction.
func (m *MySQL) WithdrawConsent(ctx context.Context, subject rights.Subject, purposes []string, opts rights.EraseOptions) (rights.StoreReport, error) {
	opts = eraseDefaults(opts)
	var report rights.StoreReport
	err := m.change(ctx, "withdrawal", subject, func(tx *sql.Tx, s *mysqlSession, keys []string) error {
		if len(keys) == 0 {
			return nil
		}
		report.Resolved = true
		if c := m.cfg.Consent; c != nil {
			ds, err := m.withdrawConsentRows(ctx, tx, s, c, keys, purposes, opts)
			if err != nil {
				return err
			}
			report.Datasets = append(report.Datasets, ds)
		}
		for _, i := range purposeTables(m.cfg, purposes) {
			ds, err := m.eraseTable(ctx, tx, s, m.cfg.Tables[i], keys, opts)
			if err != nil {
				return err
			}
			report.Datasets = append(report.Datasets, ds)
		}
		return nil
	})
	if err != nil {
		return rights.StoreReport{}, err
	}
	return report, nil
}

// withdrawConsentRows sets the subject's consents to purposes to not
// granted in the consent table.
func (m *MySQL) withdrawConsentRows(ctx context.Context, tx *sql.Tx, s *mysqlSession, c *config.ConsentTable, keys, purposes []string, opts rights.EraseOptions) (rights.DatasetReport, error) {
	ds := consentDataset(c)
	keyCond, keyArgs, err := s.match(ctx, c.Table, c.Column, keys)
	if err != nil {
		return ds, m.errorf("withdraw consent in "+c.Table, err)
	}
	cond := keyCond + " AND CAST(" + mysqlIdent(c.PurposeColumn) + " AS BINARY) IN (" + mysqlParams(len(purposes)) + ")"
	args := slices.Clone(keyArgs)
	for _, purpose := range purposes {
		args = append(args, purpose)
	}
	// MySQL counts changed rows: count the subject's consents to the
	// purposes first, so a repeated withdrawal reports the same.
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+mysqlTable(c.Table)+" WHERE "+cond, args...).Scan(&ds.Rows); err != nil {
		return ds, m.errorf("withdraw consent in "+c.Table, err)
	}
	set, setArgs := mysqlIdent(c.GrantedColumn)+" = FALSE", []any{}
	if c.UpdatedColumn != "" {
		set += ", " + mysqlIdent(c.UpdatedColumn) + " = ?"
		setArgs = append(setArgs, opts.Now)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE "+mysqlTable(c.Table)+" SET "+set+" WHERE "+cond, append(setArgs, args...)...); err != nil {
		return ds, m.errorf("withdraw consent in "+c.Table, err)
	}
	return ds, nil
}

// WithdrawConsent deletes the subject's keys of the patterns kept for one
// of purposes, and reports those patterns.
func (r *Redis) WithdrawConsent(ctx context.Context, subject rights.Subject, purposes []string, _ rights.EraseOptions) (rights.StoreReport, error) {
	return r.unlink(ctx, subject, func(p redisPattern) bool {
		return slices.ContainsFunc(p.Purposes, func(name string) bool { return slices.Contains(purposes, name) })
	})
}

// WithdrawConsent tells the service, with action withdraw_consent and the
// purposes, to stop processing the subject's data for them.
func (w *Webhook) WithdrawConsent(ctx context.Context, subject rights.Subject, purposes []string, _ rights.EraseOptions) (rights.StoreReport, error) {
	return w.call(ctx, rights.ActionWithdrawConsent, subject, nil, purposes)
}

// WithdrawConsent asks staff to act on the withdrawal.
func (m *Manual) WithdrawConsent(context.Context, rights.Subject, []string, rights.EraseOptions) (rights.StoreReport, error) {
	return rights.StoreReport{}, &rights.AwaitingConfirmation{Instructions: m.instructions}
}
