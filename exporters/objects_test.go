package exporters_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/datarights/datarights/blobs"
	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/exporters"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage/s3test"
)

// stageUsers stages a users dataset of n rows for req in store "bank".
func stageUsers(t *testing.T, staging *exporters.Staging, req string, n int) rights.DatasetReport {
	t.Helper()
	sink, err := staging.SinkContext(context.Background(), req, "bank")
	if err != nil {
		t.Fatal(err)
	}
	w, err := sink.Dataset("users", []string{"id", "name"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := w.WriteRow([]any{i, fmt.Sprintf("张三-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	report, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := exporters.SyncSink(sink); err != nil {
		t.Fatal(err)
	}
	return report
}

// TestStagingInObjectStore: with an object store the staged datasets are
// objects under staging/<request>/<store>/; a rerun overwrites them, an
// archive is built from them (on any host: nothing is read from a disk),
// names are checked as on disk, and Remove deletes them.
func TestStagingInObjectStore(t *testing.T) {
	t.Parallel()
	srv := s3test.NewServer(t)
	srv.CreateBucket(t, "data")
	ctx := context.Background()
	objects, err := blobs.NewS3(ctx, config.S3Exports{Bucket: "data", Endpoint: srv.Endpoint(), Region: srv.Region(), PathStyle: true,
		AccessKey: srv.AccessKey(), SecretKey: srv.SecretKey(), SSE: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	staging := exporters.NewStagingIn(objects, exporters.StagingOptions{CSV: true, BOM: true})

	stageUsers(t, staging, "req-1", 3) // the run a worker was killed after
	report := stageUsers(t, staging, "req-1", 5)
	stageUsers(t, staging, "req-2", 1)

	names, err := objects.List(ctx, "staging/req-1/bank/")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"users.csv.df", "users.json.df"}) {
		t.Fatalf("staged objects = %q", names)
	}
	ids, err := staging.RequestsContext(ctx)
	if err != nil || !slices.Equal(ids, []string{"req-1", "req-2"}) {
		t.Fatalf("Requests = %q, %v", ids, err)
	}

	out := filepath.Join(t.TempDir(), "a.zip")
	_, err = exporters.BuildArchive(ctx, exporters.ArchiveInput{RequestID: "req-1", Product: "bank", Type: rights.TypeCopy,
		Locale: rights.LocaleEN, ReceivedAt: time.Now(), Staged: staging.Opener(ctx, "req-1"),
		Stores: []exporters.StorePart{{Store: "bank", Report: rights.StoreReport{Resolved: true, Datasets: []rights.DatasetReport{report}}}}}, out)
	if err != nil {
		t.Fatal(err)
	}
	a := openArchive(t, out)
	if got := string(a.files["data/bank/users.json"]); !strings.Contains(got, "张三-4") || strings.Count(got, "张三-") != 5 {
		t.Errorf("users.json from the rerun's objects:\n%s", got)
	}
	if got := string(a.files["data/bank/users.csv"]); !strings.HasPrefix(got, "\uFEFFid,name\r\n") {
		t.Errorf("users.csv:\n%q", got)
	}

	open := staging.Opener(ctx, "req-1")
	for _, bad := range []string{"../req-2/bank/users.json.df", "bank/../../req-2/bank/users.json.df", "/bank/users.json.df", "bank//users.json.df"} {
		if rc, err := open(bad); err == nil {
			rc.Close()
			t.Errorf("Opener(%q) opened it", bad)
		}
	}
	for _, bad := range [][2]string{{"../x", "bank"}, {"req-1", ".."}, {"req-1", "a/b"}, {"", "bank"}} {
		if _, err := staging.SinkContext(ctx, bad[0], bad[1]); rights.ErrorCode(err) != rights.EInvalid {
			t.Errorf("Sink(%q, %q) = %v, want invalid", bad[0], bad[1], err)
		}
	}

	if err := staging.RemoveContext(ctx, "req-1"); err != nil {
		t.Fatal(err)
	}
	if names, err := objects.List(ctx, "staging/"); err != nil || !slices.Equal(names, []string{"req-2/"}) {
		t.Fatalf("after Remove(req-1): %q, %v", names, err)
	}
	if _, err := open(report.Deflated); !blobs.IsNotExist(err) {
		t.Errorf("a removed staged file opens: %v", err)
	}
}
