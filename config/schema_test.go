package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/datarights/datarights/config"
)

// TestParseReportsEveryProblemAtOnce: syntax and type errors and unknown
// keys come out as file:line: field: reason like validation problems, all
// of them in one run, with the key meant when one was misspelt.
func TestParseReportsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		yaml string
		want []string // each line must be in the error, in this order
		not  []string // none of these may be
	}{
		{
			name: "syntax error names its line",
			yaml: valid + "http:\n  addr: [127.0.0.1:8080\n  public_url: https://x\n",
			// The line of the list never closed.
			want: []string{"conf.yaml:22: YAML syntax: did not find expected ',' or ']'"},
		},
		{
			name: "scanner error names its line",
			yaml: valid + "http:\n  addr: 127.0.0.1:8080\n  public_url: https://x: y\n",
			want: []string{"conf.yaml:23: YAML syntax: mapping values are not allowed in this context"},
		},
		{
			name: "bad indentation",
			yaml: strings.Replace(valid, "    kind: postgres", "   kind: postgres", 1),
			// The list entry the line breaks.
			want: []string{"conf.yaml:9: YAML syntax: did not find expected '-' indicator"},
		},
		{
			name: "type errors in two sections, with the validation problems of the rest",
			yaml: strings.Replace(strings.Replace(valid, "days: 15", "days: fifteen", 1), "kind: postgres", "kind: oracle", 1) +
				"worker:\n  concurrency: 20\n  job_timeout: 5 minutes\n",
			want: []string{
				"conf.yaml:6: products[0].deadline.days: must be a whole number, not \"fifteen\"",
				"conf.yaml:23: worker.job_timeout: must be a duration such as 90s, 15m or 24h, not \"5 minutes\"",
				"conf.yaml:10: stores[0].kind: must be one of postgres",
			},
			// days could not be read: its range check would only mislead.
			not: []string{"must be between 1 and 366"},
		},
		{
			name: "a list where a mapping belongs, and a mapping where a value belongs",
			yaml: valid + "http: [127.0.0.1]\nsmtp:\n  from: {name: x}\n",
			want: []string{
				"conf.yaml:21: http: must be a mapping (key: value, …), not a list",
				"conf.yaml:23: smtp.from: must be a single value (text), not a mapping",
			},
		},
		{
			name: "unknown key with a near miss",
			yaml: strings.Replace(valid, "clock_start: verified", "clock_start: verified\n      max_extention_days: 30", 1),
			want: []string{"conf.yaml:8: products[0].deadline.max_extention_days: unknown field; did you mean max_extension_days?"},
		},
		{
			name: "near misses: swapped letters, dashes, case",
			yaml: valid + "wroker:\n  concurrency: 5\nself-service:\n  code_ttl: 5m\nDatabase_URL: x\n",
			want: []string{
				"conf.yaml:21: wroker: unknown field; did you mean worker?",
				"conf.yaml:23: self-service: unknown field; did you mean self_service?",
				"conf.yaml:25: Database_URL: unknown field; did you mean database_url?",
			},
		},
		{
			name: "unknown key without a near miss",
			yaml: valid + "colour: red\nhttp:\n  port: 8080\n",
			want: []string{
				"conf.yaml:21: colour: unknown field\n",
				"conf.yaml:23: http.port: unknown field; expected one of addr, max_body_bytes, public_url, trusted_proxies, ops_addr, signature_window",
			},
			not: []string{"colour: unknown field; did you mean"},
		},
		{
			name: "unknown key inside a two-language text",
			yaml: strings.Replace(valid, "name: webank\n", "name: webank\n    display_name: 微众银行\n", 1) +
				"exports:\n  categories:\n    loans: {zh: 贷款, en: Loans}\n",
			want: []string{"conf.yaml:24: exports.categories.loans.zh: unknown field; expected one of zh-CN, en"},
		},
		{
			name: "a key given twice",
			yaml: valid + "data_dir: /a\ndata_dir: /b\n",
			want: []string{"conf.yaml:22: data_dir: given twice (first on line 21)"},
			// yaml.v3 then decodes none of the mapping: no "is required".
			not: []string{"database_url: is required"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse("conf.yaml", []byte(tc.yaml), env(map[string]string{"BANK_DSN": "postgres://bank/db"}))
			var cerr *config.Error
			if !errors.As(err, &cerr) {
				t.Fatalf("err = %v (%T), want a *config.Error", err, err)
			}
			msg := err.Error() + "\n"
			at := 0
			for _, want := range tc.want {
				i := strings.Index(msg[at:], want)
				if i < 0 {
					t.Errorf("error lacks %q (after what came before):\n%s", want, msg)
					continue
				}
				at += i + len(want)
			}
			for _, not := range tc.not {
				if strings.Contains(msg, not) {
					t.Errorf("error has %q:\n%s", not, msg)
				}
			}
		})
	}
}
