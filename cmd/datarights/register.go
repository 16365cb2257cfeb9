package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

const registerUsage = `datarights register export --from YYYY-MM-DD --to YYYY-MM-DD [--product P] [--format csv|json] [--url U]
  write the register of requests received in the period (both days included) to stdout,
  through a running service's API ($DATARIGHTS_URL, an auditor's token in $DATARIGHTS_STAFF_TOKEN);
  columns in docs/register.md`

// runRegister streams GET /api/v1/register to stdout.
func runRegister(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (isHelp(args[0]) || args[0] == "help") {
		return helpRequest("usage: " + registerUsage + "\n")
	}
	if len(args) == 0 || args[0] != "export" {
		return usageError(registerUsage)
	}
	cmd := newCommand("register export", "datarights register export --from YYYY-MM-DD --to YYYY-MM-DD [--product P] [--format csv|json] [--url U]",
		"write the register of requests received in the period (both days included) to stdout,\n"+
			"through a running service's API (an auditor's token); columns in docs/register.md")
	cmd.trailer = clientTrailer
	fs := cmd.fs
	def := getenv(urlEnvVar)
	if def == "" {
		def = defaultURL
	}
	c := &clientFlags{command: cmd, url: fs.String("url", def, "the service's base URL ($"+urlEnvVar+" sets the default)"), getenv: getenv, stderr: stderr}
	from := fs.String("from", "", "the first day, YYYY-MM-DD")
	to := fs.String("to", "", "the last day, YYYY-MM-DD")
	product := fs.String("product", "", "one product (default: all of yours)")
	format := fs.String("format", "csv", "csv or json")
	if _, err := c.parse(args[1:], 0, ""); err != nil {
		return err
	}
	client, err := c.client()
	if err != nil {
		return err
	}
	q := url.Values{"from": {*from}, "to": {*to}, "format": {*format}}
	if *product != "" {
		q.Set("product", *product)
	}
	req, err := http.NewRequestWithContext(ctx, "GET", client.base+"/api/v1/register?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+client.token)
	// No overall timeout: a long register streams for as long as it takes.
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var eb struct {
			Error *apiError `json:"error"`
		}
		if json.Unmarshal(raw, &eb) == nil && eb.Error != nil {
			eb.Error.Status = resp.StatusCode
			return eb.Error
		}
		return &apiError{Status: resp.StatusCode, Message: "GET /api/v1/register: " + resp.Status + " " + strings.TrimSpace(string(raw))}
	}
	if _, err := io.Copy(stdout, resp.Body); err != nil {
		return fmt.Errorf("the register was cut off: %w", err)
	}
	return nil
}
