package blobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/datarights/datarights/config"
)

// Part sizes of multipart uploads. S3 refuses parts under 5 MiB (but the
// last); one part is what a writer holds in memory.
const (
	MinPartSize     = 5 << 20
	DefaultPartSize = 8 << 20
)

// S3 keeps objects in a bucket, under a prefix, each encrypted at rest by
// the server (SSE) as the configuration asks. Objects are written with one
// PUT when they fit in a part, else as a multipart upload, one part in
// memory at a time.
type S3 struct {
	cfg      config.S3Exports
	client   *s3.Client
	partSize int
}

// NewS3 returns the store for cfg. It does not connect.
func NewS3(ctx context.Context, cfg config.S3Exports) (*S3, error) {
	client, err := NewClient(ctx, ClientOptions{Region: cfg.Region, Endpoint: cfg.Endpoint, PathStyle: cfg.PathStyle,
		AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey})
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	part := cfg.PartSizeMB << 20
	if part < MinPartSize {
		part = DefaultPartSize
	}
	return &S3{cfg: cfg, client: client, partSize: part}, nil
}

// ClientOptions say how to reach an S3 service: the region, an endpoint
// for an S3-compatible server, and static keys (none: the AWS default
// credential chain).
type ClientOptions struct {
	Region, Endpoint     string
	PathStyle            bool
	AccessKey, SecretKey string
}

// NewClient returns an S3 client for o: the one way the service builds
// one, for its own bucket and for the S3 stores it exports from.
func NewClient(ctx context.Context, o ClientOptions) (*s3.Client, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if o.Region != "" {
		opts = append(opts, awsconfig.WithRegion(o.Region))
	}
	if o.AccessKey != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(o.AccessKey, o.SecretKey, "")))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load the AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	return s3.NewFromConfig(awsCfg, func(so *s3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
		so.UsePathStyle = o.PathStyle
	}), nil
}

// Client is the S3 client (for presigning).
func (s *S3) Client() *s3.Client { return s.client }

// Bucket is the bucket's name.
func (s *S3) Bucket() string { return s.cfg.Bucket }

// Key is the bucket key of an object key: the prefix and the key.
func (s *S3) Key(key string) string { return s.cfg.Prefix + key }

// PartSize is the size of a multipart upload's parts.
func (s *S3) PartSize() int { return s.partSize }

// Create starts writing key.
func (s *S3) Create(ctx context.Context, key string) (Writer, error) {
	return s.CreateTyped(ctx, key, "")
}

// CreateTyped is Create for an object served with a content type (an
// archive a presigned link downloads).
func (s *S3) CreateTyped(ctx context.Context, key, contentType string) (Writer, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	w := &s3Writer{s: s, ctx: ctx, key: s.Key(key)}
	if contentType != "" {
		w.contentType = aws.String(contentType)
	}
	return w, nil
}

// Open downloads the object.
func (s *S3) Open(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	if err := CheckKey(key); err != nil {
		return nil, 0, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(s.Key(key))})
	if err != nil {
		return nil, 0, fmt.Errorf("s3: open %s: %w", key, Cause(err))
	}
	return out.Body, aws.ToInt64(out.ContentLength), nil
}

// List lists the names directly under prefix.
func (s *S3) List(ctx context.Context, prefix string) ([]string, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	full := s.Key(prefix)
	var names []string
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.cfg.Bucket), Prefix: aws.String(full), Delimiter: aws.String("/")})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("s3: list %s: %w", prefix, Cause(err))
		}
		for _, p := range page.CommonPrefixes {
			names = append(names, strings.TrimPrefix(aws.ToString(p.Prefix), full))
		}
		for _, o := range page.Contents {
			names = append(names, strings.TrimPrefix(aws.ToString(o.Key), full))
		}
	}
	return names, nil
}

// Delete deletes the object (S3 answers success for a missing key).
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(s.Key(key))}); err != nil {
		return fmt.Errorf("s3: delete %s: %w", key, Cause(err))
	}
	return nil
}

// DeletePrefix deletes every object under prefix, then aborts the uploads
// to it still under way (a worker killed mid-upload leaves its parts,
// which the bucket would otherwise keep, and bill, for good).
func (s *S3) DeletePrefix(ctx context.Context, prefix string) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	full := s.Key(prefix)
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.cfg.Bucket), Prefix: aws.String(full)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("s3: delete %s: %w", prefix, Cause(err))
		}
		// One at a time rather than DeleteObjects: a request stages a few
		// dozen files, and DeleteObjects' per-key errors would need their
		// own handling.
		for _, o := range page.Contents {
			if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: o.Key}); err != nil {
				return fmt.Errorf("s3: delete %s: %w", prefix, Cause(err))
			}
		}
	}
	return s.abortUploads(ctx, full, false)
}

// abortUploads aborts the multipart uploads under the bucket key prefix
// full; with exact, only those to the key full itself.
func (s *S3) abortUploads(ctx context.Context, full string, exact bool) error {
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(s.cfg.Bucket), Prefix: aws.String(full)}
	for {
		out, err := s.client.ListMultipartUploads(ctx, in)
		if err != nil {
			return fmt.Errorf("s3: list uploads: %w", Cause(err))
		}
		for _, u := range out.Uploads {
			if exact && aws.ToString(u.Key) != full {
				continue
			}
			if _, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
				Bucket: aws.String(s.cfg.Bucket), Key: u.Key, UploadId: u.UploadId}); err != nil && !isNoSuchUpload(err) {
				return fmt.Errorf("s3: abort upload: %w", Cause(err))
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			return nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

func isNoSuchUpload(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && api.ErrorCode() == "NoSuchUpload"
}

// s3Writer buffers up to one part. An object that fits in a part is one
// PutObject at Commit; a larger one becomes a multipart upload whose parts
// go up as the buffer fills, so memory stays at one part however large the
// object.
type s3Writer struct {
	s   *S3
	ctx context.Context
	key string // in the bucket

	contentType *string

	buf      []byte
	uploadID string
	parts    []types.CompletedPart
	err      error // sticky
	done     bool
}

func (w *s3Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.done {
		return 0, errors.New("s3: write after commit or abort")
	}
	written := 0
	for len(p) > 0 {
		n := min(len(p), w.s.partSize-len(w.buf))
		if cap(w.buf) < len(w.buf)+n {
			// Grown by hand, never past one part: append's doubling would.
			grown := make([]byte, len(w.buf), min(max(2*cap(w.buf), len(w.buf)+n, 64<<10), w.s.partSize))
			copy(grown, w.buf)
			w.buf = grown
		}
		w.buf = append(w.buf, p[:n]...)
		p, written = p[n:], written+n
		if len(w.buf) == w.s.partSize {
			if err := w.uploadPart(); err != nil {
				w.err = err
				return written, err
			}
		}
	}
	return written, nil
}

func (w *s3Writer) sse() (types.ServerSideEncryption, *string) {
	switch w.s.cfg.SSE {
	case "AES256":
		return types.ServerSideEncryptionAes256, nil
	case "aws:kms":
		return types.ServerSideEncryptionAwsKms, aws.String(w.s.cfg.KMSKeyID)
	}
	return "", nil
}

// uploadPart sends the buffer as the next part, starting the upload with
// the first.
func (w *s3Writer) uploadPart() error {
	bucket := aws.String(w.s.cfg.Bucket)
	if w.uploadID == "" {
		// An upload to this key that a killed worker left is aborted
		// first: its parts would otherwise stay (and be billed) for good.
		if err := w.s.abortUploads(w.ctx, w.key, true); err != nil {
			return err
		}
		in := &s3.CreateMultipartUploadInput{Bucket: bucket, Key: aws.String(w.key), ContentType: w.contentType}
		in.ServerSideEncryption, in.SSEKMSKeyId = w.sse()
		out, err := w.s.client.CreateMultipartUpload(w.ctx, in)
		if err != nil {
			return fmt.Errorf("s3: start upload: %w", Cause(err))
		}
		w.uploadID = aws.ToString(out.UploadId)
	}
	n := int32(len(w.parts) + 1)
	out, err := w.s.client.UploadPart(w.ctx, &s3.UploadPartInput{Bucket: bucket, Key: aws.String(w.key), UploadId: aws.String(w.uploadID),
		PartNumber: aws.Int32(n), Body: bytes.NewReader(w.buf), ContentLength: aws.Int64(int64(len(w.buf)))})
	if err != nil {
		return fmt.Errorf("s3: upload part %d: %w", n, Cause(err))
	}
	w.parts = append(w.parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n)})
	w.buf = w.buf[:0]
	return nil
}

func (w *s3Writer) Commit() error {
	if w.err != nil {
		w.Abort()
		return w.err
	}
	if w.done {
		return errors.New("s3: commit after commit or abort")
	}
	bucket := aws.String(w.s.cfg.Bucket)
	if w.uploadID == "" {
		in := &s3.PutObjectInput{Bucket: bucket, Key: aws.String(w.key), Body: bytes.NewReader(w.buf),
			ContentLength: aws.Int64(int64(len(w.buf))), ContentType: w.contentType}
		in.ServerSideEncryption, in.SSEKMSKeyId = w.sse()
		if _, err := w.s.client.PutObject(w.ctx, in); err != nil {
			w.err = fmt.Errorf("s3: put: %w", Cause(err))
			w.Abort()
			return w.err
		}
		w.done, w.buf = true, nil
		return nil
	}
	if len(w.buf) > 0 {
		if err := w.uploadPart(); err != nil {
			w.err = err
			w.Abort()
			return err
		}
	}
	_, err := w.s.client.CompleteMultipartUpload(w.ctx, &s3.CompleteMultipartUploadInput{Bucket: bucket, Key: aws.String(w.key),
		UploadId: aws.String(w.uploadID), MultipartUpload: &types.CompletedMultipartUpload{Parts: w.parts}})
	if err != nil {
		w.err = fmt.Errorf("s3: complete upload: %w", Cause(err))
		w.Abort()
		return w.err
	}
	w.done, w.buf = true, nil
	return nil
}

func (w *s3Writer) Abort() {
	if w.done {
		return
	}
	w.done, w.buf = true, nil
	if w.uploadID != "" {
		// Even when the job's context is over: the parts are what to drop.
		_, _ = w.s.client.AbortMultipartUpload(context.WithoutCancel(w.ctx), &s3.AbortMultipartUploadInput{
			Bucket: aws.String(w.s.cfg.Bucket), Key: aws.String(w.key), UploadId: aws.String(w.uploadID)})
	}
}

// Cause keeps an S3 error's code and status, never the request URL (which
// names the object, and so the request).
func Cause(err error) error {
	var api smithy.APIError
	if errors.As(err, &api) {
		if api.ErrorCode() == "NoSuchKey" || api.ErrorCode() == "NotFound" {
			return fmt.Errorf("%w (%s)", ErrNotExist, api.ErrorCode())
		}
		return fmt.Errorf("%s (%s)", api.ErrorCode(), http.StatusText(httpStatus(err)))
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
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
