package exporters

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jordan-wright/email"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/rights"
)

// DefaultSMTPTimeout bounds one whole SMTP conversation when
// SMTPMailer.Timeout is zero.
const DefaultSMTPTimeout = 2 * time.Minute

// NewMailer returns the mailer the configuration asks for: an SMTPMailer for
// smtpURL, or, when smtpURL is empty, a FileOutbox writing to outboxDir.
// An empty from means config.DefaultFrom.
func NewMailer(smtpURL, from, outboxDir string) (rights.Mailer, error) {
	if from == "" {
		from = config.DefaultFrom
	}
	if _, err := mail.ParseAddress(from); err != nil {
		return nil, rights.Errorf(rights.EInvalid, "the sender address %q is not an email address", from)
	}
	if smtpURL == "" {
		if outboxDir == "" {
			return nil, rights.Errorf(rights.EInvalid, "without an SMTP URL the mailer needs an outbox directory")
		}
		return &FileOutbox{Dir: outboxDir, From: from}, nil
	}
	server, err := config.ParseSMTPURL(smtpURL)
	if err != nil {
		// Not the URL itself: it may hold a password.
		return nil, fmt.Errorf("smtp url: %w", err)
	}
	return &SMTPMailer{Server: server, From: from, Timeout: DefaultSMTPTimeout}, nil
}

// SMTPMailer sends messages through an SMTP server (submission or relay).
type SMTPMailer struct {
	Server config.SMTPServer
	From   string // "Name <address>"; the address is also the envelope sender
	// Timeout bounds one whole conversation, dial to QUIT; zero means
	// DefaultSMTPTimeout.
	Timeout time.Duration

	// rootCAs replaces the system roots when verifying the server; tests use
	// it to trust their own server. Deployments with a private CA can point
	// SSL_CERT_FILE at it instead.
	rootCAs *x509.CertPool
}

var _ rights.Mailer = (*SMTPMailer)(nil)

// Send delivers m in one SMTP conversation. Sending the same m again sends
// the same Message-ID, so a retry after an unclear failure shows up as a
// duplicate the recipient's mail system can recognise.
func (s *SMTPMailer) Send(ctx context.Context, m rights.Message) error {
	raw, to, err := buildMessage(s.From, m)
	if err != nil {
		return err
	}
	from, err := mail.ParseAddress(s.From)
	if err != nil {
		return rights.Errorf(rights.EInvalid, "the sender address %q is not an email address", s.From)
	}
	if err := s.deliver(ctx, from.Address, to, raw); err != nil {
		return fmt.Errorf("sending message %s via %s: %w", m.ID, s.Server.Addr(), err)
	}
	return nil
}

func (s *SMTPMailer) deliver(ctx context.Context, from, to string, raw []byte) error {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultSMTPTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	dialer := net.Dialer{Timeout: timeout}
	conn, err := dialer.DialContext(ctx, "tcp", s.Server.Addr())
	if err != nil {
		return err
	}
	defer conn.Close()
	// net/smtp knows no contexts: the deadline bounds every read and write,
	// and cancelling ctx moves it to the past, which fails the one in flight.
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	err = s.converse(ctx, conn, from, to, raw)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The connection's deadline is ctx's, but ctx's own timer may not
		// have fired yet.
		<-ctx.Done()
	}
	if err != nil && ctx.Err() != nil {
		// The i/o error says only "timeout"; say why.
		return fmt.Errorf("%w (%w)", context.Cause(ctx), err)
	}
	return err
}

func (s *SMTPMailer) converse(ctx context.Context, conn net.Conn, from, to string, raw []byte) error {
	host := s.Server.Host
	tlsConfig := &tls.Config{ServerName: host, RootCAs: s.rootCAs, MinVersion: tls.VersionTLS12}
	if s.Server.TLS {
		tc := tls.Client(conn, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return replyError("greeting", err)
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return replyError("EHLO", err)
	}
	if !s.Server.TLS {
		// Opportunistic: a server that does not offer STARTTLS gets plain
		// text, but one that does must present a certificate valid for Host.
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tlsConfig); err != nil {
				return replyError("STARTTLS", err)
			}
		}
	}
	if s.Server.Username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return errors.New("the server does not offer AUTH, but a username is configured")
		}
		// PlainAuth refuses to send the password in clear text to anything
		// but localhost.
		auth := smtp.PlainAuth("", s.Server.Username, s.Server.Password, host)
		if err := c.Auth(auth); err != nil {
			return replyError("AUTH", err)
		}
	}
	if err := c.Mail(from); err != nil {
		return replyError("MAIL FROM", err)
	}
	if err := c.Rcpt(to); err != nil {
		return replyError("RCPT TO", err)
	}
	w, err := c.Data()
	if err != nil {
		return replyError("DATA", err)
	}
	if _, err := w.Write(raw); err != nil {
		return replyError("DATA", err)
	}
	if err := w.Close(); err != nil {
		return replyError("DATA", err)
	}
	// The message is accepted once DATA is: a failed QUIT loses nothing.
	_ = c.Quit()
	return nil
}

// SMTPError is a refusal from the mail server. It keeps the reply code but
// drops the server's text, which may quote the recipient.
type SMTPError struct {
	Command string // the command refused, e.g. "RCPT TO"
	Code    int    // the reply code, e.g. 550
	Status  string // the enhanced status code, e.g. "5.1.1", if the server sent one
}

func (e *SMTPError) Error() string {
	s := fmt.Sprintf("%s refused: %d", e.Command, e.Code)
	if e.Status != "" {
		s += " " + e.Status
	}
	return s
}

// Temporary reports whether the server asked to try again later (a 4xx
// reply), as opposed to refusing for good.
func (e *SMTPError) Temporary() bool { return e.Code >= 400 && e.Code < 500 }

var enhancedStatusRE = regexp.MustCompile(`^[245]\.\d{1,3}\.\d{1,3}$`)

func replyError(command string, err error) error {
	var reply *textproto.Error
	if !errors.As(err, &reply) {
		return fmt.Errorf("%s: %w", command, err)
	}
	e := &SMTPError{Command: command, Code: reply.Code}
	if status, _, _ := strings.Cut(reply.Msg, " "); enhancedStatusRE.MatchString(status) {
		e.Status = status
	}
	return e
}

// FileOutbox "sends" messages by writing them to Dir as .eml files, one per
// Message-ID, for deployments without a mail server (and for demos). Sending
// the same message again replaces its file.
type FileOutbox struct {
	Dir  string
	From string // empty means config.DefaultFrom
}

var _ rights.Mailer = (*FileOutbox)(nil)

// Send writes m to <Dir>/<message id>.eml.
func (o *FileOutbox) Send(ctx context.Context, m rights.Message) (err error) {
	from := o.From
	if from == "" {
		from = config.DefaultFrom
	}
	raw, _, err := buildMessage(from, m)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	name := outboxFileName(m.ID)
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	tmp, err := os.CreateTemp(o.Dir, "."+name+".*.tmp")
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(raw); err != nil {
		return fmt.Errorf("outbox: writing message %s: %w", m.ID, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("outbox: writing message %s: %w", m.ID, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("outbox: writing message %s: %w", m.ID, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(o.Dir, name)); err != nil {
		return fmt.Errorf("outbox: writing message %s: %w", m.ID, err)
	}
	if err := syncDir(o.Dir); err != nil {
		return fmt.Errorf("outbox: writing message %s: %w", m.ID, err)
	}
	return nil
}

// outboxFileName is the message ID when that is a plain file name, else the
// ID with the other characters replaced and a hash of it appended, so that
// two IDs never share a file.
func outboxFileName(id string) string {
	var b strings.Builder
	for i, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			strings.ContainsRune("_-+@", r) || r == '.' && i > 0
		if ok {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	name := b.String()
	if name != id {
		sum := sha256.Sum256([]byte(id))
		name += "-" + hex.EncodeToString(sum[:6])
	}
	return name + ".eml"
}

// buildMessage renders m as an RFC 5322 message and returns it with the
// recipient's bare address.
func buildMessage(from string, m rights.Message) ([]byte, string, error) {
	if err := checkMessageID(m.ID); err != nil {
		return nil, "", err
	}
	sender, err := mail.ParseAddress(from)
	if err != nil {
		return nil, "", rights.Errorf(rights.EInvalid, "the sender address %q is not an email address", from)
	}
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		// Not quoted: it is the requester's address.
		return nil, "", rights.Errorf(rights.EInvalid, "message %s: the recipient is not an email address", m.ID)
	}

	e := email.NewEmail()
	e.From = sender.String()
	// The bare address: the library splits the To header on commas, which
	// would break a quoted display name holding one.
	e.To = []string{to.Address}
	// B rather than the library's Q encoding: a Chinese subject takes half
	// the room, and the header is written on one line.
	e.Subject = mime.BEncoding.Encode("utf-8", m.Subject)
	e.Text = []byte(m.Text)
	e.HTML = []byte(m.HTML)
	e.Headers.Set("Message-Id", "<"+m.ID+">")
	for i, a := range m.Attachments {
		if err := attach(e, m.ID, i, a); err != nil {
			return nil, "", err
		}
	}
	raw, err := e.Bytes()
	if err != nil {
		return nil, "", fmt.Errorf("message %s: %w", m.ID, err)
	}
	return raw, to.Address, nil
}

func attach(e *email.Email, messageID string, i int, a rights.Attachment) error {
	disposition := mime.FormatMediaType("attachment", map[string]string{"filename": a.Filename})
	if a.Filename == "" || disposition == "" {
		return rights.Errorf(rights.EInvalid, "message %s: attachment %d needs a file name", messageID, i+1)
	}
	contentType := a.ContentType
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return rights.Errorf(rights.EInvalid, "message %s: attachment %s has an invalid content type", messageID, a.Filename)
	}
	// Mail clients that do not read RFC 2231 (filename*=) look for the name
	// here, RFC 2047-encoded.
	params["name"] = mime.BEncoding.Encode("utf-8", a.Filename)
	contentType = mime.FormatMediaType(mediaType, params)
	if a.Open == nil {
		return rights.Errorf(rights.EInvalid, "message %s: attachment %s has no content", messageID, a.Filename)
	}
	r, err := a.Open()
	if err != nil {
		return fmt.Errorf("message %s: opening attachment %s: %w", messageID, a.Filename, err)
	}
	defer r.Close()
	// The library holds attachments in memory; config's attachment limit is
	// what keeps that bounded.
	att, err := e.Attach(r, a.Filename, contentType)
	if err != nil {
		return fmt.Errorf("message %s: reading attachment %s: %w", messageID, a.Filename, err)
	}
	// The library writes filename="..." as is, which breaks on quotes and
	// non-ASCII names; FormatMediaType quotes or RFC 2231-encodes as needed.
	att.Header.Set("Content-Disposition", disposition)
	// Its default Content-ID is the file name, which need not be unique.
	att.Header.Set("Content-Id", "<"+strconv.Itoa(i+1)+"."+messageID+">")
	return nil
}

// checkMessageID accepts what can go between the angle brackets of a
// Message-ID header: printable ASCII, no spaces or brackets, with an "@".
func checkMessageID(id string) error {
	if id == "" || len(id) > 250 || !strings.Contains(id, "@") {
		return rights.Errorf(rights.EInvalid, "message ID %q must look like local@domain", id)
	}
	for _, r := range id {
		if r <= ' ' || r > '~' || r == '<' || r == '>' || r == '"' || r == '\\' {
			return rights.Errorf(rights.EInvalid, "message ID %q may only hold printable ASCII without spaces, brackets or quotes", id)
		}
	}
	return nil
}
