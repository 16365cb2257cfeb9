package exporters

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/datarights/datarights/blobs"
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
// server (SSE) on top of the archive's own encryption. Archives are
// uploaded streamed, a part at a time (blobs.S3).
type S3Destination struct {
	cfg     config.S3Exports
	objects *blobs.S3
	presign *s3.PresignClient
}

// NewS3Destination returns the destination for cfg. It does not connect.
func NewS3Destination(ctx context.Context, cfg config.S3Exports) (*S3Destination, error) {
	objects, err := blobs.NewS3(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("exports %w", err)
	}
	return &S3Destination{cfg: cfg, objects: objects, presign: s3.NewPresignClient(objects.Client())}, nil
}

func (d *S3Destination) location(name string) string {
	return "s3://" + d.cfg.Bucket + "/" + d.objects.Key(name)
}

// parse returns the archive's name (its key under the prefix).
func (d *S3Destination) parse(location string) (string, error) {
	name, ok := strings.CutPrefix(location, "s3://"+d.cfg.Bucket+"/"+d.cfg.Prefix)
	if !ok || blobs.CheckKey(name) != nil {
		return "", fmt.Errorf("exports s3: %s is not in bucket %s under %q", location, d.cfg.Bucket, d.cfg.Prefix)
	}
	return name, nil
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
	if err := d.Upload(ctx, name, f); err != nil {
		return "", err
	}
	_ = os.Remove(path)
	return d.location(name), nil
}

// Upload streams an archive into the bucket as name: another's archive
// (a transfer's receiver) goes from our destination to theirs without
// touching a disk.
func (d *S3Destination) Upload(ctx context.Context, name string, r io.Reader) error {
	if err := checkPathElem("archive name", name); err != nil {
		return err
	}
	w, err := d.objects.CreateTyped(ctx, name, archiveContentType(name))
	if err != nil {
		return fmt.Errorf("exports s3: %w", err)
	}
	if _, err := io.Copy(w, ctxReader{ctx, r}); err != nil {
		w.Abort()
		return fmt.Errorf("exports s3: upload %s: %w", name, err)
	}
	if err := w.Commit(); err != nil {
		return fmt.Errorf("exports s3: upload %s: %w", name, err)
	}
	return nil
}

// Location is where Put (or Upload) keeps name.
func (d *S3Destination) Location(name string) string { return d.location(name) }

// Open downloads the archive.
func (d *S3Destination) Open(ctx context.Context, location string) (io.ReadCloser, int64, error) {
	name, err := d.parse(location)
	if err != nil {
		return nil, 0, err
	}
	body, size, err := d.objects.Open(ctx, name)
	if err != nil {
		return nil, 0, fmt.Errorf("exports s3: open archive: %w", err)
	}
	return body, size, nil
}

// Delete deletes the archive (S3 answers success for a missing key).
func (d *S3Destination) Delete(ctx context.Context, location string) error {
	name, err := d.parse(location)
	if err != nil {
		return err
	}
	if err := d.objects.Delete(ctx, name); err != nil {
		return fmt.Errorf("exports s3: delete archive: %w", err)
	}
	return nil
}

// Presign returns a GET URL valid for ttl (at most 7 days, as SigV4
// allows) that downloads the archive under filename.
func (d *S3Destination) Presign(ctx context.Context, location, filename string, ttl time.Duration) (string, error) {
	name, err := d.parse(location)
	if err != nil {
		return "", err
	}
	req, err := d.presign.PresignGetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(d.cfg.Bucket), Key: aws.String(d.objects.Key(name)),
		ResponseContentDisposition: aws.String(`attachment; filename="` + filename + `"`),
	}, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("exports s3: presign: %w", blobs.Cause(err))
	}
	return req.URL, nil
}

func archiveContentType(name string) string {
	if strings.HasSuffix(name, ".age") {
		return "application/octet-stream"
	}
	return "application/zip"
}
