package rights

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// staffNameRE is what a staff member's name may be: it goes into the
// audit trail as staff:<name>.
var staffNameRE = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,62}$`)

// Role is what a member of staff may do. Roles are not a ladder: an
// auditor reads everything in scope and changes nothing, an admin manages
// tokens and sees the configuration but reads no one's request.
type Role string

const (
	// RoleAgent files tickets, sees their products' requests, pauses and
	// resumes them, retries failed tasks and reads a staff ticket's archive
	// password out to its requester.
	RoleAgent Role = "agent"
	// RoleApprover does what an agent does, and decides: approves repeats
	// and protected corrections, refuses, extends, confirms manual tasks
	// and third parties' acknowledgements.
	RoleApprover Role = "approver"
	// RoleAuditor reads requests and exports the audit trail; read-only.
	RoleAuditor Role = "auditor"
	// RoleAdmin manages staff tokens and views the configuration.
	RoleAdmin Role = "admin"
)

// Roles lists every role, for validation messages.
var Roles = []Role{RoleAgent, RoleApprover, RoleAuditor, RoleAdmin}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return slices.Contains(Roles, r) }

// ParseRole returns the role named s, or an EInvalid error listing them.
func ParseRole(s string) (Role, error) {
	if r := Role(s); r.Valid() {
		return r, nil
	}
	names := make([]string, len(Roles))
	for i, r := range Roles {
		names[i] = string(r)
	}
	return "", Errorf(EInvalid, "role %q is not one of %s", s, strings.Join(names, ", "))
}

// Permission is one thing a route needs.
type Permission string

const (
	PermNone           Permission = ""                // any authenticated staff member
	PermRead           Permission = "read"            // see requests (in scope)
	PermFile           Permission = "file"            // file tickets, record consent
	PermOperate        Permission = "operate"         // pause, resume, retry a task
	PermRevealPassword Permission = "reveal_password" // a staff ticket's archive password, once
	PermDecide         Permission = "decide"          // approve, refuse, extend, confirm
	PermAuditExport    Permission = "audit_export"    // the audit trail and the request register, in bulk
	PermReport         Permission = "report"          // the SLA dashboard: counts, no personal data
	PermAdmin          Permission = "admin"           // staff tokens, configuration view
)

// Permissions lists every permission.
var Permissions = []Permission{PermRead, PermFile, PermOperate, PermRevealPassword, PermDecide, PermAuditExport, PermReport, PermAdmin}

var rolePermissions = map[Role][]Permission{
	RoleAgent:    {PermRead, PermFile, PermOperate, PermRevealPassword},
	RoleApprover: {PermRead, PermFile, PermOperate, PermRevealPassword, PermDecide, PermReport},
	RoleAuditor:  {PermRead, PermAuditExport, PermReport},
	RoleAdmin:    {PermAdmin},
}

// Staff is an authenticated member of staff: a named person with one role
// and the products they work on (none listed: every product).
type Staff struct {
	Name     string   `json:"name"`
	Role     Role     `json:"role"`
	Products []string `json:"products"`
}

// Can reports whether the staff member's role grants p.
func (s Staff) Can(p Permission) bool {
	return p == PermNone || slices.Contains(rolePermissions[s.Role], p)
}

// InScope reports whether the staff member works on product.
func (s Staff) InScope(product string) bool {
	return len(s.Products) == 0 || slices.Contains(s.Products, product)
}

// ProductScope is the products filter of the staff member's lists: nil
// for every product.
func (s Staff) ProductScope() []string {
	if len(s.Products) == 0 {
		return nil
	}
	return s.Products
}

// Actor is how the audit trail names the staff member.
func (s Staff) Actor() string { return ActorStaff(s.Name) }

// Forbid returns the EForbidden error for a permission the staff member
// lacks.
func (s Staff) Forbid(p Permission) error {
	return Errorf(EForbidden, "staff %s (%s) may not %s", s.Name, s.Role, permissionWords[p])
}

// CheckProduct returns an EForbidden error unless product is in scope: for
// a product named in a request body, whose existence is no secret.
func (s Staff) CheckProduct(product string) error {
	if s.InScope(product) {
		return nil
	}
	return Errorf(EForbidden, "staff %s works on %s, not %s", s.Name, strings.Join(s.Products, ", "), product)
}

var permissionWords = map[Permission]string{
	PermRead:           "read requests",
	PermFile:           "file tickets or record consents",
	PermOperate:        "pause, resume or retry requests",
	PermRevealPassword: "reveal an archive password",
	PermDecide:         "approve, refuse, extend or confirm",
	PermAuditExport:    "export the audit trail or the request register",
	PermReport:         "see the SLA dashboard",
	PermAdmin:          "manage staff tokens or view the configuration",
}

// FourEyes returns an EForbidden error when the staff member deciding is
// the one who filed the request: a protected correction or a refusal needs
// a second person.
func FourEyes(r *Request, decider, what string) error {
	// CreatedBy is an actor (staff:<name>); older rows held the bare name.
	if r.CreatedBy == ActorStaff(decider) || r.CreatedBy == decider {
		return Errorf(EForbidden, "%s filed request %s; %s needs a second person (four-eyes rule)", decider, r.ID, what)
	}
	return nil
}

// ReservedStaffName reports whether name means something else in the
// queue's assignee filter ("me": the caller, "none": nobody).
func ReservedStaffName(name string) bool { return name == "me" || name == "none" }

// ValidateStaff checks a staff identity's fields, naming the bad one.
func ValidateStaff(s Staff) error {
	var p Problems
	switch {
	case !staffNameRE.MatchString(s.Name):
		p.Add("name", "must be a lower-case name like \"alice\" or \"li.wei\"")
	case ReservedStaffName(s.Name):
		p.Add("name", "%q is reserved: the queue's assignee filter uses it", s.Name)
	}
	if _, err := ParseRole(string(s.Role)); err != nil {
		p.Add("role", "%s", ErrorMessage(err))
	}
	for i, product := range s.Products {
		if product == "" {
			p.Add(fmt.Sprintf("products[%d]", i), "must not be empty")
		}
	}
	return p.Err()
}
