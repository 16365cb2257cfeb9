package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"regexp"
	"strings"
)

// apiCSP is the Content-Security-Policy of every answer that is not one of
// our pages (JSON, downloads, metrics): it allows nothing, so an answer that
// a browser is tricked into rendering as HTML can run or load nothing, and
// no answer can be framed.
const apiCSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// securityHeaders sets the headers every answer carries, errors included:
// nothing is framed (clickjacking the status page's reveal button), sniffed
// into another type, or tells other sites where a link was followed from
// (the paths carry request ids and download and acknowledgement tokens).
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", apiCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

var styleRE = regexp.MustCompile(`(?s)<style>(.*?)</style>`)

// pageCSP is the policy of a page we render: no scripts at all, the page's
// own <style> elements by hash (no 'unsafe-inline', so injected markup could
// not style itself either), forms posting only back to us.
func pageCSP(page []byte) string {
	var hashes []string
	for _, m := range styleRE.FindAllSubmatch(page, -1) {
		sum := sha256.Sum256(m[1])
		hashes = append(hashes, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
	}
	style := "'none'"
	if len(hashes) > 0 {
		style = strings.Join(hashes, " ")
	}
	return "default-src 'none'; style-src " + style + "; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
}

// renderPage writes one of our HTML pages with its policy. The page is
// rendered first: the policy allows exactly the styles it holds, which
// html/template keeps from ever coming from the data.
func renderPage(w http.ResponseWriter, t *template.Template, status int, v any) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, v); err != nil {
		// A template bug: say so plainly rather than send half a page.
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", pageCSP(buf.Bytes()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
