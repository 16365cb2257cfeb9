package blobs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/datarights/datarights/blobs"
	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/storage/s3test"
)

type testBundle struct {
	srv    *s3test.Server
	store  *blobs.S3
	bucket string
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	srv := s3test.NewServer(t)
	srv.CreateBucket(t, "data")
	store, err := blobs.NewS3(context.Background(), config.S3Exports{Bucket: "data", Prefix: "tenant/", Endpoint: srv.Endpoint(),
		Region: srv.Region(), PathStyle: true, AccessKey: srv.AccessKey(), SecretKey: srv.SecretKey(), SSE: "AES256", PartSizeMB: 5})
	if err != nil {
		t.Fatal(err)
	}
	return &testBundle{srv: srv, store: store, bucket: "data"}
}

// pattern is n bytes that differ from part to part, so a part sent twice
// or out of order changes the hash.
func pattern(n int) io.Reader {
	return io.LimitReader(&counting{}, int64(n))
}

type counting struct{ i uint64 }

func (c *counting) Read(p []byte) (int, error) {
	for j := range p {
		c.i++
		p[j] = byte(c.i ^ c.i>>13)
	}
	return len(p), nil
}

func read(t *testing.T, s blobs.Store, key string) []byte {
	t.Helper()
	rc, size, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != size {
		t.Fatalf("%s: read %d bytes, size says %d", key, len(data), size)
	}
	return data
}

// TestS3StreamsLargeObjectsInParts: an object of 2.5 parts goes up as a
// multipart upload while it is written — two parts are on the server before
// Commit — holding one part in memory, and reads back byte for byte.
func TestS3StreamsLargeObjectsInParts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	part := b.store.PartSize()
	if part != 5<<20 {
		t.Fatalf("part size = %d, want 5 MiB", part)
	}
	size := 2*part + part/2
	w, err := b.store.Create(ctx, "staging/req-1/bank/big.json.df")
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.New()
	// Written 100 KiB at a time, as the staging's pipe does.
	if _, err := io.CopyBuffer(io.MultiWriter(w, want), pattern(size), make([]byte, 100<<10)); err != nil {
		t.Fatal(err)
	}
	if got := blobs.Buffered(w); got > part {
		t.Fatalf("the writer holds %d bytes, more than a part (%d)", got, part)
	}
	uploads, err := b.srv.Client(t).ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(b.bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(uploads.Uploads) != 1 || aws.ToString(uploads.Uploads[0].Key) != "tenant/staging/req-1/bank/big.json.df" {
		t.Fatalf("uploads under way = %+v, want one to tenant/staging/req-1/bank/big.json.df", uploads.Uploads)
	}
	parts, err := b.srv.Client(t).ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(b.bucket), Key: uploads.Uploads[0].Key, UploadId: uploads.Uploads[0].UploadId})
	if err != nil {
		t.Fatal(err)
	}
	if len(parts.Parts) != 2 {
		t.Fatalf("parts on the server before Commit = %d, want 2", len(parts.Parts))
	}
	if _, _, err := b.store.Open(ctx, "staging/req-1/bank/big.json.df"); !blobs.IsNotExist(err) {
		t.Fatalf("open before Commit = %v, want not exist", err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	got := sha256.Sum256(read(t, b.store, "staging/req-1/bank/big.json.df"))
	if !bytes.Equal(got[:], want.Sum(nil)) {
		t.Fatal("the object read back differs from what was written")
	}
	head, err := b.srv.Client(t).HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b.bucket), Key: aws.String("tenant/staging/req-1/bank/big.json.df")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt64(head.ContentLength) != int64(size) {
		t.Fatalf("size = %d, want %d", aws.ToInt64(head.ContentLength), size)
	}
}

// TestS3RerunOverwrites: a writer killed mid-upload (never committed) and
// its rerun leave the rerun's object, and no upload under way once the
// rerun's own multipart upload starts; a small rerun replaces a large one.
func TestS3RerunOverwrites(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	key := "exports/personal-information-1.zip"
	put := func(n int, fill byte) {
		w, err := b.store.Create(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(bytes.Repeat([]byte{fill}, n)); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	put(100, 'a')

	// The killed run: one part up, then nothing (no Commit, no Abort).
	killed, err := b.store.Create(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := killed.Write(bytes.Repeat([]byte{'k'}, b.store.PartSize()+1)); err != nil {
		t.Fatal(err)
	}
	if got := read(t, b.store, key); !bytes.Equal(got, bytes.Repeat([]byte{'a'}, 100)) {
		t.Fatal("an upload not committed changed the object")
	}

	put(b.store.PartSize()+10, 'b') // the rerun, multipart: aborts the killed upload first
	if got := read(t, b.store, key); !bytes.Equal(got, bytes.Repeat([]byte{'b'}, b.store.PartSize()+10)) {
		t.Fatal("the rerun's object is not what it wrote")
	}
	uploads, err := b.srv.Client(t).ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(b.bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(uploads.Uploads) != 0 {
		t.Fatalf("uploads left under way: %d", len(uploads.Uploads))
	}
	put(3, 'c')
	if got := read(t, b.store, key); string(got) != "ccc" {
		t.Fatalf("after a small rerun: %q", got)
	}

	// An aborted writer leaves the object as it was.
	w, err := b.store.Create(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(bytes.Repeat([]byte{'d'}, b.store.PartSize()+1)); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	if got := read(t, b.store, key); string(got) != "ccc" {
		t.Fatalf("after an abort: %q", got)
	}
}

// TestS3ListAndDeletePrefix: List shows one level; DeletePrefix removes
// every object under the prefix and the uploads to it under way, and
// nothing beside it.
func TestS3ListAndDeletePrefix(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for _, key := range []string{"staging/r1/bank/a.json.df", "staging/r1/bank/b.json.df", "staging/r1/cards/c.json.df",
		"staging/r10/bank/a.json.df", "staging/r2/bank/a.json.df"} {
		w, err := b.store.Create(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, key); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	pending, err := b.store.Create(ctx, "staging/r1/bank/killed.json.df")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pending.Write(make([]byte, b.store.PartSize())); err != nil {
		t.Fatal(err)
	}

	list := func(prefix string) []string {
		names, err := b.store.List(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(names)
		return names
	}
	if got := list("staging/"); !slices.Equal(got, []string{"r1/", "r10/", "r2/"}) {
		t.Fatalf("List(staging/) = %q", got)
	}
	if got := list("staging/r1/bank/"); !slices.Equal(got, []string{"a.json.df", "b.json.df"}) {
		t.Fatalf("List(staging/r1/bank/) = %q", got)
	}
	if err := b.store.DeletePrefix(ctx, "staging/r1/"); err != nil {
		t.Fatal(err)
	}
	if got := list("staging/"); !slices.Equal(got, []string{"r10/", "r2/"}) {
		t.Fatalf("after DeletePrefix(staging/r1/): %q", got)
	}
	uploads, err := b.srv.Client(t).ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(b.bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(uploads.Uploads) != 0 {
		t.Fatalf("uploads left under way: %d", len(uploads.Uploads))
	}
	if _, _, err := b.store.Open(ctx, "staging/r1/bank/a.json.df"); !blobs.IsNotExist(err) {
		t.Fatalf("open a deleted object = %v", err)
	}
	if err := b.store.DeletePrefix(ctx, "staging/r1/"); err != nil {
		t.Fatalf("deleting again: %v", err)
	}
	for _, bad := range []string{"", "../x", "staging//x", "staging/./x", `a\b`, "staging/r1"} {
		if err := b.store.DeletePrefix(ctx, bad); err == nil {
			t.Errorf("DeletePrefix(%q) = nil, want refused", bad)
		}
		if _, err := b.store.Create(ctx, bad+"/../y"); err == nil {
			t.Errorf("Create(%q) = nil, want refused", bad+"/../y")
		}
	}
}
