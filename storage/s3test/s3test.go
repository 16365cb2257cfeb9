// Package s3test runs a real S3-compatible server for tests: versitygw with
// its posix backend, storing objects as files in a temporary directory.
//
// Every NewServer call starts a server of its own, on a free loopback port,
// with a random root key pair, so tests running in parallel never see each
// other's buckets. A server takes well under a second to start; tests that
// want to share one pass the *Server around and use a bucket each.
//
// The versitygw binary is found on PATH, else in $(go env GOPATH)/bin. CI
// installs it with
//
//	go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
//
// Without it the tests that need a server fail (they do not skip): a store
// connector that is not tested against a real server is not tested.
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Install is the command that installs the server binary.
const Install = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// region is what the server answers as; versitygw's default.
const region = "us-east-1"

// Server is a running versitygw server. It is stopped when the test that
// started it ends.
type Server struct {
	endpoint  string
	accessKey string
	secretKey string

	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has been waited for
	output *syncBuffer   // the server's stdout and stderr, for failures
	stop   sync.Once
}

// NewServer starts a server for t and waits until it answers. It stops the
// server (and removes its data) when t ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	dir := t.TempDir()
	// The port is picked by closing a listener and handing its port to the
	// server, so another process may take it in between: try a few.
	const attempts = 5
	for attempt := 1; ; attempt++ {
		s, err := start(bin, dir)
		if err == nil {
			t.Cleanup(s.Close)
			return s
		}
		if attempt == attempts || !errors.Is(err, errPortRace) {
			t.Fatalf("s3test: %v", err)
		}
	}
}

// Endpoint is the server's base URL, http://127.0.0.1:PORT.
func (s *Server) Endpoint() string { return s.endpoint }

// AccessKey is the root user's access key id.
func (s *Server) AccessKey() string { return s.accessKey }

// SecretKey is the root user's secret access key.
func (s *Server) SecretKey() string { return s.secretKey }

// Region is the region the server answers as.
func (s *Server) Region() string { return region }

// Client returns a client for the server, signed as the root user and using
// path-style addressing (bucket in the path, not the host name).
func (s *Server) Client(t testing.TB) *s3.Client {
	t.Helper()
	return s3.New(s3.Options{
		Region:       region,
		BaseEndpoint: aws.String(s.endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.accessKey, s.secretKey, ""),
	})
}

// CreateBucket creates an empty bucket.
func (s *Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Client(t).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("s3test: create bucket %s: %v", name, err)
	}
}

// Close stops the server at once. Requests made afterwards fail to connect,
// which is how tests see a store that is down. Calling it again does nothing;
// NewServer arranges for it to be called when the test ends.
func (s *Server) Close() {
	s.stop.Do(func() {
		_ = s.cmd.Process.Kill()
		<-s.exited
	})
}

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// binary finds versitygw: on PATH, else in $(go env GOPATH)/bin.
func binary() (string, error) {
	binaryOnce.Do(func() {
		if p, err := exec.LookPath("versitygw"); err == nil {
			binaryPath = p
			return
		}
		var tried []string
		for _, gopath := range goPaths() {
			p := filepath.Join(gopath, "bin", "versitygw")
			if info, err := os.Stat(p); err == nil && !info.IsDir() {
				binaryPath = p
				return
			}
			tried = append(tried, p)
		}
		binaryErr = fmt.Errorf("versitygw is not installed (not on PATH, not at %s); install it with: %s",
			strings.Join(tried, ", "), Install)
	})
	return binaryPath, binaryErr
}

// goPaths lists the GOPATH entries, as the go command sees them.
func goPaths() []string {
	gopath := os.Getenv("GOPATH")
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		gopath = strings.TrimSpace(string(out))
	}
	if gopath == "" {
		if home, err := os.UserHomeDir(); err == nil {
			gopath = filepath.Join(home, "go")
		}
	}
	return filepath.SplitList(gopath)
}

// errPortRace marks a start that failed because, most likely, another
// process took the port first.
var errPortRace = errors.New("port taken")

// start runs versitygw on a free port with a fresh root key pair, serving
// dir, and waits until it answers HTTP.
func start(bin, dir string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{
		endpoint:  "http://" + net.JoinHostPort("127.0.0.1", port),
		accessKey: "s3test" + randomHex(7),
		secretKey: randomHex(20),
		exited:    make(chan struct{}),
		output:    &syncBuffer{},
	}
	// The keys go in the environment, not on the command line, where any
	// user on the machine could read them in ps.
	s.cmd = exec.Command(bin, "--port", "127.0.0.1:"+port, "--quiet", "posix", dir)
	s.cmd.Env = append(environ(), "ROOT_ACCESS_KEY="+s.accessKey, "ROOT_SECRET_KEY="+s.secretKey)
	s.cmd.Stdout = s.output
	s.cmd.Stderr = s.output
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.waitReady(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("%w\n%s %s: server output:\n%s", err, bin, strings.Join(s.cmd.Args[1:], " "), s.output)
	}
	return s, nil
}

// waitReady polls the server until it answers any HTTP request (anonymous
// requests get 403, which is an answer).
func (s *Server) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.endpoint+"/", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.Header.Get("Server") != "VERSITYGW" {
				return fmt.Errorf("%w: %s is answered by something other than versitygw (%q)", errPortRace, s.endpoint, resp.Header.Get("Server"))
			}
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("%w? versitygw exited before it answered: %v", errPortRace, s.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("versitygw did not answer on %s: %w", s.endpoint, ctx.Err())
		case <-tick.C:
		}
	}
}

// environ is the test's environment without versitygw's own settings, so a
// developer's VGW_* or ROOT_* variables cannot change the server under test.
func environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "VGW_") || strings.HasPrefix(kv, "ROOT_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
}

// syncBuffer is a bytes.Buffer that the server's output goroutines and the
// test can share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
