package center

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/datarights/datarights/api"
	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/jobs"
	"github.com/datarights/datarights/rights"
)

func textProblem(s string) bool { return api.TextProblem(s) != "" }

// productCard is one product on the landing page.
type productCard struct {
	Name, Label, Answer string
}

func (s *server) handleHome(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(w, r, "home.title")
	var cards []productCard
	for _, prod := range s.Pipeline.Settings().Products {
		cards = append(cards, productCard{Name: prod.Name, Label: prod.Label(), Answer: s.answerTime(p.Lang, prod.Name)})
	}
	p.Data = cards
	s.render(w, r, http.StatusOK, "home", p)
}

// answerTime is a product's promise in words: "within 15 working days of
// confirming your email address".
func (s *server) answerTime(lang, product string) string {
	policy := s.Pipeline.Policy(product)
	unit := "answer.calendar_days"
	if policy.Kind == rights.WorkingDays {
		unit = "answer.working_days"
	}
	from := "answer.from_received"
	if policy.ClockStart == rights.ClockVerified {
		from = "answer.from_verified"
	}
	return translate(lang, "answer.within", translate(lang, unit, policy.Days), translate(lang, from))
}

// rightCard is one right on a product's page.
type rightCard struct {
	Type                 rights.Type
	Name, Explain, Needs string
	Href                 string
	// InPerson: the right needs stronger proof than an emailed code;
	// customer service takes it.
	InPerson bool
	// NoReceivers: a transfer, but the product has no receiving company
	// configured; the page says so rather than hide the right.
	NoReceivers bool
}

type productData struct {
	Name, Label, Answer string
	Rights              []rightCard
}

func (s *server) product(r *http.Request) (config.Product, bool) {
	return s.Pipeline.Settings().Product(r.PathValue("product"))
}

func (s *server) handleProduct(w http.ResponseWriter, r *http.Request) {
	prod, ok := s.product(r)
	if !ok {
		s.handleNotFound(w, r)
		return
	}
	p := s.newPage(w, r, "product.title", prod.Label())
	d := productData{Name: prod.Name, Label: prod.Label(), Answer: s.answerTime(p.Lang, prod.Name)}
	for _, t := range prod.RightsOffered() {
		d.Rights = append(d.Rights, rightCard{Type: t, Name: rightName(p.Lang, t), Explain: p.T("right." + string(t) + ".explain"),
			Needs: p.T("right." + string(t) + ".needs"), Href: "/privacy/" + url.PathEscape(prod.Name) + "/" + url.PathEscape(string(t)),
			InPerson: !s.Pipeline.SelfServiceOffers(t), NoReceivers: !s.transfers(prod.Name, t)})
	}
	p.Data = d
	s.render(w, r, http.StatusOK, "product", p)
}

func rightName(lang string, t rights.Type) string { return translate(lang, "right."+string(t)+".name") }

// formData is the form filing one right.
type formData struct {
	Product, ProductLabel, Answer string
	Right                         rights.Type
	RightName, Explain            string
	Action                        string
	Email                         string
	Purposes                      []option
	Fields                        []option
	Warning                       string
	// Receivers are the companies a transfer may go to, each with what it
	// does with the data and on which basis (PIPL Art. 45): the person
	// knows where their data goes before choosing.
	Receivers []receiverOption
	// Text is a complaint's or explain request's words (TextLabel and
	// TextHelp say which); Concerns the reference of the request a
	// complaint is about.
	TextLabel, TextHelp, Text string
	TextMax                   int
	Concerns                  string
	AsksConcerns              bool
}

// receiverOption is one company a transfer may go to.
type receiverOption struct {
	Name, Label, Purpose, LegalBasis string
	Checked                          bool
}

// option is a consent purpose to withdraw or a field to correct.
type option struct {
	Name, Label, Value string
	Checked            bool
}

// offered finds the product and right of the path, when the product
// offers it.
func (s *server) offered(r *http.Request) (config.Product, rights.Type, bool) {
	prod, ok := s.product(r)
	if !ok {
		return prod, "", false
	}
	t := rights.Type(r.PathValue("right"))
	return prod, t, slices.Contains(prod.RightsOffered(), t) && s.Pipeline.SelfServiceOffers(t) && s.transfers(prod.Name, t)
}

// transfers is false for a transfer from a product with no receiving
// company configured: there is nothing to choose, and the intake would
// refuse every request.
func (s *server) transfers(product string, t rights.Type) bool {
	return t != rights.TypeTransfer || len(s.Pipeline.Settings().ReceiversFor(product)) > 0
}

func (s *server) formFor(lang string, prod config.Product, t rights.Type, form url.Values) formData {
	d := formData{Product: prod.Name, ProductLabel: prod.Label(), Answer: s.answerTime(lang, prod.Name), Right: t,
		RightName: rightName(lang, t), Explain: translate(lang, "right."+string(t)+".explain"),
		Action: "/privacy/" + url.PathEscape(prod.Name) + "/" + url.PathEscape(string(t)), Email: form.Get("email")}
	switch t {
	case rights.TypeWithdrawConsent:
		chosen := form["purpose"]
		for _, pur := range s.Pipeline.Settings().PurposesFor(prod.Name) {
			d.Purposes = append(d.Purposes, option{Name: pur.Name, Label: pur.Label.In(lang), Checked: slices.Contains(chosen, pur.Name)})
		}
	case rights.TypeCorrect:
		fields := s.Pipeline.Settings().CorrectableFields(prod.Name)
		names := make([]string, 0, len(fields))
		for name := range fields {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			d.Fields = append(d.Fields, option{Name: name, Label: fieldLabel(lang, fields[name]), Value: form.Get("correct." + name)})
		}
	case rights.TypeDelete, rights.TypeCancelAccount:
		d.Warning = translate(lang, "right."+string(t)+".warning")
	case rights.TypeTransfer:
		for _, rc := range s.Pipeline.Settings().ReceiversFor(prod.Name) {
			d.Receivers = append(d.Receivers, receiverOption{Name: rc.Name, Label: rc.Label(), Purpose: rc.Purpose.In(lang),
				LegalBasis: rc.LegalBasis.In(lang), Checked: form.Get("receiver") == rc.Name})
		}
	case rights.TypeExplain, rights.TypeComplaint:
		d.TextLabel = translate(lang, "form.text."+string(t))
		d.TextHelp = translate(lang, "form.text_help", rights.MaxDetailText, rights.MaxDetailText/3)
		d.Text, d.TextMax = form.Get("text"), rights.MaxDetailText
		d.AsksConcerns, d.Concerns = t == rights.TypeComplaint, form.Get("concerns")
	}
	return d
}

// fieldLabel names a correctable field for people: its configured label,
// else the catalogue's word for it, else its name.
func fieldLabel(lang string, rule config.FieldRule) string {
	if l := rule.Label.In(lang); l != "" {
		return capitalize(l)
	}
	if _, ok := catalogue["field."+rule.Field]; ok {
		return translate(lang, "field."+rule.Field)
	}
	return rule.Field
}

func (s *server) handleForm(w http.ResponseWriter, r *http.Request) {
	prod, t, ok := s.offered(r)
	if !ok {
		s.handleNotFound(w, r)
		return
	}
	p := s.newPage(w, r, "form.title", rightName(pickLanguage(r), t), prod.Label())
	p.Data = s.formFor(p.Lang, prod, t, url.Values{})
	s.render(w, r, http.StatusOK, "form", p)
}

// handleFile files the request through the same intake as the JSON
// self-service API, its limits included, then asks for the emailed code.
func (s *server) handleFile(w http.ResponseWriter, r *http.Request) {
	prod, t, ok := s.offered(r)
	if !ok {
		s.handleNotFound(w, r)
		return
	}
	lang := pickLanguage(r)
	form := r.PostForm
	in := rights.Intake{Product: prod.Name, Type: t, Locale: lang, Relation: rights.RelationSelf}
	if email := strings.TrimSpace(form.Get("email")); email != "" {
		in.Identities = map[string]string{"email": email}
	}
	switch t {
	case rights.TypeWithdrawConsent:
		in.Purposes = form["purpose"]
	case rights.TypeCorrect:
		for key, values := range form {
			field, ok := strings.CutPrefix(key, "correct.")
			if !ok || len(values) == 0 || strings.TrimSpace(values[0]) == "" {
				continue
			}
			if in.Corrections == nil {
				in.Corrections = map[string]string{}
			}
			in.Corrections[field] = strings.TrimSpace(values[0])
		}
	case rights.TypeTransfer:
		in.Receiver = form.Get("receiver")
	case rights.TypeExplain, rights.TypeComplaint:
		// Browsers send a textarea's line breaks as CRLF; stored as LF, the
		// text counts against the limit as the API's would and reads the
		// same in the console and the answer's email.
		in.Text = strings.ReplaceAll(form.Get("text"), "\r\n", "\n")
		if t == rights.TypeComplaint {
			// A reference copied from a page or an email, perhaps with
			// spaces around it or in capitals.
			in.Concerns = strings.ToLower(strings.TrimSpace(form.Get("concerns")))
		}
	}
	var (
		req *rights.Request
		err error
	)
	switch {
	case t == rights.TypeCorrect && len(in.Corrections) == 0:
		err = &rights.Error{Code: rights.EInvalid, Fields: []rights.FieldProblem{{Field: "corrections", Reason: "required"}}}
	case t == rights.TypeWithdrawConsent && len(in.Purposes) == 0:
		err = &rights.Error{Code: rights.EInvalid, Fields: []rights.FieldProblem{{Field: "purposes", Reason: "required"}}}
	default:
		req, err = s.Pipeline.SubmitSelfService(r.Context(), in, s.Client(r))
	}
	if err != nil {
		p := s.newPage(w, r, "form.title", rightName(lang, t), prod.Label())
		p.Data = s.formFor(lang, prod, t, form)
		p.Error, p.Fields = s.problem(r, lang, err)
		setRetryAfter(w, err)
		s.render(w, r, api.HTTPStatus(err), "form", p)
		return
	}
	http.Redirect(w, r, requestPath(req.ID)+"/verify", http.StatusSeeOther)
}

func requestPath(id string) string { return "/privacy/requests/" + url.PathEscape(id) }

func setRetryAfter(w http.ResponseWriter, err error) {
	var re *rights.Error
	if errors.As(err, &re) && re.RetryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int(re.RetryAfter.Seconds()+0.5)))
	}
}

type verifyData struct {
	ID, Action string
	Minutes    int
	Digits     int
}

func (s *server) verifyPage(w http.ResponseWriter, r *http.Request) *page {
	p := s.newPage(w, r, "verify.title")
	id := r.PathValue("id")
	p.Data = verifyData{ID: id, Action: requestPath(id) + "/verify", Digits: jobs.CodeDigits,
		Minutes: int(s.Pipeline.Settings().SelfService.CodeTTL / time.Minute)}
	return p
}

func (s *server) handleVerifyForm(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "verify", s.verifyPage(w, r))
}

// handleVerify checks the emailed code with the pipeline's VerifyCode (its
// per-request, per-mailbox and per-network limits); the right code's access
// key goes into a cookie for this request's pages only.
func (s *server) handleVerify(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	code := strings.TrimSpace(r.PostForm.Get("code"))
	var err error
	var key string
	if !jobs.WellFormedCode(code) {
		err = &rights.Error{Code: rights.EInvalid, Fields: []rights.FieldProblem{{Field: "code", Reason: "malformed"}}}
	} else {
		_, key, err = s.Pipeline.VerifyCode(r.Context(), id, code, s.Client(r))
	}
	if err != nil {
		p := s.verifyPage(w, r)
		p.Error, p.Fields = s.problem(r, p.Lang, err)
		setRetryAfter(w, err)
		s.render(w, r, api.HTTPStatus(err), "verify", p)
		return
	}
	s.setAccess(w, r, id, key)
	http.Redirect(w, r, requestPath(id), http.StatusSeeOther)
}

// accessMaxAge is how long the browser keeps a request's access key.
const accessMaxAge = 90 * 24 * time.Hour

// setAccess keeps the access key to request id in a cookie that only that
// request's pages receive: HttpOnly (no script reads it), SameSite=Strict
// (no other site's link or form sends it), Secure over https. The key is
// never in a URL.
func (s *server) setAccess(w http.ResponseWriter, r *http.Request, id, key string) {
	http.SetCookie(w, &http.Cookie{Name: accessCookie, Value: key, Path: requestPath(id),
		MaxAge: int(accessMaxAge.Seconds()), HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteStrictMode})
}

func (s *server) clearAccess(w http.ResponseWriter, r *http.Request, id string) {
	http.SetCookie(w, &http.Cookie{Name: accessCookie, Path: requestPath(id), MaxAge: -1,
		HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteStrictMode})
}

func accessKey(r *http.Request) string {
	c, err := r.Cookie(accessCookie)
	if err != nil || len(c.Value) > 200 {
		return ""
	}
	return c.Value
}

type keyData struct {
	ID, Action, Here string
}

// keyPage asks for the access key: the browser holds none for the request
// (another browser, cleared cookies), or arrived from an email's link, which
// a SameSite=Strict cookie does not follow: the "open" link does.
func (s *server) keyPage(w http.ResponseWriter, r *http.Request, status int, errKey string) {
	p := s.newPage(w, r, "key.title")
	id := r.PathValue("id")
	p.Data = keyData{ID: id, Action: requestPath(id) + "/key", Here: requestPath(id)}
	if errKey != "" {
		p.Error = p.T(errKey)
	}
	s.render(w, r, status, "key", p)
}

func (s *server) handleStatus(w http.ResponseWriter, r *http.Request) {
	s.showStatus(w, r, false, "")
}

// showStatus shows the request the browser's key opens; reveal shows the
// copy's password, once.
func (s *server) showStatus(w http.ResponseWriter, r *http.Request, reveal bool, errText string) {
	id, key := r.PathValue("id"), accessKey(r)
	if key == "" {
		s.keyPage(w, r, http.StatusOK, "")
		return
	}
	st, err := s.Pipeline.Status(r.Context(), id, key, reveal)
	lang := pickLanguage(r)
	if reveal && rights.ErrorCode(err) == rights.EConflict {
		errText = translate(lang, "password.conflict")
		st, err = s.Pipeline.Status(r.Context(), id, key, false)
	}
	switch rights.ErrorCode(err) {
	case "":
	case rights.ENotFound:
		// A key for another request, or one no longer valid: forget it.
		s.clearAccess(w, r, id)
		s.keyPage(w, r, http.StatusNotFound, "error.key")
		return
	default:
		msg, _ := s.problem(r, lang, err)
		p := s.newPage(w, r, "error.title")
		p.Error = msg
		s.render(w, r, api.HTTPStatus(err), "error", p)
		return
	}
	p := s.newPage(w, r, "status.title")
	p.Error = errText
	p.Data = s.statusData(p.Lang, st)
	s.render(w, r, http.StatusOK, "status", p)
}

// handleKey takes an access key typed in (from the JSON API, or another
// browser) and keeps it in the cookie.
func (s *server) handleKey(w http.ResponseWriter, r *http.Request) {
	id, key := r.PathValue("id"), strings.TrimSpace(r.PostForm.Get("access_key"))
	if _, err := s.Pipeline.CheckAccessKey(r.Context(), id, key); err != nil {
		if rights.ErrorCode(err) == rights.ENotFound {
			s.keyPage(w, r, http.StatusNotFound, "error.key")
			return
		}
		msg, _ := s.problem(r, pickLanguage(r), err)
		p := s.newPage(w, r, "error.title")
		p.Error = msg
		s.render(w, r, api.HTTPStatus(err), "error", p)
		return
	}
	s.setAccess(w, r, id, key)
	http.Redirect(w, r, requestPath(id), http.StatusSeeOther)
}

// handlePassword shows the copy's password, once: in this answer only
// (not stored, not cached, not redirected to).
func (s *server) handlePassword(w http.ResponseWriter, r *http.Request) {
	s.showStatus(w, r, true, "")
}

// handleContact confirms a new address with the code sent to it.
func (s *server) handleContact(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.Pipeline.CheckAccessKey(r.Context(), id, accessKey(r)); err != nil {
		s.keyPage(w, r, http.StatusNotFound, "error.key")
		return
	}
	code := strings.TrimSpace(r.PostForm.Get("code"))
	var err error
	if !jobs.WellFormedCode(code) {
		err = &rights.Error{Code: rights.EInvalid, Fields: []rights.FieldProblem{{Field: "code", Reason: "malformed"}}}
	} else {
		_, err = s.Pipeline.ConfirmContact(r.Context(), id, r.PostForm.Get("field"), code, rights.ActorRequester)
	}
	if err != nil {
		msg, fields := s.problem(r, pickLanguage(r), err)
		if f := fields["code"]; f != "" {
			msg = f
		}
		s.showStatus(w, r, false, msg)
		return
	}
	http.Redirect(w, r, requestPath(id), http.StatusSeeOther)
}

// handleForget removes the request's key from this browser (a shared
// computer).
func (s *server) handleForget(w http.ResponseWriter, r *http.Request) {
	s.clearAccess(w, r, r.PathValue("id"))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// handleLegacyStatus sends the old status page's links to the center.
func (s *server) handleLegacyStatus(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, requestPath(r.PathValue("id")), http.StatusSeeOther)
}

// capitalize starts a label with a capital letter, as a form's labels do
// ("city" in a sentence, "City" above its field).
func capitalize(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}
