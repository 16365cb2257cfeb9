// Package operations holds what the service's operators use beside the
// staff API: the River UI, to watch and act on the pipeline's jobs.
package operations

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"riverqueue.com/riverui"
)

// RiverUICSP is the Content-Security-Policy the River UI works under. It
// needs no more than this (checked against riverui v0.22.0's bundle):
//
//   - script-src 'self': its JavaScript is one bundle of module scripts
//     served from under the prefix. index.html also holds its configuration
//     as <script type="application/json">, which is data, not a script. (A
//     theme script React inlines is blocked by this and is harmless: the
//     page flashes the light theme before applying a dark one.)
//   - style-src 'self' 'unsafe-inline': its stylesheet is served from under
//     the prefix, but the toast library (goober) writes its rules into a
//     <style> element it creates, and the theme switcher adds one too.
//   - img-src 'self' data:: the stylesheet draws icons (form controls) as
//     data:image/svg+xml URLs.
//   - connect-src 'self': its API is under the prefix (prefix + "api/…").
//   - font-src 'self': it uses the system fonts, and nothing else.
//
// The rest forbids what it never does: frames, plugins, other origins.
// Serve it on the UI's pages only; the console's own pages keep their
// stricter policy (no inline styles).
const RiverUICSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; connect-src 'self'; font-src 'self'; manifest-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// RiverUI returns the River UI (riverqueue.com/riverui), started, serving
// its pages and its API under prefix (e.g. "/console/river/"): mount it at
// that prefix as it is, without stripping it. The handler does no
// authentication of its own: the caller must put it behind an
// administrator's session (it can cancel, retry and delete jobs and pause
// queues). Job arguments are hidden in the job list by default (they hold
// request ids, never personal data, but there is no need to show them).
//
// client is the pipeline's River client (an insert-only one will do);
// pool is checked to hold River's tables. The UI's background work stops
// when ctx ends.
func RiverUI(ctx context.Context, client *river.Client[pgx.Tx], pool *pgxpool.Pool, logger *slog.Logger, prefix string) (http.Handler, error) {
	if client == nil {
		return nil, errors.New("river ui: a River client is required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if pool != nil {
		var exists bool
		if err := pool.QueryRow(ctx, `SELECT to_regclass('river_job') IS NOT NULL`).Scan(&exists); err != nil {
			return nil, fmt.Errorf("river ui: %w", err)
		}
		if !exists {
			return nil, errors.New("river ui: River's tables are missing: run `datarights migrate up`")
		}
	}
	h, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints:                riverui.NewEndpoints(client, nil),
		JobListHideArgsByDefault: true,
		Logger:                   logger.With("component", "riverui"),
		Prefix:                   prefix,
	})
	if err != nil {
		return nil, fmt.Errorf("river ui: %w", err)
	}
	if err := h.Start(ctx); err != nil {
		return nil, fmt.Errorf("river ui: start: %w", err)
	}
	return h, nil
}
