package rights_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/datarights/datarights/rights"
)

func TestRolesAreNotALadder(t *testing.T) {
	t.Parallel()
	want := map[rights.Role][]rights.Permission{
		rights.RoleAgent:    {rights.PermRead, rights.PermFile, rights.PermOperate, rights.PermRevealPassword},
		rights.RoleApprover: {rights.PermRead, rights.PermFile, rights.PermOperate, rights.PermRevealPassword, rights.PermDecide, rights.PermReport},
		rights.RoleAuditor:  {rights.PermRead, rights.PermAuditExport, rights.PermReport},
		rights.RoleAdmin:    {rights.PermAdmin},
	}
	for _, role := range rights.Roles {
		s := rights.Staff{Name: "x", Role: role}
		for _, p := range rights.Permissions {
			granted := false
			for _, w := range want[role] {
				granted = granted || w == p
			}
			if s.Can(p) != granted {
				t.Errorf("%s can %s = %v, want %v", role, p, s.Can(p), granted)
			}
		}
		if !s.Can(rights.PermNone) {
			t.Errorf("%s cannot do what any staff member may", role)
		}
	}
	if (rights.Staff{Name: "x", Role: "boss"}).Can(rights.PermRead) {
		t.Error("an unknown role can read")
	}
}

func TestProductScopeAndFourEyes(t *testing.T) {
	t.Parallel()
	all := rights.Staff{Name: "li", Role: rights.RoleApprover}
	wechat := rights.Staff{Name: "wang", Role: rights.RoleApprover, Products: []string{"wechat"}}
	if !all.InScope("webank") || !wechat.InScope("wechat") || wechat.InScope("webank") {
		t.Error("scopes")
	}
	if err := wechat.CheckProduct("webank"); rights.ErrorCode(err) != rights.EForbidden {
		t.Errorf("out of scope product = %v", err)
	}
	r := &rights.Request{ID: "r1", CreatedBy: rights.ActorStaff("li")}
	if err := rights.FourEyes(r, "li", "refusing it"); rights.ErrorCode(err) != rights.EForbidden || !strings.Contains(err.Error(), "four-eyes") {
		t.Errorf("the filer deciding = %v", err)
	}
	if err := rights.FourEyes(r, "wang", "refusing it"); err != nil {
		t.Errorf("a second person deciding = %v", err)
	}
}

func TestValidateStaffNamesTheBadField(t *testing.T) {
	t.Parallel()
	err := rights.ValidateStaff(rights.Staff{Name: "Li Wei", Role: "boss", Products: []string{""}})
	var e *rights.Error
	if !errorsAs(err, &e) {
		t.Fatalf("err = %v", err)
	}
	var fields []string
	for _, f := range e.Fields {
		fields = append(fields, f.Field)
	}
	if strings.Join(fields, ",") != "name,role,products[0]" {
		t.Errorf("fields = %v", fields)
	}
	if err := rights.ValidateStaff(rights.Staff{Name: "li.wei", Role: rights.RoleAuditor}); err != nil {
		t.Errorf("a good staff member: %v", err)
	}
}

func errorsAs(err error, target **rights.Error) bool { return errors.As(err, target) }
