package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/config"
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
	TaskID    string
	Timestamp string // X-Datarights-Timestamp
	Signature string // X-Datarights-Signature
	// Body is the result, as in a 200 answer; it is read once, up to
	// stores.WebhookMaxBody bytes.
	Body io.Reader
}

// CompleteTaskFromCallback completes a task with the result its webhook
// store called back with, and moves the request on when it was the last task.
//
// The task's store must be a webhook store, and the callback signed with its
// secret at most stores.WebhookMaxSkew ago (else unauthorized, saying nothing
// of which part failed). The body is spooled to disk while its signature is
// computed, and only read as a result once the signature holds. The task must
// be waiting — or still pending, when the callback overtakes the worker's
// record of the 202 — and its request in progress, else conflict: so a
// repeated callback, even a replayed one, changes nothing.
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
	unauthorized := rights.Errorf(rights.EUnauthorized, "the callback's signature is not valid")
	verifier, err := stores.NewWebhookVerifier([]byte(store.Webhook.Secret), cb.Timestamp, cb.Signature, time.Now())
	if err != nil {
		return nil, unauthorized
	}
	spool, err := p.spoolCallback(cb, verifier)
	if err != nil {
		return nil, err
	}
	defer func() {
		_ = spool.Close()
		_ = os.Remove(spool.Name())
	}()
	if !verifier.Valid() {
		return nil, unauthorized
	}

	var task *rights.Task
	err = p.db.InTx(ctx, func(tx pgx.Tx) error {
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
			if sink, err = p.staging.Sink(requestID, storeName); err != nil {
				return err
			}
		}
		report, err := stores.DecodeWebhookResult(spool, action, sink)
		if err != nil {
			return err
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
			map[string]any{"signed_at": cb.Timestamp})
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

// spoolCallback copies the callback's body to a private temporary file under
// data_dir while the verifier hashes it, and returns the file rewound.
func (p *Pipeline) spoolCallback(cb Callback, verifier io.Writer) (*os.File, error) {
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
	n, err := io.Copy(io.MultiWriter(f, verifier), io.LimitReader(cb.Body, stores.WebhookMaxBody+1))
	switch {
	case err != nil:
		var pathErr *os.PathError
		if errors.As(err, &pathErr) {
			return fail(fmt.Errorf("callback for task %s: %w", cb.TaskID, err))
		}
		return fail(rights.Errorf(rights.EInvalid, "the body could not be read"))
	case n > stores.WebhookMaxBody:
		return fail(rights.Errorf(rights.ETooLarge, "the body is larger than %d bytes", stores.WebhookMaxBody))
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
	if (t.Status != rights.TaskWaiting && t.Status != rights.TaskPending) || r.Status != rights.StatusInProgress {
		return rights.Errorf(rights.EConflict, "the task is %s and its request %s: it does not wait for a callback", t.Status, r.Status)
	}
	return nil
}
