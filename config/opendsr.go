package config

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/datarights/datarights/rights"
)

// OpenDSR configures the partner API (docs/opendsr.md): the partners
// (controllers) that may file requests machine to machine, and the
// processor certificate that signs the service's OpenDSR answers and
// status callbacks. No partners: the API answers 404.
type OpenDSR struct {
	// ProcessorDomain is the X-OpenDSR-Processor-Domain of answers and
	// callbacks, and the key of this service's extension in a request's
	// extensions; default: the host of http.public_url.
	ProcessorDomain string `yaml:"processor_domain"`
	// CertificateFile (or CertificateEnv, the PEM itself in an environment
	// variable) is the processor certificate, served to partners at the
	// discovery document's processor_certificate URL.
	CertificateFile string `yaml:"certificate_file"`
	CertificateEnv  string `yaml:"certificate_env"`
	// KeyFile (or KeyEnv) is its RSA private key, PEM (PKCS #1 or #8).
	KeyFile string `yaml:"key_file"`
	KeyEnv  string `yaml:"key_env"`
	// Identities maps OpenDSR identity types (§5.1) to the identity types
	// the stores know. Default: email → email, controller_customer_id →
	// user_id, phone_number → phone (each only when a store knows it).
	Identities map[string]string `yaml:"identities"`
	// CallbackTimeout bounds one callback POST (default 10s).
	CallbackTimeout time.Duration `yaml:"callback_timeout"`
	// CallbackAttempts is how many times a callback is tried before it is
	// given up and left undelivered in opendsr_callbacks (default 25:
	// River's backoff spreads them over about three weeks).
	CallbackAttempts int       `yaml:"callback_attempts"`
	Partners         []Partner `yaml:"partners"`

	// Certificate, CertificatePEM and Key are read from the files or
	// variables above when the configuration is loaded.
	Certificate    *x509.Certificate `yaml:"-"`
	CertificatePEM []byte            `yaml:"-"`
	Key            crypto.Signer     `yaml:"-"`
	certPEM        []byte
	keyPEM         []byte
	loadErr        map[string]string
}

// Partner is a controller allowed to file requests through the OpenDSR API.
type Partner struct {
	Name   string `yaml:"name"`
	SHA256 string `yaml:"sha256"` // hex SHA-256 of its bearer token, as staff tokens
	// Products it may file for; a request for another is refused (403).
	Products []string `yaml:"products"`
	// CallbackURLs is the allow-list of its status_callback_urls: a URL is
	// allowed when it equals an entry, or starts with an entry ending in
	// "/". https, or http to a loopback address.
	CallbackURLs []string `yaml:"callback_urls"`
	// RequestsPerMinute and RequestsPerDay limit the requests it files
	// (default 60 and 10000), counted in Postgres across replicas.
	RequestsPerMinute int `yaml:"requests_per_minute"`
	RequestsPerDay    int `yaml:"requests_per_day"`
}

// AllowsCallback reports whether u is in the partner's allow-list.
func (p Partner) AllowsCallback(u string) bool {
	for _, allowed := range p.CallbackURLs {
		if u == allowed || (strings.HasSuffix(allowed, "/") && strings.HasPrefix(u, allowed)) {
			return true
		}
	}
	return false
}

// AllowsProduct reports whether the partner may file for product.
func (p Partner) AllowsProduct(product string) bool { return slices.Contains(p.Products, product) }

// Enabled reports whether the OpenDSR API is served.
func (o *OpenDSR) Enabled() bool { return len(o.Partners) > 0 }

// PartnerByHash returns the partner whose token hashes to hash.
func (o *OpenDSR) PartnerByHash(hash string) (Partner, bool) {
	for _, p := range o.Partners {
		if p.SHA256 == hash {
			return p, true
		}
	}
	return Partner{}, false
}

// PartnerByName returns the partner named name.
func (o *OpenDSR) PartnerByName(name string) (Partner, bool) {
	for _, p := range o.Partners {
		if p.Name == name {
			return p, true
		}
	}
	return Partner{}, false
}

// defaultOpenDSRIdentities are the OpenDSR identity types mapped by default.
var defaultOpenDSRIdentities = map[string]string{"email": "email", "controller_customer_id": "user_id", "phone_number": "phone"}

func (c *Config) openDSREnv(getenv func(string) string) {
	o := &c.OpenDSR
	o.loadErr = map[string]string{}
	read := func(field, file, env string) []byte {
		switch {
		case file != "" && env != "":
			o.loadErr[field] = "set the file or the environment variable, not both"
		case file != "":
			data, err := os.ReadFile(file)
			if err != nil {
				o.loadErr[field] = fmt.Sprintf("cannot be read: %v", err)
			}
			return data
		case env != "":
			if v := getenv(env); v != "" {
				return []byte(v)
			}
			o.loadErr[field] = fmt.Sprintf("environment variable %s is not set", env)
		}
		return nil
	}
	o.certPEM = read("opendsr.certificate_file", o.CertificateFile, o.CertificateEnv)
	o.keyPEM = read("opendsr.key_file", o.KeyFile, o.KeyEnv)
}

func (c *Config) defaultOpenDSR() {
	o := &c.OpenDSR
	if o.ProcessorDomain == "" {
		if u, err := url.Parse(c.HTTP.PublicURL); err == nil {
			o.ProcessorDomain = u.Hostname()
		}
	}
	if o.Identities == nil {
		o.Identities = map[string]string{}
		known := c.IdentityTypes()
		for k, v := range defaultOpenDSRIdentities {
			if known[v] {
				o.Identities[k] = v
			}
		}
	}
	if o.CallbackTimeout == 0 {
		o.CallbackTimeout = 10 * time.Second
	}
	if o.CallbackAttempts == 0 {
		o.CallbackAttempts = 25
	}
	for i := range o.Partners {
		if o.Partners[i].RequestsPerMinute == 0 {
			o.Partners[i].RequestsPerMinute = 60
		}
		if o.Partners[i].RequestsPerDay == 0 {
			o.Partners[i].RequestsPerDay = 10000
		}
	}
}

func (c *Config) checkOpenDSR(p *rights.Problems, products map[string]bool) {
	o := &c.OpenDSR
	if !o.Enabled() {
		return
	}
	for field, reason := range o.loadErr {
		p.Add(field, "%s", reason)
	}
	if len(o.loadErr) == 0 {
		if err := o.parseKeys(); err != nil {
			p.Add(err.field, "%s", err.reason)
		}
	}
	if o.ProcessorDomain == "" || strings.ContainsAny(o.ProcessorDomain, "/:@ ") {
		p.Add("opendsr.processor_domain", "must be a domain name, e.g. privacy.example.com")
	}
	known := c.IdentityTypes()
	for k, v := range o.Identities {
		if !identityRE.MatchString(k) {
			p.Add("opendsr.identities", "%q is not an OpenDSR identity type (lower-case, e.g. email)", k)
		} else if !known[v] {
			p.Add("opendsr.identities."+k, "no configured store knows identity type %q", v)
		}
	}
	if t := o.CallbackTimeout; t < time.Second || t > 2*time.Minute {
		p.Add("opendsr.callback_timeout", "must be between 1s and 2m, not %s", t)
	}
	if n := o.CallbackAttempts; n < 1 || n > 50 {
		p.Add("opendsr.callback_attempts", "must be between 1 and 50, not %d", n)
	}
	seen, hashes := map[string]bool{}, map[string]bool{}
	for i, pt := range o.Partners {
		f := fmt.Sprintf("opendsr.partners[%d]", i)
		switch {
		case !nameRE.MatchString(pt.Name):
			p.Add(f+".name", "must be a lower-case name like \"acme\", not %q", pt.Name)
		case seen[pt.Name]:
			p.Add(f+".name", "%q is declared twice", pt.Name)
		}
		seen[pt.Name] = true
		switch {
		case !sha256HexRE.MatchString(pt.SHA256):
			p.Add(f+".sha256", "must be the 64 lower-case hex digits of the token's SHA-256 (see `datarights token hash`)")
		case hashes[pt.SHA256]:
			p.Add(f+".sha256", "is another partner's token too")
		}
		hashes[pt.SHA256] = true
		if len(pt.Products) == 0 {
			p.Add(f+".products", "is required: the products this partner may file requests for")
		}
		for j, prod := range pt.Products {
			if !products[prod] {
				p.Add(fmt.Sprintf("%s.products[%d]", f, j), "unknown product %q", prod)
			}
		}
		for j, cb := range pt.CallbackURLs {
			u, err := url.Parse(cb)
			switch {
			case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
				p.Add(fmt.Sprintf("%s.callback_urls[%d]", f, j), "must be an https URL")
			case u.Scheme == "http" && !loopbackHost(u.Hostname()):
				p.Add(fmt.Sprintf("%s.callback_urls[%d]", f, j), "must be https (http only to a loopback address)")
			case u.User != nil || u.Fragment != "":
				p.Add(fmt.Sprintf("%s.callback_urls[%d]", f, j), "must not hold credentials or a fragment")
			}
		}
		if pt.RequestsPerMinute < 1 || pt.RequestsPerDay < pt.RequestsPerMinute {
			p.Add(f+".requests_per_minute", "must be at least 1, and requests_per_day at least as many")
		}
	}
}

type keyProblem struct{ field, reason string }

// parseKeys reads the certificate and the key, and checks they belong together.
func (o *OpenDSR) parseKeys() *keyProblem {
	if o.certPEM == nil {
		return &keyProblem{"opendsr.certificate_file", "is required with partners: callbacks are signed (OpenDSR §4)"}
	}
	if o.keyPEM == nil {
		return &keyProblem{"opendsr.key_file", "is required with partners: callbacks are signed (OpenDSR §4)"}
	}
	block, _ := pem.Decode(o.certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return &keyProblem{"opendsr.certificate_file", "holds no PEM certificate"}
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return &keyProblem{"opendsr.certificate_file", fmt.Sprintf("is not a valid certificate: %v", err)}
	}
	certPub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return &keyProblem{"opendsr.certificate_file", "must hold an RSA certificate (callbacks are signed with RSA, SHA-256)"}
	}
	kb, _ := pem.Decode(o.keyPEM)
	if kb == nil {
		return &keyProblem{"opendsr.key_file", "holds no PEM key"}
	}
	var key *rsa.PrivateKey
	switch kb.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(kb.Bytes)
	case "PRIVATE KEY":
		var k any
		if k, err = x509.ParsePKCS8PrivateKey(kb.Bytes); err == nil {
			if key, ok = k.(*rsa.PrivateKey); !ok {
				err = errors.New("not an RSA key")
			}
		}
	default:
		err = fmt.Errorf("unexpected PEM block %q", kb.Type)
	}
	if err != nil {
		return &keyProblem{"opendsr.key_file", fmt.Sprintf("is not an RSA private key: %v", err)}
	}
	if !key.PublicKey.Equal(certPub) {
		return &keyProblem{"opendsr.key_file", "is not the key of opendsr.certificate_file"}
	}
	if key.N.BitLen() < 2048 {
		return &keyProblem{"opendsr.key_file", "must be an RSA key of at least 2048 bits"}
	}
	o.Certificate, o.Key = cert, key
	o.CertificatePEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	return nil
}
