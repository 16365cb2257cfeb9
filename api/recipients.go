package api

import (
	"html/template"
	"mime"
	"net/http"
	"strings"

	"github.com/datarights/datarights/jobs"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage/stores"
)

// Acknowledgements of notices to third parties: by staff, on the page an
// emailed notice links to, or by a webhook recipient's signed callback.

type ackBody struct {
	Note string `json:"note"`
}

func (s *server) handleAcknowledgeNotice(w http.ResponseWriter, r *http.Request) {
	var body ackBody
	if _, err := s.decode(w, r, &body); err != nil {
		s.error(w, r, err)
		return
	}
	n, err := s.Pipeline.AcknowledgeNotice(r.Context(), staffName(r.Context()), r.PathValue("id"), r.PathValue("recipient"), body.Note)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.json(w, http.StatusOK, n)
}

func (s *server) handleRecipientCallback(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			s.error(w, r, &rights.Error{Code: rights.EInvalid, Message: "the body must be JSON",
				Fields: []rights.FieldProblem{{Field: "Content-Type", Reason: "must be application/json"}}})
			return
		}
	}
	n, err := s.Pipeline.AcknowledgeFromCallback(r.Context(), jobs.RecipientCallback{
		RequestID: r.PathValue("request_id"), Recipient: r.PathValue("recipient"),
		Method: r.Method, Signature: stores.SignatureHeadersFrom(r.Header),
		Body: r.Body,
	})
	if err != nil {
		if rights.ErrorCode(err) == rights.EUnauthorized {
			w.Header().Set("WWW-Authenticate", `Datarights-Signature realm="datarights"`)
		}
		s.error(w, r, err)
		return
	}
	s.json(w, http.StatusOK, map[string]any{"recipient": n.Recipient, "status": n.Status})
}

// The acknowledgement page. Opening the link changes nothing (mail
// scanners open links); the recipient confirms with the form's POST.

var ackPage = template.Must(template.New("ack").Parse(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>确认删除 · Confirm erasure</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;line-height:1.6;color:#222}
textarea{width:100%;min-height:5rem}button{font-size:1rem;padding:.5rem 1.5rem}.muted{color:#666}</style></head><body>
{{if .Missing}}
<h1>链接无效 · Link not valid</h1>
<p>此确认链接无效。如有疑问，请回复通知邮件。</p><p class="muted">This acknowledgement link is not valid. If in doubt, reply to the notice email.</p>
{{else if .Done}}
<h1>已确认 · Confirmed</h1>
<p>感谢您确认已删除请求 {{.RequestID}} 所涉及的个人信息。</p><p class="muted">Thank you for confirming the erasure for request {{.RequestID}}.</p>
{{else}}
<h1>确认删除 · Confirm erasure</h1>
<p>请求编号 {{.RequestID}}：请在删除我们向贵方提供的该用户的个人信息后确认。</p>
<p class="muted">Request {{.RequestID}}: confirm once you have deleted the personal information of this user that we provided to you.</p>
<form method="post"><p><label>备注（可选）· Note (optional)<br><textarea name="note" maxlength="2000"></textarea></label></p>
<p><button type="submit">确认已删除 · I confirm the erasure</button></p></form>
{{end}}</body></html>`))

type ackView struct {
	RequestID     string
	Missing, Done bool
}

func (s *server) renderAck(w http.ResponseWriter, status int, v ackView) {
	renderPage(w, ackPage, status, v)
}

func (s *server) handleAckPage(w http.ResponseWriter, r *http.Request) {
	n, err := s.Pipeline.NoticeForToken(r.Context(), r.PathValue("token"))
	if err != nil {
		if rights.ErrorCode(err) == rights.ENotFound {
			s.renderAck(w, http.StatusNotFound, ackView{Missing: true})
			return
		}
		s.error(w, r, err)
		return
	}
	s.renderAck(w, http.StatusOK, ackView{RequestID: n.RequestID, Done: n.AcknowledgedAt != nil})
}

func (s *server) handleAckSubmit(w http.ResponseWriter, r *http.Request) {
	if err := s.parseForm(w, r); err != nil {
		s.error(w, r, err)
		return
	}
	n, err := s.Pipeline.AcknowledgeByToken(r.Context(), r.PathValue("token"), strings.TrimSpace(r.PostForm.Get("note")))
	if err != nil {
		if rights.ErrorCode(err) == rights.ENotFound {
			s.renderAck(w, http.StatusNotFound, ackView{Missing: true})
			return
		}
		s.error(w, r, err)
		return
	}
	s.renderAck(w, http.StatusOK, ackView{RequestID: n.RequestID, Done: true})
}
