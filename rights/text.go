package rights

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Text that is not valid UTF-8, or that holds a NUL byte, is refused where
// it comes in, naming where it is: Postgres refuses both in text columns
// (a NUL even in jsonb), and encoding/json would silently turn invalid
// UTF-8 into U+FFFD. The API checks every path, query, form and JSON body
// with these; the signed callbacks the pipeline reads check their bodies
// with the same ones.

// MaxTextProblems bounds the fields listed for one request: a body full of
// bad strings gets a useful answer, not one as large as itself.
const MaxTextProblems = 10

// TextProblem says what is wrong with s, or "" when it is clean text.
func TextProblem(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "must be valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "must not contain a NUL byte"
	}
	return ""
}

// JSONTextProblems finds the strings of a JSON body, keys and values at any
// depth, that are not clean text, and names each by its path
// ("subject.identities.user_id", "purposes[1]"). encoding/json would
// silently turn invalid UTF-8 into U+FFFD and decode \u0000 into a NUL, so
// this looks at each string as written. It stops at malformed JSON: the
// decoder that runs next says what is wrong there.
func JSONTextProblems(body []byte) Problems {
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
		p     Problems
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
	for len(p) < MaxTextProblems {
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
			return TextProblem(s)
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
