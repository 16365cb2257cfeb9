package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/keyring"
)

// runConfig: `datarights config check` reads the configuration as serve
// would (the file, then the environment) and lists every problem in it at
// once, without connecting anywhere: a deploy pipeline can refuse a bad
// file before any process is restarted with it.
func runConfig(args []string, getenv func(string) string, stdout io.Writer) error {
	g := group{"config", "  datarights config check [-config FILE]\n"}
	if _, err := g.verb(args, "check"); err != nil {
		return err
	}
	c := newCommand("config check", "datarights config check [-config FILE]",
		"check the configuration as serve and worker would read it, with the environment's overrides,\n"+
			"without connecting anywhere; print every problem as file:line: field: reason and exit 1 if any")
	path := c.configFlag()
	if _, err := c.parse(args[1:], 0, 0); err != nil {
		return err
	}
	cfg, err := config.Load(*path, getenv)
	if err != nil {
		return err
	}
	// What serve and worker check next, before they connect: a file that
	// passes here must not be refused at start-up.
	var missing []string
	if cfg.Keys == nil {
		missing = append(missing, keyring.EnvVar+" is not set (datarights key new makes one)")
	}
	if !cfg.HTTP.PublicURLSet {
		missing = append(missing, "http.public_url is not set (or DATARIGHTS_PUBLIC_URL)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s is valid, but serve and worker would refuse to start:\n  %s", *path, strings.Join(missing, "\n  "))
	}
	fmt.Fprintf(stdout, "%s: OK (%s, %s)\n", *path, plural(int64(len(cfg.Products)), "product"), plural(int64(len(cfg.Stores)), "store"))
	return nil
}
