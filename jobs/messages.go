package jobs

import (
	"context"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// Emails to requesters, in the request's locale with the other language
// below, so a message reaches the person even if the locale was guessed.

var shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}()

var rightNames = map[string]map[rights.Type]string{
	rights.LocaleZH: {
		rights.TypeAccess: "查阅", rights.TypeCopy: "复制", rights.TypeCorrect: "更正",
		rights.TypeDelete: "删除", rights.TypeWithdrawConsent: "撤回同意", rights.TypeCancelAccount: "注销账户",
		rights.TypeTransfer: "个人信息转移", rights.TypeExplain: "自动化决策说明", rights.TypeComplaint: "投诉",
	},
	rights.LocaleEN: {
		rights.TypeAccess: "access", rights.TypeCopy: "copy", rights.TypeCorrect: "correction",
		rights.TypeDelete: "deletion", rights.TypeWithdrawConsent: "consent withdrawal", rights.TypeCancelAccount: "account cancellation",
		rights.TypeTransfer: "transfer", rights.TypeExplain: "explanation", rights.TypeComplaint: "complaint",
	},
}

// localTime formats a time for emails, in Beijing time; "" for none.
func localTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.In(shanghai).Format("2006-01-02 15:04")
}

// localTime formats a time for people, in product's time zone; "" for none.
func (p *Pipeline) localTime(product string, t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.In(p.location(product)).Format("2006-01-02 15:04")
}

// zoneWords names a time zone for people ("China Standard Time",
// "北京时间"), as emails say which time they mean.
func zoneWords(locale string, loc *time.Location) string {
	switch loc.String() {
	case "Asia/Shanghai", "Asia/Chongqing", "PRC":
		if locale == rights.LocaleZH {
			return "北京时间"
		}
		return "China Standard Time"
	case "Asia/Hong_Kong":
		if locale == rights.LocaleZH {
			return "香港时间"
		}
		return "Hong Kong Time"
	}
	return loc.String()
}

// render renders an email to a requester of product: data's values, and
// Zone, the name of the product's time zone, which every time is in.
func (p *Pipeline) render(kind, locale, product string, data func(l string) any) (string, string, error) {
	loc := p.location(product)
	return p.tmpl.render(kind, locale, func(l string) any {
		v := data(l)
		if m, ok := v.(map[string]any); ok {
			if _, set := m["Zone"]; !set {
				m["Zone"] = zoneWords(l, loc)
			}
		}
		return v
	})
}

// records is "1 record", "2 records" (en) or "2 条记录" (zh-CN).
func records(locale string, n int64) string {
	switch {
	case locale == rights.LocaleZH:
		return fmt.Sprintf("%d 条记录", n)
	case n == 1:
		return "1 record"
	}
	return fmt.Sprintf("%d records", n)
}

// erasureWords says what an erasure did in one store, in both languages.
func erasureWords(report rights.StoreReport) (zh, en string) {
	var deleted, anonymized, restricted int64
	for _, d := range report.Datasets {
		if d.Deleted+d.Anonymized+d.Restricted == 0 {
			deleted += d.Rows // a store that reports only what it deleted (S3, a webhook)
			continue
		}
		deleted, anonymized, restricted = deleted+d.Deleted, anonymized+d.Anonymized, restricted+d.Restricted
	}
	var zhParts, enParts []string
	if deleted > 0 {
		zhParts, enParts = append(zhParts, fmt.Sprintf("已删除 %d 条记录", deleted)), append(enParts, records(rights.LocaleEN, deleted)+" deleted")
	}
	if anonymized > 0 {
		zhParts, enParts = append(zhParts, fmt.Sprintf("已匿名化 %d 条记录", anonymized)), append(enParts, fmt.Sprintf("%d anonymized", anonymized))
	}
	if restricted > 0 {
		zhParts, enParts = append(zhParts, fmt.Sprintf("%d 条记录依法限制处理", restricted)), append(enParts, fmt.Sprintf("%d kept restricted as the law requires", restricted))
	}
	if len(zhParts) == 0 {
		return "没有需要删除的记录", "nothing to erase"
	}
	return strings.Join(zhParts, "，"), strings.Join(enParts, ", ")
}

// retainedLines groups the datasets an erasure kept restricted: by
// retention class and last day, with the class's legal basis; and, apart,
// those restricted with no end.
func (p *Pipeline) retainedLines(r *rights.Request, tasks []*rights.Task, l string) (retained []retainedLine, restricted []string) {
	type group struct{ class, until string }
	datasets := map[group][]string{}
	var order []group
	for _, t := range tasks {
		if t.Report == nil {
			continue
		}
		for _, d := range t.Report.Restricted() {
			name := p.settings.DatasetLabel(t.Store, d.Name, l)
			if d.RestrictedUntil == nil {
				restricted = append(restricted, name)
				continue
			}
			// The period ends at 24:00 of its last day: the day before until.
			g := group{d.Retention, d.RestrictedUntil.In(p.location(r.Product)).AddDate(0, 0, -1).Format(time.DateOnly)}
			if _, ok := datasets[g]; !ok {
				order = append(order, g)
			}
			datasets[g] = append(datasets[g], name)
		}
	}
	for _, g := range order {
		line := retainedLine{Basis: g.class, Datasets: strings.Join(datasets[g], ", "), Until: g.until}
		if rc, ok := p.settings.RetentionClass(g.class); ok {
			line.Basis = rc.BasisIn(l) // basis_en for English, else the Chinese basis
		}
		retained = append(retained, line)
	}
	return retained, restricted
}

func otherLocale(l string) string {
	if l == rights.LocaleEN {
		return rights.LocaleZH
	}
	return rights.LocaleEN
}

// codeMessage is the email carrying a self-service requester's code.
func (p *Pipeline) codeMessage(r *rights.Request, code string, expires time.Time, messageID string) (rights.Message, error) {
	subject, body, err := p.render(tmplCode, r.Locale, r.Product, func(l string) any {
		return map[string]any{"Code": code, "ID": r.ID, "Right": rightNames[l][r.Type], "Product": p.productName(r.Product),
			"Expires": expires.In(p.location(r.Product)).Format("2006-01-02 15:04")}
	})
	return rights.Message{ID: messageID, To: r.DeliveryEmail, Subject: subject, Text: body}, err
}

// lockoutMessage tells the owner of a mailbox that too many wrong codes
// were entered for requests naming it, and that codes for it are refused
// for a day. It says nothing about whether the address is a customer's.
func (p *Pipeline) lockoutMessage(r *rights.Request) (rights.Message, error) {
	until := p.now().Add(wrongCodeWindow)
	subject, body, err := p.render(tmplLockout, r.Locale, r.Product, func(l string) any {
		return map[string]any{"Product": p.productName(r.Product), "ID": r.ID,
			"Limit": p.settings.SelfService.Limits.WrongCodesPerDay, "Until": p.localTime(r.Product, &until)}
	})
	return rights.Message{ID: r.ID + ".lockout@datarights", To: r.DeliveryEmail, Subject: subject, Text: body}, err
}

// acknowledgementMessage tells a verified requester the request is
// received and by when it will be answered.
func (p *Pipeline) acknowledgementMessage(r *rights.Request) (rights.Message, error) {
	policy := p.policies[r.Product]
	lastDay := ""
	if r.DueAt != nil {
		lastDay = p.LastDay(r)
	}
	subject, body, err := p.render(tmplAcknowledgement, r.Locale, r.Product, func(l string) any {
		return map[string]any{"Right": rightNames[l][r.Type], "Product": p.productName(r.Product), "ID": r.ID,
			"Received": p.localTime(r.Product, &r.ReceivedAt), "Verified": p.localTime(r.Product, r.VerifiedAt), "LastDay": lastDay,
			"Days": policy.Days, "WorkingDays": policy.Kind == rights.WorkingDays}
	})
	return rights.Message{ID: r.ID + ".acknowledgement@datarights", To: r.DeliveryEmail, Subject: subject, Text: body}, err
}

// clockMessage tells the requester about the seq-th pause (the clock
// stopped, and what is awaited) or extension (the new last day, and why),
// from what was stored with it, so a resend is the same message.
func (p *Pipeline) clockMessage(r *rights.Request, notice string, seq int, messageID string) (rights.Message, error) {
	policy := p.policies[r.Product]
	data := map[string]any{"Product": p.productName(r.Product), "ID": r.ID,
		"Received": p.localTime(r.Product, &r.ReceivedAt), "WorkingDays": policy.Kind == rights.WorkingDays}
	kind := tmplClockPaused
	switch {
	case notice == noticePaused && seq >= 1 && seq <= len(r.Clock.Pauses):
		pause := r.Clock.Pauses[seq-1]
		data["From"], data["Reason"], data["LastDay"] = p.localTime(r.Product, &pause.From), pause.Reason, p.lastDayOf(r.Product, pause.DueAt)
	case notice == noticeExtended && seq >= 1 && seq <= len(r.Clock.Extensions):
		ext := r.Clock.Extensions[seq-1]
		kind = tmplDeadlineExtended
		data["Days"], data["Reason"], data["LastDay"] = ext.Days, ext.Reason, p.lastDayOf(r.Product, ext.DueAt)
	default:
		return rights.Message{}, fmt.Errorf("request %s has no %s number %d", r.ID, notice, seq)
	}
	subject, body, err := p.render(kind, r.Locale, r.Product, func(l string) any {
		out := map[string]any{"Right": rightNames[l][r.Type]}
		for k, v := range data {
			out[k] = v
		}
		return out
	})
	return rights.Message{ID: messageID, To: r.DeliveryEmail, Subject: subject, Text: body}, err
}

// linkExpiredMessage tells a requester that a download link expired unused.
func (p *Pipeline) linkExpiredMessage(r *rights.Request, e *storage.Export) (rights.Message, error) {
	subject, body, err := p.render(tmplLinkExpired, r.Locale, r.Product, func(l string) any {
		return map[string]any{"Product": p.productName(r.Product), "ID": r.ID, "Expired": p.localTime(r.Product, e.ExpiresAt)}
	})
	return rights.Message{ID: r.ID + ".link_expired@datarights", To: r.DeliveryEmail, Subject: subject, Text: body}, err
}

// exportLine is what the completion email says about the copy.
type exportLine struct {
	Attached    bool
	FileName    string
	Size        string // of a linked file, e.g. "1.2 GB"
	URL         string
	Expires     string
	CSV         bool
	SelfService bool
	StatusURL   string
}

type storeLine struct {
	Store    string // the store's name for people
	Resolved bool
	Rows     int64
	Records  string                  // Rows in words: "1 record", "12 条记录"
	Erasure  struct{ ZH, EN string } // what an erasure did, in words
}

// retainedLine is data kept restricted under one retention class until one
// day, for the completion email.
type retainedLine struct {
	Basis, Datasets, Until string
}

func (p *Pipeline) completionMessage(r *rights.Request, tasks []*rights.Task, export *storage.Export) (rights.Message, error) {
	// Each language names the stores and datasets in its own words.
	storeLines := func(l string) []storeLine {
		var lines []storeLine
		for _, t := range tasks {
			line := storeLine{Store: p.settings.StoreLabel(t.Store, l)}
			if t.Report != nil {
				line.Resolved, line.Rows = t.Report.Resolved, t.Report.Rows()
				line.Erasure.ZH, line.Erasure.EN = erasureWords(*t.Report)
			}
			line.Records = records(l, line.Rows)
			lines = append(lines, line)
		}
		return lines
	}
	retained := func(l string) []retainedLine { lines, _ := p.retainedLines(r, tasks, l); return lines }
	restricted := func(l string) []string { _, names := p.retainedLines(r, tasks, l); return names }
	var outcome rights.Outcome
	if r.Outcome != nil {
		outcome = *r.Outcome
	}
	var (
		el       *exportLine
		transfer *transferLine
		answer   string
	)
	if r.Details != nil && r.Details.Answer != nil {
		answer = r.Details.Answer.Text
	}
	if r.Type == rights.TypeTransfer && export != nil {
		// The archive went to the receiver, not to this mailbox.
		transfer = &transferLine{Size: humanBytes(export.Bytes), At: p.localTime(r.Product, &export.CreatedAt)}
		if rc, ok := p.settings.Receiver(r.Details.Receiver); ok {
			transfer.rc = rc
		}
		export = nil
	}
	if export != nil {
		link, err := p.linkURL(export)
		if err != nil {
			return rights.Message{}, err
		}
		el = &exportLine{Attached: export.Delivery != "link", FileName: export.FileName, Size: humanBytes(export.Bytes),
			URL: link, Expires: p.localTime(r.Product, export.ExpiresAt), CSV: slices.Contains(p.settings.Exports.Formats, config.FormatCSV),
			SelfService: r.Channel == rights.ChannelSelfService, StatusURL: p.StatusURL(r.ID)}
	}
	subject, body, err := p.render(tmplCompletion, r.Locale, r.Product, func(l string) any {
		return map[string]any{"Right": rightNames[l][r.Type], "Product": p.productName(r.Product), "ID": r.ID,
			"Received": r.ReceivedAt.In(p.location(r.Product)).Format("2006-01-02 15:04"), "Stores": storeLines(l),
			"Export": el, "Erased": r.Type.Erases(), "Withdrawal": r.Type == rights.TypeWithdrawConsent,
			"Cancelled":   r.Type == rights.TypeCancelAccount && (r.Outcome == nil || r.Outcome.CancelledBy == ""),
			"CancelledBy": outcome.CancelledBy, "CancelledAt": p.localTime(r.Product, outcome.CancelledAt),
			"Withdrawn": p.purposeLabels(outcome.Withdrawn, l), "WithdrawnAt": p.localTime(r.Product, outcome.WithdrawnAt),
			"Recipients": strings.Join(outcome.Recipients, ", "),
			"Retained":   retained(l), "Restricted": strings.Join(restricted(l), ", "),
			// Field names only: the new values never go into an email.
			"Correction": r.Type == rights.TypeCorrect, "Corrected": strings.Join(p.fieldLabels(r.Product, correctedFields(tasks), l), ", "),
			"Answer": answer, "Complaint": r.Type == rights.TypeComplaint, "Transfer": transfer.in(l)}
	})
	if err != nil {
		return rights.Message{}, err
	}
	msg := rights.Message{
		ID: r.ID + ".completion@datarights", To: r.DeliveryEmail, Subject: subject, Text: body,
		HTML: "<pre style=\"font-family:sans-serif;white-space:pre-wrap\">" + template.HTMLEscapeString(body) + "</pre>",
	}
	if export != nil && export.Delivery != "link" {
		dest, location := p.dest, export.Location
		msg.Attachments = []rights.Attachment{{
			Filename: export.FileName, ContentType: "application/zip",
			Open: func() (io.ReadCloser, error) {
				rc, _, err := dest.Open(context.Background(), location)
				return rc, err
			},
		}}
	}
	return msg, nil
}

// fieldLabels names correctable fields for people in locale.
func (p *Pipeline) fieldLabels(product string, fields []string, locale string) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = p.settings.FieldLabel(product, f, locale)
	}
	return out
}

// transferLine is what the completion email says about a transfer.
type transferLine struct {
	Size, At string
	rc       config.TransferReceiver
}

// in returns the line's words in locale (nil for no transfer).
func (t *transferLine) in(locale string) map[string]string {
	if t == nil {
		return nil
	}
	return map[string]string{"Size": t.Size, "At": t.At, "Receiver": t.rc.Label(),
		"Purpose": t.rc.Purpose.In(locale), "LegalBasis": t.rc.LegalBasis.In(locale)}
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
