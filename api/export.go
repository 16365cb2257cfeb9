package api

import (
	"errors"
	"html/template"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/datarights/datarights/rights"
)

// Exported copies: the staff view and password, the self-service status
// page (JSON and HTML) where the verified requester sees the password once,
// and the download link.

func (s *server) handleGetExport(w http.ResponseWriter, r *http.Request) {
	view, err := s.Pipeline.Export(r.Context(), r.PathValue("id"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	if view == nil {
		s.error(w, r, rights.Errorf(rights.ENotFound, "request %s has no export", r.PathValue("id")))
		return
	}
	s.json(w, http.StatusOK, view)
}

// handleRevealPassword gives staff the archive password to read out to the
// requester, once.
func (s *server) handleRevealPassword(w http.ResponseWriter, r *http.Request) {
	view, err := s.Pipeline.RevealPassword(r.Context(), r.PathValue("id"), "staff", rights.ActorStaff(staffName(r.Context())))
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.json(w, http.StatusOK, view)
}

// accessKey is the self-service requester's key from the Authorization
// header.
func accessKey(r *http.Request) string {
	key, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return strings.TrimSpace(key)
}

func (s *server) handleSelfServiceStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.Pipeline.Status(r.Context(), r.PathValue("id"), accessKey(r), false)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.json(w, http.StatusOK, st)
}

func (s *server) handleSelfServicePassword(w http.ResponseWriter, r *http.Request) {
	st, err := s.Pipeline.Status(r.Context(), r.PathValue("id"), accessKey(r), true)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.json(w, http.StatusOK, st)
}

var cst = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}()

var expiredPage = template.Must(template.New("expired").Parse(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>链接已失效 · Link expired</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;line-height:1.6;color:#222}.muted{color:#666}</style></head><body>
{{if .Expired}}<h1 id="expired">下载链接已失效 · This download link has expired</h1>
<p>为保护您的个人信息，下载链接仅在有限时间内有效{{if .When}}（至 {{.When}}）{{end}}，过期后文件即被删除。如仍需要副本，请重新提交请求。</p>
<p class="muted">To protect your personal information, a download link works only for a limited time{{if .When}} (until {{.When}}, China Standard Time){{end}}, and then the file is deleted. If you still need a copy, please make a new request.</p>
{{else}}<h1 id="invalid">链接无效 · This link is not valid</h1>
<p>请检查链接是否完整。</p><p class="muted">Please check that the link is complete.</p>{{end}}
</body></html>`))

// handleDownload streams an export to whoever holds its link, until the
// link expires; every download is recorded and audited.
func (s *server) handleDownload(w http.ResponseWriter, r *http.Request) {
	dl, e, err := s.Pipeline.OpenDownload(r.Context(), r.PathValue("token"))
	if err != nil {
		switch rights.ErrorCode(err) {
		case rights.ENotFound:
			renderPage(w, expiredPage, http.StatusNotFound, map[string]any{})
		case rights.EExpired:
			when := ""
			if e != nil && e.ExpiresAt != nil {
				when = e.ExpiresAt.In(cst).Format("2006-01-02 15:04")
			}
			renderPage(w, expiredPage, http.StatusGone, map[string]any{"Expired": true, "When": when})
		default:
			s.error(w, r, err)
		}
		return
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": dl.FileName}))
	w.Header().Set("Content-Length", strconv.FormatInt(dl.Size, 10))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	n, err := io.Copy(w, dl.Body)
	dl.Finish(n, err == nil && n == dl.Size)
	if err != nil && !errors.Is(err, r.Context().Err()) {
		s.Logger.WarnContext(r.Context(), "download cut short", "bytes", n, "err", err)
	}
}
