package jobs

import (
	"context"
	"fmt"
	"sort"

	"github.com/datarights/datarights/rights"
)

type resolution struct {
	found     map[string]string // identity type → value found
	ambiguous []string          // identity types that mapped to several values
}

// resolveIdentities finds, through the stores' lookups, the keys of stores
// the subject was not named by (e.g. the user_id behind an email, for a
// Redis store keyed by user_id). A lookup that finds several keys, or stores
// that disagree, resolve nothing for that identity: acting on a guess could
// touch another person's data. Such identities are reported, and the stores
// keyed by them report the subject as not found.
func (p *Pipeline) resolveIdentities(ctx context.Context, r *rights.Request) (resolution, error) {
	res := resolution{found: map[string]string{}}
	candidates := map[string]map[string]bool{}
	for _, s := range p.settings.StoresFor(r.Product) {
		if r.Subject.Identities[s.Key] != "" {
			continue
		}
		conn, err := p.connector(ctx, s.Name)
		if err != nil {
			return res, err
		}
		// A prober lists every key the identities lead to, so that an
		// email or phone shared by two customers of one store shows as
		// ambiguous rather than as nobody.
		var (
			identity string
			keys     []string
		)
		if prober, ok := conn.(rights.KeyProber); ok {
			identity, keys, err = prober.ProbeKeys(ctx, rights.Subject{Identities: r.Subject.Identities})
		} else if resolver, ok := conn.(rights.KeyResolver); ok {
			identity, keys, err = resolver.ResolveKeys(ctx, rights.Subject{Identities: r.Subject.Identities})
		} else {
			continue
		}
		if err != nil {
			return res, fmt.Errorf("resolve identities in %s: %w", s.Name, err)
		}
		if candidates[identity] == nil {
			candidates[identity] = map[string]bool{}
		}
		for _, k := range keys {
			candidates[identity][k] = true
		}
	}
	for identity, values := range candidates {
		switch len(values) {
		case 0:
		case 1:
			for v := range values {
				res.found[identity] = v
			}
		default:
			res.ambiguous = append(res.ambiguous, identity)
		}
	}
	sort.Strings(res.ambiguous)
	return res, nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
