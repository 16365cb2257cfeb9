package metrics_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/datarights/datarights/metrics"
)

// The deploy files checked, relative to this package.
var (
	dashboardFile  = filepath.Join("..", "deploy", "grafana", "datarights.json")
	alertsFile     = filepath.Join("..", "deploy", "prometheus", "alerts.yml")
	prometheusFile = filepath.Join("..", "deploy", "prometheus", "prometheus.yml")
)

// TestDeployMetricsExist fails when the dashboard or an alert queries a metric
// the service does not export: a renamed metric would otherwise leave an
// empty panel, or an alert that can never fire, and nobody would notice.
func TestDeployMetricsExist(t *testing.T) {
	t.Parallel()
	known := knownMetrics(metrics.Names())

	t.Run("Dashboard", func(t *testing.T) {
		t.Parallel()
		data, err := os.ReadFile(dashboardFile)
		if err != nil {
			t.Fatal(err)
		}
		queries, err := dashboardQueries(data)
		if err != nil {
			t.Fatalf("%s: %v", dashboardFile, err)
		}
		if len(queries) < 10 {
			t.Fatalf("%s: found only %d queries; is the walker still finding the panels?", dashboardFile, len(queries))
		}
		for _, problem := range checkQueries(dashboardFile, queries, known) {
			t.Error(problem)
		}
	})

	t.Run("Alerts", func(t *testing.T) {
		t.Parallel()
		data, err := os.ReadFile(alertsFile)
		if err != nil {
			t.Fatal(err)
		}
		queries, err := alertQueries(data)
		if err != nil {
			t.Fatalf("%s: %v", alertsFile, err)
		}
		if len(queries) < 7 {
			t.Fatalf("%s: found only %d rules", alertsFile, len(queries))
		}
		for _, problem := range checkQueries(alertsFile, queries, known) {
			t.Error(problem)
		}
	})
}

// TestDeployCheckerCatchesUnknownMetrics proves the checks above can fail.
func TestDeployCheckerCatchesUnknownMetrics(t *testing.T) {
	t.Parallel()
	known := knownMetrics(metrics.Names())

	t.Run("Dashboard", func(t *testing.T) {
		t.Parallel()
		dashboard := `{"panels": [
			{"id": 1, "type": "timeseries", "title": "Fine", "targets": [
				{"refId": "A", "expr": "sum(rate(datarights_requests_received_total[5m]))"}]},
			{"id": 2, "type": "row", "title": "Row", "panels": [
				{"id": 3, "type": "timeseries", "title": "Typo", "targets": [
					{"refId": "A", "expr": "sum by (product) (rate(datarights_requests_recieved_total{product=~\"$product\"}[5m]))"},
					{"refId": "B", "expr": "histogram_quantile(0.9, sum by (le) (rate(datarights_no_such_histogram_bucket[5m])))"}]}]}],
			"templating": {"list": [
				{"name": "product", "type": "query", "query": {"query": "label_values(datarights_gone, product)"}},
				{"name": "ds", "type": "datasource", "query": "prometheus"}]}}`
		queries, err := dashboardQueries([]byte(dashboard))
		if err != nil {
			t.Fatal(err)
		}
		problems := checkQueries("test.json", queries, known)
		wantProblems(t, problems,
			`test.json: panel "Typo" (id 3) target A: unknown metric datarights_requests_recieved_total`,
			`test.json: panel "Typo" (id 3) target B: unknown metric datarights_no_such_histogram_bucket`,
			`test.json: variable "product": unknown metric datarights_gone`,
		)
	})

	t.Run("Alerts", func(t *testing.T) {
		t.Parallel()
		alerts := `
groups:
  - name: g
    rules:
      - alert: Fine
        expr: increase(datarights_requests_breached_total[15m]) > 0
      - alert: Renamed
        expr: datarights_requests_overdue > 0
      - alert: BadFunction
        expr: rat(datarights_river_jobs_total[5m]) > 0
`
		queries, err := alertQueries([]byte(alerts))
		if err != nil {
			t.Fatal(err)
		}
		problems := checkQueries("alerts.yml", queries, known)
		wantProblems(t, problems,
			`alerts.yml: group "g" alert "Renamed": unknown metric datarights_requests_overdue`,
			`alerts.yml: group "g" alert "BadFunction": unknown function rat`,
		)
	})

	t.Run("Suffixes", func(t *testing.T) {
		t.Parallel()
		// _bucket, _count and _sum belong to the histogram family; on a
		// family that exists they pass, on one that does not they fail.
		queries := []query{
			{where: "ok", expr: "datarights_store_task_duration_seconds_count + datarights_store_task_duration_seconds_sum"},
			{where: "bad", expr: "datarights_store_task_seconds_count"},
		}
		wantProblems(t, checkQueries("f", queries, known),
			`f: bad: unknown metric datarights_store_task_seconds_count`)
	})
}

func wantProblems(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestAlertRulesDocumented checks every alert tells the person it wakes what
// it means and what to do.
func TestAlertRulesDocumented(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var file ruleFile
	if err := yaml.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	alerts := map[string]bool{}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts[r.Alert] = true
			for _, key := range []string{"summary", "description", "runbook"} {
				if strings.TrimSpace(r.Annotations[key]) == "" {
					t.Errorf("%s: alert %s has no %s annotation", alertsFile, r.Alert, key)
				}
			}
			if s := r.Labels["severity"]; s != "page" && s != "warning" {
				t.Errorf("%s: alert %s: severity %q, want page or warning", alertsFile, r.Alert, s)
			}
		}
	}
	for _, name := range []string{"RequestsOverdue", "RequestsDueSoon", "RequestBreached", "StoreTaskErrorsHigh",
		"RiverJobsFailing", "DeadlineCalendarMissing", "OpenRequestsScrapeFailing"} {
		if !alerts[name] {
			t.Errorf("%s: no alert %s", alertsFile, name)
		}
	}
}

// TestPrometheusConfig checks the example scrape configuration scrapes the
// service and loads the alert rules next to it.
func TestPrometheusConfig(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(prometheusFile)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			Scheme        string `yaml:"scheme"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cfg.RuleFiles, filepath.Base(alertsFile)) {
		t.Errorf("%s: rule_files %v does not load %s", prometheusFile, cfg.RuleFiles, filepath.Base(alertsFile))
	}
	var urls []string
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				urls = append(urls, sc.Scheme+"://"+target+sc.MetricsPath)
			}
		}
	}
	if !slices.Contains(urls, "http://datarights:8080/metrics") {
		t.Errorf("%s: scrapes %v, not http://datarights:8080/metrics", prometheusFile, urls)
	}
}

// query is one PromQL expression and where it was found, for messages.
type query struct {
	where string
	expr  string
}

// checkQueries returns one problem per metric (or function) in the queries
// that is not known, each naming the file, the place and the name.
func checkQueries(file string, queries []query, known map[string]bool) []string {
	var problems []string
	for _, q := range queries {
		names, err := promqlMetrics(q.expr)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %s: %v", file, q.where, err))
			continue
		}
		for _, name := range names {
			if !knownMetric(name, known) {
				problems = append(problems, fmt.Sprintf("%s: %s: unknown metric %s", file, q.where, name))
			}
		}
	}
	return problems
}

func knownMetrics(names []string) map[string]bool {
	known := map[string]bool{}
	for _, n := range names {
		known[n] = true
	}
	return known
}

// knownMetric reports whether name is an exported family, or a histogram's
// (or summary's) _bucket, _count or _sum series of one.
func knownMetric(name string, known map[string]bool) bool {
	if known[name] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_count", "_sum"} {
		if family, ok := strings.CutSuffix(name, suffix); ok && known[family] {
			return true
		}
	}
	return false
}

// dashboardQueries returns every PromQL expression in a Grafana dashboard:
// each target's expr, in panels at any depth (rows nest panels), and each
// query variable's query.
func dashboardQueries(data []byte) ([]query, error) {
	var dashboard map[string]any
	if err := json.Unmarshal(data, &dashboard); err != nil {
		return nil, err
	}
	var out []query
	var walk func(v any, where string)
	walk = func(v any, where string) {
		switch v := v.(type) {
		case []any:
			for _, item := range v {
				walk(item, where)
			}
		case map[string]any:
			if _, isPanel := v["type"]; isPanel && v["title"] != nil && (v["targets"] != nil || v["panels"] != nil || v["gridPos"] != nil) {
				where = fmt.Sprintf("panel %q (id %v)", v["title"], v["id"])
			}
			if expr, ok := v["expr"].(string); ok {
				ref, _ := v["refId"].(string)
				out = append(out, query{where: strings.TrimSpace(where + " target " + ref), expr: expr})
			}
			for _, child := range v {
				walk(child, where)
			}
		}
	}
	walk(dashboard["panels"], "")

	templating, _ := dashboard["templating"].(map[string]any)
	variables, _ := templating["list"].([]any)
	for _, item := range variables {
		v, _ := item.(map[string]any)
		if v["type"] != "query" {
			continue // datasource, custom, interval…: not PromQL
		}
		q := v["query"]
		if m, ok := q.(map[string]any); ok {
			q = m["query"]
		}
		text, _ := q.(string)
		if expr := variableExpr(text); expr != "" {
			out = append(out, query{where: fmt.Sprintf("variable %q", v["name"]), expr: expr})
		}
	}
	return out, nil
}

// Grafana's Prometheus variable functions, which are not PromQL.
var (
	labelValuesOfSeries = regexp.MustCompile(`^label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)$`)
	queryResult         = regexp.MustCompile(`^query_result\((.*)\)$`)
)

// variableExpr returns the PromQL inside a query variable's query, or ""
// when it selects no metric: label_values(label), label_names(),
// metrics(regex).
func variableExpr(q string) string {
	q = strings.TrimSpace(q)
	if m := labelValuesOfSeries.FindStringSubmatch(q); m != nil {
		return m[1]
	}
	if m := queryResult.FindStringSubmatch(q); m != nil {
		return m[1]
	}
	for _, prefix := range []string{"label_values(", "label_names(", "metrics("} {
		if strings.HasPrefix(q, prefix) {
			return ""
		}
	}
	return q
}

// ruleFile is the shape of a Prometheus rule file.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// alertQueries returns the expr of every rule in a Prometheus rule file.
func alertQueries(data []byte) ([]query, error) {
	var file ruleFile
	if err := yaml.Unmarshal(data, &file); err != nil {
		return nil, err
	}
	var out []query
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			where := fmt.Sprintf("group %q alert %q", g.Name, r.Alert)
			if r.Record != "" {
				where = fmt.Sprintf("group %q record %q", g.Name, r.Record)
			}
			out = append(out, query{where: where, expr: r.Expr})
		}
	}
	return out, nil
}

// PromQL words that are not metric names.
var (
	promqlAggregations = setOf("sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
		"bottomk", "topk", "quantile", "limitk", "limit_ratio")
	// Keywords followed by a parenthesised list of label names.
	promqlLabelListKeywords = setOf("by", "without", "on", "ignoring", "group_left", "group_right")
	promqlKeywords          = setOf("and", "or", "unless", "atan2", "bool", "offset", "inf", "nan")
	promqlFunctions         = setOf(
		"abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
		"avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
		"count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg",
		"delta", "deriv", "double_exponential_smoothing", "end", "exp", "first_over_time", "floor",
		"histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile",
		"histogram_stddev", "histogram_stdvar", "histogram_sum", "holt_winters", "hour", "idelta",
		"increase", "info", "irate", "label_join", "label_replace", "last_over_time", "ln", "log10",
		"log2", "mad_over_time", "max_over_time", "min_over_time", "minute", "month", "pi",
		"predict_linear", "present_over_time", "quantile_over_time", "rad", "rate", "resets", "round",
		"scalar", "sgn", "sin", "sinh", "sort", "sort_by_label", "sort_by_label_desc", "sort_desc",
		"sqrt", "start", "stddev_over_time", "stdvar_over_time", "sum_over_time", "tan", "tanh", "time",
		"timestamp", "ts_of_first_over_time", "ts_of_last_over_time", "ts_of_max_over_time",
		"ts_of_min_over_time", "vector", "year")
)

func setOf(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

// promqlMetrics returns the metric names an expression selects, in order,
// as written (a histogram's _bucket included). It is a tokenizer, not a
// parser: it skips strings, comments, numbers and durations, range and
// subquery brackets, Grafana variables ($x, ${x}), label names inside
// braces and after by/without/on/ignoring/group_left/group_right, keywords,
// aggregations and function calls; every other identifier is a metric. A
// name given as {__name__="x"} or {"x"} counts too. It reports an unknown
// function, which PromQL would reject.
func promqlMetrics(expr string) ([]string, error) {
	var names []string
	braces := 0
	i := 0
	// next returns the index of the next non-space byte at or after j.
	next := func(j int) int {
		for j < len(expr) && strings.ContainsRune(" \t\r\n", rune(expr[j])) {
			j++
		}
		return j
	}
	// skipGroup returns the index after the bracket group that opens at j.
	skipGroup := func(j int, open, close byte) (int, error) {
		depth := 0
		for ; j < len(expr); j++ {
			switch expr[j] {
			case open:
				depth++
			case close:
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("unclosed %q in %q", open, expr)
	}
	for i < len(expr) {
		c := expr[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '#': // comment to the end of the line
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(expr) && expr[j] != c {
				if expr[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			if j >= len(expr) {
				return nil, fmt.Errorf("unterminated string in %q", expr)
			}
			text := expr[i+1 : j]
			i = j + 1
			// {"metric.name", label="x"}: a quoted name in braces without a
			// matcher after it is the metric name.
			if braces > 0 {
				if k := next(i); k < len(expr) && (expr[k] == ',' || expr[k] == '}') && !afterMatcher(expr[:i-len(text)-2]) {
					names = append(names, text)
				}
			}
		case c == '{':
			braces++
			i++
		case c == '}':
			braces--
			i++
		case c == '[': // range, subquery or Grafana's [[var]]: durations only
			j, err := skipGroup(i, '[', ']')
			if err != nil {
				return nil, err
			}
			i = j
		case c == '$': // Grafana variable: $var, ${var}, ${var:format}
			i++
			if i < len(expr) && expr[i] == '{' {
				j, err := skipGroup(i, '{', '}')
				if err != nil {
					return nil, err
				}
				i = j
				continue
			}
			for i < len(expr) && isIdentByte(expr[i]) {
				i++
			}
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(expr) && expr[i+1] >= '0' && expr[i+1] <= '9':
			// A number (0.5, 1e-3, 0x1f) or a duration (5m, 1h30m).
			for i < len(expr) && (isIdentByte(expr[i]) || expr[i] == '.') {
				if (expr[i] == 'e' || expr[i] == 'E') && i+1 < len(expr) && (expr[i+1] == '+' || expr[i+1] == '-') {
					i++
				}
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdentByte(expr[j]) {
				j++
			}
			word := expr[i:j]
			i = j
			k := next(i)
			if braces > 0 {
				// A label name. __name__="x" names the metric.
				if word == "__name__" {
					name, err := nameMatcher(expr[k:])
					if err != nil {
						return nil, err
					}
					names = append(names, name)
				}
				continue
			}
			lower := strings.ToLower(word)
			switch {
			case promqlLabelListKeywords[lower]:
				if k < len(expr) && expr[k] == '(' {
					end, err := skipGroup(k, '(', ')')
					if err != nil {
						return nil, err
					}
					i = end
				}
			case promqlKeywords[lower], promqlAggregations[lower]:
			case k < len(expr) && expr[k] == '(':
				if !promqlFunctions[word] {
					return nil, fmt.Errorf("unknown function %s", word)
				}
			default:
				names = append(names, word)
			}
		default: // operators, parentheses, commas, @
			i++
		}
	}
	return names, nil
}

// afterMatcher reports whether before, the text ahead of a string, ends in
// a label matcher operator, making the string a label value.
func afterMatcher(before string) bool {
	before = strings.TrimRight(before, " \t\r\n")
	return strings.HasSuffix(before, "=") || strings.HasSuffix(before, "~")
}

// nameMatcher reads `="name"` after __name__; a regex or negative matcher
// selects metrics the checker cannot know, so it is refused.
func nameMatcher(rest string) (string, error) {
	rest = strings.TrimLeft(rest, " \t\r\n")
	if !strings.HasPrefix(rest, "=") || strings.HasPrefix(rest, "=~") {
		return "", fmt.Errorf("__name__ must be matched with = and a literal to be checked: %q", rest)
	}
	rest = strings.TrimLeft(rest[1:], " \t\r\n")
	if rest == "" || (rest[0] != '"' && rest[0] != '\'') {
		return "", fmt.Errorf("__name__ without a quoted name: %q", rest)
	}
	end := strings.IndexByte(rest[1:], rest[0])
	if end < 0 {
		return "", fmt.Errorf("unterminated __name__ value: %q", rest)
	}
	return rest[1 : end+1], nil
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdentByte(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

func TestPromqlMetrics(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`m`, []string{"m"}},
		{`m{a="b", c=~"d|e"}`, []string{"m"}},
		{`sum by (le) (rate(m_bucket{a="b"}[5m]))`, []string{"m_bucket"}},
		{`sum(rate(m[5m])) by (store, action)`, []string{"m"}},
		{`histogram_quantile(0.9, sum by (le, store) (rate(m_bucket[$__rate_interval])))`, []string{"m_bucket"}},
		{`a / on(store) group_left(product) b`, []string{"a", "b"}},
		{`a / ignoring (kind) b`, []string{"a", "b"}},
		{`x unless x offset 15m`, []string{"x", "x"}},
		{`sum(m{product=~"$product"}) or vector(0)`, []string{"m"}},
		{`sum(m{product=~"${product:regex}"}[$__range])`, []string{"m"}},
		{`count_values("value", m)`, []string{"m"}},
		{`label_replace(m, "dst", "$1", "src", "(.*)")`, []string{"m"}},
		{`topk(5, m) > bool 1e3`, []string{"m"}},
		{`SUM BY (le) (m) > -.5`, []string{"m"}},
		{`max_over_time(m[1h:5m]) @ start()`, []string{"m"}},
		{`absent(m)`, []string{"m"}},
		{"# a comment naming not_a_metric\nm", []string{"m"}},
		{`m{by="x", sum="y", rate="z"}`, []string{"m"}},
		{`{__name__="m", a="b"}`, []string{"m"}},
		{`{"m.with.dots", a="b"}`, []string{"m.with.dots"}},
		{`rate(m[5m]) and on() vector(1) == 1`, []string{"m"}},
		{`vector(1)`, nil},
	} {
		got, err := promqlMetrics(tc.expr)
		if err != nil {
			t.Errorf("%q: %v", tc.expr, err)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q: %v, want %v", tc.expr, got, tc.want)
		}
	}
	for _, expr := range []string{
		`rat(m[5m])`,
		`{__name__=~"datarights_.*"}`,
		`sum(m{a="b)`,
		`rate(m[5m)`,
	} {
		if got, err := promqlMetrics(expr); err == nil {
			t.Errorf("%q: %v, want an error", expr, got)
		}
	}
}

func TestVariableExpr(t *testing.T) {
	t.Parallel()
	for q, want := range map[string]string{
		"label_values(datarights_open_requests, product)":                 "datarights_open_requests",
		`label_values(datarights_open_requests{band="overdue"}, product)`: `datarights_open_requests{band="overdue"}`,
		"label_values(product)":                                           "",
		"label_names()":                                                   "",
		"metrics(datarights_.*)":                                          "",
		"query_result(sum by (product) (datarights_open_requests))":       "sum by (product) (datarights_open_requests)",
		"datarights_open_requests":                                        "datarights_open_requests",
	} {
		if got := variableExpr(q); got != want {
			t.Errorf("%q: %q, want %q", q, got, want)
		}
	}
}
