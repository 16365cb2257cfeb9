package config

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/datarights/datarights/rights"
)

// This file checks a parsed YAML document against the Config struct before
// it is decoded, so that every unknown key and every value of the wrong type
// is reported at once, each as file:line: field: reason like the validation
// problems. yaml.v3 alone stops at a syntax error (unavoidable: the rest of
// the document cannot be read) but also words its type errors by line only
// ("line 5: cannot unmarshal !!str `abc` into int"), without the field, and
// offers nothing for a misspelt key. The schema is the struct's yaml tags,
// read by reflection, so the keys checked are exactly the keys decoded.

// schemaChecker walks a YAML node tree and the Go type it decodes into side
// by side.
type schemaChecker struct {
	problems rights.Problems
	lines    []int // lines[i] is the line of problems[i]
	// bad are the fields whose value could not be decoded: the validation
	// problems about them (or anything under them) would only repeat the
	// decode problem with a misleading reason (e.g. "days: must be between
	// 1 and 366, not 0" after "days: fifteen"), so they are dropped.
	bad []string
}

func (c *schemaChecker) add(line int, field, format string, args ...any) {
	c.problems.Add(field, format, args...)
	c.lines = append(c.lines, line)
}

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	durationType    = reflect.TypeFor[time.Duration]()
	timeType        = reflect.TypeFor[time.Time]()
)

// check checks n, at field path, against type t.
func (c *schemaChecker) check(n *yaml.Node, t reflect.Type, path string) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // an empty value decodes to the zero value: the default
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		// The type decides what it accepts (LocalText: one string or a
		// mapping); ask it, and still look for unknown keys in a mapping,
		// which its own decoding would silently ignore.
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			c.typeProblem(n, path, "is not valid here: "+decodeReason(err))
			return
		}
		if t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode {
			c.checkStruct(n, t, path)
		}
		return
	}
	switch {
	case t == timeType:
		c.checkScalar(n, t, path)
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			c.typeProblem(n, path, "must be a mapping (key: value, …)")
			return
		}
		c.checkStruct(n, t, path)
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.typeProblem(n, path, "must be a mapping (key: value, …)")
			return
		}
		c.eachPair(n, path, func(key, value *yaml.Node) {
			field := joinField(path, key.Value)
			if err := key.Decode(reflect.New(t.Key()).Interface()); err != nil {
				c.typeProblem(key, field, "is not a valid key here")
				return
			}
			c.check(value, t.Elem(), field)
		})
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		if n.Kind != yaml.SequenceNode {
			c.typeProblem(n, path, "must be a list")
			return
		}
		for i, item := range n.Content {
			c.check(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case t.Kind() == reflect.Interface:
		// Anything decodes into an interface.
	default:
		c.checkScalar(n, t, path)
	}
}

func (c *schemaChecker) checkScalar(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.ScalarNode {
		if err := n.Decode(reflect.New(t).Interface()); err == nil {
			return
		}
	}
	c.typeProblem(n, path, "must be "+describeType(t))
}

// checkStruct checks a mapping's keys against the struct's fields and each
// value against its field's type.
func (c *schemaChecker) checkStruct(n *yaml.Node, t reflect.Type, path string) {
	fields := structFields(t)
	c.eachPair(n, path, func(key, value *yaml.Node) {
		f, ok := fields.byKey[key.Value]
		if !ok {
			c.add(key.Line, joinField(path, key.Value), "%s", unknownKeyReason(key.Value, fields.keys))
			return
		}
		c.check(value, f.Type, joinField(path, key.Value))
	})
}

// eachPair calls fn for each key and value of mapping n, following merge
// keys (<<: *defaults) the way the decoder does and reporting a key given
// twice, which yaml.v3 refuses.
func (c *schemaChecker) eachPair(n *yaml.Node, path string, fn func(key, value *yaml.Node)) {
	seen := map[string]int{}
	var walk func(m *yaml.Node)
	walk = func(m *yaml.Node) {
		for m.Kind == yaml.AliasNode && m.Alias != nil {
			m = m.Alias
		}
		if m.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			key, value := m.Content[i], m.Content[i+1]
			if key.ShortTag() == "!!merge" {
				if value.Kind == yaml.SequenceNode {
					for _, v := range value.Content {
						walk(v)
					}
				} else {
					walk(value)
				}
				continue
			}
			if m == n { // merged keys may be overridden; the mapping's own may not repeat
				if first, dup := seen[key.Value]; dup {
					c.add(key.Line, joinField(path, key.Value), "given twice (first on line %d)", first)
					// yaml.v3 then decodes none of the mapping.
					c.bad = append(c.bad, path)
					continue
				}
				seen[key.Value] = key.Line
			}
			fn(key, value)
		}
	}
	walk(n)
}

func (c *schemaChecker) typeProblem(n *yaml.Node, path, want string) {
	c.add(n.Line, path, "%s, not %s", want, describeNode(n))
	c.bad = append(c.bad, path)
}

// covers says whether a validation problem about field is about a value
// that could not be decoded.
func (c *schemaChecker) covers(field string) bool {
	for _, b := range c.bad {
		if b == "" || field == b || strings.HasPrefix(field, b+".") || strings.HasPrefix(field, b+"[") {
			return true
		}
	}
	return false
}

func joinField(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fieldSet is the keys a struct accepts, in declaration order.
type fieldSet struct {
	keys  []string
	byKey map[string]reflect.StructField
}

// structFields lists t's YAML keys as yaml.v3 names them: the tag's name,
// else the lowercased field name; "-" and unexported fields are skipped
// and ",inline" structs contribute their own keys.
func structFields(t reflect.Type) fieldSet {
	fs := fieldSet{byKey: map[string]reflect.StructField{}}
	var add func(t reflect.Type)
	add = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			tag := f.Tag.Get("yaml")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if strings.Contains(","+opts+",", ",inline,") {
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					add(ft)
				}
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			if _, dup := fs.byKey[name]; !dup {
				fs.keys = append(fs.keys, name)
				fs.byKey[name] = f
			}
		}
	}
	add(t)
	return fs
}

// unknownKeyReason says a key is unknown, with the nearest valid key when
// one is close enough to be a slip, else the valid keys when they are few.
func unknownKeyReason(key string, valid []string) string {
	if near := nearest(key, valid); near != "" {
		return fmt.Sprintf("unknown field; did you mean %s?", near)
	}
	if len(valid) <= 10 {
		return fmt.Sprintf("unknown field; expected one of %s", strings.Join(valid, ", "))
	}
	return "unknown field"
}

// nearest is the valid key closest to key by edit distance (adjacent
// transpositions count once), if within a slip's reach: 1 edit for short
// keys, 2 for most, 3 for long ones. Case and - for _ are free.
func nearest(key string, valid []string) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	limit := 2
	switch n := utf8.RuneCountInString(key); {
	case n <= 4:
		limit = 1
	case n > 12:
		limit = 3
	}
	best, bestD := "", limit+1
	for _, v := range valid {
		d := editDistance(norm(key), norm(v))
		if d < bestD {
			best, bestD = v, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of adjacent runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

func describeType(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration such as 90s, 15m or 24h"
	case t == timeType:
		return "a date or time such as 2025-01-31 or 2025-01-31T09:00:00+08:00"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number, 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a single value (text)"
	}
	return "a " + t.String()
}

// describeNode names what was found instead: a configuration holds no
// personal data, so a scalar is quoted (shortened) to point at the typo.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	v := n.Value
	if utf8.RuneCountInString(v) > 40 {
		v = string([]rune(v)[:40]) + "…"
	}
	return strconv.Quote(v)
}

// decodeReason is a yaml.v3 error without its "yaml: unmarshal errors:\n
// line N:" framing, which the problem's own line replaces.
func decodeReason(err error) string {
	if te, ok := err.(*yaml.TypeError); ok && len(te.Errors) > 0 {
		return lineFraming.ReplaceAllString(te.Errors[0], "")
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

var (
	lineFraming = regexp.MustCompile(`^line \d+: `)
	syntaxLine  = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
)

// syntaxProblem turns a yaml.v3 syntax error ("yaml: line 3: did not find
// expected key") into a problem on its line, with no field: the parser
// cannot say which field it was reading, nor go on past it.
//
// yaml.v3 numbers the lines of the parser's errors (parserProblems) from 0
// and those of the scanner's from 1 (decode.go, parser.fail); both are
// reported from 1 here. A parser error's line is where the construct it
// was reading began (the "[" never closed), else where it stopped.
func syntaxProblem(err error) (line int, reason string) {
	msg := err.Error()
	if m := syntaxLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		if parserProblems[m[2]] {
			line++
		}
		return line, "YAML syntax: " + m[2]
	}
	return 0, "YAML syntax: " + strings.TrimPrefix(msg, "yaml: ")
}

// parserProblems are the messages of yaml.v3's parser (parserc.go), as
// opposed to its scanner's.
var parserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}
