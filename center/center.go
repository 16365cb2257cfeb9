// Package center is the privacy center: the pages where people file a
// rights request themselves, prove their address with the emailed code and
// follow their request. It is a door onto the same intake, verification,
// limits and status as the self-service JSON API (jobs.Pipeline), rendered
// on the server, usable without JavaScript, in zh-CN and en.
package center

import (
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/datarights/datarights/jobs"
	"github.com/datarights/datarights/pages"
	"github.com/datarights/datarights/storage"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Deps is what the privacy center needs.
type Deps struct {
	Pipeline *jobs.Pipeline
	Logger   *slog.Logger
	// Secure marks cookies Secure: the service is reached over TLS (its
	// public URL is https). A request that arrived over TLS gets Secure
	// cookies either way.
	Secure bool
	// Client says who is calling, for the self-service limits (the API's
	// reading of the peer and trusted proxies: api.ClientFunc).
	Client func(*http.Request) jobs.Client
	// MaxFormBytes bounds a posted form; default 64 KiB.
	MaxFormBytes int64
}

// Paths the center answers.
const (
	Prefix = "/privacy/"
	// LegacyStatus is the status page emails linked to before the center:
	// it still works, as a redirect.
	LegacyStatus = "/status/"
)

// Cookie names. The access key's cookie is scoped to its request's status
// path, so one browser may hold keys to several requests and each is sent
// only to its own pages.
const (
	accessCookie = "dr_access"
	csrfCookie   = "dr_csrf"
	langCookie   = "dr_privacy_lang"
)

// centerCSP is the policy of every page: no scripts at all, styles only
// from our stylesheet, forms posting only back to us, never framed.
const centerCSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

type server struct {
	Deps
	pages map[string]*template.Template
}

// New returns the privacy center's handler, to be mounted at "/" (exactly),
// Prefix and LegacyStatus.
func New(deps Deps) (http.Handler, error) {
	if deps.Pipeline == nil {
		return nil, fmt.Errorf("privacy center: no pipeline")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.MaxFormBytes == 0 {
		deps.MaxFormBytes = 64 << 10
	}
	if deps.Client == nil {
		deps.Client = func(*http.Request) jobs.Client { return jobs.Client{} }
	}
	s := &server{Deps: deps}
	pages, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	s.pages = pages
	mux := http.NewServeMux()
	if err := s.routes(mux); err != nil {
		return nil, err
	}
	return mux, nil
}

func parseTemplates() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, name := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").ParseFS(templateFS, "templates/layout.html", name)
		if err != nil {
			return nil, fmt.Errorf("privacy center template %s: %w", name, err)
		}
		pages[base] = t
	}
	return pages, nil
}

func (s *server) routes(mux *http.ServeMux) error {
	assets, err := fs.Sub(assetFS, "assets")
	if err != nil {
		return err
	}
	files := http.StripPrefix("/privacy/assets/", http.FileServerFS(assets))
	mux.Handle("GET /privacy/assets/{file}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET /{$}", s.handleHome)
	mux.HandleFunc("GET /privacy/{$}", s.handleHome)
	mux.HandleFunc("GET /privacy/lang/{lang}", s.handleLanguage)
	mux.HandleFunc("GET /privacy/{product}", s.handleProduct)
	mux.HandleFunc("GET /privacy/{product}/{right}", s.handleForm)
	mux.HandleFunc("POST /privacy/{product}/{right}", s.form(s.handleFile))
	mux.HandleFunc("GET /privacy/requests/{id}/verify", s.request(s.handleVerifyForm))
	mux.HandleFunc("POST /privacy/requests/{id}/verify", s.request(s.form(s.handleVerify)))
	mux.HandleFunc("GET /privacy/requests/{id}", s.request(s.handleStatus))
	mux.HandleFunc("POST /privacy/requests/{id}/key", s.request(s.form(s.handleKey)))
	mux.HandleFunc("POST /privacy/requests/{id}/password", s.request(s.form(s.handlePassword)))
	mux.HandleFunc("POST /privacy/requests/{id}/contact", s.request(s.form(s.handleContact)))
	mux.HandleFunc("POST /privacy/requests/{id}/forget", s.request(s.form(s.handleForget)))
	// The old status page: emailed links keep working.
	mux.HandleFunc("GET /status/{id}", s.request(s.handleLegacyStatus))
	mux.HandleFunc("POST /status/{id}", s.request(s.handleLegacyStatus))
	mux.HandleFunc("/privacy/", s.handleNotFound)
	return nil
}

// request lets through only a well-formed request id: anything else is
// no page of ours (and never becomes a cookie's path).
func (s *server) request(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !storage.ValidID(r.PathValue("id")) {
			s.handleNotFound(w, r)
			return
		}
		next(w, r)
	}
}

// page is what every template gets.
type page struct {
	Lang  string
	Title string
	CSRF  string
	// Path is the page's own path, where the language switch comes back to.
	Path  string
	Error string
	// Fields are problems with the form's fields, by field name.
	Fields map[string]string
	Data   any
}

// T translates key into the page's language.
func (p *page) T(key string, args ...any) string { return translate(p.Lang, key, args...) }

// Other is the language the switch offers.
func (p *page) Other() string {
	if p.Lang == langEN {
		return langZH
	}
	return langEN
}

// Err is the problem of one form field, "" when none.
func (p *page) Err(field string) string { return p.Fields[field] }

func (s *server) newPage(w http.ResponseWriter, r *http.Request, title string, args ...any) *page {
	p := &page{Lang: pickLanguage(r), Path: r.URL.Path}
	p.Title = p.T(title, args...)
	p.CSRF = s.csrfToken(w, r)
	return p
}

// render writes one page with the center's headers.
func (s *server) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	t, ok := s.pages[name]
	if !ok {
		s.Logger.ErrorContext(r.Context(), "privacy center page missing", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	pages.Render(w, r, s.Logger, "center/"+name, t, p, pages.Page{Status: status, CSP: centerCSP,
		Lang: p.Lang, Vary: "Accept-Language, Cookie"})
}

func (s *server) secure(r *http.Request) bool { return s.Secure || r.TLS != nil }

// CSRF: a double-submit token. A random value lives in an HttpOnly,
// SameSite=Strict cookie; every form carries it in a hidden field, and a
// post is refused unless the two match and the browser says the post came
// from our own pages. A page without a session still gets one, since
// filing a request is the first thing a visitor does.

func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// csrfToken is the browser's token, set in a cookie the first time.
func (s *server) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	token := newSecret()
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: token, Path: "/", HttpOnly: true,
		Secure: s.secure(r), SameSite: http.SameSiteStrictMode})
	// The same request's later reads see it too.
	r.AddCookie(&http.Cookie{Name: csrfCookie, Value: token})
	return token
}

// checkCSRF reports whether a posted form may be acted on.
func checkCSRF(r *http.Request) bool {
	c, err := r.Cookie(csrfCookie)
	if err != nil || len(c.Value) != 43 {
		return false
	}
	if subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostForm.Get("csrf"))) != 1 {
		return false
	}
	return pages.SameOrigin(r)
}

// form reads a posted form, refuses text that is not clean and a missing
// or wrong CSRF token, then calls next.
func (s *server) form(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, s.MaxFormBytes)
		if err := r.ParseForm(); err != nil {
			s.fail(w, r, http.StatusBadRequest, "error.form")
			return
		}
		// Text Postgres would refuse (invalid UTF-8, NUL) is refused
		// here, naming the field, before anything acts on it.
		for _, key := range slices.Sorted(maps.Keys(r.PostForm)) {
			if textProblem(key) {
				s.fail(w, r, http.StatusBadRequest, "error.form_field", strconv.Quote(key))
				return
			}
			for _, v := range r.PostForm[key] {
				if textProblem(v) {
					s.fail(w, r, http.StatusBadRequest, "error.form_field", key)
					return
				}
			}
		}
		if !checkCSRF(r) {
			s.fail(w, r, http.StatusForbidden, "error.csrf")
			return
		}
		next(w, r)
	}
}

// fail shows one sentence on the error page.
func (s *server) fail(w http.ResponseWriter, r *http.Request, status int, key string, args ...any) {
	p := s.newPage(w, r, "error.title")
	p.Error = p.T(key, args...)
	s.render(w, r, status, "error", p)
}

func (s *server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	s.fail(w, r, http.StatusNotFound, "error.page_not_found")
}

// handleLanguage remembers the language picked and goes back to the page
// it was picked on (a path of ours only).
func (s *server) handleLanguage(w http.ResponseWriter, r *http.Request) {
	lang := r.PathValue("lang")
	if !pages.ValidLang(lang) {
		s.handleNotFound(w, r)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: langCookie, Value: lang, Path: "/", MaxAge: 365 * 24 * 3600,
		HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, localPath(r.URL.Query().Get("back")), http.StatusSeeOther)
}

// localPath is back when it is a path on this site, else "/".
func localPath(back string) string {
	if back == "" || !strings.HasPrefix(back, "/") || strings.HasPrefix(back, "//") || strings.ContainsAny(back, "\\\r\n") {
		return "/"
	}
	u, err := url.Parse(back)
	if err != nil || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return u.Path
}
