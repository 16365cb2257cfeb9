package api

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/datarights/datarights/rights"
)

// Text that is not valid UTF-8, or that holds a NUL byte, is refused at the
// edge with a 400 naming where it is: in the path, the query, a JSON body or
// a form. Postgres refuses both in text columns (a NUL even in jsonb), which
// made such input a 500 deep inside a handler, sometimes before the token
// was checked; and nothing a person or a system legitimately sends us holds
// either.

func badTextError(where string, p rights.Problems) error {
	return &rights.Error{Code: rights.EInvalid, Message: where + " holds text that is not valid UTF-8 or holds a NUL byte", Fields: p}
}

// requireCleanText refuses a request whose path or query string is not clean
// text, before any route (or its token check) sees it. It wraps the mux to
// name a bad path segment by the route's wildcard (e.g. "id").
func (s *server) requireCleanText(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p rights.Problems
		if problem := rights.TextProblem(r.URL.Path); problem != "" {
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
				if len(p) >= rights.MaxTextProblems {
					break
				}
				if problem := rights.TextProblem(key); problem != "" {
					p.Add("query "+strconv.Quote(key), "the parameter name %s", problem)
					continue
				}
				for _, v := range values[key] {
					if problem := rights.TextProblem(v); problem != "" {
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
		if rights.TextProblem(seg) == "" {
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

// parseForm reads a form body (urlencoded, at most the body limit) into
// r.PostForm and refuses it unless every name and value is clean text.
func (s *server) parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, s.MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		return &rights.Error{Code: rights.EInvalid, Message: "the form could not be read"}
	}
	var p rights.Problems
	for _, key := range slices.Sorted(maps.Keys(r.PostForm)) {
		if len(p) >= rights.MaxTextProblems {
			break
		}
		if problem := rights.TextProblem(key); problem != "" {
			p.Add(strconv.Quote(key), "the field name %s", problem)
			continue
		}
		for _, v := range r.PostForm[key] {
			if problem := rights.TextProblem(v); problem != "" {
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
func TextProblem(s string) string { return rights.TextProblem(s) }
