package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/datarights/datarights/rights"
)

// Exports configures the copies people receive: formats, where finished
// archives are kept, and how they are delivered.
type Exports struct {
	// Formats are written for every dataset: json and csv (default both).
	Formats []string `yaml:"formats"`
	// CSVBOM starts CSV files with a UTF-8 byte order mark, which Excel
	// needs to read UTF-8 (Chinese text) correctly. Default true.
	CSVBOM *bool `yaml:"csv_bom"`
	// Destination is where finished archives are kept: local (data_dir,
	// default) or s3.
	Destination string     `yaml:"destination"`
	S3          *S3Exports `yaml:"s3"`
	// LinkTTL is how long a download link works; default 7 days.
	LinkTTL time.Duration `yaml:"link_ttl"`
	// Links are service (a signed link to datarights, which enforces the
	// expiry and records each download; default) or presigned (a presigned
	// S3 URL, for an s3 destination: S3 enforces the expiry, downloads are
	// only in S3's own logs).
	Links string `yaml:"links"`
	// SweepInterval is how often expired exports are purged; default 10m.
	SweepInterval time.Duration `yaml:"sweep_interval"`
	// Categories explain, in the report, what a category holds (over the
	// built-in explanations of common ones).
	Categories map[string]LocalText `yaml:"categories"`
}

// S3Exports is the bucket archives are kept in.
type S3Exports struct {
	Bucket       string `yaml:"bucket"`
	Prefix       string `yaml:"prefix"` // e.g. "exports/"
	Region       string `yaml:"region"`
	Endpoint     string `yaml:"endpoint"`
	PathStyle    bool   `yaml:"path_style"`
	AccessKeyEnv string `yaml:"access_key_env"`
	SecretKeyEnv string `yaml:"secret_key_env"`
	// SSE is the server-side encryption asked for every archive: AES256
	// (default), aws:kms (with KMSKeyID) or none.
	SSE      string `yaml:"sse"`
	KMSKeyID string `yaml:"kms_key_id"`
	// PartSizeMB is the part size of multipart uploads, in MiB: what a
	// writer holds in memory (default 8, at least 5, as S3 requires).
	PartSizeMB int `yaml:"part_size_mb"`

	AccessKey, SecretKey string `yaml:"-"` // read from the environment
}

// Export formats.
const (
	FormatJSON = "json"
	FormatCSV  = "csv"
)

// Defaults of the exports section.
const (
	DefaultLinkTTL     = 7 * 24 * time.Hour
	DefaultExportSweep = 10 * time.Minute
)

// BOM reports whether CSV files start with a byte order mark.
func (e Exports) BOM() bool { return e.CSVBOM == nil || *e.CSVBOM }

func (c *Config) defaultExports() {
	e := &c.Exports
	if len(e.Formats) == 0 {
		e.Formats = []string{FormatJSON, FormatCSV}
	}
	if e.Destination == "" {
		e.Destination = "local"
	}
	if e.LinkTTL == 0 {
		e.LinkTTL = DefaultLinkTTL
	}
	if e.Links == "" {
		e.Links = "service"
	}
	if e.SweepInterval == 0 {
		e.SweepInterval = DefaultExportSweep
	}
	if e.S3 != nil && e.S3.SSE == "" {
		e.S3.SSE = "AES256"
	}
}

func (c *Config) exportsEnv(getenv func(string) string) {
	if s := c.Exports.S3; s != nil {
		if s.AccessKeyEnv != "" {
			s.AccessKey = getenv(s.AccessKeyEnv)
		}
		if s.SecretKeyEnv != "" {
			s.SecretKey = getenv(s.SecretKeyEnv)
		}
	}
}

func (c *Config) checkExports(p *rights.Problems) {
	e := c.Exports
	seen := map[string]bool{}
	for i, f := range e.Formats {
		switch {
		case f != FormatJSON && f != FormatCSV:
			p.Add(fmt.Sprintf("exports.formats[%d]", i), "must be json or csv, not %q", f)
		case seen[f]:
			p.Add(fmt.Sprintf("exports.formats[%d]", i), "%q is listed twice", f)
		}
		seen[f] = true
	}
	if !seen[FormatJSON] {
		p.Add("exports.formats", "must include json: the report and the manifest are built from it")
	}
	switch e.Destination {
	case "local":
		if e.S3 != nil {
			p.Add("exports.s3", "is only used with destination: s3")
		}
	case "s3":
		if e.S3 == nil || e.S3.Bucket == "" {
			p.Add("exports.s3.bucket", "is required with destination: s3")
		} else {
			if strings.HasPrefix(e.S3.Prefix, "/") || strings.Contains(e.S3.Prefix, "..") {
				p.Add("exports.s3.prefix", "must be a relative key prefix like \"exports/\"")
			}
			if !slices.Contains([]string{"AES256", "aws:kms", "none"}, e.S3.SSE) {
				p.Add("exports.s3.sse", "must be AES256, aws:kms or none, not %q", e.S3.SSE)
			}
			if e.S3.SSE == "aws:kms" && e.S3.KMSKeyID == "" {
				p.Add("exports.s3.kms_key_id", "is required with sse: aws:kms")
			}
			if (e.S3.AccessKeyEnv == "") != (e.S3.SecretKeyEnv == "") {
				p.Add("exports.s3", "access_key_env and secret_key_env go together (or neither, for the AWS default chain)")
			} else if e.S3.AccessKeyEnv != "" && (e.S3.AccessKey == "" || e.S3.SecretKey == "") {
				p.Add("exports.s3.access_key_env", "environment variables %s and %s must be set", e.S3.AccessKeyEnv, e.S3.SecretKeyEnv)
			}
		}
	default:
		p.Add("exports.destination", "must be local or s3, not %q", e.Destination)
	}
	switch {
	case e.Links != "service" && e.Links != "presigned":
		p.Add("exports.links", "must be service or presigned, not %q", e.Links)
	case e.Links == "presigned" && e.Destination != "s3":
		p.Add("exports.links", "presigned links need destination: s3")
	case e.Links == "presigned" && e.LinkTTL > 7*24*time.Hour:
		p.Add("exports.link_ttl", "a presigned S3 link lasts at most 7 days (168h), not %s", e.LinkTTL)
	}
	if e.LinkTTL < time.Second || e.LinkTTL > 90*24*time.Hour {
		p.Add("exports.link_ttl", "must be between 1s and 90 days, not %s", e.LinkTTL)
	}
	for name, text := range e.Categories {
		if !identityRE.MatchString(name) {
			p.Add("exports.categories", "category names are lower-case words like \"profile\", not %q", name)
		} else if strings.TrimSpace(text.ZH) == "" || strings.TrimSpace(text.EN) == "" {
			p.Add("exports.categories."+name, "is required in zh-CN and en")
		}
	}
	if e.SweepInterval < time.Second {
		p.Add("exports.sweep_interval", "must be at least 1s, not %s", e.SweepInterval)
	}
}
