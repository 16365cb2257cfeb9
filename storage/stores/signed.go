package stores

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// SignedPoster makes the short signed calls of the webhook contract that are
// not store tasks: cancellation pre-checks and notices to third parties the
// data was shared with (docs/webhook.md). Calls are signed as store calls
// are, answers are small JSON, and redirects are not followed.
type SignedPoster struct {
	name    string // what is called, for errors: "precheck open_loans", "recipient credit_bureau"
	url     string
	secret  []byte
	timeout time.Duration
	client  *http.Client
}

// NewSignedPoster returns a poster to url signing with secret.
func NewSignedPoster(name, url, secret string, timeout time.Duration) *SignedPoster {
	if timeout <= 0 {
		timeout = DefaultWebhookTimeout
	}
	return &SignedPoster{name: name, url: url, secret: []byte(secret), timeout: timeout, client: &http.Client{
		Transport:     http.DefaultTransport.(*http.Transport).Clone(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// maxSignedAnswer caps the answer to a signed call.
const maxSignedAnswer = 64 << 10

// Post sends body, signed, with idempotencyKey, and returns the status and
// the body of the answer (at most 64 KiB). Errors never quote the body or
// the URL's query.
func (s *SignedPoster) Post(ctx context.Context, idempotencyKey string, body []byte) (int, []byte, error) {
	callCtx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(callCtx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("%s: the url cannot be called", s.name)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "datarights-webhook/2")
	req.Header.Set("Idempotency-Key", idempotencyKey)
	SignHTTPRequest(req, s.secret, body, time.Now())
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, fmt.Errorf("%s: %w", s.name, ctx.Err())
		}
		if errors.Is(callCtx.Err(), context.DeadlineExceeded) {
			return 0, nil, fmt.Errorf("%s: no answer within %s", s.name, s.timeout)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL
		}
		return 0, nil, fmt.Errorf("%s: call failed: %w", s.name, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxSignedAnswer+1))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s: the answer could not be read", s.name)
	}
	if len(answer) > maxSignedAnswer {
		return resp.StatusCode, nil, fmt.Errorf("%s: the answer is larger than %d bytes", s.name, maxSignedAnswer)
	}
	return resp.StatusCode, answer, nil
}

// Close closes idle connections.
func (s *SignedPoster) Close() { s.client.CloseIdleConnections() }
