package jobs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// The OpenDSR partner API's side of the pipeline (docs/opendsr.md): a
// partner's request is filed through the same path as a staff ticket
// (received, then verified by the verify job: the partner attested the
// person's identity), and every change of its OpenDSR status owes each of
// its status_callback_urls a signed callback, recorded and enqueued in the
// transaction that changes the status.

// OpenDSR headers (OpenDSR §8.3, §8.6). The OpenGDPR names are sent too:
// the specification asks processors to honour the earlier names (§10.1).
const (
	HeaderOpenDSRSignature  = "X-OpenDSR-Signature"
	HeaderOpenDSRDomain     = "X-OpenDSR-Processor-Domain"
	HeaderOpenGDPRSignature = "X-OpenGDPR-Signature"
	HeaderOpenGDPRDomain    = "X-OpenGDPR-Processor-Domain"
)

// OpenDSRAPIVersion is the OpenDSR version implemented.
const OpenDSRAPIVersion = "1.0"

// PartnerFiling is a partner's request, mapped to the service's terms by
// the API.
type PartnerFiling struct {
	Partner          config.Partner
	SubjectRequestID string
	// BodyHash identifies the request's content: the same partner sending
	// the same subject_request_id with another hash is a conflict.
	BodyHash     string
	CallbackURLs []string
	Intake       rights.Intake
}

// SubmitPartner files a partner's request: like a staff ticket, it is
// stored as received with its audit event and the verify job in one
// transaction; the partner is its filer (created_by partner:<name>) and
// attests the person's identity (verification method partner_attested).
// Resent with the same subject_request_id and content, it returns the
// request the first one created (created false).
func (p *Pipeline) SubmitPartner(ctx context.Context, f PartnerFiling) (r *rights.Request, created bool, err error) {
	in := f.Intake
	createdBy := rights.ActorPartner(f.Partner.Name)
	idem := &storage.Idempotency{Key: f.SubjectRequestID, BodyHash: f.BodyHash}
	// A resend is answered before the intake is checked again (or the
	// limit counted): the configuration may have changed since, and the
	// partner must still learn what became of its request.
	if r, err := p.replay(ctx, createdBy, idem, "subject_request_id"); r != nil || err != nil {
		return r, false, err
	}
	now := p.now().UTC()
	in.Verification = &rights.Verification{Method: rights.VerificationPartnerAttested, Reference: f.SubjectRequestID, By: createdBy}
	if err := p.validateIntake(&in, rights.ChannelPartner); err != nil {
		return nil, false, err
	}
	r = p.newRequest(ctx, in, rights.ChannelPartner, rights.StatusReceived, createdBy, now)
	r.Verification = in.Verification
	err = p.db.InTx(ctx, func(tx pgx.Tx) error {
		wait, err := storage.TakeThrottle(ctx, tx, storage.ThrottlePartnerRequest, []byte(f.Partner.Name), now,
			storage.Window{Limit: f.Partner.RequestsPerMinute, Per: time.Minute},
			storage.Window{Limit: f.Partner.RequestsPerDay, Per: 24 * time.Hour})
		if err != nil {
			return err
		}
		if wait > 0 {
			return &rights.Error{Code: rights.ETooMany, RetryAfter: wait,
				Message: "this partner has filed as many requests as its limit allows; try again later (see Retry-After)"}
		}
		item := &storage.Received{Request: r, Idem: idem, Event: rights.AuditEvent{
			RequestID: r.ID, At: now, Actor: createdBy, Action: "request.received", ToStatus: r.Status,
			Detail: intakeDetail(r),
		}}
		if err := storage.InsertReceived(ctx, tx, []*storage.Received{item}); err != nil {
			return err
		}
		if !item.Created {
			return errPartnerResent // rolls back the limit's count too
		}
		if err := storage.InsertOpenDSRLink(ctx, tx, storage.OpenDSRLink{RequestID: r.ID, Partner: f.Partner.Name,
			SubjectRequestID: f.SubjectRequestID, CallbackURLs: f.CallbackURLs}); err != nil {
			return err
		}
		return p.insertTx(ctx, tx, VerifyArgs{RequestID: r.ID})
	})
	if errors.Is(err, errPartnerResent) {
		// The same request sent twice at once: the first committed.
		r, err := p.replay(ctx, createdBy, idem, "subject_request_id")
		if err == nil && r == nil {
			err = fmt.Errorf("subject_request_id %q: refused as used, then not found", idem.Key)
		}
		return r, false, err
	}
	if err != nil {
		return nil, false, err
	}
	p.metrics.RequestReceived(r.Product, r.Type, r.Channel)
	return r, true, nil
}

// errPartnerResent: a request with the same subject_request_id committed
// first (the same request sent twice at once).
var errPartnerResent = errors.New("subject_request_id already used")

// CancelPartner cancels a partner's request while it is still pending
// (OpenDSR §9): nothing has been done to the person's data yet. Its
// callbacks are owed as for any other change. It returns the request as
// cancelled; a request no longer pending is a conflict.
func (p *Pipeline) CancelPartner(ctx context.Context, partner, subjectRequestID string) (*rights.Request, error) {
	var r *rights.Request
	err := p.db.InTx(ctx, func(tx pgx.Tx) error {
		found, _, err := storage.FindPartnerRequest(ctx, tx, partner, subjectRequestID)
		if err != nil {
			return err
		}
		if r, err = storage.LockRequest(ctx, tx, found.ID); err != nil {
			return err
		}
		if r.Status == rights.StatusCancelled {
			return nil // cancelled already: the same answer again
		}
		if !rights.OpenDSRCancellable(r.Status) {
			return &rights.Error{Code: rights.EConflict, Message: fmt.Sprintf(
				"the request is %s and can no longer be cancelled: only a pending request can (OpenDSR §9)", rights.OpenDSRStatus(r.Status))}
		}
		return p.transition(ctx, tx, r, rights.StatusCancelled, p.now().UTC(), storage.Change{
			Actor: rights.ActorPartner(partner), Action: "request.cancelled", Detail: map[string]any{"by": "partner"},
		})
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// transition is storage.Transition, and for a partner's request whose
// OpenDSR status changes with it, the callbacks owed for the change: one
// row and one job per callback URL, in the same transaction. Every status
// change in the pipeline goes through here.
func (p *Pipeline) transition(ctx context.Context, tx pgx.Tx, r *rights.Request, to rights.Status, at time.Time, c storage.Change) error {
	from := r.Status
	if err := storage.Transition(ctx, tx, r, to, at, c); err != nil {
		return err
	}
	if r.Channel != rights.ChannelPartner || rights.OpenDSRStatus(from) == rights.OpenDSRStatus(to) {
		return nil
	}
	return p.oweCallbacks(ctx, tx, r, at)
}

func (p *Pipeline) oweCallbacks(ctx context.Context, tx pgx.Tx, r *rights.Request, at time.Time) error {
	link, err := storage.GetOpenDSRLink(ctx, tx, r.ID)
	if err != nil || link == nil {
		return err
	}
	for _, u := range link.CallbackURLs {
		id, err := storage.InsertOpenDSRCallback(ctx, tx, storage.OpenDSRCallback{RequestID: r.ID, URL: u,
			RequestStatus: rights.OpenDSRStatus(r.Status), Status: r.Status, CreatedAt: at})
		if err != nil {
			return err
		}
		if err := p.insertWith(ctx, tx, OpenDSRCallbackArgs{CallbackID: id},
			&river.InsertOpts{MaxAttempts: p.settings.OpenDSR.CallbackAttempts}); err != nil {
			return err
		}
	}
	return nil
}

// insertWith enqueues a job in tx with its own options.
func (p *Pipeline) insertWith(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) error {
	client := p.client
	if c, err := river.ClientFromContextSafely[pgx.Tx](ctx); err == nil {
		client = c
	}
	if client == nil {
		return errors.New("jobs: no River client (call NewClient first)")
	}
	if _, err := client.InsertTx(ctx, tx, args, opts); err != nil {
		return fmt.Errorf("enqueue %s: %w", args.Kind(), err)
	}
	return nil
}

// ExpectedCompletion is the OpenDSR expected_completion_time of r: its
// deadline, or, while its clock has not started (a policy counting from
// verification, before the verify job ran), the deadline it would have if
// verified now.
func (p *Pipeline) ExpectedCompletion(r *rights.Request) time.Time {
	if r.DueAt != nil {
		return r.DueAt.UTC()
	}
	policy := p.policies[r.Product]
	return policy.Compute(p.now(), r.Clock, p.now()).Due.UTC()
}

// OpenDSRCallbackArgs sends one status callback (opendsr_callbacks row) to
// a partner. It carries the row's id only.
type OpenDSRCallbackArgs struct {
	CallbackID int64 `json:"callback_id"`
}

func (OpenDSRCallbackArgs) Kind() string { return "opendsr_callback" }

// OpenDSRCallback is the body of a status callback (OpenDSR §8.6): nothing
// about the person, only the request's identifiers and status.
type OpenDSRCallback struct {
	ControllerID           string         `json:"controller_id"`
	ExpectedCompletionTime string         `json:"expected_completion_time"`
	StatusCallbackURL      string         `json:"status_callback_url"`
	SubjectRequestID       string         `json:"subject_request_id"`
	RequestStatus          string         `json:"request_status"`
	APIVersion             string         `json:"api_version"`
	Extensions             map[string]any `json:"extensions,omitempty"`
}

// OpenDSRExtension is this service's extension of a status: the request's
// own status, and a refusal's reason code, when OpenDSR's four statuses
// say less (a refused request shows as cancelled).
func OpenDSRExtension(r *rights.Request, status rights.Status) map[string]any {
	ext := map[string]any{"status": string(status)}
	if status == rights.StatusRefused && r.Refusal != nil {
		ext["refusal_reason"] = string(r.Refusal.Reason)
	}
	return ext
}

type openDSRCallbackWorker struct {
	river.WorkerDefaults[OpenDSRCallbackArgs]
	p      *Pipeline
	client *http.Client
}

func (w *openDSRCallbackWorker) Work(ctx context.Context, job *river.Job[OpenDSRCallbackArgs]) error {
	p := w.p
	cb, err := storage.GetOpenDSRCallback(ctx, p.db.Pool, job.Args.CallbackID, false)
	if err != nil {
		return err
	}
	if cb.DeliveredAt != nil {
		return nil // an earlier run delivered it and committed
	}
	r, err := storage.GetRequest(ctx, p.db.Pool, cb.RequestID)
	if err != nil {
		return err
	}
	link, err := storage.GetOpenDSRLink(ctx, p.db.Pool, cb.RequestID)
	if err != nil {
		return err
	}
	o := &p.settings.OpenDSR
	partner, ok := o.PartnerByName(link.Partner)
	if !ok || !partner.AllowsCallback(cb.URL) {
		// The partner, or this URL, was removed from the configuration
		// since: nothing is sent to an address no longer allowed.
		_ = storage.RecordOpenDSRCallbackFailure(ctx, p.db.Pool, cb.ID, "partner or callback URL no longer configured")
		return river.JobCancel(errors.New("opendsr callback: partner or callback URL no longer configured"))
	}
	body, err := json.Marshal(OpenDSRCallback{
		ControllerID: link.Partner, ExpectedCompletionTime: p.ExpectedCompletion(r).Format(time.RFC3339),
		StatusCallbackURL: cb.URL, SubjectRequestID: link.SubjectRequestID, RequestStatus: cb.RequestStatus,
		APIVersion: OpenDSRAPIVersion,
		Extensions: map[string]any{o.ProcessorDomain: OpenDSRExtension(r, cb.Status)},
	})
	if err != nil {
		return err
	}
	if err := w.post(ctx, cb.URL, body); err != nil {
		_ = storage.RecordOpenDSRCallbackFailure(ctx, p.db.Pool, cb.ID, err.Error())
		if job.Attempt >= job.MaxAttempts {
			p.logger.ErrorContext(ctx, "opendsr callback given up", "callback_id", cb.ID, "request_id", cb.RequestID,
				"partner", link.Partner, "attempts", job.Attempt, "err", err)
		}
		return err
	}
	return step(ctx, p, job, func(tx pgx.Tx) error {
		return storage.MarkOpenDSRCallbackDelivered(ctx, tx, cb.ID, p.now().UTC())
	})
}

// post sends a signed callback. Only a 2xx answer delivers it; redirects
// are not followed (the URL was allowed, its redirect target was not).
func (w *openDSRCallbackWorker) post(ctx context.Context, u string, body []byte) error {
	o := &w.p.settings.OpenDSR
	sig, err := SignOpenDSR(o, body)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.CallbackTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("opendsr callback: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderOpenDSRDomain, o.ProcessorDomain)
	req.Header.Set(HeaderOpenDSRSignature, sig)
	req.Header.Set(HeaderOpenGDPRDomain, o.ProcessorDomain)
	req.Header.Set(HeaderOpenGDPRSignature, sig)
	resp, err := w.client.Do(req)
	if err != nil {
		// The URL is the partner's own endpoint, not personal data.
		return fmt.Errorf("opendsr callback: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("opendsr callback: answered %d", resp.StatusCode)
	}
	return nil
}

func newOpenDSRCallbackWorker(p *Pipeline) *openDSRCallbackWorker {
	return &openDSRCallbackWorker{p: p, client: &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// SignOpenDSR signs body with the processor's key: RSASSA-PKCS1-v1_5 over
// its SHA-256 digest, base64 (OpenDSR §4.2, §7.3 processor_signature; the
// scheme OpenDSR processors use and controllers verify with the processor
// certificate).
func SignOpenDSR(o *config.OpenDSR, body []byte) (string, error) {
	if o.Key == nil {
		return "", errors.New("opendsr: no processor key configured")
	}
	sum := sha256.Sum256(body)
	sig, err := o.Key.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("opendsr: sign: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// OpenDSRTypeOf maps an OpenDSR subject_request_type to a right.
func OpenDSRTypeOf(t string) (rights.Type, bool) {
	rt, ok := rights.OpenDSRTypes[t]
	return rt, ok
}

// OpenDSRSupportedTypes are the OpenDSR types a partner may file, in the
// specification's order: those whose right the deployment supports and
// accepts a partner's attestation for (rights.<type>.verification_methods
// unset, or listing partner_attested).
func (p *Pipeline) OpenDSRSupportedTypes() []string {
	var out []string
	for _, t := range rights.OpenDSRTypeNames {
		right := rights.OpenDSRTypes[t]
		methods := p.settings.Rules(right).VerificationMethods
		if _, ok := rights.ActionFor(right); ok && (len(methods) == 0 || slices.Contains(methods, rights.VerificationPartnerAttested)) {
			out = append(out, t)
		}
	}
	return out
}

// OpenDSRIdentityTypes are the OpenDSR identity types accepted, sorted.
func (p *Pipeline) OpenDSRIdentityTypes() []string {
	var out []string
	for k := range p.settings.OpenDSR.Identities {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
