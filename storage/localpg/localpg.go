// Package localpg runs a private PostgreSQL server from binaries already
// installed on the machine, so `datarights dev` works for a newcomer who has
// Postgres packages but no database set up. Nothing is downloaded.
//
// Everything the server owns lives in one directory (Config.Dir):
//
//	data/          the cluster, created by initdb on first start and reused after
//	socket/        the Unix socket, for `psql -h <Dir>/socket`
//	postgres.log   the server log, appended to on every start
//	port           the last port used, so restarts keep the same URL
//
// The server is started with `pg_ctl start`, which detaches it from our
// process group: a Ctrl-C in the terminal reaches datarights, which can then
// call Stop for a clean shutdown, instead of killing Postgres mid-write. The
// flip side is that a server outlives a datarights process that crashes or is
// killed. The next Start on the same Dir finds that server through
// data/postmaster.pid and adopts it rather than failing on the lock file, and
// clears a postmaster.pid left behind by a server that is gone.
//
// # Running as root
//
// Postgres refuses to run as root. When the process is root (common in
// containers), Start runs initdb, pg_ctl and the server as the "postgres"
// account if one exists, else as "nobody", and chowns Dir to that account.
// That account must be able to reach Dir, so every directory above it needs
// search permission for others (o+x): a Dir under /root, which is 0700, does
// not work, and Start says so. Start creates missing parents with mode 0755
// for this reason. When falling back to "nobody", other programs running as
// nobody could read the data; install the postgres package to avoid that.
package localpg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Config configures Start. Only Dir is required.
type Config struct {
	// Dir holds the cluster, socket, log and recorded port. It should be
	// dedicated to the server: as root, Start chowns everything in it. Start
	// on the same Dir again keeps the data.
	Dir string

	// Port is the TCP port on 127.0.0.1. 0 picks one: the port recorded in
	// Dir by the previous start if it is still free, so URLs in a newcomer's
	// notes keep working, else any free port.
	Port int

	// BinDir holds initdb, pg_ctl and postgres. "" means FindBinaries.
	BinDir string

	// Logger receives progress messages. nil discards them.
	Logger *slog.Logger
}

// Server is a running private Postgres. Its superuser is "postgres" and
// connections from 127.0.0.1 need no password.
type Server struct {
	dir     string
	dataDir string
	sockDir string
	logFile string
	binDir  string
	port    int
	acct    *account // nil when we run the binaries as ourselves
	logger  *slog.Logger

	mu      sync.Mutex
	stopped bool
}

const (
	// defaultWait is how long pg_ctl waits for the server to start or stop
	// when the caller's context has no deadline.
	defaultWait = 60 * time.Second

	// maxSocketPath is the longest Unix socket path every platform accepts
	// (sun_path is 104 bytes on macOS including the terminating NUL).
	maxSocketPath = 103
)

// errPortInUse marks a start that failed only because another process
// took the port between choosing it and Postgres binding it.
var errPortInUse = errors.New("port already in use")

// Start brings up the server in cfg.Dir, creating the cluster on first use,
// and returns once it accepts connections. ctx bounds the whole start,
// including initdb; if it ends while the server is still coming up, the
// server may be left running, and the next Start adopts it.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("localpg: Config.Dir is required")
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("localpg: Config.Port %d is out of range", cfg.Port)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("localpg: resolve %s: %w", cfg.Dir, err)
	}
	// pg_ctl pastes the data directory and log path into a shell command in
	// double quotes, so these characters would break or inject into it.
	if strings.ContainsAny(dir, "\"\\$`\n") {
		return nil, fmt.Errorf("localpg: directory %q contains a character pg_ctl cannot quote (\" \\ $ ` or newline); choose another", dir)
	}

	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	binDir := cfg.BinDir
	if binDir == "" {
		if binDir, err = FindBinaries(); err != nil {
			return nil, err
		}
	} else if err := checkBinDir(binDir); err != nil {
		return nil, err
	}

	acct, err := serviceAccount()
	if err != nil {
		return nil, err
	}

	s := &Server{
		dir:     dir,
		dataDir: filepath.Join(dir, "data"),
		sockDir: filepath.Join(dir, "socket"),
		logFile: filepath.Join(dir, "postgres.log"),
		binDir:  binDir,
		acct:    acct,
		logger:  logger,
	}
	if acct != nil {
		logger.Info("localpg: running as root; Postgres will run as an unprivileged account", "account", acct.name)
	}

	if err := s.prepareDir(); err != nil {
		return nil, err
	}
	version, err := s.binaryVersion(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.ensureCluster(ctx, version); err != nil {
		return nil, err
	}
	adopted, err := s.adoptRunning(ctx, cfg.Port)
	if err != nil {
		return nil, err
	}
	if adopted {
		return s, nil
	}
	if err := s.start(ctx, cfg.Port); err != nil {
		return nil, err
	}
	return s, nil
}

// URL returns a connection URL for database on this server, as the
// passwordless superuser "postgres".
func (s *Server) URL(database string) string {
	return urlFor(s.port, database)
}

// Stop shuts the server down with `pg_ctl stop -m fast`, which ends open
// sessions and rolls back their transactions but writes everything committed
// to disk, and waits until the server has exited. Calling it again is a no-op.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	begin := time.Now()
	if err := s.pgCtlStop(ctx); err != nil {
		return err
	}
	s.stopped = true
	s.logger.Info("localpg: stopped", "dir", s.dir, "took", time.Since(begin).Round(time.Millisecond))
	return nil
}

// account is the unprivileged user the binaries run as when we are root.
type account struct {
	name     string
	uid, gid int
}

// serviceAccount returns the account to run Postgres as, or nil when we are
// not root and can simply run it as ourselves.
func serviceAccount() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, errUID := strconv.Atoi(u.Uid)
		gid, errGID := strconv.Atoi(u.Gid)
		if errUID != nil || errGID != nil || uid == 0 {
			continue
		}
		return &account{name: name, uid: uid, gid: gid}, nil
	}
	return nil, errors.New("localpg: running as root, which Postgres refuses, and there is no \"postgres\" or \"nobody\" account to run it as; " +
		"create one (useradd --system postgres) or run as a normal user")
}

// prepareDir creates Dir and, as root, hands it to the server's account.
func (s *Server) prepareDir() error {
	// Parents get 0755 so the server's account can walk through them when we
	// are root; Dir itself stays private.
	if err := os.MkdirAll(filepath.Dir(s.dir), 0o755); err != nil {
		return fmt.Errorf("localpg: create %s: %w", filepath.Dir(s.dir), err)
	}
	for _, d := range []string{s.dir, s.sockDir} {
		if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("localpg: create %s: %w", d, err)
		}
	}
	return s.chownTree()
}

// chownTree gives everything under Dir to the server's account. It runs on
// every start, not just the first, so a Dir that was used without root, or
// with a different account, still works.
func (s *Server) chownTree() error {
	if s.acct == nil {
		return nil
	}
	err := filepath.WalkDir(s.dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, s.acct.uid, s.acct.gid)
	})
	if err != nil {
		return fmt.Errorf("localpg: give %s to account %s: %w", s.dir, s.acct.name, err)
	}
	return nil
}

// binaryVersion returns the server binaries' major version. Running it as
// the server's account from inside Dir doubles as a check that the account
// can reach Dir at all, which gives a far clearer error than initdb would.
func (s *Server) binaryVersion(ctx context.Context) (string, error) {
	out, err := s.command(ctx, "postgres", "--version").CombinedOutput()
	if err != nil {
		if s.acct != nil && errors.Is(err, fs.ErrPermission) {
			return "", fmt.Errorf("localpg: account %s cannot reach %s (%w); as root, Postgres runs as that account, "+
				"so every directory above Dir must be searchable by others (chmod o+x), or choose a Dir outside root's home",
				s.acct.name, s.dir, err)
		}
		return "", fmt.Errorf("localpg: %s --version: %w: %s", filepath.Join(s.binDir, "postgres"), err, bytesTrim(out))
	}
	version, err := majorVersion(string(out))
	if err != nil {
		return "", fmt.Errorf("localpg: %s --version: %w", filepath.Join(s.binDir, "postgres"), err)
	}
	return version, nil
}

// ensureCluster reuses the cluster in Dir/data, so demo data survives
// restarts, or creates one.
func (s *Server) ensureCluster(ctx context.Context, version string) error {
	existing, err := os.ReadFile(filepath.Join(s.dataDir, "PG_VERSION"))
	switch {
	case err == nil:
		if got := strings.TrimSpace(string(existing)); got != version {
			return fmt.Errorf("localpg: the cluster in %s was created by PostgreSQL %s but %s holds PostgreSQL %s; "+
				"set BinDir to a PostgreSQL %s installation, or delete %s to start over (its data is lost)",
				s.dataDir, got, s.binDir, version, got, s.dataDir)
		}
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("localpg: read cluster version: %w", err)
	}

	if entries, err := os.ReadDir(s.dataDir); err == nil && len(entries) > 0 {
		return fmt.Errorf("localpg: %s exists but is not a Postgres cluster (no PG_VERSION); move it away and start again", s.dataDir)
	}

	// initdb works in a scratch directory that is renamed into place only
	// once complete. initdb writes PG_VERSION early, so a first run
	// interrupted by Ctrl-C would otherwise leave a broken cluster that
	// every later start mistakes for a real one.
	scratch := s.dataDir + ".initdb"
	if err := os.RemoveAll(scratch); err != nil {
		return fmt.Errorf("localpg: clear leftover %s: %w", scratch, err)
	}
	if err := os.Remove(s.dataDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("localpg: remove empty %s: %w", s.dataDir, err)
	}

	s.logger.Info("localpg: creating database cluster (first start only)", "dir", s.dataDir, "version", version)
	begin := time.Now()
	out, err := s.command(ctx, "initdb",
		"-D", scratch,
		"-U", "postgres",
		"-A", "trust", // only reachable from 127.0.0.1 and our own socket
		"-E", "UTF8",
		"--locale=C", // independent of the machine's locales, which containers often lack
	).CombinedOutput()
	if err != nil {
		_ = os.RemoveAll(scratch)
		return fmt.Errorf("localpg: initdb: %w: %s", err, bytesTrim(out))
	}
	if err := os.Rename(scratch, s.dataDir); err != nil {
		return fmt.Errorf("localpg: move new cluster into place: %w", err)
	}
	s.logger.Info("localpg: created database cluster", "dir", s.dataDir, "took", time.Since(begin).Round(time.Millisecond))
	return nil
}

// adoptRunning deals with a postmaster.pid left in the data directory. If the
// server it names is ours and answering, we adopt it (the usual case: the
// previous datarights process died without calling Stop). Otherwise it
// clears the way for a fresh start. It reports whether it adopted a server.
func (s *Server) adoptRunning(ctx context.Context, requestedPort int) (bool, error) {
	pidPath := filepath.Join(s.dataDir, "postmaster.pid")
	pid, port, err := readPIDFile(pidPath)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		// An empty or truncated lock file is what a crash early in startup
		// leaves, and Postgres refuses to start past one.
		s.logger.Warn("localpg: removing unreadable postmaster.pid", "path", pidPath, "error", err)
		if err := os.Remove(pidPath); err != nil {
			return false, fmt.Errorf("localpg: remove unreadable %s: %w", pidPath, err)
		}
		return false, nil
	}

	if port != 0 {
		if dataDir, err := queryDataDir(ctx, port); err == nil && sameDir(dataDir, s.dataDir) {
			s.port = port
			if requestedPort == 0 || requestedPort == port {
				s.recordPort(port)
				s.logger.Info("localpg: reusing server already running from this directory", "pid", pid, "port", port)
				return true, nil
			}
			s.logger.Info("localpg: restarting running server on the requested port", "port", port, "requested", requestedPort)
			return false, s.pgCtlStop(ctx)
		}
	}

	switch pidOwner(pid, s.dataDir) {
	case ownerGone:
		// Postgres clears a lock file whose process is gone by itself, after
		// checking no orphaned backend still uses the old shared memory.
	case ownerOther:
		// The PID was recycled, typically after a reboot or container
		// restart. Postgres would see a live process and refuse to start.
		s.logger.Warn("localpg: removing stale postmaster.pid; its PID now belongs to an unrelated process", "pid", pid)
		if err := os.Remove(pidPath); err != nil {
			return false, fmt.Errorf("localpg: remove stale %s: %w", pidPath, err)
		}
	case ownerUs:
		// Running from this directory but not answering: still starting,
		// recovering from a crash, or shutting down. Stop it so the fresh
		// start gets our settings.
		s.logger.Warn("localpg: stopping unresponsive server left running from this directory", "pid", pid)
		if err := s.pgCtlStop(ctx); err != nil {
			return false, err
		}
	case ownerUnknown:
		// Without /proc we cannot tell a recycled PID from a live server, and
		// signalling a stranger is worse than failing, so let Postgres decide;
		// pgCtlStart's error explains how to clear the file.
	}
	return false, nil
}

// start launches the server on the requested port, or on a chosen one,
// retrying with another if someone else grabs a chosen port first.
func (s *Server) start(ctx context.Context, requestedPort int) error {
	begin := time.Now()
	for attempt := 1; ; attempt++ {
		port, err := s.choosePort(requestedPort, attempt)
		if err != nil {
			return err
		}
		err = s.pgCtlStart(ctx, port)
		if err == nil {
			s.port = port
			break
		}
		if requestedPort == 0 && attempt < 3 && errors.Is(err, errPortInUse) {
			s.logger.Info("localpg: chosen port was taken before the server bound it; trying another", "port", port)
			continue
		}
		return err
	}
	s.recordPort(s.port)

	if err := s.waitReady(ctx); err != nil {
		// Don't leave a server nobody can use running behind the caller.
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = s.pgCtlStop(stopCtx)
		return err
	}
	s.logger.Info("localpg: started", "url", s.URL("postgres"), "log", s.logFile, "took", time.Since(begin).Round(time.Millisecond))
	return nil
}

// choosePort returns the port to start on, preferring on the first attempt
// the port recorded by the previous start.
func (s *Server) choosePort(requestedPort, attempt int) (int, error) {
	if requestedPort != 0 {
		return requestedPort, nil
	}
	if recorded := s.recordedPort(); recorded != 0 && attempt == 1 {
		if portFree(recorded) {
			return recorded, nil
		}
		s.logger.Info("localpg: port used last time is taken; choosing another", "port", recorded)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("localpg: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

func (s *Server) portFile() string { return filepath.Join(s.dir, "port") }

func (s *Server) recordedPort() int {
	b, err := os.ReadFile(s.portFile())
	if err != nil {
		return 0
	}
	port, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || port <= 0 || port > 65535 {
		return 0
	}
	return port
}

// recordPort remembers port for the next start. Failing to is only a missed
// preference, so it logs rather than failing the start.
func (s *Server) recordPort(port int) {
	err := os.WriteFile(s.portFile(), []byte(strconv.Itoa(port)+"\n"), 0o600)
	if err == nil && s.acct != nil {
		err = os.Lchown(s.portFile(), s.acct.uid, s.acct.gid)
	}
	if err != nil {
		s.logger.Warn("localpg: could not record port for the next start", "path", s.portFile(), "error", err)
	}
}

// pgCtlStart runs `pg_ctl start -w`, which returns once the server reports
// itself ready in postmaster.pid, or fails with the server log's last lines.
func (s *Server) pgCtlStart(ctx context.Context, port int) error {
	var logOffset int64
	if info, err := os.Stat(s.logFile); err == nil {
		logOffset = info.Size()
	}

	sockDir := s.sockDir
	if len(sockDir)+len("/.s.PGSQL.")+len(strconv.Itoa(port)) > maxSocketPath {
		// Too deep for a socket path; TCP is all datarights uses anyway.
		s.logger.Info("localpg: Dir is too long a path for a Unix socket; listening on TCP only", "dir", s.dir)
		sockDir = ""
	}
	// pg_ctl hands -o to a shell, hence the quoting.
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s", port, shellQuote(sockDir))

	out, err := s.command(ctx, "pg_ctl",
		"-D", s.dataDir,
		"-l", s.logFile,
		"-o", opts,
		"-w", "-t", waitSeconds(ctx),
		"start",
	).CombinedOutput()
	if err == nil {
		return nil
	}
	serverLog := readFrom(s.logFile, logOffset)
	if strings.Contains(serverLog, "Address already in use") {
		return fmt.Errorf("localpg: start on port %d: %w", port, errPortInUse)
	}
	msg := fmt.Sprintf("localpg: pg_ctl start: %v: %s\nserver log %s:\n%s", err, bytesTrim(out), s.logFile, serverLog)
	if strings.Contains(serverLog, "lock file") {
		msg += fmt.Sprintf("\nif no server is running from %s, delete %s and start again",
			s.dataDir, filepath.Join(s.dataDir, "postmaster.pid"))
	}
	return errors.New(msg)
}

// pgCtlStop stops the server in fast mode and waits for it to exit. A server
// that is already gone counts as stopped.
func (s *Server) pgCtlStop(ctx context.Context) error {
	out, err := s.command(ctx, "pg_ctl",
		"-D", s.dataDir,
		"-m", "fast",
		"-w", "-t", waitSeconds(ctx),
		"stop",
	).CombinedOutput()
	if err != nil {
		if _, statErr := os.Stat(filepath.Join(s.dataDir, "postmaster.pid")); errors.Is(statErr, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("localpg: pg_ctl stop %s: %w: %s", s.dataDir, err, bytesTrim(out))
	}
	return nil
}

// waitReady confirms over TCP, the way datarights will connect, that the
// server accepts connections and is the one serving our data directory.
// pg_ctl -w has normally waited already, so this usually succeeds at once.
func (s *Server) waitReady(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	for {
		dataDir, err := queryDataDir(ctx, s.port)
		if err == nil {
			if !sameDir(dataDir, s.dataDir) {
				return fmt.Errorf("localpg: port %d is served by a Postgres for %s, not %s", s.port, dataDir, s.dataDir)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("localpg: server on port %d does not accept connections: %w (last error: %v); see %s", s.port, ctx.Err(), err, s.logFile)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// queryDataDir asks the server on port which data directory it serves. That
// tells our server apart from any other Postgres that may hold the port.
func queryDataDir(ctx context.Context, port int) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, urlFor(port, "postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var dataDir string
	if err := conn.QueryRow(ctx, "SELECT current_setting('data_directory')").Scan(&dataDir); err != nil {
		return "", err
	}
	return dataDir, nil
}

// command prepares a Postgres binary to run as the server's account, from
// inside Dir.
func (s *Server) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(s.binDir, name), args...)
	cmd.Dir = s.dir
	cmd.Env = serverEnv()
	// pg_ctl's server runs on after pg_ctl exits; should it ever hold on to
	// our output pipe, don't wait for it.
	cmd.WaitDelay = 5 * time.Second
	s.acct.runAs(cmd)
	return cmd
}

// serverEnv is our environment without PG* variables. A developer's PGDATA,
// PGPORT or PGHOST point at their usual server and would quietly steer the
// tools there.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return env
}

func urlFor(port int, database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// readPIDFile reads the PID (line 1) and port (line 4) from postmaster.pid.
func readPIDFile(path string) (pid, port int, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	lines := strings.Split(string(b), "\n")
	pid, err = strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil {
		return 0, 0, fmt.Errorf("no PID in %s", path)
	}
	if pid < 0 { // a single-user backend writes its PID negated
		pid = -pid
	}
	if len(lines) > 3 {
		port, _ = strconv.Atoi(strings.TrimSpace(lines[3]))
	}
	return pid, port, nil
}

type owner int

const (
	ownerGone    owner = iota // no such process
	ownerUs                   // a Postgres process of our data directory
	ownerOther                // a live process that has nothing to do with us
	ownerUnknown              // alive, but we cannot tell whose
)

// pidOwner works out who the PID in a postmaster.pid belongs to now. Every
// Postgres process has the data directory as its working directory, which
// Linux shows in /proc.
func pidOwner(pid int, dataDir string) owner {
	if pid <= 0 || !processAlive(pid) {
		return ownerGone
	}
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		return ownerUnknown
	}
	if sameDir(cwd, dataDir) {
		return ownerUs
	}
	return ownerOther
}

func sameDir(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	ra, errA := filepath.EvalSymlinks(a)
	rb, errB := filepath.EvalSymlinks(b)
	return errA == nil && errB == nil && ra == rb
}

// waitSeconds is pg_ctl's -t: what is left of ctx, or defaultWait.
func waitSeconds(ctx context.Context) string {
	wait := defaultWait
	if deadline, ok := ctx.Deadline(); ok {
		wait = time.Until(deadline)
	}
	return strconv.Itoa(max(1, int(math.Ceil(wait.Seconds()))))
}

// readFrom returns the end of what was appended to path after offset,
// enough to show why a start failed.
func readFrom(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return "(unreadable log: " + err.Error() + ")"
	}
	b, _ := io.ReadAll(f)
	const keep = 4000
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	return bytesTrim(b)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func bytesTrim(b []byte) string { return strings.TrimSpace(string(b)) }
