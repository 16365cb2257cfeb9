package api

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/datarights/datarights/jobs"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// spec is the served description, decoded.
func spec(t *testing.T) map[string]any {
	t.Helper()
	raw, err := OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// operations are the description's operations by "METHOD /path".
func operations(t *testing.T, doc map[string]any) map[string]map[string]any {
	ops := map[string]map[string]any{}
	for path, item := range doc["paths"].(map[string]any) {
		for method, op := range item.(map[string]any) {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options", "trace":
				ops[strings.ToUpper(method)+" "+path] = op.(map[string]any)
			}
		}
	}
	return ops
}

// TestOpenAPIDescribesEveryRoute: every route the server registers (but
// its pages and the catch-all 404) is an operation of the description
// with the same method and path, and the description has no other. A
// staff route's operation needs the staff token and names its
// permission (x-permission); no other operation takes a staff token.
//
// To add routes: add them to allRoutes in routes.go, and describe them in
// openapi.yaml; this test names what is missing on either side. The
// partner API's operations take the partner token (partnerToken), no other.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	ops := operations(t, spec(t))
	described := map[string]bool{}
	for _, rt := range Routes() {
		if !rt.Kind.Described() {
			continue
		}
		method, path, ok := strings.Cut(rt.Pattern, " ")
		if !ok {
			t.Errorf("route %q (%s) has no method: the description cannot say which it answers", rt.Pattern, rt.Kind)
			continue
		}
		key := method + " " + path
		described[key] = true
		op, ok := ops[key]
		if !ok {
			t.Errorf("route %s (%s) is not in api/openapi.yaml", key, rt.Kind)
			continue
		}
		if !hasResponse(op, "400") {
			t.Errorf("%s: every route answers 400 for a URL with bad text in it (requireCleanText): describe it", key)
		}
		perm, hasPerm := op["x-permission"]
		staffSecured := strings.Contains(mustJSON(t, op["security"]), `"staffToken"`)
		partnerSecured := strings.Contains(mustJSON(t, op["security"]), `"partnerToken"`)
		if partnerSecured && rt.Kind != RouteOpenDSR {
			t.Errorf("%s: not a partner route, yet described with a partner token", key)
		}
		if partnerSecured && !hasResponse(op, "401") {
			t.Errorf("%s: a partner route must describe its 401 answer", key)
		}
		if rt.Kind == RouteStaff {
			if !hasPerm || perm != string(rt.Permission) {
				t.Errorf("%s: x-permission is %v, the route needs %q", key, perm, rt.Permission)
			}
			if !staffSecured {
				t.Errorf("%s: a staff route, but its security is not staffToken: %v", key, op["security"])
			}
			if !hasResponse(op, "401") || (rt.Permission != rights.PermNone && !hasResponse(op, "403")) {
				t.Errorf("%s: a staff route must describe its 401 and 403 answers", key)
			}
		} else {
			if hasPerm || staffSecured {
				t.Errorf("%s: not a staff route, yet described with a staff token or a permission", key)
			}
			if op["security"] == nil {
				t.Errorf("%s: say its security (security: [] for none), or it inherits none by accident", key)
			}
		}
	}
	for key := range ops {
		if !described[key] {
			t.Errorf("api/openapi.yaml describes %s, which no route serves", key)
		}
	}
}

func hasResponse(op map[string]any, status string) bool {
	_, ok := op["responses"].(map[string]any)[status]
	return ok
}

func mustJSON(t *testing.T, v any) string {
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// TestOpenAPIEnumsAreTheDomains: the description's enums are the domain's
// lists, so a new status, right or error code cannot go undescribed.
func TestOpenAPIEnumsAreTheDomains(t *testing.T) {
	t.Parallel()
	schemas := spec(t)["components"].(map[string]any)["schemas"].(map[string]any)
	strs := func(vs ...any) []string {
		var out []string
		for _, v := range vs {
			out = append(out, reflect.ValueOf(v).String())
		}
		slices.Sort(out)
		return out
	}
	each := func(list any) []string {
		v := reflect.ValueOf(list)
		var out []any
		for i := range v.Len() {
			out = append(out, v.Index(i).Interface())
		}
		return strs(out...)
	}
	var refusals []any
	for r := range rights.RefusalReasons {
		refusals = append(refusals, r)
	}
	var codes []any
	for c := range maps.Keys(statusFor) {
		codes = append(codes, c)
	}
	want := map[string][]string{
		"Type":          each(rights.Types),
		"Status":        each(rights.Statuses),
		"Band":          each(rights.Bands),
		"Role":          each(rights.Roles),
		"Permission":    each(rights.Permissions),
		"RefusalReason": strs(refusals...),
		"ErrorCode":     strs(codes...),
		"Channel":       strs(rights.ChannelStaff, rights.ChannelSelfService, rights.ChannelPartner),
		"Relation":      strs(rights.RelationSelf, rights.RelationGuardian, rights.RelationNextOfKin, rights.RelationAgent),
		"TaskAction":    strs(rights.ActionExport, rights.ActionDelete, rights.ActionCorrect, rights.ActionWithdrawConsent),
		"TaskStatus":    strs(rights.TaskPending, rights.TaskWaiting, rights.TaskSucceeded, rights.TaskFailed),
		"OpenDSRType":   each(rights.OpenDSRTypeNames),
		"OpenDSRRequestStatus": strs(rights.OpenDSRPending, rights.OpenDSRInProgress, rights.OpenDSRCompleted,
			rights.OpenDSRCancelled),
	}
	for name, w := range want {
		var got []string
		for _, v := range schemas[name].(map[string]any)["enum"].([]any) {
			got = append(got, v.(string))
		}
		slices.Sort(got)
		if !slices.Equal(got, w) {
			t.Errorf("schema %s: enum %v, the domain has %v", name, got, w)
		}
	}
}

// TestOpenAPISchemasHaveEveryField: the schemas of the answers have
// exactly the fields the Go types write, so a field added to an answer
// that no end-to-end test happens to show is still caught.
func TestOpenAPISchemasHaveEveryField(t *testing.T) {
	t.Parallel()
	schemas := spec(t)["components"].(map[string]any)["schemas"].(map[string]any)
	for name, typ := range map[string]any{
		"Request":            requestView{},
		"Task":               taskView{},
		"StoreReport":        rights.StoreReport{},
		"AuditEvent":         rights.AuditEvent{},
		"Hold":               storage.Hold{},
		"Notice":             storage.Notice{},
		"Contact":            storage.Contact{},
		"Note":               storage.Note{},
		"Export":             jobs.ExportView{},
		"SelfServiceStatus":  jobs.SelfServiceStatus{},
		"ConsentEvent":       rights.ConsentEvent{},
		"ConsentLedger":      jobs.ConsentLedger{},
		"LookupResult":       jobs.LookupResult{},
		"StaffToken":         storage.StaffToken{},
		"Dashboard":          jobs.Dashboard{},
		"BandCounts":         jobs.BandCounts{},
		"DueCounts":          jobs.DueCounts{},
		"Percentiles":        jobs.Percentiles{},
		"Error":              errorBody{},
		"OpenDSRError":       openDSRErrorBody{},
		"OpenDSRErrorDetail": openDSRErrorDetail{},
		"OpenDSRRequest":     openDSRRequest{},
		"OpenDSRIdentity":    openDSRIdentity{},
		"OpenDSRExtension":   openDSRExtension{},
	} {
		props, _ := schemas[name].(map[string]any)["properties"].(map[string]any)
		got := slices.Sorted(maps.Keys(props))
		want := jsonFields(reflect.TypeOf(typ))
		if !slices.Equal(got, want) {
			t.Errorf("schema %s has the fields %v; %T writes %v", name, got, typ, want)
		}
	}
}

// jsonFields are the names encoding/json writes for a struct type.
func jsonFields(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-" || !f.IsExported() && !f.Anonymous:
			continue
		case f.Anonymous && name == "":
			out = append(out, jsonFields(f.Type)...)
			continue
		case name == "":
			name = f.Name
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// TestOpenAPIServed: GET /api/openapi.json answers the description as
// JSON, without a token, with the API's security headers, a cache header
// and an ETag that revalidates.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(NewServer(Deps{OpsOnly: false}))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/api/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	h := resp.Header
	if resp.StatusCode != http.StatusOK || doc["openapi"] != "3.1.0" || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /api/openapi.json: %d %s, openapi %v", resp.StatusCode, h.Get("Content-Type"), doc["openapi"])
	}
	if h.Get("Content-Security-Policy") != apiCSP || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("security headers: %v", h)
	}
	if h.Get("Cache-Control") != "public, max-age=3600" || h.Get("ETag") == "" {
		t.Errorf("Cache-Control %q, ETag %q", h.Get("Cache-Control"), h.Get("ETag"))
	}
	req, _ := http.NewRequest("GET", srv.URL+"/api/openapi.json", nil)
	req.Header.Set("If-None-Match", h.Get("ETag"))
	again, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	again.Body.Close()
	if again.StatusCode != http.StatusNotModified {
		t.Errorf("with If-None-Match: %d, want 304", again.StatusCode)
	}
}
