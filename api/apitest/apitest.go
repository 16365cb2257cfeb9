// Package apitest holds the API's OpenAPI description to its word in
// tests: Transport validates every request a test makes and every answer
// it gets against api/openapi.yaml, and fails the test on any mismatch.
// Only tests import it, so the service's binary carries no validator.
package apitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	verrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/helpers"

	"github.com/datarights/datarights/api"
)

// Document returns the parsed description (the JSON the service serves).
func Document() (libopenapi.Document, error) {
	raw, err := api.OpenAPI()
	if err != nil {
		return nil, err
	}
	doc, err := libopenapi.NewDocument(raw)
	if err != nil {
		return nil, fmt.Errorf("parse the OpenAPI description: %w", err)
	}
	return doc, nil
}

// Validator returns the validator of the description, built once: the
// validator compiles every schema, which takes longer than most tests.
// It is safe for concurrent use.
var Validator = sync.OnceValues(func() (validator.Validator, error) {
	doc, err := Document()
	if err != nil {
		return nil, err
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		return nil, fmt.Errorf("build the OpenAPI validator: %v", errs)
	}
	return v, nil
})

// Transport is an http.RoundTripper that checks each exchange against the
// description:
//
//   - the answer must be one the operation describes: its status, its
//     content type, its body's schema;
//   - a request the description calls invalid (a missing token, an
//     unknown field, a wrong type, …) must be refused with a 4xx: tests
//     send such requests on purpose to see them refused, and a 2xx would
//     mean the description or the server is wrong;
//   - a path or method the description does not know may only be
//     refused (404, 405, or 400 for bad text in the URL): anything else
//     is a route missing from the description. A described route may be
//     answered with the catch-all 404 by a process that does not serve
//     it (the ops address, a worker, metrics turned off).
//
// The routes the description leaves out (api.RouteKind.Described: the
// HTML pages of the console and the privacy center) pass unchecked.
//
// A mismatch fails the test (t.Errorf), naming the call and every problem.
type Transport struct {
	T    testing.TB
	Base http.RoundTripper // nil: http.DefaultTransport
}

// Client returns an http.Client whose transport is a Transport for t.
func Client(t testing.TB) *http.Client {
	return &http.Client{Transport: &Transport{T: t}}
}

// Wrap returns c with its transport wrapped in a Transport for t (a copy:
// c is not changed); a nil c is http.DefaultClient.
func Wrap(t testing.TB, c *http.Client) *http.Client {
	if c == nil {
		c = http.DefaultClient
	}
	out := *c
	out.Transport = &Transport{T: t, Base: c.Transport}
	return &out
}

func (tr *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := tr.Base
	if base == nil {
		base = http.DefaultTransport
	}
	v, err := Validator()
	if err != nil {
		return nil, err
	}
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		reqBody, err = io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read the request body to validate it: %w", err)
		}
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(reqBody)), nil }
	}
	resp, err := base.RoundTrip(req)
	if err != nil || isPage(req) {
		return resp, err
	}
	respBody, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	if err != nil {
		// A connection cut midway (a register broken off on purpose): the
		// test sees the error; there is no whole answer to check.
		return resp, nil
	}
	start := time.Now()
	problems := check(v, req, reqBody, resp, respBody)
	count(req, time.Since(start))
	if len(problems) > 0 {
		tr.T.Helper()
		tr.T.Errorf("%s %s → %d does not match api/openapi.yaml:\n\t%s", req.Method, req.URL.Path, resp.StatusCode,
			strings.Join(problems, "\n\t"))
	}
	return resp, nil
}

// routes routes requests to the patterns of api.Routes, to count which
// the tests exercised.
var routes = sync.OnceValue(func() *http.ServeMux {
	mux := http.NewServeMux()
	for _, rt := range api.Routes() {
		mux.Handle(rt.Pattern, http.NotFoundHandler())
	}
	return mux
})

var stats struct {
	sync.Mutex
	checked int
	spent   time.Duration  // validating, the validator's build excluded
	seen    map[string]int // route pattern → exchanges checked
}

// Stats returns how many exchanges the transports checked in this
// process, and how many of them each described route had; a described
// route with none is one no test calls through a Transport.
func Stats() (checked int, spent time.Duration, byRoute map[string]int) {
	stats.Lock()
	defer stats.Unlock()
	byRoute = map[string]int{}
	for _, rt := range api.Routes() {
		if rt.Kind.Described() {
			byRoute[rt.Pattern] = stats.seen[rt.Pattern]
		}
	}
	return stats.checked, stats.spent, byRoute
}

func count(req *http.Request, spent time.Duration) {
	_, pattern := routes().Handler(req)
	stats.Lock()
	defer stats.Unlock()
	if stats.seen == nil {
		stats.seen = map[string]int{}
	}
	stats.checked++
	stats.spent += spent
	stats.seen[pattern]++
}

// pages routes the paths of the routes the description leaves out (the
// pages), to let them through unchecked. The catch-all
// is not among them: what it answers is checked.
var pages = sync.OnceValue(func() *http.ServeMux {
	mux := http.NewServeMux()
	for _, rt := range api.Routes() {
		if !rt.Kind.Described() && rt.Kind != api.RouteFallback {
			mux.Handle(rt.Pattern, http.NotFoundHandler())
		}
	}
	return mux
})

func isPage(req *http.Request) bool {
	_, pattern := pages().Handler(req)
	return pattern != ""
}

// check returns what is wrong with one exchange, nothing if it matches.
func check(v validator.Validator, req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) []string {
	clone := func() *http.Request {
		r := req.Clone(req.Context())
		r.Body = io.NopCloser(bytes.NewReader(reqBody))
		return r
	}
	reqOK, reqErrs := v.ValidateHttpRequestSync(clone())
	if !reqOK && unknownRoute(reqErrs) {
		switch resp.StatusCode {
		case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusBadRequest:
			return nil // the catch-all's answer to a route nobody has
		}
		return append([]string{"the route is not in the description, yet it was answered"}, describe(reqErrs)...)
	}
	if resp.StatusCode == http.StatusNotFound && catchAll(respBody) {
		return nil // a route this process does not serve
	}
	var problems []string
	if !reqOK && resp.StatusCode < 400 {
		problems = append(problems, "the description calls the request invalid, yet it was answered with a success:")
		problems = append(problems, describe(reqErrs)...)
	}
	r := &http.Response{StatusCode: resp.StatusCode, Header: resp.Header, Request: req,
		Body: io.NopCloser(bytes.NewReader(respBody))}
	if ok, errs := v.ValidateHttpResponse(clone(), r); !ok {
		problems = append(problems, "the answer:")
		problems = append(problems, describe(errs)...)
		if len(respBody) > 0 && len(respBody) < 4096 && strings.Contains(resp.Header.Get("Content-Type"), "json") {
			problems = append(problems, "the answer's body: "+string(respBody))
		}
	}
	return problems
}

// catchAll reports whether body is the catch-all 404's.
func catchAll(body []byte) bool {
	var e struct {
		Error struct{ Code, Message string }
	}
	return json.Unmarshal(body, &e) == nil && e.Error.Code == "not_found" && strings.HasPrefix(e.Error.Message, api.NoSuchEndpoint)
}

func unknownRoute(errs []*verrors.ValidationError) bool {
	for _, e := range errs {
		if e.ValidationType == helpers.PathValidation &&
			(e.ValidationSubType == helpers.ValidationMissing || e.ValidationSubType == helpers.ValidationMissingOperation) {
			return true
		}
	}
	return false
}

func describe(errs []*verrors.ValidationError) []string {
	var out []string
	for _, e := range errs {
		line := e.Message
		if e.Reason != "" && e.Reason != e.Message {
			line += ": " + e.Reason
		}
		for _, f := range e.SchemaValidationErrors {
			line += "\n\t\t" + f.Error()
		}
		out = append(out, line)
	}
	return out
}
