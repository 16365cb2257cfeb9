package console

import (
	"io/fs"
	"regexp"
	"testing"

	"github.com/datarights/datarights/pages"
	"github.com/datarights/datarights/rights"
)

// TestCatalogueHasEveryWord: every key a template names, and every status,
// right, band, channel, relation and task status the service has, is in
// the catalogue in both languages.
func TestCatalogueHasEveryWord(t *testing.T) {
	t.Parallel()
	for key, m := range catalogue {
		if m.In(pages.EN) == "" || m.In(pages.ZH) == "" {
			t.Errorf("%s lacks a language: %+v", key, m)
		}
	}
	keyRE := regexp.MustCompile(`\.T "([a-z_.]+)"`)
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		data, err := templateFS.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range keyRE.FindAllSubmatch(data, -1) {
			if _, ok := catalogue[string(m[1])]; !ok {
				t.Errorf("%s uses %q, which is not in the catalogue", name, m[1])
			}
		}
	}
	var keys []string
	for _, s := range rights.Statuses {
		keys = append(keys, "status."+string(s))
	}
	for _, r := range rights.Types {
		keys = append(keys, "right."+string(r))
	}
	for _, b := range []rights.Band{rights.BandOverdue, rights.BandDueSoon, rights.BandOnTrack, rights.BandPaused, rights.BandNoDeadline, rights.BandClosed} {
		keys = append(keys, "band."+string(b))
	}
	for _, c := range []rights.Channel{rights.ChannelStaff, rights.ChannelSelfService} {
		keys = append(keys, "channel."+string(c))
	}
	for _, r := range []rights.Relation{rights.RelationSelf, rights.RelationGuardian, rights.RelationNextOfKin, rights.RelationAgent} {
		keys = append(keys, "relation."+string(r))
	}
	for _, s := range []rights.TaskStatus{rights.TaskPending, rights.TaskWaiting, rights.TaskSucceeded, rights.TaskFailed} {
		keys = append(keys, "task."+string(s))
	}
	for _, a := range []rights.TaskAction{rights.ActionExport, rights.ActionDelete, rights.ActionCorrect, rights.ActionWithdrawConsent} {
		keys = append(keys, "action."+string(a))
	}
	for _, k := range keys {
		if _, ok := catalogue[k]; !ok {
			t.Errorf("the catalogue lacks %s", k)
		}
	}
}

// TestEveryActionHasTheAPIsPermission: each console route that mirrors an
// API route exists there and takes its permission; the ones that do not
// mirror one say what they need.
func TestEveryActionHasTheAPIsPermission(t *testing.T) {
	t.Parallel()
	routes, err := Routes()
	if err != nil {
		t.Fatal(err)
	}
	perms := apiPermissions()
	for _, rt := range routes {
		if rt.Mirrors == "" {
			continue
		}
		if perms[rt.Mirrors] != rt.Permission {
			t.Errorf("%s needs %q, but %s needs %q", rt.Pattern, rt.Permission, rt.Mirrors, perms[rt.Mirrors])
		}
	}
	if len(routes) < 15 {
		t.Errorf("only %d console routes", len(routes))
	}
}

func TestRedirectsStayOnTheConsole(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/console/requests/x":     "/console/requests/x",
		"/console/queue?band=due": "/console/queue?band=due",
		"https://evil.example/":   "/console/queue",
		"//evil.example/console/": "/console/queue",
		"/console/\\evil":         "/console/queue",
		"/api/v1/requests":        "/console/queue",
		"":                        "/console/queue",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDaysAndIDsInWords(t *testing.T) {
	t.Parallel()
	if got := translate("zh-CN", "days.working", 3); got != "3 个工作日" {
		t.Errorf("zh days = %q", got)
	}
	if got := translate("en", "days.overdue_c", 2); got != "2 days late" {
		t.Errorf("en late = %q", got)
	}
	if got := shortID("01a23804-3d43-7086-8ceb-adc79bf7b61d"); got != "…9bf7b61d" {
		t.Errorf("shortID = %q", got)
	}
}
