package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/datarights/datarights/keyring"
	"github.com/datarights/datarights/storage/s3test"
)

// sharedWorker is a `datarights worker` process with a data_dir of its own.
type sharedWorker struct {
	queues, dataDir, log string
	clientID             string // River's, as the process logged it
}

// startSharedWorker runs `datarights worker` working only queues, with its
// own data_dir, and returns once it logged its River client id.
func (e *e2e) startSharedWorker(t *testing.T, queues string, env map[string]string) *sharedWorker {
	t.Helper()
	dir := t.TempDir()
	w := &sharedWorker{queues: queues, dataDir: filepath.Join(dir, "data"), log: filepath.Join(dir, "worker.log")}
	cmd := exec.Command(datarightsBinary(t), "worker", "-config", e.configPath)
	cmd.Env = append(os.Environ(),
		"DATARIGHTS_SMTP_URL="+e.getenv("DATARIGHTS_SMTP_URL"),
		"DATARIGHTS_STAFF_TOKEN="+testToken,
		keyring.EnvVar+"="+testSecretKey,
		"DATARIGHTS_HTTP_ADDR="+freePort(t),
		"DATARIGHTS_PUBLIC_URL="+e.base,
		"DATARIGHTS_WORKER_QUEUES="+queues,
		"DATARIGHTS_DATA_DIR="+w.dataDir,
		"DATABASE_URL=",
	)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	startLogged(t, cmd, w.log)
	waitFor(t, 30*time.Second, "worker "+queues+" to start", func() bool {
		w.clientID = loggedClientID(w.log)
		return w.clientID != ""
	})
	return w
}

// loggedClientID finds the River client id in a worker's "workers
// started" log line.
func loggedClientID(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line struct {
			Msg string `json:"msg"`
			ID  string `json:"river_client_id"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "workers started" {
			return line.ID
		}
	}
	return ""
}

// filesUnder lists the regular files under dir (none when it does not
// exist).
func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestSharedNothingWorkers: two `datarights worker` processes with
// different data_dirs, one working only the store tasks and the other only
// the rest, share one Postgres and one S3 bucket. Copies complete: River's
// attempted_by shows every store task ran on the first and every assembly
// on the second, so the archive was built from parts another host staged;
// the API (a third process, working no queue, with a third data_dir)
// serves the download from the bucket, and 7-Zip opens it. No data_dir
// holds a file afterwards, and the staged parts are gone from the bucket.
func TestSharedNothingWorkers(t *testing.T) {
	t.Parallel()
	srv := s3test.NewServer(t)
	srv.CreateBucket(t, "shared")
	e := setupE2E(t, false, "")
	e.appendConfig(t, fmt.Sprintf(`
smtp:
  attachment_limit_bytes: 1024
objects:
  backend: s3
  s3:
    bucket: shared
    prefix: dr/
    endpoint: %s
    region: us-east-1
    path_style: true
    access_key_env: OBJECTS_ACCESS
    secret_key_env: OBJECTS_SECRET
`, srv.Endpoint()))
	objKeys := map[string]string{"OBJECTS_ACCESS": srv.AccessKey(), "OBJECTS_SECRET": srv.SecretKey()}
	apiData := filepath.Join(t.TempDir(), "data")
	base := e.getenv
	e.getenv = func(k string) string {
		switch k {
		case "DATARIGHTS_WORKER_QUEUES":
			return "none" // the API only: every job runs in the workers
		case "DATARIGHTS_DATA_DIR":
			return apiData
		}
		if v, ok := objKeys[k]; ok {
			return v
		}
		return base(k)
	}
	e.start()
	stores := e.startSharedWorker(t, "store_tasks", objKeys)
	rest := e.startSharedWorker(t, "default", objKeys)
	if stores.clientID == rest.clientID {
		t.Fatalf("both workers have River client id %q", stores.clientID)
	}
	// A copy that does not complete says where its jobs stood and what
	// the workers last logged: once, under a loaded CI run, a request
	// stayed received for the whole wait, and nothing told why.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		rows, err := e.db.Query(context.Background(), `SELECT kind, queue, state::text, attempt, coalesce(attempted_by[array_length(attempted_by, 1)], ''),
			coalesce(errors[array_length(errors, 1)]->>'error', '') FROM river_job ORDER BY id`)
		if err == nil {
			for rows.Next() {
				var kind, queue, state, by, lastErr string
				var attempt int
				if rows.Scan(&kind, &queue, &state, &attempt, &by, &lastErr) == nil {
					t.Logf("job %s on %s: %s, attempt %d, by %q %s", kind, queue, state, attempt, by, lastErr)
				}
			}
			rows.Close()
		}
		for _, w := range []*sharedWorker{stores, rest} {
			if b, err := os.ReadFile(w.log); err == nil {
				t.Logf("worker %s (%s), the end of its log:\n%s", w.queues, w.clientID, b[max(0, len(b)-4000):])
			}
		}
	})

	users := []string{"demo-user-3", "demo-user-7", "demo-user-9"}
	var ids []string
	for _, u := range users {
		code, body := e.call("POST", "/api/v1/requests", testToken, copyTicket(u))
		if code != http.StatusCreated {
			t.Fatalf("submit = %d %v", code, body)
		}
		ids = append(ids, body["id"].(string))
	}
	for _, id := range ids {
		e.waitStatus(id, "completed", 90*time.Second)
	}

	ctx := context.Background()
	for _, id := range ids {
		rows, err := e.db.Query(ctx, `SELECT kind, attempted_by FROM river_job WHERE args->>'request_id' = $1 AND kind IN ('store_task', 'assemble')`, id)
		if err != nil {
			t.Fatal(err)
		}
		ran := map[string][]string{}
		for rows.Next() {
			var kind string
			var by []string
			if err := rows.Scan(&kind, &by); err != nil {
				t.Fatal(err)
			}
			ran[kind] = append(ran[kind], by...)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		t.Logf("request %s: store tasks ran on %v, the assembly on %v", id, ran["store_task"], ran["assemble"])
		if len(ran["store_task"]) == 0 || len(ran["assemble"]) == 0 {
			t.Fatalf("request %s: jobs ran by %v, want store tasks and an assembly", id, ran)
		}
		for _, by := range ran["store_task"] {
			if by != stores.clientID {
				t.Errorf("request %s: a store task ran on %s, want only the store worker %s", id, by, stores.clientID)
			}
		}
		for _, by := range ran["assemble"] {
			if by != rest.clientID {
				t.Errorf("request %s: the assembly ran on %s, want only the other worker %s", id, by, rest.clientID)
			}
		}
	}

	// The download, served by the API process from the bucket.
	for i, id := range ids {
		msg := e.smtp.WaitForMessage(t, id+".completion@datarights", 30*time.Second)
		code, data := get(t, e.linkOf(t, msg))
		if code != http.StatusOK {
			t.Fatalf("download %s = %d %s", id, code, data)
		}
		_, pw := e.call("POST", "/api/v1/requests/"+id+"/export/password", testToken, nil)
		files := open7z(t, data, pw["password"].(string))
		usersJSON, ok := files["data/demo_bank/users.json"]
		if !ok {
			t.Fatalf("archive of %s holds %v", id, keys(files))
		}
		if !strings.Contains(string(usersJSON), `"`+users[i]+`"`) {
			t.Errorf("archive of %s: users.json does not hold %s:\n%.300s", id, users[i], usersJSON)
		}
		for _, other := range users {
			if other != users[i] && strings.Contains(string(usersJSON), `"`+other+`"`) {
				t.Errorf("archive of %s holds %s's data", id, other)
			}
		}
		for _, name := range []string{"summary.html", "manifest.json"} {
			if _, ok := files[name]; !ok {
				t.Errorf("archive of %s lacks %s", id, name)
			}
		}
	}

	// Nothing on any host's disk; nothing staged left in the bucket; the
	// archives are there, encrypted at rest.
	for _, dir := range []string{stores.dataDir, rest.dataDir, apiData} {
		if files := filesUnder(t, dir); len(files) > 0 {
			t.Errorf("data_dir %s holds %v", dir, files)
		}
	}
	list, err := srv.Client(t).ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("shared"), Prefix: aws.String("dr/")})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, o := range list.Contents {
		left = append(left, aws.ToString(o.Key))
	}
	slices.Sort(left)
	var want []string
	for _, id := range ids {
		want = append(want, "dr/exports/personal-information-"+id+".zip")
	}
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Errorf("the bucket holds %q, want only the archives %q", left, want)
	}
}
