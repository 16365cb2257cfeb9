package jobs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/exporters"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
	"github.com/datarights/datarights/storage/stores"
)

// Transfers (个人信息转移, PIPL Art. 45; WeBank §7(五)). A transfer runs as a
// copy does — every store exports the subject's data, the archive is
// built — and then, instead of going to the requester's mailbox, the
// archive goes to the receiving handler the person named from the
// configured list: a signed HTTPS POST of the zip, or a PUT into the
// receiver's S3 bucket. The requester's email says where it went. The
// archive is not password-encrypted: it is for a handler's systems, over
// TLS (and into a bucket with server-side encryption), and the push is
// signed so the receiver knows it came from us unaltered.
//
// The conditions of 网络数据安全管理条例 Art. 25 are checked and recorded
// in the audit (transfer.conditions_checked) before any store is asked:
// the requester's identity was verified; the receiver is a configured
// handler with a stated purpose and legal basis; the data is the person's
// own (the request is theirs, and every store exports by the subject's own
// key); the transfer is technically feasible (the receiver has a channel).

const deliveryTransfer = "transfer"

// recordTransferConditions checks and audits the Art. 25 conditions of a
// transfer in the plan's transaction. A receiver no longer configured
// fails the plan (staff see it), rather than sending anywhere else.
func (p *Pipeline) recordTransferConditions(ctx context.Context, tx pgx.Tx, r *rights.Request, now time.Time) error {
	name := ""
	if r.Details != nil {
		name = r.Details.Receiver
	}
	rc, ok := p.settings.Receiver(name)
	if !ok {
		return fmt.Errorf("request %s: transfer receiver %q is no longer configured", r.ID, name)
	}
	method := ""
	if r.Verification != nil {
		method = r.Verification.Method
	}
	conditions := map[string]any{
		"identity_verified":    r.VerifiedAt != nil && method != "",
		"verification_method":  method,
		"receiver_configured":  true,
		"purpose":              rc.Purpose.EN,
		"legal_basis":          rc.LegalBasis.EN,
		"own_data":             r.Relation == rights.RelationSelf,
		"technically_feasible": rc.Webhook != nil || rc.S3 != nil,
	}
	return storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: now, Actor: rights.ActorSystem,
		Action: "transfer.conditions_checked", Detail: map[string]any{"receiver": rc.Name, "channel": rc.Channel(), "conditions": conditions}})
}

// transferArchive delivers a transfer's archive to its receiver, once: the
// delivery is recorded in deliveries (with its audit event) before the
// requester is told, and a rerun that finds it sends nothing. A crash
// between the push and its record pushes again, the same archive with the
// same Idempotency-Key (webhook) or to the same object key (S3).
func (p *Pipeline) transferArchive(ctx context.Context, r *rights.Request, export *storage.Export) error {
	done, err := storage.GetDelivery(ctx, p.db.Pool, r.ID, deliveryTransfer)
	if err != nil || done != nil {
		return err
	}
	rc, ok := p.settings.Receiver(r.Details.Receiver)
	if !ok {
		return fmt.Errorf("request %s: transfer receiver %q is no longer configured", r.ID, r.Details.Receiver)
	}
	location := ""
	if export != nil {
		if rc.S3 != nil {
			location, err = p.transferToS3(ctx, rc, export)
		} else {
			location, err = p.transferToWebhook(ctx, r, rc, export)
		}
		if err != nil {
			return fmt.Errorf("transfer %s to %s: %w", r.ID, rc.Name, err)
		}
	}
	now := p.now().UTC()
	return p.db.InTx(ctx, func(tx pgx.Tx) error {
		if err := storage.PutDelivery(ctx, tx, storage.Delivery{RequestID: r.ID, Kind: deliveryTransfer,
			MessageID: r.ID + ".transfer@datarights", SentAt: now}); err != nil {
			return err
		}
		detail := map[string]any{"receiver": rc.Name, "channel": rc.Channel()}
		if export != nil {
			detail["bytes"], detail["sha256"], detail["location"] = export.Bytes, export.SHA256, location
		}
		return storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: now, Actor: rights.ActorSystem,
			Action: "transfer.delivered", Detail: detail})
	})
}

// TransferHeaderRequest and TransferHeaderReceiver name the request and the
// receiver on a transfer push; TransferHeaderSHA256 is the archive's hash.
const (
	TransferHeaderRequest  = "X-Datarights-Request-Id"
	TransferHeaderReceiver = "X-Datarights-Receiver"
	TransferHeaderSHA256   = "X-Datarights-Content-Sha256"
)

// transferToWebhook POSTs the archive, signed (scheme v2, the body's hash
// being the archive's), with the request id as Idempotency-Key. 200, 201,
// 202 and 204 are success; anything else is retried.
func (p *Pipeline) transferToWebhook(ctx context.Context, r *rights.Request, rc config.TransferReceiver, export *storage.Export) (string, error) {
	body, size, err := p.dest.Open(ctx, export.Location)
	if err != nil {
		return "", err
	}
	defer body.Close()
	digest, err := hex.DecodeString(export.SHA256)
	if err != nil {
		return "", fmt.Errorf("the archive's hash: %w", err)
	}
	timeout := rc.Webhook.Timeout
	if timeout <= 0 {
		timeout = p.settings.Worker.JobTimeout
	}
	callCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(callCtx, http.MethodPost, rc.Webhook.URL, body)
	if err != nil {
		return "", errors.New("the receiver's url cannot be called")
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/zip")
	req.Header.Set("User-Agent", "datarights-webhook/2")
	req.Header.Set("Idempotency-Key", r.ID+".transfer")
	req.Header.Set(TransferHeaderRequest, r.ID)
	req.Header.Set(TransferHeaderReceiver, rc.Name)
	req.Header.Set(TransferHeaderSHA256, export.SHA256)
	stores.SignHTTPRequestDigest(req, []byte(rc.Webhook.Secret), digest, time.Now())
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if rc.CAFile != "" {
		pem, err := os.ReadFile(rc.CAFile)
		if err != nil {
			return "", fmt.Errorf("ca_file: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return "", errors.New("ca_file holds no PEM certificate")
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL
		}
		return "", fmt.Errorf("push failed: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch resp.StatusCode {
	case http.StatusOK, http.StatusCreated, http.StatusAccepted, http.StatusNoContent:
		return "webhook", nil
	}
	return "", fmt.Errorf("the receiver answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
}

// transferToS3 puts the archive into the receiver's bucket, under its
// prefix, named by the request.
func (p *Pipeline) transferToS3(ctx context.Context, rc config.TransferReceiver, export *storage.Export) (string, error) {
	dest, err := exporters.NewS3Destination(ctx, *rc.S3)
	if err != nil {
		return "", err
	}
	// Streamed from our destination into theirs, a part at a time: no
	// copy on this host's disk, so any worker can push any transfer.
	src, _, err := p.dest.Open(ctx, export.Location)
	if err != nil {
		return "", err
	}
	defer src.Close()
	if err := dest.Upload(ctx, export.FileName, src); err != nil {
		return "", err
	}
	return dest.Location(export.FileName), nil
}
