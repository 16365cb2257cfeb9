package jobs

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/datarights/datarights/exporters"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// Exported copies. The assemble step builds the archive from the staged
// datasets — encrypted with a fresh random password, which never goes into
// an email —, stores it at the configured destination (a local directory or
// S3) and decides how it is delivered: attached when it is small enough,
// otherwise by a link that expires. The password is shown once: on the
// verified requester's status page, or to staff to read out.

// archiveName is the requester's file name for a request's archive.
func archiveName(r *rights.Request) string { return "personal-information-" + r.ID + ".zip" }

// assembleWorker builds the archive from the staged parts.
type assembleWorker struct {
	river.WorkerDefaults[AssembleArgs]
	p *Pipeline
}

func (w *assembleWorker) Work(ctx context.Context, job *river.Job[AssembleArgs]) error {
	p := w.p
	r, err := storage.GetRequest(ctx, p.db.Pool, job.Args.RequestID)
	if err != nil {
		return err
	}
	if r.Status != rights.StatusAssembling {
		return nil
	}
	export, res, err := p.buildExport(ctx, r)
	if err != nil {
		// On the last attempt the failure handler fails the request.
		return fmt.Errorf("assemble %s: %w", r.ID, err)
	}
	err = step(ctx, p, job, func(tx pgx.Tx) error {
		r, err := storage.LockRequest(ctx, tx, r.ID)
		if err != nil {
			return err
		}
		if r.Status != rights.StatusAssembling {
			return nil
		}
		if err := storage.PutExport(ctx, tx, *export); err != nil {
			return err
		}
		detail := map[string]any{"bytes": export.Bytes, "sha256": export.SHA256, "files": len(res.Files),
			"encryption": export.Encryption, "delivery": export.Delivery}
		if export.ExpiresAt != nil {
			detail["expires_at"] = export.ExpiresAt
		}
		if err := p.transition(ctx, tx, r, rights.StatusDelivering, export.CreatedAt, storage.Change{Actor: rights.ActorSystem,
			Action: "export.assembled", Detail: detail}); err != nil {
			return err
		}
		return p.insertTx(ctx, tx, DeliverArgs{RequestID: r.ID})
	})
	if err != nil {
		return err
	}
	// The staged parts live on in the archive; a failure here leaves only
	// disk to reclaim (the export sweep retries), never a wrong result.
	if err := p.staging.RemoveContext(ctx, r.ID); err != nil {
		p.logger.Warn("remove staging", "request_id", r.ID, "err", err)
	}
	return nil
}

// buildExport builds, encrypts and stores the request's archive and
// decides how it is delivered. Running it again builds a new archive with a
// new password, which replaces the first at the destination.
func (p *Pipeline) buildExport(ctx context.Context, r *rights.Request) (*storage.Export, exporters.ArchiveResult, error) {
	tasks, err := storage.ListTasks(ctx, p.db.Pool, r.ID)
	if err != nil {
		return nil, exporters.ArchiveResult{}, err
	}
	now := p.now().UTC()
	in := exporters.ArchiveInput{
		RequestID: r.ID, Product: r.Product, ProductName: p.productName(r.Product), Type: r.Type,
		Locale: r.Locale, ReceivedAt: r.ReceivedAt, GeneratedAt: now, StagingDir: p.staging.Dir(r.ID),
		Staged: p.staging.Opener(ctx, r.ID),
	}
	in.Categories, in.StoreDescriptions = map[string][2]string{}, map[string][2]string{}
	for name, text := range p.settings.Exports.Categories {
		in.Categories[name] = [2]string{text.ZH, text.EN}
	}
	in.StoreNames, in.DatasetLabels = map[string]string{}, map[string]string{}
	in.Location = p.location(r.Product)
	in.ZoneName = [2]string{zoneWords(rights.LocaleZH, in.Location), zoneWords(rights.LocaleEN, in.Location)}
	for _, s := range p.settings.Stores {
		if s.Description.ZH != "" || s.Description.EN != "" {
			in.StoreDescriptions[s.Name] = [2]string{s.Description.In(rights.LocaleZH), s.Description.In(rights.LocaleEN)}
		}
		if name := s.DisplayName.In(r.Locale); name != "" {
			in.StoreNames[s.Name] = name
		}
		for _, t := range s.Tables {
			if label := t.Label.In(r.Locale); label != "" {
				in.DatasetLabels[s.Name+"/"+t.Name] = label
			}
		}
	}
	for _, t := range tasks {
		part := exporters.StorePart{Store: t.Store}
		if t.Report != nil {
			part.Report = *t.Report
		}
		in.Stores = append(in.Stores, part)
	}
	password, err := exporters.NewPassword()
	if err != nil {
		return nil, exporters.ArchiveResult{}, err
	}
	if r.Type == rights.TypeTransfer {
		password = "" // for the receiver's systems, over TLS (transfer.go)
	}
	in.Password = password
	if err := os.MkdirAll(p.exports, 0o700); err != nil {
		return nil, exporters.ArchiveResult{}, err
	}
	name := archiveName(r)
	res, err := exporters.BuildArchive(ctx, in, filepath.Join(p.exports, "."+name+".building"))
	if err != nil {
		return nil, res, err
	}
	location, err := p.dest.Put(ctx, name, res.Path)
	if err != nil {
		_ = os.Remove(res.Path)
		return nil, res, err
	}
	if r.Type == rights.TypeTransfer {
		return &storage.Export{RequestID: r.ID, Location: location, FileName: name, Bytes: res.Bytes, SHA256: res.SHA256,
			CreatedAt: now, Encryption: "none", Delivery: deliveryTransfer}, res, nil
	}
	sealed, err := p.keys.Seal(purposeExportPassword, []byte(password), []byte(r.ID))
	if err != nil {
		return nil, res, err
	}
	e := &storage.Export{RequestID: r.ID, Location: location, FileName: name, Bytes: res.Bytes, SHA256: res.SHA256,
		CreatedAt: now, Encryption: "aes", PasswordSealed: sealed, Delivery: "attachment"}
	if res.Bytes > p.settings.SMTP.AttachmentLimitBytes {
		expires := now.Add(p.settings.Exports.LinkTTL)
		e.Delivery, e.ExpiresAt = "link", &expires
		if p.settings.Exports.Links == "presigned" {
			// Presigned once, here: a resent email carries the same link.
			u, err := p.dest.Presign(ctx, location, name, p.settings.Exports.LinkTTL)
			if err != nil {
				return nil, res, err
			}
			if e.LinkURLSealed, err = p.keys.Seal(purposePresignedURL, []byte(u), []byte(r.ID)); err != nil {
				return nil, res, err
			}
		} else if e.LinkSecret, e.LinkTokenHash, err = p.newToken(purposeDownloadLink, r.ID); err != nil {
			return nil, res, err
		}
	}
	return e, res, nil
}

func newLinkToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// DownloadURL is the service's download link for a token.
func (p *Pipeline) DownloadURL(token string) string {
	return strings.TrimSuffix(p.settings.HTTP.PublicURL, "/") + "/downloads/" + token
}

// StatusURL is a self-service request's status page.
func (p *Pipeline) StatusURL(requestID string) string {
	return strings.TrimSuffix(p.settings.HTTP.PublicURL, "/") + "/privacy/requests/" + requestID
}

// ExportView is what the requester (or staff) may see of an export.
type ExportView struct {
	Delivery  string     `json:"delivery"` // attachment | link
	FileName  string     `json:"file_name"`
	Bytes     int64      `json:"bytes"`
	SHA256    string     `json:"sha256"`
	URL       string     `json:"download_url,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Password is set once, in the answer that reveals it.
	Password         string     `json:"password,omitempty"`
	PasswordShownAt  *time.Time `json:"password_shown_at,omitempty"`
	PasswordShownVia string     `json:"password_shown_via,omitempty"`
	// PasswordAvailable says the password can still be shown (once).
	PasswordAvailable bool               `json:"password_available"`
	PurgedAt          *time.Time         `json:"purged_at,omitempty"`
	Downloads         []storage.Download `json:"downloads"`
}

func (p *Pipeline) exportView(e *storage.Export, downloads []storage.Download) (*ExportView, error) {
	if downloads == nil {
		downloads = []storage.Download{}
	}
	u, err := p.linkURL(e)
	if err != nil {
		return nil, err
	}
	return &ExportView{Delivery: e.Delivery, FileName: e.FileName, Bytes: e.Bytes, SHA256: e.SHA256, URL: u,
		ExpiresAt: e.ExpiresAt, PasswordShownAt: e.PasswordShownAt, PasswordShownVia: e.PasswordShownVia,
		PasswordAvailable: e.PasswordSealed != "" && e.PasswordShownAt == nil, PurgedAt: e.PurgedAt, Downloads: downloads}, nil
}

// Export returns what staff see of a request's export, password excepted;
// nil when there is none.
func (p *Pipeline) Export(ctx context.Context, requestID string) (*ExportView, error) {
	e, err := storage.GetExport(ctx, p.db.Pool, requestID)
	if err != nil || e == nil {
		return nil, err
	}
	downloads, err := storage.ListDownloads(ctx, p.db.Pool, requestID)
	if err != nil {
		return nil, err
	}
	return p.exportView(e, downloads)
}

// RevealPassword returns the password of a request's archive and erases
// it: it is shown once, to the verified requester on the status page (via
// "status_page") or to staff to read out (via "staff"), never emailed.
func (p *Pipeline) RevealPassword(ctx context.Context, requestID, via, actor string) (*ExportView, error) {
	var view *ExportView
	err := p.db.InTx(ctx, func(tx pgx.Tx) error {
		if via == "staff" {
			// A self-service requester's password is theirs alone: staff
			// never see it, or a staff member could open the copy, or burn
			// the requester's one showing.
			r, err := storage.LockRequest(ctx, tx, requestID)
			if err != nil {
				return err
			}
			if r.Channel == rights.ChannelSelfService {
				return rights.Errorf(rights.EForbidden, "the password of a self-service request is shown only to its requester, on the status page")
			}
		}
		e, err := storage.LockExport(ctx, tx, requestID)
		if err != nil {
			return err
		}
		switch {
		case e == nil:
			return rights.Errorf(rights.EConflict, "the copy is not ready yet")
		case e.Encryption != "aes":
			return rights.Errorf(rights.EConflict, "this copy has no password")
		case e.PasswordShownAt != nil:
			return rights.Errorf(rights.EConflict, "the password was already shown on %s (%s); it is shown only once — if it is lost, ask for a new copy",
				localTime(e.PasswordShownAt), e.PasswordShownVia)
		case e.PasswordSealed == "":
			return rights.Errorf(rights.EConflict, "the copy was deleted (%s); ask for a new copy", e.PurgeReason)
		}
		password, err := p.keys.Open(purposeExportPassword, e.PasswordSealed, []byte(requestID))
		if err != nil {
			return fmt.Errorf("password of %s: %w", requestID, err)
		}
		now := p.now().UTC()
		if err := storage.PasswordShown(ctx, tx, requestID, via, now); err != nil {
			return err
		}
		if err := storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: requestID, At: now, Actor: actor,
			Action: "export.password_shown", Detail: map[string]any{"via": via}}); err != nil {
			return err
		}
		if view, err = p.exportView(e, nil); err != nil {
			return err
		}
		view.Password, view.PasswordShownAt, view.PasswordShownVia, view.PasswordAvailable = string(password), &now, via, false
		return nil
	})
	return view, err
}

// SelfServiceStatus is what a verified self-service requester sees of
// their request.
type SelfServiceStatus struct {
	ID          string        `json:"id"`
	Product     string        `json:"product"`
	Type        rights.Type   `json:"type"`
	Status      rights.Status `json:"status"`
	ReceivedAt  time.Time     `json:"received_at"`
	DueAt       *time.Time    `json:"due_at"`
	LastDay     string        `json:"last_day,omitempty"`
	CompletedAt *time.Time    `json:"completed_at"`
	Refusal     string        `json:"refusal_reason,omitempty"`
	Export      *ExportView   `json:"export,omitempty"`
	// Contacts are the addresses the request must prove (or proved) with
	// a code sent to them: field, kind, whether confirmed.
	Contacts []*storage.Contact `json:"contacts,omitempty"`
	// Answer is staff's reply to a complaint or explanation, once written;
	// Receiver the handler a transfer goes to (its display name).
	Answer   string `json:"answer,omitempty"`
	Receiver string `json:"receiver,omitempty"`
}

// CheckAccessKey returns the request the key opens; a wrong key or id is
// not found, the same answer either way.
func (p *Pipeline) CheckAccessKey(ctx context.Context, requestID, key string) (*rights.Request, error) {
	notFound := rights.Errorf(rights.ENotFound, "no request with this id and access key")
	hash, err := storage.AccessTokenHash(ctx, p.db.Pool, requestID)
	if err != nil {
		return nil, err
	}
	if hash == "" || key == "" || subtle.ConstantTimeCompare([]byte(hashCode(requestID, key)), []byte(hash)) != 1 {
		return nil, notFound
	}
	return storage.GetRequest(ctx, p.db.Pool, requestID)
}

// Status returns a verified self-service request's status; with reveal,
// also the copy's password, once.
func (p *Pipeline) Status(ctx context.Context, requestID, key string, reveal bool) (*SelfServiceStatus, error) {
	r, err := p.CheckAccessKey(ctx, requestID, key)
	if err != nil {
		return nil, err
	}
	st := &SelfServiceStatus{ID: r.ID, Product: r.Product, Type: r.Type, Status: r.Status, ReceivedAt: r.ReceivedAt,
		DueAt: r.DueAt, LastDay: p.LastDay(r), CompletedAt: r.CompletedAt}
	if r.Refusal != nil {
		st.Refusal = string(r.Refusal.Reason)
	}
	if d := r.Details; d != nil {
		if d.Answer != nil {
			st.Answer = d.Answer.Text
		}
		if rc, ok := p.settings.Receiver(d.Receiver); ok {
			st.Receiver = rc.Label()
		}
	}
	if st.Contacts, err = storage.ListContacts(ctx, p.db.Pool, r.ID, false); err != nil {
		return nil, err
	}
	if reveal {
		st.Export, err = p.RevealPassword(ctx, r.ID, "status_page", rights.ActorRequester)
		return st, err
	}
	st.Export, err = p.Export(ctx, r.ID)
	return st, err
}

// Download is an open download of an export.
type Download struct {
	Body     io.ReadCloser
	Size     int64
	FileName string
	finish   func(sent int64, complete bool)
}

// Finish records the download: how much was sent and whether all of it.
func (d *Download) Finish(sent int64, complete bool) {
	d.Body.Close()
	d.finish(sent, complete)
}

// OpenDownload opens the export a download link names. An unknown token is
// not found; a link past its expiry (or whose copy was deleted) is expired,
// and the refusal is audited.
func (p *Pipeline) OpenDownload(ctx context.Context, token string) (*Download, *storage.Export, error) {
	// Looked up by the token's hash: the database holds no token to
	// compare with, and a hash of a 256-bit token leaks nothing by timing.
	e, err := storage.ExportByTokenHash(ctx, p.db.Pool, tokenHash(token))
	if err != nil {
		return nil, nil, err
	}
	if e == nil {
		return nil, nil, rights.Errorf(rights.ENotFound, "this download link is not valid")
	}
	now := p.now().UTC()
	if e.PurgedAt != nil || e.ExpiresAt == nil || !now.Before(*e.ExpiresAt) {
		err := p.db.InTx(ctx, func(tx pgx.Tx) error {
			return storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: e.RequestID, At: now, Actor: rights.ActorRequester,
				Action: "export.link_refused", Detail: map[string]any{"reason": "expired", "expires_at": e.ExpiresAt}})
		})
		if err != nil {
			return nil, e, err
		}
		return nil, e, rights.Errorf(rights.EExpired, "this download link expired on %s", localTime(e.ExpiresAt))
	}
	body, size, err := p.dest.Open(ctx, e.Location)
	if err != nil {
		return nil, e, err
	}
	return &Download{Body: body, Size: size, FileName: e.FileName, finish: func(sent int64, complete bool) {
		// Recorded even when the requester hung up: an interrupted download
		// is a download.
		ctx := context.WithoutCancel(ctx)
		err := p.db.InTx(ctx, func(tx pgx.Tx) error {
			return storage.RecordDownload(ctx, tx, e.RequestID, storage.Download{At: p.now().UTC(), Bytes: sent, Complete: complete})
		})
		if err != nil {
			p.logger.Error("record download", "request_id", e.RequestID, "err", err)
		}
	}}, e, nil
}

// ExportSweepArgs purges archives that are no longer needed. It runs
// periodically on the leader.
type ExportSweepArgs struct{}

func (ExportSweepArgs) Kind() string { return "export_sweep" }

// PurgeResult says what one export sweep did.
type PurgeResult struct {
	Purged  int // archives deleted
	Staging int // staging directories of closed requests removed
	Failed  int
}

// SweepExports deletes, at the pipeline's clock, every archive whose link
// has expired, that was delivered attached, or whose request was closed
// without it; and the staged parts of closed requests. Each deletion is
// audited on its request; a link that expired unused is followed by a
// notice to the requester.
func (p *Pipeline) SweepExports(ctx context.Context) (PurgeResult, error) {
	var res PurgeResult
	now := p.now().UTC()
	exports, reasons, err := storage.Purgeable(ctx, p.db.Pool, now, 500)
	if err != nil {
		return res, err
	}
	for i, e := range exports {
		marked := false
		err := p.db.InTx(ctx, func(tx pgx.Tx) error {
			current, err := storage.LockExport(ctx, tx, e.RequestID)
			if err != nil || current == nil || current.PurgedAt != nil || current.Location != e.Location {
				return err // purged already, or rebuilt since
			}
			if err := p.markPurged(ctx, tx, e.RequestID, reasons[i], now); err != nil {
				return err
			}
			marked = true
			if reasons[i] != "link_expired" {
				return nil
			}
			downloads, err := storage.ListDownloads(ctx, tx, e.RequestID)
			if err != nil || len(downloads) > 0 || p.settings.Exports.Links == "presigned" {
				return err // used (or, presigned, unknowable): no notice
			}
			return p.insertTx(ctx, tx, NoticeArgs{RequestID: e.RequestID, Notice: noticeLinkExpired})
		})
		if err != nil {
			return res, err
		}
		if marked {
			res.Purged++
		}
	}
	// Delete the files of every purged export not yet gone: those just
	// marked, and any whose deletion a crash or a store outage interrupted.
	undeleted, err := storage.Undeleted(ctx, p.db.Pool, 500)
	if err != nil {
		return res, err
	}
	for _, e := range undeleted {
		if err := p.deleteArchive(ctx, e); err != nil {
			res.Failed++
			p.logger.WarnContext(ctx, "delete purged export", "request_id", e.RequestID, "err", err)
		}
	}
	if err := p.expirePasswords(ctx, now); err != nil {
		return res, err
	}
	n, err := p.purgeStaging(ctx, now)
	res.Staging = n
	return res, err
}

// markPurged records, in tx, that an export is purged, with its audit
// event; the file is deleted after the transaction commits.
func (p *Pipeline) markPurged(ctx context.Context, tx pgx.Tx, requestID, reason string, now time.Time) error {
	if err := storage.PurgeExport(ctx, tx, requestID, reason, now); err != nil {
		return err
	}
	return storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: requestID, At: now, Actor: rights.ActorSystem,
		Action: "export.purged", Detail: map[string]any{"reason": reason}})
}

// deleteArchive deletes a purged export's file and records that it is gone.
func (p *Pipeline) deleteArchive(ctx context.Context, e *storage.Export) error {
	if err := p.dest.Delete(ctx, e.Location); err != nil {
		return err
	}
	return storage.FileDeleted(ctx, p.db.Pool, e.RequestID)
}

// expirePasswords erases the passwords of attached copies never asked for
// within the link lifetime, each audited.
func (p *Pipeline) expirePasswords(ctx context.Context, now time.Time) error {
	return p.db.InTx(ctx, func(tx pgx.Tx) error {
		ids, err := storage.ExpirePasswords(ctx, tx, now.Add(-p.settings.Exports.LinkTTL))
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: id, At: now, Actor: rights.ActorSystem,
				Action: "export.password_expired"}); err != nil {
				return err
			}
		}
		return nil
	})
}

// purgeStaging removes the staged parts of closed requests: a refused or
// cancelled request's, and any a completed request left behind.
func (p *Pipeline) purgeStaging(ctx context.Context, now time.Time) (int, error) {
	ids, err := p.staging.RequestsContext(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		r, err := storage.GetRequest(ctx, p.db.Pool, id)
		if rights.ErrorCode(err) == rights.ENotFound {
			continue // not ours to judge (another deployment's directory?)
		}
		if err != nil {
			return n, err
		}
		if r.Status != rights.StatusCompleted && r.Status != rights.StatusRefused && r.Status != rights.StatusCancelled {
			continue
		}
		if err := p.staging.RemoveContext(ctx, id); err != nil {
			return n, err
		}
		n++
		if err := p.db.InTx(ctx, func(tx pgx.Tx) error {
			return storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: id, At: now, Actor: rights.ActorSystem,
				Action: "staging.purged", Detail: map[string]any{"status": r.Status}})
		}); err != nil {
			return n, err
		}
	}
	return n, nil
}

type exportSweepWorker struct {
	river.WorkerDefaults[ExportSweepArgs]
	p *Pipeline
}

func (w *exportSweepWorker) Work(ctx context.Context, job *river.Job[ExportSweepArgs]) error {
	// Runs on start: what an upgrade left in plain is sealed right away.
	if n, err := w.p.SealLegacySecrets(ctx); err != nil {
		return err
	} else if n > 0 {
		w.p.logger.InfoContext(ctx, "sealed secrets kept in plain before the upgrade", "rows", n)
	}
	res, err := w.p.SweepExports(ctx)
	if res.Purged+res.Staging+res.Failed > 0 {
		w.p.logger.InfoContext(ctx, "export sweep", "purged", res.Purged, "staging", res.Staging, "failed", res.Failed)
	}
	return err
}
