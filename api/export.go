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

	"github.com/datarights/datarights/jobs"
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

// The status page, for people: a form for the access key, then the
// request's status and, once, the password. No JavaScript, nothing from
// elsewhere; the key travels only in POST bodies.
var statusPage = template.Must(template.New("status").Funcs(template.FuncMap{
	"when": func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.In(cst).Format("2006-01-02 15:04")
	},
	"at": func(t time.Time) string { return t.In(cst).Format("2006-01-02 15:04") },
}).Parse(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>请求状态 · Request status</title>
<style>body{font-family:system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem;line-height:1.6;color:#222}
input{font-size:1rem;padding:.3rem;width:100%;box-sizing:border-box}button{font-size:1rem;padding:.5rem 1.5rem;margin-top:.5rem}
.muted{color:#666}.password{font-family:ui-monospace,monospace;font-size:1.4rem;background:#f3f3f3;padding:.5rem 1rem;display:inline-block;letter-spacing:.05em}
.error{color:#a00}</style></head><body>
<h1>请求状态 · Request status</h1>
<p class="muted">{{.ID}}</p>
{{if .Error}}<p class="error" id="error">{{.Error}}</p>{{end}}
{{with .Status}}
<table>
<tr><td>状态 · Status</td><td id="status">{{.Status}}</td></tr>
<tr><td>收到 · Received</td><td>{{at .ReceivedAt}}</td></tr>
{{if .LastDay}}<tr><td>答复期限 · Answer by</td><td>{{.LastDay}}</td></tr>{{end}}
{{if .CompletedAt}}<tr><td>完成 · Completed</td><td>{{when .CompletedAt}}</td></tr>{{end}}
</table>
{{if eq (print .Status) "awaiting_contact"}}{{range .Contacts}}{{if not .ConfirmedAt}}
<h2>确认新的联系方式 · Confirm your new {{.Field}}</h2>
<form method="post"><input type="hidden" name="access_key" value="{{$.Key}}"><input type="hidden" name="contact_field" value="{{.Field}}">
<p><label>发送到新{{if eq .Kind "phone"}}手机号码{{else}}邮箱{{end}}的验证码 · The code sent to the new {{if eq .Kind "phone"}}phone number{{else}}address{{end}}<br>
<input name="contact_code" id="contact-code-{{.Field}}" inputmode="numeric" autocomplete="one-time-code" required></label></p>
<button type="submit" id="confirm-{{.Field}}">确认 · Confirm</button></form>
{{end}}{{end}}{{end}}
{{with .Export}}
<h2>您的副本 · Your copy</h2>
{{if eq .Delivery "link"}}<p>{{if .PurgedAt}}下载链接已失效，文件已删除。· The download link has expired and the file is deleted.{{else}}<a id="download" href="{{.URL}}">下载 · Download {{.FileName}}</a> （{{when .ExpiresAt}} 前有效 · until {{when .ExpiresAt}}）{{end}}</p>
{{else}}<p>已作为附件发送到您的邮箱。· Sent to your mailbox as an attachment: {{.FileName}}.</p>{{end}}
{{if .Password}}<p>压缩包密码（仅显示这一次，请立即记下）· The archive password — shown only this once, write it down now:</p>
<p class="password" id="password">{{.Password}}</p>
{{else if .PasswordShownAt}}<p>密码已于 {{when .PasswordShownAt}} 显示过。如已遗失，请重新提交请求。· The password was shown on {{when .PasswordShownAt}}; if it is lost, make a new request.</p>
{{else if .PasswordAvailable}}<form method="post"><input type="hidden" name="access_key" value="{{$.Key}}"><input type="hidden" name="reveal" value="1">
<button type="submit" id="reveal">显示密码（仅一次）· Show the password (once)</button></form>
{{else}}<p>密码已不再保存。如需副本，请重新提交请求。· The password is no longer kept; for a copy, make a new request.</p>{{end}}
{{end}}
{{else}}
<form method="post"><p><label>访问密钥 · Access key<br><input name="access_key" autocomplete="off" required></label></p>
<p class="muted">输入验证码后获得的访问密钥。· The access key you were given when you entered your verification code.</p>
<button type="submit">查看 · Show</button></form>
{{end}}
</body></html>`))

var cst = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}()

type statusPageView struct {
	ID     string
	Key    string
	Error  string
	Status *jobs.SelfServiceStatus
}

func (s *server) handleStatusPage(w http.ResponseWriter, r *http.Request) {
	renderPage(w, statusPage, http.StatusOK, statusPageView{ID: r.PathValue("id")})
}

func (s *server) handleStatusPageSubmit(w http.ResponseWriter, r *http.Request) {
	if err := s.parseForm(w, r); err != nil {
		// The page says what the JSON error would: which field, and why.
		msg := "表单无法读取 · The form could not be read"
		var re *rights.Error
		if errors.As(err, &re) {
			sep := ": "
			for _, f := range re.Fields {
				msg += sep + f.Field + ": " + f.Reason
				sep = "; "
			}
		}
		renderPage(w, statusPage, http.StatusBadRequest, statusPageView{ID: r.PathValue("id"), Error: msg})
		return
	}
	id, key := r.PathValue("id"), strings.TrimSpace(r.PostForm.Get("access_key"))
	var contactErr string
	if code := strings.TrimSpace(r.PostForm.Get("contact_code")); code != "" {
		// The key is checked first; a wrong one falls through to the
		// status below, which answers it.
		if _, err := s.Pipeline.CheckAccessKey(r.Context(), id, key); err == nil {
			if _, err := s.Pipeline.ConfirmContact(r.Context(), id, r.PostForm.Get("contact_field"), code, rights.ActorRequester); err != nil {
				contactErr = problemText(err)
			}
		}
	}
	st, err := s.Pipeline.Status(r.Context(), id, key, r.PostForm.Get("reveal") == "1")
	view := statusPageView{ID: id, Key: key, Status: st, Error: contactErr}
	switch rights.ErrorCode(err) {
	case "":
	case rights.ENotFound:
		renderPage(w, statusPage, http.StatusNotFound, statusPageView{ID: id, Error: "编号或访问密钥不正确 · The reference or the access key is not right"})
		return
	case rights.EConflict:
		// The password is not ready, or already shown: show the status.
		view.Error = err.Error()
		if view.Status, err = s.Pipeline.Status(r.Context(), id, key, false); err != nil {
			s.error(w, r, err)
			return
		}
	default:
		s.error(w, r, err)
		return
	}
	renderPage(w, statusPage, http.StatusOK, view)
}

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

// problemText is an error as one line for a page: its message and each
// field's reason.
func problemText(err error) string {
	msg := rights.ErrorMessage(err)
	var re *rights.Error
	if errors.As(err, &re) {
		for _, f := range re.Fields {
			msg += "; " + f.Field + ": " + f.Reason
		}
	}
	return msg
}
