// Package stores holds the connectors that act on people's data in the data
// stores named in the configuration, one file per kind of store.
//
// Connectors report errors with store, table and column names only: no
// identity value and no row value ever appears in an error they return.
package stores

import (
	"context"
	"sort"
	"sync"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/rights"
)

// Opener opens a connector for one configured store of its kind.
type Opener func(ctx context.Context, cfg config.Store) (rights.Connector, error)

var (
	openersMu sync.RWMutex
	openers   = map[string]Opener{}
)

// register makes a kind of store available; each connector file registers
// itself in init, so adding a kind touches no shared code.
func register(kind string, open Opener) {
	openersMu.Lock()
	defer openersMu.Unlock()
	openers[kind] = open
}

// Kinds lists the kinds of store this build can open.
func Kinds() []string {
	openersMu.RLock()
	defer openersMu.RUnlock()
	out := make([]string, 0, len(openers))
	for k := range openers {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func init() {
	register("postgres", func(ctx context.Context, cfg config.Store) (rights.Connector, error) {
		pg, err := NewPostgres(ctx, cfg)
		if err != nil {
			return nil, err // not pg: a nil *Postgres in an interface is not nil
		}
		return pg, nil
	})
}

// Open returns the connector for the configured store. The configuration
// must already be validated (config.Parse does that).
func Open(ctx context.Context, cfg config.Store) (rights.Connector, error) {
	openersMu.RLock()
	open, ok := openers[cfg.Kind]
	openersMu.RUnlock()
	if !ok {
		return nil, rights.Errorf(rights.ENotImplemented, "store %s: kind %q is not supported", cfg.Name, cfg.Kind)
	}
	return open(ctx, cfg)
}
