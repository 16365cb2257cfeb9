package exporters_test

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"io"
	"math"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/datarights/datarights/exporters"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage/storagetest"
)

func TestStagingWritesEveryValueKind(t *testing.T) {
	t.Parallel()
	staging := exporters.NewStaging(t.TempDir())
	sink, err := staging.Sink("req-1", "bank_core")
	if err != nil {
		t.Fatal(err)
	}

	at := time.Date(2024, 3, 5, 14, 7, 9, 123456789, time.FixedZone("CST", 8*3600))
	id := [16]byte{0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17, 0x40, 0x00}
	mac, _ := net.ParseMAC("08:00:2b:01:02:03")
	type custom struct {
		A int `json:"a"`
	}
	values := []struct {
		column string
		value  any
		want   string // the value's JSON in the staged file
	}{
		{"nil", nil, `null`},
		{"text", "张三 <script>alert(1)</script> \"q\"\n&", `"张三 <script>alert(1)</script> \"q\"\n&"`},
		{"bool", true, `true`},
		{"int", int(-1), `-1`},
		{"int8", int8(-8), `-8`},
		{"int16", int16(-16), `-16`},
		{"int32", int32(-32), `-32`},
		{"int64", int64(math.MinInt64), `-9223372036854775808`},
		{"uint", uint(1), `1`},
		{"uint8", uint8(8), `8`},
		{"uint16", uint16(16), `16`},
		{"uint32", uint32(32), `32`},
		{"uint64", uint64(math.MaxUint64), `18446744073709551615`},
		{"float32", float32(1.5), `1.5`},
		{"float64", 0.1, `0.1`},
		{"nan", math.NaN(), `"NaN"`},
		{"inf", math.Inf(-1), `"-Infinity"`},
		{"time", at, `"2024-03-05T14:07:09.123456789+08:00"`},
		{"bytes", []byte{0, 1, 2, 0xff}, `"AAEC/w=="`},
		{"uuid", id, `"123e4567-e89b-12d3-a456-426614174000"`},
		{"numeric", pgtype.Numeric{Int: big.NewInt(12345), Exp: -2, Valid: true}, `123.45`},
		{"numeric_null", pgtype.Numeric{}, `null`},
		{"interval", pgtype.Interval{Days: 1, Microseconds: 3600e6, Valid: true}, `"1 day 01:00:00"`},
		{"jsonb", map[string]any{"b": []any{1.0, "x"}, "a": nil}, `{"a":null,"b":[1,"x"]}`},
		{"uuid_array", []any{id, nil}, `["123e4567-e89b-12d3-a456-426614174000",null]`},
		{"inet", netip.MustParsePrefix("192.168.0.0/24"), `"192.168.0.0/24"`},
		{"addr", netip.MustParseAddr("::1"), `"::1"`},
		{"macaddr", mac, `"08:00:2b:01:02:03"`},
		{"struct", custom{A: 7}, `{"a":7}`},
		{"unencodable", make(chan int), ""}, // fmt.Sprint's address: checked for being a string
	}
	columns := make([]string, len(values))
	row := make([]any, len(values))
	for i, v := range values {
		columns[i], row[i] = v.column, v.value
	}
	w, err := sink.Dataset("public.users", columns)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := w.WriteRow(row); err != nil {
			t.Fatal(err)
		}
	}
	report, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}

	if report.Name != "public.users" || report.Rows != 3 || report.File != "bank_core/public.users.json" {
		t.Errorf("report = %+v", report)
	}
	data, err := readStaged(staging.Dir("req-1"), report.File)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if report.SHA256 != hex.EncodeToString(sum[:]) || report.Bytes != int64(len(data)) {
		t.Errorf("report says sha256 %s, %d bytes; file has %x, %d bytes", report.SHA256, report.Bytes, sum, len(data))
	}

	var rows []map[string]json.RawMessage
	if err := json.Unmarshal(data, &rows); err != nil {
		t.Fatalf("staged file is not JSON: %v\n%s", err, data)
	}
	if len(rows) != 3 {
		t.Fatalf("staged %d rows, want 3", len(rows))
	}
	for _, v := range values {
		got := string(rows[0][v.column])
		if v.want == "" {
			if !strings.HasPrefix(got, `"`) {
				t.Errorf("%s = %s, want a string", v.column, got)
			}
			continue
		}
		if got != v.want {
			t.Errorf("%s = %s, want %s", v.column, got, v.want)
		}
	}

	// Keys are in column order, not sorted.
	firstRow := data[:bytes.IndexByte(data[2:], '\n')+2]
	last := -1
	for _, col := range columns {
		i := bytes.Index(firstRow, []byte(`"`+col+`":`))
		if i <= last {
			t.Fatalf("column %s is out of order in %s", col, firstRow)
		}
		last = i
	}
}

func TestStagingEmptyDataset(t *testing.T) {
	t.Parallel()
	staging := exporters.NewStaging(t.TempDir())
	sink, err := staging.Sink("req-1", "crm")
	if err != nil {
		t.Fatal(err)
	}
	w, err := sink.Dataset("cards", []string{"id"})
	if err != nil {
		t.Fatal(err)
	}
	report, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	data, err := readStaged(staging.Dir("req-1"), report.File)
	if err != nil {
		t.Fatal(err)
	}
	var rows []any
	if err := json.Unmarshal(data, &rows); err != nil || rows == nil || len(rows) != 0 {
		t.Errorf("empty dataset staged as %q", data)
	}
	if report.Rows != 0 || report.Bytes != int64(len(data)) {
		t.Errorf("report = %+v", report)
	}
}

func TestStagingRejectsBadNames(t *testing.T) {
	t.Parallel()
	staging := exporters.NewStaging(t.TempDir())
	sink, err := staging.Sink("req-1", "crm")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", ".", "..", "../users", "a/b", `a\b`, "a..b", ".hidden", "has space", "用户", "nul\x00", strings.Repeat("a", 201)} {
		if _, err := sink.Dataset(name, []string{"id"}); rights.ErrorCode(err) != rights.EInvalid {
			t.Errorf("Dataset(%q) error = %v, want an %s error", name, err, rights.EInvalid)
		}
	}
	for _, bad := range []string{"", ".", "..", "../x", "a/b"} {
		if _, err := staging.Sink(bad, "crm"); err == nil {
			t.Errorf("Sink(%q, crm) succeeded", bad)
		}
		if _, err := staging.Sink("req-1", bad); err == nil {
			t.Errorf("Sink(req-1, %q) succeeded", bad)
		}
		if err := staging.Remove(bad); err == nil {
			t.Errorf("Remove(%q) succeeded", bad)
		}
	}
	if _, err := sink.Dataset("dup_columns", []string{"id", "name", "id"}); rights.ErrorCode(err) != rights.EInvalid {
		t.Errorf("duplicate columns: error = %v", err)
	}

	w, err := sink.Dataset("schema-1.table_2", []string{"id", "name"})
	if err != nil {
		t.Fatalf("a schema-qualified name was refused: %v", err)
	}
	if err := w.WriteRow([]any{1}); err == nil {
		t.Error("a row with too few values was accepted")
	}
	if _, err := sink.Dataset("schema-1.table_2", []string{"id"}); err == nil {
		t.Error("the same dataset was started twice in one sink")
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close(); err == nil {
		t.Error("second Close succeeded")
	}
}

func TestStagingRerunOverwrites(t *testing.T) {
	t.Parallel()
	staging := exporters.NewStaging(t.TempDir())
	write := func(n int) rights.DatasetReport {
		t.Helper()
		sink, err := staging.Sink("req-1", "crm")
		if err != nil {
			t.Fatal(err)
		}
		w, err := sink.Dataset("orders", []string{"id"})
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if err := w.WriteRow([]any{i}); err != nil {
				t.Fatal(err)
			}
		}
		report, err := w.Close()
		if err != nil {
			t.Fatal(err)
		}
		return report
	}

	// A crashed run leaves an unclosed dataset behind: its rows must never
	// show up under the final name.
	sink, err := staging.Sink("req-1", "crm")
	if err != nil {
		t.Fatal(err)
	}
	crashed, err := sink.Dataset("orders", []string{"id"})
	if err != nil {
		t.Fatal(err)
	}
	if err := crashed.WriteRow([]any{99}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(staging.Dir("req-1"), "crm", "orders.json")); !os.IsNotExist(err) {
		t.Fatalf("an unfinished dataset is visible under its final name (stat error %v)", err)
	}

	first := write(3)
	second := write(1)
	if first.File != second.File || first.SHA256 == second.SHA256 {
		t.Fatalf("reports %+v and %+v", first, second)
	}
	data, err := readStaged(staging.Dir("req-1"), second.File)
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]int
	if err := json.Unmarshal(data, &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0]["id"] != 0 {
		t.Errorf("after the rerun the file holds %s", data)
	}

	if err := staging.Remove("req-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(staging.Dir("req-1")); !os.IsNotExist(err) {
		t.Errorf("Remove left the staging dir (stat error %v)", err)
	}
	if err := staging.Remove("req-1"); err != nil {
		t.Errorf("removing twice: %v", err)
	}
}

// TestStagingPostgresValues stages the values pgx itself returns for the
// column types stores commonly use.
func TestStagingPostgresValues(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, storagetest.NewDatabase(t, "staging"))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)

	rows, err := conn.Query(ctx, `SELECT
		'u-42'::text AS id,
		NULL::text AS nothing,
		42::int2 AS small, 42::int4 AS normal, 42::int8 AS big,
		1.25::float4 AS f4, 'NaN'::float8 AS nan,
		123.4500::numeric AS amount,
		true AS flag,
		'2024-03-05 06:07:09.123456+00'::timestamptz AS at,
		'2024-03-05'::date AS day,
		'123e4567-e89b-12d3-a456-426614174000'::uuid AS uuid,
		'\x00ff'::bytea AS blob,
		'{"b": [1, "x"], "a": null}'::jsonb AS doc,
		ARRAY['123e4567-e89b-12d3-a456-426614174000'::uuid] AS uuids,
		ARRAY['a', NULL] AS tags,
		'10.1.2.3/32'::inet AS ip,
		'08:00:2b:01:02:03'::macaddr AS mac,
		'1 day 02:00:00'::interval AS span,
		'12:34:56'::time AS clock`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var columns []string
	for _, f := range rows.FieldDescriptions() {
		columns = append(columns, f.Name)
	}
	staging := exporters.NewStaging(t.TempDir())
	sink, err := staging.Sink("req-pg", "pg")
	if err != nil {
		t.Fatal(err)
	}
	w, err := sink.Dataset("public.values", columns)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		values, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteRow(values); err != nil {
			t.Fatal(err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	report, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	data, err := readStaged(staging.Dir("req-pg"), report.File)
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]json.RawMessage
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	want := map[string]string{
		"id":      `"u-42"`,
		"nothing": `null`,
		"small":   `42`,
		"normal":  `42`,
		"big":     `42`,
		"f4":      `1.25`,
		"nan":     `"NaN"`,
		"amount":  `123.4500`,
		"flag":    `true`,
		"uuid":    `"123e4567-e89b-12d3-a456-426614174000"`,
		"blob":    `"AP8="`,
		"doc":     `{"a":null,"b":[1,"x"]}`,
		"uuids":   `["123e4567-e89b-12d3-a456-426614174000"]`,
		"tags":    `["a",null]`,
		"ip":      `"10.1.2.3/32"`,
		"mac":     `"08:00:2b:01:02:03"`,
		"span":    `"1 day 02:00:00"`,
		"clock":   `"12:34:56.000000"`,
	}
	for col, w := range want {
		if g := string(got[0][col]); g != w {
			t.Errorf("%s = %s, want %s", col, g, w)
		}
	}
	var at time.Time
	if err := json.Unmarshal(got[0]["at"], &at); err != nil || !at.Equal(time.Date(2024, 3, 5, 6, 7, 9, 123456000, time.UTC)) {
		t.Errorf("at = %s (%v)", got[0]["at"], err)
	}
	if !strings.HasPrefix(string(got[0]["day"]), `"2024-03-05T00:00:00`) {
		t.Errorf("day = %s", got[0]["day"])
	}
}

// readStaged returns the content of a staged file (rel as a dataset report
// names it), inflated from its .df file.
func readStaged(dir, rel string) ([]byte, error) {
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(rel)) + ".df")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(flate.NewReader(f))
}

// writeStaged replaces a staged file's content, deflated as staging does.
func writeStaged(t *testing.T, dir, rel string, content []byte) {
	t.Helper()
	var b bytes.Buffer
	fw, _ := flate.NewWriter(&b, flate.BestSpeed)
	fw.Write(content)
	fw.Close()
	if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(rel))+".df", b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestStagingCSV: the CSV of a dataset says what its JSON says, quoted
// where needed, with formulas defused and numbers left alone.
func TestStagingCSV(t *testing.T) {
	t.Parallel()
	staging := exporters.NewStagingWith(t.TempDir(), exporters.StagingOptions{CSV: true, BOM: true})
	sink, err := staging.Sink("req-csv", "crm")
	if err != nil {
		t.Fatal(err)
	}
	w, err := sink.Dataset("notes", []string{"id", "text", "minus", "amount", "tags", "nothing", "when"})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)
	rows := [][]any{
		{int64(1), "=1+1", "-5", int64(-5), []any{"a", "b,c"}, nil, at},
		{int64(2), "line\nbreak, \"quoted\"", "@SUM(A1)", 1.5, map[string]any{"k": 1}, nil, at},
	}
	for _, r := range rows {
		if err := w.WriteRow(r); err != nil {
			t.Fatal(err)
		}
	}
	report, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := readStaged(staging.Dir("req-csv"), report.CSV.File)
	if err != nil {
		t.Fatal(err)
	}
	body, bom := bytes.CutPrefix(raw, []byte("\uFEFF"))
	if !bom || !bytes.Contains(body, []byte("\r\n")) {
		t.Errorf("CSV lacks the BOM or CRLF line ends: %q", raw[:min(len(raw), 40)])
	}
	got, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"id", "text", "minus", "amount", "tags", "nothing", "when"},
		{"1", "'=1+1", "-5", "-5", `["a","b,c"]`, "", "2024-05-01T08:00:00Z"},
		{"2", "line\nbreak, \"quoted\"", "'@SUM(A1)", "1.5", `{"k":1}`, "", "2024-05-01T08:00:00Z"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CSV =\n%q\nwant\n%q", got, want)
	}
	if report.CSV.Bytes != int64(len(raw)) || report.CSV.SHA256 == "" || report.CSV.Deflated == "" {
		t.Errorf("CSV report = %+v", report.CSV)
	}
}
