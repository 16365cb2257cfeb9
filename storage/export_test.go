package storage

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// MigrateOwnUpTo applies the service's migrations up to version (River's
// are not needed by them), as an older binary would have left the database.
func (db *DB) MigrateOwnUpTo(ctx context.Context, version int) error {
	own, err := ownMigrations()
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TABLE datarights_migrations (
			version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		for _, m := range own {
			if m.version > version {
				break
			}
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "INSERT INTO datarights_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
				return err
			}
		}
		return nil
	})
}
