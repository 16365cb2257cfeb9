package jobs

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"os"
	"strings"
	textTemplate "text/template"
	"time"

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

type messageText struct{ Subject, Body string }

var codeTexts = map[string]messageText{
	rights.LocaleZH: {
		Subject: "您的验证码 {{.Code}}",
		Body: "您好：\n\n我们收到了您关于个人信息的{{.Right}}请求（编号 {{.ID}}）。\n" +
			"验证码：{{.Code}}\n有效期至 {{.Expires}}（北京时间）。\n\n" +
			"如果这不是您本人的操作，请忽略本邮件，我们不会处理该请求。\n",
	},
	rights.LocaleEN: {
		Subject: "Your verification code {{.Code}}",
		Body: "Hello,\n\nWe received your {{.Right}} request about your personal information (reference {{.ID}}).\n" +
			"Verification code: {{.Code}}\nValid until {{.Expires}} (China Standard Time).\n\n" +
			"If you did not ask for this, ignore this email and nothing will happen.\n",
	},
}

var rightNames = map[string]map[rights.Type]string{
	rights.LocaleZH: {
		rights.TypeAccess: "查阅", rights.TypeCopy: "复制", rights.TypeCorrect: "更正",
		rights.TypeDelete: "删除", rights.TypeWithdrawConsent: "撤回同意", rights.TypeCancelAccount: "注销账户",
	},
	rights.LocaleEN: {
		rights.TypeAccess: "access", rights.TypeCopy: "copy", rights.TypeCorrect: "correction",
		rights.TypeDelete: "deletion", rights.TypeWithdrawConsent: "consent withdrawal", rights.TypeCancelAccount: "account cancellation",
	},
}

// localTime formats a time for emails, in Beijing time; "" for none.
func localTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.In(shanghai).Format("2006-01-02 15:04")
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
		zhParts, enParts = append(zhParts, fmt.Sprintf("已删除 %d 条记录", deleted)), append(enParts, fmt.Sprintf("%d records deleted", deleted))
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
func (p *Pipeline) retainedLines(r *rights.Request, tasks []*rights.Task) (retained []retainedLine, restricted []string) {
	type group struct{ class, until string }
	datasets := map[group][]string{}
	var order []group
	for _, t := range tasks {
		if t.Report == nil {
			continue
		}
		for _, d := range t.Report.Restricted() {
			name := t.Store + "/" + d.Name
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
		basis := g.class
		if rc, ok := p.settings.RetentionClass(g.class); ok {
			basis = rc.Basis
		}
		retained = append(retained, retainedLine{Basis: basis, Datasets: strings.Join(datasets[g], ", "), Until: g.until})
	}
	return retained, restricted
}

func otherLocale(l string) string {
	if l == rights.LocaleEN {
		return rights.LocaleZH
	}
	return rights.LocaleEN
}

func render(text string, data any) string {
	var b bytes.Buffer
	textTemplate.Must(textTemplate.New("").Parse(text)).Execute(&b, data) //nolint:errcheck // fixed templates over plain data
	return b.String()
}

// bilingual renders a message in the request's locale with the other below.
func bilingual(locale string, texts map[string]messageText, data func(locale string) any) (subject, body string) {
	primary, secondary := locale, otherLocale(locale)
	subject = render(texts[primary].Subject, data(primary))
	body = render(texts[primary].Body, data(primary)) + "\n----\n\n" + render(texts[secondary].Body, data(secondary))
	return subject, body
}

func codeMessage(r *rights.Request, code string, expires time.Time, messageID string) rights.Message {
	subject, body := bilingual(r.Locale, codeTexts, func(l string) any {
		return map[string]string{"Code": code, "ID": r.ID, "Right": rightNames[l][r.Type],
			"Expires": expires.In(shanghai).Format("2006-01-02 15:04")}
	})
	return rights.Message{ID: messageID, To: r.DeliveryEmail, Subject: subject, Text: body}
}

var completionTexts = map[string]messageText{
	rights.LocaleZH: {
		Subject: "您的{{.Right}}请求已完成（{{.Product}}）",
		Body: "您好：\n\n您于 {{.Received}}（北京时间）提交的{{.Right}}请求（编号 {{.ID}}）已处理完成。\n\n" +
			"{{if .CancelledBy}}您的账户已于 {{.CancelledAt}}（北京时间）注销（请求编号 {{.CancelledBy}}），已没有可供{{.Right}}的账户信息。注销时，您的个人信息已依法删除、匿名化或限制处理。\n{{end}}" +
			"{{if .Cancelled}}您的账户已注销。注销不可撤销：账户及其中的信息无法恢复，如需再次使用我们的服务，需要重新注册。\n\n{{end}}" +
			"{{if .Withdrawn}}自 {{.WithdrawnAt}}（北京时间）起，您已撤回对以下用途的同意：{{.Withdrawn}}。我们不再为这些用途处理您的个人信息；撤回同意不影响撤回前基于您的同意已进行的个人信息处理活动。\n\n{{end}}" +
			"{{range .Stores}}- {{.Store}}：{{if not .Resolved}}未找到与您提供的身份信息对应的数据{{else if $.Erased}}{{.Erasure.ZH}}{{else if $.Withdrawal}}已停止处理{{else}}{{.Rows}} 条记录{{end}}\n{{end}}" +
			"{{if .Attached}}\n您的个人信息副本见附件 {{.Attached}}（ZIP 压缩包，内含可阅读的 summary.html、每个数据表一份 JSON 文件，以及带 SHA-256 校验值的 manifest.json）。\n{{end}}" +
			"{{range .Retained}}\n依据{{.Basis}}，部分记录（{{.Datasets}}）须保存至 {{.Until}}。在此之前，我们仅对其进行存储和必要的安全保护，不作其他任何处理；期满后将予以删除。\n{{end}}" +
			"{{if .Restricted}}\n部分记录（{{.Restricted}}）因法律义务须继续保存，已停止除存储和必要的安全保护以外的一切处理。\n{{end}}" +
			"{{if .Correction}}\n{{if .Corrected}}已按您的要求更正以下信息：{{.Corrected}}。{{else}}没有信息被更正。{{end}}\n{{end}}" +
			"{{if .Recipients}}\n我们已通知曾向其提供您个人信息的第三方（{{.Recipients}}）删除相关信息。\n{{end}}" +
			"\n如有疑问，请回复本邮件或联系客服，并提供请求编号。\n",
	},
	rights.LocaleEN: {
		Subject: "Your {{.Right}} request is complete ({{.Product}})",
		Body: "Hello,\n\nYour {{.Right}} request (reference {{.ID}}), received {{.Received}} China Standard Time, is complete.\n\n" +
			"{{if .CancelledBy}}Your account was cancelled on {{.CancelledAt}} China Standard Time (reference {{.CancelledBy}}): there is no account left for this request. When it was cancelled, your personal information was deleted, anonymized or restricted as the law requires.\n{{end}}" +
			"{{if .Cancelled}}Your account has been cancelled. This cannot be undone: the account and what it held cannot be restored; to use our services again you would register anew.\n\n{{end}}" +
			"{{if .Withdrawn}}As of {{.WithdrawnAt}} China Standard Time you have withdrawn your consent to: {{.Withdrawn}}. We no longer process your personal information for these purposes; the withdrawal does not affect processing carried out on your consent before it.\n\n{{end}}" +
			"{{range .Stores}}- {{.Store}}: {{if not .Resolved}}no data found under the identities you gave{{else if $.Erased}}{{.Erasure.EN}}{{else if $.Withdrawal}}processing stopped{{else}}{{.Rows}} records{{end}}\n{{end}}" +
			"{{if .Attached}}\nYour copy is attached as {{.Attached}} (a ZIP archive with a readable summary.html, one JSON file per table, and manifest.json with SHA-256 checksums).\n{{end}}" +
			"{{range .Retained}}\nSome records ({{.Datasets}}) must be kept until {{.Until}} ({{.Basis}}). Until then we only store and protect them and use them for nothing else; then they are erased.\n{{end}}" +
			"{{if .Restricted}}\nSome records ({{.Restricted}}) must be kept for a legal obligation: all processing of them except storage and security has stopped.\n{{end}}" +
			"{{if .Correction}}\n{{if .Corrected}}As you asked, we corrected: {{.Corrected}}.{{else}}No information was corrected.{{end}}\n{{end}}" +
			"{{if .Recipients}}\nWe have asked the third parties we shared your personal information with ({{.Recipients}}) to delete it.\n{{end}}" +
			"\nIf you have questions, reply to this email or contact customer service with the reference.\n",
	},
}

type storeLine struct {
	Store    string
	Resolved bool
	Rows     int64
	Erasure  struct{ ZH, EN string } // what an erasure did, in words
}

// retainedLine is data kept restricted under one retention class until one
// day, for the completion email.
type retainedLine struct {
	Basis, Datasets, Until string
}

func (p *Pipeline) completionMessage(r *rights.Request, tasks []*rights.Task, export *storage.Export) rights.Message {
	var lines []storeLine
	for _, t := range tasks {
		line := storeLine{Store: t.Store}
		if t.Report != nil {
			line.Resolved, line.Rows = t.Report.Resolved, t.Report.Rows()
			line.Erasure.ZH, line.Erasure.EN = erasureWords(*t.Report)
		}
		lines = append(lines, line)
	}
	retained, restricted := p.retainedLines(r, tasks)
	var outcome rights.Outcome
	if r.Outcome != nil {
		outcome = *r.Outcome
	}
	attached := ""
	if export != nil {
		attached = "personal-information-" + r.ID + ".zip"
	}
	subject, body := bilingual(r.Locale, completionTexts, func(l string) any {
		return map[string]any{"Right": rightNames[l][r.Type], "Product": p.productName(r.Product), "ID": r.ID,
			"Received": r.ReceivedAt.In(shanghai).Format("2006-01-02 15:04"), "Stores": lines,
			"Attached": attached, "Erased": r.Type.Erases(), "Withdrawal": r.Type == rights.TypeWithdrawConsent,
			"Cancelled":   r.Type == rights.TypeCancelAccount && (r.Outcome == nil || r.Outcome.CancelledBy == ""),
			"CancelledBy": outcome.CancelledBy, "CancelledAt": localTime(outcome.CancelledAt),
			"Withdrawn": p.purposeLabels(outcome.Withdrawn, l), "WithdrawnAt": localTime(outcome.WithdrawnAt),
			"Recipients": strings.Join(outcome.Recipients, ", "),
			"Retained":   retained, "Restricted": strings.Join(restricted, ", "),
			// Field names only: the new values never go into an email.
			"Correction": r.Type == rights.TypeCorrect, "Corrected": strings.Join(correctedFields(tasks), ", ")}
	})
	msg := rights.Message{
		ID: r.ID + ".completion@datarights", To: r.DeliveryEmail, Subject: subject, Text: body,
		HTML: "<pre style=\"font-family:sans-serif;white-space:pre-wrap\">" + template.HTMLEscapeString(body) + "</pre>",
	}
	if export != nil {
		location := export.Location
		msg.Attachments = []rights.Attachment{{
			Filename: attached, ContentType: "application/zip",
			Open: func() (io.ReadCloser, error) {
				f, err := os.Open(location)
				if err != nil {
					return nil, fmt.Errorf("open export: %w", err)
				}
				return f, nil
			},
		}}
	}
	return msg
}
