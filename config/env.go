package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"

	"gopkg.in/yaml.v3"
)

// EnvNames lists the environment variables Parse reads for the
// configuration in data: the fixed overrides (DATABASE_URL,
// DATARIGHTS_SECRET_KEY, …) and those the file names (a store's dsn_env,
// a webhook's secret_env, an S3 access_key_env, …). It records what
// Parse's own environment step asks for instead of keeping a list beside
// it, so a new override is listed the moment it is read; deployment
// manifests are checked against it (deploy/k8s). A file that decodes but
// would not validate still lists its names.
func EnvNames(path string, data []byte) ([]string, error) {
	cfg := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	seen := map[string]bool{}
	cfg.applyEnv(func(name string) string {
		seen[name] = true
		return ""
	})
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}
