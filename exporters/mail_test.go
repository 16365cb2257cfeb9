package exporters

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/exporters/smtptest"
	"github.com/datarights/datarights/rights"
)

const testFrom = "隐私团队 Privacy <privacy@bank.example>"

// testMessage returns a delivery message with a real export archive
// attached, and the archive's bytes.
func testMessage(t *testing.T, id string) (rights.Message, []byte) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "req-7.zip")
	_, err := BuildArchive(context.Background(), ArchiveInput{
		RequestID: "req-7", Product: "bank", Type: rights.TypeCopy, Locale: rights.LocaleZH,
		ReceivedAt: time.Now(), StagingDir: t.TempDir(),
	}, out)
	if err != nil {
		t.Fatal(err)
	}
	zipped, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return rights.Message{
		ID:      id,
		To:      "zhang.san@example.com",
		Subject: "您的个人信息副本已准备好 / Your personal information is ready",
		Text:    "您好，\n\n附件是您的个人信息副本。\nHello, attached is a copy of your personal information. " + strings.Repeat("A long line. ", 20) + "\n",
		HTML:    "<p>您好，</p><p>附件是您的个人信息副本。</p><p>Hello &amp; welcome.</p>",
		Attachments: []rights.Attachment{{
			Filename:    "个人信息 req-7.zip",
			ContentType: "application/zip",
			Open:        func() (io.ReadCloser, error) { return os.Open(out) },
		}},
	}, zipped
}

func newSMTPMailer(t *testing.T, srv *smtptest.Server) *SMTPMailer {
	t.Helper()
	m, err := NewMailer(srv.URL(), testFrom, "")
	if err != nil {
		t.Fatal(err)
	}
	mailer := m.(*SMTPMailer)
	mailer.rootCAs = srv.RootCAs()
	return mailer
}

// crlf undoes the CRLF line endings quoted-printable gives text on the wire.
func crlf(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

func TestSMTPMailerSends(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t)
	mailer := newSMTPMailer(t, srv)
	msg, zipped := testMessage(t, "req-7.export@datarights.test")

	if err := mailer.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	got := srv.WaitForMessages(t, 1, 5*time.Second)[0]

	if got.From != "privacy@bank.example" || len(got.To) != 1 || got.To[0] != "zhang.san@example.com" {
		t.Errorf("envelope from %q to %q", got.From, got.To)
	}
	if got.MessageID != msg.ID {
		t.Errorf("Message-ID = %q, want %q", got.MessageID, msg.ID)
	}
	if got.Subject != msg.Subject {
		t.Errorf("Subject = %q, want %q", got.Subject, msg.Subject)
	}
	from, err := got.Header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != "隐私团队 Privacy" || from[0].Address != "privacy@bank.example" {
		t.Errorf("From header = %v (%v)", from, err)
	}
	if crlf(got.Text) != msg.Text {
		t.Errorf("Text = %q, want %q", got.Text, msg.Text)
	}
	if crlf(got.HTML) != msg.HTML {
		t.Errorf("HTML = %q, want %q", got.HTML, msg.HTML)
	}
	if len(got.Attachments) != 1 {
		t.Fatalf("received %d attachments, want 1", len(got.Attachments))
	}
	a := got.Attachments[0]
	if a.Filename != "个人信息 req-7.zip" || a.ContentType != "application/zip" {
		t.Errorf("attachment %q of type %q", a.Filename, a.ContentType)
	}
	if !bytes.Equal(a.Data, zipped) {
		t.Errorf("the attachment (%d bytes) differs from the archive (%d bytes)", len(a.Data), len(zipped))
	}
	if got.TLS || got.Username != "" {
		t.Errorf("plain server: TLS %v, username %q", got.TLS, got.Username)
	}

	// A resend is the same message as far as the recipient can tell.
	if err := mailer.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	again := srv.WaitForMessages(t, 2, 5*time.Second)[1]
	if again.MessageID != msg.ID {
		t.Errorf("resend has Message-ID %q", again.MessageID)
	}
}

func TestSMTPMailerTemporaryFailure(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t)
	mailer := newSMTPMailer(t, srv)
	msg, _ := testMessage(t, "req-8.export@datarights.test")

	srv.FailNext(1)
	err := mailer.Send(context.Background(), msg)
	var smtpErr *SMTPError
	if !errors.As(err, &smtpErr) || !smtpErr.Temporary() || smtpErr.Code != 451 || smtpErr.Status != "4.3.0" {
		t.Fatalf("error = %v, want a temporary SMTPError", err)
	}
	if !strings.Contains(err.Error(), srv.Addr()) || strings.Contains(err.Error(), msg.To) {
		t.Errorf("error %q should name the server and not the recipient", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("a failed send delivered %d messages", n)
	}

	if err := mailer.Send(context.Background(), msg); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if got := srv.WaitForMessages(t, 1, 5*time.Second); got[0].MessageID != msg.ID {
		t.Errorf("retry delivered Message-ID %q", got[0].MessageID)
	}
}

func TestSMTPMailerAuth(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.WithAuth("mailer", "s3cret"))
	msg, _ := testMessage(t, "req-9.export@datarights.test")

	if err := newSMTPMailer(t, srv).Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	if got := srv.WaitForMessages(t, 1, 5*time.Second)[0]; got.Username != "mailer" {
		t.Errorf("authenticated as %q", got.Username)
	}

	wrong := newSMTPMailer(t, srv)
	wrong.Server.Password = "wrong-password"
	err := wrong.Send(context.Background(), msg)
	var smtpErr *SMTPError
	if !errors.As(err, &smtpErr) || smtpErr.Command != "AUTH" || smtpErr.Code != 535 || smtpErr.Temporary() {
		t.Errorf("wrong password: error = %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "wrong-password") {
		t.Errorf("the error shows the password: %v", err)
	}

	none := newSMTPMailer(t, srv)
	none.Server.Username = ""
	if err := none.Send(context.Background(), msg); !errors.As(err, &smtpErr) || smtpErr.Command != "MAIL FROM" {
		t.Errorf("no credentials: error = %v", err)
	}
}

func TestSMTPMailerTLS(t *testing.T) {
	t.Parallel()
	for _, opt := range []smtptest.Option{smtptest.WithSTARTTLS(), smtptest.WithImplicitTLS()} {
		srv := smtptest.NewServer(t, opt, smtptest.WithAuth("mailer", "s3cret"))
		msg, zipped := testMessage(t, "req-10.export@datarights.test")
		mailer := newSMTPMailer(t, srv)
		if err := mailer.Send(context.Background(), msg); err != nil {
			t.Fatalf("%s: %v", srv.URL(), err)
		}
		got := srv.WaitForMessages(t, 1, 5*time.Second)[0]
		if !got.TLS || got.Username != "mailer" || !bytes.Equal(got.Attachments[0].Data, zipped) {
			t.Errorf("%s: TLS %v, username %q", srv.URL(), got.TLS, got.Username)
		}

		// The certificate is checked: one nobody vouches for is refused.
		mailer.rootCAs = nil
		if err := mailer.Send(context.Background(), msg); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("%s: an untrusted certificate: error = %v", srv.URL(), err)
		}
		if n := len(srv.Messages()); n != 1 {
			t.Errorf("%s: %d messages delivered, want 1", srv.URL(), n)
		}
	}
}

func TestSMTPMailerTimeout(t *testing.T) {
	t.Parallel()
	// A server that accepts the connection and never says a word.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { conn.Close() })
		}
	}()
	server, err := config.ParseSMTPURL("smtp://" + l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := testMessage(t, "req-11.export@datarights.test")

	mailer := &SMTPMailer{Server: server, From: testFrom, Timeout: 200 * time.Millisecond}
	start := time.Now()
	err = mailer.Send(context.Background(), msg)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("after %s: error = %v, want a deadline error", time.Since(start), err)
	}

	mailer.Timeout = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start = time.Now()
	err = mailer.Send(ctx, msg)
	if !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
		t.Errorf("after %s: error = %v, want cancellation", time.Since(start), err)
	}
}

func TestMailRefusesBadMessages(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t)
	mailer := newSMTPMailer(t, srv)
	outbox := &FileOutbox{Dir: t.TempDir()}
	for _, m := range []rights.Mailer{mailer, outbox} {
		msg, _ := testMessage(t, "req-12.export@datarights.test")
		msg.To = "zhang.san@example.com\r\nBcc: everyone@example.com"
		err := m.Send(context.Background(), msg)
		if rights.ErrorCode(err) != rights.EInvalid || strings.Contains(err.Error(), "zhang.san") {
			t.Errorf("%T: a bad recipient: error = %v", m, err)
		}
		for _, id := range []string{"", "no-at-sign", "a b@c", "<x@y>", "x@y\r\nBcc: z@w"} {
			msg, _ := testMessage(t, id)
			if err := m.Send(context.Background(), msg); rights.ErrorCode(err) != rights.EInvalid {
				t.Errorf("%T: message ID %q: error = %v", m, id, err)
			}
		}
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d bad messages were sent", n)
	}
	if entries, _ := os.ReadDir(outbox.Dir); len(entries) != 0 {
		t.Errorf("%d bad messages were written", len(entries))
	}
}

func TestNewMailer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m, err := NewMailer("", "", dir)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := m.(*FileOutbox); !ok || o.Dir != dir || o.From != config.DefaultFrom {
		t.Errorf("NewMailer without a URL = %#v", m)
	}
	m, err = NewMailer("smtps://u:p@mail.example.com", "privacy@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := m.(*SMTPMailer); !ok || !s.Server.TLS || s.Server.Addr() != "mail.example.com:465" || s.Timeout != DefaultSMTPTimeout {
		t.Errorf("NewMailer(smtps://...) = %#v", m)
	}
	if _, err := NewMailer("ftp://user:hunter2@mail.example.com", "privacy@example.com", ""); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a bad URL: error = %v", err)
	}
	if _, err := NewMailer("", "not an address", dir); err == nil {
		t.Error("a bad sender was accepted")
	}
	if _, err := NewMailer("", "", ""); err == nil {
		t.Error("no URL and no outbox was accepted")
	}
}

func TestFileOutbox(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "outbox")
	m, err := NewMailer("", testFrom, dir)
	if err != nil {
		t.Fatal(err)
	}
	msg, zipped := testMessage(t, "req-7.export@datarights.test")
	if err := m.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	msg.Subject = "第二次 / second"
	if err := m.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "req-7.export@datarights.test.eml" {
		t.Fatalf("outbox holds %v, want one req-7.export@datarights.test.eml", entries)
	}
	raw, err := os.ReadFile(filepath.Join(dir, entries[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	got, err := smtptest.ParseMessage(raw)
	if err != nil {
		t.Fatalf("the .eml does not parse: %v", err)
	}
	if got.MessageID != msg.ID || got.Subject != "第二次 / second" || crlf(got.Text) != msg.Text {
		t.Errorf("eml: Message-ID %q, subject %q, text %q", got.MessageID, got.Subject, got.Text)
	}
	if to, err := got.Header.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != msg.To {
		t.Errorf("To header = %v (%v)", to, err)
	}
	if _, err := mail.ParseDate(got.Header.Get("Date")); err != nil {
		t.Errorf("Date header: %v", err)
	}
	if len(got.Attachments) != 1 || !bytes.Equal(got.Attachments[0].Data, zipped) {
		t.Error("the attachment did not survive")
	}

	// An ID that is no file name still stays inside the outbox.
	msg.ID = "../../etc/x@y"
	if err := m.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	entries, _ = os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("outbox holds %v", entries)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("outbox holds hidden file %s", e.Name())
		}
	}
}
