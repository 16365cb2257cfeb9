package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/jobs"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// The OpenDSR partner API (docs/opendsr.md): partners — controllers —
// file access, portability and erasure requests machine to machine, follow
// them and cancel them while pending. Every answer is signed with the
// processor key (X-OpenDSR-Signature), as are the status callbacks.

// OpenDSRPrefix is where the partner API is served.
const OpenDSRPrefix = "/opendsr/v1"

// openDSRCertPath is where the processor certificate is served; the
// discovery document's processor_certificate points here.
const openDSRCertPath = OpenDSRPrefix + "/cert.pem"

// openDSRRoutes are the partner API's routes, in allRoutes' table.
func (s *server) openDSRRoutes() []route {
	return []route{
		{"GET " + OpenDSRPrefix + "/discovery", RouteOpenDSR, "", http.HandlerFunc(s.handleOpenDSRDiscovery)},
		{"GET " + openDSRCertPath, RouteOpenDSR, "", http.HandlerFunc(s.handleOpenDSRCertificate)},
		{"POST " + OpenDSRPrefix + "/requests", RouteOpenDSR, "", s.partner(s.handleOpenDSRCreate)},
		{"GET " + OpenDSRPrefix + "/requests/{id}", RouteOpenDSR, "", s.partner(s.handleOpenDSRStatus)},
		{"DELETE " + OpenDSRPrefix + "/requests/{id}", RouteOpenDSR, "", s.partner(s.handleOpenDSRCancel)},
	}
}

func (s *server) openDSR() *config.OpenDSR { return &s.Pipeline.Settings().OpenDSR }

type ctxPartnerKey struct{}

// partner lets a request through only with a configured partner's bearer
// token. Without partners the API is not there (404).
func (s *server) partner(next func(http.ResponseWriter, *http.Request, config.Partner)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		o := s.openDSR()
		if !o.Enabled() {
			s.openDSRError(w, r, rights.Errorf(rights.ENotFound, "the OpenDSR API is not enabled"))
			return
		}
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		token = strings.TrimSpace(token)
		pt, found := o.PartnerByHash(config.HashToken(token))
		if !ok || token == "" || !found {
			w.Header().Set("WWW-Authenticate", `Bearer realm="datarights-opendsr"`)
			s.openDSRError(w, r, rights.Errorf(rights.EUnauthorized, "a partner bearer token is required (Authorization: Bearer <token>)"))
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), ctxPartnerKey{}, pt.Name)), pt)
	}
}

// openDSRRequest is a request as OpenDSR §7.1.1 has it.
type openDSRRequest struct {
	SubjectRequestID   string                     `json:"subject_request_id"`
	SubjectRequestType string                     `json:"subject_request_type"`
	SubmittedTime      string                     `json:"submitted_time"`
	SubjectIdentities  []openDSRIdentity          `json:"subject_identities"`
	APIVersion         string                     `json:"api_version,omitempty"`
	StatusCallbackURLs []string                   `json:"status_callback_urls,omitempty"`
	Regulation         string                     `json:"regulation,omitempty"`
	Extensions         map[string]json.RawMessage `json:"extensions,omitempty"`
}

type openDSRIdentity struct {
	IdentityType   string `json:"identity_type"`
	IdentityValue  string `json:"identity_value"`
	IdentityFormat string `json:"identity_format"`
}

// openDSRExtension is this service's extension (§7.1.2), under the
// processor domain: what OpenDSR has no field for.
type openDSRExtension struct {
	// Product the request is for; may be left out by a partner of one product.
	Product string `json:"product"`
	// DeliveryEmail is where the result goes; default: the raw email identity.
	DeliveryEmail string `json:"delivery_email"`
	// Locale of the emails to the person (zh-CN, en).
	Locale string `json:"locale"`
}

// uuidV4 is a lower-case version 4 UUID (§1.1, §7.1.1).
var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

const maxCallbackURLs = 10

func (s *server) handleOpenDSRCreate(w http.ResponseWriter, r *http.Request, pt config.Partner) {
	o := s.openDSR()
	var body openDSRRequest
	raw, err := s.decode(w, r, &body)
	if err != nil {
		s.openDSRError(w, r, err)
		return
	}
	in, problems, err := s.openDSRIntake(o, pt, &body)
	if err != nil {
		s.openDSRError(w, r, err)
		return
	}
	if err := problems.Err(); err != nil {
		s.openDSRError(w, r, err)
		return
	}
	// The content, not its spelling, decides whether a resend is the same
	// request: re-encoded from what was read.
	canonical, err := json.Marshal(body)
	if err != nil {
		s.openDSRError(w, r, err)
		return
	}
	sum := sha256.Sum256(canonical)
	req, created, err := s.Pipeline.SubmitPartner(r.Context(), jobs.PartnerFiling{
		Partner: pt, SubjectRequestID: body.SubjectRequestID, BodyHash: hex.EncodeToString(sum[:]),
		CallbackURLs: body.StatusCallbackURLs, Intake: in,
	})
	if err != nil {
		s.openDSRError(w, r, openDSRFields(err, o.ProcessorDomain, body.SubjectIdentities, s.openDSR().Identities))
		return
	}
	if !created {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.Header().Set("Location", OpenDSRPrefix+"/requests/"+body.SubjectRequestID)
	s.openDSRJSON(w, r, http.StatusCreated, map[string]any{
		"controller_id":            pt.Name,
		"expected_completion_time": s.Pipeline.ExpectedCompletion(req).Format(time.RFC3339),
		"received_time":            req.ReceivedAt.UTC().Format(time.RFC3339),
		// The partner's own request, as §7.3 asks; it holds identities,
		// so it is never logged.
		"encoded_request":    base64.StdEncoding.EncodeToString(raw),
		"subject_request_id": body.SubjectRequestID,
		"api_version":        jobs.OpenDSRAPIVersion,
	})
}

// openDSRIntake maps an OpenDSR request to an intake, with every problem
// found by its OpenDSR field. A product outside the partner's is an error
// of its own (403).
func (s *server) openDSRIntake(o *config.OpenDSR, pt config.Partner, body *openDSRRequest) (rights.Intake, rights.Problems, error) {
	var p rights.Problems
	in := rights.Intake{Relation: rights.RelationSelf}
	switch {
	case body.SubjectRequestID == "":
		p.Add("subject_request_id", "is required")
	case !uuidV4.MatchString(body.SubjectRequestID):
		p.Add("subject_request_id", "must be a lower-case version 4 UUID")
	}
	switch t, ok := jobs.OpenDSRTypeOf(body.SubjectRequestType); {
	case body.SubjectRequestType == "":
		p.Add("subject_request_type", "is required")
	case !ok || !slices.Contains(s.Pipeline.OpenDSRSupportedTypes(), body.SubjectRequestType):
		p.Add("subject_request_type", "unsupported %q; supported: %s", body.SubjectRequestType, strings.Join(s.Pipeline.OpenDSRSupportedTypes(), ", "))
	default:
		in.Type = t
	}
	if body.SubmittedTime == "" {
		p.Add("submitted_time", "is required")
	} else if _, err := time.Parse(time.RFC3339, body.SubmittedTime); err != nil {
		p.Add("submitted_time", "must be an RFC 3339 date-time, e.g. 2018-10-02T15:00:00Z")
	}
	if body.APIVersion != "" && !strings.HasPrefix(body.APIVersion, "1.") && body.APIVersion != "1" {
		p.Add("api_version", "unsupported %q; supported: %s", body.APIVersion, jobs.OpenDSRAPIVersion)
	}
	if len(body.Regulation) > 32 {
		p.Add("regulation", "at most 32 bytes")
	}
	supported := s.Pipeline.OpenDSRIdentityTypes()
	in.Identities = map[string]string{}
	if len(body.SubjectIdentities) == 0 {
		p.Add("subject_identities", "at least one identity is required (%s)", strings.Join(supported, ", "))
	}
	var email string
	for i, id := range body.SubjectIdentities {
		f := fmt.Sprintf("subject_identities[%d]", i)
		internal, ok := o.Identities[id.IdentityType]
		switch {
		case id.IdentityType == "":
			p.Add(f+".identity_type", "is required")
		case !ok:
			p.Add(f+".identity_type", "unsupported %q; supported: %s", id.IdentityType, strings.Join(supported, ", "))
		case id.IdentityFormat != "raw":
			// The stores look people up by value: a hash finds no one.
			p.Add(f+".identity_format", "unsupported %q; supported: raw", id.IdentityFormat)
		case strings.TrimSpace(id.IdentityValue) == "":
			p.Add(f+".identity_value", "is required")
		case in.Identities[internal] != "" && in.Identities[internal] != id.IdentityValue:
			p.Add(f, "a second %s identity: give one of each type", id.IdentityType)
		default:
			in.Identities[internal] = id.IdentityValue
			if internal == "email" {
				email = id.IdentityValue
			}
		}
	}
	if len(body.StatusCallbackURLs) > maxCallbackURLs {
		p.Add("status_callback_urls", "at most %d", maxCallbackURLs)
	}
	for i, u := range body.StatusCallbackURLs {
		if !pt.AllowsCallback(u) {
			p.Add(fmt.Sprintf("status_callback_urls[%d]", i), "not among this partner's configured callback URLs")
		}
	}
	if hasDuplicates(body.StatusCallbackURLs) {
		p.Add("status_callback_urls", "each URL at most once")
	}
	extField := "extensions." + o.ProcessorDomain
	var ext openDSRExtension
	if rawExt, ok := body.Extensions[o.ProcessorDomain]; ok {
		dec := json.NewDecoder(bytes.NewReader(rawExt))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ext); err != nil {
			p.Add(extField, "must be an object with product, delivery_email and locale (strings); %v", rights.ErrorMessage(jsonProblem(err)))
		}
	}
	in.Product = ext.Product
	if in.Product == "" && len(pt.Products) == 1 {
		in.Product = pt.Products[0]
	}
	switch {
	case in.Product == "":
		p.Add(extField+".product", "is required: this partner files for several products (%s)", strings.Join(pt.Products, ", "))
	case !pt.AllowsProduct(in.Product):
		return in, nil, &rights.Error{Code: rights.EForbidden, Message: "this partner may not file requests for that product",
			Fields: []rights.FieldProblem{{Field: extField + ".product", Reason: "not among this partner's products: " + strings.Join(pt.Products, ", ")}}}
	}
	in.DeliveryEmail = ext.DeliveryEmail
	if in.DeliveryEmail == "" {
		in.DeliveryEmail = strings.TrimSpace(email)
	}
	if in.DeliveryEmail == "" && !hasField(p, "subject_identities") {
		p.Add("subject_identities", "an email identity (raw) is required, or %s.delivery_email: the result is sent there", extField)
	}
	in.Locale = ext.Locale
	return in, p, nil
}

func hasDuplicates(list []string) bool {
	seen := map[string]bool{}
	for _, s := range list {
		if seen[s] {
			return true
		}
		seen[s] = true
	}
	return false
}

func hasField(p rights.Problems, prefix string) bool {
	return slices.ContainsFunc(p, func(fp rights.FieldProblem) bool { return strings.HasPrefix(fp.Field, prefix) })
}

// openDSRFields renames the intake's field names in a pipeline error to
// the OpenDSR request's.
func openDSRFields(err error, domain string, ids []openDSRIdentity, mapping map[string]string) error {
	var re *rights.Error
	if !errors.As(err, &re) || len(re.Fields) == 0 {
		return err
	}
	out := *re
	out.Fields = make([]rights.FieldProblem, len(re.Fields))
	for i, fp := range re.Fields {
		f := fp.Field
		switch {
		case f == "type":
			f = "subject_request_type"
		case f == "product", f == "delivery_email", f == "locale":
			f = "extensions." + domain + "." + f
		case strings.HasPrefix(f, "subject.identities"):
			f = "subject_identities"
			internal := strings.TrimPrefix(fp.Field, "subject.identities.")
			for j, id := range ids {
				if mapping[id.IdentityType] == internal {
					f = fmt.Sprintf("subject_identities[%d].identity_value", j)
				}
			}
		}
		out.Fields[i] = rights.FieldProblem{Field: f, Reason: fp.Reason}
	}
	return &out
}

func (s *server) handleOpenDSRStatus(w http.ResponseWriter, r *http.Request, pt config.Partner) {
	req, link, err := storage.FindPartnerRequest(r.Context(), s.DB.Pool, pt.Name, r.PathValue("id"))
	if err != nil {
		s.openDSRError(w, r, err)
		return
	}
	s.openDSRJSON(w, r, http.StatusOK, map[string]any{
		"controller_id":            pt.Name,
		"expected_completion_time": s.Pipeline.ExpectedCompletion(req).Format(time.RFC3339),
		"subject_request_id":       link.SubjectRequestID,
		"request_status":           rights.OpenDSRStatus(req.Status),
		"api_version":              jobs.OpenDSRAPIVersion,
		"extensions":               map[string]any{s.openDSR().ProcessorDomain: jobs.OpenDSRExtension(req, req.Status)},
	})
}

func (s *server) handleOpenDSRCancel(w http.ResponseWriter, r *http.Request, pt config.Partner) {
	id := r.PathValue("id")
	received := s.Pipeline.Now().UTC()
	if _, err := s.Pipeline.CancelPartner(r.Context(), pt.Name, id); err != nil {
		s.openDSRError(w, r, err)
		return
	}
	s.openDSRJSON(w, r, http.StatusAccepted, map[string]any{
		"controller_id":      pt.Name,
		"subject_request_id": id,
		"received_time":      received.Format(time.RFC3339),
		"api_version":        jobs.OpenDSRAPIVersion,
	})
}

// handleOpenDSRDiscovery is the discovery document (§6.3): public, as a
// controller fetches it to find the certificate that signs callbacks.
func (s *server) handleOpenDSRDiscovery(w http.ResponseWriter, r *http.Request) {
	o := s.openDSR()
	if !o.Enabled() {
		s.openDSRError(w, r, rights.Errorf(rights.ENotFound, "the OpenDSR API is not enabled"))
		return
	}
	identities := []map[string]string{}
	for _, t := range s.Pipeline.OpenDSRIdentityTypes() {
		identities = append(identities, map[string]string{"identity_type": t, "identity_format": "raw"})
	}
	types := s.Pipeline.OpenDSRSupportedTypes()
	if types == nil {
		types = []string{}
	}
	s.openDSRJSON(w, r, http.StatusOK, map[string]any{
		"api_version":                     jobs.OpenDSRAPIVersion,
		"supported_identities":            identities,
		"supported_subject_request_types": types,
		"processor_certificate":           s.publicBase(r) + openDSRCertPath,
	})
}

// publicBase is http.public_url; where it is not configured (tests, which
// listen on a port the system picks), the address the request came to.
func (s *server) publicBase(r *http.Request) string {
	if cfg := s.Pipeline.Settings(); cfg.HTTP.PublicURLSet {
		return strings.TrimRight(cfg.HTTP.PublicURL, "/")
	}
	return "http://" + r.Host
}

func (s *server) handleOpenDSRCertificate(w http.ResponseWriter, r *http.Request) {
	o := s.openDSR()
	if !o.Enabled() {
		s.openDSRError(w, r, rights.Errorf(rights.ENotFound, "the OpenDSR API is not enabled"))
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(o.CertificatePEM)
}

// openDSRJSON writes v signed: the signature covers the body's exact bytes.
func (s *server) openDSRJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		s.openDSRError(w, r, err)
		return
	}
	o := s.openDSR()
	sig, err := jobs.SignOpenDSR(o, body)
	if err != nil {
		s.openDSRError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set(jobs.HeaderOpenDSRDomain, o.ProcessorDomain)
	h.Set(jobs.HeaderOpenDSRSignature, sig)
	h.Set(jobs.HeaderOpenGDPRDomain, o.ProcessorDomain)
	h.Set(jobs.HeaderOpenGDPRSignature, sig)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// openDSRErrorBody is the error object of OpenDSR §7.6: code is the HTTP
// status; errors name each bad field (domain "validation", reason the
// field). fields is the rest of the API's spelling of the same problems.
type openDSRErrorBody struct {
	Error struct {
		Code      int                   `json:"code"`
		Message   string                `json:"message"`
		Errors    []openDSRErrorDetail  `json:"errors,omitempty"`
		Fields    []rights.FieldProblem `json:"fields,omitempty"`
		RequestID string                `json:"request_id,omitempty"`
	} `json:"error"`
}

type openDSRErrorDetail struct {
	Domain  string `json:"domain"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

func (s *server) openDSRError(w http.ResponseWriter, r *http.Request, err error) {
	if rights.ErrorCode(err) == rights.EInternal && storage.Unavailable(err) {
		err = &rights.Error{Code: rights.EUnavailable, RetryAfter: 5 * time.Second,
			Message: "the service cannot reach its database just now; try again shortly (see Retry-After)"}
	}
	status := HTTPStatus(err)
	var body openDSRErrorBody
	body.Error.Code, body.Error.Message = status, rights.ErrorMessage(err)
	var re *rights.Error
	if errors.As(err, &re) {
		body.Error.Fields = re.Fields
		for _, fp := range re.Fields {
			body.Error.Errors = append(body.Error.Errors, openDSRErrorDetail{Domain: "validation", Reason: fp.Field, Message: fp.Field + ": " + fp.Reason})
		}
		if re.RetryAfter > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(int64((re.RetryAfter+time.Second-1)/time.Second)))
		}
	}
	body.Error.RequestID, _ = r.Context().Value(ctxRequestID).(string)
	if status >= 500 {
		s.Logger.ErrorContext(r.Context(), "request failed", "request_id", body.Error.RequestID, "route", r.Pattern, "err", err)
	}
	w.Header().Set("Pragma", "no-cache")
	s.json(w, status, body)
}
