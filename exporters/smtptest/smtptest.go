// Package smtptest runs a real SMTP server on the loopback interface for the
// duration of a test and records every message it accepts, parsed.
package smtptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one message the server accepted.
type Message struct {
	From     string   // envelope sender (MAIL FROM)
	To       []string // envelope recipients (RCPT TO)
	Username string   // who authenticated (AUTH PLAIN), if anyone
	TLS      bool     // whether the message came over TLS (STARTTLS or implicit)

	Raw       []byte
	Header    mail.Header
	MessageID string // without the angle brackets
	Subject   string // RFC 2047-decoded
	Text      string // the first text/plain part that is not an attachment
	HTML      string // the first text/html part that is not an attachment

	Attachments []Attachment
}

// Attachment is one attached file, its transfer encoding undone.
type Attachment struct {
	Filename    string
	ContentType string
	Data        []byte
}

// Option configures a Server.
type Option func(*Server)

// WithAuth makes the server offer AUTH PLAIN and refuse mail from clients
// that have not authenticated with username and password.
func WithAuth(username, password string) Option {
	return func(s *Server) { s.username, s.password = username, password }
}

// WithSTARTTLS makes the server offer STARTTLS with a certificate for
// 127.0.0.1 that only RootCAs trusts.
func WithSTARTTLS() Option {
	return func(s *Server) { s.startTLS = true }
}

// WithImplicitTLS makes the server speak TLS from the first byte (smtps),
// with a certificate for 127.0.0.1 that only RootCAs trusts.
func WithImplicitTLS() Option {
	return func(s *Server) { s.implicitTLS = true }
}

// Server is an SMTP server listening on 127.0.0.1.
type Server struct {
	addr        string
	username    string
	password    string
	startTLS    bool
	implicitTLS bool
	roots       *x509.CertPool

	mu       sync.Mutex
	messages []Message
	changed  chan struct{} // closed and replaced whenever a message arrives
	failNext int
	dropNext int           // accept, then hang up before answering
	holdNext int           // accept, then never answer
	hold     chan struct{} // closed when the test ends, releasing held sessions
	badParse []string
}

// NewServer starts a server on a free loopback port and stops it when the
// test ends.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{changed: make(chan struct{}), hold: make(chan struct{})}
	for _, opt := range opts {
		opt(s)
	}

	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{server: s, conn: c}, nil
	}))
	srv.Domain = "smtptest.local"
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.MaxMessageBytes = 64 << 20
	// Clients may only send a password in clear text to localhost, which
	// is what this server is.
	srv.AllowInsecureAuth = true
	// Clients that hang up mid-conversation are part of some tests.
	srv.ErrorLog = log.New(io.Discard, "", 0)

	if s.startTLS || s.implicitTLS {
		cert, roots, err := selfSigned()
		if err != nil {
			t.Fatalf("smtptest: %v", err)
		}
		s.roots = roots
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: %v", err)
	}
	s.addr = l.Addr().String()
	if s.implicitTLS {
		l = tls.NewListener(l, srv.TLSConfig)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		close(s.hold)
		_ = srv.Close()
		<-done
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, problem := range s.badParse {
			t.Errorf("smtptest: accepted a message that does not parse: %s", problem)
		}
	})
	return s
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return s.addr }

// URL returns the smtp:// (or, with WithImplicitTLS, smtps://) URL of the
// server, with the credentials given to WithAuth.
func (s *Server) URL() string {
	scheme := "smtp"
	if s.implicitTLS {
		scheme = "smtps"
	}
	userinfo := ""
	if s.username != "" {
		userinfo = url.UserPassword(s.username, s.password).String() + "@"
	}
	return scheme + "://" + userinfo + s.addr
}

// RootCAs returns a pool trusting the server's certificate, or nil when the
// server does not use TLS.
func (s *Server) RootCAs() *x509.CertPool { return s.roots }

// FailNext makes the next n messages fail at the end of DATA with a
// temporary (451) error, as a busy server would.
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = n
}

// DropAfterAccept makes the server accept the next n messages and then
// close the connection without answering, so their senders believe the
// send failed.
func (s *Server) DropAfterAccept(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropNext = n
}

// HoldAfterAccept makes the server accept the next n messages and then
// never answer (until the test ends), so their senders hang in the send.
func (s *Server) HoldAfterAccept(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holdNext = n
}

// Messages returns the messages accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// WaitForMessages waits until the server has accepted at least n messages
// and returns them all, failing the test after timeout.
func (s *Server) WaitForMessages(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if len(s.messages) >= n {
			msgs := append([]Message(nil), s.messages...)
			s.mu.Unlock()
			return msgs
		}
		got, changed := len(s.messages), s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			t.Fatalf("smtptest: waited %s for %d messages, got %d", timeout, n, got)
			return nil
		}
	}
}

// WaitForMessage waits until the server has accepted a message with the
// Message-ID id (without angle brackets) and returns the first such,
// failing the test after timeout.
func (s *Server) WaitForMessage(t testing.TB, id string, timeout time.Duration) Message {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		for _, m := range s.messages {
			if m.MessageID == id {
				s.mu.Unlock()
				return m
			}
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			t.Fatalf("smtptest: waited %s for message %s", timeout, id)
			return Message{}
		}
	}
}

func (s *Server) record(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = append(s.messages, m)
	close(s.changed)
	s.changed = make(chan struct{})
}

type session struct {
	server *Server
	conn   *smtp.Conn

	username string
	from     string
	to       []string
}

func (ss *session) AuthMechanisms() []string {
	if ss.server.username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if ss.server.username == "" {
		return nil, smtp.ErrAuthUnsupported
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != ss.server.username || password != ss.server.password {
			return smtp.ErrAuthFailed
		}
		ss.username = username
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.server.username != "" && ss.username == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s := ss.server
	s.mu.Lock()
	fail := s.failNext > 0
	if fail {
		s.failNext--
	}
	s.mu.Unlock()
	if fail {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later (smtptest.FailNext)"}
	}

	_, isTLS := ss.conn.TLSConnectionState()
	m := Message{
		From:     ss.from,
		To:       append([]string(nil), ss.to...),
		Username: ss.username,
		TLS:      isTLS,
		Raw:      raw,
	}
	if err := m.parse(); err != nil {
		s.mu.Lock()
		s.badParse = append(s.badParse, err.Error())
		s.mu.Unlock()
	}
	s.record(m)
	s.mu.Lock()
	drop := s.dropNext > 0
	hold := !drop && s.holdNext > 0
	if drop {
		s.dropNext--
	} else if hold {
		s.holdNext--
	}
	s.mu.Unlock()
	switch {
	case drop:
		// The message is accepted (recorded above) but the client never
		// hears so: what a sender sees when it crashes, or the network
		// fails, between the server taking a message and its own record.
		_ = ss.conn.Close()
		return errors.New("smtptest: connection dropped after accepting the message")
	case hold:
		<-s.hold // the client waits for an answer until it is killed
		return errors.New("smtptest: held")
	}
	return nil
}

func (ss *session) Reset() {
	ss.from, ss.to = "", nil
}

func (ss *session) Logout() error { return nil }

// ParseMessage parses a raw RFC 5322 message, as the server does every
// message it accepts; the envelope fields stay empty. Tests of mail written
// to files use it.
func ParseMessage(raw []byte) (Message, error) {
	m := Message{Raw: raw}
	err := m.parse()
	return m, err
}

// parse fills in m's parsed fields from m.Raw.
func (m *Message) parse() error {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Raw))
	if err != nil {
		return err
	}
	m.Header = msg.Header
	m.MessageID = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(msg.Header.Get("Message-Id")), "<"), ">")
	m.Subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		return fmt.Errorf("subject: %w", err)
	}
	return parsePart(m, textproto.MIMEHeader(msg.Header), msg.Body, 0)
}

func parsePart(m *Message, header textproto.MIMEHeader, body io.Reader, depth int) error {
	if depth > 10 {
		return errors.New("multipart nested too deeply")
	}
	contentType := header.Get("Content-Type")
	if contentType == "" {
		contentType = "text/plain"
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("content type %q: %w", contentType, err)
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			// NextRawPart: NextPart would undo quoted-printable on its own
			// but not base64; decode() handles both alike.
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %w", mediaType, err)
			}
			if err := parsePart(m, p.Header, p, depth+1); err != nil {
				return err
			}
		}
	}

	data, err := io.ReadAll(decode(header.Get("Content-Transfer-Encoding"), body))
	if err != nil {
		return fmt.Errorf("%s body: %w", mediaType, err)
	}
	filename := ""
	disposition, dparams, err := mime.ParseMediaType(header.Get("Content-Disposition"))
	if err == nil {
		filename = dparams["filename"]
	}
	if filename == "" {
		filename = params["name"]
	}
	switch {
	case disposition == "attachment" || filename != "":
		m.Attachments = append(m.Attachments, Attachment{Filename: filename, ContentType: mediaType, Data: data})
	case mediaType == "text/plain" && m.Text == "":
		m.Text = string(data)
	case mediaType == "text/html" && m.HTML == "":
		m.HTML = string(data)
	}
	return nil
}

func decode(encoding string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "base64":
		// The decoder skips the line breaks.
		return base64.NewDecoder(base64.StdEncoding, r)
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	}
	return r
}

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, roots, nil
}
