package stores_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/exporters"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage/storagetest"
)

const trickyText = "quote \" back \\ nl \n tab \t ctl \x01 中文 <&> \u2028"

// TestExportAsTextWritesEveryKind: the Postgres connector reads common
// column types as text into staging (the fast path of large exports); every
// value must come out in the JSON and CSV files as the value path writes
// it, or as its documented text form.
func TestExportAsTextWritesEveryKind(t *testing.T) {
	t.Parallel()
	url := storagetest.NewDatabase(t, "textpath")
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	_, err = conn.Exec(t.Context(), `CREATE TABLE vals (user_id text, nothing text, small int2, normal int4, big int8, neg int4,
		f4 float4, nan float8, inf float8, amount numeric, flag boolean, at timestamptz, naive timestamp, day date,
		uuid uuid, blob bytea, doc jsonb, uuids uuid[], tags text[], ip inet, span interval, tricky text, formula text)`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(t.Context(), `INSERT INTO vals VALUES ('u-1', NULL, 42, 42, 42, -5, 1.25, 'NaN', 'Infinity', 123.4500, true,
		'2024-03-05 14:07:09.123456+08', '2024-03-05 06:07:09', '2024-03-05', '123e4567-e89b-12d3-a456-426614174000',
		'\x00ff', '{"b": [1, "x"], "a": null}', ARRAY['123e4567-e89b-12d3-a456-426614174000'::uuid], ARRAY['a', NULL],
		'10.1.2.3/32', '1 day 02:00:00', $1, '=HYPERLINK("http://evil")'), ('u-10', NULL, 0, 0, 0, 0, 0, 0, 0, 0, false,
		NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'not mine', NULL)`, trickyText)
	if err != nil {
		t.Fatal(err)
	}
	pg := newConnector(t, config.Store{Name: "text", Kind: "postgres", DSN: url, Key: "user_id",
		Tables: []config.Table{{Name: "vals", Column: "user_id"}}})
	staging := exporters.NewStagingWith(t.TempDir(), exporters.StagingOptions{CSV: true, BOM: true})
	sink, err := staging.Sink("req", "text")
	if err != nil {
		t.Fatal(err)
	}
	report, err := pg.Export(t.Context(), subject("user_id", "u-1"), sink)
	if err != nil {
		t.Fatal(err)
	}
	ds := report.Datasets[0]
	if ds.Rows != 1 || ds.CSV == nil {
		t.Fatalf("dataset = %+v", ds)
	}
	rc, err := exporters.OpenStaged(staging.Dir("req"), "text", ds)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(rc)
	rc.Close()
	var rows []map[string]json.RawMessage
	if err := json.Unmarshal(data, &rows); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	want := map[string]string{
		"user_id": `"u-1"`, "nothing": `null`, "small": `42`, "normal": `42`, "big": `42`, "neg": `-5`,
		"f4": `1.25`, "nan": `"NaN"`, "inf": `"Infinity"`, "amount": `123.4500`, "flag": `true`,
		"at": `"2024-03-05T06:07:09.123456Z"`, "naive": `"2024-03-05T06:07:09Z"`, "day": `"2024-03-05"`,
		"uuid": `"123e4567-e89b-12d3-a456-426614174000"`, "blob": `"AP8="`,
		"uuids": `["123e4567-e89b-12d3-a456-426614174000"]`, "tags": `["a",null]`,
		"ip": `"10.1.2.3"`, "span": `"1 day 02:00:00"`,
	}
	for col, w := range want {
		if g := string(rows[0][col]); g != w {
			t.Errorf("JSON %s = %s, want %s", col, g, w)
		}
	}
	var doc map[string]any
	if err := json.Unmarshal(rows[0]["doc"], &doc); err != nil || doc["a"] != nil || len(doc["b"].([]any)) != 2 {
		t.Errorf("JSON doc = %s", rows[0]["doc"])
	}
	var tricky string
	if err := json.Unmarshal(rows[0]["tricky"], &tricky); err != nil || tricky != trickyText {
		t.Errorf("JSON tricky = %s (%v)", rows[0]["tricky"], err)
	}

	// The CSV: a BOM, a header, the row; formulas defused, numbers not.
	rc, err = exporters.OpenStaged(staging.Dir("req"), "text", csvDataset(ds))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(rc)
	rc.Close()
	body, bom := bytes.CutPrefix(raw, []byte("\uFEFF"))
	records, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if !bom || err != nil || len(records) != 2 {
		t.Fatalf("CSV: BOM %v, %d records, %v\n%s", bom, len(records), err, raw)
	}
	cell := map[string]string{}
	for i, col := range records[0] {
		cell[col] = records[1][i]
	}
	for col, w := range map[string]string{"user_id": "u-1", "nothing": "", "neg": "-5", "amount": "123.4500", "flag": "true",
		"at": "2024-03-05T06:07:09.123456Z", "blob": "AP8=", "tricky": trickyText, "formula": `'=HYPERLINK("http://evil")`,
		"uuids": `["123e4567-e89b-12d3-a456-426614174000"]`} {
		if cell[col] != w {
			t.Errorf("CSV %s = %q, want %q", col, cell[col], w)
		}
	}
}

// csvDataset is a dataset report naming its CSV file as its main one, to
// open it with OpenStaged.
func csvDataset(ds rights.DatasetReport) rights.DatasetReport {
	c := *ds.CSV
	ds.File, ds.Deflated, ds.SHA256, ds.Bytes = c.File, c.Deflated, c.SHA256, c.Bytes
	return ds
}
