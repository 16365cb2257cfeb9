// Package config reads datarights' YAML configuration, applies environment
// overrides and validates it, naming the file, line and field of every
// problem.
package config

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/datarights/datarights/calendars"
	"github.com/datarights/datarights/keyring"
	"github.com/datarights/datarights/rights"
)

// Config is the whole configuration of one datarights deployment.
type Config struct {
	// DatabaseURL is the service's own Postgres (requests, audit, River).
	DatabaseURL string       `yaml:"database_url"`
	Database    Database     `yaml:"database"`
	DataDir     string       `yaml:"data_dir"` // staging, exports and the file outbox
	HTTP        HTTP         `yaml:"http"`
	SMTP        SMTP         `yaml:"smtp"`
	StaffTokens []StaffToken `yaml:"staff_tokens"`
	SelfService SelfService  `yaml:"self_service"`
	Intake      Intake       `yaml:"intake"`
	SMS         SMS          `yaml:"sms"`
	Worker      Worker       `yaml:"worker"`
	SLA         SLA          `yaml:"sla"`
	Products    []Product    `yaml:"products"`
	Stores      []Store      `yaml:"stores"`
	Retention   Retention    `yaml:"retention"`
	// CancelAccount configures account cancellation: verification and
	// pre-checks.
	CancelAccount CancelAccount `yaml:"cancel_account"`
	// Rights holds each right's verification methods and pre-checks
	// (cancel.go); rights.cancel_account replaces cancel_account.
	Rights map[rights.Type]RightRules `yaml:"rights"`
	// Consent configures purposes, the consent ledger and withdrawals.
	Consent Consent `yaml:"consent"`
	// Recipients are third parties told to erase what was shared with them.
	Recipients []Recipient `yaml:"recipients"`
	// TransferReceivers are the handlers a transfer may go to.
	TransferReceivers []TransferReceiver `yaml:"transfer_receivers"`
	// Minors configures age bands and per-product age rules.
	Minors Minors `yaml:"minors"`
	// NextOfKin configures requests for a deceased person.
	NextOfKin NextOfKin `yaml:"next_of_kin"`
	// Exports configures copies: formats, destination, delivery links.
	Exports Exports `yaml:"exports"`
	// Objects says where staged datasets, callback spools and archives
	// live: data_dir (one host) or an S3 bucket (any number of hosts).
	Objects Objects `yaml:"objects"`
	// Notify configures optional emails to requesters.
	Notify Notify `yaml:"notify"`
	// TemplatesDir holds email templates that replace the built-in ones,
	// one file per kind and locale (see jobs/templates).
	TemplatesDir string `yaml:"templates_dir"`
	// CalendarsDir holds more holiday calendar years, or corrections, one
	// JSON file per year, loaded at start-up over the embedded ones.
	CalendarsDir string `yaml:"calendars_dir"`
	// MigrateDatabaseURL is the service's database as a role that may
	// change its tables (a member of the owner role): migrations run on it,
	// the service on DatabaseURL with only the grants it needs. Empty: one
	// role does both. Env DATARIGHTS_MIGRATE_DATABASE_URL.
	MigrateDatabaseURL string `yaml:"migrate_database_url"`
	// Audit configures the tamper-evident audit trail.
	Audit Audit `yaml:"audit"`
	// Console configures the staff web console's sessions.
	Console Console `yaml:"console"`
	// OpenDSR configures the partner API (docs/opendsr.md).
	OpenDSR OpenDSR `yaml:"opendsr"`

	// EnvStaffToken is DATARIGHTS_STAFF_TOKEN in plain text; it is hashed
	// before it is stored and never written anywhere.
	EnvStaffToken string `yaml:"-"`
	// EnvStaffRole is DATARIGHTS_STAFF_ROLE, the role of the
	// DATARIGHTS_STAFF_TOKEN token (named "env"); approver when unset.
	EnvStaffRole string `yaml:"-"`
	// Keys are the secret keys from DATARIGHTS_SECRET_KEY: they encrypt
	// secrets kept at rest and key the MACs a database dump cannot forge.
	// Nil when the variable is unset (commands that need them say so).
	Keys    *keyring.Keyring `yaml:"-"`
	keysErr error
	// Path is the file the configuration was read from.
	Path string `yaml:"-"`
}

// HTTP configures the API listener.
type HTTP struct {
	Addr         string `yaml:"addr"`
	MaxBodyBytes int64  `yaml:"max_body_bytes"`
	// PublicURL is how requesters reach the service (for links in emails).
	// serve and worker refuse to start without it: a link built from the
	// address of whichever process sent the email points at a worker.
	PublicURL string `yaml:"public_url"`
	// PublicURLSet says PublicURL was configured, not defaulted.
	PublicURLSet bool `yaml:"-"`
	// TrustedProxies are the networks (CIDR) of the reverse proxies in
	// front of the service: only a peer in one of them is believed about
	// the client's address in X-Forwarded-For.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// OpsAddr, when set, is a second listener for the operations endpoints
	// (/metrics, /healthz, /readyz), e.g. on an internal interface: /metrics
	// is then not served on Addr, which faces the public.
	OpsAddr string `yaml:"ops_addr"`
	// SignatureWindow is how far the timestamp of a signed callback may be
	// from the service's clock, either way; each callback's nonce is kept
	// that long after its timestamp (docs/webhook.md).
	SignatureWindow time.Duration `yaml:"signature_window"`
}

// SMTP configures outgoing mail. An empty URL selects the file outbox.
type SMTP struct {
	URL  string `yaml:"url"` // smtp://user:pass@host:port
	From string `yaml:"from"`
	// AttachmentLimitBytes is the largest export sent as an attachment.
	AttachmentLimitBytes int64 `yaml:"attachment_limit_bytes"`
}

// StaffToken is a hashed bearer token for the staff API, and the person
// it belongs to: their role and the products they work on (none: all).
type StaffToken struct {
	Name     string   `yaml:"name"`
	SHA256   string   `yaml:"sha256"` // hex SHA-256 of the token
	Role     string   `yaml:"role"`   // agent | approver | auditor | admin
	Products []string `yaml:"products"`
}

// Staff is the identity the token stands for.
func (t StaffToken) Staff() rights.Staff {
	return rights.Staff{Name: t.Name, Role: rights.Role(t.Role), Products: t.Products}
}

// Intake configures what happens to new requests.
type Intake struct {
	// RepeatWindow: a request for the same product, right and person as
	// another received within this window waits for staff approval (the
	// policies allow refusing unfoundedly repeated requests). Unset means
	// 30 days; 0 turns detection off.
	RepeatWindow *time.Duration `yaml:"repeat_window"`
	// ConfirmDeliveryEmail: a staff ticket for a copy (or access) sends a
	// code to its delivery email, and the copy goes there only once the
	// requester has read the code back to staff. Unset means true; false
	// trusts the address staff typed (e.g. one already checked in the
	// company's own systems).
	ConfirmDeliveryEmail *bool `yaml:"confirm_delivery_email"`
	// VerificationMethods are the ways staff may record that they verified
	// a requester (a ticket's verification.method): a typo would otherwise
	// become evidence nobody can interpret. Unset means
	// DefaultVerificationMethods; cancel_account.verification_methods must
	// be among them.
	VerificationMethods []string `yaml:"verification_methods"`
}

// DefaultVerificationMethods are intake.verification_methods when unset:
// what customer service commonly does, and email_code, which self-service
// uses (and cancel_account.verification_methods may name).
var DefaultVerificationMethods = []string{"email_code", "sms_code", "face_check", "id_document", "video_call", "in_person", "phone_call"}

// Database sizes the connection pools to the service's own Postgres. An
// API process and the workers get separate pools, so a burst of jobs never
// makes a staff request (or the commit that records a sent email) wait for
// a connection behind them.
type Database struct {
	// MaxConns is the API's pool; default 10.
	MaxConns int `yaml:"max_conns"`
}

// SMS configures text messages (codes proving a new phone number). No
// gateway: messages are written to <data_dir>/sms, one file each.
type SMS struct {
	// GatewayURL receives each message as a signed JSON POST
	// (docs/webhook.md); SecretEnv names the variable holding its secret.
	GatewayURL string `yaml:"gateway_url"`
	SecretEnv  string `yaml:"secret_env"`
	Secret     string `yaml:"-"` // read from SecretEnv
}

// SelfService configures one-time codes and the limits that keep them from
// being guessed.
type SelfService struct {
	CodeTTL time.Duration `yaml:"code_ttl"`
	// MaxAttempts is the wrong codes one request takes before its code locks.
	MaxAttempts int `yaml:"max_attempts"`
	// ExpiryGrace is how long after its code expired an unverified request
	// waits before it expires and its personal data is purged.
	ExpiryGrace time.Duration `yaml:"expiry_grace"`
	Limits      Limits        `yaml:"limits"`
}

// Limits bound what one address or one network can do to the self-service
// door. They are counted in Postgres, so they hold across every replica.
type Limits struct {
	// CodeEmailsPerHour and CodeEmailsPerDay bound the codes emailed about
	// one mailbox (its +tag variants count as one) and about one subject.
	CodeEmailsPerHour int `yaml:"code_emails_per_hour"`
	CodeEmailsPerDay  int `yaml:"code_emails_per_day"`
	// WrongCodesPerDay bounds the wrong codes entered for one mailbox across
	// all its requests in any 24 hours; then the mailbox is locked until the
	// window has room again, and its owner is told.
	WrongCodesPerDay int `yaml:"wrong_codes_per_day"`
	// RequestsPerIPPerHour and VerificationsPerIPPerHour bound one client
	// network (an IPv4 address, an IPv6 /64).
	RequestsPerIPPerHour      int `yaml:"requests_per_ip_per_hour"`
	VerificationsPerIPPerHour int `yaml:"verifications_per_ip_per_hour"`
}

// Worker configures the River workers.
type Worker struct {
	// Concurrency is how many jobs of each queue worked run at once:
	// store tasks and the other steps each have their own, so a flood of
	// slow store tasks never holds up intake and delivery.
	Concurrency int           `yaml:"concurrency"`
	JobTimeout  time.Duration `yaml:"job_timeout"`
	// RescueAfter is how long a running job may go without its worker's
	// heartbeat before another process takes it over (its worker is
	// presumed dead). Live workers beat every quarter of it, however long
	// the job runs.
	RescueAfter time.Duration `yaml:"rescue_after"`
	MaxAttempts int           `yaml:"max_attempts"`
	// DBConns is the workers' pool: by default concurrency × the queues
	// worked + 10, one for each running job and the rest for River's own
	// work (fetching, completing, heartbeats) and the steps' commits.
	DBConns int `yaml:"db_conns"`
	// Queues are the River queues this process works: default (every
	// step but the store tasks) and store_tasks; both unless set, "none"
	// for none (an API-only serve). DATARIGHTS_WORKER_QUEUES
	// (comma-separated) overrides it, so that one configuration file can
	// run store tasks on hosts near the stores and the rest elsewhere.
	Queues []string `yaml:"queues"`
}

// SLA configures deadline reminders and the staff queue's bands.
type SLA struct {
	// Reminders are fractions of a request's period (clock start to due) at
	// which staff are reminded, each once; a breach notice always follows
	// when the deadline passes.
	Reminders []float64 `yaml:"reminders"`
	// DueSoonAt is the fraction of the period after which an open request
	// is in the due_soon band. serve and worker also store it in the
	// database at start, for the instants the on-track queue is indexed by
	// (storage.SetDueSoonFraction).
	DueSoonAt float64 `yaml:"due_soon_at"`
	// Notify lists the staff addresses reminders and breach notices go to.
	Notify []string `yaml:"notify"`
	// SweepInterval is how often reminders and breaches are checked.
	SweepInterval time.Duration `yaml:"sweep_interval"`
	// CountsInterval is how often one worker counts the open requests by
	// product, status and band for the metrics (default 30s); scrapes read
	// the last count.
	CountsInterval time.Duration `yaml:"counts_interval"`
}

// Product is a service whose users send requests, with its deadline promise.
type Product struct {
	Name string `yaml:"name"`
	// DisplayName is how people see the product, in emails, reports and
	// the privacy center (e.g. "WeBank 微众银行"); the name when unset.
	DisplayName string   `yaml:"display_name"`
	Deadline    Deadline `yaml:"deadline"`
	// Rights are the rights the privacy center offers for the product, in
	// the order shown; empty offers every right.
	Rights []rights.Type `yaml:"rights"`
}

// Label is the product's name for people.
func (p Product) Label() string {
	if p.DisplayName != "" {
		return p.DisplayName
	}
	return p.Name
}

// RightsOffered are the rights people may file for the product.
func (p Product) RightsOffered() []rights.Type {
	if len(p.Rights) == 0 {
		return rights.Types
	}
	return p.Rights
}

// Deadline is a product's deadline policy as written in YAML.
type Deadline struct {
	Policy     string `yaml:"policy"` // calendar_days | working_days
	Days       int    `yaml:"days"`
	ClockStart string `yaml:"clock_start"` // received | verified
	TimeZone   string `yaml:"time_zone"`
	// Calendar names the holiday calendar, e.g. "cn"; empty is weekends only.
	Calendar         string `yaml:"calendar"`
	RollForward      bool   `yaml:"roll_forward"`
	MaxExtensionDays int    `yaml:"max_extension_days"`
}

// Store is a data store that holds personal data.
type Store struct {
	Name string `yaml:"name"`
	Kind string `yaml:"kind"` // postgres
	// DSN connects to the store; DSNEnv names an environment variable that
	// holds it instead, so secrets stay out of the file.
	DSN    string `yaml:"dsn"`
	DSNEnv string `yaml:"dsn_env"`
	// Products limits the store to requests for these products; empty means all.
	Products []string `yaml:"products"`
	// Key is the identity type the store's tables are keyed by (e.g. user_id).
	Key     string   `yaml:"key"`
	Lookups []Lookup `yaml:"lookups"`
	Tables  []Table  `yaml:"tables"`
	// Keys are a redis store's key patterns.
	Keys []RedisKey `yaml:"keys"`
	// S3 configures an s3 store.
	S3 *S3Store `yaml:"s3"`
	// Instructions tell staff what to do in a manual store (kind manual):
	// where the data is and how to export or delete it.
	Instructions string `yaml:"instructions"`
	// Webhook configures a webhook store: an internal service answering
	// datarights' signed HTTP contract (docs/webhook.md).
	Webhook *WebhookStore `yaml:"webhook"`
	// Consent is a SQL store's table of consents, which a withdrawal
	// updates.
	Consent *ConsentTable `yaml:"consent"`
	// Description says, in the report of an export, what the store is and
	// where its data comes from (zh-CN and en).
	Description LocalText `yaml:"description"`
	// DisplayName names the store for people, in emails and reports
	// (e.g. {zh-CN: 核心银行系统, en: Core banking}); the name when unset.
	DisplayName LocalText `yaml:"display_name"`
	// IdentityFormat: how the store holds emails and phones (identity.go).
	IdentityFormat *IdentityFormat `yaml:"identity_format"`
}

// WebhookStore is a webhook store's endpoint and signing secret.
type WebhookStore struct {
	URL string `yaml:"url"` // where datarights POSTs its calls
	// SecretEnv names the environment variable holding the secret both
	// sides sign with (HMAC-SHA256); it never goes in the file.
	SecretEnv string `yaml:"secret_env"`
	// PreviousSecretEnv, while a secret is being rotated, names the
	// variable holding the secret being replaced: messages signed with it
	// are still accepted, while datarights signs with the new one only
	// (docs/webhook.md, "Rotating a secret"). Unset once the other side
	// signs with the new secret.
	PreviousSecretEnv string `yaml:"previous_secret_env"`
	// Timeout bounds one call, answer included; default 30s.
	Timeout time.Duration `yaml:"timeout"`
	// Secret is read from SecretEnv, PreviousSecret from
	// PreviousSecretEnv.
	Secret         string `yaml:"-"`
	PreviousSecret string `yaml:"-"`
}

// readSecrets reads the secrets from the environment.
func (w *WebhookStore) readSecrets(getenv func(string) string) {
	if w.SecretEnv != "" {
		w.Secret = getenv(w.SecretEnv)
	}
	if w.PreviousSecretEnv != "" {
		w.PreviousSecret = getenv(w.PreviousSecretEnv)
	}
}

// VerifyingSecrets are the secrets a message from the other side may be
// signed with: the secret, and during a rotation the previous one.
func (w *WebhookStore) VerifyingSecrets() [][]byte {
	secrets := [][]byte{[]byte(w.Secret)}
	if w.PreviousSecret != "" {
		secrets = append(secrets, []byte(w.PreviousSecret))
	}
	return secrets
}

// RedisKey is a key (or, with Match, a SCAN pattern) holding a person's data
// in a redis store; "{<key identity>}" in it is replaced by the person's key.
type RedisKey struct {
	Pattern  string `yaml:"pattern"`  // e.g. "session:{user_id}" or "cart:{user_id}:*"
	Match    bool   `yaml:"match"`    // scan for keys matching Pattern (glob)
	Category string `yaml:"category"` // e.g. sessions
	// Purposes are the consents the keys are kept for: withdrawing one
	// deletes them.
	Purposes []string `yaml:"purposes"`
}

// S3Store is an s3 store: every object under Prefix belongs to one person.
type S3Store struct {
	Bucket   string `yaml:"bucket"`
	Prefix   string `yaml:"prefix"` // e.g. "users/{user_id}/"
	Region   string `yaml:"region"`
	Endpoint string `yaml:"endpoint"` // for S3-compatible servers
	// AccessKeyEnv and SecretKeyEnv name environment variables holding the
	// credentials; empty uses the AWS SDK's default chain.
	AccessKeyEnv string `yaml:"access_key_env"`
	SecretKeyEnv string `yaml:"secret_key_env"`
	PathStyle    bool   `yaml:"path_style"`
	Category     string `yaml:"category"`
}

// Lookup resolves another identity to the store's key, e.g. email → user_id
// through the users table.
type Lookup struct {
	Identity  string `yaml:"identity"`   // identity type given by the requester
	Table     string `yaml:"table"`      // table to look in (schema.table allowed)
	Column    string `yaml:"column"`     // column holding that identity
	KeyColumn string `yaml:"key_column"` // column holding the store key
}

// Table is one table holding personal data, keyed by the store key.
type Table struct {
	Name     string `yaml:"name"`     // table (schema.table allowed)
	Column   string `yaml:"column"`   // column holding the store key
	Category string `yaml:"category"` // e.g. profile, cards, transactions, consents
	// Label names the table's records for people, in emails and reports
	// (e.g. {zh-CN: 贷款记录, en: Loans}); the store and table name when
	// unset.
	Label LocalText `yaml:"label"`
	// OrderBy is the column(s) rows are exported in; defaults to the key column.
	OrderBy string `yaml:"order_by"`
	// Correctable lists the columns a correct request may change (see
	// correct.go).
	Correctable []FieldRule `yaml:"correctable"`

	// How a delete (or an account cancellation) acts on the table; see
	// erase.go. OnDelete is delete (default), anonymize or restrict.
	OnDelete  string          `yaml:"on_delete"`
	Anonymize []AnonymizeRule `yaml:"anonymize"`
	// Retention names the retention class that keeps the rows restricted
	// until its period has run; RetentionFrom is the column a row's period
	// counts from (e.g. closed_at), else the end of the relationship.
	Retention     string `yaml:"retention"`
	RetentionFrom string `yaml:"retention_from"`
	// RestrictColumn is the nullable timestamp column a restriction sets.
	RestrictColumn string `yaml:"restrict_column"`
	// RetentionMonths is the retention class's period, filled in by Parse.
	RetentionMonths int `yaml:"-"`
	// Purposes are the consents the rows are kept for alone (a location
	// history, an advertising profile): withdrawing one erases them.
	Purposes []string `yaml:"purposes"`
}

// Notify configures the emails a requester gets besides the code, the
// answer and a refusal.
type Notify struct {
	// Acknowledgement: when the identity is verified, tell the requester the
	// request is received and by when it will be answered.
	Acknowledgement bool `yaml:"acknowledgement"`
}

// Console configures the staff console's sign-in sessions.
type Console struct {
	// IdleTimeout ends a session not used for this long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// AbsoluteTimeout ends a session this long after sign-in, however busy:
	// a stolen cookie does not live for ever.
	AbsoluteTimeout time.Duration `yaml:"absolute_timeout"`
	// SigninLinkTTL is how long a one-time sign-in link may wait to be used.
	SigninLinkTTL time.Duration `yaml:"signin_link_ttl"`
}

// Defaults for fields left out of the file.
const (
	DefaultConsoleIdleTimeout     = 30 * time.Minute
	DefaultConsoleAbsoluteTimeout = 12 * time.Hour
	DefaultSigninLinkTTL          = 15 * time.Minute

	DefaultHTTPAddr             = "127.0.0.1:8080"
	DefaultMaxBodyBytes         = 64 << 10
	DefaultSignatureWindow      = 5 * time.Minute
	DefaultAttachmentLimitBytes = 20 << 20
	DefaultCodeTTL              = 15 * time.Minute
	DefaultCodeMaxAttempts      = 5
	DefaultExpiryGrace          = time.Hour
	DefaultWorkerConcurrency    = 20
	DefaultJobTimeout           = 10 * time.Minute
	DefaultRescueAfter          = time.Minute
	DefaultJobMaxAttempts       = 25
	DefaultTimeZone             = "Asia/Shanghai"
	DefaultFrom                 = "datarights <privacy@localhost>"
)

// Load reads the file at path, applies environment overrides through getenv
// and validates the result.
func Load(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data, getenv)
}

// Parse is Load for configuration already in memory; path names it in errors.
//
// Every problem comes back at once in an *Error: a YAML syntax error (the
// one place reading cannot go on), else every unknown key and every value
// of the wrong type, found by checking the document against Config's yaml
// tags (schema.go), and the validation problems of what could be decoded.
func Parse(path string, data []byte, getenv func(string) string) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		line, reason := syntaxProblem(err)
		e := &Error{Path: path, lines: []int{line}}
		e.Problems.Add("", "%s", reason)
		return nil, e
	}
	var schema schemaChecker
	cfg := &Config{}
	if len(root.Content) > 0 { // an empty file is all defaults
		schema.check(root.Content[0], reflect.TypeFor[Config](), "")
	}
	// Unknown keys were checked above, with suggestions; what the decoder
	// cannot convert it leaves at the zero value and goes on.
	if err := decodeDocument(&root, cfg); err != nil {
		var te *yaml.TypeError
		if len(schema.problems) == 0 {
			// The schema check accepted what the decoder refused: report
			// the decoder's words rather than nothing.
			if errors.As(err, &te) {
				for _, msg := range te.Errors {
					schema.add(0, "", "%s", msg)
				}
			} else {
				schema.add(0, "", "%v", err)
			}
			return nil, &Error{Path: path, Problems: schema.problems, root: &root, lines: schema.lines}
		}
		if !errors.As(err, &te) {
			// Decoding stopped part way: validating the rest would report
			// fields as missing that are merely unread.
			return nil, &Error{Path: path, Problems: schema.problems, root: &root, lines: schema.lines}
		}
	}
	cfg.Path = path
	cfg.applyEnv(getenv)
	cfg.applyDefaults()
	problems, lines := schema.problems, schema.lines
	for _, p := range cfg.validate() {
		if !schema.covers(p.Field) {
			problems = append(problems, p)
			lines = append(lines, 0)
		}
	}
	if len(problems) > 0 {
		return nil, &Error{Path: path, Problems: problems, root: &root, lines: lines}
	}
	cfg.resolveRetention()
	return cfg, nil
}

// decodeDocument decodes root into cfg; an empty document leaves it as is.
func decodeDocument(root *yaml.Node, cfg *Config) error {
	if len(root.Content) == 0 {
		return nil
	}
	return root.Decode(cfg)
}

func (c *Config) applyEnv(getenv func(string) string) {
	if getenv == nil {
		return
	}
	if v := getenv("DATABASE_URL"); v != "" {
		c.DatabaseURL = v
	}
	if v := getenv("DATARIGHTS_PUBLIC_URL"); v != "" {
		c.HTTP.PublicURL = v
	}
	if v := getenv("DATARIGHTS_HTTP_ADDR"); v != "" {
		c.HTTP.Addr = v
	}
	if v := getenv("DATARIGHTS_OPS_ADDR"); v != "" {
		c.HTTP.OpsAddr = v
	}
	if v := getenv("DATARIGHTS_SMTP_URL"); v != "" {
		c.SMTP.URL = v
	}
	if v := getenv("DATARIGHTS_STAFF_TOKEN"); v != "" {
		c.EnvStaffToken = v
	}
	c.EnvStaffRole = string(rights.RoleApprover)
	if v := getenv("DATARIGHTS_STAFF_ROLE"); v != "" {
		c.EnvStaffRole = v
	}
	if c.SMS.SecretEnv != "" {
		c.SMS.Secret = getenv(c.SMS.SecretEnv)
	}
	if v := getenv(keyring.EnvVar); v != "" {
		c.Keys, c.keysErr = keyring.Parse(v)
	}
	if v := getenv("DATARIGHTS_DATA_DIR"); v != "" {
		c.DataDir = v
	}
	for i := range c.Stores {
		if env := c.Stores[i].DSNEnv; env != "" {
			if v := getenv(env); v != "" {
				c.Stores[i].DSN = v
			}
		}
		if w := c.Stores[i].Webhook; w != nil {
			w.readSecrets(getenv)
		}
	}
	for _, pc := range c.allPrechecks() {
		if w := pc.Webhook; w != nil {
			w.readSecrets(getenv)
		}
	}
	for _, r := range c.Recipients {
		if w := r.Webhook; w != nil {
			w.readSecrets(getenv)
		}
	}
	c.exportsEnv(getenv)
	c.objectsEnv(getenv)
	c.auditEnv(getenv)
	c.newTypesEnv(getenv)
	c.openDSREnv(getenv)
}

func (c *Config) applyDefaults() {
	if c.HTTP.Addr == "" {
		c.HTTP.Addr = DefaultHTTPAddr
	}
	if c.HTTP.MaxBodyBytes == 0 {
		c.HTTP.MaxBodyBytes = DefaultMaxBodyBytes
	}
	c.HTTP.PublicURLSet = c.HTTP.PublicURL != ""
	if c.HTTP.PublicURL == "" {
		c.HTTP.PublicURL = "http://" + c.HTTP.Addr
	}
	if c.HTTP.SignatureWindow == 0 {
		c.HTTP.SignatureWindow = DefaultSignatureWindow
	}
	if c.Console.IdleTimeout == 0 {
		c.Console.IdleTimeout = DefaultConsoleIdleTimeout
	}
	if c.Console.AbsoluteTimeout == 0 {
		c.Console.AbsoluteTimeout = DefaultConsoleAbsoluteTimeout
	}
	if c.Console.SigninLinkTTL == 0 {
		c.Console.SigninLinkTTL = DefaultSigninLinkTTL
	}
	if c.DataDir == "" {
		c.DataDir = "data"
	}
	if c.SMTP.From == "" {
		c.SMTP.From = DefaultFrom
	}
	if c.SMTP.AttachmentLimitBytes == 0 {
		c.SMTP.AttachmentLimitBytes = DefaultAttachmentLimitBytes
	}
	if c.SelfService.CodeTTL == 0 {
		c.SelfService.CodeTTL = DefaultCodeTTL
	}
	if c.SelfService.MaxAttempts == 0 {
		c.SelfService.MaxAttempts = DefaultCodeMaxAttempts
	}
	if c.SelfService.ExpiryGrace == 0 {
		c.SelfService.ExpiryGrace = DefaultExpiryGrace
	}
	l := &c.SelfService.Limits
	for _, d := range []struct {
		v   *int
		def int
	}{{&l.CodeEmailsPerHour, 5}, {&l.CodeEmailsPerDay, 10}, {&l.WrongCodesPerDay, 10},
		{&l.RequestsPerIPPerHour, 30}, {&l.VerificationsPerIPPerHour, 60}} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.Worker.Concurrency == 0 {
		c.Worker.Concurrency = DefaultWorkerConcurrency
	}
	if len(c.Worker.Queues) == 0 {
		c.Worker.Queues = []string{QueueDefault, QueueStoreTasks}
	}
	if c.Worker.DBConns == 0 {
		c.Worker.DBConns = c.Worker.Concurrency*max(len(c.Worker.WorksQueues()), 1) + 10
	}
	if c.Database.MaxConns == 0 {
		c.Database.MaxConns = 10
	}
	if c.Worker.JobTimeout == 0 {
		c.Worker.JobTimeout = DefaultJobTimeout
	}
	if c.Worker.RescueAfter == 0 {
		c.Worker.RescueAfter = DefaultRescueAfter
	}
	if c.Worker.MaxAttempts == 0 {
		c.Worker.MaxAttempts = DefaultJobMaxAttempts
	}
	if c.Intake.RepeatWindow == nil {
		month := 30 * 24 * time.Hour
		c.Intake.RepeatWindow = &month
	}
	if c.Intake.ConfirmDeliveryEmail == nil {
		yes := true
		c.Intake.ConfirmDeliveryEmail = &yes
	}
	if c.Intake.VerificationMethods == nil {
		c.Intake.VerificationMethods = slices.Clone(DefaultVerificationMethods)
	}
	if c.SLA.Reminders == nil {
		c.SLA.Reminders = []float64{0.5, 0.8}
	}
	if c.SLA.DueSoonAt == 0 {
		c.SLA.DueSoonAt = 0.8
	}
	if c.SLA.CountsInterval == 0 {
		c.SLA.CountsInterval = 30 * time.Second
	}
	if c.SLA.SweepInterval == 0 {
		c.SLA.SweepInterval = time.Minute
	}
	c.defaultRecipients()
	c.defaultNewTypes()
	c.defaultOpenDSR()
	c.defaultObjects()
	c.defaultExports()
	c.defaultAudit()
	if c.Consent.Identity == "" {
		c.Consent.Identity = DefaultConsentIdentity
	}
	if c.Retention.SweepInterval == 0 {
		c.Retention.SweepInterval = DefaultRetentionSweep
	}
	for i := range c.Products {
		if c.Products[i].Deadline.TimeZone == "" {
			c.Products[i].Deadline.TimeZone = DefaultTimeZone
		}
	}
}

var (
	nameRE       = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	identityRE   = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
	sqlIdentRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)
	sha256HexRE  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	storeKinds   = []string{"postgres", "mysql", "redis", "s3", "manual", "webhook"}
	sqlKinds     = []string{"postgres", "mysql"}
	deadlineKind = []string{string(rights.CalendarDays), string(rights.WorkingDays)}
	clockStarts  = []string{string(rights.ClockReceived), string(rights.ClockVerified)}
)

func (c *Config) validate() rights.Problems {
	var p rights.Problems
	if c.DatabaseURL == "" {
		p.Add("database_url", "is required (or set DATABASE_URL)")
	} else if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		p.Add("database_url", "must be a postgres:// URL")
	}
	if c.keysErr != nil {
		p.Add(keyring.EnvVar, "%v", c.keysErr)
	}
	c.checkAudit(&p)
	if c.HTTP.MaxBodyBytes < 1024 {
		p.Add("http.max_body_bytes", "must be at least 1024, not %d", c.HTTP.MaxBodyBytes)
	}
	if c.HTTP.OpsAddr != "" {
		if _, port, err := net.SplitHostPort(c.HTTP.OpsAddr); err != nil {
			p.Add("http.ops_addr", "must be host:port, e.g. 10.0.0.5:9090 or :9090, not %q", c.HTTP.OpsAddr)
		} else if c.HTTP.OpsAddr == c.HTTP.Addr && port != "0" {
			// Port 0 picks a free port for each listener (tests do).
			p.Add("http.ops_addr", "must differ from http.addr (%s): it is the separate address for /metrics", c.HTTP.Addr)
		}
	}
	if t := c.Console.IdleTimeout; t < time.Minute || t > 24*time.Hour {
		p.Add("console.idle_timeout", "must be between 1m and 24h, not %s", t)
	}
	if t := c.Console.AbsoluteTimeout; t < c.Console.IdleTimeout || t > 7*24*time.Hour {
		p.Add("console.absolute_timeout", "must be at least console.idle_timeout (%s) and at most 168h, not %s", c.Console.IdleTimeout, t)
	}
	if t := c.Console.SigninLinkTTL; t < time.Minute || t > 24*time.Hour {
		p.Add("console.signin_link_ttl", "must be between 1m and 24h, not %s", t)
	}
	if w := c.HTTP.SignatureWindow; w < 30*time.Second || w > time.Hour {
		// Shorter and clocks a little apart refuse good callbacks; longer
		// keeps a captured one usable (once) for longer.
		p.Add("http.signature_window", "must be between 30s and 1h, not %s", w)
	}
	if u, err := url.Parse(c.HTTP.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.Add("http.public_url", "must be an http(s) URL")
	}
	if c.SMTP.URL != "" {
		if _, err := ParseSMTPURL(c.SMTP.URL); err != nil {
			p.Add("smtp.url", "%v", err)
		}
	}
	if _, err := mail.ParseAddress(c.SMTP.From); err != nil {
		p.Add("smtp.from", "must be an email address, e.g. \"Privacy <privacy@example.com>\"")
	}
	if c.SMS.GatewayURL != "" {
		if u, err := url.Parse(c.SMS.GatewayURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.Add("sms.gateway_url", "must be an http(s) URL")
		}
		if c.SMS.SecretEnv == "" || c.SMS.Secret == "" {
			p.Add("sms.secret_env", "must name a set environment variable holding the gateway's signing secret; required with sms.gateway_url")
		}
	}
	if c.EnvStaffToken != "" {
		if _, err := rights.ParseRole(c.EnvStaffRole); err != nil {
			p.Add("DATARIGHTS_STAFF_ROLE", "%s", rights.ErrorMessage(err))
		}
	}
	seenTokens := map[string]bool{}
	for i, t := range c.StaffTokens {
		f := fmt.Sprintf("staff_tokens[%d]", i)
		if !nameRE.MatchString(t.Name) {
			p.Add(f+".name", "must be a lower-case name like \"alice\"")
		} else if rights.ReservedStaffName(t.Name) {
			p.Add(f+".name", "%q is reserved: the queue's assignee filter uses it", t.Name)
		} else if seenTokens[t.Name] {
			p.Add(f+".name", "%q is declared twice", t.Name)
		}
		seenTokens[t.Name] = true
		if !sha256HexRE.MatchString(t.SHA256) {
			p.Add(f+".sha256", "must be the 64 lower-case hex digits of the token's SHA-256 (see `datarights token hash`)")
		}
		if _, err := rights.ParseRole(t.Role); err != nil {
			p.Add(f+".role", "%s", rights.ErrorMessage(err))
		}
		for j, prod := range t.Products {
			if _, ok := c.Product(prod); !ok {
				p.Add(fmt.Sprintf("%s.products[%d]", f, j), "unknown product %q", prod)
			}
		}
	}
	if c.SelfService.CodeTTL < time.Minute || c.SelfService.CodeTTL > 24*time.Hour {
		p.Add("self_service.code_ttl", "must be between 1m and 24h, not %s", c.SelfService.CodeTTL)
	}
	if c.SelfService.MaxAttempts < 1 || c.SelfService.MaxAttempts > 20 {
		p.Add("self_service.max_attempts", "must be between 1 and 20, not %d", c.SelfService.MaxAttempts)
	}
	if c.SelfService.ExpiryGrace < 0 || c.SelfService.ExpiryGrace > 7*24*time.Hour {
		p.Add("self_service.expiry_grace", "must be between 0s and 168h, not %s", c.SelfService.ExpiryGrace)
	}
	l := c.SelfService.Limits
	for _, lim := range []struct {
		field    string
		v, upper int
	}{{"code_emails_per_hour", l.CodeEmailsPerHour, 100}, {"code_emails_per_day", l.CodeEmailsPerDay, 1000},
		{"wrong_codes_per_day", l.WrongCodesPerDay, 1000}, {"requests_per_ip_per_hour", l.RequestsPerIPPerHour, 1_000_000},
		{"verifications_per_ip_per_hour", l.VerificationsPerIPPerHour, 1_000_000}} {
		if lim.v < 1 || lim.v > lim.upper {
			p.Add("self_service.limits."+lim.field, "must be between 1 and %d, not %d", lim.upper, lim.v)
		}
	}
	if l.CodeEmailsPerDay < l.CodeEmailsPerHour {
		p.Add("self_service.limits.code_emails_per_day", "must be at least code_emails_per_hour (%d), not %d", l.CodeEmailsPerHour, l.CodeEmailsPerDay)
	}
	for i, cidr := range c.HTTP.TrustedProxies {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			p.Add(fmt.Sprintf("http.trusted_proxies[%d]", i), "must be a network in CIDR form, e.g. 10.0.0.0/8 or 127.0.0.1/32, not %q", cidr)
		}
	}
	if c.Worker.Concurrency < 1 || c.Worker.Concurrency > 1000 {
		p.Add("worker.concurrency", "must be between 1 and 1000, not %d", c.Worker.Concurrency)
	}
	if c.Worker.JobTimeout < time.Second {
		p.Add("worker.job_timeout", "must be at least 1s, not %s", c.Worker.JobTimeout)
	}
	if c.Worker.RescueAfter < 2*time.Second || c.Worker.RescueAfter > time.Hour {
		// Workers beat a heartbeat every quarter of it: shorter loads the
		// database for little gain; longer only delays recovery.
		p.Add("worker.rescue_after", "must be between 2s and 1h, not %s", c.Worker.RescueAfter)
	}
	if least := c.Worker.Concurrency*max(len(c.Worker.WorksQueues()), 1) + 2; c.Worker.DBConns < least || c.Worker.DBConns > 2000 {
		p.Add("worker.db_conns", "must be at least worker.concurrency × the queues worked + 2 (%d): each running job holds one, River needs the rest; not %d", least, c.Worker.DBConns)
	}
	if c.Database.MaxConns < 2 || c.Database.MaxConns > 1000 {
		p.Add("database.max_conns", "must be between 2 and 1000, not %d", c.Database.MaxConns)
	}
	if c.Worker.MaxAttempts < 1 || c.Worker.MaxAttempts > 100 {
		p.Add("worker.max_attempts", "must be between 1 and 100, not %d", c.Worker.MaxAttempts)
	}

	if *c.Intake.RepeatWindow < 0 {
		p.Add("intake.repeat_window", "must not be negative")
	}
	if len(c.Intake.VerificationMethods) == 0 {
		p.Add("intake.verification_methods", "must list at least one method (or be left out for the defaults: %s)", strings.Join(DefaultVerificationMethods, ", "))
	}
	seenMethods := map[string]bool{}
	for i, m := range c.Intake.VerificationMethods {
		f := fmt.Sprintf("intake.verification_methods[%d]", i)
		switch {
		case !identityRE.MatchString(m):
			p.Add(f, "must be a method name like \"face_check\", not %q", m)
		case seenMethods[m]:
			p.Add(f, "%q is listed twice", m)
		}
		seenMethods[m] = true
	}
	for i, f := range c.SLA.Reminders {
		if f <= 0 || f >= 1 {
			p.Add(fmt.Sprintf("sla.reminders[%d]", i), "must be a fraction between 0 and 1 (exclusive), not %v", f)
		}
	}
	if c.SLA.DueSoonAt <= 0 || c.SLA.DueSoonAt >= 1 {
		p.Add("sla.due_soon_at", "must be a fraction between 0 and 1 (exclusive), not %v", c.SLA.DueSoonAt)
	}
	for i, addr := range c.SLA.Notify {
		if a, err := mail.ParseAddress(addr); err != nil || a.Address != addr {
			p.Add(fmt.Sprintf("sla.notify[%d]", i), "must be a plain email address")
		}
	}
	if c.SLA.CountsInterval < time.Second {
		p.Add("sla.counts_interval", "must be at least 1s, not %s", c.SLA.CountsInterval)
	}
	if c.SLA.SweepInterval < time.Second {
		p.Add("sla.sweep_interval", "must be at least 1s, not %s", c.SLA.SweepInterval)
	}

	c.checkRetentionClasses(&p)
	cals, err := c.Calendars()
	if err != nil {
		p.Add("calendars_dir", "%v", err)
		cals, _ = calendars.Builtin()
	}
	products := map[string]bool{}
	if len(c.Products) == 0 {
		p.Add("products", "at least one product is required")
	}
	for i, prod := range c.Products {
		f := fmt.Sprintf("products[%d]", i)
		if !nameRE.MatchString(prod.Name) {
			p.Add(f+".name", "must be a lower-case name like \"wechat\", not %q", prod.Name)
		} else if products[prod.Name] {
			p.Add(f+".name", "%q is declared twice", prod.Name)
		}
		products[prod.Name] = true
		seenRights := map[rights.Type]bool{}
		for j, t := range prod.Rights {
			if !t.Valid() {
				p.Add(fmt.Sprintf("%s.rights[%d]", f, j), "unknown right %q", t)
			} else if seenRights[t] {
				p.Add(fmt.Sprintf("%s.rights[%d]", f, j), "%q is listed twice", t)
			}
			seenRights[t] = true
		}
		if _, err := prod.Deadline.DomainPolicy(cals); err != nil {
			var re *rights.Error
			if errors.As(err, &re) {
				for _, fp := range re.Fields {
					p.Add(f+".deadline."+fp.Field, "%s", fp.Reason)
				}
			} else {
				p.Add(f+".deadline", "%v", err)
			}
		}
	}

	stores := map[string]bool{}
	for i, s := range c.Stores {
		f := fmt.Sprintf("stores[%d]", i)
		if !nameRE.MatchString(s.Name) {
			p.Add(f+".name", "must be a lower-case name like \"bank_core\", not %q", s.Name)
		} else if stores[s.Name] {
			p.Add(f+".name", "%q is declared twice", s.Name)
		}
		stores[s.Name] = true
		if !contains(storeKinds, s.Kind) {
			p.Add(f+".kind", "must be one of %s, not %q", strings.Join(storeKinds, ", "), s.Kind)
		}
		if s.Kind == "manual" && strings.TrimSpace(s.Instructions) == "" {
			p.Add(f+".instructions", "is required for a manual store: what staff must do")
		}
		if s.DSN == "" && s.Kind != "s3" && s.Kind != "manual" && s.Kind != "webhook" { // s3 and webhook connect through their sections; manual is done by people
			if s.DSNEnv != "" {
				p.Add(f+".dsn_env", "environment variable %s is not set", s.DSNEnv)
			} else {
				p.Add(f+".dsn", "is required (or name an environment variable in dsn_env)")
			}
		}
		for j, prod := range s.Products {
			if !products[prod] {
				p.Add(fmt.Sprintf("%s.products[%d]", f, j), "unknown product %q", prod)
			}
		}
		if !identityRE.MatchString(s.Key) {
			p.Add(f+".key", "must name the identity type the tables are keyed by, like \"user_id\"")
		}
		checkIdentityFormat(&p, f+".identity_format", s)
		for j, l := range s.Lookups {
			lf := fmt.Sprintf("%s.lookups[%d]", f, j)
			if !identityRE.MatchString(l.Identity) {
				p.Add(lf+".identity", "must be an identity type like \"email\", not %q", l.Identity)
			}
			checkTable(&p, lf+".table", l.Table)
			checkColumn(&p, lf+".column", l.Column)
			checkColumn(&p, lf+".key_column", l.KeyColumn)
		}
		switch {
		case contains(sqlKinds, s.Kind) && len(s.Tables) == 0:
			p.Add(f+".tables", "at least one table is required")
		case !contains(sqlKinds, s.Kind) && (len(s.Tables) > 0 || len(s.Lookups) > 0):
			p.Add(f+".tables", "tables and lookups are for SQL stores (postgres, mysql), not %s", s.Kind)
		}
		switch {
		case s.Kind == "redis" && len(s.Keys) == 0:
			p.Add(f+".keys", "at least one key pattern is required")
		case s.Kind != "redis" && len(s.Keys) > 0:
			p.Add(f+".keys", "key patterns are for redis stores")
		}
		for j, k := range s.Keys {
			kf := fmt.Sprintf("%s.keys[%d]", f, j)
			placeholder := "{" + s.Key + "}"
			if strings.Count(k.Pattern, placeholder) != 1 {
				p.Add(kf+".pattern", "must contain %s exactly once, e.g. \"user:%s:profile\"", placeholder, placeholder)
			}
			if strings.ContainsAny(strings.ReplaceAll(k.Pattern, placeholder, ""), "*?[]\\") && !k.Match {
				p.Add(kf+".pattern", "has glob characters; set match: true to scan for keys matching it")
			}
			if k.Category != "" && !identityRE.MatchString(k.Category) {
				p.Add(kf+".category", "must be a lower-case word like \"sessions\", not %q", k.Category)
			}
		}
		switch {
		case s.Kind == "s3" && s.S3 == nil:
			p.Add(f+".s3", "bucket and prefix are required for an s3 store")
		case s.Kind != "s3" && s.S3 != nil:
			p.Add(f+".s3", "is only for s3 stores")
		case s.S3 != nil:
			if s.S3.Bucket == "" {
				p.Add(f+".s3.bucket", "is required")
			}
			if strings.Count(s.S3.Prefix, "{"+s.Key+"}") != 1 {
				p.Add(f+".s3.prefix", "must contain {%s} exactly once, e.g. \"users/{%s}/\"", s.Key, s.Key)
			}
		}
		switch {
		case s.Kind == "webhook" && s.Webhook == nil:
			p.Add(f+".webhook", "url and secret_env are required for a webhook store")
		case s.Kind != "webhook" && s.Webhook != nil:
			p.Add(f+".webhook", "is only for webhook stores")
		case s.Webhook != nil:
			checkWebhook(&p, f+".webhook", s.Webhook, c.Worker.JobTimeout)
		}
		tables := map[string]bool{}
		for j, t := range s.Tables {
			tf := fmt.Sprintf("%s.tables[%d]", f, j)
			checkTable(&p, tf+".name", t.Name)
			if tables[t.Name] {
				p.Add(tf+".name", "%q is declared twice", t.Name)
			}
			tables[t.Name] = true
			checkColumn(&p, tf+".column", t.Column)
			if t.OrderBy != "" {
				for _, col := range strings.Split(t.OrderBy, ",") {
					checkColumn(&p, tf+".order_by", strings.TrimSpace(col))
				}
			}
			if t.Category != "" && !identityRE.MatchString(t.Category) {
				p.Add(tf+".category", "must be a lower-case word like \"profile\", not %q", t.Category)
			}
			checkCorrectable(&p, tf, t)
			c.checkErase(&p, tf, t)
		}
	}
	c.checkCorrectableAcrossStores(&p)
	c.checkCancelAccount(&p, products)
	c.checkConsent(&p, products)
	c.checkRecipients(&p, products)
	c.checkNewTypes(&p, products)
	c.checkOpenDSR(&p, products)
	c.checkExports(&p)
	c.checkObjects(&p)
	return p
}

// MinWebhookSecret is the shortest webhook secret accepted, in bytes.
const MinWebhookSecret = 16

func checkWebhook(p *rights.Problems, f string, w *WebhookStore, jobTimeout time.Duration) {
	if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.Add(f+".url", "must be an http(s) URL, like https://loyalty.internal/datarights")
	} else if u.User != nil {
		p.Add(f+".url", "must not hold credentials: calls are signed with the secret")
	}
	switch {
	case w.SecretEnv == "":
		p.Add(f+".secret_env", "is required: the environment variable holding the signing secret")
	case w.Secret == "":
		p.Add(f+".secret_env", "environment variable %s is not set", w.SecretEnv)
	case len(w.Secret) < MinWebhookSecret:
		p.Add(f+".secret_env", "the secret in %s is shorter than %d bytes", w.SecretEnv, MinWebhookSecret)
	}
	switch {
	case w.PreviousSecretEnv == "":
	case w.PreviousSecret == "":
		p.Add(f+".previous_secret_env", "environment variable %s is not set (remove previous_secret_env once the rotation is over)", w.PreviousSecretEnv)
	case len(w.PreviousSecret) < MinWebhookSecret:
		p.Add(f+".previous_secret_env", "the secret in %s is shorter than %d bytes", w.PreviousSecretEnv, MinWebhookSecret)
	case w.PreviousSecret == w.Secret:
		p.Add(f+".previous_secret_env", "holds the same secret as %s: a rotation needs a new secret", w.SecretEnv)
	}
	if w.Timeout != 0 && (w.Timeout < time.Second || w.Timeout > jobTimeout) {
		p.Add(f+".timeout", "must be between 1s and worker.job_timeout (%s), not %s", jobTimeout, w.Timeout)
	}
}

func checkTable(p *rights.Problems, field, name string) {
	parts := strings.Split(name, ".")
	if len(parts) > 2 {
		p.Add(field, "must be table or schema.table, not %q", name)
		return
	}
	for _, part := range parts {
		if !sqlIdentRE.MatchString(part) {
			p.Add(field, "must be a plain SQL identifier (letters, digits, _), not %q", name)
			return
		}
	}
}

func checkColumn(p *rights.Problems, field, name string) {
	if !sqlIdentRE.MatchString(name) {
		p.Add(field, "must be a plain SQL identifier (letters, digits, _), not %q", name)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// DomainPolicy turns the YAML deadline into the domain policy, with its
// calendar from cals.
func (d Deadline) DomainPolicy(cals *calendars.Set) (rights.DeadlinePolicy, error) {
	var p rights.Problems
	loc, err := time.LoadLocation(d.TimeZone)
	if err != nil {
		p.Add("time_zone", "unknown time zone %q", d.TimeZone)
	}
	policy := rights.DeadlinePolicy{
		Kind:             rights.DeadlineKind(d.Policy),
		Days:             d.Days,
		ClockStart:       rights.ClockStart(d.ClockStart),
		Location:         loc,
		RollForward:      d.RollForward,
		MaxExtensionDays: d.MaxExtensionDays,
	}
	if d.Calendar != "" {
		if cal, ok := cals.Get(d.Calendar); ok {
			policy.Calendar = cal
		} else {
			p.Add("calendar", "unknown calendar %q; known: %s", d.Calendar, strings.Join(cals.Names(), ", "))
		}
	}
	if err := policy.Validate(); err != nil {
		var re *rights.Error
		if errors.As(err, &re) {
			p = append(p, re.Fields...)
		}
	}
	return policy, p.Err()
}

// Product returns the product named name.
func (c *Config) Product(name string) (Product, bool) {
	for _, p := range c.Products {
		if p.Name == name {
			return p, true
		}
	}
	return Product{}, false
}

// StoreLabel is store name's name for people in locale: its display name,
// else its name.
func (c *Config) StoreLabel(name, locale string) string {
	if s, ok := c.Store(name); ok {
		if l := s.DisplayName.In(locale); l != "" {
			return l
		}
	}
	return name
}

// DatasetLabel is a store's table (dataset) for people in locale: the
// table's label, else "<store label>/<table>".
func (c *Config) DatasetLabel(store, dataset, locale string) string {
	if s, ok := c.Store(store); ok {
		for _, t := range s.Tables {
			if t.Name == dataset {
				if l := t.Label.In(locale); l != "" {
					return l
				}
			}
		}
	}
	return c.StoreLabel(store, locale) + "/" + dataset
}

// FieldLabel is a correctable field of product for people in locale: its
// label, else its name.
func (c *Config) FieldLabel(product, field, locale string) string {
	if rule, ok := c.CorrectableFields(product)[field]; ok {
		if l := rule.Label.In(locale); l != "" {
			return l
		}
	}
	return field
}

// Store returns the store named name.
func (c *Config) Store(name string) (Store, bool) {
	for _, s := range c.Stores {
		if s.Name == name {
			return s, true
		}
	}
	return Store{}, false
}

// StoresFor returns the stores that hold data for product.
func (c *Config) StoresFor(product string) []Store {
	var out []Store
	for _, s := range c.Stores {
		if len(s.Products) == 0 || contains(s.Products, product) {
			out = append(out, s)
		}
	}
	return out
}

// IdentityTypes returns every identity type a request may name: each store's
// key and lookup identities, plus email (self-service always has one).
func (c *Config) IdentityTypes() map[string]bool {
	types := map[string]bool{"email": true}
	for _, s := range c.Stores {
		types[s.Key] = true
		for _, l := range s.Lookups {
			types[l.Identity] = true
		}
	}
	return types
}

// HashToken returns the hex SHA-256 of a staff token, as stored.
// NewStaffToken returns a fresh staff bearer token: 256 random bits.
func NewStaffToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "drs_" + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// SMTPServer is a parsed smtp:// URL.
type SMTPServer struct {
	Host     string
	Port     int
	Username string
	Password string
	// Implicit TLS (smtps://); plain smtp:// upgrades with STARTTLS when the
	// server offers it.
	TLS bool
}

// Addr returns host:port.
func (s SMTPServer) Addr() string { return s.Host + ":" + strconv.Itoa(s.Port) }

// ParseSMTPURL parses smtp://user:pass@host:port (or smtps://).
func ParseSMTPURL(raw string) (SMTPServer, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return SMTPServer{}, errors.New("must be a URL like smtp://user:pass@host:587")
	}
	s := SMTPServer{Host: u.Hostname()}
	switch u.Scheme {
	case "smtp":
		s.Port = 587
	case "smtps":
		s.Port, s.TLS = 465, true
	default:
		return SMTPServer{}, fmt.Errorf("scheme must be smtp or smtps, not %q", u.Scheme)
	}
	if s.Host == "" {
		return SMTPServer{}, errors.New("must name a host, like smtp://user:pass@host:587")
	}
	if port := u.Port(); port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return SMTPServer{}, fmt.Errorf("port %q is not a port number", port)
		}
		s.Port = n
	}
	if u.User != nil {
		s.Username = u.User.Username()
		s.Password, _ = u.User.Password()
	}
	return s, nil
}

// Policies returns every product's deadline policy. It assumes a validated
// configuration.
func (c *Config) Policies() map[string]rights.DeadlinePolicy {
	cals, _ := c.Calendars()
	out := make(map[string]rights.DeadlinePolicy, len(c.Products))
	for _, p := range c.Products {
		policy, _ := p.Deadline.DomainPolicy(cals)
		out[p.Name] = policy
	}
	return out
}

// Calendars returns the embedded holiday calendars with calendars_dir's files
// loaded over them.
func (c *Config) Calendars() (*calendars.Set, error) {
	cals, err := calendars.Builtin()
	if err != nil {
		return nil, err
	}
	if c.CalendarsDir != "" {
		if err := cals.LoadDir(c.CalendarsDir); err != nil {
			return cals, err
		}
	}
	return cals, nil
}

// Catalog returns what intake validation needs to know.
func (c *Config) Catalog() rights.Catalog {
	products := map[string]bool{}
	for _, p := range c.Products {
		products[p.Name] = true
	}
	methods := map[string]bool{}
	for _, m := range c.Intake.VerificationMethods {
		methods[m] = true
	}
	return rights.Catalog{Products: products, IdentityTypes: c.IdentityTypes(), VerificationMethods: methods}
}

// TrustedProxyPrefixes returns http.trusted_proxies parsed (validated by Parse).
func (c *Config) TrustedProxyPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, cidr := range c.HTTP.TrustedProxies {
		if p, err := netip.ParsePrefix(cidr); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}
