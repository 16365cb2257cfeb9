package config_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/datarights/datarights/config"
)

// correctableYAML has two products, a store for each and one for both,
// with correctable fields.
const correctableYAML = `database_url: postgres://localhost/datarights
products:
  - name: webank
    deadline: {policy: working_days, days: 15, clock_start: verified}
  - name: wechat
    deadline: {policy: calendar_days, days: 15, clock_start: received}
stores:
  - name: bank
    kind: postgres
    dsn: postgres://bank/db
    products: [webank]
    key: user_id
    tables:
      - name: users
        column: user_id
        correctable:
          - {field: email, column: email_address, validate: email}
          - {field: phone, column: mobile, validate: phone, protected: true}
      - name: addresses
        column: user_id
        correctable:
          - {field: city, column: city, validate: text}
  - name: crm
    kind: mysql
    dsn: u@tcp(crm:3306)/crm
    key: user_id
    tables:
      - name: contacts
        column: user_id
        correctable:
          - {field: email, column: email, validate: email, protected: true}
          - {field: birthday, column: born_on, validate: date}
  - name: sessions
    kind: redis
    dsn: redis://cache:6379
    key: user_id
    keys: [{pattern: "session:{user_id}"}]
`

func TestCorrectableFields(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse("datarights.yaml", []byte(correctableYAML), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	webank := cfg.CorrectableFields("webank")
	want := map[string]config.FieldRule{
		// crm protects email, so it is protected for the product.
		"email":    {Field: "email", Column: "email_address", Validate: "email", Protected: true},
		"phone":    {Field: "phone", Column: "mobile", Validate: "phone", Protected: true},
		"city":     {Field: "city", Column: "city", Validate: "text"},
		"birthday": {Field: "birthday", Column: "born_on", Validate: "date"},
	}
	if !reflect.DeepEqual(webank, want) {
		t.Errorf("webank fields = %+v\nwant %+v", webank, want)
	}
	wechat := cfg.CorrectableFields("wechat") // crm only
	if len(wechat) != 2 || wechat["birthday"].Validate != "date" || !wechat["email"].Protected {
		t.Errorf("wechat fields = %+v", wechat)
	}
	changes := map[string]string{"city": "x", "birthday": "2000-01-01", "unknown": "y"}
	for i, wantFields := range [][]string{{"city"}, {"birthday"}, nil} {
		if got := cfg.Stores[i].Corrects(changes); !reflect.DeepEqual(got, wantFields) {
			t.Errorf("store %s corrects %v, want %v", cfg.Stores[i].Name, got, wantFields)
		}
	}
}

func TestCorrectableRejects(t *testing.T) {
	t.Parallel()
	cases := map[string]struct{ from, to, want string }{
		"bad column": {"column: mobile,", "column: mobile number,",
			`stores[0].tables[0].correctable[1].column: must be a plain SQL identifier`},
		"injection column": {"column: city,", `column: "city = 'x'; --",`,
			`stores[0].tables[1].correctable[0].column: must be a plain SQL identifier`},
		"unknown validator": {"column: city, validate: text", "column: city, validate: postcode",
			`stores[0].tables[1].correctable[0].validate: must be one of email, phone, text, date, not "postcode"`},
		"missing validator": {"column: city, validate: text", "column: city",
			`stores[0].tables[1].correctable[0].validate: must be one of`},
		"bad field name": {"field: city", "field: City",
			`stores[0].tables[1].correctable[0].field: must be a lower-case name`},
		"duplicate field": {"{field: phone, column: mobile,", "{field: email, column: mobile,",
			`stores[0].tables[0].correctable[1].field: "email" is declared twice in this table`},
		"duplicate column": {"column: mobile,", "column: email_address,",
			`stores[0].tables[0].correctable[1].column: "email_address" is corrected by two fields`},
		"key column": {"column: city,", "column: user_id,",
			`stores[0].tables[1].correctable[0].column: "user_id" holds the store key`},
		"validators disagree": {"column: email, validate: email", "column: email, validate: text",
			`stores[1].tables[0].correctable[0].validate: field "email" is validated as email elsewhere`},
	}
	for name, tc := range cases {
		if !strings.Contains(correctableYAML, tc.from) {
			t.Fatalf("%s: the YAML has no %q", name, tc.from)
		}
		_, err := config.Parse("datarights.yaml", []byte(strings.Replace(correctableYAML, tc.from, tc.to, 1)), env(nil))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to contain %q", name, err, tc.want)
		}
	}
}

func TestCorrectableErrorNamesTheLine(t *testing.T) {
	t.Parallel()
	bad := strings.Replace(correctableYAML, "validate: phone", "validate: mobile", 1)
	_, err := config.Parse("datarights.yaml", []byte(bad), env(nil))
	if err == nil || !strings.Contains(err.Error(), "datarights.yaml:18: stores[0].tables[0].correctable[1].validate") {
		t.Errorf("err = %v, want it at line 18", err)
	}
}
