package stores

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/rights"
)

// The webhook contract (docs/webhook.md): datarights POSTs a signed call to
// the service; the service answers 200 with the result, or 202 and later
// POSTs the same result, signed the same way, to the call's callback_url.
const (
	// WebhookVersion is the version of the contract's bodies, sent in every
	// call. Calls and callbacks are signed with scheme v2 (signature.go).
	WebhookVersion = 1
	// WebhookMaxBody caps an export result, answered or called back: its
	// rows stream to disk as they arrive.
	WebhookMaxBody int64 = 1 << 30
	// WebhookMaxSmallResult caps every other result (delete,
	// withdraw_consent), which is decoded whole, and a recipient's
	// acknowledgement.
	WebhookMaxSmallResult int64 = 64 << 10
	// WebhookMaxDatasets caps the datasets of a result (an export's
	// datasets, a delete's counts), and WebhookMaxColumns the columns of one
	// dataset: every dataset is a pair of staged files, and every row repeats
	// the columns.
	WebhookMaxDatasets = 1000
	WebhookMaxColumns  = 1000
	// DefaultWebhookTimeout bounds one call when the store sets no timeout.
	DefaultWebhookTimeout = 30 * time.Second

	webhookSmallBody = 64 << 10 // a 202's body, and what is read of an error's
)

// TaskRef names the store task a connector call is made for. The pipeline
// puts it in the context of every call; the webhook connector sends it to
// the service, which needs it to call back.
type TaskRef struct {
	RequestID string
	TaskID    string
	// CallbackURL is where the service posts a result it answered 202 for.
	CallbackURL string
}

type taskRefKey struct{}

// WithTask returns ctx carrying the task a connector call is for.
func WithTask(ctx context.Context, t TaskRef) context.Context {
	return context.WithValue(ctx, taskRefKey{}, t)
}

// TaskFromContext returns the task WithTask put in ctx.
func TaskFromContext(ctx context.Context) (TaskRef, bool) {
	t, ok := ctx.Value(taskRefKey{}).(TaskRef)
	return t, ok && t.TaskID != ""
}

// ResultLimit is the largest result body accepted for action.
func ResultLimit(action rights.TaskAction) int64 {
	if action == rights.ActionExport {
		return WebhookMaxBody
	}
	return WebhookMaxSmallResult
}

// Webhook is the connector for an internal service that holds personal data
// and answers datarights' signed HTTP contract (docs/webhook.md).
//
// Errors name the store, the HTTP status and what was wrong with the answer's
// shape; never an identity, a row value, or the body of an error answer.
type Webhook struct {
	name      string
	url       string
	secret    []byte
	timeout   time.Duration
	client    *http.Client
	transport *http.Transport
}

var _ rights.Connector = (*Webhook)(nil)

func init() {
	register("webhook", func(_ context.Context, cfg config.Store) (rights.Connector, error) {
		w, err := NewWebhook(cfg)
		if err != nil {
			return nil, err // not w: a nil *Webhook in an interface is not nil
		}
		return w, nil
	})
}

// NewWebhook returns the connector for cfg, whose webhook section and secret
// must be set (config.Parse checks both). It makes no call.
func NewWebhook(cfg config.Store) (*Webhook, error) {
	if cfg.Webhook == nil || cfg.Webhook.URL == "" {
		return nil, fmt.Errorf("store %s: a webhook store needs webhook.url", cfg.Name)
	}
	if cfg.Webhook.Secret == "" {
		return nil, fmt.Errorf("store %s: the webhook secret (webhook.secret_env) is not set", cfg.Name)
	}
	timeout := cfg.Webhook.Timeout
	if timeout <= 0 {
		timeout = DefaultWebhookTimeout
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	return &Webhook{
		name:    cfg.Name,
		url:     cfg.Webhook.URL,
		secret:  []byte(cfg.Webhook.Secret),
		timeout: timeout,
		client: &http.Client{
			Transport: transport,
			// A redirect would carry the call, identities and signature, to
			// another address: it is an error, not followed.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		transport: transport,
	}, nil
}

// Export asks the service for the subject's data and streams the datasets it
// answers into sink; a 202 makes the task wait for the service's callback.
func (w *Webhook) Export(ctx context.Context, subject rights.Subject, sink rights.Sink) (rights.StoreReport, error) {
	return w.call(ctx, rights.ActionExport, subject, sink, nil)
}

// Delete asks the service to delete the subject's data; a 202 makes the task
// wait for the service's callback.
func (w *Webhook) Delete(ctx context.Context, subject rights.Subject) (rights.StoreReport, error) {
	return w.call(ctx, rights.ActionDelete, subject, nil, nil)
}

// Close closes idle connections to the service.
func (w *Webhook) Close() error {
	w.transport.CloseIdleConnections()
	return nil
}

// WebhookError is a failed webhook call: no answer, an error status, or an
// answer of the wrong shape. Its message never holds what the answer held.
type WebhookError struct {
	Store string
	// Status is the HTTP status answered; 0 when there was no answer.
	Status int
	// Permanent is set when repeating the same call cannot help: the service
	// refused it (a 4xx other than 408 and 429), answered a status outside
	// the contract, or answered a malformed result. Timeouts, 408, 429 and
	// 5xx are temporary. The pipeline retries both kinds (up to
	// worker.max_attempts), so a fixed service is picked up by a retry.
	Permanent bool
	msg       string
}

func (e *WebhookError) Error() string {
	s := "store " + e.Store + ": webhook " + e.msg
	if e.Permanent {
		s += " (permanent: repeating the call will not help until the service is fixed)"
	}
	return s
}

// webhookCall is the body of a call.
type webhookCall struct {
	Version   int            `json:"version"`
	RequestID string         `json:"request_id"`
	TaskID    string         `json:"task_id"`
	Store     string         `json:"store"`
	Action    string         `json:"action"`
	Subject   webhookSubject `json:"subject"`
	// Purposes are the consents a withdraw_consent call withdraws.
	Purposes    []string `json:"purposes,omitempty"`
	CallbackURL string   `json:"callback_url"`
}

type webhookSubject struct {
	Identities map[string]string `json:"identities"`
}

func (w *Webhook) call(ctx context.Context, action rights.TaskAction, subject rights.Subject, sink rights.Sink, purposes []string) (rights.StoreReport, error) {
	task, ok := TaskFromContext(ctx)
	if !ok {
		return rights.StoreReport{}, fmt.Errorf("store %s: a webhook call must name its task (stores.WithTask)", w.name)
	}
	identities := subject.All().Identities
	if identities == nil {
		identities = map[string]string{}
	}
	// encoding/json sorts map keys: a retried call is the same bytes.
	body, err := json.Marshal(webhookCall{Version: WebhookVersion, RequestID: task.RequestID, TaskID: task.TaskID,
		Store: w.name, Action: string(action), Subject: webhookSubject{Identities: identities}, Purposes: purposes, CallbackURL: task.CallbackURL})
	if err != nil {
		return rights.StoreReport{}, fmt.Errorf("store %s: encode the call: %w", w.name, err)
	}

	callCtx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(callCtx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return rights.StoreReport{}, &WebhookError{Store: w.name, Permanent: true, msg: "url cannot be called"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "datarights-webhook/2")
	req.Header.Set("Idempotency-Key", task.TaskID)
	SignHTTPRequest(req, w.secret, body, time.Now())

	resp, err := w.client.Do(req)
	if err != nil {
		return rights.StoreReport{}, w.noAnswer(ctx, callCtx, err)
	}
	defer resp.Body.Close()

	status := resp.StatusCode
	switch {
	case status == http.StatusOK:
		body := &cappedReader{r: resp.Body, left: ResultLimit(action)}
		report, err := DecodeWebhookResult(body, action, sink)
		if err != nil {
			return rights.StoreReport{}, w.badAnswer(ctx, callCtx, body, err)
		}
		return report, nil
	case status == http.StatusAccepted:
		body := &cappedReader{r: resp.Body, left: webhookSmallBody}
		if err := decodeAccepted(body); err != nil {
			return rights.StoreReport{}, w.badAnswer(ctx, callCtx, body, err)
		}
		return rights.StoreReport{}, &rights.AwaitingConfirmation{Instructions: "waiting for " + w.name + " to call back"}
	}
	// The body of an error answer may quote the call: read a little of it,
	// so the connection can be reused, and show none of it.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, webhookSmallBody))
	e := &WebhookError{Store: w.name, Status: status, msg: "answered " + strconv.Itoa(status) + " " + http.StatusText(status)}
	switch {
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500:
	case status >= 400:
		e.Permanent = true
		e.msg += ": the service refused the call"
	case status >= 300 && status < 400:
		e.Permanent = true
		e.msg += ": redirects are not followed"
	default:
		e.Permanent = true
		e.msg += ": the contract allows 200 and 202"
	}
	return rights.StoreReport{}, e
}

// noAnswer explains a call that got no answer.
func (w *Webhook) noAnswer(ctx, callCtx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("store %s: webhook call: %w", w.name, ctx.Err())
	}
	if errors.Is(callCtx.Err(), context.DeadlineExceeded) {
		return &WebhookError{Store: w.name, msg: "did not answer within " + w.timeout.String()}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // without the URL
	}
	return &WebhookError{Store: w.name, msg: "call failed: " + err.Error()}
}

// badAnswer explains an answer that could not be read or was malformed.
func (w *Webhook) badAnswer(ctx, callCtx context.Context, body *cappedReader, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("store %s: webhook call: %w", w.name, ctx.Err())
	case errors.Is(callCtx.Err(), context.DeadlineExceeded):
		return &WebhookError{Store: w.name, Status: http.StatusOK, msg: "did not finish its answer within " + w.timeout.String()}
	case body.tooLarge:
		return &WebhookError{Store: w.name, Status: http.StatusOK, Permanent: true,
			msg: fmt.Sprintf("answer is larger than %d bytes", body.limit())}
	case body.err != nil:
		return &WebhookError{Store: w.name, Status: http.StatusOK, msg: "answer could not be read: " + body.err.Error()}
	}
	var re *rights.Error
	if errors.As(err, &re) && re.Code == rights.EInvalid {
		return &WebhookError{Store: w.name, Status: http.StatusOK, Permanent: true, msg: "answer is malformed: " + re.Message}
	}
	return fmt.Errorf("store %s: %w", w.name, err) // the sink's (staging) error
}

// decodeAccepted checks a 202's body is {"status":"accepted"}.
func decodeAccepted(r io.Reader) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var body struct {
		Status *string `json:"status"`
	}
	if err := dec.Decode(&body); err != nil {
		return shapeError(err, "a 202 answer must be {\"status\":\"accepted\"}")
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalidf("a 202 answer must hold one JSON object")
	}
	if body.Status == nil || *body.Status != "accepted" {
		return invalidf("a 202 answer must be {\"status\":\"accepted\"}")
	}
	return nil
}

// cappedReader reads at most left bytes, and remembers why reading stopped:
// the cap, or an error of the underlying reader (a dropped connection, a
// timeout) as opposed to the JSON being wrong.
type cappedReader struct {
	r        io.Reader
	left     int64
	read     int64
	tooLarge bool
	err      error
}

// tooLargeError stops a body at its cap.
type tooLargeError struct{ limit int64 }

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("the body is over the size limit of %d bytes", e.limit)
}

// BodyTooLarge is the error for a body over limit bytes.
func BodyTooLarge(limit int64) *rights.Error {
	return &rights.Error{Code: rights.ETooLarge, Message: fmt.Sprintf("the body is larger than %d bytes", limit),
		Fields: []rights.FieldProblem{{Field: "body", Reason: fmt.Sprintf("at most %d bytes", limit)}}}
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.tooLarge {
		return 0, &tooLargeError{c.limit()}
	}
	if c.left <= 0 {
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			c.tooLarge = true
			return 0, &tooLargeError{c.limit()}
		}
		c.note(err)
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	c.read += int64(n)
	c.note(err)
	return n, err
}

func (c *cappedReader) note(err error) {
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
}

func (c *cappedReader) limit() int64 { return c.read + c.left }

func invalidf(format string, args ...any) error {
	return rights.Errorf(rights.EInvalid, format, args...)
}

// shapeError turns a JSON decoding error into one that says where, never
// what: the decoder's own messages may quote the data.
func shapeError(err error, what string) error {
	var (
		syntax    *json.SyntaxError
		typeError *json.UnmarshalTypeError
		tooLarge  *tooLargeError
	)
	switch {
	case errors.As(err, &tooLarge):
		return BodyTooLarge(tooLarge.limit)
	case errors.As(err, &syntax):
		return invalidf("malformed JSON at byte %d", syntax.Offset)
	case errors.As(err, &typeError):
		return invalidf("%s: a value has the wrong type", what)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return invalidf("the JSON ends early")
	}
	var re *rights.Error
	if errors.As(err, &re) {
		return err
	}
	if strings.HasPrefix(err.Error(), "json: unknown field ") {
		return invalidf("%s: it has an unknown field", what)
	}
	if strings.HasPrefix(err.Error(), "json: ") {
		return invalidf("%s is malformed", what) // the message may quote the value
	}
	return err // an error of the reader or the sink: not the JSON's fault
}

var webhookCategoryRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// DecodeWebhookResult reads a webhook store's result — the body of a 200
// answer, or of a callback — and checks its shape for action:
//
//	{"status":"done","found":true,"datasets":[{"name","category","columns":[…],"rows":[[…],…]}]}  (export)
//	{"status":"done","found":true,"deleted":{"<dataset>":n,…}}                                    (delete)
//	{"status":"done","found":true,"deleted":{"<dataset>":n,…}}  deleted optional                  (withdraw_consent)
//
// An export's rows are streamed into sink one at a time, never all held; in
// each dataset "name" and "columns" must come before "rows". Problems with
// the shape are rights.Errors with code invalid (too_large for a body over
// its ResultLimit) whose messages never quote the data; any other error is
// the reader's or the sink's.
func DecodeWebhookResult(r io.Reader, action rights.TaskAction, sink rights.Sink) (rights.StoreReport, error) {
	if action != rights.ActionExport && action != rights.ActionDelete && action != rights.ActionWithdrawConsent {
		return rights.StoreReport{}, fmt.Errorf("webhook stores cannot %s", action)
	}
	if action == rights.ActionExport && sink == nil {
		return rights.StoreReport{}, errors.New("an export result needs a sink")
	}
	d := &resultDecoder{dec: json.NewDecoder(r), action: action, sink: sink}
	d.dec.UseNumber() // numbers keep their exact digits
	report, err := d.result()
	if err != nil {
		return rights.StoreReport{}, shapeError(err, "the result")
	}
	return report, nil
}

type resultDecoder struct {
	dec    *json.Decoder
	action rights.TaskAction
	sink   rights.Sink
	names  map[string]bool // datasets started
}

// start starts a dataset in the sink, refusing a name used before.
func (d *resultDecoder) start(where, name string, columns []string) (rights.RowWriter, error) {
	if d.names[name] {
		return nil, invalidf("%s: a dataset of that name came before", where)
	}
	if d.names == nil {
		d.names = map[string]bool{}
	}
	d.names[name] = true
	return d.sink.Dataset(name, columns)
}

func (d *resultDecoder) delim(want json.Delim, what string) error {
	tok, err := d.dec.Token()
	if err != nil {
		return err
	}
	if tok != want {
		return invalidf("%s", what)
	}
	return nil
}

// key reads an object key, refusing one seen before in the same object.
func (d *resultDecoder) key(seen map[string]bool, where string) (string, error) {
	tok, err := d.dec.Token()
	if err != nil {
		return "", err
	}
	key, _ := tok.(string)
	if seen[key] {
		return "", invalidf("%s: field %s appears twice", where, key)
	}
	seen[key] = true
	return key, nil
}

func (d *resultDecoder) result() (rights.StoreReport, error) {
	var (
		report rights.StoreReport
		status *string
		found  *bool
		rows   int64
		seen   = map[string]bool{}
	)
	if err := d.delim('{', "the result must be a JSON object"); err != nil {
		return report, err
	}
	for d.dec.More() {
		key, err := d.key(seen, "the result")
		if err != nil {
			return report, err
		}
		switch key {
		case "status":
			if err := d.dec.Decode(&status); err != nil {
				return report, shapeError(err, "status")
			}
		case "found":
			if err := d.dec.Decode(&found); err != nil {
				return report, shapeError(err, "found")
			}
		case "datasets":
			if d.action != rights.ActionExport {
				return report, invalidf("datasets are for export results; a delete result has deleted")
			}
			if report.Datasets, err = d.datasets(); err != nil {
				return report, err
			}
		case "deleted":
			if d.action != rights.ActionDelete && d.action != rights.ActionWithdrawConsent {
				return report, invalidf("deleted is for delete and withdraw_consent results; an export result has datasets")
			}
			if report.Datasets, err = d.deleted(); err != nil {
				return report, err
			}
		default:
			return report, invalidf("the result has an unknown field (known: status, found, %s)",
				map[rights.TaskAction]string{rights.ActionExport: "datasets", rights.ActionDelete: "deleted", rights.ActionWithdrawConsent: "deleted"}[d.action])
		}
	}
	if err := d.delim('}', "the result must be a JSON object"); err != nil {
		return report, err
	}
	if _, err := d.dec.Token(); err != io.EOF {
		if err != nil {
			return report, err
		}
		return report, invalidf("the result must hold exactly one JSON object")
	}
	switch {
	case status == nil:
		return report, invalidf("status is required")
	case *status != "done":
		return report, invalidf("status must be \"done\" in a result (\"accepted\" is answered with 202)")
	case found == nil:
		return report, invalidf("found is required: true if the subject's data was found")
	}
	rows = report.Rows()
	if !*found && rows > 0 {
		return report, invalidf("found is false, but the result holds %d records", rows)
	}
	report.Resolved = *found
	return report, nil
}

func (d *resultDecoder) datasets() ([]rights.DatasetReport, error) {
	if err := d.delim('[', "datasets must be an array"); err != nil {
		return nil, err
	}
	var out []rights.DatasetReport
	for i := 0; d.dec.More(); i++ {
		if i == WebhookMaxDatasets {
			return nil, fieldf("datasets", "at most %d datasets", WebhookMaxDatasets)
		}
		ds, err := d.dataset(i)
		if err != nil {
			return nil, err
		}
		out = append(out, ds)
	}
	return out, d.delim(']', "datasets must be an array")
}

func (d *resultDecoder) dataset(i int) (rights.DatasetReport, error) {
	where := fmt.Sprintf("datasets[%d]", i)
	if err := d.delim('{', where+" must be an object"); err != nil {
		return rights.DatasetReport{}, err
	}
	var (
		name, category *string
		columns        []string
		report         rights.DatasetReport
		written        bool
		seen           = map[string]bool{}
	)
	for d.dec.More() {
		key, err := d.key(seen, where)
		if err != nil {
			return report, err
		}
		switch key {
		case "name":
			if err := d.dec.Decode(&name); err != nil {
				return report, shapeError(err, where+".name")
			}
			if name == nil || *name == "" {
				return report, invalidf("%s.name must be a non-empty string", where)
			}
			where = fmt.Sprintf("datasets[%d] (%s)", i, *name)
		case "category":
			if err := d.dec.Decode(&category); err != nil {
				return report, shapeError(err, where+".category")
			}
		case "columns":
			if columns, err = d.columns(fmt.Sprintf("datasets[%d].columns", i)); err != nil {
				return report, shapeError(err, where+".columns")
			}
		case "rows":
			if name == nil || columns == nil {
				return report, invalidf("%s: name and columns must come before rows", where)
			}
			if report, err = d.rows(where, *name, columns); err != nil {
				return report, err
			}
			written = true
		default:
			return report, invalidf("%s has an unknown field (known: name, category, columns, rows)", where)
		}
	}
	if err := d.delim('}', where+" must be an object"); err != nil {
		return report, err
	}
	switch {
	case name == nil:
		return report, invalidf("%s.name is required", where)
	case columns == nil:
		return report, invalidf("%s.columns is required", where)
	case category != nil && *category != "" && !webhookCategoryRE.MatchString(*category):
		return report, invalidf("%s.category must be a lower-case word like \"profile\"", where)
	}
	if !written { // no rows: an empty dataset
		w, err := d.start(where, *name, columns)
		if err != nil {
			return report, err
		}
		if report, err = w.Close(); err != nil {
			return report, err
		}
	}
	if report.Name == "" {
		report.Name = *name
	}
	if category != nil {
		report.Category = *category
	}
	return report, nil
}

// columns reads a dataset's column names a token at a time, so that a
// list over the cap is refused before it is held: at least one, at most
// WebhookMaxColumns, each 1 to 200 bytes, no two alike (checked with a set:
// the list may be long).
func (d *resultDecoder) columns(field string) ([]string, error) {
	tok, err := d.dec.Token()
	if err != nil {
		return nil, err
	}
	if tok != json.Delim('[') {
		return nil, fieldf(field, "must be an array of names")
	}
	var (
		columns []string
		seen    = map[string]struct{}{}
	)
	for d.dec.More() {
		j := len(columns)
		if j == WebhookMaxColumns {
			return nil, fieldf(field, "at most %d columns", WebhookMaxColumns)
		}
		tok, err := d.dec.Token()
		if err != nil {
			return nil, err
		}
		c, ok := tok.(string)
		if !ok || c == "" || len(c) > 200 {
			return nil, fieldf(fmt.Sprintf("%s[%d]", field, j), "must be a name of 1 to 200 bytes")
		}
		if why := rights.TextProblem(c); why != "" {
			// A header of the CSV and a key of each JSON row: text only.
			return nil, fieldf(fmt.Sprintf("%s[%d]", field, j), "%s", why)
		}
		if _, dup := seen[c]; dup {
			// Rows become JSON objects keyed by column: a repeated name
			// would lose values. The name itself is not quoted.
			return nil, fieldf(fmt.Sprintf("%s[%d]", field, j), "repeats an earlier column's name")
		}
		seen[c] = struct{}{}
		columns = append(columns, c)
	}
	if _, err := d.dec.Token(); err != nil { // the closing ']'
		return nil, err
	}
	if len(columns) == 0 {
		return nil, fieldf(field, "must name at least one column")
	}
	return columns, nil
}

// fieldf is a malformed result whose problem is one field's.
func fieldf(field, format string, args ...any) error {
	reason := fmt.Sprintf(format, args...)
	return &rights.Error{Code: rights.EInvalid, Message: field + ": " + reason,
		Fields: []rights.FieldProblem{{Field: field, Reason: reason}}}
}

// rows streams one dataset's rows into the sink, one row in memory at a time.
func (d *resultDecoder) rows(where, name string, columns []string) (rights.DatasetReport, error) {
	if err := d.delim('[', where+".rows must be an array of rows"); err != nil {
		return rights.DatasetReport{}, err
	}
	// An unfinished dataset is left unclosed on error, as the other
	// connectors do: Close means complete.
	w, err := d.start(where, name, columns)
	if err != nil {
		return rights.DatasetReport{}, err
	}
	values := make([]any, 0, len(columns))
	for n := 0; d.dec.More(); n++ {
		if err := d.delim('[', fmt.Sprintf("%s.rows[%d] must be an array of values", where, n)); err != nil {
			return rights.DatasetReport{}, err
		}
		values = values[:0]
		for d.dec.More() {
			if len(values) == len(columns) {
				return rights.DatasetReport{}, invalidf("%s.rows[%d] has more values than the %d columns", where, n, len(columns))
			}
			var v any
			if err := d.dec.Decode(&v); err != nil {
				return rights.DatasetReport{}, shapeError(err, fmt.Sprintf("%s.rows[%d]", where, n))
			}
			values = append(values, v)
		}
		if err := d.delim(']', fmt.Sprintf("%s.rows[%d] must be an array of values", where, n)); err != nil {
			return rights.DatasetReport{}, err
		}
		if len(values) != len(columns) {
			return rights.DatasetReport{}, invalidf("%s.rows[%d] has %d values for %d columns", where, n, len(values), len(columns))
		}
		if err := w.WriteRow(values); err != nil {
			return rights.DatasetReport{}, err
		}
	}
	if err := d.delim(']', where+".rows must be an array of rows"); err != nil {
		return rights.DatasetReport{}, err
	}
	return w.Close()
}

var webhookDatasetRE = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}$`)

// deleted reads a delete result's counts, {"<dataset>": n, …}, as datasets
// in name order.
func (d *resultDecoder) deleted() ([]rights.DatasetReport, error) {
	var counts map[string]json.RawMessage
	if err := d.dec.Decode(&counts); err != nil {
		return nil, shapeError(err, "deleted (an object of dataset names to counts)")
	}
	if counts == nil {
		return nil, invalidf("deleted must be an object of dataset names to counts")
	}
	if len(counts) > WebhookMaxDatasets {
		return nil, fieldf("deleted", "at most %d datasets", WebhookMaxDatasets)
	}
	names := make([]string, 0, len(counts))
	for name := range counts {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make([]rights.DatasetReport, 0, len(names))
	for _, name := range names {
		if !webhookDatasetRE.MatchString(name) || strings.Contains(name, "..") {
			return nil, invalidf("deleted: dataset names may only hold letters, digits, '_', '.' and '-'")
		}
		n, err := strconv.ParseInt(string(counts[name]), 10, 64)
		if err != nil || n < 0 {
			return nil, invalidf("deleted.%s must be a whole number of records, 0 or more", name)
		}
		out = append(out, rights.DatasetReport{Name: name, Rows: n})
	}
	return out, nil
}
