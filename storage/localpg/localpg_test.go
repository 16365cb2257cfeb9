package localpg

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestStartKeepsDataAcrossRestarts(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dir := serverDir(t)

	begin := time.Now()
	srv := startServer(t, ctx, dir)
	t.Logf("first start (with initdb) took %v", time.Since(begin).Round(time.Millisecond))
	firstURL := srv.URL("postgres")

	mustExec(t, ctx, srv, "CREATE TABLE demo (id int PRIMARY KEY, note text)")
	mustExec(t, ctx, srv, "INSERT INTO demo VALUES (1, 'survives restarts')")

	begin = time.Now()
	if err := srv.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("stop took %v", time.Since(begin).Round(time.Millisecond))
	if _, err := os.Stat(filepath.Join(dir, "data", "postmaster.pid")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("postmaster.pid still there after Stop (stat error %v)", err)
	}
	if err := srv.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v, want no-op", err)
	}

	begin = time.Now()
	srv = startServer(t, ctx, dir)
	t.Logf("restart on existing cluster took %v", time.Since(begin).Round(time.Millisecond))
	if got := srv.URL("postgres"); got != firstURL {
		t.Errorf("restart URL = %s, want the recorded port again: %s", got, firstURL)
	}
	if got := queryNote(t, ctx, srv); got != "survives restarts" {
		t.Errorf("note after restart = %q", got)
	}
	if err := srv.Stop(ctx); err != nil {
		t.Fatalf("Stop after restart: %v", err)
	}
}

// A datarights process that dies without calling Stop leaves its server
// running; the next Start must adopt it rather than trip over the lock file.
func TestStartAdoptsServerLeftRunning(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dir := serverDir(t)

	orphan := startServer(t, ctx, dir)
	mustExec(t, ctx, orphan, "CREATE TABLE demo (id int PRIMARY KEY, note text)")
	mustExec(t, ctx, orphan, "INSERT INTO demo VALUES (1, 'still here')")

	srv := startServer(t, ctx, dir)
	if srv.URL("postgres") != orphan.URL("postgres") {
		t.Errorf("adopted URL = %s, want %s", srv.URL("postgres"), orphan.URL("postgres"))
	}
	if got := queryNote(t, ctx, srv); got != "still here" {
		t.Errorf("note = %q", got)
	}
	if err := srv.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

// After a reboot or container restart, the PID in a leftover postmaster.pid
// can belong to an unrelated process of the same user, and Postgres would
// refuse to start. Start must recognize that and clear the file.
func TestStartClearsPIDFileWithRecycledPID(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("recycled PIDs are only recognized through /proc")
	}
	ctx := testContext(t)
	dir := serverDir(t)

	srv := startServer(t, ctx, dir)
	pidPath := filepath.Join(dir, "data", "postmaster.pid")
	lockFile, err := os.ReadFile(pidPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}

	// A live process of the server's own account stands in for the stranger
	// that got the old postmaster's PID.
	acct, err := serviceAccount()
	if err != nil {
		t.Fatal(err)
	}
	stranger := exec.Command("sleep", "60")
	acct.runAs(stranger)
	if err := stranger.Start(); err != nil {
		t.Fatalf("start stand-in process: %v", err)
	}
	t.Cleanup(func() {
		_ = stranger.Process.Kill()
		_ = stranger.Wait()
	})
	lines := strings.SplitN(string(lockFile), "\n", 2)
	stale := strconv.Itoa(stranger.Process.Pid) + "\n" + lines[1]
	if err := os.WriteFile(pidPath, []byte(stale), 0o600); err != nil {
		t.Fatal(err)
	}
	if acct != nil {
		if err := os.Chown(pidPath, acct.uid, acct.gid); err != nil {
			t.Fatal(err)
		}
	}

	srv = startServer(t, ctx, dir)
	if err := srv.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

// As root, the server runs as another account, which cannot get into a Dir
// below a private directory (such as /root). Start must say so plainly.
func TestStartExplainsUnreachableDirAsRoot(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("only root hands the server to another account")
	}
	if _, err := FindBinaries(); err != nil {
		t.Skipf("no Postgres binaries installed: %v", err)
	}
	private := filepath.Join(t.TempDir(), "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Start(testContext(t), Config{Dir: filepath.Join(private, "pg")})
	if err == nil || !strings.Contains(err.Error(), "cannot reach") {
		t.Fatalf("Start error = %v, want one explaining the account cannot reach Dir", err)
	}
	t.Log(err)
}

func TestFindBinaries(t *testing.T) {
	t.Parallel()
	dir, err := FindBinaries()
	if err != nil {
		t.Skipf("no Postgres binaries installed: %v", err)
	}
	for _, name := range requiredBinaries {
		if !isExecutable(filepath.Join(dir, name)) {
			t.Errorf("%s has no executable %s", dir, name)
		}
	}
}

func TestStartRejectsUnusableConfig(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	for name, cfg := range map[string]Config{
		"no dir":        {},
		"bad port":      {Dir: t.TempDir(), Port: 70000},
		"quote in path": {Dir: filepath.Join(t.TempDir(), `a"b`)},
		"empty bin dir": {Dir: t.TempDir(), BinDir: t.TempDir()},
	} {
		if _, err := Start(ctx, cfg); err == nil {
			t.Errorf("%s: Start succeeded, want error", name)
		}
	}
}

func TestSortByVersionDesc(t *testing.T) {
	t.Parallel()
	paths := []string{
		"/opt/homebrew/opt/postgresql/bin",
		"/usr/lib/postgresql/9.6/bin",
		"/usr/lib/postgresql/16/bin",
		"/usr/lib/postgresql/13/bin",
	}
	sortByVersionDesc(paths)
	want := "/usr/lib/postgresql/16/bin /usr/lib/postgresql/13/bin /usr/lib/postgresql/9.6/bin /opt/homebrew/opt/postgresql/bin"
	if got := strings.Join(paths, " "); got != want {
		t.Errorf("sorted = %s\nwant     %s", got, want)
	}
}

func TestMajorVersion(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)\n": "15",
		"postgres (PostgreSQL) 17beta1":                          "17",
		"postgres (PostgreSQL) 9.6.24":                           "9.6",
	} {
		if got, err := majorVersion(in); err != nil || got != want {
			t.Errorf("majorVersion(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// serverDir returns an empty directory for a server's Dir. As root the
// server runs as an unprivileged account, which must be able to walk down to
// it, but t.TempDir's per-test parent is created 0700; open it up to 0755.
func serverDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if os.Geteuid() != 0 {
		return filepath.Join(dir, "pg")
	}
	for d := dir; d != os.TempDir() && d != filepath.Dir(d); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "pg")
}

// startServer starts a server in dir, stopping it when the test ends in case
// the test fails before it does so itself, and skips if Postgres is not
// installed at all.
func startServer(t *testing.T, ctx context.Context, dir string) *Server {
	t.Helper()
	if _, err := FindBinaries(); err != nil {
		t.Skipf("no Postgres binaries installed, cannot run a private server: %v", err)
	}
	srv, err := Start(ctx, Config{Dir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			t.Errorf("cleanup Stop: %v", err)
		}
	})
	return srv
}

func mustExec(t *testing.T, ctx context.Context, srv *Server, sql string) {
	t.Helper()
	conn := connect(t, ctx, srv)
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func queryNote(t *testing.T, ctx context.Context, srv *Server) string {
	t.Helper()
	conn := connect(t, ctx, srv)
	defer conn.Close(ctx)
	var note string
	if err := conn.QueryRow(ctx, "SELECT note FROM demo WHERE id = 1").Scan(&note); err != nil {
		t.Fatalf("query note: %v", err)
	}
	return note
}

func connect(t *testing.T, ctx context.Context, srv *Server) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, srv.URL("postgres"))
	if err != nil {
		t.Fatalf("connect to %s: %v", srv.URL("postgres"), err)
	}
	return conn
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
