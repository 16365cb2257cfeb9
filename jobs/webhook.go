package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/exporters"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
	"github.com/datarights/datarights/storage/stores"
)

// Webhook stores (docs/webhook.md): the connector calls the service from the
// store task; a service that answers 202 calls back later, and the callback
// completes the waiting task here.

// CallbackPath is the API path a webhook store calls back on, before the task id.
const CallbackPath = "/api/v1/callbacks/tasks/"

// CallbackURL returns where a webhook store calls back about a task.
func (p *Pipeline) CallbackURL(taskID string) string {
	return strings.TrimRight(p.settings.HTTP.PublicURL, "/") + CallbackPath + taskID
}

// taskContext names the task in the context of its connector call.
func (p *Pipeline) taskContext(ctx context.Context, r *rights.Request, t *rights.Task) context.Context {
	return stores.WithTask(ctx, stores.TaskRef{RequestID: r.ID, TaskID: t.ID, CallbackURL: p.CallbackURL(t.ID)})
}

// Callback is a webhook store's signed call back about one of its tasks.
type Callback struct {
	TaskID string
	// Method is the HTTP method the callback came with; it is signed.
	Method    string
	Signature stores.SignatureHeaders
	// Body is the result, as in a 200 answer; it is read once, up to
	// stores.ResultLimit bytes for the task's action.
	Body io.Reader
}

// signedTarget is the request target a callback must be signed for: the
// path of the URL datarights handed out for it (callback_url, ack_url),
// whatever path the callback arrived on (a proxy may rewrite it). A
// signature for another task's or request's URL does not verify.
func signedTarget(callbackURL string) (string, error) {
	u, err := url.Parse(callbackURL)
	if err != nil {
		return "", fmt.Errorf("callback url: %w", err)
	}
	return stores.RequestTarget(u), nil
}

// signatureWindow is how far a signed timestamp may be from now.
func (p *Pipeline) signatureWindow() time.Duration {
	if w := p.settings.HTTP.SignatureWindow; w > 0 {
		return w
	}
	return stores.DefaultSignatureWindow
}

// CompleteTaskFromCallback completes a task with the result its webhook
// store called back with, and moves the request on when it was the last task.
//
// An unknown task, or one whose store is not a webhook store, is not found
// before any signature is checked: the id is all the route has to find the
// secret by. Then the callback must be signed (scheme v2) with the store's
// secret for this method, this task's callback URL and this body, within
// the signature window, with a nonce not spent before — else unauthorized,
// saying nothing of which part failed. The body is spooled to disk (up to
// the action's limit, else too_large) while its signature is computed, and
// only read as a result once the signature holds. The nonce is spent in the
// transaction that completes the task, so a replay of an accepted callback,
// even one racing it, is unauthorized and changes nothing. The task must be
// waiting — or still pending, when the callback overtakes the worker's
// record of the 202 — and its request in progress, else conflict.
func (p *Pipeline) CompleteTaskFromCallback(ctx context.Context, cb Callback) (*rights.Task, error) {
	notFound := rights.Errorf(rights.ENotFound, "no such task waits for a callback")
	if !storage.ValidID(cb.TaskID) {
		return nil, notFound
	}
	var (
		requestID, storeName string
		action               rights.TaskAction
	)
	err := p.db.Pool.QueryRow(ctx, `SELECT request_id::text, store, action FROM tasks WHERE id = $1`, cb.TaskID).
		Scan(&requestID, &storeName, &action)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound
	}
	if err != nil {
		return nil, fmt.Errorf("callback for task %s: %w", cb.TaskID, err)
	}
	store, ok := p.webhookStore(storeName)
	if !ok {
		return nil, notFound
	}
	target, err := signedTarget(p.CallbackURL(cb.TaskID))
	if err != nil {
		return nil, err
	}
	unauthorized := rights.Errorf(rights.EUnauthorized, "the callback's signature is not valid")
	verifier, err := stores.NewRequestVerifierAny(store.Webhook.VerifyingSecrets(), cb.Method, target, cb.Signature, time.Now(), p.signatureWindow())
	if err != nil {
		return nil, unauthorized
	}
	spool, dropSpool, err := p.spool(ctx, cb, verifier, stores.ResultLimit(action))
	if err != nil {
		return nil, err
	}
	defer dropSpool()
	signed, err := verifier.Verify()
	if err != nil {
		return nil, unauthorized
	}

	var task *rights.Task
	err = p.db.InTx(ctx, func(tx pgx.Tx) error {
		// First, so that a copy of this callback racing it waits here for
		// this transaction and then finds the nonce spent.
		if err := storage.UseNonce(ctx, tx, signed.Nonce, signed.NonceExpiresAt); err != nil {
			if errors.Is(err, storage.ErrNonceUsed) {
				return unauthorized
			}
			return fmt.Errorf("callback for task %s: %w", cb.TaskID, err)
		}
		// One callback per task at a time, across processes: two would
		// write the same staged files.
		var mine bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))`,
			"datarights.callback:"+cb.TaskID).Scan(&mine); err != nil {
			return fmt.Errorf("callback for task %s: %w", cb.TaskID, err)
		}
		if !mine {
			return rights.Errorf(rights.EUnavailable, "another callback for this task is being processed; try again shortly")
		}
		r, err := storage.GetRequest(ctx, tx, requestID)
		if err != nil {
			return err
		}
		if err := p.checkCallbackTask(ctx, tx, r, cb.TaskID); err != nil {
			return err
		}
		var sink rights.Sink
		if action == rights.ActionExport {
			if sink, err = p.staging.SinkContext(ctx, requestID, storeName); err != nil {
				return err
			}
		}
		report, err := stores.DecodeWebhookResult(spool, action, sink)
		if err != nil {
			return err
		}
		if sink != nil {
			if err := exporters.SyncSink(sink); err != nil {
				return err
			}
		}
		r, t, err := p.lockTask(ctx, tx, requestID, cb.TaskID)
		if err != nil {
			return err
		}
		if err := callbackState(r, t); err != nil {
			return err
		}
		task = t
		return p.finishTask(ctx, tx, r, t, report, p.now().UTC(), rights.ActorStore(storeName), "task.called_back",
			map[string]any{"signed_at": cb.Signature.Timestamp})
	})
	if err != nil {
		return nil, err
	}
	return task, nil
}

// webhookStore returns the configured webhook store named name.
func (p *Pipeline) webhookStore(name string) (config.Store, bool) {
	for _, s := range p.settings.Stores {
		if s.Name == name {
			return s, s.Kind == "webhook" && s.Webhook != nil && s.Webhook.Secret != ""
		}
	}
	return config.Store{}, false
}

// spool copies the callback's body, up to limit bytes, where it can be
// read again once the verifier, which hashes it on the way, accepts it:
// a private temporary file under data_dir, or, with a shared object store,
// an object under callbacks/ (no host keeps personal data on its disk).
// It returns the body to read and what throws the copy away.
func (p *Pipeline) spool(ctx context.Context, cb Callback, verifier io.Writer, limit int64) (io.Reader, func(), error) {
	if p.objects == nil {
		f, err := p.spoolCallback(cb, verifier, limit)
		if err != nil {
			return nil, nil, err
		}
		return f, func() {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}, nil
	}
	var suffix [8]byte
	_, _ = rand.Read(suffix[:]) // never fails
	// The task id was checked (storage.ValidID): a plain key element.
	key := "callbacks/" + cb.TaskID + "." + hex.EncodeToString(suffix[:]) + ".json"
	w, err := p.objects.Create(ctx, key)
	if err != nil {
		return nil, nil, fmt.Errorf("callback for task %s: %w", cb.TaskID, err)
	}
	n, err := io.Copy(io.MultiWriter(storeWriter{w}, verifier), io.LimitReader(cb.Body, limit+1))
	var storeErr storeError
	switch {
	case errors.As(err, &storeErr):
		w.Abort()
		return nil, nil, fmt.Errorf("callback for task %s: %w", cb.TaskID, storeErr.error)
	case err != nil:
		w.Abort()
		return nil, nil, rights.Errorf(rights.EInvalid, "the body could not be read")
	case n > limit:
		w.Abort()
		return nil, nil, stores.BodyTooLarge(limit)
	}
	if err := w.Commit(); err != nil {
		return nil, nil, fmt.Errorf("callback for task %s: %w", cb.TaskID, err)
	}
	drop := func() {
		// Even when the caller's context ended: it holds personal data.
		if err := p.objects.Delete(context.WithoutCancel(ctx), key); err != nil {
			p.logger.Warn("delete callback spool", "task_id", cb.TaskID, "err", err)
		}
	}
	rc, _, err := p.objects.Open(ctx, key)
	if err != nil {
		drop()
		return nil, nil, fmt.Errorf("callback for task %s: %w", cb.TaskID, err)
	}
	return rc, func() {
		_ = rc.Close()
		drop()
	}, nil
}

// storeWriter marks the errors of writing to the object store, to tell
// them from those of reading the caller's body.
type storeWriter struct{ w io.Writer }

type storeError struct{ error }

func (s storeWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if err != nil {
		err = storeError{err}
	}
	return n, err
}

// spoolCallback copies the callback's body, up to limit bytes, to a private
// temporary file under data_dir while the verifier hashes it, and returns
// the file rewound.
func (p *Pipeline) spoolCallback(cb Callback, verifier io.Writer, limit int64) (*os.File, error) {
	dir := filepath.Join(p.settings.DataDir, "callbacks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("callback for task %s: %w", cb.TaskID, err)
	}
	f, err := os.CreateTemp(dir, cb.TaskID+".*.json") // 0600: it holds personal data
	if err != nil {
		return nil, fmt.Errorf("callback for task %s: %w", cb.TaskID, err)
	}
	fail := func(err error) (*os.File, error) {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return nil, err
	}
	n, err := io.Copy(io.MultiWriter(f, verifier), io.LimitReader(cb.Body, limit+1))
	switch {
	case err != nil:
		var pathErr *os.PathError
		if errors.As(err, &pathErr) {
			return fail(fmt.Errorf("callback for task %s: %w", cb.TaskID, err))
		}
		return fail(rights.Errorf(rights.EInvalid, "the body could not be read"))
	case n > limit:
		return fail(stores.BodyTooLarge(limit))
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail(fmt.Errorf("callback for task %s: %w", cb.TaskID, err))
	}
	return f, nil
}

// checkCallbackTask checks, without locking, that the task may take a
// callback, before its result is staged.
func (p *Pipeline) checkCallbackTask(ctx context.Context, tx pgx.Tx, r *rights.Request, taskID string) error {
	tasks, err := storage.ListTasks(ctx, tx, r.ID)
	if err != nil {
		return err
	}
	for _, t := range tasks {
		if t.ID == taskID {
			return callbackState(r, t)
		}
	}
	return rights.Errorf(rights.ENotFound, "no such task waits for a callback")
}

// callbackState says whether a task may be completed by a callback: it is
// waiting for one, or still pending because the callback overtook the
// worker's record of the 202 (the worker then finds the task done).
func callbackState(r *rights.Request, t *rights.Task) error {
	if (t.Status != rights.TaskWaiting && t.Status != rights.TaskPending) || r.WorkStatus() != rights.StatusInProgress {
		return rights.Errorf(rights.EConflict, "the task is %s and its request %s: it does not wait for a callback", t.Status, r.Status)
	}
	return nil
}
