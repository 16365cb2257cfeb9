package config_test

import (
	"strings"
	"testing"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/rights"
)

const valid = `database_url: postgres://localhost/datarights
products:
  - name: webank
    deadline:
      policy: working_days
      days: 15
      clock_start: verified
stores:
  - name: bank
    kind: postgres
    dsn_env: BANK_DSN
    key: user_id
    lookups:
      - identity: email
        table: users
        column: email
        key_column: user_id
    tables:
      - name: public.users
        column: user_id
`

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseValidWithDefaultsAndEnv(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse("datarights.yaml", []byte(valid), env(map[string]string{
		"BANK_DSN":               "postgres://bank/db",
		"DATABASE_URL":           "postgres://override/db",
		"DATARIGHTS_HTTP_ADDR":   "0.0.0.0:9000",
		"DATARIGHTS_SMTP_URL":    "smtp://u:p@mail.example.com:2525",
		"DATARIGHTS_STAFF_TOKEN": "s3cret",
		"DATARIGHTS_OPS_ADDR":    "10.0.0.5:9090",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DatabaseURL != "postgres://override/db" || cfg.HTTP.Addr != "0.0.0.0:9000" || cfg.Stores[0].DSN != "postgres://bank/db" {
		t.Errorf("env overrides not applied: %+v", cfg)
	}
	if cfg.HTTP.OpsAddr != "10.0.0.5:9090" {
		t.Errorf("http.ops_addr = %q, want DATARIGHTS_OPS_ADDR", cfg.HTTP.OpsAddr)
	}
	if cfg.EnvStaffToken != "s3cret" || cfg.SMTP.URL != "smtp://u:p@mail.example.com:2525" {
		t.Errorf("token or smtp not taken from env")
	}
	if cfg.SelfService.CodeTTL != config.DefaultCodeTTL || cfg.Worker.MaxAttempts != config.DefaultJobMaxAttempts {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	policy := cfg.Policies()["webank"]
	if policy.Kind != rights.WorkingDays || policy.Days != 15 || policy.Location.String() != "Asia/Shanghai" {
		t.Errorf("policy = %+v", policy)
	}
	types := cfg.IdentityTypes()
	if !types["user_id"] || !types["email"] || types["phone"] {
		t.Errorf("identity types = %v", types)
	}
	srv, err := config.ParseSMTPURL(cfg.SMTP.URL)
	if err != nil || srv.Addr() != "mail.example.com:2525" || srv.Username != "u" || srv.Password != "p" {
		t.Errorf("smtp = %+v, %v", srv, err)
	}
}

func TestParseNamesFileLineAndField(t *testing.T) {
	t.Parallel()
	bad := strings.NewReplacer(
		"days: 15", "days: 0",
		"column: user_id\n", "column: user id\n",
		"kind: postgres", "kind: oracle",
	).Replace(valid)
	_, err := config.Parse("conf/datarights.yaml", []byte(bad), env(nil))
	if err == nil {
		t.Fatal("want an error")
	}
	msg := err.Error()
	for _, want := range []string{
		"conf/datarights.yaml:6: products[0].deadline.days: must be between 1 and 366, not 0",
		"conf/datarights.yaml:10: stores[0].kind: must be one of postgres",
		"conf/datarights.yaml:11: stores[0].dsn_env: environment variable BANK_DSN is not set",
		`conf/datarights.yaml:20: stores[0].tables[0].column: must be a plain SQL identifier`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	cases := map[string]struct{ yaml, want string }{
		"unknown field":     {valid + "colour: red\n", "datarights.yaml:21: colour: unknown field"},
		"malformed yaml":    {"products: [", "datarights.yaml"},
		"no products":       {"database_url: postgres://x/y\n", "products: at least one product is required"},
		"no database":       {strings.Replace(valid, "database_url: postgres://localhost/datarights\n", "", 1), "database_url: is required"},
		"bad smtp":          {valid + "smtp:\n  url: http://mail\n", "smtp.url: scheme must be smtp or smtps"},
		"bad token hash":    {valid + "staff_tokens:\n  - name: alice\n    sha256: abc\n", "staff_tokens[0].sha256"},
		"unknown product":   {strings.Replace(valid, "key: user_id", "key: user_id\n    products: [wechat]", 1), `stores[0].products[0]: unknown product "wechat"`},
		"bad time zone":     {strings.Replace(valid, "clock_start: verified", "clock_start: verified\n      time_zone: Mars/Olympus", 1), "time_zone: unknown time zone"},
		"injection table":   {strings.Replace(valid, "table: users", "table: users; drop table x", 1), "lookups[0].table"},
		"rescue too short":  {valid + "worker:\n  rescue_after: 1s\n", "worker.rescue_after"},
		"bad ops addr":      {valid + "http:\n  ops_addr: metrics.internal\n", "http.ops_addr: must be host:port"},
		"ops addr = addr":   {valid + "http:\n  addr: 0.0.0.0:8080\n  ops_addr: 0.0.0.0:8080\n", "http.ops_addr: must differ from http.addr"},
		"duplicate product": {strings.Replace(valid, "products:\n", "products:\n  - name: webank\n    deadline: {policy: calendar_days, days: 15, clock_start: received}\n", 1), "declared twice"},
	}
	for name, tc := range cases {
		_, err := config.Parse("datarights.yaml", []byte(tc.yaml), env(map[string]string{"BANK_DSN": "postgres://bank/db"}))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to contain %q", name, err, tc.want)
		}
	}
}
