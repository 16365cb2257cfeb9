package center

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/datarights/datarights/jobs"
	"github.com/datarights/datarights/rights"
)

// statusData is a request as its requester reads it: words, not status
// names; times in the product's zone.
type statusData struct {
	ID, Product, Right string
	// Status is the machine status, for tests and styling only.
	Status           rights.Status
	Headline, Now    string
	Next             string
	Received         string
	Deadline         string
	Completed        string
	Refusal          string
	Steps            []step
	Export           *exportData
	Contacts         []contactData
	PasswordAction   string
	ContactAction    string
	ForgetAction     string
	Zone             string
	DeadlineStopped  bool
	DeadlineExplains string
	// Answer is staff's reply to a complaint or explanation, once
	// written; AnswerTitle names it ("Our explanation").
	Answer, AnswerTitle string
	// Receiver is the company a transfer goes to, by its display name.
	Receiver string
}

// step is one stage of a request's way, done, current or to come.
type step struct {
	Label string
	State string // done | current | todo
}

type exportData struct {
	Link, Attached, Purged bool
	URL, FileName, Size    string
	Expires                string
	Password               string
	PasswordShown          string
	PasswordAvailable      bool
}

type contactData struct {
	Field, Kind, Label string
}

func (s *server) statusData(lang string, st *jobs.SelfServiceStatus) statusData {
	loc := s.Pipeline.Location(st.Product)
	at := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.In(loc).Format("2006-01-02 15:04")
	}
	zone := zoneName(lang, loc)
	prod, _ := s.Pipeline.Settings().Product(st.Product)
	d := statusData{ID: st.ID, Product: prod.Label(), Right: rightName(lang, st.Type), Status: st.Status,
		Received: at(&st.ReceivedAt), Completed: at(st.CompletedAt), Zone: zone,
		PasswordAction: requestPath(st.ID) + "/password", ContactAction: requestPath(st.ID) + "/contact",
		ForgetAction: requestPath(st.ID) + "/forget"}
	key := "status." + string(st.Status)
	if _, ok := catalogue[key+".headline"]; !ok {
		key = "status.other"
	}
	d.Headline = translate(lang, key+".headline")
	d.Now = translate(lang, key+".now")
	d.Next = translate(lang, key+".next")
	switch {
	case st.Status == rights.StatusInProgress && st.Type.Answered():
		// Nothing is searched in the stores: a person writes the answer.
		d.Now = translate(lang, "status.in_progress.now_answer")
	case st.Status == rights.StatusCompleted && st.Type == rights.TypeTransfer:
		d.Next = translate(lang, "status.completed.next_transfer")
	case st.Status == rights.StatusCompleted && st.Type.Exports():
		d.Next = translate(lang, "status.completed.next_copy")
	case st.Status == rights.StatusCompleted && st.Answer != "":
		d.Next = translate(lang, "status.completed.next_answer")
	}
	d.Receiver = st.Receiver
	if st.Answer != "" {
		title := "reply.title." + string(st.Type)
		if _, ok := catalogue[title]; !ok {
			title = "reply.title"
		}
		d.Answer, d.AnswerTitle = st.Answer, translate(lang, title)
	}
	if st.LastDay != "" {
		d.Deadline = translate(lang, "status.deadline_value", st.LastDay, zone)
	}
	if st.Status == rights.StatusPaused {
		d.DeadlineStopped = true
	}
	if st.Refusal != "" {
		d.Refusal = refusalText(lang, st.Refusal)
	}
	d.Steps = steps(lang, st.Status)
	// A transfer's archive went to the receiver, unencrypted over TLS:
	// there is nothing for the person to download or unlock.
	if e := st.Export; e != nil && st.Type != rights.TypeTransfer {
		ed := &exportData{Link: e.Delivery == "link", Attached: e.Delivery != "link", Purged: e.PurgedAt != nil,
			URL: e.URL, FileName: e.FileName, Size: humanBytes(e.Bytes), Expires: at(e.ExpiresAt),
			Password: e.Password, PasswordAvailable: e.PasswordAvailable}
		if e.Password == "" && e.PasswordShownAt != nil {
			ed.PasswordShown = at(e.PasswordShownAt)
		}
		d.Export = ed
	}
	if st.Status == rights.StatusAwaitingContact {
		for _, c := range st.Contacts {
			if c.ConfirmedAt == nil {
				label := c.Field
				if _, ok := catalogue["field."+c.Field]; ok {
					label = translate(lang, "field."+c.Field)
				}
				d.Contacts = append(d.Contacts, contactData{Field: c.Field, Kind: c.Kind, Label: label})
			}
		}
	}
	return d
}

// steps places a request on its way: received, verified, being worked on,
// answered.
func steps(lang string, st rights.Status) []step {
	labels := []string{"step.received", "step.verified", "step.working", "step.answered"}
	current := 0
	switch st {
	case rights.StatusAwaitingVerification:
		current = 1
	case rights.StatusReceived, rights.StatusVerified, rights.StatusAwaitingApproval, rights.StatusAwaitingContact,
		rights.StatusInProgress, rights.StatusAssembling, rights.StatusPaused, rights.StatusFailed:
		current = 2
	case rights.StatusDelivering:
		current = 3
	default: // completed, refused, cancelled, expired
		current = 4
	}
	out := make([]step, len(labels))
	for i, l := range labels {
		state := "todo"
		switch {
		case i < current:
			state = "done"
		case i == current:
			state = "current"
		}
		out[i] = step{Label: translate(lang, l), State: state}
	}
	return out
}

func refusalText(lang, reason string) string {
	words, ok := rights.RefusalReasons[rights.RefusalReason(reason)]
	if !ok {
		return translate(lang, "refusal.other")
	}
	if lang == langZH {
		return translate(lang, "refusal.because", words.ZH)
	}
	return translate(lang, "refusal.because", words.EN)
}

// zoneName names a product's time zone for people.
func zoneName(lang string, loc *time.Location) string {
	switch loc.String() {
	case "Asia/Shanghai", "Asia/Chongqing", "PRC":
		return translate(lang, "zone.china")
	case "Asia/Hong_Kong":
		return translate(lang, "zone.hong_kong")
	case "UTC", "":
		return "UTC"
	}
	return loc.String()
}

// humanBytes is a size for people: "820 KB", "1.2 GB".
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "KMGTPE"[exp])
}

// problem is err in the page's language: a sentence for the page and,
// for invalid input, one per form field. The pipeline's own English
// wording never reaches the page; unexpected errors are logged, not shown.
func (s *server) problem(r *http.Request, lang string, err error) (string, map[string]string) {
	var re *rights.Error
	if !errors.As(err, &re) {
		s.Logger.ErrorContext(r.Context(), "privacy center action failed", "route", r.Pattern, "err", err)
		return translate(lang, "error.internal"), nil
	}
	switch re.Code {
	case rights.EInvalid:
		fields := map[string]string{}
		for _, f := range re.Fields {
			name, text := fieldProblem(lang, f)
			if fields[name] == "" {
				fields[name] = text
			}
		}
		msg := translate(lang, "error.invalid")
		if len(fields) == 1 {
			for _, text := range fields {
				msg = text
			}
		}
		return msg, fields
	case rights.ETooMany:
		return translate(lang, "error.too_many"), nil
	case rights.ELocked:
		return translate(lang, "error.locked"), nil
	case rights.EExpired:
		return translate(lang, "error.expired"), nil
	case rights.ENotFound:
		return translate(lang, "error.not_found"), nil
	case rights.EConflict:
		return translate(lang, "error.conflict"), nil
	case rights.EUnavailable:
		return translate(lang, "error.unavailable"), nil
	case rights.EInternal:
		s.Logger.ErrorContext(r.Context(), "privacy center action failed", "route", r.Pattern, "err", err)
		return translate(lang, "error.internal"), nil
	}
	return translate(lang, "error.invalid"), nil
}

// fieldProblem names a field problem by the form's field and says it in
// lang.
func fieldProblem(lang string, f rights.FieldProblem) (string, string) {
	switch field := f.Field; {
	case field == "email" || strings.HasPrefix(field, "subject.identities") || field == "delivery_email":
		return "email", translate(lang, "field_error.email")
	case field == "code":
		var left int
		if _, err := fmt.Sscanf(f.Reason, "wrong code; %d attempts left", &left); err == nil {
			return "code", translate(lang, "field_error.code_wrong", left)
		}
		return "code", translate(lang, "field_error.code_format", jobs.CodeDigits)
	case field == "purposes" || strings.HasPrefix(field, "purposes["):
		return "purposes", translate(lang, "field_error.purposes")
	case field == "corrections":
		return "corrections", translate(lang, "field_error.corrections")
	case strings.HasPrefix(field, "corrections."):
		return "correct." + strings.TrimPrefix(field, "corrections."), translate(lang, "field_error.correction")
	case field == "type":
		return "type", translate(lang, "field_error.type")
	case field == "text":
		if strings.HasPrefix(f.Reason, "is required") {
			return "text", translate(lang, "field_error.text_required")
		}
		return "text", translate(lang, "field_error.text_long", rights.MaxDetailText, rights.MaxDetailText/3)
	case field == "concerns":
		return "concerns", translate(lang, "field_error.concerns")
	case field == "receiver":
		return "receiver", translate(lang, "field_error.receiver")
	}
	return f.Field, translate(lang, "field_error.generic")
}
