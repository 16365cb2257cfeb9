package config

import (
	"fmt"
	"net/mail"
	"slices"
	"strings"

	"github.com/datarights/datarights/rights"
)

// Recipient is a third party the company shares personal data with (a
// credit bureau, a payment processor, an insurer). When a request erases a
// person's data, each recipient the person's product shares with is told to
// erase its copy too, by email or through a signed webhook, and its
// acknowledgement is tracked (WeBank policy §7(二): 通知从我们获得您个人信息的
// 第三方删除).
type Recipient struct {
	Name string `yaml:"name"`
	// DisplayName is how the requester is told who was notified.
	DisplayName string `yaml:"display_name"`
	// Products limits the recipient to these products; empty means all.
	Products []string `yaml:"products"`
	// Rights are the rights whose completion notifies the recipient;
	// default delete and cancel_account (unless stop_sharing is set).
	Rights []rights.Type `yaml:"rights"`
	// Email is where the notice goes; it carries a link to acknowledge.
	Email string `yaml:"email"`
	// Webhook is a service answering the notice contract
	// (docs/webhook.md): 200 {"acknowledged": true} at once, or 202 and a
	// signed acknowledgement later.
	Webhook *WebhookStore `yaml:"webhook"`
	// When limits the notices to people whose data the recipient received
	// (a credit bureau gets only borrowers'): nil tells it of everyone
	// found.
	When *RecipientCondition `yaml:"when"`
	// StopSharing are rights whose completion tells the recipient to stop
	// processing the person's data (and that nothing more will be
	// shared), rather than to erase or correct it; e.g. withdraw_consent
	// for a third party a login shared data with (WeChat §4.3).
	StopSharing []rights.Type `yaml:"stop_sharing"`
	// Purposes limit the notices of a withdraw_consent request to
	// withdrawals of one of these purposes; empty means any.
	Purposes []string `yaml:"purposes"`
}

// RecipientCondition decides whether a recipient received this person's
// data: a query on a SQL store (true or a count above 0; the subject's key
// as $1, ? in MySQL), run before anything is changed, or the presence of
// rows of a dataset ("store.table") in the request's store reports.
type RecipientCondition struct {
	Store   string `yaml:"store"`
	Query   string `yaml:"query"`
	Dataset string `yaml:"dataset"`
}

// StopsSharing reports whether a request of right t tells the recipient
// to stop processing rather than to erase or correct.
func (r Recipient) StopsSharing(t rights.Type) bool { return slices.Contains(r.StopSharing, t) }

// Concerns reports whether a withdrawal of purposes concerns the
// recipient (always, when it lists no purposes).
func (r Recipient) Concerns(purposes []string) bool {
	if len(r.Purposes) == 0 {
		return true
	}
	for _, p := range purposes {
		if slices.Contains(r.Purposes, p) {
			return true
		}
	}
	return false
}

// RecipientsFor returns the recipients notified when a request of right t
// for product completes.
func (c *Config) RecipientsFor(product string, t rights.Type) []Recipient {
	var out []Recipient
	for _, r := range c.Recipients {
		if (len(r.Products) == 0 || slices.Contains(r.Products, product)) && (slices.Contains(r.Rights, t) || slices.Contains(r.StopSharing, t)) {
			out = append(out, r)
		}
	}
	return out
}

// Recipient returns the recipient named name.
func (c *Config) Recipient(name string) (Recipient, bool) {
	for _, r := range c.Recipients {
		if r.Name == name {
			return r, true
		}
	}
	return Recipient{}, false
}

// Label is the recipient's name for the requester.
func (r Recipient) Label() string {
	if r.DisplayName != "" {
		return r.DisplayName
	}
	return r.Name
}

func (c *Config) defaultRecipients() {
	for i := range c.Recipients {
		if len(c.Recipients[i].Rights) == 0 && len(c.Recipients[i].StopSharing) == 0 {
			c.Recipients[i].Rights = []rights.Type{rights.TypeDelete, rights.TypeCancelAccount}
		}
	}
}

func (c *Config) checkRecipients(p *rights.Problems, products map[string]bool) {
	seen := map[string]bool{}
	for i, r := range c.Recipients {
		f := fmt.Sprintf("recipients[%d]", i)
		switch {
		case !nameRE.MatchString(r.Name):
			p.Add(f+".name", "must be a lower-case name like \"credit_bureau\", not %q", r.Name)
		case seen[r.Name]:
			p.Add(f+".name", "%q is declared twice", r.Name)
		}
		seen[r.Name] = true
		for j, prod := range r.Products {
			if !products[prod] {
				p.Add(fmt.Sprintf("%s.products[%d]", f, j), "unknown product %q", prod)
			}
		}
		for j, t := range r.Rights {
			if !notifiable(t) {
				p.Add(fmt.Sprintf("%s.rights[%d]", f, j), "recipients are told of delete, cancel_account, correct and withdraw_consent requests, not %q", t)
			}
		}
		for j, t := range r.StopSharing {
			if !notifiable(t) {
				p.Add(fmt.Sprintf("%s.stop_sharing[%d]", f, j), "recipients are told to stop sharing on delete, cancel_account, correct or withdraw_consent, not %q", t)
			}
		}
		for j, name := range r.Purposes {
			if _, ok := c.Purpose(name); !ok {
				p.Add(fmt.Sprintf("%s.purposes[%d]", f, j), "unknown purpose %q: declare it under consent.purposes", name)
			}
		}
		if w := r.When; w != nil {
			c.checkRecipientCondition(p, f+".when", w)
		}
		switch {
		case (r.Email == "") == (r.Webhook == nil):
			p.Add(f, "needs either email or webhook")
		case r.Email != "":
			if a, err := mail.ParseAddress(r.Email); err != nil || a.Address != r.Email {
				p.Add(f+".email", "must be a plain email address")
			}
		default:
			checkWebhook(p, f+".webhook", r.Webhook, c.Worker.JobTimeout)
		}
	}
}

func notifiable(t rights.Type) bool {
	return t == rights.TypeDelete || t == rights.TypeCancelAccount || t == rights.TypeCorrect || t == rights.TypeWithdrawConsent
}

func (c *Config) checkRecipientCondition(p *rights.Problems, f string, w *RecipientCondition) {
	switch {
	case (w.Store == "") == (w.Dataset == ""):
		p.Add(f, "needs either store and query, or dataset (\"store.table\")")
	case w.Dataset != "":
		if w.Query != "" {
			p.Add(f+".query", "is for a condition on a store, not a dataset")
		}
		storeName, table, ok := strings.Cut(w.Dataset, ".")
		s, known := c.Store(storeName)
		switch {
		case !ok || table == "":
			p.Add(f+".dataset", "must be store.table, e.g. \"demo_loans.loans\", not %q", w.Dataset)
		case !known:
			p.Add(f+".dataset", "unknown store %q", storeName)
		case slices.Contains(sqlKinds, s.Kind) && !slices.ContainsFunc(s.Tables, func(t Table) bool { return t.Name == table }):
			p.Add(f+".dataset", "store %q has no table %q", storeName, table)
		}
	default:
		s, ok := c.Store(w.Store)
		switch {
		case !ok:
			p.Add(f+".store", "unknown store %q", w.Store)
		case !slices.Contains(sqlKinds, s.Kind):
			p.Add(f+".store", "store %q is a %s store; a query needs a SQL store (postgres, mysql)", w.Store, s.Kind)
		default:
			checkPrecheckQuery(p, f+".query", s.Kind, w.Query)
		}
	}
}
