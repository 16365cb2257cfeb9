package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/datarights/datarights/rights"
)

// Consent configures the purposes people consent to, the consent ledger and
// where a withdrawal goes.
type Consent struct {
	// Identity is the identity type the ledger records consents under;
	// default user_id.
	Identity string    `yaml:"identity"`
	Purposes []Purpose `yaml:"purposes"`
}

// Purpose is one purpose of processing a person may consent to, e.g.
// personalised advertising.
type Purpose struct {
	Name  string    `yaml:"name"`
	Label LocalText `yaml:"label"`
	// Products limits the purpose to these products; empty means all.
	Products []string `yaml:"products"`
	// Stores are where a withdrawal goes: each flips its consent record,
	// erases what it keeps only for the purpose, or (a webhook or manual
	// store) is told to stop.
	Stores []string `yaml:"stores"`
	// ImpliesAll makes the purpose the whole policy (WeBank §7(四): 撤回同意
	// 本政策): withdrawing it withdraws every purpose of the product.
	ImpliesAll bool `yaml:"implies_all"`
}

// ConsentTable is a SQL store's record of consents: one row per subject and
// purpose, with a granted flag.
type ConsentTable struct {
	Table         string `yaml:"table"`
	Column        string `yaml:"column"` // the key column
	PurposeColumn string `yaml:"purpose_column"`
	GrantedColumn string `yaml:"granted_column"`
	// UpdatedColumn, if set, is stamped with the withdrawal's time.
	UpdatedColumn string `yaml:"updated_column"`
}

// DefaultConsentIdentity is the identity the ledger uses by default.
const DefaultConsentIdentity = "user_id"

// PurposesFor returns the purposes people of product may consent to.
func (c *Config) PurposesFor(product string) []Purpose {
	var out []Purpose
	for _, p := range c.Consent.Purposes {
		if len(p.Products) == 0 || slices.Contains(p.Products, product) {
			out = append(out, p)
		}
	}
	return out
}

// Purpose returns the purpose named name.
func (c *Config) Purpose(name string) (Purpose, bool) {
	for _, p := range c.Consent.Purposes {
		if p.Name == name {
			return p, true
		}
	}
	return Purpose{}, false
}

// WithdrawalStores returns the stores of product a withdrawal of purposes
// goes to, in configuration order.
func (c *Config) WithdrawalStores(product string, purposes []string) []Store {
	want := map[string]bool{}
	for _, name := range purposes {
		if p, ok := c.Purpose(name); ok {
			for _, s := range p.Stores {
				want[s] = true
			}
		}
	}
	var out []Store
	for _, s := range c.StoresFor(product) {
		if want[s.Name] {
			out = append(out, s)
		}
	}
	return out
}

// HoldsFor reports whether the store has something a withdrawal of purpose
// acts on.
func (s Store) HoldsFor(purpose string) bool {
	switch s.Kind {
	case "webhook", "manual":
		return true
	case "redis":
		for _, k := range s.Keys {
			if slices.Contains(k.Purposes, purpose) {
				return true
			}
		}
	}
	if s.Consent != nil {
		return true
	}
	for _, t := range s.Tables {
		if slices.Contains(t.Purposes, purpose) {
			return true
		}
	}
	return false
}

func (c *Config) checkConsent(p *rights.Problems, products map[string]bool) {
	if !identityRE.MatchString(c.Consent.Identity) {
		p.Add("consent.identity", "must be an identity type like \"user_id\", not %q", c.Consent.Identity)
	} else if len(c.Consent.Purposes) > 0 && !c.IdentityTypes()[c.Consent.Identity] {
		p.Add("consent.identity", "no store is keyed by or looks up %q", c.Consent.Identity)
	}
	stores := map[string]Store{}
	for _, s := range c.Stores {
		stores[s.Name] = s
	}
	seen := map[string]bool{}
	for i, pur := range c.Consent.Purposes {
		f := fmt.Sprintf("consent.purposes[%d]", i)
		switch {
		case !identityRE.MatchString(pur.Name):
			p.Add(f+".name", "must be a lower-case name like \"personalised_ads\", not %q", pur.Name)
		case seen[pur.Name]:
			p.Add(f+".name", "%q is declared twice", pur.Name)
		}
		seen[pur.Name] = true
		if strings.TrimSpace(pur.Label.ZH) == "" || strings.TrimSpace(pur.Label.EN) == "" {
			p.Add(f+".label", "is required in zh-CN and en: how the purpose is named to people")
		}
		for j, prod := range pur.Products {
			if !products[prod] {
				p.Add(fmt.Sprintf("%s.products[%d]", f, j), "unknown product %q", prod)
			}
		}
		for j, name := range pur.Stores {
			sf := fmt.Sprintf("%s.stores[%d]", f, j)
			s, ok := stores[name]
			switch {
			case !ok:
				p.Add(sf, "unknown store %q", name)
			case s.Kind == "s3":
				p.Add(sf, "store %q is an s3 store, which a withdrawal cannot act on", name)
			case !s.HoldsFor(pur.Name):
				p.Add(sf, "store %q has no consent table and nothing kept for %q (tables[].purposes, keys[].purposes)", name, pur.Name)
			}
		}
	}
	for i, s := range c.Stores {
		f := fmt.Sprintf("stores[%d]", i)
		for j, t := range s.Tables {
			c.checkPurposeNames(p, fmt.Sprintf("%s.tables[%d].purposes", f, j), t.Purposes)
		}
		for j, k := range s.Keys {
			c.checkPurposeNames(p, fmt.Sprintf("%s.keys[%d].purposes", f, j), k.Purposes)
		}
		if s.Consent == nil {
			continue
		}
		if !slices.Contains(sqlKinds, s.Kind) {
			p.Add(f+".consent", "is for SQL stores (postgres, mysql), not %s", s.Kind)
			continue
		}
		checkTable(p, f+".consent.table", s.Consent.Table)
		checkColumn(p, f+".consent.column", s.Consent.Column)
		checkColumn(p, f+".consent.purpose_column", s.Consent.PurposeColumn)
		checkColumn(p, f+".consent.granted_column", s.Consent.GrantedColumn)
		if s.Consent.UpdatedColumn != "" {
			checkColumn(p, f+".consent.updated_column", s.Consent.UpdatedColumn)
		}
	}
}

func (c *Config) checkPurposeNames(p *rights.Problems, f string, names []string) {
	for k, name := range names {
		if _, ok := c.Purpose(name); !ok {
			p.Add(fmt.Sprintf("%s[%d]", f, k), "unknown purpose %q: declare it under consent.purposes", name)
		}
	}
}
