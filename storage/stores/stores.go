// Package stores holds the connectors that act on people's data in the data
// stores named in the configuration, one file per kind of store.
//
// Connectors report errors with store, table and column names only: no
// identity value and no row value ever appears in an error they return.
package stores

import (
	"context"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/rights"
)

// Open returns the connector for the configured store. The configuration
// must already be validated (config.Parse does that).
func Open(ctx context.Context, cfg config.Store) (rights.Connector, error) {
	switch cfg.Kind {
	case "postgres":
		pg, err := NewPostgres(ctx, cfg)
		if err != nil {
			return nil, err // not pg: a nil *Postgres in an interface is not nil
		}
		return pg, nil
	}
	return nil, rights.Errorf(rights.ENotImplemented, "store %s: kind %q is not supported", cfg.Name, cfg.Kind)
}
