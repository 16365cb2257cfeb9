package operations_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/datarights/datarights/operations"
	"github.com/datarights/datarights/storage"
	"github.com/datarights/datarights/storage/storagetest"
)

type probeArgs struct {
	RequestID string `json:"request_id"`
}

func (probeArgs) Kind() string { return "operations_probe" }

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// TestRiverUIServesPagesAndJobs starts the UI on a migrated database, as the
// service's runtime role, under the console's prefix, and reads a job
// inserted into River through its API.
func TestRiverUIServesPagesAndJobs(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	db, _ := storagetest.NewDB(t, "riverui")
	client, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	inserted, err := client.Insert(ctx, probeArgs{RequestID: "0199aaaa-0000-7000-8000-000000000001"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "/console/river/"
	ui, err := operations.RiverUI(ctx, client, db.Pool, nil, prefix)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(prefix, ui)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	resp, page := get(t, srv.URL+prefix)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "<title>River</title>") {
		t.Fatalf("GET %s: %d\n%s", prefix, resp.StatusCode, page)
	}
	// Everything the page loads is its own, under the prefix: what
	// RiverUICSP's 'self' allows.
	assets := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(assets) == 0 {
		t.Fatalf("the page loads nothing:\n%s", page)
	}
	sawScript := false
	for _, m := range assets {
		if !strings.HasPrefix(m[1], prefix) {
			t.Errorf("the page loads %q, not under %s", m[1], prefix)
			continue
		}
		r, body := get(t, srv.URL+m[1])
		if r.StatusCode != http.StatusOK || len(body) == 0 {
			t.Errorf("GET %s: %d, %d bytes", m[1], r.StatusCode, len(body))
		}
		if strings.HasSuffix(m[1], ".js") {
			sawScript = true
		}
	}
	if !sawScript {
		t.Errorf("the page loads no script:\n%s", page)
	}

	resp, body := get(t, srv.URL+prefix+"api/jobs?state=available")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET api/jobs: %d\n%s", resp.StatusCode, body)
	}
	var list struct {
		Data []struct {
			ID    int64  `json:"id"`
			Kind  string `json:"kind"`
			State string `json:"state"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("api/jobs: %v\n%s", err, body)
	}
	if len(list.Data) != 1 || list.Data[0].ID != inserted.Job.ID || list.Data[0].Kind != "operations_probe" || list.Data[0].State != "available" {
		t.Fatalf("api/jobs = %+v, want the one job inserted (%d)\n%s", list.Data, inserted.Job.ID, body)
	}

	// A path outside the prefix is not the UI's.
	resp, _ = get(t, srv.URL+"/console/other")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /console/other: %d, want 404", resp.StatusCode)
	}
}

func TestRiverUIRefusesADatabaseWithoutRiver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := storage.Open(ctx, storagetest.NewDatabase(t, "riveruibare"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	client, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := operations.RiverUI(ctx, nil, db.Pool, nil, "/x/"); err == nil {
		t.Error("no client: no error")
	}
	if _, err := operations.RiverUI(ctx, client, db.Pool, nil, "/console/river/"); err == nil || !strings.Contains(err.Error(), "migrate") {
		t.Errorf("unmigrated database: %v, want the advice to migrate", err)
	}
}
