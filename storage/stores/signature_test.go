package stores_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/datarights/datarights/storage/stores"
)

// signedMessage is one message and how it was signed, for tampering.
type signedMessage struct {
	secret         []byte
	method, target string
	headers        stores.SignatureHeaders
	body           []byte
}

func newSignedMessage(now time.Time) signedMessage {
	m := signedMessage{
		secret: []byte(webhookSecret), method: http.MethodPost,
		target:  "/api/v1/callbacks/tasks/0190a000-0000-7000-8000-000000000002",
		headers: stores.SignatureHeaders{Timestamp: strconv.FormatInt(now.Unix(), 10), Nonce: stores.NewNonce()},
		body:    []byte(`{"status":"done","found":true,"deleted":{"points":2}}`),
	}
	m.headers.Signature = stores.SignRequest(m.secret, m.method, m.target, m.headers.Timestamp, m.headers.Nonce, m.body)
	return m
}

func (m signedMessage) verify(now time.Time) (stores.Verified, error) {
	return stores.VerifyRequest(m.secret, m.method, m.target, m.headers, m.body, now, 5*time.Minute)
}

// TestSignRequestIsTheDocumentedAlgorithm: what SignRequest makes is what
// docs/webhook.md tells a service to compute, written out here without the
// package's helpers.
func TestSignRequestIsTheDocumentedAlgorithm(t *testing.T) {
	t.Parallel()
	secret := []byte(webhookSecret)
	body := []byte(`{"acknowledged": true}`)
	sum := sha256.Sum256(body)
	canonical := "v2\nPOST\n/api/v1/callbacks/recipients/0190a000-0000-7000-8000-000000000001/insurer\n1718000000\n" +
		"0f1e2d3c4b5a69788796a5b4c3d2e1f0\n" + hex.EncodeToString(sum[:])
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(canonical))
	want := "v2=" + hex.EncodeToString(mac.Sum(nil))
	got := stores.SignRequest(secret, "POST", "/api/v1/callbacks/recipients/0190a000-0000-7000-8000-000000000001/insurer",
		"1718000000", "0f1e2d3c4b5a69788796a5b4c3d2e1f0", body)
	if got != want {
		t.Fatalf("SignRequest = %s, want %s", got, want)
	}
	if c := stores.CanonicalString("POST", "/api/v1/callbacks/recipients/0190a000-0000-7000-8000-000000000001/insurer",
		"1718000000", "0f1e2d3c4b5a69788796a5b4c3d2e1f0", sum[:]); c != canonical {
		t.Errorf("CanonicalString = %q, want %q", c, canonical)
	}
}

// TestSignatureTestVector: the worked example of docs/webhook.md §2.
func TestSignatureTestVector(t *testing.T) {
	t.Parallel()
	got := stores.SignRequest([]byte("0123456789abcdef-test-webhook-secret"), "POST",
		"/api/v1/callbacks/tasks/0190f3a2-6c1e-7d3b-9a55-2b8e4c1d9f00", "1718000420", "3f1c9a0e5b7d42e8a6c4b2d0f9e8a7c6",
		[]byte(`{"status":"done","found":true,"deleted":{"points":2,"coupons":0}}`))
	if want := "v2=55bf17204a069e2abe33e781fcb0c5c589ad5552ab83f7fb472d0546a2c01428"; got != want {
		t.Errorf("signature = %s, want the documented %s", got, want)
	}
}

// TestVerifyRequestRefusesTampering: changing any part the signature covers
// — secret, method, target, timestamp, nonce, body — or the signature
// itself makes it fail, with the one error that does not say which.
func TestVerifyRequestRefusesTampering(t *testing.T) {
	t.Parallel()
	now := time.Now()
	good := newSignedMessage(now)
	v, err := good.verify(now)
	if err != nil {
		t.Fatalf("a good signature does not verify: %v", err)
	}
	if v.Nonce != good.headers.Nonce || !v.SignedAt.Equal(time.Unix(now.Unix(), 0)) || !v.NonceExpiresAt.Equal(v.SignedAt.Add(5*time.Minute)) {
		t.Errorf("verified = %+v", v)
	}
	upper := good
	upper.headers.Signature = "v2=" + strings.ToUpper(good.headers.Signature[3:])
	if _, err := upper.verify(now); err != nil {
		t.Errorf("upper-case hex does not verify: %v", err)
	}

	resign := func(m signedMessage) signedMessage { // signed properly, but not what good was
		m.headers.Signature = stores.SignRequest(m.secret, m.method, m.target, m.headers.Timestamp, m.headers.Nonce, m.body)
		return m
	}
	at := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	cases := map[string]func(m *signedMessage){
		// Each covered part, changed after signing.
		"other secret":      func(m *signedMessage) { m.secret = []byte("another-secret-of-enough-length") },
		"other method":      func(m *signedMessage) { m.method = http.MethodPut },
		"lower-case method": func(m *signedMessage) { m.method = "post" },
		"other task":        func(m *signedMessage) { m.target = strings.Replace(m.target, "0002", "0003", 1) },
		"other route":       func(m *signedMessage) { m.target = strings.Replace(m.target, "/tasks/", "/recipients/", 1) },
		"query added":       func(m *signedMessage) { m.target += "?x=1" },
		"trailing slash":    func(m *signedMessage) { m.target += "/" },
		"other timestamp":   func(m *signedMessage) { m.headers.Timestamp = at(-time.Second) },
		"other nonce":       func(m *signedMessage) { m.headers.Nonce = stores.NewNonce() },
		"body changed":      func(m *signedMessage) { m.body = bytes.Replace(m.body, []byte("2"), []byte("0"), 1) },
		"body extended":     func(m *signedMessage) { m.body = append(m.body, ' ') },
		"body empty":        func(m *signedMessage) { m.body = nil },
		"signature changed": func(m *signedMessage) {
			flip := map[byte]string{'0': "1"}[m.headers.Signature[10]]
			if flip == "" {
				flip = "0"
			}
			m.headers.Signature = m.headers.Signature[:10] + flip + m.headers.Signature[11:]
		},
		"v1 of the same digest": func(m *signedMessage) { m.headers.Signature = "v1=" + m.headers.Signature[3:] },
		"no scheme":             func(m *signedMessage) { m.headers.Signature = m.headers.Signature[3:] },
		"short signature":       func(m *signedMessage) { m.headers.Signature = m.headers.Signature[:20] },
		"not hex":               func(m *signedMessage) { m.headers.Signature = "v2=" + strings.Repeat("zz", 32) },
		"no signature":          func(m *signedMessage) { m.headers.Signature = "" },
		"two signatures":        func(m *signedMessage) { m.headers.Signature += "," + m.headers.Signature },
		// Re-signed properly, but outside what is accepted.
		"stale":              func(m *signedMessage) { m.headers.Timestamp = at(-6 * time.Minute); *m = resign(*m) },
		"future":             func(m *signedMessage) { m.headers.Timestamp = at(6 * time.Minute); *m = resign(*m) },
		"no timestamp":       func(m *signedMessage) { m.headers.Timestamp = ""; *m = resign(*m) },
		"signed timestamp +": func(m *signedMessage) { m.headers.Timestamp = "+" + m.headers.Timestamp; *m = resign(*m) },
		"timestamp in ms":    func(m *signedMessage) { m.headers.Timestamp = strconv.FormatInt(now.UnixMilli(), 10); *m = resign(*m) },
		"no nonce":           func(m *signedMessage) { m.headers.Nonce = ""; *m = resign(*m) },
		"short nonce":        func(m *signedMessage) { m.headers.Nonce = "0123456789abcde"; *m = resign(*m) },
		"long nonce":         func(m *signedMessage) { m.headers.Nonce = strings.Repeat("a", 65); *m = resign(*m) },
		"nonce with newline": func(m *signedMessage) { m.headers.Nonce = "0123456789abcdef\nPOST"; *m = resign(*m) },
		"nonce with space":   func(m *signedMessage) { m.headers.Nonce = "0123456789 abcdef"; *m = resign(*m) },
		"target with newline": func(m *signedMessage) {
			m.target += "\n1"
			*m = resign(*m)
		},
		"no secret": func(m *signedMessage) { m.secret = nil; *m = resign(*m) },
		"no method": func(m *signedMessage) { m.method = ""; *m = resign(*m) },
	}
	for name, tamper := range cases {
		m := good
		m.body = bytes.Clone(good.body)
		tamper(&m)
		if _, err := m.verify(now); !errors.Is(err, stores.ErrWebhookSignature) {
			t.Errorf("%s: error %v, want ErrWebhookSignature", name, err)
		}
	}

	// Within the window either way is fine, and the window is the one given.
	for _, d := range []time.Duration{-299 * time.Second, 299 * time.Second} {
		m := good
		m.headers.Timestamp = at(d)
		if _, err := resign(m).verify(now); err != nil {
			t.Errorf("signed %s from now: %v", d, err)
		}
	}
	m := good
	m.headers.Timestamp = at(-2 * time.Minute)
	m = resign(m)
	if _, err := stores.VerifyRequest(m.secret, m.method, m.target, m.headers, m.body, now, time.Minute); !errors.Is(err, stores.ErrWebhookSignature) {
		t.Errorf("2 minutes old with a 1 minute window: %v", err)
	}
	v, err = stores.VerifyRequest(m.secret, m.method, m.target, m.headers, m.body, now, 10*time.Minute)
	if err != nil || !v.NonceExpiresAt.Equal(v.SignedAt.Add(10*time.Minute)) {
		t.Errorf("2 minutes old with a 10 minute window: %+v %v", v, err)
	}
}

// TestRequestVerifierStreams: a body written in pieces verifies as the
// whole.
func TestRequestVerifierStreams(t *testing.T) {
	t.Parallel()
	now := time.Now()
	m := newSignedMessage(now)
	v, err := stores.NewRequestVerifier(m.secret, m.method, m.target, m.headers, now, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range m.body {
		v.Write([]byte{b}) //nolint:errcheck
	}
	if got, err := v.Verify(); err != nil || got.Nonce != m.headers.Nonce {
		t.Errorf("streamed: %+v %v", got, err)
	}
}

// TestSignHTTPRequest: an outgoing call is signed for its method and its
// URL's path and query, with a fresh nonce each time; the receiving side
// verifies it with the request target it sees.
func TestSignHTTPRequest(t *testing.T) {
	t.Parallel()
	body := []byte(`{"version":1,"task_id":"t"}`)
	secret := []byte(webhookSecret)
	now := time.Now()
	nonces := map[string]bool{}
	for range 3 {
		req, err := http.NewRequest(http.MethodPost, "https://loyalty.internal:8443/hooks/datarights?tenant=webank", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		stores.SignHTTPRequest(req, secret, body, now)
		h := stores.SignatureHeadersFrom(req.Header)
		if h.Timestamp != strconv.FormatInt(now.Unix(), 10) || !strings.HasPrefix(h.Signature, "v2=") {
			t.Errorf("headers = %+v", h)
		}
		nonces[h.Nonce] = true
		if _, err := stores.VerifyRequest(secret, "POST", "/hooks/datarights?tenant=webank", h, body, now, 0); err != nil {
			t.Errorf("the call does not verify at its target: %v", err)
		}
		if _, err := stores.VerifyRequest(secret, "POST", "/hooks/datarights", h, body, now, 0); err == nil {
			t.Error("the call verifies without its query")
		}
	}
	if len(nonces) != 3 {
		t.Errorf("3 signings used %d nonces", len(nonces))
	}
}

func TestRequestTarget(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"https://datarights.example.com":                                "/",
		"https://datarights.example.com/api/v1/callbacks/tasks/abc":     "/api/v1/callbacks/tasks/abc",
		"https://datarights.example.com/privacy/api/v1/callbacks/tasks": "/privacy/api/v1/callbacks/tasks",
		"http://h:8080/a%2Fb/c?x=1&y=%20":                               "/a%2Fb/c?x=1&y=%20",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := stores.RequestTarget(u); got != want {
			t.Errorf("RequestTarget(%s) = %q, want %q", raw, got, want)
		}
	}
}

func TestNewNonce(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 1000 {
		n := stores.NewNonce()
		if len(n) != 32 || strings.Trim(n, "0123456789abcdef") != "" || seen[n] {
			t.Fatalf("nonce %q (seen before: %v)", n, seen[n])
		}
		seen[n] = true
	}
}

// TestVerifierAcceptsAnySecretOfARotation: a message signed with either
// secret of a rotation verifies; one signed with a third does not, nor does
// a list holding an empty secret.
func TestVerifierAcceptsAnySecretOfARotation(t *testing.T) {
	t.Parallel()
	now := time.Now()
	newSecret, oldSecret := []byte("the-new-secret-0123456789"), []byte("the-old-secret-0123456789")
	for name, tc := range map[string]struct {
		signedWith []byte
		secrets    [][]byte
		ok         bool
	}{
		"new secret":         {newSecret, [][]byte{newSecret, oldSecret}, true},
		"old secret":         {oldSecret, [][]byte{newSecret, oldSecret}, true},
		"another secret":     {[]byte("another-secret-0123456789"), [][]byte{newSecret, oldSecret}, false},
		"old after rotation": {oldSecret, [][]byte{newSecret}, false},
		"an empty secret":    {oldSecret, [][]byte{newSecret, nil}, false},
	} {
		m := newSignedMessage(now)
		m.headers.Signature = stores.SignRequest(tc.signedWith, m.method, m.target, m.headers.Timestamp, m.headers.Nonce, m.body)
		v, err := stores.NewRequestVerifierAny(tc.secrets, m.method, m.target, m.headers, now, time.Minute)
		if err == nil {
			_, _ = v.Write(m.body)
			_, err = v.Verify()
		}
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok %v", name, err, tc.ok)
		}
	}
}
