package smtptest_test

import (
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/datarights/datarights/exporters/smtptest"
)

// A message as another mail library might write it: quoted-printable text,
// base64 HTML, and an attachment named the RFC 2231 way.
const handWritten = "From: a@example.com\r\n" +
	"To: b@example.com\r\n" +
	"Message-ID: <m1@example.com>\r\n" +
	"Subject: =?UTF-8?Q?=E4=BD=A0=E5=A5=BD?= world\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=outer\r\n" +
	"\r\n" +
	"--outer\r\n" +
	"Content-Type: multipart/alternative; boundary=inner\r\n" +
	"\r\n" +
	"--inner\r\n" +
	"Content-Type: text/plain; charset=UTF-8\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"caf=C3=A9 soft=\r\n" +
	"break\r\n" +
	"--inner\r\n" +
	"Content-Type: text/html; charset=UTF-8\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"PHA+aGk8L3A+\r\n" +
	"--inner--\r\n" +
	"--outer\r\n" +
	"Content-Type: application/zip\r\n" +
	"Content-Disposition: attachment; filename*=utf-8''%E6%96%87%E4%BB%B6.zip\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"UEsF\r\n" +
	"BgA=\r\n" +
	"--outer--\r\n"

func TestParseMessage(t *testing.T) {
	t.Parallel()
	m, err := smtptest.ParseMessage([]byte(handWritten))
	if err != nil {
		t.Fatal(err)
	}
	if m.MessageID != "m1@example.com" || m.Subject != "你好 world" {
		t.Errorf("Message-ID %q, subject %q", m.MessageID, m.Subject)
	}
	if m.Text != "café softbreak" || m.HTML != "<p>hi</p>" {
		t.Errorf("text %q, html %q", m.Text, m.HTML)
	}
	if len(m.Attachments) != 1 {
		t.Fatalf("%d attachments", len(m.Attachments))
	}
	if a := m.Attachments[0]; a.Filename != "文件.zip" || a.ContentType != "application/zip" || string(a.Data) != "PK\x05\x06\x00" {
		t.Errorf("attachment %q %q %q", a.Filename, a.ContentType, a.Data)
	}
}

func TestServerRecordsMessages(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t)
	if !strings.HasPrefix(srv.URL(), "smtp://127.0.0.1:") || !strings.HasSuffix(srv.URL(), srv.Addr()) {
		t.Errorf("URL %q, Addr %q", srv.URL(), srv.Addr())
	}
	srv.FailNext(1)
	if err := smtp.SendMail(srv.Addr(), nil, "a@example.com", []string{"b@example.com"}, []byte(handWritten)); err == nil || !strings.HasPrefix(err.Error(), "451") {
		t.Errorf("FailNext: error = %v, want a 451", err)
	}
	if err := smtp.SendMail(srv.Addr(), nil, "a@example.com", []string{"b@example.com", "c@example.com"}, []byte(handWritten)); err != nil {
		t.Fatal(err)
	}
	got := srv.WaitForMessages(t, 1, 5*time.Second)
	if len(got) != 1 || got[0].From != "a@example.com" || strings.Join(got[0].To, ",") != "b@example.com,c@example.com" || got[0].Subject != "你好 world" {
		t.Errorf("recorded %+v", got)
	}
	// Messages returns a copy.
	got[0].Subject = "changed"
	if srv.Messages()[0].Subject != "你好 world" {
		t.Error("Messages shares its slice with the caller")
	}
}
