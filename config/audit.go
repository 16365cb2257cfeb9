package config

import (
	"net/url"
	"time"

	"github.com/datarights/datarights/rights"
)

// Audit configures the tamper-evident audit trail.
type Audit struct {
	// AnchorInterval is how often the audit_anchor job records an anchor: a
	// keyed MAC over every audit event so far. Events newer than the last
	// anchor are protected by their request's hash chain only, so this is
	// the window in which deleting a whole request's events goes unseen.
	AnchorInterval time.Duration `yaml:"anchor_interval"`
}

// DefaultAnchorInterval is how often the audit trail is anchored by default.
const DefaultAnchorInterval = time.Minute

// MigrateEnvVar overrides migrate_database_url.
const MigrateEnvVar = "DATARIGHTS_MIGRATE_DATABASE_URL"

func (c *Config) auditEnv(getenv func(string) string) {
	if v := getenv(MigrateEnvVar); v != "" {
		c.MigrateDatabaseURL = v
	}
}

func (c *Config) defaultAudit() {
	if c.Audit.AnchorInterval == 0 {
		c.Audit.AnchorInterval = DefaultAnchorInterval
	}
}

func (c *Config) checkAudit(p *rights.Problems) {
	if c.Audit.AnchorInterval < time.Second || c.Audit.AnchorInterval > 24*time.Hour {
		p.Add("audit.anchor_interval", "must be between 1s and 24h, not %s", c.Audit.AnchorInterval)
	}
	if c.MigrateDatabaseURL != "" {
		if u, err := url.Parse(c.MigrateDatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			p.Add("migrate_database_url", "must be a postgres:// URL")
		} else if c.MigrateDatabaseURL == c.DatabaseURL {
			p.Add("migrate_database_url", "must connect as another role than database_url (the owner's side of the two roles), or be left out")
		}
	}
}
