package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/console"
	"github.com/datarights/datarights/demo"
	"github.com/datarights/datarights/keyring"
	"github.com/datarights/datarights/storage"
	"github.com/datarights/datarights/storage/localpg"
)

const (
	devDir             = ".datarights-dev"
	devStaffToken      = "dev-staff-token"
	devDefaultDatabase = "datarights_dev"
	devDefaultBank     = "datarights_demo_bank"
	// devDefaultRuntimeRole is the role the service connects as on
	// devDefaultDatabase (planDevDatabases derives it as for any other).
	devDefaultRuntimeRole = "datarights_dev_runtime"
	localPostgres         = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	// devReceiverPlaceholder is the demo transfer receiver's URL in the
	// configuration file: dev serves the receiver on a port it picks at
	// each start and puts that port in its place (devReceiverURL), so
	// the file stays the same from one start to the next.
	devReceiverPlaceholder = "http://127.0.0.1:0/transfers"
)

// runDev runs everything with local defaults: a Postgres (DATABASE_URL, the
// one on localhost:5432, or a private one it starts), the demo bank, a demo
// configuration, the API and the workers.
func runDev(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	// No -config: dev writes its own configuration (DIR/datarights.yaml);
	// an edited one it keeps, so that is where overrides go.
	c := newCommand("dev", "datarights dev [-dir DIR] [-addr HOST:PORT] [-fresh]",
		"run the API and the workers with local defaults and a demo bank, no setup needed.\n"+
			"Postgres: DATABASE_URL if set, else the one on 127.0.0.1:5432, else a private one started in DIR/postgres.\n"+
			"A DATABASE_URL naming a database (postgres://…/NAME) is the service's database, created if absent; the\n"+
			"demo bank is NAME_demo_bank beside it (or DATARIGHTS_DEMO_DSN). Without a name: datarights_dev and\n"+
			"datarights_demo_bank. Two instances with two databases and two -dir share nothing.\n"+
			"DIR/datarights.yaml is written when absent or unchanged since dev wrote it; an edited one is kept.")
	dir := c.fs.String("dir", devDir, "directory of this instance's configuration, secret key, data, outbox and private Postgres")
	addr := c.fs.String("addr", "", "address to listen on; 127.0.0.1:0 picks a free port, which the printed URLs say\n"+
		"(default: DATARIGHTS_HTTP_ADDR, else http.addr of DIR/datarights.yaml: 127.0.0.1:8080)")
	fresh := c.fs.Bool("fresh", false, "reset the demo first: drop and recreate the service and demo bank databases (only\n"+
		"databases dev created) and write a new DIR/datarights.yaml")
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	logger := newLogger(stdout)
	// 0755: as root, the private Postgres runs as the postgres account and
	// must be able to reach its directory inside this one. What is private
	// (the configuration, the data directory) is created 0600/0700 within.
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	absDir, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}

	databaseURL := getenv("DATABASE_URL")
	server := localPostgres
	if databaseURL == "" {
		if err := ping(ctx, server); err != nil {
			fmt.Fprintf(stderr, "no Postgres on 127.0.0.1:5432 (%v); starting a private one in %s\n", shortErr(err), filepath.Join(absDir, "postgres"))
			srv, err := localpg.Start(ctx, localpg.Config{Dir: filepath.Join(absDir, "postgres"), Logger: logger})
			if err != nil {
				return fmt.Errorf("start a private Postgres: %w", err)
			}
			defer srv.Stop(context.WithoutCancel(ctx)) //nolint:errcheck // best effort on the way out
			server = srv.URL("postgres")
		}
	}
	dbs, err := planDevDatabases(databaseURL, server, getenv("DATARIGHTS_DEMO_DSN"))
	if err != nil {
		return err
	}
	var freshDid string
	if *fresh {
		if freshDid, err = freshDevDatabases(ctx, dbs); err != nil {
			return err
		}
	} else {
		if err := ensureDevDatabase(ctx, dbs.service, "service database"); err != nil {
			return err
		}
		if err := ensureDevDatabase(ctx, dbs.bank, "demo bank"); err != nil {
			return err
		}
	}
	// The two roles, as in production: migrations run on the admin
	// connection and the service as a role that can only append to the
	// audit trail. A server where we may not create roles gets one role.
	serviceURL, migrateURL := dbs.service.url, dbs.service.url
	if runtimeURL, err := ensureRuntimeRole(ctx, dbs.service.url, dbs.role); err != nil {
		fmt.Fprintf(stderr, "warning: cannot use the runtime role %s (%v); running as one role, which could rewrite the audit trail\n", dbs.role, shortErr(err))
		migrateURL = ""
	} else {
		serviceURL = runtimeURL
	}
	// Seeding only adds what is missing, under a lock in the bank's own
	// database: it never drops or rewrites what another instance uses.
	if err := demo.Seed(ctx, dbs.bank.url); err != nil {
		return fmt.Errorf("seed demo bank: %w", err)
	}

	// The demo's receiving handler for transfers (data/transfers-received).
	receiverURL, err := startDevReceiver(ctx, filepath.Join(absDir, "data", "transfers-received"))
	if err != nil {
		return fmt.Errorf("start the demo transfer receiver: %w", err)
	}
	path := filepath.Join(absDir, "datarights.yaml")
	yaml := devConfigHeader + migrateYAML(migrateURL) + demo.PolicyYAML(serviceURL, dbs.bank.url, filepath.Join(absDir, "data")) +
		demo.NewTypesYAML(devReceiverPlaceholder) + devStaffYAML()
	kept, err := writeDevConfig(path, yaml, *fresh)
	if err != nil {
		return err
	}
	if *fresh {
		fmt.Fprintf(stderr, "--fresh: %s; wrote a new %s\n", freshDid, path)
	}
	if kept {
		fmt.Fprintf(stderr, "keeping %s: it was edited since datarights dev wrote it (datarights dev -fresh writes a new one)\n", path)
	}
	token := getenv("DATARIGHTS_STAFF_TOKEN")
	if token == "" {
		token = devStaffToken
	}
	secretKey, err := devSecretKey(absDir, getenv)
	if err != nil {
		return err
	}
	devenv := func(k string) string {
		switch k {
		case "DATABASE_URL", config.MigrateEnvVar:
			return "" // the demo config names the service database
		case "DATARIGHTS_STAFF_TOKEN":
			return token
		case keyring.EnvVar:
			return secretKey
		case "DEMO_TRANSFER_SECRET":
			return devTransferSecret // the demo receiver's
		}
		return getenv(k)
	}
	cfg, err := config.Load(path, devenv)
	if err != nil {
		if kept {
			return fmt.Errorf("%w\n(the file was edited; datarights dev -fresh writes a new one)", err)
		}
		return err
	}
	if kept && databaseName(cfg.DatabaseURL) != dbs.service.name {
		fmt.Fprintf(stderr, "warning: %s names database %q, not %s, which dev set up for this instance\n", path, databaseName(cfg.DatabaseURL), dbs.service.name)
	}
	for _, r := range cfg.TransferReceivers {
		if r.Webhook != nil && r.Webhook.URL == devReceiverPlaceholder {
			r.Webhook.URL = receiverURL
		}
	}
	// Listen before serving, so the address is known when the pipeline is
	// built: with 127.0.0.1:0 the links in emails (http.public_url) must
	// carry the port the system picked, not :0.
	if *addr != "" {
		cfg.HTTP.Addr = *addr
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s (choose another with -addr, e.g. -addr 127.0.0.1:0): %w", cfg.HTTP.Addr, err)
	}
	defer ln.Close()
	cfg.HTTP.Addr = ln.Addr().String()
	if !cfg.HTTP.PublicURLSet {
		cfg.HTTP.PublicURL = "http://" + cfg.HTTP.Addr
	}
	return serveWith(ctx, cfg, logger, true, serveHooks{Listener: ln, Ready: func(addr string) {
		links, err := devSigninLinks(ctx, cfg)
		if err != nil {
			fmt.Fprintf(stderr, "warning: no console sign-in links (%v); sign in with a staff token instead\n", shortErr(err))
		}
		fmt.Fprint(stderr, devBanner(addr, token, path, cfg, links))
	}})
}

// databaseName is the database a postgres:// URL names, or "".
func databaseName(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.TrimPrefix(u.Path, "/")
}

// devStaff are the demo's staff, one per role, plus a second approver for
// the four-eyes rule. Their tokens are fixed: dev runs on one machine with
// demo data only.
var devStaff = []struct{ name, role, token string }{
	{"dev-agent", "agent", "dev-agent-token"},
	{"dev-approver", "approver", "dev-approver-token"},
	{"dev-auditor", "auditor", "dev-auditor-token"},
	{"dev-admin", "admin", "dev-admin-token"},
}

func devStaffYAML() string {
	var b strings.Builder
	b.WriteString("staff_tokens:\n")
	for _, s := range devStaff {
		fmt.Fprintf(&b, "  - {name: %s, role: %s, sha256: %s}\n", s.name, s.role, config.HashToken(s.token))
	}
	return b.String()
}

// devSigninLinks makes a one-time console sign-in link for each demo
// staff member, valid for a day: the banner prints them.
func devSigninLinks(ctx context.Context, cfg *config.Config) (map[string]string, error) {
	db, err := storage.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	links := map[string]string{}
	for _, s := range devStaff {
		link, err := console.NewSigninLink(ctx, db.Pool, s.name, "dev", time.Now(), 24*time.Hour)
		if err != nil {
			return nil, err
		}
		links[s.name] = link
	}
	return links, nil
}

func devBanner(addr, token, path string, cfg *config.Config, links map[string]string) string {
	var staff strings.Builder
	fmt.Fprintf(&staff, "    %-13s %-9s %s\n", "env", "approver", token)
	for _, s := range devStaff {
		fmt.Fprintf(&staff, "    %-13s %-9s %s\n", s.name, s.role, s.token)
	}
	var signin strings.Builder
	for _, s := range devStaff {
		if link, ok := links[s.name]; ok {
			fmt.Fprintf(&signin, "    %-9s http://%s%s\n", s.role, addr, link)
		}
	}
	if signin.Len() == 0 {
		fmt.Fprintf(&signin, "    paste a staff token below at http://%s/console/signin\n", addr)
	}
	// console link reads the file, whose http.addr is not where -addr put
	// this instance.
	env := ""
	if !cfg.HTTP.PublicURLSet && cfg.HTTP.Addr != config.DefaultHTTPAddr {
		env = "DATARIGHTS_PUBLIC_URL=" + cfg.HTTP.PublicURL + " "
	}
	fmt.Fprintf(&signin, "  a new link: %sdatarights console link dev-approver -config %s\n", env, path)
	outbox := filepath.Join(cfg.DataDir, "outbox")
	mail := "emails are written to " + outbox + " (one .eml per message)"
	if cfg.SMTP.URL != "" {
		mail = "emails go to the SMTP server in DATARIGHTS_SMTP_URL"
	}
	return fmt.Sprintf(`
datarights dev is running on http://%[1]s

Open the privacy center (for people; no sign-in): http://%[1]s/
  file a request as demo-user-N@example.com; the code is in the outbox below

Open the staff console: http://%[1]s/console/
  sign in with a one-time link (one per role; each works once, for a day):
%[6]s
  configuration: %[3]s
  %[4]s
  demo subjects: demo-user-1 … demo-user-20 (emails demo-user-N@example.com), product webank
  staff tokens (name, role, token; see GET /api/v1/staff/me):
%[5]s
Or by API: ask for a copy of demo-user-3's data as customer service:

  curl -s -X POST http://%[1]s/api/v1/requests \
    -H 'Authorization: Bearer %[2]s' -H 'Content-Type: application/json' \
    -d '{"product":"webank","type":"copy","subject":{"identities":{"user_id":"demo-user-3"}},"delivery_email":"demo-user-3@example.com","verification":{"method":"face_check","reference":"demo"}}'

It waits at awaiting_contact until the requester reads back the code sent to
the delivery email (in the outbox, <id>.contact.delivery_email.1@datarights.eml):

  curl -s -X POST http://%[1]s/api/v1/requests/<id>/contact/confirm \
    -H 'Authorization: Bearer dev-agent-token' -H 'Content-Type: application/json' \
    -d '{"field":"delivery_email","code":"<8 digits>"}'

Then follow it (use the id from the answer):

  curl -s -H 'Authorization: Bearer %[2]s' http://%[1]s/api/v1/requests/<id>

Press Ctrl-C to stop.
`, addr, token, path, mail, staff.String(), signin.String())
}

// devSecretKey is DATARIGHTS_SECRET_KEY, or a key kept in dir/secret.key,
// made on the first run: export passwords sealed by one run open in the next.
func devSecretKey(dir string, getenv func(string) string) (string, error) {
	if v := getenv(keyring.EnvVar); v != "" {
		return v, nil
	}
	path := filepath.Join(dir, "secret.key")
	if data, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(data)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	entry, err := keyring.New("dev")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(entry+"\n"), 0o600); err != nil {
		return "", err
	}
	return entry, nil
}

func ping(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// migrateYAML is the configuration line naming the migrations' connection.
func migrateYAML(migrateURL string) string {
	if migrateURL == "" {
		return ""
	}
	return "# Migrations run as this role (a superuser here), which hands the tables to\n" +
		"# datarights_owner; the service connects as database_url's role, which may\n" +
		"# only read and append to the audit trail (README: database roles).\n" +
		"migrate_database_url: " + strconv.Quote(migrateURL) + "\n\n"
}

func shortErr(err error) string {
	s := err.Error()
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}
