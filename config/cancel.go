package config

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/datarights/datarights/rights"
)

// CancelAccount configures account cancellation (注销): how the requester
// must have been verified, and the checks that must pass before an account
// may be cancelled.
type CancelAccount struct {
	// VerificationMethods, when set, are the only ways a cancellation's
	// requester may have been verified (the WeBank policy requires a face
	// check); "email_code" among them lets people cancel through
	// self-service.
	VerificationMethods []string   `yaml:"verification_methods"`
	Prechecks           []Precheck `yaml:"prechecks"`
}

// Precheck is one condition that blocks a cancellation, e.g. an outstanding
// balance or an open loan: a query on a SQL store (blocking when it returns
// true or a number above 0) or a call to a service's signed webhook.
type Precheck struct {
	Name string `yaml:"name"`
	// Products limits the check to these products; empty means all.
	Products []string `yaml:"products"`
	// Store and Query: a SQL query run on the store, in a read-only
	// transaction, with the subject's store key as its only parameter ($1
	// in Postgres, ? in MySQL). It returns one row with one column.
	Store string `yaml:"store"`
	Query string `yaml:"query"`
	// Webhook: a service answering {"allowed": true|false, "reason": "…"}
	// (docs/webhook.md).
	Webhook *WebhookStore `yaml:"webhook"`
	// Reason is told to the requester when the check blocks, in both
	// languages.
	Reason LocalText `yaml:"reason"`
}

// LocalText is a text in both languages the service writes in.
type LocalText struct {
	ZH string `yaml:"zh-CN"`
	EN string `yaml:"en"`
}

// UnmarshalYAML takes a mapping ({zh-CN: …, en: …}) or one string, used
// for both languages (a brand written the same in both).
func (t *LocalText) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		t.ZH, t.EN = n.Value, n.Value
		return nil
	}
	type plain LocalText
	return n.Decode((*plain)(t))
}

// In returns the text in locale, falling back to the other language.
func (t LocalText) In(locale string) string {
	if locale == rights.LocaleEN && t.EN != "" || t.ZH == "" {
		return t.EN
	}
	return t.ZH
}

// RightRules are the rules one right is held to (rights.<type> in the
// file): the verification methods its requester must have been verified
// by, and the pre-checks that must pass before anything is changed. The
// older cancel_account section is rights.cancel_account.
type RightRules struct {
	// VerificationMethods, when set, are the only ways the requester may
	// have been verified; "email_code" among them lets self-service ask.
	VerificationMethods []string   `yaml:"verification_methods"`
	Prechecks           []Precheck `yaml:"prechecks"`
}

// Rules returns the rules of right t (none configured: any verification,
// no pre-checks).
func (c *Config) Rules(t rights.Type) RightRules {
	if t == rights.TypeCancelAccount {
		if r, ok := c.Rights[t]; !ok || len(r.VerificationMethods) == 0 && len(r.Prechecks) == 0 {
			return RightRules(c.CancelAccount)
		}
	}
	return c.Rights[t]
}

// PrechecksFor returns the cancellation pre-checks that apply to product.
func (c *Config) PrechecksFor(product string) []Precheck {
	return c.PrechecksForRight(product, rights.TypeCancelAccount)
}

// PrechecksForRight returns the pre-checks of right t that apply to
// product.
func (c *Config) PrechecksForRight(product string, t rights.Type) []Precheck {
	var out []Precheck
	for _, pc := range c.Rules(t).Prechecks {
		if len(pc.Products) == 0 || slices.Contains(pc.Products, product) {
			out = append(out, pc)
		}
	}
	return out
}

// allPrechecks returns every configured pre-check, of every right.
func (c *Config) allPrechecks() []Precheck {
	out := slices.Clone(c.CancelAccount.Prechecks)
	for _, r := range c.Rights {
		out = append(out, r.Prechecks...)
	}
	return out
}

func (c *Config) checkCancelAccount(p *rights.Problems, products map[string]bool) {
	if r, ok := c.Rights[rights.TypeCancelAccount]; ok && (len(r.VerificationMethods) > 0 || len(r.Prechecks) > 0) &&
		(len(c.CancelAccount.VerificationMethods) > 0 || len(c.CancelAccount.Prechecks) > 0) {
		p.Add("cancel_account", "is also configured under rights.cancel_account: keep one (rights.cancel_account)")
	}
	c.checkRightRules(p, "cancel_account", RightRules(c.CancelAccount), products)
	for _, t := range rights.Types {
		if r, ok := c.Rights[t]; ok {
			c.checkRightRules(p, "rights."+string(t), r, products)
		}
	}
	for t := range c.Rights {
		if !t.Valid() {
			p.Add("rights."+string(t), "unknown right %q; known: %s", t, typeNames())
		}
	}
}

func typeNames() string {
	names := make([]string, len(rights.Types))
	for i, t := range rights.Types {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

func (c *Config) checkRightRules(p *rights.Problems, prefix string, rules RightRules, products map[string]bool) {
	for i, m := range rules.VerificationMethods {
		switch {
		case !identityRE.MatchString(m):
			p.Add(fmt.Sprintf("%s.verification_methods[%d]", prefix, i), "must be a method name like \"face_check\", not %q", m)
		case !slices.Contains(c.Intake.VerificationMethods, m):
			p.Add(fmt.Sprintf("%s.verification_methods[%d]", prefix, i), "%q is not in intake.verification_methods (%s)", m, strings.Join(c.Intake.VerificationMethods, ", "))
		}
	}
	stores := map[string]Store{}
	for _, s := range c.Stores {
		stores[s.Name] = s
	}
	seen := map[string]bool{}
	for i, pc := range rules.Prechecks {
		f := fmt.Sprintf("%s.prechecks[%d]", prefix, i)
		switch {
		case !nameRE.MatchString(pc.Name):
			p.Add(f+".name", "must be a lower-case name like \"open_loans\", not %q", pc.Name)
		case seen[pc.Name]:
			p.Add(f+".name", "%q is declared twice", pc.Name)
		}
		seen[pc.Name] = true
		for j, prod := range pc.Products {
			if !products[prod] {
				p.Add(fmt.Sprintf("%s.products[%d]", f, j), "unknown product %q", prod)
			}
		}
		switch {
		case (pc.Store == "") == (pc.Webhook == nil):
			p.Add(f, "needs either store and query, or webhook")
		case pc.Webhook != nil:
			if pc.Query != "" {
				p.Add(f+".query", "is for a check on a store, not a webhook")
			}
			checkWebhook(p, f+".webhook", pc.Webhook, c.Worker.JobTimeout)
		default:
			s, ok := stores[pc.Store]
			switch {
			case !ok:
				p.Add(f+".store", "unknown store %q", pc.Store)
			case !slices.Contains(sqlKinds, s.Kind):
				p.Add(f+".store", "store %q is a %s store; a query check needs a SQL store (postgres, mysql)", pc.Store, s.Kind)
			default:
				checkPrecheckQuery(p, f+".query", s.Kind, pc.Query)
			}
		}
		if strings.TrimSpace(pc.Reason.ZH) == "" || strings.TrimSpace(pc.Reason.EN) == "" {
			p.Add(f+".reason", "is required in zh-CN and en: what the requester is told when the check blocks")
		}
		if len(pc.Reason.ZH) > 1000 || len(pc.Reason.EN) > 1000 {
			p.Add(f+".reason", "at most 1000 bytes in each language")
		}
	}
}

// checkPrecheckQuery requires a single SELECT with the key as its one
// parameter. The query is the operator's, like the rest of the file; the
// checks catch mistakes, not malice.
func checkPrecheckQuery(p *rights.Problems, f, kind, query string) {
	q := strings.TrimSpace(query)
	param := "$1"
	if kind == "mysql" {
		param = "?"
	}
	switch {
	case q == "":
		p.Add(f, "is required: a SELECT returning one value, true or a count above 0 to block")
	case !utf8.ValidString(q) || !strings.HasPrefix(strings.ToUpper(q), "SELECT"):
		p.Add(f, "must be a SELECT")
	case strings.Contains(strings.TrimSuffix(q, ";"), ";"):
		p.Add(f, "must be one statement")
	case kind == "mysql" && strings.Count(q, "?") != 1:
		p.Add(f, "must use the subject's key exactly once, as ?")
	case kind != "mysql" && (!strings.Contains(q, param) || strings.Contains(q, "$2")):
		p.Add(f, "must use the subject's key as $1, and no other parameter")
	}
}
