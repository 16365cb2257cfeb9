package config_test

import (
	"slices"
	"testing"

	"github.com/datarights/datarights/config"
)

// TestEnvNames: the fixed overrides and the variables the file names are
// listed, and each name Parse would read is in the list.
func TestEnvNames(t *testing.T) {
	t.Parallel()
	names, err := config.EnvNames("datarights.yaml", []byte(valid+`sms:
  gateway_url: https://sms.example.com
  secret_env: SMS_SECRET
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DATABASE_URL", "DATARIGHTS_SECRET_KEY", "DATARIGHTS_MIGRATE_DATABASE_URL",
		"DATARIGHTS_HTTP_ADDR", "DATARIGHTS_OPS_ADDR", "DATARIGHTS_PUBLIC_URL", "DATARIGHTS_DATA_DIR", "BANK_DSN", "SMS_SECRET"} {
		if !slices.Contains(names, want) {
			t.Errorf("EnvNames lacks %s: %v", want, names)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("EnvNames is not sorted: %v", names)
	}

	// Whatever Parse reads is listed: record its reads on the same file.
	read := map[string]bool{}
	_, _ = config.Parse("datarights.yaml", []byte(valid), func(k string) string { read[k] = true; return "" })
	names, err = config.EnvNames("datarights.yaml", []byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	for k := range read {
		if !slices.Contains(names, k) {
			t.Errorf("Parse reads %s, EnvNames does not list it", k)
		}
	}
	if slices.Contains(names, "SMS_SECRET") {
		t.Errorf("a variable the file does not name is listed: %v", names)
	}

	if _, err := config.EnvNames("bad.yaml", []byte("no_such_key: 1\n")); err == nil {
		t.Error("an unknown key decodes")
	}
}
