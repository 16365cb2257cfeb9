package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/datarights/datarights/api/apitest"
	"github.com/datarights/datarights/exporters/smtptest"
	"github.com/datarights/datarights/storage/s3test"
)

var downloadLinkRE = regexp.MustCompile(`https?://\S+/downloads/\S+|https?://\S+X-Amz-Signature=\S+`)

// withS3Exports configures archives kept in a versitygw bucket, delivered
// by link (anything over 1 KiB), links lasting ttl.
func withS3Exports(t *testing.T, links string, ttl time.Duration) (*e2e, *s3test.Server, string) {
	t.Helper()
	srv := s3test.NewServer(t)
	bucket := "exports"
	srv.CreateBucket(t, bucket)
	e := setupE2E(t, false, "")
	e.appendConfig(t, fmt.Sprintf(`
smtp:
  attachment_limit_bytes: 1024
exports:
  destination: s3
  links: %s
  link_ttl: %s
  sweep_interval: 1h
  s3:
    bucket: %s
    prefix: copies/
    endpoint: %s
    region: us-east-1
    path_style: true
    access_key_env: EXPORTS_ACCESS
    secret_key_env: EXPORTS_SECRET
`, links, ttl, bucket, srv.Endpoint()))
	base := e.getenv
	e.getenv = func(k string) string {
		switch k {
		case "EXPORTS_ACCESS":
			return srv.AccessKey()
		case "EXPORTS_SECRET":
			return srv.SecretKey()
		}
		return base(k)
	}
	e.start()
	return e, srv, bucket
}

// linkOf returns the download link in a completion email, pointed at the
// service under test when it is the service's own.
func (e *e2e) linkOf(t *testing.T, msg smtptest.Message) string {
	t.Helper()
	link := downloadLinkRE.FindString(msg.Text)
	if link == "" {
		t.Fatalf("no download link in:\n%s", msg.Text)
	}
	if _, path, ok := strings.Cut(link, "/downloads/"); ok {
		return e.base + "/downloads/" + path
	}
	return link
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	// The service's answers are checked against its description; a
	// presigned link is the object store's, not ours.
	client := apitest.Client(t)
	if strings.Contains(url, "X-Amz-Signature=") {
		client = http.DefaultClient
	}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// TestLinkDeliveryThroughS3: a copy too large to attach is kept in S3 and
// mailed as a link to the service, which streams it from S3 until the link
// expires (each download recorded); after that the link answers a friendly
// 410 page, the refusal is audited, and the sweep deletes the object.
func TestLinkDeliveryThroughS3(t *testing.T) {
	t.Parallel()
	e, srv, bucket := withS3Exports(t, "service", 4*time.Second)
	code, body := e.call("POST", "/api/v1/requests", testToken, copyTicket("demo-user-9"))
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	e.waitStatus(id, "completed", 60*time.Second)
	msg := e.smtp.WaitForMessage(t, id+".completion@datarights", 30*time.Second)
	if len(msg.Attachments) != 0 {
		t.Fatalf("a copy over the limit was attached")
	}
	if strings.Contains(msg.Text, "password:") || !strings.Contains(msg.Text, "customer service tells it to you") {
		t.Errorf("the email must say how to get the password, and not hold it:\n%s", msg.Text)
	}
	key := "copies/personal-information-" + id + ".zip"
	if _, err := srv.Client(t).HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		t.Fatalf("the archive is not in the bucket: %v", err)
	}

	link := e.linkOf(t, msg)
	code, data := get(t, link)
	if code != http.StatusOK {
		t.Fatalf("download before expiry = %d %s", code, data)
	}
	_, pw := e.call("POST", "/api/v1/requests/"+id+"/export/password", testToken, nil)
	files := open7z(t, data, pw["password"].(string))
	if _, ok := files["data/demo_bank/users.json"]; !ok {
		t.Errorf("downloaded archive holds %v", keys(files))
	}
	// Every download is recorded: a second one, whose reader hangs up
	// early (this archive is small enough to be in the socket's buffers
	// already, so the server sees it sent whole).
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var downloads []any
	waitFor(t, 10*time.Second, "both downloads to be recorded", func() bool {
		_, export := e.call("GET", "/api/v1/requests/"+id+"/export", testToken, nil)
		downloads = export["downloads"].([]any)
		return len(downloads) == 2
	})
	if d := downloads[0].(map[string]any); d["complete"] != true || d["bytes"] != float64(len(data)) {
		t.Errorf("first download = %v, want complete, %d bytes", d, len(data))
	}

	time.Sleep(5 * time.Second) // past the link's 4 seconds
	code, page := get(t, link)
	if code != http.StatusGone || !strings.Contains(string(page), "This download link has expired") {
		t.Fatalf("download after expiry = %d\n%s", code, page)
	}
	// The service's own sweep may get there first: it runs when its
	// process becomes River's leader, which on a loaded machine can happen
	// again at any moment. Either way the archive is purged once.
	p, _ := e.sweeper(t)
	if _, err := p.SweepExports(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, export := e.call("GET", "/api/v1/requests/"+id+"/export", testToken, nil); export["purged_at"] == nil {
		t.Fatalf("the expired archive is not purged: %v", export)
	}
	if _, err := srv.Client(t).HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err == nil {
		t.Error("the archive is still in the bucket after its link expired")
	}
	_, body = e.call("GET", "/api/v1/requests/"+id, testToken, nil)
	for _, want := range []string{"export.downloaded", "export.link_refused"} {
		if !hasAction(body, want) {
			t.Errorf("audit lacks %s: %v", want, auditActions(body))
		}
	}
	if n := countAction(body, "export.purged"); n != 1 {
		t.Errorf("export.purged %d times: %v", n, auditActions(body))
	}
	// Downloaded once: no "expired unused" notice.
	time.Sleep(300 * time.Millisecond)
	for _, m := range e.smtp.Messages() {
		if m.MessageID == id+".link_expired@datarights" {
			t.Error("a link-expired notice for a link that was used")
		}
	}
}

// TestPresignedLinkExpires: with presigned links the requester downloads
// straight from S3 (versitygw checks the signature and its expiry).
func TestPresignedLinkExpires(t *testing.T) {
	t.Parallel()
	e, _, _ := withS3Exports(t, "presigned", 3*time.Second)
	code, body := e.call("POST", "/api/v1/requests", testToken, copyTicket("demo-user-11"))
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	e.waitStatus(id, "completed", 60*time.Second)
	msg := e.smtp.WaitForMessage(t, id+".completion@datarights", 30*time.Second)
	link := e.linkOf(t, msg)
	if !strings.Contains(link, "X-Amz-Expires=3") {
		t.Fatalf("not a presigned link: %s", link)
	}
	code, data := get(t, link)
	if code != http.StatusOK || len(data) < 1024 {
		t.Fatalf("presigned download before expiry = %d (%d bytes)", code, len(data))
	}
	time.Sleep(4 * time.Second)
	if code, _ := get(t, link); code != http.StatusForbidden {
		t.Errorf("presigned download after expiry = %d, want 403", code)
	}
}

// TestAcknowledgementAndUnusedLinkNotice: with notify.acknowledgement the
// verified requester is told the request is in and its last day; a link
// never used expires, its copy is purged (from the local exports
// directory), and the requester is told.
func TestAcknowledgementAndUnusedLinkNotice(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, false, "")
	e.appendConfig(t, "notify:\n  acknowledgement: true\nsmtp:\n  attachment_limit_bytes: 1024\nexports:\n  link_ttl: 2s\n")
	e.start()
	code, body := e.call("POST", "/api/v1/requests", testToken, copyTicket("demo-user-19"))
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	done := e.waitStatus(id, "completed", 60*time.Second)
	ack := e.smtp.WaitForMessage(t, id+".acknowledgement@datarights", 30*time.Second)
	if lastDay := done["last_day"].(string); !strings.Contains(ack.Text, "We will answer by the end of "+lastDay) ||
		!strings.Contains(ack.Text, "15 working days") || !strings.Contains(ack.Subject, "We received your copy request") {
		t.Errorf("acknowledgement (last day %s): %s\n%s", lastDay, ack.Subject, ack.Text)
	}
	e.smtp.WaitForMessage(t, id+".completion@datarights", 30*time.Second)

	time.Sleep(3 * time.Second)
	// The service's own sweep may get there first (it runs when it
	// starts); either way the copy is purged once.
	p, _ := e.sweeper(t)
	if _, err := p.SweepExports(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, export := e.call("GET", "/api/v1/requests/"+id+"/export", testToken, nil)
	if export["purged_at"] == nil {
		t.Fatalf("the expired copy is not purged: %v", export)
	}
	notice := e.smtp.WaitForMessage(t, id+".link_expired@datarights", 30*time.Second)
	if !strings.Contains(notice.Text, "expired on") || !strings.Contains(notice.Text, "without being used") {
		t.Errorf("link-expired notice:\n%s", notice.Text)
	}
	if entries, _ := os.ReadDir(filepath.Join(filepath.Dir(e.configPath), "data", "exports")); len(entries) != 0 {
		t.Errorf("exports directory still holds %d files", len(entries))
	}
	// Another sweep does nothing more.
	if res, err := p.SweepExports(context.Background()); err != nil || res.Purged != 0 {
		t.Errorf("second sweep = %+v, %v", res, err)
	}
	_, body = e.call("GET", "/api/v1/requests/"+id, testToken, nil)
	if n := countAction(body, "export.purged"); n != 1 {
		t.Errorf("export.purged %d times: %v", n, auditActions(body))
	}
}
