package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// The staff command-line client: `datarights requests …` talks to a running
// service's staff HTTP API, never to the database, so that it goes through
// the same roles, product scopes, four-eyes rule and audit trail as any
// other staff client.

const (
	urlEnvVar   = "DATARIGHTS_URL"
	tokenEnvVar = "DATARIGHTS_STAFF_TOKEN"
	defaultURL  = "http://127.0.0.1:8080"
	// recentEvents is how many audit events `show` prints; --json has all.
	recentEvents = 10
)

const requestsUsage = "datarights requests: say one of\n" +
	"  requests list [--status S] [--product P] [--type T] [--band B] [--channel C] [--assignee NAME|me|none] [--open]\n" +
	"                [--q ID-OR-TICKET-REF] [--sort due_at|-received_at] [--limit N] [--cursor C]\n" +
	"  requests show ID\n" +
	"  requests file --product P --type T --identity TYPE=VALUE… --delivery-email E --verification METHOD [--reference R]\n" +
	"                [--relation R] [--locale L] [--note N] [--ticket-ref T] [--correct FIELD=VALUE…] [--purpose NAME…]\n" +
	"                [--text T] [--concerns ID] [--receiver NAME] [--idempotency-key K]\n" +
	"  requests approve ID --note N [--evidence E]\n" +
	"  requests answer ID --answer TEXT   (a complaint's reply, an explanation; emailed as written)\n" +
	"  requests refuse ID --reason R --message M\n" +
	"  requests pause ID --reason R\n" +
	"  requests resume ID\n" +
	"  requests extend ID --days N --reason R\n" +
	"  requests assign ID NAME   (NAME \"\" unassigns)\n" +
	"  requests note ID TEXT     (an internal note, never emailed)\n" +
	"every verb takes -url (default $" + urlEnvVar + ", else " + defaultURL + ") and --json (the API's answer as is);\n" +
	"the token is read from $" + tokenEnvVar + " only, so that it stays out of shell history"

func runRequests(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError(requestsUsage)
	}
	verb, rest := args[0], args[1:]
	switch verb {
	case "list":
		return requestsList(ctx, rest, getenv, stdout, stderr)
	case "show":
		return requestsShow(ctx, rest, getenv, stdout, stderr)
	case "file":
		return requestsFile(ctx, rest, getenv, stdout, stderr)
	case "approve", "refuse", "pause", "resume", "extend", "answer":
		return requestsAction(ctx, verb, rest, getenv, stdout, stderr)
	case "assign", "note":
		return requestsAssignOrNote(ctx, verb, rest, getenv, stdout, stderr)
	case "help", "-h", "-help", "--help":
		return helpRequest(requestsUsage + "\n")
	}
	return usageError(fmt.Sprintf("datarights requests: unknown verb %q\n%s", verb, requestsUsage))
}

// requestsSynopsis is verb's lines of requestsUsage, so that `requests
// VERB -h` and `requests help` cannot disagree.
func requestsSynopsis(verb string) string {
	var lines []string
	in := false
	for _, line := range strings.Split(requestsUsage, "\n") {
		switch {
		case strings.HasPrefix(line, "  requests "):
			in = strings.HasPrefix(line, "  requests "+verb+" ") || line == "  requests "+verb
			if in {
				lines = append(lines, "datarights "+line[2:])
			}
		case in && strings.HasPrefix(line, "    "):
			// continuation lines line up under the first one's flags,
			// which "usage: datarights " moved right by 16.
			lines = append(lines, strings.Repeat(" ", 16)+line)
		default:
			in = false
		}
	}
	if len(lines) == 0 {
		return "datarights requests " + verb
	}
	return strings.Join(lines, "\n")
}

// clientFlags are the flags every verb has.
type clientFlags struct {
	*command
	url    *string
	json   *bool
	getenv func(string) string
	stderr io.Writer
}

// clientTrailer ends the help of every command that calls the API.
const clientTrailer = "the token is read from $" + tokenEnvVar + " only, so that it stays out of shell history"

func newClientFlags(verb string, getenv func(string) string, stderr io.Writer) *clientFlags {
	c := newCommand("requests "+verb, requestsSynopsis(verb), "")
	c.trailer = clientTrailer
	def := getenv(urlEnvVar)
	if def == "" {
		def = defaultURL
	}
	return &clientFlags{
		command: c,
		url:     c.fs.String("url", def, "the service's base URL ($"+urlEnvVar+" sets the default)"),
		json:    c.fs.Bool("json", false, "print the API's JSON answer instead of a table"),
		getenv:  getenv, stderr: stderr,
	}
}

// parse parses flags that may come before or after the positional
// arguments (`approve ID --note N` reads better than `approve --note N ID`)
// and returns the positional ones; it wants exactly npos of them.
func (c *clientFlags) parse(args []string, npos int, names string) ([]string, error) {
	pos, err := c.command.parse(args, 0, -1)
	if err != nil {
		return nil, err
	}
	if len(pos) != npos {
		if npos == 0 {
			return nil, c.mistake(fmt.Sprintf("unexpected argument %q", pos[0]))
		}
		return nil, c.mistake("say " + names)
	}
	return pos, nil
}

// client is a staff API client for the parsed -url and the token in the
// environment.
func (c *clientFlags) client() (*staffClient, error) {
	token := c.getenv(tokenEnvVar)
	if token == "" {
		return nil, usageError(fmt.Sprintf("%s: set %s to your staff token (it is never a flag, to keep it out of shell history)", c.fs.Name(), tokenEnvVar))
	}
	u, err := url.Parse(*c.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError(fmt.Sprintf("%s: -url %q is not an http(s) URL", c.fs.Name(), *c.url))
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		// The token would cross the network in clear: allowed (a private
		// network behind a proxy), but said.
		fmt.Fprintf(c.stderr, "warning: sending your staff token unencrypted to %s; use https\n", u.Host)
	}
	return &staffClient{base: strings.TrimSuffix(u.String(), "/"), token: token,
		http: &http.Client{Timeout: 60 * time.Second}}, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// staffClient calls the staff API with a bearer token.
type staffClient struct {
	base  string
	token string
	http  *http.Client
}

// apiError is the API's JSON error, or a non-JSON answer's status and start.
type apiError struct {
	Status    int
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
	Fields    []struct {
		Field  string `json:"field"`
		Reason string `json:"reason"`
	} `json:"fields"`
}

// Error is the message, then one `field: reason` line per field problem.
func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (HTTP %d", e.Message, e.Status)
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, ", request id %s", e.RequestID)
	}
	b.WriteString(")")
	for _, f := range e.Fields {
		fmt.Fprintf(&b, "\n  %s: %s", f.Field, f.Reason)
	}
	return b.String()
}

// apiAnswer is a successful call's status, headers and body.
type apiAnswer struct {
	status int
	header http.Header
	body   []byte
}

func (c *staffClient) do(ctx context.Context, method, path string, body any, header http.Header) (*apiAnswer, error) {
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var eb struct {
			Error *apiError `json:"error"`
		}
		if json.Unmarshal(raw, &eb) == nil && eb.Error != nil {
			eb.Error.Status = resp.StatusCode
			return nil, eb.Error
		}
		// Not the service's error (a proxy's page, say): show its start.
		text := strings.TrimSpace(string(raw))
		if len(text) > 200 {
			text = text[:200] + "…"
		}
		return nil, &apiError{Status: resp.StatusCode, Message: fmt.Sprintf("%s %s: %s %s", method, path, resp.Status, text)}
	}
	return &apiAnswer{status: resp.StatusCode, header: resp.Header, body: raw}, nil
}

// printJSON prints an answer indented; it is the API's JSON unchanged.
func printJSON(w io.Writer, raw []byte) error {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		_, err = w.Write(raw)
		return err
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

// requestView is the part of the API's request that the tables show.
type requestView struct {
	ID            string     `json:"id"`
	Product       string     `json:"product"`
	Type          string     `json:"type"`
	Channel       string     `json:"channel"`
	Status        string     `json:"status"`
	DeliveryEmail string     `json:"delivery_email"`
	Relation      string     `json:"requester_relation"`
	CreatedBy     string     `json:"created_by"`
	Note          string     `json:"note"`
	TicketRef     string     `json:"ticket_ref"`
	Assignee      string     `json:"assignee"`
	ReceivedAt    time.Time  `json:"received_at"`
	VerifiedAt    *time.Time `json:"verified_at"`
	DueAt         *time.Time `json:"due_at"`
	LastDay       string     `json:"last_day"`
	Band          string     `json:"sla_band"`
	CompletedAt   *time.Time `json:"completed_at"`
	BreachedAt    *time.Time `json:"breached_at"`
	Warning       string     `json:"deadline_warning"`
	Clock         struct {
		Pauses []struct {
			From   time.Time  `json:"from"`
			Until  *time.Time `json:"until"`
			Reason string     `json:"reason"`
			By     string     `json:"by"`
		} `json:"pauses"`
		Extensions []struct {
			Days   int    `json:"days"`
			Reason string `json:"reason"`
			By     string `json:"by"`
		} `json:"extensions"`
	} `json:"clock"`
	Refusal *struct {
		Reason  string `json:"reason"`
		Message string `json:"message"`
	} `json:"refusal"`
	Corrections map[string]string `json:"corrections"`
	Purposes    []string          `json:"purposes"`
	Tasks       []struct {
		ID        string `json:"id"`
		Store     string `json:"store"`
		Action    string `json:"action"`
		Status    string `json:"status"`
		Attempts  int    `json:"attempts"`
		LastError string `json:"last_error"`
		Report    *struct {
			Datasets []struct {
				Rows       int64 `json:"rows"`
				Deleted    int64 `json:"deleted"`
				Anonymized int64 `json:"anonymized"`
				Restricted int64 `json:"restricted"`
			} `json:"datasets"`
		} `json:"report"`
	} `json:"tasks"`
	FailedSteps []struct {
		Step       string     `json:"step"`
		FromStatus string     `json:"from_status"`
		ErrorClass string     `json:"error_class"`
		Error      string     `json:"error"`
		FailedAt   time.Time  `json:"failed_at"`
		RetriedAt  *time.Time `json:"retried_at"`
		RetriedBy  string     `json:"retried_by"`
	} `json:"failed_steps"`
	Audit []struct {
		At         time.Time      `json:"at"`
		Actor      string         `json:"actor"`
		Action     string         `json:"action"`
		FromStatus string         `json:"from_status"`
		ToStatus   string         `json:"to_status"`
		Detail     map[string]any `json:"detail"`
	} `json:"audit"`
}

// daysLeft is the days until the deadline counting today (1 on the last
// day, negative when overdue), or "-" when no clock runs: closed, paused
// (resuming moves the deadline) or without a deadline.
func (v *requestView) daysLeft(now time.Time) string {
	if v.DueAt == nil || v.Band == "closed" || v.Band == "paused" || v.Band == "no_deadline" {
		return "-"
	}
	d := v.DueAt.Sub(now)
	if d < 0 {
		return fmt.Sprintf("%d", int(math.Floor(d.Hours()/24)))
	}
	return fmt.Sprintf("%d", int(math.Ceil(d.Hours()/24)))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func when(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") }

func requestsList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cf := newClientFlags("list", getenv, stderr)
	status := cf.fs.String("status", "", "only requests in this status")
	product := cf.fs.String("product", "", "only this product's requests")
	typ := cf.fs.String("type", "", "only this right: access, copy, correct, delete, withdraw_consent, cancel_account")
	band := cf.fs.String("band", "", "only this deadline band: overdue, due_soon, on_track, paused, no_deadline, closed")
	sortBy := cf.fs.String("sort", "", "due_at (soonest deadline first) or -received_at (newest first, the default)")
	limit := cf.fs.Int("limit", 0, "requests per page, 1–200 (default 50)")
	cursor := cf.fs.String("cursor", "", "the next page, from the previous page's cursor")
	channel := cf.fs.String("channel", "", "only this channel: staff or self_service")
	assignee := cf.fs.String("assignee", "", "only requests assigned to this staff member; me for yours, none for nobody's")
	open := cf.fs.Bool("open", false, "only open requests (not completed, refused, cancelled or expired)")
	search := cf.fs.String("q", "", "an exact request id or ticket reference")
	if _, err := cf.parse(args, 0, ""); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	q := url.Values{}
	for k, v := range map[string]string{"status": *status, "product": *product, "type": *typ,
		"sla_band": *band, "sort": *sortBy, "cursor": *cursor, "channel": *channel, "assignee": *assignee, "q": *search} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if *limit != 0 {
		q.Set("limit", fmt.Sprint(*limit))
	}
	if *open {
		q.Set("open", "true")
	}
	path := "/api/v1/requests"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	ans, err := c.do(ctx, "GET", path, nil, nil)
	if err != nil {
		return err
	}
	if *cf.json {
		return printJSON(stdout, ans.body)
	}
	var page struct {
		Requests   []requestView `json:"requests"`
		NextCursor string        `json:"next_cursor"`
	}
	if err := json.Unmarshal(ans.body, &page); err != nil {
		return fmt.Errorf("the list is not the expected JSON: %w", err)
	}
	now := time.Now()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPRODUCT\tRIGHT\tSTATUS\tBAND\tLAST DAY\tDAYS LEFT\tASSIGNEE")
	for _, r := range page.Requests {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Product, r.Type, r.Status, dash(r.Band), dash(r.LastDay), r.daysLeft(now), dash(r.Assignee))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// The hint goes to stderr so that stdout stays one table.
	if page.NextCursor != "" {
		fmt.Fprintf(stderr, "more: --cursor %s\n", page.NextCursor)
	}
	return nil
}

func requestsShow(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cf := newClientFlags("show", getenv, stderr)
	pos, err := cf.parse(args, 1, "`requests show ID`")
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	ans, err := c.do(ctx, "GET", "/api/v1/requests/"+url.PathEscape(pos[0]), nil, nil)
	if err != nil {
		return err
	}
	if *cf.json {
		return printJSON(stdout, ans.body)
	}
	return printRequest(stdout, ans.body)
}

// printRequest prints a request's summary: what it is, where its deadline
// stands, its tasks, failed steps and latest audit events.
func printRequest(w io.Writer, raw []byte) error {
	var v requestView
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("the request is not the expected JSON: %w", err)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	row("ID", "%s", v.ID)
	row("PRODUCT", "%s", v.Product)
	row("RIGHT", "%s", v.Type)
	row("STATUS", "%s", v.Status)
	row("CHANNEL", "%s (filed by %s, requester: %s)", dash(v.Channel), dash(v.CreatedBy), dash(v.Relation))
	row("TICKET", "%s (assigned to %s)", dash(v.TicketRef), dash(v.Assignee))
	row("DELIVERY", "%s", dash(v.DeliveryEmail))
	row("RECEIVED", "%s", when(v.ReceivedAt))
	if v.VerifiedAt != nil {
		row("VERIFIED", "%s", when(*v.VerifiedAt))
	}
	switch {
	case v.DueAt != nil:
		left := ""
		if d := v.daysLeft(time.Now()); d != "-" {
			left = ", " + d + " days left"
		}
		row("DEADLINE", "last day %s (%s)%s", v.LastDay, dash(v.Band), left)
	default:
		row("DEADLINE", "none yet (%s)", dash(v.Band))
	}
	if v.Warning != "" {
		row("", "warning: %s", v.Warning)
	}
	if v.BreachedAt != nil {
		row("", "breached %s", when(*v.BreachedAt))
	}
	for _, p := range v.Clock.Pauses {
		until := "still paused"
		if p.Until != nil {
			until = "until " + when(*p.Until)
		}
		row("", "paused %s %s by %s: %s", when(p.From), until, p.By, p.Reason)
	}
	for _, e := range v.Clock.Extensions {
		row("", "extended %d days by %s: %s", e.Days, e.By, e.Reason)
	}
	if v.CompletedAt != nil {
		row("COMPLETED", "%s", when(*v.CompletedAt))
	}
	if v.Refusal != nil {
		row("REFUSED", "%s: %s", v.Refusal.Reason, v.Refusal.Message)
	}
	if len(v.Corrections) > 0 {
		fields := make([]string, 0, len(v.Corrections))
		for f := range v.Corrections {
			fields = append(fields, f)
		}
		sort.Strings(fields)
		for i, f := range fields {
			k := ""
			if i == 0 {
				k = "CORRECTIONS"
			}
			row(k, "%s → %s", f, v.Corrections[f])
		}
	}
	if len(v.Purposes) > 0 {
		row("PURPOSES", "%s", strings.Join(v.Purposes, ", "))
	}
	if v.Note != "" {
		row("NOTE", "%s", v.Note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(v.Tasks) > 0 {
		fmt.Fprintln(w, "\nTASKS")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "STORE\tACTION\tSTATUS\tATTEMPTS\tROWS\tLAST ERROR")
		for _, t := range v.Tasks {
			rows := "-"
			if t.Report != nil {
				var n, del, anon, restr int64
				for _, d := range t.Report.Datasets {
					n, del, anon, restr = n+d.Rows, del+d.Deleted, anon+d.Anonymized, restr+d.Restricted
				}
				rows = fmt.Sprint(n)
				if del+anon+restr > 0 {
					rows += fmt.Sprintf(" (%d deleted, %d anonymized, %d restricted)", del, anon, restr)
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", t.Store, t.Action, t.Status, t.Attempts, rows, dash(t.LastError))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	if len(v.FailedSteps) > 0 {
		fmt.Fprintln(w, "\nFAILED STEPS (requests resume ID runs the open ones again)")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "STEP\tON STATUS\tFAILED\tERROR\tRETRIED")
		for _, f := range v.FailedSteps {
			retried := "open"
			if f.RetriedAt != nil {
				retried = when(*f.RetriedAt) + " by " + f.RetriedBy
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s: %s\t%s\n", f.Step, f.FromStatus, when(f.FailedAt), f.ErrorClass, f.Error, retried)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	if len(v.Audit) > 0 {
		events := v.Audit
		title := "\nEVENTS"
		if len(events) > recentEvents {
			events = events[len(events)-recentEvents:]
			title = fmt.Sprintf("\nEVENTS (latest %d of %d; --json shows all)", recentEvents, len(v.Audit))
		}
		fmt.Fprintln(w, title)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, e := range events {
			what := strings.NewReplacer(".", " ", "_", " ").Replace(e.Action)
			if e.FromStatus != "" && e.ToStatus != "" && e.ToStatus != e.FromStatus {
				what += " → " + e.ToStatus
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", when(e.At), e.Actor, what, details(e.Detail))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// details is an audit event's detail as key=value words, keys sorted; it
// holds ids, counts and reasons, never personal data.
func details(d map[string]any) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		v := d[k]
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case []any, map[string]any:
			raw, _ := json.Marshal(v)
			s = string(raw)
		default:
			s = fmt.Sprint(v)
		}
		parts = append(parts, k+"="+s)
	}
	return strings.Join(parts, " ")
}

// pairsFlag is a repeated KEY=VALUE flag.
type pairsFlag map[string]string

func (p pairsFlag) String() string { return "" }
func (p pairsFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	p[strings.TrimSpace(k)] = v
	return nil
}

// listFlag is a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// ticket is POST /api/v1/requests's body; empty optional fields are left
// out so the service applies its defaults.
type ticket struct {
	Product           string            `json:"product"`
	Type              string            `json:"type"`
	Subject           ticketSubject     `json:"subject"`
	DeliveryEmail     string            `json:"delivery_email"`
	RequesterRelation string            `json:"requester_relation,omitempty"`
	Locale            string            `json:"locale,omitempty"`
	Verification      *ticketVerified   `json:"verification,omitempty"`
	Note              string            `json:"note,omitempty"`
	TicketRef         string            `json:"ticket_ref,omitempty"`
	Corrections       map[string]string `json:"corrections,omitempty"`
	Purposes          []string          `json:"purposes,omitempty"`
	Text              string            `json:"text,omitempty"`
	Concerns          string            `json:"concerns,omitempty"`
	Receiver          string            `json:"receiver,omitempty"`
}

type ticketSubject struct {
	Identities map[string]string `json:"identities"`
}

type ticketVerified struct {
	Method    string `json:"method"`
	Reference string `json:"reference,omitempty"`
}

func requestsFile(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cf := newClientFlags("file", getenv, stderr)
	var t ticket
	identities, corrections := pairsFlag{}, pairsFlag{}
	var purposes listFlag
	var verified ticketVerified
	cf.fs.StringVar(&t.Product, "product", "", "the product, e.g. webank")
	cf.fs.StringVar(&t.Type, "type", "", "the right: access, copy, correct, delete, withdraw_consent, cancel_account, transfer, explain, complaint")
	cf.fs.Var(identities, "identity", "TYPE=VALUE, an identity of the person, e.g. user_id=u-42 (repeat for more)")
	cf.fs.StringVar(&t.DeliveryEmail, "delivery-email", "", "where the result goes")
	cf.fs.StringVar(&verified.Method, "verification", "", "how you verified the requester, e.g. face_check, id_document")
	cf.fs.StringVar(&verified.Reference, "reference", "", "the verification's evidence on file (required unless --relation self)")
	cf.fs.StringVar(&t.RequesterRelation, "relation", "", "self (default), guardian, next_of_kin, agent")
	cf.fs.StringVar(&t.Locale, "locale", "", "zh-CN (default) or en: the language of the emails and report")
	cf.fs.StringVar(&t.Note, "note", "", "free text for staff")
	cf.fs.StringVar(&t.TicketRef, "ticket-ref", "", "the customer-service ticket number, to find the request by later")
	cf.fs.Var(corrections, "correct", "FIELD=VALUE, a correction (type correct; repeat for more)")
	cf.fs.Var(&purposes, "purpose", "a consent withdrawn (type withdraw_consent; repeat for more)")
	cf.fs.StringVar(&t.Text, "text", "", "the complaint, or the decision to explain (types complaint, explain)")
	cf.fs.StringVar(&t.Concerns, "concerns", "", "the request a complaint is about (its id)")
	cf.fs.StringVar(&t.Receiver, "receiver", "", "the receiving handler a transfer goes to (transfer_receivers)")
	key := cf.fs.String("idempotency-key", "", "the Idempotency-Key header (default: a new random one); reuse one to retry without filing twice")
	if _, err := cf.parse(args, 0, ""); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	t.Subject.Identities = identities
	if verified != (ticketVerified{}) {
		t.Verification = &verified
	}
	if len(corrections) > 0 {
		t.Corrections = corrections
	}
	t.Purposes = purposes
	if *key == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		*key = hex.EncodeToString(b)
	}
	ans, err := c.do(ctx, "POST", "/api/v1/requests", t, http.Header{"Idempotency-Key": {*key}})
	if err != nil {
		var api *apiError
		var op *net.OpError
		// A refused connection sent nothing; any other failure may have
		// lost the answer to a ticket that was filed.
		if !errors.As(err, &api) && !(errors.As(err, &op) && op.Op == "dial") {
			// No answer: the ticket may or may not be filed. The same key
			// files it at most once.
			return fmt.Errorf("%w\nno answer; retry with --idempotency-key %s to file it at most once", err, *key)
		}
		return err
	}
	if ans.header.Get("Idempotent-Replayed") == "true" {
		fmt.Fprintln(stderr, "already filed with this idempotency key: this is the first request")
	}
	if *cf.json {
		return printJSON(stdout, ans.body)
	}
	return printRequest(stdout, ans.body)
}

// requestsAction runs approve, refuse, pause, resume or extend on one request.
func requestsAction(ctx context.Context, verb string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cf := newClientFlags(verb, getenv, stderr)
	var body any
	var names string
	switch verb {
	case "approve":
		note := cf.fs.String("note", "", "why it may go ahead (audited)")
		evidence := cf.fs.String("evidence", "", "for a next-of-kin request: what you checked (death certificate, relationship)")
		body, names = &struct {
			Note     *string `json:"note"`
			Evidence *string `json:"evidence,omitempty"`
		}{note, evidence}, "`requests approve ID --note N`"
	case "answer":
		answer := cf.fs.String("answer", "", "the reply or explanation, in the request's language; emailed as written")
		body, names = &struct {
			Answer *string `json:"answer"`
		}{answer}, "`requests answer ID --answer TEXT`"
	case "refuse":
		reason := cf.fs.String("reason", "", "the ground: legal_obligation, national_security, public_interest, criminal_proceedings,\n"+
			"abuse_of_rights, protect_life_or_property, harm_to_others, trade_secrets, identity_not_verified, excessive_or_repeated")
		message := cf.fs.String("message", "", "your explanation, emailed to the requester")
		body, names = &struct {
			Reason  *string `json:"reason"`
			Message *string `json:"message"`
		}{reason, message}, "`requests refuse ID --reason R --message M`"
	case "pause":
		reason := cf.fs.String("reason", "", "what the request waits for")
		body, names = &struct {
			Reason *string `json:"reason"`
		}{reason}, "`requests pause ID --reason R`"
	case "resume":
		body, names = struct{}{}, "`requests resume ID`"
	case "extend":
		days := cf.fs.Int("days", 0, "days added to the period (within the product's max_extension_days in total)")
		reason := cf.fs.String("reason", "", "why more time is needed (audited)")
		body, names = &struct {
			Days   *int    `json:"days"`
			Reason *string `json:"reason"`
		}{days, reason}, "`requests extend ID --days N --reason R`"
	}
	pos, err := cf.parse(args, 1, names)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	id := pos[0]
	ans, err := c.do(ctx, "POST", "/api/v1/requests/"+url.PathEscape(id)+"/"+verb, body, nil)
	if err != nil {
		return err
	}
	if *cf.json {
		return printJSON(stdout, ans.body)
	}
	var v requestView
	if err := json.Unmarshal(ans.body, &v); err != nil {
		return fmt.Errorf("the request is not the expected JSON: %w", err)
	}
	fmt.Fprintf(stdout, "%s: %s; status %s, last day %s (%s)\n", v.ID, pastTense[verb], v.Status, dash(v.LastDay), dash(v.Band))
	return nil
}

var pastTense = map[string]string{"approve": "approved", "refuse": "refused", "pause": "paused", "resume": "resumed", "extend": "extended",
	"answer": "answered"}

// requestsAssignOrNote assigns a request (`assign ID NAME`) or adds an
// internal note to it (`note ID TEXT`).
func requestsAssignOrNote(ctx context.Context, verb string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cf := newClientFlags(verb, getenv, stderr)
	names := "`requests assign ID NAME`"
	if verb == "note" {
		names = "`requests note ID TEXT`"
	}
	pos, err := cf.parse(args, 2, names)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	id := url.PathEscape(pos[0])
	if verb == "note" {
		ans, err := c.do(ctx, "POST", "/api/v1/requests/"+id+"/notes", map[string]string{"body": pos[1]}, nil)
		if err != nil {
			return err
		}
		if *cf.json {
			return printJSON(stdout, ans.body)
		}
		var n struct {
			ID int64 `json:"id"`
		}
		if err := json.Unmarshal(ans.body, &n); err != nil {
			return fmt.Errorf("the note is not the expected JSON: %w", err)
		}
		fmt.Fprintf(stdout, "%s: note %d added\n", pos[0], n.ID)
		return nil
	}
	ans, err := c.do(ctx, "POST", "/api/v1/requests/"+id+"/assign", map[string]string{"assignee": pos[1]}, nil)
	if err != nil {
		return err
	}
	if *cf.json {
		return printJSON(stdout, ans.body)
	}
	var v requestView
	if err := json.Unmarshal(ans.body, &v); err != nil {
		return fmt.Errorf("the request is not the expected JSON: %w", err)
	}
	if v.Assignee == "" {
		fmt.Fprintf(stdout, "%s: unassigned\n", v.ID)
	} else {
		fmt.Fprintf(stdout, "%s: assigned to %s\n", v.ID, v.Assignee)
	}
	return nil
}
