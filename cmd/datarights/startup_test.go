package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

// TestServeRefusesToStartWithoutKeyOrPublicURL: serve and worker need the
// secret key (sealed passwords, keyed codes) and http.public_url (links in
// emails must point at the API, not at whichever process sent them).
func TestServeRefusesToStartWithoutKeyOrPublicURL(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, false, "")
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no key", map[string]string{"DATARIGHTS_PUBLIC_URL": "https://privacy.example.com", "DATARIGHTS_SECRET_KEY": ""}, "DATARIGHTS_SECRET_KEY is not set"},
		{"no public url", map[string]string{}, "http.public_url is not set"},
	} {
		for _, cmd := range []string{"serve", "worker"} {
			getenv := func(k string) string {
				if v, ok := tc.env[k]; ok {
					return v
				}
				return e.getenv(k)
			}
			err := run(context.Background(), []string{cmd, "-config", e.configPath}, getenv, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s with %s: %v, want %q", cmd, tc.name, err, tc.want)
			}
		}
	}
}
