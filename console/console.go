// Package console is the staff web console: server-rendered pages over the
// same operations, role checks and audit trail as the staff API. It works
// without JavaScript and speaks zh-CN and en.
package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/datarights/datarights/api"
	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/jobs"
	"github.com/datarights/datarights/pages"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Deps is what the console needs.
type Deps struct {
	DB       *storage.DB
	Pipeline *jobs.Pipeline
	Logger   *slog.Logger
	// Sessions configures sign-in sessions; zero fields take the defaults.
	Sessions config.Console
	// Secure marks the session cookie Secure: the service is reached over
	// TLS (its public URL is https). A request that arrived over TLS gets a
	// Secure cookie either way.
	Secure bool
	// Operations is the River UI, served to admins under /console/river/;
	// nil serves none. OperationsCSP is the policy its pages need.
	Operations    http.Handler
	OperationsCSP string
	// Register writes the request register for st (the API's export, with
	// the query's from, to, product and format); nil offers none.
	Register func(w http.ResponseWriter, r *http.Request, st rights.Staff)
}

// Prefix is where the console is mounted.
const Prefix = "/console/"

const sessionCookie = "dr_console"

type server struct {
	Deps
	pages map[string]*template.Template
	// perms is the permission of each staff API route, by pattern: a
	// console action needs what the API route it mirrors needs.
	perms map[string]rights.Permission
}

// New returns the console's handler, to be mounted at Prefix.
func New(deps Deps) (http.Handler, error) {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Sessions.IdleTimeout == 0 {
		deps.Sessions.IdleTimeout = config.DefaultConsoleIdleTimeout
	}
	if deps.Sessions.AbsoluteTimeout == 0 {
		deps.Sessions.AbsoluteTimeout = config.DefaultConsoleAbsoluteTimeout
	}
	if deps.Sessions.SigninLinkTTL == 0 {
		deps.Sessions.SigninLinkTTL = config.DefaultSigninLinkTTL
	}
	s := &server{Deps: deps, perms: apiPermissions()}
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	if err := s.routes(mux); err != nil {
		return nil, err
	}
	return mux, nil
}

func (s *server) parseTemplates() error {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	s.pages = map[string]*template.Template{}
	for _, name := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", name)
		if err != nil {
			return fmt.Errorf("console template %s: %w", name, err)
		}
		s.pages[base] = t
	}
	return nil
}

// page is what every template gets: the page's own data in Data, and
// what the layout needs.
type page struct {
	Lang  string
	Title string
	Nav   string
	Staff *rights.Staff
	CSRF  string
	Path  string
	// Flash is a line saying what the last action did.
	Flash string
	// Error is the page's error, with field problems in Fields by name.
	Error  string
	Fields map[string]string
	Data   any
	// HasRiver: the River UI is mounted and the staff member may open it.
	HasRiver bool
}

// T translates key into the page's language.
func (p *page) T(key string, args ...any) string { return translate(p.Lang, key, args...) }

// Can reports whether the signed-in staff member's role grants perm (the
// page hides what they could not do; the route refuses it anyway).
func (p *page) Can(perm string) bool {
	return p.Staff != nil && p.Staff.Can(rights.Permission(perm))
}

// Err is the problems of the named fields (a name matches itself and
// the fields under it: "verification" matches "verification.method").
func (p *page) Err(names ...string) string {
	var out []string
	for field, reason := range p.Fields {
		for _, name := range names {
			if field == name || strings.HasPrefix(field, name+".") || strings.HasPrefix(field, name+"[") {
				out = append(out, reason)
				break
			}
		}
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

// Event is an audit action in words.
func (p *page) Event(action string) string { return eventText(p.Lang, action) }

// Date formats t in China Standard Time, the products' zone.
func (p *page) Date(t any) string {
	switch v := t.(type) {
	case time.Time:
		return v.In(cst).Format("2006-01-02 15:04")
	case *time.Time:
		if v == nil {
			return "—"
		}
		return v.In(cst).Format("2006-01-02 15:04")
	}
	return "—"
}

var cst = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}()

var funcs = template.FuncMap{
	"join":       strings.Join,
	"taskCounts": taskCounts,
	"shortID":    shortID,
}

// session is the signed-in staff member of one HTTP request.
type session struct {
	staff rights.Staff
	csrf  string
}

type ctxKey int

const ctxSession ctxKey = iota

func sessionFrom(ctx context.Context) *session {
	s, _ := ctx.Value(ctxSession).(*session)
	return s
}

// newPage starts the page data for r.
func (s *server) newPage(r *http.Request, title, nav string) *page {
	p := &page{Lang: pickLanguage(r), Nav: nav, Path: r.URL.Path}
	p.Title = p.T(title)
	if sess := sessionFrom(r.Context()); sess != nil {
		st := sess.staff
		p.Staff, p.CSRF = &st, sess.csrf
		p.HasRiver = s.Operations != nil && st.Can(rights.PermAdmin)
	}
	if c, err := r.Cookie(flashCookie); err == nil {
		if v, err := url.QueryUnescape(c.Value); err == nil && len(v) < 300 {
			p.Flash = v
		}
	}
	return p
}

// consoleCSP is the policy of every console page: no scripts, styles only
// from our own stylesheet (inline SVG charts are styled by class), forms
// posting only back to us, never framed.
const consoleCSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// render writes one page with the console's headers.
func (s *server) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	t, ok := s.pages[name]
	if !ok {
		s.Logger.ErrorContext(r.Context(), "console page missing", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	out := pages.Page{Status: status, CSP: consoleCSP}
	if p.Flash != "" {
		// Shown once: cleared only by a page that showed it.
		out.Before = func(http.Header) {
			http.SetCookie(w, &http.Cookie{Name: flashCookie, Path: Prefix, MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
		}
	}
	pages.Render(w, r, s.Logger, "console/"+name, t, p, out)
}

const flashCookie = "dr_flash"

// redirectWith sends the browser to path with a line saying what was done
// (Post/Redirect/Get: reloading the page does not repeat the action).
func (s *server) redirectWith(w http.ResponseWriter, r *http.Request, path, flash string) {
	if flash != "" {
		http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: url.QueryEscape(flash), Path: Prefix,
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: s.secure(r), MaxAge: 60})
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}

// fail shows err on its own page with the status its code maps to, in the
// staff member's language where the code has a sentence of its own.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	p := s.newPage(r, "error.title", "")
	if rights.ErrorCode(err) == rights.EInternal && storage.Unavailable(err) {
		err = rights.Errorf(rights.EUnavailable, "database unavailable")
		w.Header().Set("Retry-After", "5")
	}
	status := statusOf(err)
	switch rights.ErrorCode(err) {
	case rights.EForbidden:
		p.Error = p.T("error.forbidden") + " " + rights.ErrorMessage(err)
	case rights.ENotFound:
		p.Error = p.T("error.not_found")
	case rights.EUnavailable:
		p.Error = p.T("error.unavailable")
	case rights.EInternal:
		// The details are for the log, not the page.
		s.Logger.ErrorContext(r.Context(), "console action failed", "route", r.Pattern, "err", err)
		p.Error = p.T("error.internal")
	default:
		p.Error = rights.ErrorMessage(err)
	}
	s.render(w, r, status, "error", p)
}

func statusOf(err error) int { return api.HTTPStatus(err) }

// fieldErrors turns an error's field problems into a map for the form.
func fieldErrors(err error) map[string]string {
	var e *rights.Error
	if !errors.As(err, &e) || len(e.Fields) == 0 {
		return nil
	}
	m := map[string]string{}
	for _, f := range e.Fields {
		if m[f.Field] != "" {
			m[f.Field] += "; "
		}
		m[f.Field] += f.Reason
	}
	return m
}

func (s *server) secure(r *http.Request) bool { return s.Secure || r.TLS != nil }

// newSecret is 32 random bytes, URL-safe.
func newSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func hashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// csrfFor derives a session's CSRF token from its cookie: nothing more to
// store, and it dies with the session.
func csrfFor(sessionSecret string) string {
	m := hmac.New(sha256.New, []byte(sessionSecret))
	m.Write([]byte("datarights console csrf"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// authenticate finds the request's live session, or nil.
func (s *server) authenticate(r *http.Request) (*session, string, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > 100 {
		return nil, "", nil
	}
	cs, err := storage.TouchSession(r.Context(), s.DB.Pool, hashSecret(c.Value), s.Pipeline.Now(), s.Sessions.IdleTimeout)
	if err != nil || cs == nil {
		return nil, c.Value, err
	}
	return &session{staff: cs.Staff, csrf: csrfFor(c.Value)}, c.Value, nil
}

// startSession signs staffName in: a new session and its cookie.
func (s *server) startSession(w http.ResponseWriter, r *http.Request, staffName, tokenSHA256 string) error {
	secret, err := newSecret()
	if err != nil {
		return err
	}
	now := s.Pipeline.Now()
	expires := now.Add(s.Sessions.AbsoluteTimeout)
	if err := storage.CreateSession(r.Context(), s.DB.Pool, hashSecret(secret), staffName, tokenSHA256, now, expires); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: secret, Path: Prefix, Expires: expires,
		HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteStrictMode})
	s.Logger.InfoContext(r.Context(), "console sign-in", "staff", staffName)
	return nil
}
