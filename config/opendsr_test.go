package config_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/datarights/datarights/config"
)

// openDSRKeys writes a certificate and its key, and a second key that is
// not the certificate's.
func openDSRKeys(t *testing.T) (certFile, keyFile, otherKeyFile string) {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "privacy.example.com"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return write("cert.pem", "CERTIFICATE", der), write("key.pem", "PRIVATE KEY", pkcs8),
		write("other.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(other))
}

func TestOpenDSRConfig(t *testing.T) {
	t.Parallel()
	certFile, keyFile, otherKey := openDSRKeys(t)
	hash := config.HashToken("partner-token")
	parse := func(yaml string) (*config.Config, error) {
		return config.Parse("datarights.yaml", []byte(valid+yaml), env(map[string]string{"BANK_DSN": "postgres://bank/db"}))
	}

	cfg, err := parse(fmt.Sprintf(`http:
  public_url: https://privacy.example.com
opendsr:
  certificate_file: %s
  key_file: %s
  partners:
    - {name: acme, sha256: %s, products: [webank], callback_urls: ["https://acme.example/opendsr/", "https://acme.example/exact"]}
`, certFile, keyFile, hash))
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.OpenDSR
	if !o.Enabled() || o.ProcessorDomain != "privacy.example.com" || o.Key == nil || len(o.CertificatePEM) == 0 {
		t.Errorf("opendsr = %+v", o)
	}
	// Defaults: the identity types a store knows (email and the user_id key; no phone store).
	if o.Identities["email"] != "email" || o.Identities["controller_customer_id"] != "user_id" || o.Identities["phone_number"] != "" {
		t.Errorf("identities = %v", o.Identities)
	}
	pt, ok := o.PartnerByHash(hash)
	if !ok || pt.RequestsPerMinute != 60 || pt.RequestsPerDay != 10000 {
		t.Errorf("partner = %+v %v", pt, ok)
	}
	for u, want := range map[string]bool{
		"https://acme.example/opendsr/callbacks": true, "https://acme.example/exact": true,
		"https://acme.example/exact/more": false, "https://acme.example/opendsr": false, "https://evil.example/opendsr/": false,
	} {
		if pt.AllowsCallback(u) != want {
			t.Errorf("AllowsCallback(%s) = %v, want %v", u, !want, want)
		}
	}
	if _, ok := cfg.Redacted()["opendsr"].(map[string]any); !ok || strings.Contains(fmt.Sprint(cfg.Redacted()), hash) {
		t.Errorf("redacted configuration: no opendsr, or the partner's token hash: %v", cfg.Redacted()["opendsr"])
	}

	// Every bad field is named.
	tests := []struct {
		name, yaml string
		fields     []string
	}{
		{"no key", fmt.Sprintf(`opendsr:
  certificate_file: %s
  partners: [{name: acme, sha256: %s, products: [webank]}]
`, certFile, hash), []string{"opendsr.key_file"}},
		{"key of another certificate", fmt.Sprintf(`opendsr:
  certificate_file: %s
  key_file: %s
  partners: [{name: acme, sha256: %s, products: [webank]}]
`, certFile, otherKey, hash), []string{"opendsr.key_file"}},
		{"unreadable, and unset env", fmt.Sprintf(`opendsr:
  certificate_file: /nonexistent/cert.pem
  key_env: NO_SUCH_VARIABLE
  partners: [{name: acme, sha256: %s, products: [webank]}]
`, hash), []string{"opendsr.certificate_file", "opendsr.key_file"}},
		{"bad partners", fmt.Sprintf(`opendsr:
  certificate_file: %s
  key_file: %s
  identities: {idfa: ad_id}
  callback_timeout: 1h
  partners:
    - {name: Acme, sha256: nothex, products: [nosuch], callback_urls: ["http://acme.example/cb", "ftp://x"], requests_per_minute: -1}
    - {name: globex, sha256: %s}
    - {name: globex2, sha256: %s, products: [webank]}
`, certFile, keyFile, hash, hash), []string{
			"opendsr.callback_timeout", "opendsr.identities.idfa",
			"opendsr.partners[0].callback_urls[0]", "opendsr.partners[0].callback_urls[1]", "opendsr.partners[0].name",
			"opendsr.partners[0].products[0]", "opendsr.partners[0].requests_per_minute", "opendsr.partners[0].sha256",
			"opendsr.partners[1].products", "opendsr.partners[2].sha256",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parse(tt.yaml)
			var ce *config.Error
			if !asConfigError(err, &ce) {
				t.Fatalf("err = %v, want a config error", err)
			}
			var got []string
			for _, p := range ce.Problems {
				if strings.HasPrefix(p.Field, "opendsr") {
					got = append(got, p.Field)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.fields) {
				t.Errorf("fields = %v, want %v\n%v", got, tt.fields, err)
			}
		})
	}
}

func asConfigError(err error, target **config.Error) bool {
	ce, ok := err.(*config.Error)
	*target = ce
	return ok
}
