package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/datarights/datarights/api"
)

// staffRouteRoles is who may use each staff route, written out here
// independently of the code's table so that a change to either shows.
var staffRouteRoles = map[string][]string{
	"POST /api/v1/requests":                                         {"agent", "approver"},
	"GET /api/v1/requests":                                          {"agent", "approver", "auditor"},
	"GET /api/v1/requests/{id}":                                     {"agent", "approver", "auditor"},
	"POST /api/v1/requests/{id}/pause":                              {"agent", "approver"},
	"POST /api/v1/requests/{id}/resume":                             {"agent", "approver"},
	"POST /api/v1/requests/{id}/extend":                             {"approver"},
	"POST /api/v1/requests/{id}/refuse":                             {"approver"},
	"POST /api/v1/requests/{id}/approve":                            {"approver"},
	"POST /api/v1/requests/{id}/answer":                             {"approver"},
	"POST /api/v1/requests/{id}/tasks/{task}/retry":                 {"agent", "approver"},
	"POST /api/v1/requests/{id}/tasks/{task}/confirm":               {"approver"},
	"POST /api/v1/requests/{id}/recipients/{recipient}/acknowledge": {"approver"},
	"GET /api/v1/requests/{id}/export":                              {"agent", "approver", "auditor"},
	"POST /api/v1/requests/{id}/export/password":                    {"agent", "approver"},
	"POST /api/v1/requests/{id}/contact/confirm":                    {"agent", "approver"},
	"POST /api/v1/requests/{id}/assign":                             {"agent", "approver"},
	"POST /api/v1/requests/{id}/notes":                              {"agent", "approver"},
	"POST /api/v1/lookup":                                           {"agent", "approver"},
	"POST /api/v1/consents":                                         {"agent", "approver"},
	"POST /api/v1/consents/lookup":                                  {"agent", "approver", "auditor"},
	"GET /api/v1/staff/me":                                          {"agent", "approver", "auditor", "admin"},
	"GET /api/v1/audit":                                             {"auditor"},
	"GET /api/v1/register":                                          {"auditor"},
	"GET /api/v1/dashboard":                                         {"approver", "auditor"},
	"GET /api/v1/admin/tokens":                                      {"admin"},
	"POST /api/v1/admin/tokens":                                     {"admin"},
	"DELETE /api/v1/admin/tokens/{name}":                            {"admin"},
	"GET /api/v1/admin/config":                                      {"admin"},
}

// TestEveryStaffRouteByRoleAndScope calls every staff route as every role,
// with a token for every product, one for the request's product and one
// for another product, and without a token. A role without the permission
// gets 403; a route on a request outside the staff member's products gets
// 404, the same as a request that does not exist; a product named in a
// body outside them gets 403; lists leave other products out.
func TestEveryStaffRouteByRoleAndScope(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "")
	routes := api.StaffRoutes()
	for _, rt := range routes {
		if _, ok := staffRouteRoles[rt.Pattern]; !ok {
			t.Errorf("route %s is not in this test's table", rt.Pattern)
		}
	}
	if len(routes) != len(staffRouteRoles) {
		t.Fatalf("the service has %d staff routes, this test knows %d", len(routes), len(staffRouteRoles))
	}

	code, body := e.call("POST", "/api/v1/requests", testToken, copyTicket("demo-user-6"))
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["id"].(string)
	done := e.waitStatus(id, "completed", 60*time.Second)
	task := asSlice(done["tasks"])[0].(map[string]any)["id"].(string)
	fill := strings.NewReplacer("{id}", id, "{task}", task, "{recipient}", "credit_bureau", "{name}", "nobody")

	for _, rt := range routes {
		method, pattern, _ := strings.Cut(rt.Pattern, " ")
		path := fill.Replace(pattern)
		var reqBody any
		if method == "POST" {
			// A product in the body, and nothing else: enough for the
			// scope check, and invalid for every route that changes
			// something, so the calls leave the request as it is.
			reqBody = map[string]any{"product": "webank"}
			if strings.HasSuffix(pattern, "/resume") || strings.HasSuffix(pattern, "/retry") || strings.HasSuffix(pattern, "/password") {
				reqBody = nil
			}
		}
		onRequest := strings.Contains(pattern, "{id}")
		bodyProduct := pattern == "/api/v1/requests" && method == "POST" || strings.HasPrefix(pattern, "/api/v1/consents") || pattern == "/api/v1/lookup"
		isList := rt.Pattern == "GET /api/v1/requests" || rt.Pattern == "GET /api/v1/audit"

		if code, _ := e.call(method, path, "", reqBody); code != http.StatusUnauthorized {
			t.Errorf("%s without a token = %d, want 401", rt.Pattern, code)
		}
		for _, role := range []string{"agent", "approver", "auditor", "admin"} {
			allowed := slices.Contains(staffRouteRoles[rt.Pattern], role)
			for _, scope := range []string{"", "-webank", "-wechat"} {
				name := role + scope
				if path == fill.Replace("/api/v1/requests/{id}/export/password") && allowed && scope != "-wechat" {
					continue // shown once: checked below, by one of them
				}
				code, out := e.call(method, path, staffToken(name), reqBody)
				raw, _ := json.Marshal(out)
				switch {
				case !allowed:
					if code != http.StatusForbidden {
						t.Errorf("%s as %s = %d %s, want 403", rt.Pattern, name, code, raw)
					}
				case scope == "-wechat" && onRequest:
					if code != http.StatusNotFound || !strings.Contains(errorText(out), "not found") {
						t.Errorf("%s as %s (another product) = %d %s, want 404", rt.Pattern, name, code, raw)
					}
				case scope == "-wechat" && bodyProduct:
					if code != http.StatusForbidden {
						t.Errorf("%s as %s (another product) = %d %s, want 403", rt.Pattern, name, code, raw)
					}
				case scope == "-wechat" && isList:
					if code != http.StatusOK || strings.Contains(string(raw), id) {
						t.Errorf("%s as %s (another product) = %d and lists the webank request: %s", rt.Pattern, name, code, raw)
					}
				default:
					if code == http.StatusUnauthorized || code == http.StatusForbidden || code >= 500 ||
						(onRequest && code == http.StatusNotFound && strings.Contains(errorText(out), "not found")) {
						t.Errorf("%s as %s = %d %s, want it let through", rt.Pattern, name, code, raw)
					}
					if isList && !strings.Contains(string(raw), id) {
						t.Errorf("%s as %s does not list the request: %s", rt.Pattern, name, raw)
					}
				}
			}
		}
	}
	// The password of a staff ticket: shown once, to an agent.
	if code, out := e.call("POST", "/api/v1/requests/"+id+"/export/password", staffToken("agent-webank"), nil); code != http.StatusOK || out["password"] == nil {
		t.Errorf("password as agent-webank = %d %v", code, out)
	}
}

// TestStaffNeverSeeASelfServicePassword: the password of a self-service
// copy is its requester's alone: no role, in any scope, can reveal it.
func TestStaffNeverSeeASelfServicePassword(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "")
	_, body := e.call("POST", "/api/v1/self-service/requests", "", map[string]any{
		"product": "webank", "type": "copy", "email": "demo-user-7@example.com", "locale": "en"})
	id := body["id"].(string)
	for _, name := range []string{"env", "approver", "agent-webank", "approver-2"} {
		token := staffToken(name)
		if name == "env" {
			token = testToken
		}
		code, out := e.call("POST", "/api/v1/requests/"+id+"/export/password", token, nil)
		if code != http.StatusForbidden || !strings.Contains(errorText(out), "only to its requester") {
			t.Errorf("reveal as %s = %d %v, want 403", name, code, out)
		}
	}
}

// TestAdminManagesTokens: an admin issues a token (shown once), the new
// staff member can use it within their role and scope, the list shows no
// token or hash, and a revoked token stops working.
func TestAdminManagesTokens(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, true, "")
	admin := staffToken("admin")
	code, out := e.call("POST", "/api/v1/admin/tokens", admin, map[string]any{"name": "li.wei", "role": "auditor", "products": []string{"wechat", "nope"}})
	if code != http.StatusBadRequest || !strings.Contains(errorText(out), "products[1]") {
		t.Errorf("unknown product = %d %v, want 400 naming products[1]", code, out)
	}
	if code, out := e.call("POST", "/api/v1/admin/tokens", admin, map[string]any{"name": "li.wei", "role": "boss"}); code != http.StatusBadRequest || !strings.Contains(errorText(out), "role") {
		t.Errorf("unknown role = %d %v, want 400 naming role", code, out)
	}
	code, out = e.call("POST", "/api/v1/admin/tokens", admin, map[string]any{"name": "li.wei", "role": "auditor", "products": []string{"wechat"}})
	if code != http.StatusCreated {
		t.Fatalf("create = %d %v", code, out)
	}
	token := out["token"].(string)
	if code, _ := e.call("POST", "/api/v1/admin/tokens", admin, map[string]any{"name": "li.wei", "role": "agent"}); code != http.StatusConflict {
		t.Errorf("a second token for an active name = %d, want 409", code)
	}
	code, me := e.call("GET", "/api/v1/staff/me", token, nil)
	if code != http.StatusOK || me["name"] != "li.wei" || me["role"] != "auditor" || !slices.Equal(asSlice(me["products"]), []any{"wechat"}) {
		t.Errorf("me = %d %v", code, me)
	}
	_, list := e.call("GET", "/api/v1/admin/tokens", admin, nil)
	raw, _ := json.Marshal(list)
	if !strings.Contains(string(raw), `"li.wei"`) || strings.Contains(string(raw), token) || strings.Contains(string(raw), "sha256") {
		t.Errorf("token list: %s", raw)
	}
	if code, _ := e.call("DELETE", "/api/v1/admin/tokens/li.wei", admin, nil); code != http.StatusOK {
		t.Errorf("revoke = %d", code)
	}
	if code, _ := e.call("GET", "/api/v1/staff/me", token, nil); code != http.StatusUnauthorized {
		t.Errorf("a revoked token = %d, want 401", code)
	}
	_, cfg := e.call("GET", "/api/v1/admin/config", admin, nil)
	raw, _ = json.Marshal(cfg)
	if !strings.Contains(string(raw), `"webank"`) || strings.Contains(string(raw), "postgres://") || strings.Contains(string(raw), "smtp://") {
		t.Errorf("the configuration view shows a connection string or lacks products: %s", raw)
	}
}
