package pages_test

import (
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/datarights/datarights/pages"
)

func TestSameOrigin(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		site, origin string
		want         bool
	}{
		{"", "", true},
		{"same-origin", "http://example.test", true},
		{"none", "", true},
		{"cross-site", "", false},
		{"same-site", "", false},
		{"", "http://evil.test", false},
		{"", "null", true},
	} {
		r := httptest.NewRequest("POST", "http://example.test/x", nil)
		if c.site != "" {
			r.Header.Set("Sec-Fetch-Site", c.site)
		}
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		if got := pages.SameOrigin(r); got != c.want {
			t.Errorf("Sec-Fetch-Site %q Origin %q: %v, want %v", c.site, c.origin, got, c.want)
		}
	}
}

func TestTranslateAndLanguage(t *testing.T) {
	t.Parallel()
	c := pages.Catalogue{"hi": {"Hello %s", "你好 %s"}}
	if got := c.Translate(pages.ZH, "hi", "x"); got != "你好 x" {
		t.Errorf("zh: %q", got)
	}
	if got := c.Translate(pages.EN, "missing"); got != "missing" {
		t.Errorf("a missing key: %q, want the key", got)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Accept-Language", "fr, en-GB;q=0.8, zh;q=0.5")
	if got := pages.PickLanguage(r, "lang"); got != pages.EN {
		t.Errorf("Accept-Language: %q, want en", got)
	}
	r.AddCookie(&http.Cookie{Name: "lang", Value: pages.ZH})
	if got := pages.PickLanguage(r, "lang"); got != pages.ZH {
		t.Errorf("the cookie: %q, want zh-CN", got)
	}
}

// TestRenderFailsWhole: a template that fails half way writes a 500, not
// half a page with the page's headers.
func TestRenderFailsWhole(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	bad := template.Must(template.New("p").Parse(`<p>before</p>{{index . 5}}`))
	w := httptest.NewRecorder()
	before := false
	pages.Render(w, httptest.NewRequest("GET", "/", nil), logger, "p", bad, map[string]any{},
		pages.Page{Status: 200, CSP: "default-src 'none'", Before: func(http.Header) { before = true }})
	if w.Code != 500 || strings.Contains(w.Body.String(), "before") || before {
		t.Errorf("failed render: %d %q, Before called %v", w.Code, w.Body.String(), before)
	}
	good := template.Must(template.New("p").Parse(`<p>{{.}}</p>`))
	w = httptest.NewRecorder()
	pages.Render(w, httptest.NewRequest("GET", "/", nil), logger, "p", good, "ok",
		pages.Page{Status: 201, CSP: "default-src 'none'", Lang: pages.EN})
	if w.Code != 201 || w.Header().Get("Content-Security-Policy") == "" || w.Header().Get("Content-Language") != "en" {
		t.Errorf("render: %d %v", w.Code, w.Header())
	}
}
