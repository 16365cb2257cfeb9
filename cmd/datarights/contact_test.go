package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/datarights/datarights/demo"
)

// TestSelfServiceEmailChangeIsProved: a verified self-service request to
// correct the email on file does nothing until the new address proves
// itself with the code sent to it; the address on file is told; only the
// requester's access key can enter the code.
func TestSelfServiceEmailChangeIsProved(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "")
	before := e.bankUsers()
	const newEmail = "somewhere-else-91c2@example.org"
	code, body := e.call("POST", "/api/v1/self-service/requests", "", map[string]any{
		"product": "webank", "type": "correct", "email": demo.Email(8), "locale": "en",
		"corrections": map[string]string{"email": newEmail}})
	if code != http.StatusAccepted {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	verifyMsg := e.smtp.WaitForMessages(t, 1, 30*time.Second)[0]
	code, body = e.call("POST", "/api/v1/self-service/requests/"+id+"/verify", "", map[string]string{"code": codeRE.FindStringSubmatch(verifyMsg.Text)[1]})
	if code != http.StatusOK {
		t.Fatalf("verify = %d %v", code, body)
	}
	key := body["access_key"].(string)
	e.waitStatus(id, "awaiting_contact", 30*time.Second)

	contactMsg := e.smtp.WaitForMessage(t, id+".contact.email.1@datarights", 30*time.Second)
	if !slices.Equal(contactMsg.To, []string{newEmail}) || codeRE.MatchString(contactMsg.Subject) {
		t.Errorf("contact code to %v, subject %q", contactMsg.To, contactMsg.Subject)
	}
	notice := e.smtp.WaitForMessage(t, id+".contact-change@datarights", 30*time.Second)
	if !slices.Equal(notice.To, []string{demo.Email(8)}) || strings.Contains(notice.Text, newEmail) {
		t.Errorf("the address on file was not told (to %v):\n%s", notice.To, notice.Text)
	}
	contactCode := codeRE.FindStringSubmatch(contactMsg.Text)[1]
	path := "/api/v1/self-service/requests/" + id + "/contact/confirm"
	if code, _ := e.call("POST", path, "", map[string]string{"code": contactCode}); code != http.StatusNotFound {
		t.Errorf("confirm without the access key = %d, want 404", code)
	}
	if code, _ := e.call("POST", path, "not-the-key", map[string]string{"code": contactCode}); code != http.StatusNotFound {
		t.Errorf("confirm with a wrong key = %d, want 404", code)
	}
	e.checkBankCorrected(before, "", nil)
	if code, out := e.call("GET", "/api/v1/self-service/requests/"+id, key, nil); code != http.StatusOK || out["status"] != "awaiting_contact" {
		t.Errorf("status = %d %v", code, out)
	}
	// The requester confirms on the status page, in a real browser: a
	// wrong code is told, the right one lets the request go on.
	wrong := "00000000"
	if contactCode == wrong {
		wrong = "11111111"
	}
	ctx := browser(t)
	var afterWrong string
	err := chromedp.Run(ctx,
		chromedp.Navigate(e.base+"/privacy/lang/en?back=/status/"+id),
		chromedp.WaitVisible(`input[name="access_key"]`),
		chromedp.SendKeys(`input[name="access_key"]`, key),
		chromedp.Submit(`input[name="access_key"]`),
		chromedp.WaitVisible(`#contact-code-email`),
		chromedp.SendKeys(`#contact-code-email`, wrong),
		chromedp.Click(`#confirm-email`),
		chromedp.WaitVisible(`#error`),
		chromedp.Text(`#error`, &afterWrong),
	)
	if err != nil {
		t.Fatalf("status page: %v", err)
	}
	if !strings.Contains(afterWrong, "The code is not correct") {
		t.Errorf("after a wrong code the page says %q", afterWrong)
	}
	screenshot(t, ctx, "status-confirm-new-email.png")
	var status string
	err = chromedp.Run(ctx,
		chromedp.SendKeys(`#contact-code-email`, contactCode),
		chromedp.Click(`#confirm-email`),
		chromedp.WaitNotPresent(`#contact-code-email`),
		chromedp.Text(`#headline`, &status),
	)
	if err != nil {
		t.Fatalf("status page: %v", err)
	}
	if status == "Confirm your new address" {
		t.Errorf("after the right code the status is %s", status)
	}
	done := e.waitStatus(id, "completed", 60*time.Second)
	e.checkBankCorrected(before, "demo-user-8", map[string]string{"email": newEmail})
	if !hasAction(done, "contact.confirmed") || auditDetail(done, "contact.confirmed")["field"] != "email" {
		t.Errorf("audit = %v", auditActions(done))
	}
	if code, _ := e.call("POST", path, key, map[string]string{"code": contactCode}); code != http.StatusConflict {
		t.Errorf("a second confirmation = %d, want 409", code)
	}
}

// TestStaffCopyGoesOnlyToAConfirmedAddress: with the default
// intake.confirm_delivery_email, a staff ticket's copy waits until the
// requester reads back the code sent to the delivery email; nothing is
// read from the stores before.
func TestStaffCopyGoesOnlyToAConfirmedAddress(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "intake:\n  confirm_delivery_email: true\n")
	code, body := e.call("POST", "/api/v1/requests", testToken, copyTicket("demo-user-9"))
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	waiting := e.waitStatus(id, "awaiting_contact", 30*time.Second)
	if len(asSlice(waiting["tasks"])) != 0 {
		t.Fatalf("tasks before the address is proved: %v", waiting["tasks"])
	}
	msg := e.smtp.WaitForMessage(t, id+".contact.delivery_email.1@datarights", 30*time.Second)
	if !slices.Equal(msg.To, []string{"demo-user-9@example.com"}) || !strings.Contains(msg.Text, "read this code back") || len(msg.Attachments) != 0 {
		t.Errorf("code email to %v:\n%s", msg.To, msg.Text)
	}
	if code, out := e.call("POST", "/api/v1/requests/"+id+"/contact/confirm", staffToken("agent-webank"),
		map[string]string{"field": "delivery_email", "code": codeRE.FindStringSubmatch(msg.Text)[1]}); code != http.StatusOK {
		t.Fatalf("confirm = %d %v", code, out)
	}
	done := e.waitStatus(id, "completed", 60*time.Second)
	completion := e.smtp.WaitForMessage(t, id+".completion@datarights", 30*time.Second)
	if !slices.Equal(completion.To, []string{"demo-user-9@example.com"}) || len(completion.Attachments) != 1 {
		t.Errorf("copy to %v with %d attachments", completion.To, len(completion.Attachments))
	}
	if auditDetail(done, "contact.confirmed")["field"] != "delivery_email" || !strings.HasPrefix(auditActor(done, "contact.confirmed"), "staff:agent-webank") {
		t.Errorf("audit = %v", auditActions(done))
	}
}

func auditActor(body map[string]any, action string) string {
	for _, ev := range asSlice(body["audit"]) {
		if ev := ev.(map[string]any); ev["action"] == action {
			s, _ := ev["actor"].(string)
			return s
		}
	}
	return ""
}

// confirmNewEmail proves the new email of a staff correct ticket as its
// requester and agent would: the requester reads back the code sent to the
// new address, the agent enters it.
func (e *e2e) confirmNewEmail(t *testing.T, id string) {
	t.Helper()
	e.waitStatus(id, "awaiting_contact", 60*time.Second)
	msg := e.smtp.WaitForMessage(t, id+".contact.email.1@datarights", 30*time.Second)
	if code, out := e.call("POST", "/api/v1/requests/"+id+"/contact/confirm", staffToken("agent"),
		map[string]string{"field": "email", "code": codeRE.FindStringSubmatch(msg.Text)[1]}); code != http.StatusOK {
		t.Fatalf("confirm the new email = %d %v", code, out)
	}
}

// screenshot saves what the browser shows to docs/screenshots/name when
// DATARIGHTS_SCREENSHOTS is set (`DATARIGHTS_SCREENSHOTS=1 go test -run …`
// refreshes the committed ones); otherwise it only checks one can be taken.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if os.Getenv("DATARIGHTS_SCREENSHOTS") == "" {
		return
	}
	if err := os.WriteFile(filepath.Join("..", "..", "docs", "screenshots", name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
