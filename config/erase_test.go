package config_test

import (
	"strings"
	"testing"

	"github.com/datarights/datarights/config"
)

// eraseYAML declares every erasure mode and two retention classes.
const eraseYAML = `database_url: postgres://localhost/datarights
products:
  - name: webank
    deadline: {policy: working_days, days: 15, clock_start: verified}
retention:
  classes:
    - {name: account_records, years: 10, basis: "反洗钱法：业务关系结束后至少保存10年"}
    - {name: loan_records, years: 5, basis: "贷款档案：结清后保存5年"}
stores:
  - name: bank
    kind: postgres
    dsn: postgres://bank/db
    key: user_id
    tables:
      - name: users
        column: user_id
        on_delete: anonymize
        anonymize:
          - {column: user_id, strategy: random}
          - {column: name, strategy: fixed, value: 已注销}
          - {column: email, strategy: "null"}
      - name: loans
        column: user_id
        retention: loan_records
        retention_from: closed_at
        restrict_column: restricted_at
      - name: kyc
        column: user_id
        retention: account_records
        restrict_column: restricted_at
      - name: holds
        column: user_id
        on_delete: restrict
        restrict_column: restricted_at
`

func TestEraseConfig(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse("datarights.yaml", []byte(eraseYAML), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	tables := cfg.Stores[0].Tables
	if tables[0].EraseMode() != "anonymize" || tables[1].EraseMode() != "delete" || tables[3].EraseMode() != "restrict" {
		t.Errorf("modes = %s %s %s", tables[0].EraseMode(), tables[1].EraseMode(), tables[3].EraseMode())
	}
	if tables[1].RetentionMonths != 60 || tables[2].RetentionMonths != 120 || tables[0].RetentionMonths != 0 {
		t.Errorf("retention months = %d %d %d", tables[0].RetentionMonths, tables[1].RetentionMonths, tables[2].RetentionMonths)
	}
	if cfg.Retention.SweepInterval != config.DefaultRetentionSweep {
		t.Errorf("sweep interval = %s", cfg.Retention.SweepInterval)
	}
}

func TestEraseConfigRejects(t *testing.T) {
	t.Parallel()
	cases := map[string]struct{ from, to, want string }{
		"unknown mode": {"on_delete: restrict", "on_delete: shred",
			`stores[0].tables[3].on_delete: must be one of delete, anonymize, restrict, not "shred"`},
		"anonymize without the key": {"- {column: user_id, strategy: random}", "- {column: phone, strategy: random}",
			`stores[0].tables[0].anonymize: must overwrite the key column "user_id"`},
		"fixed key": {"{column: user_id, strategy: random}", "{column: user_id, strategy: fixed, value: x}",
			`stores[0].tables[0].anonymize[0].strategy: the key column must become null or random`},
		"fixed without value": {"strategy: fixed, value: 已注销", "strategy: fixed",
			`stores[0].tables[0].anonymize[1].value: is required with strategy fixed`},
		"unknown strategy": {`strategy: "null"`, "strategy: blur",
			`stores[0].tables[0].anonymize[2].strategy: must be one of null, fixed, random`},
		"bad column": {"{column: email,", `{column: "email; drop",`,
			`stores[0].tables[0].anonymize[2].column: must be a plain SQL identifier`},
		"anonymize without mode": {"        on_delete: anonymize\n", "",
			`stores[0].tables[0].anonymize: is only used with on_delete: anonymize`},
		"unknown class": {"retention: loan_records", "retention: loans_forever",
			`stores[0].tables[1].retention: unknown retention class "loans_forever"; known: account_records, loan_records`},
		"no restrict column": {"        retention: account_records\n        restrict_column: restricted_at\n", "        retention: account_records\n",
			`stores[0].tables[2].restrict_column: is required to restrict rows`},
		"restrict under retention": {"        retention: account_records\n", "        retention: account_records\n        on_delete: restrict\n",
			`stores[0].tables[2].on_delete: restrict keeps rows restricted with no end`},
		"retention_from alone": {"        on_delete: restrict\n", "        on_delete: restrict\n        retention_from: closed_at\n",
			`stores[0].tables[3].retention_from: is only used with retention`},
		"class without basis": {`, basis: "贷款档案：结清后保存5年"}`, "}",
			`retention.classes[1].basis: is required`},
		"class years": {"years: 5,", "years: 0,", `retention.classes[1].years: must be between 1 and 100, not 0`},
		"duplicate class": {"name: loan_records, years", "name: account_records, years",
			`retention.classes[1].name: "account_records" is declared twice`},
	}
	for name, tc := range cases {
		if !strings.Contains(eraseYAML, tc.from) {
			t.Fatalf("%s: the YAML has no %q", name, tc.from)
		}
		_, err := config.Parse("datarights.yaml", []byte(strings.Replace(eraseYAML, tc.from, tc.to, 1)), env(nil))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to contain %q", name, err, tc.want)
		}
	}
}

// TestRetentionInMonthsConfig: a class may be given in months, or years
// and months; the table gets the total.
func TestRetentionInMonthsConfig(t *testing.T) {
	t.Parallel()
	const yaml = `database_url: postgres://localhost/datarights
retention:
  classes:
    - {name: half_year, months: 6, basis: "six months", basis_en: "six months"}
    - {name: mixed, years: 1, months: 6, basis: "一年半"}
    - {name: bad, years: 1, months: -1, basis: "x"}
products:
  - name: webank
    deadline: {policy: working_days, days: 15, clock_start: verified}
stores:
  - name: bank
    kind: postgres
    dsn: postgres://localhost/bank
    key: user_id
    tables:
      - {name: a, column: user_id, retention: half_year, restrict_column: restricted_at}
      - {name: b, column: user_id, retention: mixed, restrict_column: restricted_at}
`
	_, err := config.Parse("m.yaml", []byte(yaml), nil)
	if err == nil || !strings.Contains(err.Error(), "retention.classes[2].months: must be between 0 and 1200, not -1") {
		t.Fatalf("err = %v", err)
	}
	cfg, err := config.Parse("m.yaml", []byte(strings.Replace(yaml, "years: 1, months: -1", "years: 2", 1)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := cfg.Stores[0].Tables[0].RetentionMonths, cfg.Stores[0].Tables[1].RetentionMonths; a != 6 || b != 18 {
		t.Errorf("retention months = %d, %d; want 6, 18", a, b)
	}
	if f := cfg.Stores[0].Format(); f.Email != "exact" || f.Phone != "exact" {
		t.Errorf("a store without identity_format looks up exactly: %+v", f)
	}
	if rc, _ := cfg.RetentionClass("mixed"); rc.BasisIn("en") != "一年半" {
		t.Errorf("a basis without basis_en falls back to Chinese: %q", rc.BasisIn("en"))
	}
}
