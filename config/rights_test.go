package config_test

import (
	"strings"
	"testing"

	"github.com/datarights/datarights/config"
)

// rightsYAML has consent purposes, cancellation pre-checks and recipients.
const rightsYAML = `database_url: postgres://localhost/datarights
products:
  - name: webank
    deadline: {policy: working_days, days: 15, clock_start: verified}
  - name: wechat
    deadline: {policy: calendar_days, days: 15, clock_start: received}
consent:
  purposes:
    - name: personalised_ads
      label: {zh-CN: 个性化广告, en: personalised ads}
      stores: [bank, cache, ads]
    - name: location
      label: {zh-CN: 位置, en: location}
      products: [wechat]
      stores: [bank]
cancel_account:
  verification_methods: [face_check]
  prechecks:
    - name: open_loans
      products: [webank]
      store: bank
      query: "SELECT count(*) FROM loans WHERE user_id = $1 AND status = 'open'"
      reason: {zh-CN: 有未结清贷款, en: a loan is open}
    - name: balance
      webhook: {url: "https://ledger.internal/precheck", secret_env: LEDGER_SECRET}
      reason: {zh-CN: 账户有余额, en: the account has a balance}
recipients:
  - name: credit_bureau
    email: dpo@bureau.example
  - name: insurer
    products: [webank]
    rights: [delete]
    webhook: {url: "https://insurer.example/erasures", secret_env: INSURER_SECRET}
stores:
  - name: bank
    kind: postgres
    dsn: postgres://bank/db
    key: user_id
    consent: {table: consents, column: user_id, purpose_column: purpose, granted_column: granted}
    tables:
      - name: users
        column: user_id
      - name: ad_profiles
        column: user_id
        purposes: [personalised_ads]
  - name: cache
    kind: redis
    dsn: redis://cache:6379
    key: user_id
    keys:
      - {pattern: "reco:{user_id}", purposes: [personalised_ads]}
  - name: ads
    kind: manual
    key: user_id
    instructions: ask the ads team
  - name: docs
    kind: s3
    key: user_id
    s3: {bucket: docs, prefix: "u/{user_id}/"}
`

var rightsEnv = env(map[string]string{"LEDGER_SECRET": "0123456789abcdef0123", "INSURER_SECRET": "fedcba9876543210fedc"})

func TestRightsConfig(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse("datarights.yaml", []byte(rightsYAML), rightsEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Consent.Identity != "user_id" {
		t.Errorf("consent identity = %q, want the default user_id", cfg.Consent.Identity)
	}
	if got := len(cfg.PurposesFor("webank")); got != 1 {
		t.Errorf("webank has %d purposes, want 1", got)
	}
	var names []string
	for _, s := range cfg.WithdrawalStores("webank", []string{"personalised_ads"}) {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "bank,cache,ads" {
		t.Errorf("withdrawal stores = %v", names)
	}
	if n := len(cfg.PrechecksFor("webank")); n != 2 {
		t.Errorf("webank has %d pre-checks, want 2", n)
	}
	if n := len(cfg.PrechecksFor("wechat")); n != 1 {
		t.Errorf("wechat has %d pre-checks, want 1", n)
	}
	if cfg.CancelAccount.Prechecks[1].Webhook.Secret == "" {
		t.Error("the pre-check's webhook secret was not read")
	}
	if n := len(cfg.RecipientsFor("webank", "cancel_account")); n != 1 {
		t.Errorf("%d recipients of a webank cancellation, want the bureau (default rights)", n)
	}
	if n := len(cfg.RecipientsFor("webank", "delete")); n != 2 {
		t.Errorf("%d recipients of a webank delete, want 2", n)
	}
}

// TestNewTypesConfigRejects: transfer receivers, minors and next of kin
// are checked, each problem named by its field.
func TestNewTypesConfigRejects(t *testing.T) {
	t.Parallel()
	base := rightsYAML + `
transfer_receivers:
  - name: partner
    purpose: {zh-CN: 理财, en: wealth}
    legal_basis: {zh-CN: 请求, en: request}
    webhook: {url: "https://partner.example/in", secret_env: LEDGER_SECRET}
minors:
  age_lookup: {store: bank, query: "SELECT birth_date FROM people WHERE user_id = $1"}
  rules:
    - {product: webank, not_served_below: 16}
next_of_kin:
  arrangement:
    store: bank
    query: "SELECT no_access FROM people WHERE user_id = $1"
    reason: {zh-CN: 另有安排, en: arranged otherwise}
`
	cfg, err := config.Parse("datarights.yaml", []byte(base), rightsEnv)
	if err != nil {
		t.Fatal(err)
	}
	if rc, ok := cfg.Receiver("partner"); !ok || rc.Webhook.Secret == "" || rc.Channel() != "webhook" {
		t.Errorf("receiver = %+v", rc)
	}
	cases := map[string]struct{ from, to, want string }{
		"receiver no purpose":   {"purpose: {zh-CN: 理财, en: wealth}", "purpose: {en: wealth}", "transfer_receivers[0].purpose: is required in zh-CN and en"},
		"receiver no channel":   {`    webhook: {url: "https://partner.example/in", secret_env: LEDGER_SECRET}`, "", "transfer_receivers[0]: needs either webhook"},
		"receiver over http":    {`url: "https://partner.example/in"`, `url: "http://partner.example/in"`, "transfer_receivers[0].webhook.url: must be https"},
		"receiver bad ca_file":  {`    webhook: {url: "https://partner.example/in"`, `    ca_file: /nonexistent/ca.pem\n    webhook: {url: "https://partner.example/in"`, "transfer_receivers[0].ca_file: cannot be read"},
		"receiver bad name":     {"name: partner\n", "name: Partner-1\n", `transfer_receivers[0].name: must be a lower-case name`},
		"age lookup not sql":    {"age_lookup: {store: bank", "age_lookup: {store: cache", `minors.age_lookup.store: store "cache" is a redis store`},
		"rule off the bands":    {"not_served_below: 16", "not_served_below: 15", "minors.rules[0].not_served_below: 15 is not one of minors.bands"},
		"rule unknown product":  {"{product: webank, not_served_below", "{product: webnak, not_served_below", `minors.rules[0].product: unknown product "webnak"`},
		"arrangement no reason": {"reason: {zh-CN: 另有安排, en: arranged otherwise}", "reason: {en: arranged otherwise}", "next_of_kin.arrangement.reason: is required in zh-CN and en"},
	}
	for name, tc := range cases {
		tc.from, tc.to = strings.ReplaceAll(tc.from, `\n`, "\n"), strings.ReplaceAll(tc.to, `\n`, "\n")
		if !strings.Contains(base, tc.from) {
			t.Fatalf("%s: the YAML has no %q", name, tc.from)
		}
		_, err := config.Parse("datarights.yaml", []byte(strings.Replace(base, tc.from, tc.to, 1)), rightsEnv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to contain %q", name, err, tc.want)
		}
	}
}

func TestRightsConfigRejects(t *testing.T) {
	t.Parallel()
	cases := map[string]struct{ from, to, want string }{
		"unknown purpose store": {"stores: [bank, cache, ads]", "stores: [bank, crm]", `consent.purposes[0].stores[1]: unknown store "crm"`},
		"s3 purpose store":      {"stores: [bank, cache, ads]", "stores: [docs]", `consent.purposes[0].stores[0]: store "docs" is an s3 store`},
		"store holds nothing": {`keys:
      - {pattern: "reco:{user_id}", purposes: [personalised_ads]}`, `keys:
      - {pattern: "reco:{user_id}"}`, `consent.purposes[0].stores[1]: store "cache" has no consent table and nothing kept for "personalised_ads"`},
		"unknown table purpose":   {"purposes: [personalised_ads]\n  - name: cache", "purposes: [telepathy]\n  - name: cache", `stores[0].tables[1].purposes[0]: unknown purpose "telepathy"`},
		"purpose without label":   {"label: {zh-CN: 位置, en: location}", "label: {zh-CN: 位置}", `consent.purposes[1].label: is required in zh-CN and en`},
		"consent on redis":        {"    keys:\n", "    consent: {table: c, column: u, purpose_column: p, granted_column: g}\n    keys:\n", `stores[1].consent: is for SQL stores`},
		"precheck unknown store":  {"store: bank\n      query", "store: vault\n      query", `cancel_account.prechecks[0].store: unknown store "vault"`},
		"precheck not sql":        {"store: bank\n      query", "store: cache\n      query", `cancel_account.prechecks[0].store: store "cache" is a redis store`},
		"precheck no param":       {"user_id = $1 AND", "user_id = 'u' AND", `cancel_account.prechecks[0].query: must use the subject's key as $1`},
		"precheck not select":     {`"SELECT count(*) FROM loans`, `"DELETE FROM loans`, `cancel_account.prechecks[0].query: must be a SELECT`},
		"precheck two statements": {"status = 'open'\"", "status = 'open'; DROP TABLE loans\"", `cancel_account.prechecks[0].query: must be one statement`},
		"precheck both":           {"      webhook: {url: \"https://ledger", "      store: bank\n      webhook: {url: \"https://ledger", `cancel_account.prechecks[1]: needs either store and query, or webhook`},
		"precheck no reason":      {"reason: {zh-CN: 有未结清贷款, en: a loan is open}", "reason: {en: a loan is open}", `cancel_account.prechecks[0].reason: is required in zh-CN and en`},
		"precheck secret unset":   {"secret_env: LEDGER_SECRET", "secret_env: NOT_SET", `cancel_account.prechecks[1].webhook.secret_env: environment variable NOT_SET is not set`},
		"recipient both":          {"    email: dpo@bureau.example", "    email: dpo@bureau.example\n    webhook: {url: \"https://x.example\", secret_env: INSURER_SECRET}", `recipients[0]: needs either email or webhook`},
		"previous secret unset": {`secret_env: INSURER_SECRET}`, `secret_env: INSURER_SECRET, previous_secret_env: NOT_SET}`,
			`recipients[1].webhook.previous_secret_env: environment variable NOT_SET is not set`},
		"previous secret same": {`secret_env: INSURER_SECRET}`, `secret_env: INSURER_SECRET, previous_secret_env: INSURER_SECRET}`,
			`recipients[1].webhook.previous_secret_env: holds the same secret as INSURER_SECRET`},
		"recipient bad email": {"email: dpo@bureau.example", "email: DPO <dpo@bureau.example>", `recipients[0].email: must be a plain email address`},
		"recipient bad right": {"rights: [delete]", "rights: [copy]", `recipients[1].rights[0]: recipients are told of delete, cancel_account, correct and withdraw_consent requests, not "copy"`},
		"recipient twice":     {"name: insurer", "name: credit_bureau", `recipients[1].name: "credit_bureau" is declared twice`},
		"cancel method unlisted": {"cancel_account:", "intake:\n  verification_methods: [id_document]\ncancel_account:",
			`cancel_account.verification_methods[0]: "face_check" is not in intake.verification_methods (id_document)`},
		"cancel method unknown": {"verification_methods: [face_check]", "verification_methods: [retina_scan]",
			`cancel_account.verification_methods[0]: "retina_scan" is not in intake.verification_methods`},
		"empty method list": {"cancel_account:", "intake:\n  verification_methods: []\ncancel_account:", `intake.verification_methods: must list at least one method`},
		"method twice":      {"cancel_account:", "intake:\n  verification_methods: [face_check, face_check]\ncancel_account:", `intake.verification_methods[1]: "face_check" is listed twice`},
	}
	for name, tc := range cases {
		if !strings.Contains(rightsYAML, tc.from) {
			t.Fatalf("%s: the YAML has no %q", name, tc.from)
		}
		_, err := config.Parse("datarights.yaml", []byte(strings.Replace(rightsYAML, tc.from, tc.to, 1)), rightsEnv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to contain %q", name, err, tc.want)
		}
	}
}

// TestRightRules: verification methods and pre-checks for any right under
// rights.<type>; cancel_account keeps working; both at once, an unknown
// right or an unknown method are named with their field.
func TestRightRules(t *testing.T) {
	t.Parallel()
	const base = `database_url: postgres://localhost/datarights
products:
  - name: webank
    deadline: {policy: working_days, days: 15, clock_start: verified}
stores:
  - name: bank
    kind: postgres
    dsn: postgres://localhost/bank
    key: user_id
    identity_format: {email: exact, phone: e164, default_region: "+852"}
    tables:
      - {name: users, column: user_id}
`
	cfg, err := config.Parse("r.yaml", []byte(base+`rights:
  delete:
    verification_methods: [face_check, id_document]
    prechecks:
      - name: open_loans
        store: bank
        query: "SELECT count(*) FROM loans WHERE user_id = $1"
        reason: {zh-CN: 有贷款, en: a loan is open}
cancel_account:
  verification_methods: [face_check]
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Rules("delete").VerificationMethods; len(got) != 2 || len(cfg.PrechecksForRight("webank", "delete")) != 1 {
		t.Errorf("delete rules = %+v", cfg.Rules("delete"))
	}
	if got := cfg.Rules("cancel_account").VerificationMethods; len(got) != 1 || got[0] != "face_check" {
		t.Errorf("cancel_account rules = %+v", cfg.Rules("cancel_account"))
	}
	if len(cfg.Rules("access").VerificationMethods) != 0 {
		t.Errorf("access has rules: %+v", cfg.Rules("access"))
	}
	if f := cfg.Stores[0].Format(); f.Email != "exact" || f.Phone != "e164" || f.DefaultRegion != "+852" {
		t.Errorf("identity format = %+v", f)
	}

	for yaml, want := range map[string]string{
		"rights:\n  cancel_account: {verification_methods: [face_check]}\ncancel_account: {verification_methods: [face_check]}\n": "cancel_account: is also configured under rights.cancel_account",
		"rights:\n  erase: {verification_methods: [face_check]}\n":                                                                `rights.erase: unknown right "erase"`,
		"rights:\n  delete: {verification_methods: [retina_scan]}\n":                                                              `rights.delete.verification_methods[0]: "retina_scan" is not in intake.verification_methods`,
		"rights:\n  delete:\n    prechecks: [{name: x, store: nope, query: \"SELECT 1\", reason: {zh-CN: a, en: b}}]\n":           `rights.delete.prechecks[0].store: unknown store "nope"`,
	} {
		_, err := config.Parse("r.yaml", []byte(base+yaml), nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", yaml, err, want)
		}
	}
	bad := strings.Replace(base, `phone: e164, default_region: "+852"`, `phone: local, default_region: "86"`, 1)
	_, err = config.Parse("r.yaml", []byte(bad), nil)
	if err == nil || !strings.Contains(err.Error(), "stores[0].identity_format.phone: must be one of national, e164, exact") ||
		!strings.Contains(err.Error(), `stores[0].identity_format.default_region: must be a calling code like "+86"`) {
		t.Errorf("bad identity_format: %v", err)
	}
}

// TestWebhookSecretRotation: during a rotation a webhook verifies with the
// new secret and the one it replaces, the new one first; without
// previous_secret_env, with the new one only.
func TestWebhookSecretRotation(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse("datarights.yaml", []byte(strings.Replace(rightsYAML,
		`secret_env: INSURER_SECRET}`, `secret_env: INSURER_SECRET, previous_secret_env: LEDGER_SECRET}`, 1)), rightsEnv)
	if err != nil {
		t.Fatal(err)
	}
	rc, ok := cfg.Recipient("insurer")
	if !ok || rc.Webhook == nil {
		t.Fatal("no insurer webhook")
	}
	got := rc.Webhook.VerifyingSecrets()
	if len(got) != 2 || string(got[0]) != "fedcba9876543210fedc" || string(got[1]) != "0123456789abcdef0123" {
		t.Errorf("secrets during a rotation = %q", got)
	}
	cfg, err = config.Parse("datarights.yaml", []byte(rightsYAML), rightsEnv)
	if err != nil {
		t.Fatal(err)
	}
	if rc, _ := cfg.Recipient("insurer"); len(rc.Webhook.VerifyingSecrets()) != 1 {
		t.Errorf("secrets outside a rotation = %q", rc.Webhook.VerifyingSecrets())
	}
}
