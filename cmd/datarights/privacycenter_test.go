package main

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/datarights/datarights/exporters/smtptest"
)

// centerShot saves a privacy center screenshot to docs/privacy-center/name
// when DATARIGHTS_SCREENSHOTS is set; otherwise it only checks one can be
// taken.
func centerShot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var png []byte
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(1024, 800), chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if os.Getenv("DATARIGHTS_SCREENSHOTS") == "" {
		return
	}
	if err := os.WriteFile(filepath.Join("..", "..", "docs", "privacy-center", name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// mailTo waits for the first email to address whose text satisfies ok.
func mailTo(t *testing.T, srv *smtptest.Server, address string, ok func(smtptest.Message) bool) smtptest.Message {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		msgs := srv.Messages()
		for _, m := range msgs {
			for _, to := range m.To {
				if strings.EqualFold(to, address) && ok(m) {
					return m
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no email to %s after 60s", address)
		}
		// Each new message wakes WaitForMessages; wait for one more.
		srv.WaitForMessages(t, len(msgs)+1, time.Until(deadline))
	}
}

// codeFor reads the verification code emailed to address.
func codeFor(t *testing.T, srv *smtptest.Server, address string) string {
	t.Helper()
	m := mailTo(t, srv, address, func(m smtptest.Message) bool { return codeRE.MatchString(m.Text) })
	return codeRE.FindStringSubmatch(m.Text)[1]
}

func otherCode(code string) string {
	if code == "00000000" {
		return "11111111"
	}
	return "00000000"
}

// accessCookie returns the browser's access-key cookie for request id.
func accessCookie(t *testing.T, ctx context.Context, base, id string) *network.Cookie {
	t.Helper()
	var cookies []*network.Cookie
	if err := chromedp.Run(ctx, chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		cookies, err = network.GetCookies().WithURLs([]string{base + "/privacy/requests/" + id}).Do(ctx)
		return err
	})); err != nil {
		t.Fatal(err)
	}
	for _, c := range cookies {
		if c.Name == "dr_access" {
			return c
		}
	}
	return nil
}

// TestPrivacyCenterCopyInEnglish: with JavaScript off, a person finds the
// product, files a copy request with their email, is told a wrong code
// (in words, with the attempts left), enters the emailed code and lands on
// the status page, which says in words where the request is and by when it
// is answered in China Standard Time. The access key is in an HttpOnly,
// SameSite=Strict cookie scoped to the request's path, never in the URL.
// Once done, the page offers the download and the password, once. The
// cookie opens no one else's request; every page has its policy; a form
// without its CSRF token is refused.
func TestPrivacyCenterCopyInEnglish(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, false, "")
	e.appendConfig(t, "smtp:\n  attachment_limit_bytes: 1024\n") // a link, not an attachment
	e.start()
	const email = "demo-user-4@example.com"
	ctx := browserFor(t, 3*time.Minute)
	noScript(t, ctx)

	var lead, answer string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(e.base+"/privacy/lang/en?back=/"),
		chromedp.WaitVisible(`#product-webank`),
		chromedp.Text(`.lead`, &lead),
	); err != nil {
		t.Fatalf("landing: %v", err)
	}
	if !strings.Contains(lead, "copy, correct or delete") {
		t.Errorf("the landing page says %q", lead)
	}
	centerShot(t, ctx, "landing.png")
	if err := chromedp.Run(ctx,
		chromedp.Click(`#product-webank`),
		chromedp.WaitVisible(`#file-copy`),
		chromedp.Text(`#answer-time`, &answer),
	); err != nil {
		t.Fatalf("product page: %v", err)
	}
	if answer != "We answer within 15 working days of confirming your email address." {
		t.Errorf("the product page promises %q", answer)
	}
	centerShot(t, ctx, "product.png")

	// An address that is not one: told in words, nothing filed.
	var emailErr string
	if err := chromedp.Run(ctx,
		chromedp.Click(`#file-copy`),
		chromedp.WaitVisible(`#email`),
		chromedp.SendKeys(`#email`, "not-an-address"),
		chromedp.Click(`#submit`),
		chromedp.WaitVisible(`#email-error`),
		chromedp.Text(`#email-error`, &emailErr),
	); err != nil {
		t.Fatalf("form: %v", err)
	}
	if emailErr != "Enter a valid email address." {
		t.Errorf("a bad address is told as %q", emailErr)
	}
	if err := chromedp.Run(ctx,
		chromedp.SetValue(`#email`, email),
	); err != nil {
		t.Fatal(err)
	}
	centerShot(t, ctx, "form.png")
	if err := chromedp.Run(ctx,
		chromedp.Click(`#submit`),
		chromedp.WaitVisible(`#code`),
	); err != nil {
		t.Fatalf("submit: %v", err)
	}
	var id, location string
	if err := chromedp.Run(ctx, chromedp.Text(`#reference`, &id), chromedp.Location(&location)); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(location, "/privacy/requests/"+id+"/verify") {
		t.Fatalf("after filing the browser is at %s (reference %q)", location, id)
	}
	code := codeFor(t, e.smtp, email)

	// A wrong code first.
	var wrong string
	if err := chromedp.Run(ctx,
		chromedp.SendKeys(`#code`, otherCode(code)),
		chromedp.Click(`#verify`),
		chromedp.WaitVisible(`#code-error`),
		chromedp.Text(`#code-error`, &wrong),
	); err != nil {
		t.Fatalf("wrong code: %v", err)
	}
	if wrong != "The code is not correct. 4 attempts left." {
		t.Errorf("a wrong code is told as %q", wrong)
	}
	centerShot(t, ctx, "verify-wrong-code.png")

	var headline, deadline, next string
	if err := chromedp.Run(ctx,
		chromedp.SendKeys(`#code`, code),
		chromedp.Click(`#verify`),
		chromedp.WaitVisible(`#headline`),
		chromedp.Text(`#headline`, &headline),
		chromedp.Text(`#deadline`, &deadline),
		chromedp.Text(`#next`, &next),
		chromedp.Location(&location),
	); err != nil {
		t.Fatalf("verify: %v", err)
	}
	_, api := e.call("GET", "/api/v1/requests/"+id, testToken, nil)
	lastDay, _ := api["last_day"].(string)
	if lastDay == "" || deadline != lastDay+", end of the day (China Standard Time)" {
		t.Errorf("the deadline reads %q (last day %q)", deadline, lastDay)
	}
	for _, raw := range []string{"verified", "in_progress", "assembling", "delivering", "completed"} {
		if strings.Contains(headline+next, raw) {
			t.Errorf("the page shows the status name %s: %q / %q", raw, headline, next)
		}
	}
	if headline == "" || next == "" {
		t.Errorf("the status is not in words: %q / %q", headline, next)
	}
	if !strings.HasSuffix(location, "/privacy/requests/"+id) {
		t.Errorf("after the code the browser is at %s", location)
	}
	centerShot(t, ctx, "status.png")

	// The key: an HttpOnly, SameSite=Strict cookie for this request's
	// pages only, not in the URL.
	c := accessCookie(t, ctx, e.base, id)
	if c == nil {
		t.Fatal("no access cookie")
	}
	if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict || c.Path != "/privacy/requests/"+id || c.Secure {
		t.Errorf("access cookie: HttpOnly %v, SameSite %s, Path %s, Secure %v (plain http)", c.HTTPOnly, c.SameSite, c.Path, c.Secure)
	}
	if strings.Contains(location, c.Value) {
		t.Errorf("the access key is in the URL %s", location)
	}
	key := c.Value
	if code, _ := e.call("GET", "/api/v1/self-service/requests/"+id, key, nil); code != http.StatusOK {
		t.Errorf("the cookie's key does not open the JSON status: %d", code)
	}

	// Done: the download and the password, once.
	e.waitStatus(id, "completed", 90*time.Second)
	var password, download, href string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(e.base+"/privacy/requests/"+id),
		chromedp.WaitVisible(`#download`),
		chromedp.Text(`#headline`, &headline),
		chromedp.Text(`#download`, &download),
		chromedp.AttributeValue(`#download`, "href", &href, nil),
	); err != nil {
		t.Fatalf("completed page: %v", err)
	}
	if headline != "Done" || !strings.HasPrefix(download, "Download ") {
		t.Errorf("completed: headline %q, download %q", headline, download)
	}
	centerShot(t, ctx, "status-completed.png")
	if err := chromedp.Run(ctx,
		chromedp.Click(`#reveal`),
		chromedp.WaitVisible(`#password`),
		chromedp.Text(`#password`, &password),
	); err != nil {
		t.Fatalf("reveal: %v", err)
	}
	if len(password) != 29 {
		t.Fatalf("password %q", password)
	}

	// The email and the report name the store and its datasets for
	// people, count in words and give local times.
	done := mailTo(t, e.smtp, email, func(m smtptest.Message) bool { return m.MessageID == id+".completion@datarights" })
	if !strings.Contains(done.Text, "- WeBank core banking: ") || strings.Contains(done.Text, "demo_bank") ||
		!strings.Contains(done.Text, "China Standard Time") || strings.Contains(done.Text, " 1 records") {
		t.Errorf("the completion email:\n%s", done.Text)
	}
	link, err := url.Parse(href)
	if err != nil {
		t.Fatal(err)
	}
	zip := e.do("GET", e.base+link.Path, "", "", "")
	if zip.status != http.StatusOK {
		t.Fatalf("download: %d", zip.status)
	}
	report := string(open7z(t, zip.body, password)["summary.html"])
	if !strings.Contains(report, "WeBank core banking <code>demo_bank</code>") || !strings.Contains(report, "profile <code>users</code>") {
		t.Errorf("the report does not name the store and datasets for people")
	}
	if utc := regexp.MustCompile(`<td>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d`).FindString(report); utc != "" {
		t.Errorf("the report shows a timestamp as stored (%s…), not in China Standard Time", utc)
	}
	var again string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(e.base+"/privacy/requests/"+id),
		chromedp.WaitVisible(`#password-shown`),
		chromedp.Text(`body`, &again),
	); err != nil {
		t.Fatalf("second visit: %v", err)
	}
	if strings.Contains(again, password) {
		t.Error("the password is shown twice")
	}

	// The old emailed link still leads here.
	if err := chromedp.Run(ctx,
		chromedp.Navigate(e.base+"/status/"+id),
		chromedp.WaitVisible(`#headline`),
		chromedp.Location(&location),
	); err != nil {
		t.Fatalf("old link: %v", err)
	}
	if !strings.HasSuffix(location, "/privacy/requests/"+id) {
		t.Errorf("/status/{id} leads to %s", location)
	}

	// Another person's request: the browser does not send the cookie
	// there (its path), and the key sent there anyway opens nothing.
	code2, filed := e.call("POST", "/api/v1/self-service/requests", "", map[string]any{
		"product": "webank", "type": "access", "email": "demo-user-22@example.com", "locale": "en"})
	if code2 != http.StatusAccepted {
		t.Fatalf("second request: %d %v", code2, filed)
	}
	other := filed["id"].(string)
	var otherPage string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(e.base+"/privacy/requests/"+other),
		chromedp.WaitVisible(`#access-key`),
		chromedp.Text(`body`, &otherPage),
	); err != nil {
		t.Fatalf("another's request: %v", err)
	}
	if strings.Contains(otherPage, "Waiting for your code") || strings.Contains(otherPage, "demo-user-22") {
		t.Errorf("another's request shows:\n%s", otherPage)
	}
	a := e.do("GET", e.base+"/privacy/requests/"+other, "", "", "", "Cookie", "dr_access="+key)
	if a.status != http.StatusNotFound || strings.Contains(string(a.body), `id="headline"`) {
		t.Errorf("another's request with my key: %d\n%.500s", a.status, a.body)
	}

	// Every page has its policy; no script, styles only from ourselves.
	for _, path := range []string{"/", "/privacy/webank", "/privacy/webank/copy", "/privacy/requests/" + id + "/verify", "/privacy/requests/" + id, "/privacy/no-such"} {
		a := e.do("GET", e.base+path, "", "", "")
		csp := a.header.Get("Content-Security-Policy")
		if !a.isHTML() || !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "style-src 'self'") ||
			!strings.Contains(csp, "form-action 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "script") {
			t.Errorf("%s: %d, Content-Security-Policy %q", path, a.status, csp)
		}
	}
	if a := e.do("GET", e.base+"/", "", "", "", "Accept-Language", "en-GB,en;q=0.8"); a.header.Get("Content-Language") != "en" {
		t.Errorf("Accept-Language en: Content-Language %q", a.header.Get("Content-Language"))
	}

	// A post without the form's token (another site's form) is refused
	// and nothing is filed.
	form := url.Values{"email": {"demo-user-23@example.com"}}.Encode()
	a = e.do("POST", e.base+"/privacy/webank/copy", "", "application/x-www-form-urlencoded", form, "Cookie", "dr_csrf="+strings.Repeat("a", 43))
	if a.status != http.StatusForbidden {
		t.Errorf("a post without its CSRF token: %d", a.status)
	}
	form = url.Values{"email": {"demo-user-23@example.com"}, "csrf": {strings.Repeat("a", 43)}}.Encode()
	a = e.do("POST", e.base+"/privacy/webank/copy", "", "application/x-www-form-urlencoded", form,
		"Cookie", "dr_csrf="+strings.Repeat("a", 43), "Sec-Fetch-Site", "cross-site")
	if a.status != http.StatusForbidden {
		t.Errorf("a cross-site post: %d", a.status)
	}
	var n int
	if err := e.db.QueryRow(context.Background(), "SELECT count(*) FROM requests").Scan(&n); err != nil || n != 2 {
		t.Errorf("%d requests filed (%v), want 2", n, err)
	}
}

// TestPrivacyCenterWithdrawConsentInChinese: the same door in zh-CN: a
// person withdraws a consent; the form, a wrong code's error, the status
// page and its deadline speak Chinese.
func TestPrivacyCenterWithdrawConsentInChinese(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "")
	const email = "demo-user-3@example.com"
	ctx := browserFor(t, 3*time.Minute)
	noScript(t, ctx)

	var title string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(e.base+"/privacy/lang/zh-CN?back=/privacy/webank"),
		chromedp.WaitVisible(`#file-withdraw_consent`),
		chromedp.Text(`h1`, &title),
	); err != nil {
		t.Fatalf("product page: %v", err)
	}
	if title != "您在WeBank 微众银行的权利" {
		t.Errorf("the product page's title is %q", title)
	}
	centerShot(t, ctx, "product-zh.png")

	// Nothing chosen: told in Chinese.
	var purposesErr string
	if err := chromedp.Run(ctx,
		chromedp.Click(`#file-withdraw_consent`),
		chromedp.WaitVisible(`#purpose-personalised_ads`),
		chromedp.SendKeys(`#email`, email),
		chromedp.Click(`#submit`),
		chromedp.WaitVisible(`#purposes-error`),
		chromedp.Text(`#purposes-error`, &purposesErr),
	); err != nil {
		t.Fatalf("form: %v", err)
	}
	if purposesErr != "请至少选择一项要撤回的同意。" {
		t.Errorf("no purpose is told as %q", purposesErr)
	}
	if err := chromedp.Run(ctx,
		chromedp.Click(`#purpose-personalised_ads`),
	); err != nil {
		t.Fatal(err)
	}
	centerShot(t, ctx, "form-zh.png")
	if err := chromedp.Run(ctx,
		chromedp.Click(`#submit`),
		chromedp.WaitVisible(`#code`),
	); err != nil {
		t.Fatalf("submit: %v", err)
	}
	code := codeFor(t, e.smtp, email)
	var wrong, errorLine string
	if err := chromedp.Run(ctx,
		chromedp.SendKeys(`#code`, otherCode(code)),
		chromedp.Click(`#verify`),
		chromedp.WaitVisible(`#code-error`),
		chromedp.Text(`#code-error`, &wrong),
		chromedp.Text(`#error`, &errorLine),
	); err != nil {
		t.Fatalf("wrong code: %v", err)
	}
	if wrong != "验证码不正确，还可尝试 4 次。" || errorLine != wrong {
		t.Errorf("a wrong code is told as %q / %q", wrong, errorLine)
	}
	centerShot(t, ctx, "verify-wrong-code-zh.png")

	var id, deadline string
	if err := chromedp.Run(ctx,
		chromedp.Text(`#reference`, &id),
		chromedp.SendKeys(`#code`, code),
		chromedp.Click(`#verify`),
		chromedp.WaitVisible(`#headline`),
		chromedp.Text(`#deadline`, &deadline),
	); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !strings.HasSuffix(deadline, " 24:00 前（北京时间）") {
		t.Errorf("the deadline reads %q", deadline)
	}
	e.waitStatus(id, "completed", 90*time.Second)
	var headline, now string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(e.base+"/privacy/requests/"+id),
		chromedp.WaitVisible(`#headline`),
		chromedp.Text(`#headline`, &headline),
		chromedp.Text(`#now`, &now),
	); err != nil {
		t.Fatalf("status: %v", err)
	}
	if headline != "已完成" || !strings.Contains(now, "我们已完成您的请求") {
		t.Errorf("completed in zh-CN: %q / %q", headline, now)
	}
	centerShot(t, ctx, "status-completed-zh.png")
	done := mailTo(t, e.smtp, email, func(m smtptest.Message) bool { return m.MessageID == id+".completion@datarights" })
	if !strings.Contains(done.Text, "个性化广告推荐") {
		t.Errorf("the answer is not in Chinese:\n%s", done.Text)
	}
}

// centerClient is a browser without JavaScript or rendering: a cookie jar
// and the form's CSRF token read from the page.
type centerClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newCenterClient(t *testing.T, base string) *centerClient {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &centerClient{t: t, base: base, c: &http.Client{Jar: jar}}
}

var csrfFieldRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// get returns the page at path and its form's CSRF token.
func (c *centerClient) get(path string) (int, string, string) {
	c.t.Helper()
	resp, err := c.c.Get(c.base + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	token := ""
	if m := csrfFieldRE.FindSubmatch(body); m != nil {
		token = string(m[1])
	}
	return resp.StatusCode, string(body), token
}

// post submits a form from the page at from to path; it follows the
// redirect and returns the final status, path and page.
func (c *centerClient) post(from, path string, form url.Values) (int, string, string) {
	c.t.Helper()
	_, _, token := c.get(from)
	form.Set("csrf", token)
	resp, err := c.c.PostForm(c.base+path, form)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Request.URL.Path, string(body)
}

// TestPrivacyCenterSharesLimitsAndCorrects: the privacy center goes through
// the self-service limits the JSON API counts (one code per mailbox an hour
// here): a request filed through the API leaves none for the same mailbox
// in the center, which says so in words (429); and a correction filed in
// the center is carried out and answered with the field's name for people.
func TestPrivacyCenterSharesLimitsAndCorrects(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "self_service:\n  limits:\n    code_emails_per_hour: 1\n")
	if code, body := e.call("POST", "/api/v1/self-service/requests", "", map[string]any{
		"product": "webank", "type": "access", "email": "demo-user-6@example.com", "locale": "en"}); code != http.StatusAccepted {
		t.Fatalf("API submit = %d %v", code, body)
	}
	c := newCenterClient(t, e.base)
	status, _, page := c.post("/privacy/lang/en?back=/privacy/webank/copy", "/privacy/webank/copy", url.Values{"email": {"demo-user-6@example.com"}})
	if status != http.StatusTooManyRequests || !strings.Contains(page, "Too many attempts for this address") {
		t.Errorf("the center past the API's limit: %d\n%.400s", status, page)
	}

	const email = "demo-user-7@example.com"
	status, path, page := c.post("/privacy/webank/correct", "/privacy/webank/correct", url.Values{"email": {email}, "correct.city": {"Hangzhou"}})
	if status != http.StatusOK || !strings.HasSuffix(path, "/verify") {
		t.Fatalf("correction filed: %d at %s\n%.400s", status, path, page)
	}
	id := strings.TrimSuffix(strings.TrimPrefix(path, "/privacy/requests/"), "/verify")
	status, path, page = c.post(path, path, url.Values{"code": {codeFor(t, e.smtp, email)}})
	if status != http.StatusOK || path != "/privacy/requests/"+id || !strings.Contains(page, `id="headline"`) {
		t.Fatalf("verified: %d at %s\n%.400s", status, path, page)
	}
	e.waitStatus(id, "completed", 90*time.Second)
	done := mailTo(t, e.smtp, email, func(m smtptest.Message) bool { return m.MessageID == id+".completion@datarights" })
	if !strings.Contains(done.Text, "we corrected: city.") || !strings.Contains(done.Text, "已按您的要求更正以下信息：城市。") {
		t.Errorf("the answer:\n%s", done.Text)
	}
	if city := e.bankUsers()["demo-user-7"]["city"]; city != "Hangzhou" {
		t.Errorf("city = %v", city)
	}
}
