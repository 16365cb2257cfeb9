package main

// The OpenDSR partner API, driven by a partner client written from the
// published specification (github.com/opengdpr/OpenDSR, v1.0): its request
// and answer types below are the specification's, not the server's.

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/datarights/datarights/api/apitest"
	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/demo"
)

// §5.3 Identity object.
type odsrIdentity struct {
	IdentityType   string `json:"identity_type"`
	IdentityValue  string `json:"identity_value,omitempty"`
	IdentityFormat string `json:"identity_format"`
}

// §7.1.1 request properties.
type odsrRequest struct {
	SubjectRequestID   string                    `json:"subject_request_id"`
	SubjectRequestType string                    `json:"subject_request_type"`
	SubmittedTime      string                    `json:"submitted_time"`
	SubjectIdentities  []odsrIdentity            `json:"subject_identities"`
	APIVersion         string                    `json:"api_version,omitempty"`
	StatusCallbackURLs []string                  `json:"status_callback_urls,omitempty"`
	Extensions         map[string]map[string]any `json:"extensions,omitempty"`
}

// §7.3 response properties.
type odsrResponse struct {
	ControllerID           string `json:"controller_id"`
	ExpectedCompletionTime string `json:"expected_completion_time"`
	ReceivedTime           string `json:"received_time"`
	EncodedRequest         string `json:"encoded_request"`
	SubjectRequestID       string `json:"subject_request_id"`
}

// §8.3 status response properties.
type odsrStatus struct {
	ControllerID           string `json:"controller_id"`
	ExpectedCompletionTime string `json:"expected_completion_time"`
	SubjectRequestID       string `json:"subject_request_id"`
	RequestStatus          string `json:"request_status"`
	APIVersion             string `json:"api_version"`
}

// §8.6 callback body.
type odsrCallback struct {
	ControllerID           string `json:"controller_id"`
	StatusCallbackURL      string `json:"status_callback_url"`
	SubjectRequestID       string `json:"subject_request_id"`
	RequestStatus          string `json:"request_status"`
	ExpectedCompletionTime string `json:"expected_completion_time"`
}

// §9.2 cancellation response.
type odsrCancel struct {
	ControllerID     string `json:"controller_id"`
	ReceivedTime     string `json:"received_time"`
	SubjectRequestID string `json:"subject_request_id"`
}

// §6.3 discovery response.
type odsrDiscovery struct {
	APIVersion                   string         `json:"api_version"`
	SupportedIdentities          []odsrIdentity `json:"supported_identities"`
	SupportedSubjectRequestTypes []string       `json:"supported_subject_request_types"`
	ProcessorCertificate         string         `json:"processor_certificate"`
}

// §7.6 error object.
type odsrError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Errors  []struct {
			Domain, Reason, Message string
		} `json:"errors"`
	} `json:"error"`
}

// receivedCallback is one callback as the partner's endpoint got it.
type receivedCallback struct {
	body   []byte
	header http.Header
}

// odsrPartner is the partner's side: its token, its callback endpoint, and
// the processor certificate once discovered.
type odsrPartner struct {
	t     *testing.T
	base  string
	token string
	cert  *x509.Certificate

	mu        sync.Mutex
	callbacks []receivedCallback
	failFirst bool // answer the first callback 503 (the processor must retry)
	arrived   chan struct{}
}

// newCallbackServer is the partner's callback endpoint, on loopback.
func (p *odsrPartner) newCallbackServer() *httptest.Server {
	p.arrived = make(chan struct{}, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		fail := p.failFirst
		p.failFirst = false
		if !fail {
			p.callbacks = append(p.callbacks, receivedCallback{body: body, header: r.Header.Clone()})
		}
		p.mu.Unlock()
		if fail {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted) // §8.8: 202 once the signature validates; checked below
		p.arrived <- struct{}{}
	}))
	p.t.Cleanup(srv.Close)
	return srv
}

func (p *odsrPartner) do(method, path string, body any) (int, http.Header, []byte) {
	p.t.Helper()
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			p.t.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, p.base+path, r)
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	// Checked against api/openapi.yaml like every other call of the
	// end-to-end tests: the partner's client is its own, its transport is not.
	resp, err := apitest.Wrap(p.t, nil).Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, raw
}

// verify checks a body's X-OpenDSR-Signature with the processor
// certificate (§8.8: on the raw bytes, before parsing).
func (p *odsrPartner) verify(what string, h http.Header, body []byte) {
	p.t.Helper()
	sig, err := base64.StdEncoding.DecodeString(h.Get("X-OpenDSR-Signature"))
	if err != nil || len(sig) == 0 {
		p.t.Fatalf("%s: no base64 X-OpenDSR-Signature: %q", what, h.Get("X-OpenDSR-Signature"))
	}
	sum := sha256.Sum256(body)
	if err := rsa.VerifyPKCS1v15(p.cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, sum[:], sig); err != nil {
		p.t.Fatalf("%s: the signature does not verify with the processor certificate: %v", what, err)
	}
	if h.Get("X-OpenDSR-Processor-Domain") != "127.0.0.1" {
		p.t.Errorf("%s: X-OpenDSR-Processor-Domain = %q", what, h.Get("X-OpenDSR-Processor-Domain"))
	}
}

// waitCallbacks waits until the callbacks about subjectRequestID include
// every status in want, and returns them.
func (p *odsrPartner) waitCallbacks(subjectRequestID string, want ...string) []odsrCallback {
	p.t.Helper()
	deadline := time.After(90 * time.Second)
	for {
		var got []odsrCallback
		seen := map[string]bool{}
		p.mu.Lock()
		received := slices.Clone(p.callbacks)
		p.mu.Unlock()
		for _, rc := range received {
			p.verify("callback", rc.header, rc.body)
			var cb odsrCallback
			if err := json.Unmarshal(rc.body, &cb); err != nil {
				p.t.Fatalf("callback body: %v: %s", err, rc.body)
			}
			if cb.SubjectRequestID == subjectRequestID {
				got = append(got, cb)
				seen[cb.RequestStatus] = true
			}
		}
		if !slices.ContainsFunc(want, func(s string) bool { return !seen[s] }) {
			return got
		}
		select {
		case <-p.arrived:
		case <-deadline:
			p.t.Fatalf("callbacks about %s: %v, want %v", subjectRequestID, got, want)
		}
	}
}

// newUUID is a lower-case version 4 UUID, as §7.1.1 asks the controller to make.
func newUUID(t *testing.T) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// processorKey writes a processor certificate and key for the test.
func processorKey(t *testing.T, dir string) (certFile, keyFile string) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "processor.crt"), filepath.Join(dir, "processor.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func partnerToken(name string) string { return "test-partner-token-" + name }

// TestOpenDSRPartnerAPI: a partner discovers the processor, files a
// portability request with a status callback, resends it (the same
// request, not a second), follows it to completed through signed callbacks
// (the first answered 503: retried), cancels another while pending, and is
// refused where it should be: a wrong token 401, another partner's
// request 404, a product not its own 403, bad fields 400 naming them, a
// used subject_request_id with another body 409, over its limit 429.
func TestOpenDSRPartnerAPI(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, false, "")
	acme := &odsrPartner{t: t, token: partnerToken("acme"), failFirst: true}
	cbSrv := acme.newCallbackServer()
	certFile, keyFile := processorKey(t, t.TempDir())
	e.appendConfig(t, fmt.Sprintf(`
opendsr:
  certificate_file: %s
  key_file: %s
  partners:
    - {name: acme, sha256: %s, products: [webank], callback_urls: ["%s/callbacks/"]}
    - {name: globex, sha256: %s, products: [webank, wechat]}
    - {name: tiny, sha256: %s, products: [webank], requests_per_minute: 1}
rights:
  delete:
    verification_methods: [face_check, id_document]
`, certFile, keyFile, config.HashToken(partnerToken("acme")), cbSrv.URL,
		config.HashToken(partnerToken("globex")), config.HashToken(partnerToken("tiny"))))
	// A phone number two customers share: a request by it waits for staff
	// (awaiting_approval), pending in OpenDSR terms, so it can be cancelled.
	e.bankExec(t, "UPDATE users SET phone = $1 WHERE user_id = $2", demo.Phone(8), demo.UserID(9))
	e.start()
	acme.base = e.base

	// Discovery (§6), without a token, and the certificate it points at.
	anon := &odsrPartner{t: t, base: e.base}
	code, h, raw := anon.do("GET", "/opendsr/v1/discovery", nil)
	var disc odsrDiscovery
	if code != http.StatusOK || json.Unmarshal(raw, &disc) != nil {
		t.Fatalf("discovery = %d %s", code, raw)
	}
	if disc.APIVersion != "1.0" || !slices.Equal(disc.SupportedSubjectRequestTypes, []string{"access", "portability"}) {
		// erasure: the demo's delete needs a face check or an ID document.
		t.Errorf("discovery = %+v", disc)
	}
	if !slices.Contains(disc.SupportedIdentities, odsrIdentity{IdentityType: "email", IdentityFormat: "raw"}) ||
		!slices.Contains(disc.SupportedIdentities, odsrIdentity{IdentityType: "phone_number", IdentityFormat: "raw"}) {
		t.Errorf("supported_identities = %+v", disc.SupportedIdentities)
	}
	resp, err := apitest.Client(t).Get(disc.ProcessorCertificate)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		t.Fatalf("processor_certificate %s: no PEM: %s", disc.ProcessorCertificate, pemBytes)
	}
	if acme.cert, err = x509.ParseCertificate(block.Bytes); err != nil {
		t.Fatal(err)
	}
	anon.cert = acme.cert
	anon.verify("discovery", h, raw)

	// File a portability request (§7).
	callbackURL := cbSrv.URL + "/callbacks/opendsr"
	srid := newUUID(t)
	portability := odsrRequest{
		SubjectRequestID: srid, SubjectRequestType: "portability", SubmittedTime: "2026-03-02T15:00:00Z",
		SubjectIdentities:  []odsrIdentity{{IdentityType: "email", IdentityValue: demo.Email(3), IdentityFormat: "raw"}},
		APIVersion:         "1.0",
		StatusCallbackURLs: []string{callbackURL},
		Extensions:         map[string]map[string]any{"other-processor.example": {"property_id": "123456"}},
	}
	code, h, raw = acme.do("POST", "/opendsr/v1/requests", portability)
	if code != http.StatusCreated {
		t.Fatalf("create = %d %s", code, raw)
	}
	acme.verify("create", h, raw)
	var created odsrResponse
	if err := json.Unmarshal(raw, &created); err != nil {
		t.Fatal(err)
	}
	sent, _ := json.Marshal(portability)
	if created.SubjectRequestID != srid || created.ControllerID != "acme" || created.EncodedRequest != base64.StdEncoding.EncodeToString(sent) {
		t.Errorf("create = %+v", created)
	}
	for _, ts := range []string{created.ReceivedTime, created.ExpectedCompletionTime} {
		if _, err := time.Parse(time.RFC3339, ts); err != nil {
			t.Errorf("time %q is not RFC 3339", ts)
		}
	}

	// Resent (a lost answer): the same request, not a second one.
	code, _, raw = acme.do("POST", "/opendsr/v1/requests", portability)
	var again odsrResponse
	if code != http.StatusCreated || json.Unmarshal(raw, &again) != nil || again.ReceivedTime != created.ReceivedTime {
		t.Errorf("resend = %d %s, want 201 with the first answer's received_time %s", code, raw, created.ReceivedTime)
	}
	var filed int
	if err := e.db.QueryRow(t.Context(), `SELECT count(*) FROM requests WHERE created_by = 'partner:acme'`).Scan(&filed); err != nil || filed != 1 {
		t.Errorf("requests filed by acme = %d (%v), want 1", filed, err)
	}
	// The same id with another body is a conflict.
	other := portability
	other.SubjectRequestType = "access"
	code, _, raw = acme.do("POST", "/opendsr/v1/requests", other)
	if code != http.StatusConflict {
		t.Errorf("same id, other body = %d %s, want 409", code, raw)
	}

	// Status (§8): signed, in the specification's vocabulary.
	code, h, raw = acme.do("GET", "/opendsr/v1/requests/"+srid, nil)
	var st odsrStatus
	if code != http.StatusOK || json.Unmarshal(raw, &st) != nil {
		t.Fatalf("status = %d %s", code, raw)
	}
	acme.verify("status", h, raw)
	if st.SubjectRequestID != srid || st.ControllerID != "acme" || !slices.Contains([]string{"pending", "in_progress", "completed"}, st.RequestStatus) {
		t.Errorf("status = %+v", st)
	}

	// Callbacks (§8.5–8.8) up to completed, each signed; the first was
	// answered 503 and came again.
	cbs := acme.waitCallbacks(srid, "in_progress", "completed")
	for _, cb := range cbs {
		if cb.StatusCallbackURL != callbackURL || cb.ControllerID != "acme" {
			t.Errorf("callback = %+v", cb)
		}
		if strings.Contains(cb.ExpectedCompletionTime, "@") {
			t.Errorf("callback carries more than the specification's fields: %+v", cb)
		}
	}
	acme.mu.Lock()
	for _, rc := range acme.callbacks {
		if bytes.Contains(rc.body, []byte(demo.Email(3))) || bytes.Contains(rc.body, []byte(demo.UserID(3))) {
			t.Errorf("a callback holds personal data: %s", rc.body)
		}
	}
	acme.mu.Unlock()
	code, _, raw = acme.do("GET", "/opendsr/v1/requests/"+srid, nil)
	if code != http.StatusOK || json.Unmarshal(raw, &st) != nil || st.RequestStatus != "completed" {
		t.Errorf("status after the completed callback = %d %s", code, raw)
	}
	// The partner has them; the processor records each delivery just after.
	var id string
	var delivered, owed, attempts int
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if err := e.db.QueryRow(t.Context(), `SELECT o.request_id, count(c.delivered_at), count(c.id), coalesce(sum(c.attempts), 0)
			FROM opendsr_requests o JOIN opendsr_callbacks c USING (request_id) WHERE o.subject_request_id = $1 GROUP BY 1`, srid).
			Scan(&id, &delivered, &owed, &attempts); err != nil {
			t.Fatal(err)
		}
		if delivered == owed || time.Now().After(deadline) {
			break
		}
	}
	if delivered != owed || owed != 2 || attempts != 3 {
		t.Errorf("callbacks delivered %d of %d in %d attempts, want 2 of 2 in 3 (one retried)", delivered, owed, attempts)
	}
	// Filed through the staff-ticket path: the partner is the filer and
	// attested the person's identity.
	code, detail := e.call("GET", "/api/v1/requests/"+id, testToken, nil)
	if code != http.StatusOK || detail["channel"] != "partner" || detail["type"] != "copy" {
		t.Errorf("request = %d channel %v type %v", code, detail["channel"], detail["type"])
	}
	var sawReceived, sawVerified bool
	for _, ev := range asSlice(detail["audit"]) {
		ev := ev.(map[string]any)
		d, _ := ev["detail"].(map[string]any)
		switch ev["action"] {
		case "request.received":
			sawReceived = ev["actor"] == "partner:acme"
		case "request.verified":
			sawVerified = d["method"] == "partner_attested" && d["by"] == "partner:acme"
		}
	}
	if !sawReceived || !sawVerified {
		t.Errorf("audit: received by partner:acme %v, verified partner_attested %v: %v", sawReceived, sawVerified, detail["audit"])
	}
	// Completed: no longer cancellable.
	if code, _, raw := acme.do("DELETE", "/opendsr/v1/requests/"+srid, nil); code != http.StatusConflict {
		t.Errorf("cancel a completed request = %d %s, want 409", code, raw)
	}

	// Cancel (§9) a request while it is pending: it waits for staff (the
	// phone matches two people); its result goes to the extension's
	// delivery_email.
	pendingID := newUUID(t)
	code, _, raw = acme.do("POST", "/opendsr/v1/requests", odsrRequest{
		SubjectRequestID: pendingID, SubjectRequestType: "access", SubmittedTime: "2026-03-02T15:00:00Z",
		SubjectIdentities:  []odsrIdentity{{IdentityType: "phone_number", IdentityValue: demo.Phone(8), IdentityFormat: "raw"}},
		StatusCallbackURLs: []string{callbackURL},
		Extensions:         map[string]map[string]any{"127.0.0.1": {"delivery_email": demo.Email(8), "locale": "en"}},
	})
	if code != http.StatusCreated {
		t.Fatalf("create the request to cancel = %d %s", code, raw)
	}
	var pendingInternal string
	if err := e.db.QueryRow(t.Context(), `SELECT request_id FROM opendsr_requests WHERE subject_request_id = $1`, pendingID).Scan(&pendingInternal); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(pendingInternal, "awaiting_approval", 60*time.Second)
	if code, _, raw := (&odsrPartner{t: t, base: e.base, token: partnerToken("globex")}).do("DELETE", "/opendsr/v1/requests/"+pendingID, nil); code != http.StatusNotFound {
		t.Errorf("another partner cancels = %d %s, want 404", code, raw)
	}
	code, h, raw = acme.do("DELETE", "/opendsr/v1/requests/"+pendingID, nil)
	var cancelled odsrCancel
	if code != http.StatusAccepted || json.Unmarshal(raw, &cancelled) != nil || cancelled.SubjectRequestID != pendingID || cancelled.ControllerID != "acme" {
		t.Fatalf("cancel = %d %s", code, raw)
	}
	acme.verify("cancel", h, raw)
	if code, _, raw := acme.do("DELETE", "/opendsr/v1/requests/"+pendingID, nil); code != http.StatusAccepted {
		t.Errorf("cancel again = %d %s, want 202", code, raw)
	}
	acme.waitCallbacks(pendingID, "cancelled")
	if code, _, raw = acme.do("GET", "/opendsr/v1/requests/"+pendingID, nil); code != http.StatusOK || json.Unmarshal(raw, &st) != nil || st.RequestStatus != "cancelled" {
		t.Errorf("status after cancel = %d %s", code, raw)
	}
	if got := e.waitStatus(pendingInternal, "cancelled", 10*time.Second); !slices.Contains(auditActions(got), "request.cancelled") {
		t.Errorf("audit of the cancelled request: %v", auditActions(got))
	}

	// Authorization.
	for _, tok := range []string{"", "wrong-token"} {
		p := &odsrPartner{t: t, base: e.base, token: tok}
		if code, h, raw := p.do("GET", "/opendsr/v1/requests/"+srid, nil); code != http.StatusUnauthorized || h.Get("WWW-Authenticate") == "" {
			t.Errorf("token %q: status = %d %s, want 401", tok, code, raw)
		}
		if code, _, _ := p.do("POST", "/opendsr/v1/requests", portability); code != http.StatusUnauthorized {
			t.Errorf("token %q: create = %d, want 401", tok, code)
		}
	}
	globex := &odsrPartner{t: t, base: e.base, token: partnerToken("globex")}
	if code, _, raw := globex.do("GET", "/opendsr/v1/requests/"+srid, nil); code != http.StatusNotFound {
		t.Errorf("another partner's request = %d %s, want 404", code, raw)
	}
	wechat := portability
	wechat.SubjectRequestID = newUUID(t)
	wechat.StatusCallbackURLs = nil
	wechat.Extensions = map[string]map[string]any{"127.0.0.1": {"product": "wechat"}}
	if code, _, raw := acme.do("POST", "/opendsr/v1/requests", wechat); code != http.StatusForbidden {
		t.Errorf("a product not the partner's = %d %s, want 403", code, raw)
	}
	// globex files for two products: it must say which.
	noProduct := wechat
	noProduct.Extensions = nil
	code, _, raw = globex.do("POST", "/opendsr/v1/requests", noProduct)
	wantFields(t, "no product", code, raw, "extensions.127.0.0.1.product")

	// Bad bodies: every bad field named (§7.5, §7.6).
	code, _, raw = acme.do("POST", "/opendsr/v1/requests", odsrRequest{
		SubjectRequestID: "A7551968-not-a-uuid", SubjectRequestType: "rectification", SubmittedTime: "yesterday",
		SubjectIdentities: []odsrIdentity{
			{IdentityType: "ios_advertising_id", IdentityValue: "x", IdentityFormat: "raw"},
			{IdentityType: "email", IdentityValue: "2f9a…", IdentityFormat: "sha256"},
		},
		StatusCallbackURLs: []string{"https://elsewhere.example/callbacks"},
	})
	wantFields(t, "bad body", code, raw, "subject_request_id", "subject_request_type", "submitted_time",
		"subject_identities[0].identity_type", "subject_identities[1].identity_format", "status_callback_urls[0]")
	erasure := wechat
	erasure.SubjectRequestType, erasure.Extensions = "erasure", nil
	code, _, raw = acme.do("POST", "/opendsr/v1/requests", erasure)
	wantFields(t, "erasure (the demo's delete needs a face check)", code, raw, "subject_request_type")
	code, _, raw = acme.do("POST", "/opendsr/v1/requests", map[string]any{"subject_request_id": newUUID(t), "subject_identities": "me"})
	wantFields(t, "wrong type", code, raw, "subject_identities")

	// A partner over its limit: 429 with Retry-After.
	tiny := &odsrPartner{t: t, base: e.base, token: partnerToken("tiny")}
	for i := range 2 {
		req := wechat
		req.SubjectRequestID, req.Extensions = newUUID(t), nil
		code, h, raw := tiny.do("POST", "/opendsr/v1/requests", req)
		if want := []int{http.StatusCreated, http.StatusTooManyRequests}[i]; code != want || (i == 1 && h.Get("Retry-After") == "") {
			t.Errorf("tiny's request %d = %d %s (Retry-After %q), want %d", i+1, code, raw, h.Get("Retry-After"), want)
		}
	}
}

// wantFields checks a 400 in the specification's error shape naming
// exactly these fields.
func wantFields(t *testing.T, what string, code int, raw []byte, fields ...string) {
	t.Helper()
	var e odsrError
	if code != http.StatusBadRequest || json.Unmarshal(raw, &e) != nil || e.Error.Code != http.StatusBadRequest {
		t.Errorf("%s = %d %s, want 400", what, code, raw)
		return
	}
	var got []string
	for _, d := range e.Error.Errors {
		got = append(got, d.Reason)
	}
	slices.Sort(got)
	slices.Sort(fields)
	if !slices.Equal(slices.Compact(got), fields) {
		t.Errorf("%s: fields %v, want %v (%s)", what, got, fields, raw)
	}
}
