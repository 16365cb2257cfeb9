package exporters

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/datarights/datarights/config"
)

// Destination keeps finished archives until they are delivered and purged.
// Locations are opaque strings the destination gave out: a path for a local
// directory, s3://bucket/key for S3.
type Destination interface {
	// Put stores the complete archive at path (a local file, which Put
	// removes) under name and returns its location.
	Put(ctx context.Context, name, path string) (string, error)
	// Open returns the archive's content and size.
	Open(ctx context.Context, location string) (io.ReadCloser, int64, error)
	// Delete removes the archive; a location already gone is not an error.
	Delete(ctx context.Context, location string) error
	// Presign returns a URL that downloads the archive until ttl has
	// passed, or ErrNoPresign.
	Presign(ctx context.Context, location, filename string, ttl time.Duration) (string, error)
}

// ErrNoPresign is returned by destinations that cannot hand out links of
// their own (a local directory): the service's download link is used.
var ErrNoPresign = errors.New("this destination cannot presign links")

// NewDestination returns the destination the configuration names, with
// archives kept under dir (data_dir/exports) when it is local.
func NewDestination(ctx context.Context, cfg config.Exports, dir string) (Destination, error) {
	if cfg.Destination == "s3" && cfg.S3 != nil {
		return NewS3Destination(ctx, *cfg.S3)
	}
	return &LocalDestination{Dir: dir}, nil
}

// LocalDestination keeps archives in a directory of the service's.
type LocalDestination struct {
	Dir string
}

// Put moves the archive into the directory.
func (d *LocalDestination) Put(_ context.Context, name, path string) (string, error) {
	if err := checkPathElem("archive name", name); err != nil {
		return "", err
	}
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return "", fmt.Errorf("exports directory: %w", err)
	}
	// The archive is the only copy once its request moves on (the staging
	// is removed), so it is made durable here, before the caller records
	// it: its content, then its name.
	if err := syncFile(path); err != nil {
		return "", fmt.Errorf("store archive %s: %w", name, err)
	}
	final := filepath.Join(d.Dir, name)
	if err := os.Rename(path, final); err != nil {
		return "", fmt.Errorf("store archive %s: %w", name, err)
	}
	if err := syncDir(d.Dir); err != nil {
		return "", fmt.Errorf("store archive %s: %w", name, err)
	}
	return final, nil
}

// Open opens the archive.
func (d *LocalDestination) Open(_ context.Context, location string) (io.ReadCloser, int64, error) {
	f, err := os.OpenInRoot(d.Dir, filepath.Base(location))
	if err != nil {
		return nil, 0, fmt.Errorf("open archive: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("open archive: %w", err)
	}
	return f, st.Size(), nil
}

// Delete removes the archive.
func (d *LocalDestination) Delete(_ context.Context, location string) error {
	if err := os.Remove(filepath.Join(d.Dir, filepath.Base(location))); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete archive: %w", err)
	}
	return nil
}

// Presign is not possible for a local directory.
func (d *LocalDestination) Presign(context.Context, string, string, time.Duration) (string, error) {
	return "", ErrNoPresign
}

// S3Destination keeps archives in an S3 bucket, encrypted at rest by the
// server (SSE) on top of the archive's own encryption.
type S3Destination struct {
	cfg     config.S3Exports
	client  *s3.Client
	presign *s3.PresignClient
}

// NewS3Destination returns the destination for cfg. It does not connect.
func NewS3Destination(ctx context.Context, cfg config.S3Exports) (*S3Destination, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, awsconfig.WithRegion(cfg.Region))
	}
	if cfg.AccessKey != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, "")))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("exports s3: load the AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
	})
	return &S3Destination{cfg: cfg, client: client, presign: s3.NewPresignClient(client)}, nil
}

func (d *S3Destination) key(name string) string { return d.cfg.Prefix + name }

func (d *S3Destination) location(key string) string { return "s3://" + d.cfg.Bucket + "/" + key }

func (d *S3Destination) parse(location string) (string, error) {
	key, ok := strings.CutPrefix(location, "s3://"+d.cfg.Bucket+"/")
	if !ok {
		return "", fmt.Errorf("exports s3: %s is not in bucket %s", location, d.cfg.Bucket)
	}
	return key, nil
}

// Put uploads the archive, asking for server-side encryption, and removes
// the local file.
func (d *S3Destination) Put(ctx context.Context, name, path string) (string, error) {
	if err := checkPathElem("archive name", name); err != nil {
		return "", err
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("exports s3: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("exports s3: %w", err)
	}
	in := &s3.PutObjectInput{
		Bucket: aws.String(d.cfg.Bucket), Key: aws.String(d.key(name)), Body: f,
		ContentLength: aws.Int64(st.Size()), ContentType: aws.String(archiveContentType(name)),
	}
	switch d.cfg.SSE {
	case "AES256":
		in.ServerSideEncryption = types.ServerSideEncryptionAes256
	case "aws:kms":
		in.ServerSideEncryption, in.SSEKMSKeyId = types.ServerSideEncryptionAwsKms, aws.String(d.cfg.KMSKeyID)
	}
	if _, err := d.client.PutObject(ctx, in); err != nil {
		return "", fmt.Errorf("exports s3: upload %s: %w", name, s3Cause(err))
	}
	_ = os.Remove(path)
	return d.location(d.key(name)), nil
}

// Open downloads the archive.
func (d *S3Destination) Open(ctx context.Context, location string) (io.ReadCloser, int64, error) {
	key, err := d.parse(location)
	if err != nil {
		return nil, 0, err
	}
	out, err := d.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(d.cfg.Bucket), Key: aws.String(key)})
	if err != nil {
		return nil, 0, fmt.Errorf("exports s3: open archive: %w", s3Cause(err))
	}
	return out.Body, aws.ToInt64(out.ContentLength), nil
}

// Delete deletes the archive (S3 answers success for a missing key).
func (d *S3Destination) Delete(ctx context.Context, location string) error {
	key, err := d.parse(location)
	if err != nil {
		return err
	}
	if _, err := d.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(d.cfg.Bucket), Key: aws.String(key)}); err != nil {
		return fmt.Errorf("exports s3: delete archive: %w", s3Cause(err))
	}
	return nil
}

// Presign returns a GET URL valid for ttl (at most 7 days, as SigV4
// allows) that downloads the archive under filename.
func (d *S3Destination) Presign(ctx context.Context, location, filename string, ttl time.Duration) (string, error) {
	key, err := d.parse(location)
	if err != nil {
		return "", err
	}
	req, err := d.presign.PresignGetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(d.cfg.Bucket), Key: aws.String(key),
		ResponseContentDisposition: aws.String(`attachment; filename="` + filename + `"`),
	}, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("exports s3: presign: %w", s3Cause(err))
	}
	return req.URL, nil
}

// s3Cause keeps an S3 error's code and status, never the request URL
// (which names the object).
func s3Cause(err error) error {
	var api smithy.APIError
	if errors.As(err, &api) {
		return fmt.Errorf("%s (%s)", api.ErrorCode(), http.StatusText(httpStatus(err)))
	}
	return errors.New("the S3 server could not be reached")
}

func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func archiveContentType(name string) string {
	if strings.HasSuffix(name, ".age") {
		return "application/octet-stream"
	}
	return "application/zip"
}
