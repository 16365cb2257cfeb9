package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/pages"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

func urlEscape(s string) string { return url.QueryEscape(s) }

type signinData struct {
	Next  string
	Name  string // a sign-in link's staff member
	Token string // the link's secret, posted back by its form
}

func (s *server) handleSigninForm(w http.ResponseWriter, r *http.Request) {
	if sess, _, err := s.authenticate(r); err == nil && sess != nil {
		http.Redirect(w, r, localPath(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	p := s.newPage(r, "signin.title", "signin")
	p.Data = signinData{Next: localPath(r.URL.Query().Get("next"))}
	s.render(w, r, http.StatusOK, "signin", p)
}

// handleSignin exchanges a staff token for a session. The token itself is
// never kept in the browser: only the session cookie is.
func (s *server) handleSignin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	token := strings.TrimSpace(r.PostFormValue("token"))
	next := localPath(r.PostFormValue("next"))
	p := s.newPage(r, "signin.title", "signin")
	p.Data = signinData{Next: next}
	if !pages.SameOrigin(r) {
		p.Error = p.T("error.csrf")
		s.render(w, r, http.StatusForbidden, "signin", p)
		return
	}
	var st *rights.Staff
	var err error
	if token != "" && len(token) <= 200 {
		st, err = storage.StaffForToken(r.Context(), s.DB.Pool, config.HashToken(token))
		if err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if st == nil {
		p.Error = p.T("signin.bad")
		s.render(w, r, http.StatusUnauthorized, "signin", p)
		return
	}
	if err := s.startSession(w, r, st.Name, config.HashToken(token)); err != nil {
		s.fail(w, r, err)
		return
	}
	if next == "/console/queue" {
		next = s.landing(*st)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// handleLinkForm shows a one-time sign-in link's confirmation. Opening the
// link does not use it (mail scanners and link previews open links); the
// button does.
func (s *server) handleLinkForm(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "signin.title", "signin")
	name, err := storage.SigninLinkStaff(r.Context(), s.DB.Pool, hashSecret(r.PathValue("token")), s.Pipeline.Now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if name == "" {
		p.Error = p.T("signin.link_bad")
		p.Data = signinData{Next: "/console/queue"}
		s.render(w, r, http.StatusGone, "signin", p)
		return
	}
	p.Data = signinData{Name: name, Token: r.PathValue("token")}
	s.render(w, r, http.StatusOK, "signin_link", p)
}

func (s *server) handleLinkSignin(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "signin.title", "signin")
	p.Data = signinData{Next: "/console/queue"}
	if !pages.SameOrigin(r) {
		p.Error = p.T("error.csrf")
		s.render(w, r, http.StatusForbidden, "signin", p)
		return
	}
	name, tokenHash, err := storage.UseSigninLink(r.Context(), s.DB.Pool, hashSecret(r.PathValue("token")), s.Pipeline.Now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if name == "" {
		p.Error = p.T("signin.link_bad")
		s.render(w, r, http.StatusGone, "signin", p)
		return
	}
	if err := s.startSession(w, r, name, tokenHash); err != nil {
		s.fail(w, r, err)
		return
	}
	landing := "/console/queue"
	if st, err := storage.ActiveStaff(r.Context(), s.DB.Pool, name); err == nil && st != nil {
		landing = s.landing(*st)
	}
	http.Redirect(w, r, landing, http.StatusSeeOther)
}

func (s *server) handleSignout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := storage.EndSession(r.Context(), s.DB.Pool, hashSecret(c.Value), s.Pipeline.Now()); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	s.Logger.InfoContext(r.Context(), "console sign-out", "staff", sessionFrom(r.Context()).staff.Name)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: Prefix, MaxAge: -1, HttpOnly: true,
		Secure: s.secure(r), SameSite: http.SameSiteStrictMode})
	s.setFlash(w, r, translate(pickLanguage(r), "signout.done"))
	http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
}

// NewSigninLink makes a one-time sign-in link for an active staff member,
// valid for ttl, and returns its path (under Prefix): for `datarights
// console link` and the dev command's banner. by is who asked for it.
func NewSigninLink(ctx context.Context, q storage.Querier, staffName, by string, now time.Time, ttl time.Duration) (string, error) {
	secret, err := newSecret()
	if err != nil {
		return "", err
	}
	if err := storage.CreateSigninLink(ctx, q, hashSecret(secret), staffName, by, now, now.Add(ttl)); err != nil {
		return "", err
	}
	return "/console/signin/" + secret, nil
}

// landing is the first page for a role: the queue for those who read
// requests, the River UI for an admin (who reads none).
func (s *server) landing(st rights.Staff) string {
	switch {
	case st.Can(rights.PermRead):
		return "/console/queue"
	case st.Can(rights.PermReport):
		return "/console/dashboard"
	case st.Can(rights.PermAdmin) && s.Operations != nil:
		return "/console/river/"
	}
	return "/console/queue"
}
