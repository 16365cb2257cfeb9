package config

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/datarights/datarights/rights"
)

// Issue 12: transfers to receiving handlers, and who may ask for whom
// (next of kin, guardians of minors).

// TransferReceiver is a personal-information handler a person may have
// their copy transferred to (PIPL Art. 45; 网络数据安全管理条例 Art. 25):
// configured, with the purpose it receives the data for and its legal
// basis, reached by a signed HTTPS push or through its S3 bucket.
type TransferReceiver struct {
	Name        string `yaml:"name"`
	DisplayName string `yaml:"display_name"`
	// Products limits the receiver to these products; empty means all.
	Products []string `yaml:"products"`
	// Purpose and LegalBasis are what the receiver processes the data for
	// and on which basis; both are recorded with every transfer and told
	// to the requester.
	Purpose    LocalText `yaml:"purpose"`
	LegalBasis LocalText `yaml:"legal_basis"`
	// Webhook receives the archive as a signed POST (docs/webhook.md). Its
	// url must be https, except on a loopback address (a local sidecar).
	Webhook *WebhookStore `yaml:"webhook"`
	// CAFile, optional, is a PEM file of the certificate authorities the
	// webhook's TLS certificate is checked against instead of the system's
	// (a receiver with a private CA).
	CAFile string `yaml:"ca_file"`
	// S3 is the receiver's bucket the archive is put in.
	S3 *S3Exports `yaml:"s3"`
}

// Label is the receiver's name for people.
func (r TransferReceiver) Label() string {
	if r.DisplayName != "" {
		return r.DisplayName
	}
	return r.Name
}

// Channel says how the receiver is reached: "webhook" or "s3".
func (r TransferReceiver) Channel() string {
	if r.S3 != nil {
		return "s3"
	}
	return "webhook"
}

// ReceiversFor returns the transfer receivers of product.
func (c *Config) ReceiversFor(product string) []TransferReceiver {
	var out []TransferReceiver
	for _, r := range c.TransferReceivers {
		if len(r.Products) == 0 || slices.Contains(r.Products, product) {
			out = append(out, r)
		}
	}
	return out
}

// Receiver returns the transfer receiver named name.
func (c *Config) Receiver(name string) (TransferReceiver, bool) {
	for _, r := range c.TransferReceivers {
		if r.Name == name {
			return r, true
		}
	}
	return TransferReceiver{}, false
}

// Minors configures age awareness: where a subject's age comes from, the
// bands it is told in, and each product's rules.
type Minors struct {
	// AgeLookup finds the subject's age: a query on a SQL store with the
	// subject's key as $1 (? in MySQL) returning the age in years or the
	// date of birth.
	AgeLookup *AgeLookup `yaml:"age_lookup"`
	// Bands are the ages that bound the bands, e.g. [14, 16, 18]: the bands
	// are then under_14, under_16, under_18 and adult (default [14, 16, 18]).
	Bands []int `yaml:"bands"`
	// Rules are per-product age rules.
	Rules []AgeRule `yaml:"rules"`
	// GuardianRights are the rights a guardian may exercise for a minor
	// (default access, copy, correct, delete, withdraw_consent).
	GuardianRights []rights.Type `yaml:"guardian_rights"`
}

// AgeLookup is a query on a SQL store returning the subject's age.
type AgeLookup struct {
	Store string `yaml:"store"`
	Query string `yaml:"query"`
}

// AgeRule is one product's rule for minors.
type AgeRule struct {
	Product string `yaml:"product"`
	// GuardianBelow: a request about someone younger must be made by their
	// guardian (WeChat §7: under 14 needs a guardian).
	GuardianBelow int `yaml:"guardian_below"`
	// NotServedBelow: the product does not serve people younger; their own
	// requests are refused, a guardian's go ahead (WeBank §9: under 16).
	NotServedBelow int `yaml:"not_served_below"`
}

// AgeRule returns the product's rule, if any.
func (c *Config) AgeRule(product string) (AgeRule, bool) {
	for _, r := range c.Minors.Rules {
		if r.Product == product {
			return r, true
		}
	}
	return AgeRule{}, false
}

// AgeBand names the band of age: "under_<n>" for the lowest bound above
// it, else "adult".
func (m Minors) AgeBand(age int) string {
	for _, b := range m.Bands {
		if age < b {
			return fmt.Sprintf("under_%d", b)
		}
	}
	return "adult"
}

// NextOfKin configures requests by next of kin for a deceased person.
type NextOfKin struct {
	// Arrangement checks whether the deceased arranged otherwise (WeBank
	// §7(七)): a query or webhook like a cancellation pre-check; when it
	// blocks, the request is refused with its reason.
	Arrangement *Precheck `yaml:"arrangement"`
}

// loopbackHost reports whether host is a loopback name or address.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c *Config) defaultNewTypes() {
	if len(c.Minors.Bands) == 0 {
		c.Minors.Bands = []int{14, 16, 18}
	}
	if len(c.Minors.GuardianRights) == 0 {
		c.Minors.GuardianRights = []rights.Type{rights.TypeAccess, rights.TypeCopy, rights.TypeCorrect,
			rights.TypeDelete, rights.TypeWithdrawConsent}
	}
	for i := range c.TransferReceivers {
		if s := c.TransferReceivers[i].S3; s != nil && s.SSE == "" {
			s.SSE = "AES256"
		}
	}
	if a := c.NextOfKin.Arrangement; a != nil && a.Name == "" {
		a.Name = "deceased_arrangement"
	}
}

func (c *Config) newTypesEnv(getenv func(string) string) {
	for _, r := range c.TransferReceivers {
		if w := r.Webhook; w != nil && w.SecretEnv != "" {
			w.Secret = getenv(w.SecretEnv)
		}
		if s := r.S3; s != nil {
			if s.AccessKeyEnv != "" {
				s.AccessKey = getenv(s.AccessKeyEnv)
			}
			if s.SecretKeyEnv != "" {
				s.SecretKey = getenv(s.SecretKeyEnv)
			}
		}
	}
	if a := c.NextOfKin.Arrangement; a != nil && a.Webhook != nil {
		a.Webhook.readSecrets(getenv)
	}
}

func (c *Config) checkNewTypes(p *rights.Problems, products map[string]bool) {
	stores := map[string]Store{}
	for _, s := range c.Stores {
		stores[s.Name] = s
	}
	seen := map[string]bool{}
	for i, r := range c.TransferReceivers {
		f := fmt.Sprintf("transfer_receivers[%d]", i)
		switch {
		case !identityRE.MatchString(r.Name):
			p.Add(f+".name", "must be a lower-case name like \"partner_bank\", not %q", r.Name)
		case seen[r.Name]:
			p.Add(f+".name", "%q is declared twice", r.Name)
		}
		seen[r.Name] = true
		for j, prod := range r.Products {
			if !products[prod] {
				p.Add(fmt.Sprintf("%s.products[%d]", f, j), "unknown product %q", prod)
			}
		}
		for field, text := range map[string]LocalText{"purpose": r.Purpose, "legal_basis": r.LegalBasis} {
			if strings.TrimSpace(text.ZH) == "" || strings.TrimSpace(text.EN) == "" {
				p.Add(f+"."+field, "is required in zh-CN and en: a transfer goes only to a handler with a stated purpose and legal basis (网络数据安全管理条例 Art. 25)")
			}
		}
		switch {
		case (r.Webhook == nil) == (r.S3 == nil):
			p.Add(f, "needs either webhook (a signed HTTPS push) or s3 (the receiver's bucket)")
		case r.Webhook != nil:
			checkWebhook(p, f+".webhook", r.Webhook, c.Worker.JobTimeout)
			if u, err := url.Parse(r.Webhook.URL); err == nil && u.Scheme == "http" && !loopbackHost(u.Hostname()) {
				p.Add(f+".webhook.url", "must be https: personal data is pushed to it (http only to a loopback address)")
			}
			if r.CAFile != "" {
				if pem, err := os.ReadFile(r.CAFile); err != nil {
					p.Add(f+".ca_file", "cannot be read: %v", err)
				} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
					p.Add(f+".ca_file", "holds no PEM certificate")
				}
			}
		default:
			s := r.S3
			if s.Bucket == "" {
				p.Add(f+".s3.bucket", "is required")
			}
			if s.Endpoint != "" {
				if u, err := url.Parse(s.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
					p.Add(f+".s3.endpoint", "must be an http(s) URL")
				}
			}
			if (s.AccessKeyEnv == "") != (s.SecretKeyEnv == "") {
				p.Add(f+".s3", "access_key_env and secret_key_env go together")
			} else if s.AccessKeyEnv != "" && (s.AccessKey == "" || s.SecretKey == "") {
				p.Add(f+".s3", "environment variables %s and %s must be set", s.AccessKeyEnv, s.SecretKeyEnv)
			}
			if !slices.Contains([]string{"AES256", "aws:kms", "none"}, s.SSE) {
				p.Add(f+".s3.sse", "must be AES256, aws:kms or none, not %q", s.SSE)
			}
		}
	}

	m := c.Minors
	if !sort.IntsAreSorted(m.Bands) || slices.ContainsFunc(m.Bands, func(b int) bool { return b < 1 || b > 30 }) {
		p.Add("minors.bands", "must be ages between 1 and 30, in increasing order")
	}
	if l := m.AgeLookup; l != nil {
		s, ok := stores[l.Store]
		switch {
		case !ok:
			p.Add("minors.age_lookup.store", "unknown store %q", l.Store)
		case !slices.Contains(sqlKinds, s.Kind):
			p.Add("minors.age_lookup.store", "store %q is a %s store; the age lookup needs a SQL store (postgres, mysql)", l.Store, s.Kind)
		default:
			checkPrecheckQuery(p, "minors.age_lookup.query", s.Kind, l.Query)
		}
	}
	ruled := map[string]bool{}
	for i, r := range m.Rules {
		f := fmt.Sprintf("minors.rules[%d]", i)
		switch {
		case !products[r.Product]:
			p.Add(f+".product", "unknown product %q", r.Product)
		case ruled[r.Product]:
			p.Add(f+".product", "%q has a rule already", r.Product)
		}
		ruled[r.Product] = true
		if r.GuardianBelow == 0 && r.NotServedBelow == 0 {
			p.Add(f, "needs guardian_below or not_served_below")
		}
		for field, age := range map[string]int{"guardian_below": r.GuardianBelow, "not_served_below": r.NotServedBelow} {
			if age != 0 && !slices.Contains(m.Bands, age) {
				p.Add(f+"."+field, "%d is not one of minors.bands (%v): the rule must fall on a band's edge", age, m.Bands)
			}
		}
		if m.AgeLookup == nil {
			p.Add(f, "needs minors.age_lookup: where the subject's age comes from")
		}
	}
	for i, t := range m.GuardianRights {
		if !t.Valid() {
			p.Add(fmt.Sprintf("minors.guardian_rights[%d]", i), "unknown right %q", t)
		}
	}

	if a := c.NextOfKin.Arrangement; a != nil {
		f := "next_of_kin.arrangement"
		switch {
		case (a.Store == "") == (a.Webhook == nil):
			p.Add(f, "needs either store and query, or webhook")
		case a.Webhook != nil:
			checkWebhook(p, f+".webhook", a.Webhook, c.Worker.JobTimeout)
		default:
			s, ok := stores[a.Store]
			switch {
			case !ok:
				p.Add(f+".store", "unknown store %q", a.Store)
			case !slices.Contains(sqlKinds, s.Kind):
				p.Add(f+".store", "store %q is a %s store; a query needs a SQL store (postgres, mysql)", a.Store, s.Kind)
			default:
				checkPrecheckQuery(p, f+".query", s.Kind, a.Query)
			}
		}
		if strings.TrimSpace(a.Reason.ZH) == "" || strings.TrimSpace(a.Reason.EN) == "" {
			p.Add(f+".reason", "is required in zh-CN and en: what the next of kin are told when the deceased arranged otherwise")
		}
	}
}
