package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/datarights/datarights/rights"
)

// Objects says where the data plane's files live: the datasets staged for
// a request's archive, the spooled bodies of store callbacks, and (unless
// exports names its own) the finished archives.
type Objects struct {
	// Backend is local (default: under data_dir, on this host's disk, as
	// one host needs) or s3 (a bucket every serve and worker process
	// shares, so any of them can run any step of a request).
	Backend string     `yaml:"backend"`
	S3      *S3Exports `yaml:"s3"`
}

// Object store backends.
const (
	ObjectsLocal = "local"
	ObjectsS3    = "s3"
)

// Shared reports whether the data plane's files are in a shared store.
func (o Objects) Shared() bool { return o.Backend == ObjectsS3 && o.S3 != nil }

// River queues a worker can work (worker.queues).
const (
	// QueueDefault holds every job but the store tasks.
	QueueDefault = "default"
	// QueueStoreTasks holds the store tasks: the jobs that read, erase
	// and correct in the data stores.
	QueueStoreTasks = "store_tasks"
	// QueueNone, alone, works no queue: a serve process that is the API
	// only.
	QueueNone = "none"
)

// WorksQueues returns the queues this process works (none for "none").
func (w Worker) WorksQueues() []string {
	if slices.Equal(w.Queues, []string{QueueNone}) {
		return nil
	}
	return w.Queues
}

func (c *Config) defaultObjects() {
	o := &c.Objects
	if o.Backend == "" {
		o.Backend = ObjectsLocal
	}
	if o.S3 != nil && o.S3.SSE == "" {
		o.S3.SSE = "AES256"
	}
	// With a shared store and no exports destination of their own, the
	// archives go to the same bucket, under exports/: kept on one host's
	// disk, they could be served only by that host.
	if o.Shared() && c.Exports.Destination == "" && c.Exports.S3 == nil {
		s3 := *o.S3
		s3.Prefix += "exports/"
		c.Exports.Destination, c.Exports.S3 = "s3", &s3
	}
}

func (c *Config) objectsEnv(getenv func(string) string) {
	if s := c.Objects.S3; s != nil {
		if s.AccessKeyEnv != "" {
			s.AccessKey = getenv(s.AccessKeyEnv)
		}
		if s.SecretKeyEnv != "" {
			s.SecretKey = getenv(s.SecretKeyEnv)
		}
	}
	// One configuration file for every process, each told by its
	// environment which queues it works.
	if v := getenv("DATARIGHTS_WORKER_QUEUES"); v != "" {
		c.Worker.Queues = nil
		for q := range strings.SplitSeq(v, ",") {
			if q = strings.TrimSpace(q); q != "" {
				c.Worker.Queues = append(c.Worker.Queues, q)
			}
		}
	}
}

func (c *Config) checkObjects(p *rights.Problems) {
	o := c.Objects
	switch o.Backend {
	case ObjectsLocal:
		if o.S3 != nil {
			p.Add("objects.s3", "is only used with backend: s3")
		}
	case ObjectsS3:
		if o.S3 == nil {
			p.Add("objects.s3.bucket", "is required with backend: s3")
			break
		}
		checkS3(p, "objects.s3", *o.S3)
		if c.Exports.Destination == "local" {
			p.Add("exports.destination", "local keeps archives on one host's disk; with objects.backend: s3 use s3, or leave it out to keep them in the objects bucket")
		}
	default:
		p.Add("objects.backend", "must be local or s3, not %q", o.Backend)
	}
	seen := map[string]bool{}
	for i, q := range c.Worker.Queues {
		switch {
		case q != QueueDefault && q != QueueStoreTasks && q != QueueNone:
			p.Add(fmt.Sprintf("worker.queues[%d]", i), "must be %s, %s or %s, not %q", QueueDefault, QueueStoreTasks, QueueNone, q)
		case q == QueueNone && len(c.Worker.Queues) > 1:
			p.Add(fmt.Sprintf("worker.queues[%d]", i), "%s stands alone: the process works no queue", QueueNone)
		case seen[q]:
			p.Add(fmt.Sprintf("worker.queues[%d]", i), "%q is listed twice", q)
		}
		seen[q] = true
	}
}

// checkS3 checks a bucket's settings, naming fields under field.
func checkS3(p *rights.Problems, field string, s S3Exports) {
	if s.Bucket == "" {
		p.Add(field+".bucket", "is required")
	}
	if strings.HasPrefix(s.Prefix, "/") || strings.Contains(s.Prefix, "..") || strings.Contains(s.Prefix, "//") || (s.Prefix != "" && !strings.HasSuffix(s.Prefix, "/")) {
		p.Add(field+".prefix", "must be a relative key prefix ending in / like \"datarights/\", not %q", s.Prefix)
	}
	if !slices.Contains([]string{"AES256", "aws:kms"}, s.SSE) {
		// Staged datasets are personal data in plain JSON (the archive
		// is encrypted, they are not): no "none" here.
		p.Add(field+".sse", "must be AES256 or aws:kms, not %q: staged personal data is kept encrypted at rest", s.SSE)
	}
	if s.SSE == "aws:kms" && s.KMSKeyID == "" {
		p.Add(field+".kms_key_id", "is required with sse: aws:kms")
	}
	if s.PartSizeMB != 0 && (s.PartSizeMB < 5 || s.PartSizeMB > 512) {
		p.Add(field+".part_size_mb", "must be between 5 (S3's smallest part) and 512, not %d", s.PartSizeMB)
	}
	if (s.AccessKeyEnv == "") != (s.SecretKeyEnv == "") {
		p.Add(field, "access_key_env and secret_key_env go together (or neither, for the AWS default chain)")
	} else if s.AccessKeyEnv != "" && (s.AccessKey == "" || s.SecretKey == "") {
		p.Add(field+".access_key_env", "environment variables %s and %s must be set", s.AccessKeyEnv, s.SecretKeyEnv)
	}
}
