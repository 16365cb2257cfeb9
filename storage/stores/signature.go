package stores

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Signature scheme v2 of the webhook contract (docs/webhook.md §2), used in
// both directions: datarights signs its calls to services, and services sign
// their callbacks to datarights.
//
// The HMAC-SHA256, under the shared secret, is over the canonical string
//
//	v2 \n <METHOD> \n <request target> \n <timestamp> \n <nonce> \n <hex SHA-256 of the body>
//
// so a signature is good for one method on one request target (a path that
// names the task, or the request and recipient) with one body, within a
// window around its timestamp, once: the receiver keeps the nonce until the
// window ends. Scheme v1 signed only the timestamp and the body, so a
// captured callback for one task verified on another task's URL.
const (
	// SignatureScheme prefixes the signature header's value ("v2=<hex>").
	SignatureScheme = "v2"
	// WebhookTimestampHeader carries the signing time in unix seconds.
	WebhookTimestampHeader = "X-Datarights-Timestamp"
	// WebhookNonceHeader carries a value the sender never uses twice.
	WebhookNonceHeader = "X-Datarights-Nonce"
	// WebhookSignatureHeader carries "v2=" and the hex HMAC-SHA256 of the
	// canonical string.
	WebhookSignatureHeader = "X-Datarights-Signature"
	// DefaultSignatureWindow is how far a signed timestamp may be from the
	// receiver's clock, either way, unless configured otherwise
	// (http.signature_window). A nonce is kept that long after its
	// timestamp.
	DefaultSignatureWindow = 5 * time.Minute
)

// ErrWebhookSignature is the one error for every way a signed message can be
// wrong — headers missing or malformed, timestamp outside the window,
// signature not matching, nonce spent — so a forger learns nothing about
// which part failed.
var ErrWebhookSignature = errors.New("the webhook signature is not valid")

// SignatureHeaders are the signing headers of one message, as received.
type SignatureHeaders struct {
	Timestamp string // X-Datarights-Timestamp
	Nonce     string // X-Datarights-Nonce
	Signature string // X-Datarights-Signature
}

// SignatureHeadersFrom reads the signing headers of h.
func SignatureHeadersFrom(h http.Header) SignatureHeaders {
	return SignatureHeaders{Timestamp: h.Get(WebhookTimestampHeader), Nonce: h.Get(WebhookNonceHeader),
		Signature: h.Get(WebhookSignatureHeader)}
}

// RequestTarget is what a signature names as the request target: the
// escaped path and query of u, as an HTTP/1.1 client puts them on the
// request line ("/" for an empty path). Scheme and host are not part of it:
// a proxy or a load balancer may change them.
func RequestTarget(u *url.URL) string {
	return u.RequestURI()
}

// NewNonce returns a fresh nonce: 128 random bits in hex.
func NewNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b[:])
}

// CanonicalString is the string a v2 signature is the HMAC of; bodySHA256
// is the SHA-256 of the body.
func CanonicalString(method, target, timestamp, nonce string, bodySHA256 []byte) string {
	return SignatureScheme + "\n" + method + "\n" + target + "\n" + timestamp + "\n" + nonce + "\n" + hex.EncodeToString(bodySHA256)
}

// SignRequest returns the X-Datarights-Signature value ("v2=<hex>") of a
// message: method and request target, the decimal unix seconds and nonce
// sent in the other two headers, and the exact body bytes.
func SignRequest(secret []byte, method, target, timestamp, nonce string, body []byte) string {
	sum := sha256.Sum256(body)
	return SignatureScheme + "=" + hex.EncodeToString(signatureMAC(secret, method, target, timestamp, nonce, sum[:]))
}

func signatureMAC(secret []byte, method, target, timestamp, nonce string, bodySHA256 []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(CanonicalString(method, target, timestamp, nonce, bodySHA256)))
	return mac.Sum(nil)
}

// SignHTTPRequest signs req, whose body is body, at now with a fresh nonce:
// it sets the timestamp, nonce and signature headers. A retried call is
// signed again, so each attempt has its own nonce.
func SignHTTPRequest(req *http.Request, secret, body []byte, now time.Time) {
	timestamp := strconv.FormatInt(now.Unix(), 10)
	nonce := NewNonce()
	req.Header.Set(WebhookTimestampHeader, timestamp)
	req.Header.Set(WebhookNonceHeader, nonce)
	req.Header.Set(WebhookSignatureHeader, SignRequest(secret, req.Method, RequestTarget(req.URL), timestamp, nonce, body))
}

// Verified is what a good signature leaves for the receiver to do: spend
// Nonce, keeping it until NonceExpiresAt, when the timestamp leaves the
// window and the message is refused without it.
type Verified struct {
	Nonce          string
	SignedAt       time.Time
	NonceExpiresAt time.Time
}

// RequestVerifier checks a signed message whose body streams through it
// (write the body to it, then call Verify), so a large body need not be held
// in memory to be verified.
type RequestVerifier struct {
	secrets                          [][]byte
	method, target, timestamp, nonce string
	want                             []byte
	body                             hash.Hash
	verified                         Verified
}

// NewRequestVerifier checks the message's headers — a timestamp within
// window of now, a well-formed nonce and a well-formed v2 signature — for a
// message of method to target, the request target the receiver expects (for
// datarights' callbacks, the path of the callback URL it handed out for the
// task or notice being acted on, whatever path the message arrived on). The
// signature itself is checked by Verify once the body has been written.
func NewRequestVerifier(secret []byte, method, target string, h SignatureHeaders, now time.Time, window time.Duration) (*RequestVerifier, error) {
	return NewRequestVerifierAny([][]byte{secret}, method, target, h, now, window)
}

// NewRequestVerifierAny is NewRequestVerifier for a message that may be
// signed with any of secrets (during a rotation, the new secret and the
// one it replaces).
func NewRequestVerifierAny(secrets [][]byte, method, target string, h SignatureHeaders, now time.Time, window time.Duration) (*RequestVerifier, error) {
	ts := h.Timestamp
	if len(secrets) == 0 || slices.ContainsFunc(secrets, func(s []byte) bool { return len(s) == 0 }) || method == "" || strings.ContainsAny(method, "\r\n ") || target == "" || strings.ContainsAny(target, "\r\n") {
		return nil, ErrWebhookSignature
	}
	if len(ts) == 0 || len(ts) > 12 || strings.Trim(ts, "0123456789") != "" {
		return nil, ErrWebhookSignature
	}
	seconds, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, ErrWebhookSignature
	}
	if window <= 0 {
		window = DefaultSignatureWindow
	}
	signedAt := time.Unix(seconds, 0)
	if skew := now.Sub(signedAt); skew > window || skew < -window {
		return nil, ErrWebhookSignature
	}
	if !validNonce(h.Nonce) {
		return nil, ErrWebhookSignature
	}
	sig, ok := strings.CutPrefix(h.Signature, SignatureScheme+"=")
	if !ok {
		return nil, ErrWebhookSignature
	}
	want, err := hex.DecodeString(sig)
	if err != nil || len(want) != sha256.Size {
		return nil, ErrWebhookSignature
	}
	return &RequestVerifier{secrets: secrets, method: method, target: target, timestamp: ts, nonce: h.Nonce,
		want: want, body: sha256.New(),
		verified: Verified{Nonce: h.Nonce, SignedAt: signedAt, NonceExpiresAt: signedAt.Add(window)}}, nil
}

// validNonce: 16 to 64 letters, digits, '-' or '_' (hex, base64url, UUIDs),
// enough for 64 random bits at the least and nothing that could break the
// canonical string's lines.
func validNonce(n string) bool {
	if len(n) < 16 || len(n) > 64 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Write adds body bytes to the message being checked.
func (v *RequestVerifier) Write(p []byte) (int, error) { return v.body.Write(p) }

// Verify checks, in constant time, the signature over the headers and the
// body written, and returns the nonce for the caller to spend.
func (v *RequestVerifier) Verify() (Verified, error) {
	body := v.body.Sum(nil)
	ok := false
	for _, secret := range v.secrets {
		// Every secret is tried: the time taken does not say which one
		// matched.
		got := signatureMAC(secret, v.method, v.target, v.timestamp, v.nonce, body)
		ok = hmac.Equal(got, v.want) || ok
	}
	if !ok {
		return Verified{}, ErrWebhookSignature
	}
	return v.verified, nil
}

// VerifyRequest checks a signed message held in memory (see
// NewRequestVerifier); the caller then spends the nonce.
func VerifyRequest(secret []byte, method, target string, h SignatureHeaders, body []byte, now time.Time, window time.Duration) (Verified, error) {
	v, err := NewRequestVerifier(secret, method, target, h, now, window)
	if err != nil {
		return Verified{}, err
	}
	_, _ = v.Write(body)
	return v.Verify()
}

// SignHTTPRequestDigest signs req as SignHTTPRequest does, for a body given
// by its SHA-256 (a large file streamed as the body, hashed beforehand).
func SignHTTPRequestDigest(req *http.Request, secret, bodySHA256 []byte, now time.Time) {
	timestamp := strconv.FormatInt(now.Unix(), 10)
	nonce := NewNonce()
	req.Header.Set(WebhookTimestampHeader, timestamp)
	req.Header.Set(WebhookNonceHeader, nonce)
	req.Header.Set(WebhookSignatureHeader, SignatureScheme+"="+hex.EncodeToString(
		signatureMAC(secret, req.Method, RequestTarget(req.URL), timestamp, nonce, bodySHA256)))
}
