package config_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/datarights/datarights/config"
)

const objectsS3 = `objects:
  backend: s3
  s3:
    bucket: datarights-data
    prefix: prod/
    access_key_env: OBJ_KEY
    secret_key_env: OBJ_SECRET
`

// TestObjectsDefaults: no objects section is today's single-host setup;
// an s3 backend keeps the archives in its bucket under exports/ (with
// SSE), unless exports names a bucket of its own; worker.queues default to
// both, and the environment picks a process's.
func TestObjectsDefaults(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"BANK_DSN": "postgres://bank/db", "OBJ_KEY": "k", "OBJ_SECRET": "s"}
	cfg, err := config.Parse("datarights.yaml", []byte(valid), env(vars))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Objects.Backend != "local" || cfg.Objects.Shared() || cfg.Exports.Destination != "local" {
		t.Errorf("defaults: objects %+v, exports.destination %s", cfg.Objects, cfg.Exports.Destination)
	}
	if !slices.Equal(cfg.Worker.WorksQueues(), []string{"default", "store_tasks"}) || cfg.Worker.DBConns != 2*cfg.Worker.Concurrency+10 {
		t.Errorf("worker: queues %q, db_conns %d", cfg.Worker.Queues, cfg.Worker.DBConns)
	}

	cfg, err = config.Parse("datarights.yaml", []byte(valid+objectsS3), env(vars))
	if err != nil {
		t.Fatal(err)
	}
	s3 := cfg.Exports.S3
	if !cfg.Objects.Shared() || cfg.Objects.S3.SSE != "AES256" || cfg.Objects.S3.AccessKey != "k" ||
		cfg.Exports.Destination != "s3" || s3 == nil || s3.Bucket != "datarights-data" || s3.Prefix != "prod/exports/" || s3.SSE != "AES256" {
		t.Errorf("s3 objects: %+v, exports %s %+v", cfg.Objects.S3, cfg.Exports.Destination, s3)
	}

	vars["DATARIGHTS_WORKER_QUEUES"] = "store_tasks"
	cfg, err = config.Parse("datarights.yaml", []byte(valid), env(vars))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Worker.WorksQueues(), []string{"store_tasks"}) || cfg.Worker.DBConns != cfg.Worker.Concurrency+10 {
		t.Errorf("DATARIGHTS_WORKER_QUEUES=store_tasks: %q, db_conns %d", cfg.Worker.Queues, cfg.Worker.DBConns)
	}
	vars["DATARIGHTS_WORKER_QUEUES"] = "none"
	if cfg, err = config.Parse("datarights.yaml", []byte(valid), env(vars)); err != nil || len(cfg.Worker.WorksQueues()) != 0 {
		t.Errorf("DATARIGHTS_WORKER_QUEUES=none: %v, %v", cfg, err)
	}
}

func TestObjectsRejects(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"BANK_DSN": "postgres://bank/db", "OBJ_KEY": "k", "OBJ_SECRET": "s"}
	cases := map[string]struct{ yaml, want string }{
		"bad backend":    {valid + "objects:\n  backend: nfs\n", `objects.backend: must be local or s3, not "nfs"`},
		"no bucket":      {valid + "objects:\n  backend: s3\n", "objects.s3.bucket: is required"},
		"empty bucket":   {valid + strings.Replace(objectsS3, "bucket: datarights-data", "region: eu", 1), "objects.s3.bucket: is required"},
		"s3 with local":  {valid + "objects:\n  backend: local\n  s3:\n    bucket: b\n", "objects.s3: is only used with backend: s3"},
		"no encryption":  {valid + strings.Replace(objectsS3, "prefix: prod/", "prefix: prod/\n    sse: none", 1), "objects.s3.sse: must be AES256 or aws:kms"},
		"kms without id": {valid + strings.Replace(objectsS3, "prefix: prod/", "prefix: prod/\n    sse: aws:kms", 1), "objects.s3.kms_key_id: is required"},
		"bad prefix":     {valid + strings.Replace(objectsS3, "prefix: prod/", "prefix: ../prod", 1), "objects.s3.prefix"},
		"small parts":    {valid + strings.Replace(objectsS3, "prefix: prod/", "prefix: prod/\n    part_size_mb: 1", 1), "objects.s3.part_size_mb"},
		"one key env":    {valid + strings.Replace(objectsS3, "    secret_key_env: OBJ_SECRET\n", "", 1), "access_key_env and secret_key_env go together"},
		"unset key env":  {valid + strings.Replace(objectsS3, "OBJ_KEY", "MISSING", 1), "objects.s3.access_key_env: environment variables MISSING"},
		"local exports":  {valid + objectsS3 + "exports:\n  destination: local\n", "exports.destination: local keeps archives on one host's disk"},
		"bad queue":      {valid + "worker:\n  queues: [default, exports]\n", `worker.queues[1]: must be default, store_tasks or none, not "exports"`},
		"queue twice":    {valid + "worker:\n  queues: [default, default]\n", `worker.queues[1]: "default" is listed twice`},
		"none and more":  {valid + "worker:\n  queues: [none, default]\n", "worker.queues[0]: none stands alone"},
		"pool too small": {valid + "worker:\n  concurrency: 10\n  db_conns: 15\n", "worker.db_conns: must be at least worker.concurrency × the queues worked + 2 (22)"},
	}
	for name, tc := range cases {
		_, err := config.Parse("datarights.yaml", []byte(tc.yaml), env(vars))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to contain %q", name, err, tc.want)
		}
	}
}
