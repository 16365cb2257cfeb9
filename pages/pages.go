// Package pages holds what the service's two sets of server-rendered pages,
// the staff console and the privacy center, do alike: pick the language,
// look words up in a two-language catalogue, refuse cross-site posts and
// write a rendered page with its security headers.
package pages

import (
	"bytes"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
)

// The languages every page is written in.
const (
	ZH = "zh-CN"
	EN = "en"
)

// ValidLang reports whether s is a language the pages speak.
func ValidLang(s string) bool { return s == ZH || s == EN }

// PickLanguage is the language remembered in the cookie named cookie, else
// the browser's preference (Accept-Language, in its order), else Chinese.
func PickLanguage(r *http.Request, cookie string) string {
	if c, err := r.Cookie(cookie); err == nil && ValidLang(c.Value) {
		return c.Value
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag := strings.ToLower(strings.TrimSpace(strings.Split(part, ";")[0]))
		switch {
		case strings.HasPrefix(tag, "zh"):
			return ZH
		case strings.HasPrefix(tag, "en"):
			return EN
		}
	}
	return ZH
}

// Text is one sentence in English and Chinese, in that order. An array,
// not a struct, so catalogues stay one {"…", "…"} per line.
type Text [2]string

// In is the sentence in lang.
func (t Text) In(lang string) string {
	if lang == ZH {
		return t[1]
	}
	return t[0]
}

// Catalogue is every sentence a set of pages shows, by key.
type Catalogue map[string]Text

// Translate looks key up, formatting it with args; a missing key shows
// itself, which each catalogue's tests catch first.
func (c Catalogue) Translate(lang, key string, args ...any) string {
	m, ok := c[key]
	if !ok {
		return key
	}
	s := m.In(lang)
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

// SameOrigin refuses a cross-site form post: the browser's Sec-Fetch-Site
// (or Origin) must say it came from our own pages.
func SameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	return true
}

// Page is how one page is written.
type Page struct {
	Status int
	CSP    string // Content-Security-Policy, required
	Lang   string // Content-Language, when set
	Vary   string // Vary, when set
	// Before, when set, changes the headers once the page has rendered
	// (e.g. clearing a cookie that must survive a failed render).
	Before func(http.Header)
}

// Render writes template t with data, rendered to a buffer first so that a
// template error is a clean 500 and not half a page. what names the page
// in the log.
func Render(w http.ResponseWriter, r *http.Request, logger *slog.Logger, what string, t *template.Template, data any, p Page) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		logger.ErrorContext(r.Context(), "page failed", "page", what, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", p.CSP)
	if p.Lang != "" {
		h.Set("Content-Language", p.Lang)
	}
	if p.Vary != "" {
		h.Add("Vary", p.Vary)
	}
	if p.Before != nil {
		p.Before(h)
	}
	w.WriteHeader(p.Status)
	_, _ = w.Write(buf.Bytes())
}
