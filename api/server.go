// Package api is datarights' HTTP interface: the staff API, the self-service
// API and the operations endpoints.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/datarights/datarights/calendars"
	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/jobs"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// Deps is what the server needs.
type Deps struct {
	DB           *storage.DB
	Pipeline     *jobs.Pipeline
	Logger       *slog.Logger
	MaxBodyBytes int64
	// Metrics serves /metrics; nil serves none.
	Metrics http.Handler
	// Calendars answers the deadline calculator.
	Calendars *calendars.Set
	// OpsOnly serves only /healthz, /readyz and /metrics: a worker process
	// has no API but must be probed and scraped.
	OpsOnly bool
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed about the client's address (http.trusted_proxies).
	TrustedProxies []netip.Prefix
	// Console is the staff web console, served under /console/; nil
	// serves none.
	Console http.Handler
	// Center is the privacy center for people, served at /, under
	// /privacy/ and at the old /status/{id} links; nil serves none.
	Center http.Handler
}

type server struct {
	Deps
	// tokens shares one look-up of a token among the calls that present
	// it at the same moment (see staffForToken).
	tokens singleflight.Group
}

// NewServer returns the service's HTTP handler.
func NewServer(deps Deps) http.Handler {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.MaxBodyBytes == 0 {
		deps.MaxBodyBytes = config.DefaultMaxBodyBytes
	}
	s := &server{Deps: deps}
	mux := http.NewServeMux()
	s.routes(mux)
	// The security headers go on every answer, the refusals of bad text
	// included; bad text is refused before any route sees it.
	return s.logRequests(securityHeaders(s.requireCleanText(mux)))
}

type ctxKey int

const (
	ctxRequestID ctxKey = iota
	ctxStaff
)

var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// logRequests gives each HTTP request an id (echoed in X-Request-Id) and logs
// one line per request: method, route pattern, status, duration. Never the
// body or query values, which may carry personal data.
func (s *server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !requestIDRE.MatchString(id) {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		ctx := context.WithValue(r.Context(), ctxRequestID, id)
		r = r.WithContext(ctx)
		next.ServeHTTP(rec, r) // the mux records the matched pattern in r
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		s.Logger.LogAttrs(ctx, slog.LevelInfo, "http request",
			slog.String("request_id", id), slog.String("method", r.Method), slog.String("route", route),
			slog.Int("status", rec.status), slog.Int64("duration_ms", time.Since(start).Milliseconds()))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// staff lets a request through only with an active staff bearer token
// whose role grants perm. Every staff route goes through here: it is the
// one place roles and product scopes are enforced. A route on one request
// ({id}) answers 404 for a request outside the staff member's products, the
// same as for one that does not exist.
func (s *server) staff(perm rights.Permission, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || strings.TrimSpace(token) == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="datarights"`)
			s.error(w, r, rights.Errorf(rights.EUnauthorized, "a staff bearer token is required (Authorization: Bearer <token>)"))
			return
		}
		st, err := s.staffForToken(r.Context(), config.HashToken(strings.TrimSpace(token)))
		if err != nil {
			s.error(w, r, err)
			return
		}
		if st == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="datarights", error="invalid_token"`)
			s.error(w, r, rights.Errorf(rights.EUnauthorized, "the bearer token is not valid"))
			return
		}
		if !st.Can(perm) {
			s.error(w, r, st.Forbid(perm))
			return
		}
		if err := CheckRequestScope(r.Context(), s.DB.Pool, *st, r.PathValue("id")); err != nil {
			s.error(w, r, err)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), ctxStaff, *st)))
	}
}

// staffForToken looks up the staff member a token's hash belongs to. Calls
// that present the same token while its look-up is running wait for that
// look-up rather than each running its own: an integration that sends
// many tickets at once with one token cost one query per ticket before
// the ticket's own work. Nothing is kept once the look-up returns, so a
// revoked token is refused by the first call that starts after the
// revocation committed, as before.
func (s *server) staffForToken(ctx context.Context, sha256Hex string) (*rights.Staff, error) {
	ch := s.tokens.DoChan(sha256Hex, func() (any, error) {
		// The look-up outlives a caller that gives up: others wait on it.
		return storage.StaffForToken(context.WithoutCancel(ctx), s.DB.Pool, sha256Hex)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		st := res.Val.(*rights.Staff)
		if st == nil {
			return nil, nil
		}
		own := *st // callers must not share one value
		own.Products = slices.Clone(st.Products)
		return &own, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// CheckRequestScope answers ENotFound for a request outside the staff
// member's products: the same answer as for one that does not exist, so
// its existence is not told. A request that does not exist is left to the
// handler to answer (after it has checked the body). The API and the
// console both check routes on one request ({id}) with it.
func CheckRequestScope(ctx context.Context, q storage.Querier, st rights.Staff, id string) error {
	if id == "" {
		return nil
	}
	product, err := storage.RequestProduct(ctx, q, id)
	switch {
	case rights.ErrorCode(err) == rights.ENotFound:
		return nil
	case err != nil:
		return err
	case !st.InScope(product):
		return rights.Errorf(rights.ENotFound, "request %s not found", id)
	}
	return nil
}

// staffFrom is the staff member the request was authenticated as.
func staffFrom(ctx context.Context) rights.Staff {
	st, _ := ctx.Value(ctxStaff).(rights.Staff)
	return st
}

func staffName(ctx context.Context) string { return staffFrom(ctx).Name }

// decode reads one JSON object from the body into v, strictly: the right
// content type, no unknown fields, nothing after the object, and no more than
// the size limit. It also returns the raw body for idempotency hashing.
func (s *server) decode(w http.ResponseWriter, r *http.Request, v any) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return nil, &rights.Error{Code: rights.EInvalid, Message: "the body must be JSON",
				Fields: []rights.FieldProblem{{Field: "Content-Type", Reason: "must be application/json"}}}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, rights.Errorf(rights.ETooLarge, "the body is larger than %d bytes", s.MaxBodyBytes)
		}
		return nil, rights.Errorf(rights.EInvalid, "the body could not be read")
	}
	// Before decoding, which would hide both: invalid UTF-8 becomes U+FFFD
	// and \u0000 a NUL that Postgres refuses with a 500.
	if p := rights.JSONTextProblems(body); len(p) > 0 {
		return nil, badTextError("the body", p)
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return nil, jsonProblem(err)
	}
	if dec.More() {
		return nil, rights.Errorf(rights.EInvalid, "the body must hold exactly one JSON object")
	}
	return body, nil
}

// jsonProblem turns a decoding error into a message that names the field.
func jsonProblem(err error) error {
	var (
		syntax    *json.SyntaxError
		typeError *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syntax):
		return rights.Errorf(rights.EInvalid, "malformed JSON at byte %d: %v", syntax.Offset, syntax)
	case errors.As(err, &typeError):
		return &rights.Error{Code: rights.EInvalid, Message: "a field has the wrong type",
			Fields: []rights.FieldProblem{{Field: typeError.Field, Reason: "must be " + jsonType(typeError.Type.Kind().String())}}}
	case errors.Is(err, io.EOF):
		return rights.Errorf(rights.EInvalid, "the body is empty; a JSON object is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return rights.Errorf(rights.EInvalid, "malformed JSON: the body ends early")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &rights.Error{Code: rights.EInvalid, Message: "the body has an unknown field",
			Fields: []rights.FieldProblem{{Field: field, Reason: "unknown field"}}}
	}
	return rights.Errorf(rights.EInvalid, "malformed JSON")
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	case "bool":
		return "true or false"
	}
	return "a number"
}

// statusFor maps the domain's error codes to HTTP status codes.
var statusFor = map[string]int{
	rights.EInvalid:        http.StatusBadRequest,
	rights.ENotFound:       http.StatusNotFound,
	rights.EConflict:       http.StatusConflict,
	rights.EUnauthorized:   http.StatusUnauthorized,
	rights.EForbidden:      http.StatusForbidden,
	rights.ETooLarge:       http.StatusRequestEntityTooLarge,
	rights.EExpired:        http.StatusGone,
	rights.ELocked:         http.StatusLocked,
	rights.ETooMany:        http.StatusTooManyRequests,
	rights.ENotImplemented: http.StatusNotImplemented,
	rights.EUnavailable:    http.StatusServiceUnavailable,
	rights.EInternal:       http.StatusInternalServerError,
}

// HTTPStatus is the HTTP status an error answers with, by its code: the
// console answers with the same ones.
func HTTPStatus(err error) int {
	if status, ok := statusFor[rights.ErrorCode(err)]; ok {
		return status
	}
	return http.StatusInternalServerError
}

type errorBody struct {
	Error struct {
		Code      string                `json:"code"`
		Message   string                `json:"message"`
		Fields    []rights.FieldProblem `json:"fields,omitempty"`
		RequestID string                `json:"request_id,omitempty"`
	} `json:"error"`
}

// error writes err as JSON. Internal errors are logged with the request id
// and shown to the caller only as "internal error".
func (s *server) error(w http.ResponseWriter, r *http.Request, err error) {
	if rights.ErrorCode(err) == rights.EInternal && storage.Unavailable(err) {
		// The database is down or refusing work: say so, and when to come
		// back, instead of a 500 that reads like a bug. Nothing half-done
		// is behind it: every change is one transaction.
		s.Logger.WarnContext(r.Context(), "database unavailable", "route", r.Pattern, "err", err)
		err = &rights.Error{Code: rights.EUnavailable, RetryAfter: 5 * time.Second,
			Message: "the service cannot reach its database just now; try again shortly (see Retry-After)"}
	}
	code := rights.ErrorCode(err)
	status, ok := statusFor[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	var body errorBody
	body.Error.Code, body.Error.Message = code, rights.ErrorMessage(err)
	var re *rights.Error
	if errors.As(err, &re) {
		body.Error.Fields = re.Fields
		if re.RetryAfter > 0 {
			// Whole seconds, rounded up: a client that waits this long gets in.
			w.Header().Set("Retry-After", strconv.FormatInt(int64((re.RetryAfter+time.Second-1)/time.Second), 10))
		}
	}
	body.Error.RequestID, _ = r.Context().Value(ctxRequestID).(string)
	if status >= 500 {
		s.Logger.ErrorContext(r.Context(), "request failed", "request_id", body.Error.RequestID, "route", r.Pattern, "err", err)
	}
	s.json(w, status, body)
}

func (s *server) json(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
