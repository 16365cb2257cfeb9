package api

import (
	"mime"
	"net/http"
	"time"

	"github.com/datarights/datarights/jobs"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage/stores"
)

// callbackDeadline is how long a webhook store's callback may take to arrive
// and be staged: a result may be large, and the server's own timeouts are
// sized for staff calls.
const callbackDeadline = 15 * time.Minute

// handleTaskCallback completes a webhook store's waiting task with the result
// the store calls back with (docs/webhook.md). It needs no staff token: the
// callback is signed with the store's secret, for this method, this task's
// callback URL and this body, once (scheme v2). An unknown task is a 404
// before any signature is checked. The answer says only what happened to
// the task; nothing of the request or the person.
func (s *server) handleTaskCallback(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			s.error(w, r, &rights.Error{Code: rights.EInvalid, Message: "the body must be JSON",
				Fields: []rights.FieldProblem{{Field: "Content-Type", Reason: "must be application/json"}}})
			return
		}
	}
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(callbackDeadline)
	_ = rc.SetReadDeadline(deadline) // best effort: the result is read within the server's timeouts otherwise
	_ = rc.SetWriteDeadline(deadline)
	task, err := s.Pipeline.CompleteTaskFromCallback(r.Context(), jobs.Callback{
		TaskID:    r.PathValue("task_id"),
		Method:    r.Method,
		Signature: stores.SignatureHeadersFrom(r.Header),
		Body:      r.Body,
	})
	if err != nil {
		switch rights.ErrorCode(err) {
		case rights.EUnauthorized:
			w.Header().Set("WWW-Authenticate", `Datarights-Signature realm="datarights"`)
		case rights.EUnavailable:
			w.Header().Set("Retry-After", "5")
		}
		s.error(w, r, err)
		return
	}
	s.json(w, http.StatusOK, map[string]any{"task_id": task.ID, "status": task.Status})
}

// Unwrap lets http.ResponseController reach the connection behind the
// recorder (for the callback's longer deadlines).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
