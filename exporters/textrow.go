package exporters

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/datarights/datarights/rights"
)

// The text fast path (rights.TextSink): a connector that reads values off
// the wire as text hands them over with a kind per column, and they are
// written to JSON and CSV without becoming Go values first. For a large
// export this is most of the difference between a decode-encode per value
// and a copy.

// TextDataset starts a dataset whose rows come as text.
func (s *stagingSink) TextDataset(name string, columns []string, kinds []rights.ValueKind) (rights.TextRowWriter, error) {
	if len(kinds) != len(columns) {
		return nil, fmt.Errorf("staging %s: %d kinds for %d columns", name, len(kinds), len(columns))
	}
	rw, err := s.Dataset(name, columns)
	if err != nil {
		return nil, err
	}
	w := rw.(*datasetWriter)
	w.kinds = kinds
	return w, nil
}

// WriteTextRow writes one row given as text (see rights.TextRowWriter).
func (w *datasetWriter) WriteTextRow(texts [][]byte, values []any) error {
	if len(values) != len(texts) {
		return fmt.Errorf("staging %s: %d texts and %d values", w.name, len(texts), len(values))
	}
	line, err := w.startRow(len(texts))
	if err != nil {
		return err
	}
	for i, text := range texts {
		if i > 0 {
			line = append(line, ',')
		}
		line = append(line, w.keys[i]...)
		line = append(line, ':')
		if w.kinds[i] == rights.KindValue {
			start := len(line)
			if line, err = w.appendValue(line, values[i]); err != nil {
				return fmt.Errorf("staging %s: column %s: %w", w.name, w.keys[i], err)
			}
			w.spans[i] = [2]int{start, len(line)}
			continue
		}
		line = appendTextJSON(line, w.kinds[i], text)
	}
	line = append(line, '}')
	var rec []byte
	if w.csv != nil {
		rec = w.record[:0]
		for i, text := range texts {
			if i > 0 {
				rec = append(rec, ',')
			}
			if w.kinds[i] == rights.KindValue {
				rec = appendJSONAsCSV(rec, line[w.spans[i][0]:w.spans[i][1]])
				continue
			}
			rec = appendTextCSV(rec, w.kinds[i], text)
		}
		rec = append(rec, '\r', '\n')
	}
	return w.endRow(line, rec)
}

// appendTextJSON appends a text value of kind as JSON.
func appendTextJSON(dst []byte, kind rights.ValueKind, text []byte) []byte {
	if text == nil {
		return append(dst, "null"...)
	}
	switch kind {
	case rights.KindNumber:
		if isJSONNumber(text) {
			return append(dst, text...)
		}
		return appendJSONString(dst, text) // NaN, Infinity, -Infinity
	case rights.KindBool:
		if len(text) > 0 && (text[0] == 't' || text[0] == 'T') {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case rights.KindJSON:
		return append(dst, text...)
	case rights.KindTimestampTZ, rights.KindTimestamp:
		dst = append(dst, '"')
		dst = appendRFC3339(dst, text, kind == rights.KindTimestampTZ)
		return append(dst, '"')
	case rights.KindBytes:
		return appendBase64Hex(append(dst, '"'), text, '"')
	}
	return appendJSONString(dst, text)
}

// appendTextCSV appends a text value of kind as a CSV field.
func appendTextCSV(dst []byte, kind rights.ValueKind, text []byte) []byte {
	if text == nil {
		return dst
	}
	switch kind {
	case rights.KindNumber, rights.KindJSON:
		return appendCSVField(dst, text, false)
	case rights.KindBool:
		if len(text) > 0 && (text[0] == 't' || text[0] == 'T') {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case rights.KindTimestampTZ, rights.KindTimestamp:
		return appendRFC3339(dst, text, kind == rights.KindTimestampTZ)
	case rights.KindBytes:
		return appendBase64Hex(dst, text, 0)
	}
	return appendCSVField(dst, text, true)
}

// isJSONNumber reports whether text is a number JSON can hold as written
// (Postgres writes integers, decimals and, for floats, exponents).
func isJSONNumber(text []byte) bool {
	if len(text) == 0 {
		return false
	}
	for _, c := range text {
		if (c < '0' || c > '9') && c != '-' && c != '.' && c != 'e' && c != 'E' && c != '+' {
			return false
		}
	}
	return text[0] != '.' && text[len(text)-1] != '.'
}

// appendRFC3339 turns Postgres' ISO output, "2020-01-02 03:04:05.123456+00"
// (or without the zone, or infinity), into RFC 3339: "…T…Z". The store's
// session runs in UTC (see stores.NewPostgres), so a zone is +00.
func appendRFC3339(dst, text []byte, tz bool) []byte {
	if len(text) < 19 || text[10] != ' ' {
		return append(dst, text...) // infinity, BC dates: as Postgres wrote them
	}
	dst = append(dst, text[:10]...)
	dst = append(dst, 'T')
	rest := text[11:]
	if tz {
		if n := len(rest); n >= 3 && string(rest[n-3:]) == "+00" {
			return append(append(dst, rest[:n-3]...), 'Z')
		}
		return append(dst, rest...)
	}
	return append(append(dst, rest...), 'Z')
}

// appendBase64Hex appends Postgres' bytea hex text ("\x4142") as base64,
// as the JSON of binary values is elsewhere; quote, if not 0, ends it.
func appendBase64Hex(dst, text []byte, quote byte) []byte {
	raw := text
	if len(raw) >= 2 && raw[0] == '\\' && raw[1] == 'x' {
		raw = raw[2:]
	}
	decoded := make([]byte, hex.DecodedLen(len(raw)))
	n, err := hex.Decode(decoded, raw)
	if err != nil {
		dst = append(dst, text...)
	} else {
		dst = base64.StdEncoding.AppendEncode(dst, decoded[:n])
	}
	if quote != 0 {
		dst = append(dst, quote)
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaping what JSON requires
// and nothing more (<, > and & stay as they are: people read these files),
// with invalid UTF-8 replaced by U+FFFD, as encoding/json does.
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but end lines in JavaScript;
		// encoding/json escapes them, and so do we.
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// jsonSafe and csvPlain mark the ASCII bytes a JSON string, or an unquoted
// CSV field, holds as they are.
var jsonSafe, csvPlain = func() (j, c [utf8.RuneSelf]bool) {
	for b := range utf8.RuneSelf {
		j[b] = b >= 0x20 && b != '"' && b != '\\'
		c[b] = b != ',' && b != '"' && b != '\r' && b != '\n'
	}
	return j, c
}()

// appendCSVField appends one CSV field, quoted when it holds a comma, a
// quote, a line break or leading space (the rules of encoding/csv). With
// defuse, a text a spreadsheet would run as a formula (it starts with =, +,
// -, @, a tab or a carriage return) gets an apostrophe first, which Excel,
// LibreOffice and Numbers read as "this is text" and do not show; a plain
// number ("-12.5", "+8613800138000") is left as it is, since a spreadsheet
// reads it as the number and nothing else.
func appendCSVField(dst, field []byte, defuse bool) []byte {
	apostrophe := defuse && len(field) > 0 && isFormulaStart(field[0]) && !isPlainNumber(field)
	needs := len(field) > 0 && (field[0] == ' ' || field[0] == '\t' || field[0] == '\r')
	if !needs {
		for _, c := range field {
			if c < utf8.RuneSelf && !csvPlain[c] {
				needs = true
				break
			}
		}
	}
	if !needs {
		if apostrophe {
			dst = append(dst, '\'')
		}
		return append(dst, field...)
	}
	dst = append(dst, '"')
	if apostrophe {
		dst = append(dst, '\'')
	}
	for _, c := range field {
		if c == '"' {
			dst = append(dst, '"')
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}

// appendJSONAsCSV appends, as a CSV field, a value already written as JSON:
// a string as its text (defused, see appendCSVField), null as nothing, and
// anything else (a number, an array, an object) as its JSON. A CSV cell
// then says what the JSON file says.
func appendJSONAsCSV(dst, value []byte) []byte {
	switch {
	case len(value) == 0 || string(value) == "null":
		return dst
	case value[0] == '"':
		var s string
		if err := json.Unmarshal(value, &s); err == nil {
			return appendCSVField(dst, []byte(s), true)
		}
	}
	return appendCSVField(dst, value, false)
}

// isPlainNumber reports whether text is a decimal number as people write
// it: an optional sign, digits with at most one point, and an optional
// exponent. Not isJSONNumber, which takes any run of digits, signs, points
// and e's ("-1+1", "--5"), which a spreadsheet would calculate.
func isPlainNumber(text []byte) bool {
	i, digits := 0, 0
	if i < len(text) && (text[i] == '+' || text[i] == '-') {
		i++
	}
	for ; i < len(text) && text[i] >= '0' && text[i] <= '9'; i++ {
		digits++
	}
	if i < len(text) && text[i] == '.' {
		for i++; i < len(text) && text[i] >= '0' && text[i] <= '9'; i++ {
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(text) && (text[i] == 'e' || text[i] == 'E') {
		i++
		if i < len(text) && (text[i] == '+' || text[i] == '-') {
			i++
		}
		exp := 0
		for ; i < len(text) && text[i] >= '0' && text[i] <= '9'; i++ {
			exp++
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(text)
}

func isFormulaStart(c byte) bool {
	return c == '=' || c == '+' || c == '-' || c == '@' || c == '\t' || c == '\r'
}

// AppendCSVRecord appends one CSV record (fields joined by commas, ended
// by CRLF) of text fields, each quoted as encoding/csv would and defused
// against formulas (see appendCSVField), for the service's own CSV files
// (the request register).
func AppendCSVRecord(dst []byte, fields []string) []byte {
	for i, f := range fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendCSVField(dst, []byte(f), true)
	}
	return append(dst, '\r', '\n')
}
