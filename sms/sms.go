// Package sms sends text messages: the codes that prove a new phone number.
// Without a gateway, messages are written to an outbox directory, one file
// each, as the mail outbox does for email; with one, they are posted to the
// company's SMS gateway, signed like every other webhook (docs/webhook.md).
package sms

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage/stores"
)

// Outbox writes each message to <Dir>/<id>.txt: a resend replaces the file.
type Outbox struct {
	Dir string
}

// SendSMS writes m to the outbox.
func (o *Outbox) SendSMS(ctx context.Context, m rights.SMS) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return fmt.Errorf("sms outbox: %w", err)
	}
	name := fileName(m.ID) + ".txt"
	tmp, err := os.CreateTemp(o.Dir, "."+name+".*.tmp")
	if err != nil {
		return fmt.Errorf("sms outbox: %w", err)
	}
	_, err = fmt.Fprintf(tmp, "To: %s\nID: %s\n\n%s\n", m.To, m.ID, m.Text)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(o.Dir, name))
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("sms outbox: writing %s: %w", m.ID, err)
	}
	return nil
}

func fileName(id string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-.@", r) {
			return r
		}
		return '_'
	}, id)
}

// Gateway posts each message as JSON {"id", "to", "text"} to URL, signed
// with Secret. Any 2xx is sent; the gateway should drop a repeated id.
type Gateway struct {
	URL    string
	Secret []byte
	Client *http.Client
}

// SendSMS posts m to the gateway.
func (g *Gateway) SendSMS(ctx context.Context, m rights.SMS) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("sms gateway: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", m.ID)
	stores.SignHTTPRequest(req, g.Secret, body, time.Now())
	client := g.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("sms gateway: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("sms gateway answered %s", resp.Status)
	}
	return nil
}
