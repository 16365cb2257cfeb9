package main

// HTTP intake beside a raw River insert loop (-intake 8,64): the built
// `datarights serve` runs as a child process on a private database, its
// River queues paused so that what is measured is intake, not the workers;
// C clients post staff tickets to POST /api/v1/requests, and C goroutines
// insert a no-op River job each in a loop on a pool of the same size as
// serve's API pool, against the same database, taking turns (-slices) for
// -duration each.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/demo"
	"github.com/datarights/datarights/keyring"
	"github.com/datarights/datarights/storage"
)

type intakeOptions struct {
	clients  []int
	duration time.Duration // of each loop, per number of clients
	slices   int           // turns each loop takes within duration
	bin      string        // the datarights binary; built from ./cmd/datarights when empty
	maxConns int           // serve's database.max_conns; its default when 0
	keep     bool
}

type intakeResult struct {
	clients       int
	httpN, riverN int64
	httpD, riverD time.Duration
}

func (r intakeResult) httpRate() float64  { return float64(r.httpN) / r.httpD.Seconds() }
func (r intakeResult) riverRate() float64 { return float64(r.riverN) / r.riverD.Seconds() }

const intakeToken = "loadbench-staff-token"

func measureIntake(ctx context.Context, server string, opts intakeOptions, log io.Writer) ([]intakeResult, error) {
	dir, err := os.MkdirTemp("", "loadbench-intake-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := opts.bin
	if bin == "" {
		bin = filepath.Join(dir, "datarights")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/datarights")
		build.Stdout, build.Stderr = log, log
		if err := build.Run(); err != nil {
			return nil, fmt.Errorf("build datarights (run from the repository's root, or pass -bin): %w", err)
		}
	}
	dbURL, drop, err := createDatabase(ctx, server, "datarights_loadbench_intake")
	if err != nil {
		return nil, err
	}
	if !opts.keep {
		defer drop()
	}
	db, err := storage.OpenWith(ctx, dbURL, 4)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return nil, err
	}

	yaml := demo.ConfigYAML(dbURL, "postgres://unused/bank", filepath.Join(dir, "data"))
	if opts.maxConns > 0 {
		yaml += fmt.Sprintf("database:\n  max_conns: %d\n", opts.maxConns)
	}
	cfgPath := filepath.Join(dir, "datarights.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		return nil, err
	}
	cfg, err := config.Parse(cfgPath, []byte(yaml), nil)
	if err != nil {
		return nil, err
	}
	apiConns := cfg.Database.MaxConns
	key, err := keyring.New("loadbench")
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	serveCtx, stop := context.WithCancel(ctx)
	defer stop()
	cmd := exec.CommandContext(serveCtx, bin, "serve", "-config", cfgPath)
	cmd.Env = append(os.Environ(),
		"DATABASE_URL="+dbURL, "DATARIGHTS_HTTP_ADDR="+addr, "DATARIGHTS_PUBLIC_URL=http://"+addr,
		"DATARIGHTS_STAFF_TOKEN="+intakeToken, "DATARIGHTS_STAFF_ROLE=approver", keyring.EnvVar+"="+key)
	logFile, err := os.Create(filepath.Join(dir, "serve.log")) // one JSON line per request, as in production
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 40 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() { stop(); _ = cmd.Wait() }()
	base := "http://" + addr
	if err := waitReady(ctx, base+"/readyz", 30*time.Second); err != nil {
		tail, _ := os.ReadFile(logFile.Name())
		return nil, fmt.Errorf("serve did not become ready: %w\n%s", err, tail)
	}
	// The workers stay idle: every queue is paused, so the verify jobs
	// intake enqueues wait and take no CPU from intake.
	pauser, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{})
	if err != nil {
		return nil, err
	}
	if err := pauser.QueuePause(ctx, "*", nil); err != nil {
		return nil, fmt.Errorf("pause the queues: %w", err)
	}
	fmt.Fprintf(log, "serve (pid %d) on %s, database.max_conns %d; queues paused\n", cmd.Process.Pid, addr, apiConns)

	rawDB, err := storage.OpenWith(ctx, dbURL, apiConns)
	if err != nil {
		return nil, err
	}
	defer rawDB.Close()
	raw, err := river.NewClient(riverpgxv5.New(rawDB.Pool), &river.Config{})
	if err != nil {
		return nil, err
	}

	// The two loops take turns, -slices times each, so that a change in
	// the machine's load (it is shared) falls on both alike.
	var results []intakeResult
	var seq atomic.Int64
	slice := opts.duration / time.Duration(opts.slices)
	for _, c := range opts.clients {
		res := intakeResult{clients: c}
		for range opts.slices {
			n, d, err := runFor(ctx, c, slice, func(ctx context.Context, client *http.Client) error {
				return postTicket(ctx, client, base, seq.Add(1))
			})
			if err != nil {
				return nil, fmt.Errorf("HTTP intake, %d clients: %w", c, err)
			}
			res.httpN, res.httpD = res.httpN+n, res.httpD+d
			n, d, err = runFor(ctx, c, slice, func(ctx context.Context, _ *http.Client) error {
				_, err := raw.Insert(ctx, noopArgs{N: seq.Add(1)}, nil)
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("raw River insert, %d clients: %w", c, err)
			}
			res.riverN, res.riverD = res.riverN+n, res.riverD+d
		}
		fmt.Fprintf(log, "%d clients: HTTP intake %d requests in %s; raw River insert %d jobs in %s\n",
			c, res.httpN, res.httpD.Round(time.Millisecond), res.riverN, res.riverD.Round(time.Millisecond))
		results = append(results, res)
	}
	return results, nil
}

// runFor runs fn from c goroutines, each with its own keep-alive HTTP
// client connection, until d has passed, and counts the calls that
// returned nil. The first error stops the run.
func runFor(ctx context.Context, c int, d time.Duration, fn func(context.Context, *http.Client) error) (int64, time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	transport := &http.Transport{MaxIdleConns: c, MaxIdleConnsPerHost: c, MaxConnsPerHost: c, IdleConnTimeout: time.Minute}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: time.Minute}
	var (
		done     atomic.Int64
		wg       sync.WaitGroup
		firstErr error
		once     sync.Once
	)
	deadline := time.Now().Add(d)
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if err := fn(ctx, client); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	return done.Load(), time.Since(start), firstErr
}

// postTicket files one staff ticket for a person of its own (so no repeat
// is held back) under an Idempotency-Key of its own.
func postTicket(ctx context.Context, client *http.Client, base string, i int64) error {
	body := fmt.Sprintf(`{"product":"webank","type":"copy","subject":{"identities":{"user_id":"intake-user-%d"}},`+
		`"delivery_email":"intake-user-%d@example.com","verification":{"method":"face_check","reference":"FC-%d"}}`, i, i, i)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/requests", bytes.NewReader([]byte(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+intakeToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "loadbench-"+strconv.FormatInt(i, 10))
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("POST /api/v1/requests: %s: %s", resp.Status, answer)
	}
	return nil
}

func waitReady(ctx context.Context, url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last error = errors.New("no answer")
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return last
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

type noopArgs struct {
	N int64 `json:"n"`
}

func (noopArgs) Kind() string { return "loadbench_noop" }

func printIntake(w io.Writer, results []intakeResult) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "clients\tHTTP intake req/s\traw River insert jobs/s\tratio\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.2f\t\n", r.clients, r.httpRate(), r.riverRate(), r.httpRate()/r.riverRate())
	}
	tw.Flush()
}
