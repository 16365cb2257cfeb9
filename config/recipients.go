package config

import (
	"fmt"
	"net/mail"
	"slices"

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
	// default delete and cancel_account.
	Rights []rights.Type `yaml:"rights"`
	// Email is where the notice goes; it carries a link to acknowledge.
	Email string `yaml:"email"`
	// Webhook is a service answering the notice contract
	// (docs/webhook.md): 200 {"acknowledged": true} at once, or 202 and a
	// signed acknowledgement later.
	Webhook *WebhookStore `yaml:"webhook"`
}

// RecipientsFor returns the recipients notified when a request of right t
// for product completes.
func (c *Config) RecipientsFor(product string, t rights.Type) []Recipient {
	var out []Recipient
	for _, r := range c.Recipients {
		if (len(r.Products) == 0 || slices.Contains(r.Products, product)) && slices.Contains(r.Rights, t) {
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
		if len(c.Recipients[i].Rights) == 0 {
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
			if t != rights.TypeDelete && t != rights.TypeCancelAccount && t != rights.TypeCorrect {
				p.Add(fmt.Sprintf("%s.rights[%d]", f, j), "recipients are told of delete, cancel_account and correct requests, not %q", t)
			}
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
