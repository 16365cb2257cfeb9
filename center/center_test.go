package center

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/datarights/datarights/pages"
	"github.com/datarights/datarights/rights"
)

// TestCatalogueBothLanguages: every sentence has a zh-CN and an en text,
// with the same verbs in each.
func TestCatalogueBothLanguages(t *testing.T) {
	t.Parallel()
	verb := regexp.MustCompile(`%(\[\d\])?[sdv]`)
	for key, m := range catalogue {
		if strings.TrimSpace(m.In(pages.EN)) == "" || strings.TrimSpace(m.In(pages.ZH)) == "" {
			t.Errorf("%s: missing a language (en %q, zh %q)", key, m.In(pages.EN), m.In(pages.ZH))
			continue
		}
		if len(verb.FindAllString(m.In(pages.EN), -1)) != len(verb.FindAllString(m.In(pages.ZH), -1)) {
			t.Errorf("%s: the languages take different arguments: %q / %q", key, m.In(pages.EN), m.In(pages.ZH))
		}
	}
}

// TestTemplatesUseKnownKeys: every key the templates translate is in the
// catalogue, and every template parses with the layout.
func TestTemplatesUseKnownKeys(t *testing.T) {
	t.Parallel()
	if _, err := parseTemplates(); err != nil {
		t.Fatal(err)
	}
	keyRE := regexp.MustCompile(`\.T "([a-z_.]+)"`)
	err := fs.WalkDir(templateFS, "templates", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(templateFS, path)
		if err != nil {
			return err
		}
		for _, m := range keyRE.FindAllSubmatch(data, -1) {
			if _, ok := catalogue[string(m[1])]; !ok {
				t.Errorf("%s uses %q, which is not in the catalogue", path, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestEveryRightAndStatusInWords: the pages name every right the service
// knows and say every status in words, in both languages.
func TestEveryRightAndStatusInWords(t *testing.T) {
	t.Parallel()
	for _, typ := range rights.Types {
		for _, part := range []string{"name", "explain", "needs"} {
			if _, ok := catalogue["right."+string(typ)+"."+part]; !ok {
				t.Errorf("right %s has no %s", typ, part)
			}
		}
	}
	for _, st := range []rights.Status{rights.StatusAwaitingVerification, rights.StatusReceived, rights.StatusVerified,
		rights.StatusInProgress, rights.StatusAssembling, rights.StatusDelivering, rights.StatusCompleted,
		rights.StatusRefused, rights.StatusCancelled, rights.StatusFailed, rights.StatusPaused,
		rights.StatusAwaitingApproval, rights.StatusAwaitingContact, rights.StatusExpired} {
		for _, part := range []string{"headline", "now", "next"} {
			if _, ok := catalogue["status."+string(st)+"."+part]; !ok {
				t.Errorf("status %s has no %s", st, part)
			}
		}
	}
}

func TestPickLanguage(t *testing.T) {
	t.Parallel()
	for header, want := range map[string]string{
		"":                        "zh-CN",
		"en-GB,en;q=0.9":          "en",
		"zh-TW,zh;q=0.9,en;q=0.8": "zh-CN",
		"fr-FR, en;q=0.5":         "en",
		"de":                      "zh-CN",
		"EN-us":                   "en",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept-Language", header)
		if got := pickLanguage(r); got != want {
			t.Errorf("Accept-Language %q: %s, want %s", header, got, want)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Accept-Language", "en")
	r.AddCookie(&http.Cookie{Name: langCookie, Value: "zh-CN"})
	if got := pickLanguage(r); got != "zh-CN" {
		t.Errorf("the switch's cookie is not preferred: %s", got)
	}
}

func TestLocalPath(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/privacy/webank":          "/privacy/webank",
		"":                         "/",
		"//evil.example/x":         "/",
		"https://evil.example/":    "/",
		"/\\evil.example":          "/",
		"privacy":                  "/",
		"/privacy/webank?x=1#frag": "/privacy/webank",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFieldProblemsTranslated(t *testing.T) {
	t.Parallel()
	name, text := fieldProblem(langZH, rights.FieldProblem{Field: "code", Reason: "wrong code; 3 attempts left"})
	if name != "code" || text != "验证码不正确，还可尝试 3 次。" {
		t.Errorf("wrong code in zh-CN: %s %q", name, text)
	}
	name, text = fieldProblem(langEN, rights.FieldProblem{Field: "subject.identities.email", Reason: "must be an email address"})
	if name != "email" || text != "Enter a valid email address." {
		t.Errorf("email in en: %s %q", name, text)
	}
	name, _ = fieldProblem(langEN, rights.FieldProblem{Field: "corrections.city", Reason: "too long"})
	if name != "correct.city" {
		t.Errorf("a correction's field is %s", name)
	}
}

// TestNewTypeFieldProblemsTranslated: the intake's problems with a
// complaint's or explanation's text, a complaint's reference and a
// transfer's receiver land on their form fields, in words.
func TestNewTypeFieldProblemsTranslated(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		lang   string
		f      rights.FieldProblem
		field  string
		starts string
	}{
		{langEN, rights.FieldProblem{Field: "text", Reason: "is required: what the complaint is about"}, "text", "Please tell us"},
		{langEN, rights.FieldProblem{Field: "text", Reason: "must be valid text of at most 8000 bytes"}, "text", "This is too long: at most 8000 letters (about 2666 Chinese"},
		{langZH, rights.FieldProblem{Field: "text", Reason: "must be valid text of at most 8000 bytes"}, "text", "内容过长：最多约 2666 个汉字"},
		{langEN, rights.FieldProblem{Field: "concerns", Reason: "must be a request id"}, "concerns", "This is not a request reference"},
		{langZH, rights.FieldProblem{Field: "receiver", Reason: `unknown receiver "x"; the receiving handlers of webank: a`}, "receiver", "请选择接收"},
	} {
		name, text := fieldProblem(tc.lang, tc.f)
		if name != tc.field || !strings.HasPrefix(text, tc.starts) {
			t.Errorf("%s %s %q: %s %q", tc.lang, tc.f.Field, tc.f.Reason, name, text)
		}
	}
}

func TestSteps(t *testing.T) {
	t.Parallel()
	got := steps(langEN, rights.StatusInProgress)
	states := []string{}
	for _, s := range got {
		states = append(states, s.State)
	}
	if strings.Join(states, ",") != "done,done,current,todo" {
		t.Errorf("in progress: %v", states)
	}
	got = steps(langEN, rights.StatusCompleted)
	if got[3].State != "done" {
		t.Errorf("completed: %v", got)
	}
}

// TestCookieAttributes: the access key's cookie is HttpOnly, SameSite=Strict,
// scoped to its request and Secure over https; the CSRF cookie likewise.
func TestCookieAttributes(t *testing.T) {
	t.Parallel()
	const id = "01a20857-8088-7b8a-b989-77ec1bfc9ec5"
	for _, secure := range []bool{false, true} {
		s := &server{Deps: Deps{Secure: secure}}
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/privacy/requests/"+id, nil)
		s.setAccess(w, r, id, "the-key")
		s.csrfToken(w, r)
		cookies := w.Result().Cookies()
		if len(cookies) != 2 {
			t.Fatalf("%d cookies", len(cookies))
		}
		for _, c := range cookies {
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure != secure {
				t.Errorf("secure=%v: %s is %+v", secure, c.Name, c)
			}
		}
		if cookies[0].Name != accessCookie || cookies[0].Path != "/privacy/requests/"+id {
			t.Errorf("access cookie %s, path %s", cookies[0].Name, cookies[0].Path)
		}
	}
	// A request over TLS gets Secure cookies whatever the configuration.
	s := &server{}
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "https://example.com/", nil)
	s.setAccess(w, r, id, "k")
	if c := w.Result().Cookies()[0]; !c.Secure {
		t.Errorf("over TLS the cookie is not Secure")
	}
}
