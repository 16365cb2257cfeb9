package console

import (
	"context"
	"crypto/subtle"
	"fmt"
	"io/fs"
	"net/http"
	"strings"

	"github.com/datarights/datarights/api"
	"github.com/datarights/datarights/pages"
	"github.com/datarights/datarights/rights"
)

// route is one console page or action. An action that does what a staff
// API route does names it in mirrors and needs exactly the permission that
// route needs (api.StaffRoutes is the one table of permissions); a page
// with no API twin names its permission in perm.
type route struct {
	pattern string
	mirrors string
	perm    rights.Permission
	handler http.HandlerFunc
}

// signedInRoutes are the console's routes that need a session.
func (s *server) signedInRoutes() []route {
	return []route{
		{"GET /console/queue", "GET /api/v1/requests", "", s.handleQueue},
		{"POST /console/queue/assign", "POST /api/v1/requests/{id}/assign", "", s.handleBulkAssign},
		{"GET /console/requests/{id}", "GET /api/v1/requests/{id}", "", s.handleRequest},
		{"POST /console/requests/{id}/approve", "POST /api/v1/requests/{id}/approve", "", s.handleApprove},
		{"POST /console/requests/{id}/answer", "POST /api/v1/requests/{id}/answer", "", s.handleAnswer},
		{"POST /console/requests/{id}/refuse", "POST /api/v1/requests/{id}/refuse", "", s.handleRefuse},
		{"POST /console/requests/{id}/pause", "POST /api/v1/requests/{id}/pause", "", s.handlePause},
		{"POST /console/requests/{id}/resume", "POST /api/v1/requests/{id}/resume", "", s.handleResume},
		{"POST /console/requests/{id}/extend", "POST /api/v1/requests/{id}/extend", "", s.handleExtend},
		{"POST /console/requests/{id}/assign", "POST /api/v1/requests/{id}/assign", "", s.handleAssign},
		{"POST /console/requests/{id}/notes", "POST /api/v1/requests/{id}/notes", "", s.handleNote},
		{"POST /console/requests/{id}/tasks/{task}/retry", "POST /api/v1/requests/{id}/tasks/{task}/retry", "", s.handleRetryTask},
		{"POST /console/requests/{id}/tasks/{task}/confirm", "POST /api/v1/requests/{id}/tasks/{task}/confirm", "", s.handleConfirmTask},
		{"POST /console/requests/{id}/recipients/{recipient}/acknowledge", "POST /api/v1/requests/{id}/recipients/{recipient}/acknowledge", "", s.handleAcknowledge},
		{"POST /console/requests/{id}/password", "POST /api/v1/requests/{id}/export/password", "", s.handleRevealPassword},
		{"POST /console/requests/{id}/contact", "POST /api/v1/requests/{id}/contact/confirm", "", s.handleConfirmContact},
		{"GET /console/tickets/new", "POST /api/v1/requests", "", s.handleTicketForm},
		{"POST /console/tickets/new", "POST /api/v1/requests", "", s.handleTicketSubmit},
		{"GET /console/dashboard", "GET /api/v1/dashboard", "", s.handleDashboard},
		{"GET /console/register", "GET /api/v1/register", "", s.handleRegister},
		{"POST /console/signout", "", rights.PermNone, s.handleSignout},
	}
}

func (s *server) routes(mux *http.ServeMux) error {
	assets, err := fs.Sub(assetFS, "assets")
	if err != nil {
		return err
	}
	mux.Handle("GET /console/assets/", http.StripPrefix("/console/assets/", assetHandler(http.FileServerFS(assets))))
	mux.HandleFunc("GET /console/{$}", s.handleHome)
	mux.HandleFunc("GET /console/signin", s.handleSigninForm)
	mux.HandleFunc("POST /console/signin", s.handleSignin)
	mux.HandleFunc("GET /console/signin/{token}", s.handleLinkForm)
	mux.HandleFunc("POST /console/signin/{token}", s.handleLinkSignin)
	mux.HandleFunc("GET /console/lang/{lang}", s.handleLanguage)
	mux.HandleFunc("/console/", s.handleNotFound)
	for _, rt := range s.signedInRoutes() {
		perm, err := s.permission(rt)
		if err != nil {
			return err
		}
		mux.HandleFunc(rt.pattern, s.session(perm, rt.handler))
	}
	if s.Operations != nil {
		mux.Handle("/console/river/", s.session(rights.PermAdmin, s.handleOperations))
	}
	return nil
}

// maxFormBytes is the most a console form may post.
const maxFormBytes = 64 << 10

// Route is a console route and the permission it needs, for tests.
type Route struct {
	Pattern    string
	Mirrors    string
	Permission rights.Permission
}

// Routes lists the console's signed-in routes with their permissions.
func Routes() ([]Route, error) {
	s := &server{perms: apiPermissions()}
	var out []Route
	for _, rt := range s.signedInRoutes() {
		perm, err := s.permission(rt)
		if err != nil {
			return nil, err
		}
		out = append(out, Route{Pattern: rt.pattern, Mirrors: rt.mirrors, Permission: perm})
	}
	return out, nil
}

func apiPermissions() map[string]rights.Permission {
	perms := map[string]rights.Permission{}
	for _, rt := range api.StaffRoutes() {
		perms[rt.Pattern] = rt.Permission
	}
	return perms
}

// permission is what rt needs: its API twin's permission, or its own.
func (s *server) permission(rt route) (rights.Permission, error) {
	if rt.mirrors == "" {
		return rt.perm, nil
	}
	p, ok := s.perms[rt.mirrors]
	if !ok {
		return "", fmt.Errorf("console route %s mirrors %s, which is not a staff API route", rt.pattern, rt.mirrors)
	}
	return p, nil
}

func assetHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

// session lets a request through only with a live session whose staff
// member's role grants perm, with the same product scope rule as the API
// (a request outside their products is "not found"), and, for a form
// post, the session's CSRF token from this site.
func (s *server) session(perm rights.Permission, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, cookie, err := s.authenticate(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if sess == nil {
			if cookie != "" {
				s.setFlash(w, r, translate(pickLanguage(r), "signin.expired"))
			}
			target := "/console/signin"
			if r.Method == http.MethodGet && r.URL.Path != "/console/signin" {
				target += "?next=" + urlEscape(r.URL.RequestURI())
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), ctxSession, sess))
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if err := r.ParseForm(); err != nil {
				s.fail(w, r, rights.Errorf(rights.EInvalid, "the form could not be read (at most %d KB)", maxFormBytes>>10))
				return
			}
			// Stored text must be clean (Postgres refuses a NUL with an
			// error that would read as a bug).
			var p rights.Problems
			for name, values := range r.PostForm {
				for _, v := range values {
					if problem := api.TextProblem(v); problem != "" {
						p.Add(name, "%s", problem)
						break
					}
				}
			}
			if err := p.Err(); err != nil {
				s.fail(w, r, err)
				return
			}
			if !pages.SameOrigin(r) || subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(sess.csrf)) != 1 {
				s.fail(w, r, rights.Errorf(rights.EForbidden, "%s", translate(pickLanguage(r), "error.csrf")))
				return
			}
		}
		if !sess.staff.Can(perm) {
			s.fail(w, r, sess.staff.Forbid(perm))
			return
		}
		if err := api.CheckRequestScope(r.Context(), s.DB.Pool, sess.staff, r.PathValue("id")); err != nil {
			s.fail(w, r, err)
			return
		}
		next(w, r)
	}
}

func (s *server) setFlash(w http.ResponseWriter, r *http.Request, msg string) {
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: urlEscape(msg), Path: Prefix,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: s.secure(r), MaxAge: 60})
}

func (s *server) handleHome(w http.ResponseWriter, r *http.Request) {
	target := "/console/queue"
	if sess, _, err := s.authenticate(r); err == nil && sess != nil {
		target = s.landing(sess.staff)
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

func (s *server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "error.title", "")
	p.Error = p.T("error.not_found")
	s.render(w, r, http.StatusNotFound, "error", p)
}

// handleLanguage remembers the staff member's language and goes back to
// the page they were on (only ever a console page).
func (s *server) handleLanguage(w http.ResponseWriter, r *http.Request) {
	lang := r.PathValue("lang")
	if !pages.ValidLang(lang) {
		s.handleNotFound(w, r)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: langCookie, Value: lang, Path: Prefix, MaxAge: 365 * 24 * 3600,
		SameSite: http.SameSiteLaxMode, Secure: s.secure(r), HttpOnly: true})
	http.Redirect(w, r, localPath(r.URL.Query().Get("back")), http.StatusSeeOther)
}

// localPath is back if it is a console path, else the queue: a redirect
// target from a query must never lead off the site.
func localPath(back string) string {
	if strings.HasPrefix(back, Prefix) && !strings.HasPrefix(back, "//") && !strings.ContainsAny(back, "\\\r\n") {
		return back
	}
	return "/console/queue"
}

func (s *server) handleOperations(w http.ResponseWriter, r *http.Request) {
	if s.OperationsCSP != "" {
		w.Header().Set("Content-Security-Policy", s.OperationsCSP)
	}
	s.Operations.ServeHTTP(w, r)
}
