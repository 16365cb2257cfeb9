package main

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/datarights/datarights/demo"
	"github.com/datarights/datarights/keyring"
	"github.com/datarights/datarights/storage/storagetest"
)

// TestContainerImage proves what deploy/Dockerfile assumes, without a
// Docker engine: the binary built with the Dockerfile's own go build line
// is static, embeds its migrations and the time-zone database, and runs
// as the Dockerfile's non-root USER in a root holding nothing but the
// binary, the configuration and data_dir, where `migrate up`, `serve` and
// `worker` start and carry a request to its end, writing nowhere but
// data_dir.
//
// As root (CI) the processes are chrooted into that root, as the image's
// user: no /usr/share/zoneinfo, /etc or /tmp of the host's to lean on, and
// a write anywhere else would show up in the root. Not as root, they run
// as the current user with the same layout under a temporary directory,
// ZONEINFO pointing nowhere, and the embedded zone database is checked in
// the binary's bytes instead.
func TestContainerImage(t *testing.T) {
	t.Parallel()
	df := parseDockerfile(t, "../../deploy/Dockerfile")
	for _, want := range []string{"CGO_ENABLED=0"} {
		if !strings.Contains(strings.Join(df.buildEnv, " "), want) {
			t.Errorf("the Dockerfile's go build does not set %s", want)
		}
	}
	if !strings.Contains(strings.Join(df.buildArgs, " "), "-trimpath") {
		t.Error("the Dockerfile's go build lacks -trimpath")
	}
	if df.uid == 0 || df.gid == 0 {
		t.Errorf("the Dockerfile's USER is %d:%d: the image must not run as root", df.uid, df.gid)
	}
	example, err := os.ReadFile("../../deploy/datarights.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^data_dir: (\S+)$`).FindSubmatch(example); m == nil || string(m[1]) != df.volume {
		t.Errorf("deploy/datarights.example.yaml's data_dir is not the Dockerfile's VOLUME %s", df.volume)
	}

	// The databases and the demo bank, as the other end-to-end tests have
	// them; the processes below get their own configuration.
	e := setupE2E(t, false, "")
	bin := buildImageBinary(t, df)
	checkStatic(t, bin)

	chroot := os.Geteuid() == 0
	for _, u := range []string{e.serviceURL, e.bankURL} {
		if strings.Contains(u, "host=/") {
			chroot = false // a Unix socket outside the root: unreachable from inside it
		}
	}

	// The image's file system: the binary, the configuration, data_dir,
	// and an empty home (the working directory) and /tmp.
	root := t.TempDir()
	const home, tmp = "/home/nonroot", "/tmp"
	inside := func(p string) string { // a path as the process sees it
		if chroot {
			return p
		}
		return filepath.Join(root, p)
	}
	host := func(p string) string { return filepath.Join(root, p) }
	binPath, cfgPath := df.entrypoint[0], df.configPath(t)
	for _, d := range []string{filepath.Dir(binPath), filepath.Dir(cfgPath), df.volume, home, tmp} {
		if err := os.MkdirAll(host(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, bin, host(binPath), 0o755)
	yaml := testStaffYAML(true) + migrateYAML(e.serviceURL) +
		demo.ConfigYAML(storagetest.RuntimeURL(t, e.serviceURL), e.bankURL, inside(df.volume))
	if err := os.WriteFile(host(cfgPath), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	var cred *syscall.Credential
	if chroot {
		// Everything root-owned and read-only to the image's user but its
		// home, /tmp and data_dir, which it may write (and must not).
		if err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				err = os.Chmod(p, 0o755)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{df.volume, home, tmp} {
			if err := os.Chown(host(d), df.uid, df.gid); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(host(d), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		cred = &syscall.Credential{Uid: uint32(df.uid), Gid: uint32(df.gid), Groups: []uint32{}}
	}
	before := treeSnapshot(t, root)

	serveAddr, workerAddr := freePort(t), freePort(t)
	env := []string{
		// No TZ; ZONEINFO names nothing, so only the embedded database can
		// give Asia/Shanghai (the products' deadlines are counted there:
		// the configuration does not load without it).
		"ZONEINFO=/nonexistent/zoneinfo.zip",
		"HOME=" + inside(home),
		"TMPDIR=" + inside(tmp),
		"DATARIGHTS_STAFF_TOKEN=" + testToken,
		keyring.EnvVar + "=" + testSecretKey,
		"DATARIGHTS_PUBLIC_URL=http://" + serveAddr,
	}
	logs := t.TempDir()
	command := func(name string, extraEnv []string, args ...string) *exec.Cmd {
		cmd := exec.Command(inside(binPath), args...)
		if !chroot {
			cmd = exec.Command(host(binPath), args...)
		}
		cmd.Dir = inside(home)
		cmd.Env = append(append([]string{}, env...), extraEnv...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if chroot {
			cmd.SysProcAttr.Chroot = root
		}
		log, err := os.Create(filepath.Join(logs, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { log.Close() })
		cmd.Stdout, cmd.Stderr = log, log
		return cmd
	}
	showLog := func(name string) string {
		out, _ := os.ReadFile(filepath.Join(logs, name+".log"))
		return string(out)
	}
	args := func(verb ...string) []string {
		return append(verb, "-config", inside(cfgPath))
	}

	// Migrations are embedded: nothing on disk to read them from.
	migrate := command("migrate", nil, args("migrate", "up")...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := runWithContext(ctx, migrate); err != nil {
		t.Fatalf("migrate up: %v\n%s", err, showLog("migrate"))
	}

	// serve and worker, as the image's CMD and compose run them.
	type proc struct {
		name   string
		cmd    *exec.Cmd
		exited chan error
	}
	start := func(name, addr string) proc {
		p := proc{name, command(name, []string{"DATARIGHTS_HTTP_ADDR=" + addr}, args(name)...), make(chan error, 1)}
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		go func() { p.exited <- p.cmd.Wait() }()
		t.Cleanup(func() { _ = p.cmd.Process.Kill() }) // if the test stopped early
		waitFor(t, 30*time.Second, name+" to answer /readyz", func() bool {
			select {
			case err := <-p.exited:
				t.Fatalf("%s exited: %v\n%s", name, err, showLog(name))
			default:
			}
			resp, err := http.Get("http://" + addr + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
		return p
	}
	procs := []proc{start("serve", serveAddr), start("worker", workerAddr)}

	// A copy, carried to its end: staged, exported and emailed (to the
	// file outbox in data_dir).
	e.base = "http://" + serveAddr
	code, body := e.call("POST", "/api/v1/requests", testToken, copyTicket("demo-user-7"))
	if code != http.StatusCreated {
		t.Fatalf("file a request: %d %v\nserve:\n%s", code, body, showLog("serve"))
	}
	id := body["id"].(string)
	e.waitStatus(id, "completed", 40*time.Second)

	// Stop as the orchestrator does, then compare.
	for _, p := range procs {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-p.exited:
			if err != nil {
				t.Errorf("%s after SIGTERM: %v\n%s", p.name, err, showLog(p.name))
			}
		case <-time.After(20 * time.Second):
			t.Errorf("%s still running 20s after SIGTERM", p.name)
		}
	}
	after := treeSnapshot(t, root)
	gained := 0
	for p, was := range before {
		if now, ok := after[p]; !ok {
			t.Errorf("%s was removed", p)
		} else if now != was && !under(p, df.volume) {
			t.Errorf("%s was changed (%v, was %v)", p, now, was)
		}
	}
	for p := range after {
		if _, ok := before[p]; ok {
			continue
		}
		if !under(p, df.volume) {
			t.Errorf("%s was written: only data_dir (%s) may be", p, df.volume)
			continue
		}
		gained++
	}
	outbox, _ := filepath.Glob(host(filepath.Join(df.volume, "outbox", id+".completion*.eml")))
	if len(outbox) != 1 {
		t.Errorf("no completion email in data_dir/outbox: %v", outbox)
	}
	t.Logf("chroot=%v uid=%d: migrate up, serve and worker ready, request %s completed; data_dir gained %d entries, nothing else changed", chroot, os.Geteuid(), id, gained)
	if chroot {
		t.Logf("as %d:%d in a root with %d entries before the run", df.uid, df.gid, len(before))
	}
}

// dockerfile is what TestContainerImage takes from deploy/Dockerfile.
type dockerfile struct {
	buildEnv   []string // NAME=VALUE before go build
	buildArgs  []string // go build's arguments, -o and the package included
	output     string   // go build -o
	uid, gid   int      // USER
	volume     string   // VOLUME: data_dir
	entrypoint []string
	cmd        []string
}

func parseDockerfile(t *testing.T, path string) dockerfile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var df dockerfile
	text := strings.ReplaceAll(string(data), "\\\n", " ")
	jsonArray := func(instr, rest string) []string {
		var v []string
		if err := json.Unmarshal([]byte(rest), &v); err != nil || len(v) == 0 {
			t.Fatalf("Dockerfile: %s %s: want a JSON array (exec form)", instr, rest)
		}
		return v
	}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "RUN":
			words := shellWords(t, rest)
			i := 0
			for i < len(words) && strings.Contains(words[i], "=") {
				i++
			}
			if i+1 < len(words) && words[i] == "go" && words[i+1] == "build" {
				df.buildEnv, df.buildArgs = words[:i], words[i+2:]
			}
		case "USER":
			ids := strings.Split(rest, ":")
			var err1, err2 error
			df.uid, err1 = strconv.Atoi(ids[0])
			df.gid, err2 = df.uid, nil
			if len(ids) == 2 {
				df.gid, err2 = strconv.Atoi(ids[1])
			}
			if err1 != nil || err2 != nil {
				t.Fatalf("Dockerfile: USER %s: want numeric uid:gid (Kubernetes' runAsNonRoot cannot verify a name)", rest)
			}
		case "VOLUME":
			v := jsonArray(instr, rest)
			if len(v) != 1 {
				t.Fatalf("Dockerfile: VOLUME %s: want one, data_dir", rest)
			}
			df.volume = v[0]
		case "ENTRYPOINT":
			df.entrypoint = jsonArray(instr, rest)
		case "CMD":
			df.cmd = jsonArray(instr, rest)
		}
	}
	for i, a := range df.buildArgs {
		if a == "-o" && i+1 < len(df.buildArgs) {
			df.output = df.buildArgs[i+1]
		}
	}
	switch {
	case df.buildArgs == nil:
		t.Fatal("Dockerfile: no RUN … go build")
	case df.output == "":
		t.Fatal("Dockerfile: go build has no -o")
	case df.volume == "" || df.entrypoint == nil || df.cmd == nil:
		t.Fatal("Dockerfile: VOLUME, ENTRYPOINT and CMD are needed")
	case df.uid == 0 && !strings.Contains(text, "\nUSER "):
		t.Fatal("Dockerfile: no USER: the image would run as root")
	}
	return df
}

// configPath is CMD's -config.
func (df dockerfile) configPath(t *testing.T) string {
	for i, a := range df.cmd {
		if (a == "-config" || a == "--config") && i+1 < len(df.cmd) {
			return df.cmd[i+1]
		}
	}
	t.Fatalf("Dockerfile: CMD %v has no -config", df.cmd)
	return ""
}

// shellWords splits a RUN line as sh would, for the quoting the Dockerfile
// uses ("…", '…'); anything fancier fails the test rather than being
// misread.
func shellWords(t *testing.T, s string) []string {
	var words []string
	var cur strings.Builder
	inWord, quote := false, rune(0)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words, inWord = append(words, cur.String()), false
				cur.Reset()
			}
		case strings.ContainsRune("$`\\;&|<>()", r):
			if strings.Contains(s, "go build") {
				t.Fatalf("Dockerfile: RUN %s: %q is more shell than this test reads", s, r)
			}
			cur.WriteRune(r)
			inWord = true
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// buildImageBinary runs the Dockerfile's go build, from the module's root
// (its WORKDIR, where COPY . . put the source), with -o in a temporary
// directory.
func buildImageBinary(t *testing.T, df dockerfile) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "datarights")
	args := append([]string{"build"}, df.buildArgs...)
	for i := range args {
		if i > 0 && args[i-1] == "-o" {
			args[i] = out
		}
	}
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	cmd.Env = append(os.Environ(), df.buildEnv...)
	started := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", strings.Join(df.buildEnv, " "), strings.Join(cmd.Args, " "), err, b)
	}
	t.Logf("built the image's binary in %s", time.Since(started).Round(time.Millisecond))
	return out
}

// checkStatic: no program interpreter (the dynamic loader), no dynamic
// section, and the zone database inside.
func checkStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary is not static: it has %v (CGO_ENABLED=0?)", p.Type)
		}
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	// time/tzdata stores each zone uncompressed in a zip: its name, then
	// its TZif data.
	if !bytes.Contains(data, []byte("Asia/ShanghaiTZif")) {
		t.Error("the binary does not embed Asia/Shanghai (import _ \"time/tzdata\")")
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, mode); err != nil {
		t.Fatal(err)
	}
}

func runWithContext(ctx context.Context, cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		return ctx.Err()
	}
}

// entry is what a snapshot keeps of a path: a change to a directory's
// modification time shows a file made and removed there.
type entry struct {
	mode  fs.FileMode
	size  int64
	mtime time.Time
}

func (e entry) String() string {
	return fmt.Sprintf("%v %d bytes %s", e.mode, e.size, e.mtime.Format(time.RFC3339Nano))
}

// treeSnapshot lists everything under root, by path as seen from inside it.
func treeSnapshot(t *testing.T, root string) map[string]entry {
	t.Helper()
	s := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		s["/"+filepath.ToSlash(rel)] = entry{mode: info.Mode(), size: info.Size(), mtime: info.ModTime()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// under says whether p is dir or inside it.
func under(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}
