package jobs

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/datarights/datarights/rights"
)

// Email templates to requesters and third parties: one file per kind and
// locale, templates/<kind>.<locale>.txt, whose first line is "Subject: …"
// and the rest, after a blank line, the body (text/template). A file of the
// same name in templates_dir replaces the built-in one, so a deployment can
// reword its emails without a rebuild; every template is parsed at start-up,
// and a broken one stops it.

//go:embed templates/*.txt
var builtinTemplates embed.FS

// Template kinds.
const (
	tmplCode            = "code"
	tmplAcknowledgement = "acknowledgement"
	tmplCompletion      = "completion"
	tmplRefusal         = "refusal"
	tmplLinkExpired     = "link_expired"
	tmplRecipientNotice = "recipient_notice"
	tmplLockout         = "lockout"
	tmplContactCode     = "contact_code"
	tmplContactChange   = "contact_change"
	// tmplClockPaused and tmplDeadlineExtended tell the requester their
	// request's clock stopped or its deadline moved, with staff's reason.
	tmplClockPaused      = "clock_paused"
	tmplDeadlineExtended = "deadline_extended"
)

var templateKinds = []string{tmplCode, tmplAcknowledgement, tmplCompletion, tmplRefusal, tmplLinkExpired, tmplRecipientNotice, tmplLockout, tmplContactCode, tmplContactChange, tmplClockPaused, tmplDeadlineExtended}

type mailTemplate struct {
	subject, body *template.Template
}

type mailTemplates map[string]mailTemplate // by "<kind>.<locale>"

// loadTemplates parses the built-in templates and the overrides in dir.
func loadTemplates(dir string) (mailTemplates, error) {
	out := mailTemplates{}
	for _, kind := range templateKinds {
		for _, locale := range []string{rights.LocaleZH, rights.LocaleEN} {
			name := kind + "." + locale + ".txt"
			var (
				text []byte
				err  error
			)
			source := "built-in " + name
			if dir != "" {
				text, err = os.ReadFile(filepath.Join(dir, name))
				source = filepath.Join(dir, name)
			}
			if dir == "" || os.IsNotExist(err) {
				text, err = fs.ReadFile(builtinTemplates, "templates/"+name)
				source = "built-in " + name
			}
			if err != nil {
				return nil, fmt.Errorf("email template %s: %w", source, err)
			}
			t, err := parseMailTemplate(source, string(text))
			if err != nil {
				return nil, err
			}
			if (kind == tmplCode || kind == tmplContactCode) && strings.Contains(t.subject.Root.String(), ".Code") {
				// Subjects show in notifications, lock screens and mail logs.
				return nil, fmt.Errorf("email template %s: the subject must not contain the code", source)
			}
			out[kind+"."+locale] = t
		}
	}
	return out, nil
}

func parseMailTemplate(source, text string) (mailTemplate, error) {
	first, body, _ := strings.Cut(text, "\n")
	subject, ok := strings.CutPrefix(first, "Subject: ")
	if !ok {
		return mailTemplate{}, fmt.Errorf("email template %s: the first line must be \"Subject: …\"", source)
	}
	body = strings.TrimPrefix(body, "\n")
	st, err := template.New(source + " subject").Option("missingkey=error").Parse(subject)
	if err != nil {
		return mailTemplate{}, fmt.Errorf("email template %s: %w", source, err)
	}
	bt, err := template.New(source).Option("missingkey=error").Parse(body)
	if err != nil {
		return mailTemplate{}, fmt.Errorf("email template %s: %w", source, err)
	}
	return mailTemplate{subject: st, body: bt}, nil
}

// render renders kind in the locale, with the other language below, so a
// message reaches the person even if the locale was guessed. data gives
// each language's values.
func (ts mailTemplates) render(kind, locale string, data func(locale string) any) (subject, body string, err error) {
	primary, secondary := locale, otherLocale(locale)
	exec := func(t *template.Template, v any) (string, error) {
		var b bytes.Buffer
		if err := t.Execute(&b, v); err != nil {
			return "", fmt.Errorf("email %s: %w", kind, err)
		}
		return b.String(), nil
	}
	p, s := ts[kind+"."+primary], ts[kind+"."+secondary]
	if subject, err = exec(p.subject, data(primary)); err != nil {
		return "", "", err
	}
	first, err := exec(p.body, data(primary))
	if err != nil {
		return "", "", err
	}
	second, err := exec(s.body, data(secondary))
	if err != nil {
		return "", "", err
	}
	return strings.TrimSpace(subject), first + "\n----\n\n" + second, nil
}
