package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/datarights/datarights/demo"
)

// The privacy center's forms for the issue 12 types, with JavaScript off:
// a complaint about one's own earlier request, answered by staff; a
// transfer to a configured receiving company.

// TestPrivacyCenterComplaintAnswered: a person complains in the center
// about their own earlier request, giving its reference; the form tells
// a missing text and a malformed reference in words, per field. After the
// emailed code the complaint waits for staff, linked to the earlier
// request; once an approver answers through the API, the status page shows
// the reply, escaped, in its own section.
func TestPrivacyCenterComplaintAnswered(t *testing.T) {
	t.Parallel()
	e := setupNewTypes(t, nil, "", nil)
	const email = "demo-user-5@example.com"

	// The earlier request, made through the JSON API and confirmed.
	code, filed := e.call("POST", "/api/v1/self-service/requests", "", map[string]any{
		"product": "webank", "type": "access", "email": email, "locale": "en"})
	if code != http.StatusAccepted {
		t.Fatalf("earlier request: %d %v", code, filed)
	}
	earlier := filed["id"].(string)
	m := codeRE.FindStringSubmatch(e.smtp.WaitForMessage(t, earlier+".code.1@datarights", 30*time.Second).Text)
	if m == nil {
		t.Fatal("no code in the earlier request's email")
	}
	if code, got := e.call("POST", "/api/v1/self-service/requests/"+earlier+"/verify", "", map[string]string{"code": m[1]}); code != http.StatusOK {
		t.Fatalf("earlier request's code: %d %v", code, got)
	}

	ctx := browserFor(t, 3*time.Minute)
	noScript(t, ctx)
	var textErr, concernsErr string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(e.base+"/privacy/lang/en?back=/privacy/webank"),
		chromedp.WaitVisible(`#file-complaint`),
		chromedp.Click(`#file-complaint`),
		chromedp.WaitVisible(`#text`),
		chromedp.SendKeys(`#email`, email),
		chromedp.SendKeys(`#concerns`, "my last one"),
		chromedp.Click(`#submit`),
		chromedp.WaitVisible(`#text-error`),
		chromedp.Text(`#text-error`, &textErr),
		chromedp.Text(`#concerns-error`, &concernsErr),
	); err != nil {
		t.Fatalf("complaint form: %v", err)
	}
	if textErr != "Please tell us in a few words." || !strings.HasPrefix(concernsErr, "This is not a request reference") {
		t.Errorf("the form's errors: text %q, reference %q", textErr, concernsErr)
	}
	complaint := "Your answer to my access request came late\nand did not list my card transactions."
	if err := chromedp.Run(ctx,
		// A fresh form, for the screenshot.
		chromedp.Navigate(e.base+"/privacy/webank/complaint"),
		chromedp.WaitVisible(`#text`),
		chromedp.SendKeys(`#email`, email),
		chromedp.SendKeys(`#text`, complaint),
		// As copied from the earlier request's page, spaces and all.
		chromedp.SetValue(`#concerns`, " "+strings.ToUpper(earlier)+" "),
	); err != nil {
		t.Fatal(err)
	}
	centerShot(t, ctx, "form-complaint.png")
	var id string
	if err := chromedp.Run(ctx,
		chromedp.Click(`#submit`),
		chromedp.WaitVisible(`#code`),
		chromedp.Text(`#reference`, &id),
	); err != nil {
		t.Fatalf("complaint filed: %v", err)
	}
	m = codeRE.FindStringSubmatch(e.smtp.WaitForMessage(t, id+".code.1@datarights", 30*time.Second).Text)
	if m == nil {
		t.Fatal("no code in the complaint's email")
	}
	var now string
	if err := chromedp.Run(ctx,
		chromedp.SendKeys(`#code`, m[1]),
		chromedp.Click(`#verify`),
		chromedp.WaitVisible(`#headline`),
	); err != nil {
		t.Fatalf("complaint's code: %v", err)
	}
	waiting := e.waitStatus(id, "in_progress", 30*time.Second)
	if d, _ := waiting["details"].(map[string]any); d["concerns"] != earlier || d["text"] != complaint {
		t.Errorf("the complaint's details: %v", waiting["details"])
	}
	if err := chromedp.Run(ctx,
		chromedp.Navigate(e.base+"/privacy/requests/"+id),
		chromedp.WaitVisible(`#headline`),
		chromedp.Text(`#now`, &now),
	); err != nil {
		t.Fatalf("waiting complaint: %v", err)
	}
	if !strings.Contains(now, "Our staff are looking into it") {
		t.Errorf("a complaint waiting for staff says %q", now)
	}
	var page string
	if err := chromedp.Run(ctx, chromedp.OuterHTML(`html`, &page)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(page, `id="reply"`) {
		t.Error("a reply section before staff answered")
	}

	// Staff answer; markup in the answer is text on the page.
	reply := "We are sorry: the answer was late.\n\nYour card transactions are in <b>transactions.json</b>."
	if code, got := e.call("POST", "/api/v1/requests/"+id+"/answer", staffToken("approver"), map[string]any{"answer": reply}); code != http.StatusOK {
		t.Fatalf("answer: %d %v", code, got)
	}
	e.waitStatus(id, "completed", 30*time.Second)
	var title, shown, html, headline string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(e.base+"/privacy/requests/"+id),
		chromedp.WaitVisible(`#answer`),
		chromedp.Text(`#headline`, &headline),
		chromedp.Text(`#reply-title`, &title),
		chromedp.Text(`#answer`, &shown),
		chromedp.InnerHTML(`#answer`, &html),
	); err != nil {
		t.Fatalf("answered complaint: %v", err)
	}
	if headline != "Done" || title != "Our reply to your complaint" || shown != reply {
		t.Errorf("answered: headline %q, title %q, answer %q", headline, title, shown)
	}
	if strings.Contains(html, "<b>") || !strings.Contains(html, "&lt;b&gt;transactions.json&lt;/b&gt;") {
		t.Errorf("the answer is not escaped: %s", html)
	}
	centerShot(t, ctx, "status-answer.png")

	// An explain request's text is limited as the API's is (in bytes:
	// 3000 Chinese characters are 9000), and told in words; within the
	// limit it is filed.
	c := newCenterClient(t, e.base)
	tooLong := strings.Repeat("为什么", 1000)
	status, _, page := c.post("/privacy/lang/en?back=/privacy/webank/explain", "/privacy/webank/explain",
		url.Values{"email": {"demo-user-6@example.com"}, "text": {tooLong}})
	if status != http.StatusBadRequest || !strings.Contains(page, `id="text-error">This is too long: at most 8000 letters (about 2666 Chinese characters).`) ||
		!strings.Contains(page, tooLong) {
		t.Errorf("a too long explain request: %d\n%.600s", status, page)
	}
	status, path, page := c.post("/privacy/webank/explain", "/privacy/webank/explain",
		url.Values{"email": {"demo-user-6@example.com"}, "text": {"Why was my loan limit lowered?\r\nIt was cut in half."}})
	if status != http.StatusOK || !strings.HasSuffix(path, "/verify") {
		t.Fatalf("explain filed: %d at %s\n%.400s", status, path, page)
	}
	explainID := strings.TrimSuffix(strings.TrimPrefix(path, "/privacy/requests/"), "/verify")
	if _, got := e.call("GET", "/api/v1/requests/"+explainID, testToken, nil); got["type"] != "explain" {
		t.Errorf("the explain request: %v", got)
	} else if d, _ := got["details"].(map[string]any); d["text"] != "Why was my loan limit lowered?\nIt was cut in half." {
		t.Errorf("the explain request's text is stored as %q", d["text"])
	}
}

// TestPrivacyCenterTransferShowsReceivers: the transfer form, in Chinese,
// lists the product's receiving companies with their purpose and legal
// basis in the page's language; choosing none is told per field; the
// transfer filed in the center is pushed to the chosen company, whose name
// the status page shows (and no download). A product with no receiving
// company says so and has no transfer form.
func TestPrivacyCenterTransferShowsReceivers(t *testing.T) {
	t.Parallel()
	rc := newTransferReceiver(t)
	e := setupE2E(t, false, "")
	yaml := demo.ExtrasYAML(e.bankURL) + demo.NewTypesYAML(rc.srv.URL+"/datarights/transfers")
	// The receiver's HTTPS certificate is checked against its own CA.
	yaml = strings.Replace(yaml, "      timeout: 30s\n", "      timeout: 30s\n    ca_file: "+rc.caFile(t)+"\n", 1)
	e.appendConfig(t, yaml)
	base := e.getenv
	e.getenv = func(k string) string {
		if k == "DEMO_TRANSFER_SECRET" {
			return transferSecret
		}
		return base(k)
	}
	e.start()
	const email = "demo-user-3@example.com"

	// WeChat transfers to no one (partner_wealth is WeBank's only).
	if a := e.do("GET", e.base+"/privacy/wechat", "", "", ""); a.status != http.StatusOK || !strings.Contains(string(a.body), `id="no-receivers"`) ||
		strings.Contains(string(a.body), `id="file-transfer"`) {
		t.Errorf("a product without receivers: %d\n%.600s", a.status, a.body)
	}
	if a := e.do("GET", e.base+"/privacy/wechat/transfer", "", "", ""); a.status != http.StatusNotFound {
		t.Errorf("the transfer form of a product without receivers: %d", a.status)
	}
	// The English page gives the receiver's purpose in English.
	if a := e.do("GET", e.base+"/privacy/webank/transfer", "", "", "", "Accept-Language", "en"); !strings.Contains(string(a.body), "To open a wealth-management account for you and serve it.") {
		t.Errorf("the English transfer form:\n%.2000s", a.body)
	}

	ctx := browserFor(t, 3*time.Minute)
	noScript(t, ctx)
	var label, purpose, basis, receiverErr string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(e.base+"/privacy/lang/zh-CN?back=/privacy/webank"),
		chromedp.WaitVisible(`#file-transfer`),
		chromedp.Click(`#file-transfer`),
		chromedp.WaitVisible(`#receiver-partner_wealth`),
		chromedp.Text(`#receivers .receiver strong`, &label),
		chromedp.Text(`#receiver-partner_wealth-purpose`, &purpose),
		chromedp.Text(`#receiver-partner_wealth-basis`, &basis),
		chromedp.SendKeys(`#email`, email),
		chromedp.Click(`#submit`),
		chromedp.WaitVisible(`#receiver-error`),
		chromedp.Text(`#receiver-error`, &receiverErr),
	); err != nil {
		t.Fatalf("transfer form: %v", err)
	}
	if label != "示例理财公司 (Example Wealth Management)" || purpose != "为您开立理财账户并提供理财服务。" || basis != "《个人信息保护法》第四十五条：应您的请求转移。" {
		t.Errorf("the receiver reads %q / %q / %q", label, purpose, basis)
	}
	if receiverErr != "请选择接收您个人信息的机构。" {
		t.Errorf("no receiver chosen is told as %q", receiverErr)
	}
	if err := chromedp.Run(ctx,
		chromedp.Navigate(e.base+"/privacy/webank/transfer"),
		chromedp.WaitVisible(`#receiver-partner_wealth`),
		chromedp.SendKeys(`#email`, email),
		chromedp.Click(`#receiver-partner_wealth`),
	); err != nil {
		t.Fatal(err)
	}
	centerShot(t, ctx, "form-transfer-zh.png")
	var id string
	if err := chromedp.Run(ctx,
		chromedp.Click(`#submit`),
		chromedp.WaitVisible(`#code`),
		chromedp.Text(`#reference`, &id),
	); err != nil {
		t.Fatalf("transfer filed: %v", err)
	}
	m := codeRE.FindStringSubmatch(e.smtp.WaitForMessage(t, id+".code.1@datarights", 30*time.Second).Text)
	if m == nil {
		t.Fatal("no code in the transfer's email")
	}
	if err := chromedp.Run(ctx,
		chromedp.SendKeys(`#code`, m[1]),
		chromedp.Click(`#verify`),
		chromedp.WaitVisible(`#headline`),
	); err != nil {
		t.Fatalf("transfer's code: %v", err)
	}
	e.waitStatus(id, "completed", 90*time.Second)
	select {
	case got := <-rc.got:
		if got != id {
			t.Errorf("the receiver got request %s, want %s", got, id)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("the receiver got nothing; refused: %v", rc.bad)
	}
	var receiver, next, page string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(e.base+"/privacy/requests/"+id),
		chromedp.WaitVisible(`#receiver`),
		chromedp.Text(`#receiver`, &receiver),
		chromedp.Text(`#next`, &next),
		chromedp.OuterHTML(`html`, &page),
	); err != nil {
		t.Fatalf("transfer's status: %v", err)
	}
	if receiver != "示例理财公司 (Example Wealth Management)" || !strings.Contains(next, "接收方已收到") || strings.Contains(page, `id="copy"`) {
		t.Errorf("the transferred request: receiver %q, next %q, a copy section %v", receiver, next, strings.Contains(page, `id="copy"`))
	}
	centerShot(t, ctx, "status-transfer-zh.png")
}
