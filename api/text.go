package api

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/datarights/datarights/rights"
)

// Text that is not valid UTF-8, or that holds a NUL byte, is refused at the
// edge with a 400 naming where it is: in the path, the query, a JSON body or
// a form. Postgres refuses both in text columns (a NUL even in jsonb), which
// made such input a 500 deep inside a handler, sometimes before the token
// was checked; and nothing a person or a system legitimately sends us holds
// either.

// maxTextProblems bounds the fields listed for one request: a body full of
// bad strings gets a useful answer, not one as large as itself.
const maxTextProblems = 10

// textProblem says what is wrong with s, or "" when it is clean text.
func textProblem(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "must be valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "must not contain a NUL byte"
	}
	return ""
}

func badTextError(where string, p rights.Problems) error {
	return &rights.Error{Code: rights.EInvalid, Message: where + " holds text that is not valid UTF-8 or holds a NUL byte", Fields: p}
}

// requireCleanText refuses a request whose path or query string is not clean
// text, before any route (or its token check) sees it. It wraps the mux to
// name a bad path segment by the route's wildcard (e.g. "id").
func (s *server) requireCleanText(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p rights.Problems
		if problem := textProblem(r.URL.Path); problem != "" {
			_, pattern := mux.Handler(r)
			if pattern != "" {
				r.Pattern = pattern // the log line names the route it was meant for
			}
			p.Add(pathField(pattern, r.URL.Path), "%s", problem)
		}
		if r.URL.RawQuery != "" {
			// ParseQuery keeps the pairs it could read when others are
			// malformed; the handlers see the same, so those are checked.
			values, _ := url.ParseQuery(r.URL.RawQuery)
			for _, key := range slices.Sorted(maps.Keys(values)) {
				if len(p) >= maxTextProblems {
					break
				}
				if problem := textProblem(key); problem != "" {
					p.Add("query "+strconv.Quote(key), "the parameter name %s", problem)
					continue
				}
				for _, v := range values[key] {
					if problem := textProblem(v); problem != "" {
						p.Add(key, "%s", problem)
						break
					}
				}
			}
		}
		if len(p) > 0 {
			s.error(w, r, badTextError("the URL", p))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// pathField names the first bad segment of path by the wildcard of the
// route pattern at its place ("id" for /api/v1/requests/{id}), else "path".
func pathField(pattern, path string) string {
	if i := strings.IndexByte(pattern, '/'); i >= 0 {
		pattern = pattern[i:] // drop the method and host
	} else {
		pattern = ""
	}
	psegs := strings.Split(pattern, "/")
	for i, seg := range strings.Split(path, "/") {
		if textProblem(seg) == "" {
			continue
		}
		if i < len(psegs) {
			if name, ok := strings.CutPrefix(psegs[i], "{"); ok {
				name = strings.TrimSuffix(strings.TrimSuffix(name, "}"), "...")
				if name != "" && name != "$" {
					return name
				}
			}
		}
		break
	}
	return "path"
}

// jsonTextProblems finds the strings of a JSON body, keys and values at any
// depth, that are not clean text, and names each by its path
// ("subject.identities.user_id", "purposes[1]"). encoding/json would
// silently turn invalid UTF-8 into U+FFFD and decode \u0000 into a NUL, so
// this looks at each string as written. It stops at malformed JSON: the
// decoder that runs next says what is wrong there.
func jsonTextProblems(body []byte) rights.Problems {
	rawNUL := bytes.IndexByte(body, 0) >= 0
	if utf8.Valid(body) && !rawNUL && !bytes.Contains(body, []byte(`\u0000`)) {
		return nil // the common case: nothing to look for
	}
	if rawNUL {
		// A raw NUL is a syntax error anyway; written as its escape, the
		// walk below finds the string it is in and names the field.
		body = bytes.ReplaceAll(body, []byte{0}, []byte(`\u0000`))
	}
	type frame struct {
		path    string
		object  bool
		wantKey bool   // object: the next token is a key
		key     string // object: the field of the value being read
		index   int    // array: the index of the value being read
	}
	var (
		p     rights.Problems
		stack []*frame
		prev  int64
	)
	valuePath := func() string {
		if len(stack) == 0 {
			return "body"
		}
		f := stack[len(stack)-1]
		if f.object {
			return f.key
		}
		return f.path + "[" + strconv.Itoa(f.index) + "]"
	}
	valueDone := func() {
		if len(stack) == 0 {
			return
		}
		if f := stack[len(stack)-1]; f.object {
			f.wantKey = true
		} else {
			f.index++
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for len(p) < maxTextProblems {
		tok, err := dec.Token()
		if err != nil {
			return p
		}
		// The bytes since the last token: this token as written, with the
		// separators and spaces before it (ASCII, or a syntax error).
		end := dec.InputOffset()
		raw := body[prev:end]
		prev = end
		problem := func(s string) string {
			if !utf8.Valid(raw) {
				return "must be valid UTF-8"
			}
			return textProblem(s)
		}
		if len(stack) > 0 && stack[len(stack)-1].object && stack[len(stack)-1].wantKey {
			f := stack[len(stack)-1]
			key, _ := tok.(string) // '}' ends the object instead
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				valueDone()
				continue
			}
			f.wantKey = false
			f.key = joinField(f.path, key)
			if why := problem(key); why != "" {
				f.key = joinField(f.path, strconv.Quote(key))
				p.Add(f.key, "the field name %s", why)
			}
			continue
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				stack = append(stack, &frame{path: valuePath(), object: t == '{', wantKey: t == '{'})
			case ']', '}':
				stack = stack[:len(stack)-1]
				valueDone()
			}
		case string:
			if why := problem(t); why != "" {
				p.Add(valuePath(), "%s", why)
			}
			valueDone()
		default:
			valueDone()
		}
	}
	return p
}

func joinField(parent, name string) string {
	if parent == "" || parent == "body" {
		return name
	}
	return parent + "." + name
}

// parseForm reads a form body (urlencoded, at most the body limit) into
// r.PostForm and refuses it unless every name and value is clean text.
func (s *server) parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, s.MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		return &rights.Error{Code: rights.EInvalid, Message: "the form could not be read"}
	}
	var p rights.Problems
	for _, key := range slices.Sorted(maps.Keys(r.PostForm)) {
		if len(p) >= maxTextProblems {
			break
		}
		if problem := textProblem(key); problem != "" {
			p.Add(strconv.Quote(key), "the field name %s", problem)
			continue
		}
		for _, v := range r.PostForm[key] {
			if problem := textProblem(v); problem != "" {
				p.Add(key, "%s", problem)
				break
			}
		}
	}
	if len(p) > 0 {
		return badTextError("the form", p)
	}
	return nil
}

// TextProblem says what is wrong with s as text the service stores (not
// UTF-8, a NUL or another control character), or "" when it is clean: the
// console checks form fields with it as the API checks JSON.
func TextProblem(s string) string { return textProblem(s) }
