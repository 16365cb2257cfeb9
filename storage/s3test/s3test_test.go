package s3test_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/datarights/datarights/storage/s3test"
)

func TestServer(t *testing.T) {
	t.Parallel()
	srv := s3test.NewServer(t)
	if !strings.HasPrefix(srv.Endpoint(), "http://127.0.0.1:") {
		t.Errorf("Endpoint() = %q, want a loopback URL", srv.Endpoint())
	}
	if srv.AccessKey() == "" || srv.SecretKey() == "" || srv.Region() != "us-east-1" {
		t.Errorf("keys %q/%q, region %q", srv.AccessKey(), srv.SecretKey(), srv.Region())
	}
	srv.CreateBucket(t, "box")
	client := srv.Client(t)
	ctx := t.Context()
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String("box"),
		Key:    aws.String("a/文件.txt"),
		Body:   strings.NewReader("hello"),
	}); err != nil {
		t.Fatal(err)
	}
	got, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("box"), Key: aws.String("a/文件.txt")})
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(got.Body)
	got.Body.Close()
	if err != nil || string(body) != "hello" {
		t.Fatalf("read back %q, %v; want hello", body, err)
	}

	// Wrong keys are refused: the server really checks signatures.
	bad := s3.New(client.Options(), func(o *s3.Options) {
		o.Credentials = aws.AnonymousCredentials{}
	})
	if _, err := bad.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("box")}); err == nil {
		t.Error("anonymous list succeeded, want access denied")
	}

	srv.Close()
	srv.Close() // again: a no-op
	_, err = client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("box")})
	var apiErr smithy.APIError
	if err == nil || errors.As(err, &apiErr) {
		t.Errorf("list after Close: %v, want a connection error", err)
	}
}

// TestServersAreSeparate checks that servers started side by side do not
// share buckets or keys.
func TestServersAreSeparate(t *testing.T) {
	t.Parallel()
	a, b := s3test.NewServer(t), s3test.NewServer(t)
	if a.Endpoint() == b.Endpoint() || a.AccessKey() == b.AccessKey() {
		t.Fatalf("two servers share endpoint %s or access key", a.Endpoint())
	}
	a.CreateBucket(t, "only-on-a")
	out, err := b.Client(t).ListBuckets(t.Context(), &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Buckets) != 0 {
		t.Errorf("server b lists %d buckets, want none", len(out.Buckets))
	}
}
