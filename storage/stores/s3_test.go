package stores_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage/s3test"
	"github.com/datarights/datarights/storage/stores"
)

const s3Bucket = "people"

// s3Object is one object of the test bucket.
type s3Object struct {
	key         string
	contentType string
	body        []byte
}

// s3Objects returns the objects every test starts with: some for u-1, and
// for people whose keys start like u-1's (u-10, u-11, and u-1.txt, which is
// no one's prefix at all) or not (u-2). u-1 has text, binary, an object of
// exactly the inline limit and one just over it, some under Chinese names.
func s3Objects() []s3Object {
	random := func(n int) []byte {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return b
	}
	return []s3Object{
		{"users/u-1/profile.json", "application/json", []byte(`{"name":"张三"}`)},
		{"users/u-1/照片/头像.png", "image/png", append([]byte("\x89PNG\r\n\x1a\n\x00\xff"), random(300)...)},
		{"users/u-1/limit.bin", "application/octet-stream", random(stores.S3MaxInline)},
		{"users/u-1/录音/big.bin", "application/octet-stream", random(stores.S3MaxInline + 1)},
		{"users/u-10/profile.json", "application/json", []byte(`{"name":"李四"}`)},
		{"users/u-10/文档.txt", "text/plain; charset=utf-8", []byte("u-10 的文档")},
		{"users/u-11/profile.json", "application/json", []byte(`{"name":"王五"}`)},
		{"users/u-1.txt", "text/plain", []byte("not u-1's: outside users/u-1/")},
		{"users/u-2/profile.json", "application/json", []byte(`{"name":"赵六"}`)},
	}
}

// s3Fixture is a server with the test bucket and a connector to it.
type s3Fixture struct {
	srv     *s3test.Server
	client  *s3.Client
	cfg     config.Store
	conn    *stores.S3
	objects map[string]s3Object // by key
}

// newS3Fixture starts a server of the test's own, fills the bucket with
// s3Objects and opens a connector for prefix (users/{user_id}/ when empty).
func newS3Fixture(t *testing.T, prefix string) *s3Fixture {
	t.Helper()
	srv := s3test.NewServer(t)
	srv.CreateBucket(t, s3Bucket)
	f := &s3Fixture{srv: srv, client: srv.Client(t), objects: map[string]s3Object{}}
	for _, o := range s3Objects() {
		f.put(t, o)
	}
	if prefix == "" {
		prefix = "users/{user_id}/"
	}
	f.cfg = s3StoreConfig(t, srv, prefix)
	f.conn = newS3Connector(t, f.cfg)
	return f
}

// s3StoreConfig configures a store on srv, with credentials passed through
// environment variables of the test's own.
func s3StoreConfig(t *testing.T, srv *s3test.Server, prefix string) config.Store {
	t.Helper()
	return config.Store{
		Name: "files",
		Kind: "s3",
		Key:  "user_id",
		S3: &config.S3Store{
			Bucket:       s3Bucket,
			Prefix:       prefix,
			Region:       srv.Region(),
			Endpoint:     srv.Endpoint(),
			AccessKeyEnv: s3Setenv(t, srv.AccessKey()),
			SecretKeyEnv: s3Setenv(t, srv.SecretKey()),
			PathStyle:    true,
			Category:     "files",
		},
	}
}

// s3Setenv sets an environment variable of a unique name to value until the
// test ends, and returns the name. (t.Setenv cannot be used in parallel
// tests; a unique name makes it unnecessary.)
func s3Setenv(t *testing.T, value string) string {
	t.Helper()
	name := "S3TEST_" + rand.Text()
	if err := os.Setenv(name, value); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Unsetenv(name) })
	return name
}

func newS3Connector(t *testing.T, cfg config.Store) *stores.S3 {
	t.Helper()
	c, err := stores.NewS3(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (f *s3Fixture) put(t *testing.T, o s3Object) {
	t.Helper()
	_, err := f.client.PutObject(t.Context(), &s3.PutObjectInput{
		Bucket:      aws.String(s3Bucket),
		Key:         aws.String(o.key),
		ContentType: aws.String(o.contentType),
		Body:        bytes.NewReader(o.body),
	})
	if err != nil {
		t.Fatalf("put %s: %v", o.key, err)
	}
	f.objects[o.key] = o
}

// keys lists every key in the bucket, in order.
func (f *s3Fixture) keys(t *testing.T) []string {
	t.Helper()
	var keys []string
	pages := s3.NewListObjectsV2Paginator(f.client, &s3.ListObjectsV2Input{Bucket: aws.String(s3Bucket)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

// keysUnder returns the fixture's keys that start with prefix, in order.
func (f *s3Fixture) keysUnder(prefix string) []string {
	var keys []string
	for k := range f.objects {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// checkS3Export checks that report and sink hold exactly the objects under
// prefix, with their content when small enough to inline.
func (f *s3Fixture) checkS3Export(t *testing.T, prefix string, report rights.StoreReport, sink *memSink) {
	t.Helper()
	want := f.keysUnder(prefix)
	if !report.Resolved {
		t.Fatal("report.Resolved = false, want true")
	}
	if len(report.Datasets) != 1 || len(sink.datasets) != 1 {
		t.Fatalf("got %d reported and %d written datasets, want 1", len(report.Datasets), len(sink.datasets))
	}
	got, written := report.Datasets[0], sink.datasets[0]
	if got.Name != "files" || got.Category != "files" || got.Rows != int64(len(want)) {
		t.Errorf("report = %+v, want dataset files (files) with %d rows", got, len(want))
	}
	if written.name != "files" || !written.closed {
		t.Errorf("written dataset %s, closed %v; want files, closed", written.name, written.closed)
	}
	wantColumns := []string{"key", "size", "last_modified", "etag", "content_type", "content_base64", "note"}
	if !slices.Equal(written.columns, wantColumns) {
		t.Fatalf("columns %v, want %v", written.columns, wantColumns)
	}
	var keys []string
	for _, row := range written.rows {
		keys = append(keys, row[0].(string))
	}
	if !slices.Equal(keys, want) {
		t.Fatalf("exported keys\n%q\nwant\n%q", keys, want)
	}
	for _, row := range written.rows {
		o := f.objects[row[0].(string)]
		if size := row[1].(int64); size != int64(len(o.body)) {
			t.Errorf("%s: size %d, want %d", o.key, size, len(o.body))
		}
		if modified, ok := row[2].(time.Time); !ok || time.Since(modified) > time.Hour || modified.Location() != time.UTC {
			t.Errorf("%s: last_modified %v, want a recent UTC time", o.key, row[2])
		}
		if etag, ok := row[3].(string); !ok || etag == "" || strings.Contains(etag, `"`) {
			t.Errorf("%s: etag %q, want one without quotes", o.key, row[3])
		}
		if row[4] != o.contentType {
			t.Errorf("%s: content_type %v, want %s", o.key, row[4], o.contentType)
		}
		if len(o.body) > stores.S3MaxInline {
			if row[5] != nil || row[6] != "too large to inline; delivered separately" {
				t.Errorf("%s (%d bytes): content %.20v…, note %v; want no content and a note", o.key, len(o.body), row[5], row[6])
			}
			continue
		}
		content, err := base64.StdEncoding.DecodeString(row[5].(string))
		if err != nil || !bytes.Equal(content, o.body) || row[6] != nil {
			t.Errorf("%s: content does not round-trip (err %v, note %v)", o.key, err, row[6])
		}
	}
}

func TestS3ExportReturnsOnlyTheSubjectsObjects(t *testing.T) {
	t.Parallel()
	f := newS3Fixture(t, "")
	for _, id := range []string{"u-1", "u-10", "u-11", "u-2"} {
		sink := &memSink{}
		report, err := f.conn.Export(t.Context(), subject("user_id", id, "email", "someone@example.com"), sink)
		if err != nil {
			t.Fatal(err)
		}
		f.checkS3Export(t, "users/"+id+"/", report, sink)
	}
}

// TestS3PrefixWithoutSlash checks that a prefix configured without its
// trailing slash still selects one person's objects only: users/u-1 would
// also match users/u-10/… and users/u-1.txt.
func TestS3PrefixWithoutSlash(t *testing.T) {
	t.Parallel()
	f := newS3Fixture(t, "users/{user_id}")
	sink := &memSink{}
	report, err := f.conn.Export(t.Context(), subject("user_id", "u-1"), sink)
	if err != nil {
		t.Fatal(err)
	}
	f.checkS3Export(t, "users/u-1/", report, sink)

	before := f.keys(t)
	report, err = f.conn.Delete(t.Context(), subject("user_id", "u-1"))
	if err != nil {
		t.Fatal(err)
	}
	if report.Rows() != 4 {
		t.Errorf("deleted %d objects, want u-1's 4", report.Rows())
	}
	if got, want := f.keys(t), slices.DeleteFunc(before, func(k string) bool { return strings.HasPrefix(k, "users/u-1/") }); !slices.Equal(got, want) {
		t.Errorf("after delete the bucket holds\n%q\nwant\n%q", got, want)
	}
}

func TestS3DeleteRemovesOnlyTheSubjectsObjects(t *testing.T) {
	t.Parallel()
	f := newS3Fixture(t, "")
	before := f.keys(t)
	if want := slices.Sorted(maps.Keys(f.objects)); !slices.Equal(before, want) {
		t.Fatalf("the bucket holds\n%q\nwant\n%q", before, want)
	}

	report, err := f.conn.Delete(t.Context(), subject("user_id", "u-1"))
	if err != nil {
		t.Fatal(err)
	}
	want := rights.StoreReport{Resolved: true, Datasets: []rights.DatasetReport{{Name: "files", Category: "files", Rows: 4}}}
	if !equalS3Reports(report, want) {
		t.Errorf("report = %+v, want %+v", report, want)
	}
	after := f.keys(t)
	others := slices.DeleteFunc(slices.Clone(before), func(k string) bool { return strings.HasPrefix(k, "users/u-1/") })
	if !slices.Equal(after, others) {
		t.Errorf("after delete the bucket holds\n%q\nwant\n%q", after, others)
	}

	// Nothing is left: a second delete, and an export, find no one.
	report, err = f.conn.Delete(t.Context(), subject("user_id", "u-1"))
	if err != nil || report.Resolved || len(report.Datasets) != 0 {
		t.Errorf("second delete: %+v, %v; want not resolved", report, err)
	}
	sink := &memSink{}
	report, err = f.conn.Export(t.Context(), subject("user_id", "u-1"), sink)
	if err != nil || report.Resolved || len(report.Datasets) != 0 || len(sink.datasets) != 0 {
		t.Errorf("export after delete: %+v, %d datasets, %v; want not resolved, nothing written", report, len(sink.datasets), err)
	}
	if got := f.keys(t); !slices.Equal(got, others) {
		t.Errorf("after the second delete the bucket holds\n%q\nwant\n%q", got, others)
	}

	// The others are still whole.
	sink = &memSink{}
	report, err = f.conn.Export(t.Context(), subject("user_id", "u-10"), sink)
	if err != nil {
		t.Fatal(err)
	}
	f.checkS3Export(t, "users/u-10/", report, sink)
}

func equalS3Reports(a, b rights.StoreReport) bool {
	return a.Resolved == b.Resolved && slices.Equal(a.Datasets, b.Datasets)
}

// s3UnsafeKeys are keys that are not one path segment. Each would reach other
// objects than its own, so none may resolve.
var s3UnsafeKeys = []string{
	"", ".", "..", "u-1/", "/u-1", "u-1/../u-10", "../u-1", "u-1/..", "..u-1", "u-1..",
	"u-1\\..\\u-10", "u-1\x00", "u-1\n", "u-\x7f1", "\xff\xfe",
}

func TestS3UnsafeKeysResolveNothing(t *testing.T) {
	t.Parallel()
	f := newS3Fixture(t, "")
	// A prefix of users/ would select everyone: users/{user_id} with an
	// empty key, or with ".." and a server that cleans paths.
	cfg := f.cfg
	s3cfg := *cfg.S3
	s3cfg.Prefix = "users/{user_id}"
	cfg.S3 = &s3cfg
	conn := newS3Connector(t, cfg)
	before := f.keys(t)
	for _, key := range s3UnsafeKeys {
		for _, c := range []*stores.S3{f.conn, conn} {
			sink := &memSink{}
			report, err := c.Export(t.Context(), subject("user_id", key), sink)
			if err != nil || report.Resolved || len(sink.datasets) != 0 {
				t.Errorf("export %q: %+v, %d datasets, %v; want not resolved, nothing written", key, report, len(sink.datasets), err)
			}
			report, err = c.Delete(t.Context(), subject("user_id", key))
			if err != nil || report.Resolved {
				t.Errorf("delete %q: %+v, %v; want not resolved", key, report, err)
			}
		}
	}
	// No key at all, or only other identities.
	for _, s := range []rights.Subject{subject(), subject("email", "u-1"), {}} {
		report, err := f.conn.Delete(t.Context(), s)
		if err != nil || report.Resolved {
			t.Errorf("delete %v: %+v, %v; want not resolved", s.Identities, report, err)
		}
	}
	if after := f.keys(t); !slices.Equal(after, before) {
		t.Errorf("after deleting unsafe keys the bucket holds\n%q\nwant\n%q", after, before)
	}

	// Unsafe keys send no request at all: with the server gone they still
	// report "not found" rather than a connection error.
	f.srv.Close()
	for _, key := range s3UnsafeKeys {
		if _, err := f.conn.Delete(t.Context(), subject("user_id", key)); err != nil {
			t.Errorf("delete %q with the server down: %v; want no request made", key, err)
		}
	}
}

// TestS3ManyObjects checks paging: listing and deleting go 1000 keys at a
// time.
func TestS3ManyObjects(t *testing.T) {
	t.Parallel()
	f := newS3Fixture(t, "")
	const n = 2345
	var wg sync.WaitGroup
	errs := make(chan error, n)
	work := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range work {
				_, err := f.client.PutObject(t.Context(), &s3.PutObjectInput{
					Bucket: aws.String(s3Bucket),
					Key:    aws.String(fmt.Sprintf("users/u-3/messages/%05d.txt", i)),
					Body:   strings.NewReader("message"),
				})
				errs <- err
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	sink := &memSink{}
	report, err := f.conn.Export(t.Context(), subject("user_id", "u-3"), sink)
	if err != nil {
		t.Fatal(err)
	}
	if report.Rows() != n || len(sink.datasets) != 1 || len(sink.datasets[0].rows) != n {
		t.Fatalf("exported %d objects, want %d", report.Rows(), n)
	}
	keys := sink.datasets[0].column(t, "key")
	if !slices.IsSortedFunc(keys, func(a, b any) int { return strings.Compare(a.(string), b.(string)) }) {
		t.Error("exported keys are not in key order")
	}

	before := len(f.keys(t))
	report, err = f.conn.Delete(t.Context(), subject("user_id", "u-3"))
	if err != nil {
		t.Fatal(err)
	}
	if report.Rows() != n {
		t.Errorf("deleted %d objects, want %d", report.Rows(), n)
	}
	if after := f.keys(t); len(after) != before-n || slices.ContainsFunc(after, func(k string) bool { return strings.HasPrefix(k, "users/u-3/") }) {
		t.Errorf("after delete the bucket holds %d objects, want %d, none of u-3's", len(after), before-n)
	}
}

// TestS3ErrorsDoNotQuoteKeys checks errors with the server down and with a
// missing bucket: they name the store but no key, plain or URL-escaped.
func TestS3ErrorsDoNotQuoteKeys(t *testing.T) {
	t.Parallel()
	ids := []string{"u-1", "用户-甲", "a b+c@example.com"}
	check := func(t *testing.T, what string, err error, id string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
		t.Logf("%s: %v", what, err)
		msg := strings.ToLower(err.Error())
		if !strings.Contains(msg, "store files") {
			t.Errorf("%s: error %q does not name the store", what, err)
		}
		for _, leak := range []string{id, "users/", "users%2f", "%e7%94%a8", "a%20b", "a+b", s3Bucket} {
			if strings.Contains(msg, strings.ToLower(leak)) {
				t.Errorf("%s: error quotes %q: %s", what, leak, err)
			}
		}
	}

	t.Run("server down", func(t *testing.T) {
		t.Parallel()
		srv := s3test.NewServer(t)
		srv.CreateBucket(t, s3Bucket)
		conn := newS3Connector(t, s3StoreConfig(t, srv, "users/{user_id}/"))
		srv.Close()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		for _, id := range ids {
			_, err := conn.Export(ctx, subject("user_id", id), &memSink{})
			check(t, "export "+id, err, id)
			if err != nil && !strings.Contains(err.Error(), "connection refused") {
				t.Errorf("export %s: %v; want it to say the connection was refused", id, err)
			}
			_, err = conn.Delete(ctx, subject("user_id", id))
			check(t, "delete "+id, err, id)
		}
	})

	t.Run("no bucket", func(t *testing.T) {
		t.Parallel()
		srv := s3test.NewServer(t)
		conn := newS3Connector(t, s3StoreConfig(t, srv, "users/{user_id}/"))
		for _, id := range ids {
			_, err := conn.Export(t.Context(), subject("user_id", id), &memSink{})
			check(t, "export "+id, err, id)
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "NoSuchBucket" {
				t.Errorf("export %s: %v; want it to unwrap to NoSuchBucket", id, err)
			}
			_, err = conn.Delete(t.Context(), subject("user_id", id))
			check(t, "delete "+id, err, id)
		}
	})

	t.Run("canceled", func(t *testing.T) {
		t.Parallel()
		srv := s3test.NewServer(t)
		srv.CreateBucket(t, s3Bucket)
		conn := newS3Connector(t, s3StoreConfig(t, srv, "users/{user_id}/"))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := conn.Delete(ctx, subject("user_id", "u-1"))
		check(t, "delete", err, "u-1")
		if !errors.Is(err, context.Canceled) {
			t.Errorf("delete with a canceled context: %v; want it to unwrap to context.Canceled", err)
		}
	})
}

func TestNewS3(t *testing.T) {
	t.Parallel()
	srv := s3test.NewServer(t)
	srv.CreateBucket(t, s3Bucket)

	t.Run("registered", func(t *testing.T) {
		t.Parallel()
		if !slices.Contains(stores.Kinds(), "s3") {
			t.Fatalf("Kinds() = %v, want s3 among them", stores.Kinds())
		}
		conn, err := stores.Open(t.Context(), s3StoreConfig(t, srv, "users/{user_id}/"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, ok := conn.(*stores.S3); !ok {
			t.Errorf("Open returned a %T, want *stores.S3", conn)
		}
	})

	t.Run("bad credentials", func(t *testing.T) {
		t.Parallel()
		cfg := s3StoreConfig(t, srv, "users/{user_id}/")
		cfg.S3.SecretKeyEnv = s3Setenv(t, "wrong-secret")
		conn := newS3Connector(t, cfg)
		_, err := conn.Export(t.Context(), subject("user_id", "u-1"), &memSink{})
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "SignatureDoesNotMatch" {
			t.Errorf("export with a wrong secret: %v; want SignatureDoesNotMatch", err)
		}
	})

	for name, change := range map[string]func(*config.Store){
		"no s3 section":    func(c *config.Store) { c.S3 = nil },
		"unset access key": func(c *config.Store) { c.S3.AccessKeyEnv = "S3TEST_UNSET_" + rand.Text() },
		"unset secret key": func(c *config.Store) { c.S3.SecretKeyEnv = "S3TEST_UNSET_" + rand.Text() },
		"access key only":  func(c *config.Store) { c.S3.SecretKeyEnv = "" },
		"secret key only":  func(c *config.Store) { c.S3.AccessKeyEnv = "" },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := s3StoreConfig(t, srv, "users/{user_id}/")
			s3cfg := *cfg.S3
			cfg.S3 = &s3cfg
			change(&cfg)
			conn, err := stores.NewS3(t.Context(), cfg)
			if err == nil {
				conn.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), "store files") || strings.Contains(err.Error(), srv.SecretKey()) {
				t.Errorf("error %q: want it to name the store and not quote the secret", err)
			}
		})
	}
}
