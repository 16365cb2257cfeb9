package stores

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/datarights/datarights/blobs"
	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/rights"
)

func init() {
	register("s3", func(ctx context.Context, cfg config.Store) (rights.Connector, error) {
		c, err := NewS3(ctx, cfg)
		if err != nil {
			return nil, err // not c: a nil *S3 in an interface is not nil
		}
		return c, nil
	})
}

// S3MaxInline is the largest object whose content an export carries inline.
const S3MaxInline = 1 << 20

// S3 datasets have these columns, one row per object.
var s3Columns = []string{"key", "size", "last_modified", "etag", "content_type", "content_base64", "note"}

// s3TooLarge is the note on the row of an object too large to inline.
const s3TooLarge = "too large to inline; delivered separately"

// S3 is the connector for a store kept in an S3 bucket (or an S3-compatible
// server) where every object under one prefix belongs to one person: the
// configured prefix with the person's key, subject.Identities[cfg.Key], in
// place of "{key}", e.g. "users/{user_id}/" → "users/u-1/".
//
// The prefix always ends in "/": one configured without it gets one appended
// ("users/{user_id}" is read as "users/{user_id}/"). Without it the prefix of
// u-1 would also match u-10's objects. A key must be usable as one path
// segment: not empty, valid UTF-8, without "/", "\", "..", or control
// characters. A key that is not is treated as not found in this store
// (Resolved false) and no request is sent: such a key could only reach
// objects outside its own prefix, another person's, or none at all. With
// these two rules no person's prefix is a prefix of another's.
//
// An S3 store has no lookups of its own: the key must be among the subject's
// identities (the pipeline passes Subject.All(), so a key found through
// another store's lookups counts).
//
// Export writes one dataset, named after the store's category (or "objects"),
// with a row per object: its key, size, last-modified time, ETag, content type
// and, for objects of at most S3MaxInline bytes, the content in base64.
// Larger objects are listed with a note instead of their content.
//
// Delete deletes the objects, so in a bucket with versioning enabled it
// leaves delete markers and the earlier versions stay until the bucket's
// lifecycle rules expire them.
//
// Errors name the store and the operation, never an object key (keys hold
// the person's key): request URLs are cut from them, the messages of errors
// from the server are withheld (only the code and HTTP status remain), and any
// other message that contains the person's key is withheld.
type S3 struct {
	cfg    config.Store
	s3     config.S3Store
	client *s3.Client
}

var _ rights.Connector = (*S3)(nil)

// NewS3 returns the connector for cfg. It does not connect: an unreachable
// store fails its tasks (which are retried) rather than the service's start.
//
// When the configuration names the environment variables holding an access
// key and secret, they are read now and must be set; otherwise the AWS SDK's
// default credential chain is used. The region is the configured one, else
// the SDK's (AWS_REGION, shared config), else us-east-1. A configured endpoint
// replaces AWS's, for S3-compatible servers; most of those want path_style.
func NewS3(ctx context.Context, cfg config.Store) (*S3, error) {
	if cfg.S3 == nil {
		return nil, fmt.Errorf("store %s: the s3 section is missing", cfg.Name)
	}
	sc := *cfg.S3
	o := blobs.ClientOptions{Region: sc.Region, Endpoint: sc.Endpoint, PathStyle: sc.PathStyle}
	switch {
	case sc.AccessKeyEnv == "" && sc.SecretKeyEnv == "":
		// the default credential chain
	case sc.AccessKeyEnv == "" || sc.SecretKeyEnv == "":
		return nil, fmt.Errorf("store %s: access_key_env and secret_key_env must be set together", cfg.Name)
	default:
		o.AccessKey, o.SecretKey = os.Getenv(sc.AccessKeyEnv), os.Getenv(sc.SecretKeyEnv)
		for _, v := range [][2]string{{sc.AccessKeyEnv, o.AccessKey}, {sc.SecretKeyEnv, o.SecretKey}} {
			if v[1] == "" {
				return nil, fmt.Errorf("store %s: environment variable %s is not set", cfg.Name, v[0])
			}
		}
	}
	client, err := blobs.NewClient(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", cfg.Name, err)
	}
	return &S3{cfg: cfg, s3: sc, client: client}, nil
}

// Export writes a row for every object under the subject's prefix to sink.
// The subject is resolved when there is at least one. Objects are listed in
// key order, so a retried export writes the same rows (unless the objects
// changed in between). An object deleted between listing and reading is left
// out.
func (c *S3) Export(ctx context.Context, subject rights.Subject, sink rights.Sink) (rights.StoreReport, error) {
	key, prefix, ok := c.prefix(subject)
	if !ok {
		return rights.StoreReport{}, nil
	}
	pages := s3.NewListObjectsV2Paginator(c.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(c.s3.Bucket),
		Prefix: aws.String(prefix),
	})
	var w rights.RowWriter
	name := c.datasetName()
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return rights.StoreReport{}, c.errorf("list objects", err, key)
		}
		for _, obj := range page.Contents {
			if w == nil {
				// An unfinished dataset is left unclosed on error: Close means
				// "complete", and the retried Export writes it again.
				if w, err = sink.Dataset(name, s3Columns); err != nil {
					return rights.StoreReport{}, fmt.Errorf("store %s: start dataset %s: %w", c.cfg.Name, name, err)
				}
			}
			row, err := c.objectRow(ctx, obj, key)
			if err != nil {
				return rights.StoreReport{}, err
			}
			if row == nil {
				continue // gone since it was listed
			}
			if err := w.WriteRow(row); err != nil {
				return rights.StoreReport{}, fmt.Errorf("store %s: write dataset %s: %w", c.cfg.Name, name, err)
			}
		}
	}
	if w == nil {
		return rights.StoreReport{}, nil // no objects: not in this store
	}
	dataset, err := w.Close()
	if err != nil {
		return rights.StoreReport{}, fmt.Errorf("store %s: finish dataset %s: %w", c.cfg.Name, name, err)
	}
	if dataset.Name == "" {
		dataset.Name = name
	}
	dataset.Category = c.s3.Category
	return rights.StoreReport{Resolved: true, Datasets: []rights.DatasetReport{dataset}}, nil
}

// objectRow reads one listed object and returns its row, in s3Columns order,
// or nil when the object no longer exists.
func (c *S3) objectRow(ctx context.Context, obj types.Object, key string) ([]any, error) {
	if aws.ToInt64(obj.Size) > S3MaxInline {
		head, err := c.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(c.s3.Bucket), Key: obj.Key})
		if err != nil {
			if notFound(err) {
				return nil, nil
			}
			return nil, c.errorf("read an object's metadata", err, key)
		}
		return s3Row(obj.Key, head.ContentLength, head.LastModified, head.ETag, head.ContentType, nil), nil
	}

	out, err := c.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(c.s3.Bucket), Key: obj.Key})
	if err != nil {
		if notFound(err) {
			return nil, nil
		}
		return nil, c.errorf("read an object", err, key)
	}
	defer out.Body.Close()
	// The object may have grown since it was listed: read one byte more than
	// the limit to notice.
	content, err := io.ReadAll(io.LimitReader(out.Body, S3MaxInline+1))
	if err != nil {
		return nil, c.errorf("read an object", err, key)
	}
	if len(content) > S3MaxInline {
		content = nil
	}
	return s3Row(obj.Key, out.ContentLength, out.LastModified, out.ETag, out.ContentType, content), nil
}

// s3Row builds a row; content nil means too large to inline.
func s3Row(key *string, size *int64, modified *time.Time, etag, contentType *string, content []byte) []any {
	row := []any{
		aws.ToString(key),
		aws.ToInt64(size),
		nil, // last_modified
		strings.Trim(aws.ToString(etag), `"`),
		nil, // content_type
		nil, // content_base64
		nil, // note
	}
	if modified != nil {
		row[2] = modified.UTC()
	}
	if contentType != nil {
		row[4] = *contentType
	}
	if content != nil {
		row[5] = base64.StdEncoding.EncodeToString(content)
	} else {
		row[6] = s3TooLarge
	}
	return row
}

// Delete deletes every object under the subject's prefix, a page of at most
// 1000 keys per request, and reports how many it deleted. When there are
// none the subject is not resolved, as with the other stores: a repeated
// Delete reports "not found", not "found, deleted nothing". When the server
// refuses some keys Delete fails, naming how many and the error code; the
// objects deleted by then stay deleted and a retry deletes the rest.
func (c *S3) Delete(ctx context.Context, subject rights.Subject) (rights.StoreReport, error) {
	key, prefix, ok := c.prefix(subject)
	if !ok {
		return rights.StoreReport{}, nil
	}
	// Each page is deleted before the next is listed; the continuation token
	// marks a position in key order, so deleting what is behind it is safe.
	pages := s3.NewListObjectsV2Paginator(c.client, &s3.ListObjectsV2Input{
		Bucket:  aws.String(c.s3.Bucket),
		Prefix:  aws.String(prefix),
		MaxKeys: aws.Int32(1000), // DeleteObjects takes at most 1000 keys
	})
	var deleted int64
	found := false
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return rights.StoreReport{}, c.errorf("list objects", err, key)
		}
		if len(page.Contents) == 0 {
			continue
		}
		found = true
		ids := make([]types.ObjectIdentifier, len(page.Contents))
		for i, obj := range page.Contents {
			ids[i] = types.ObjectIdentifier{Key: obj.Key}
		}
		out, err := c.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(c.s3.Bucket),
			Delete: &types.Delete{Objects: ids},
		})
		if err != nil {
			return rights.StoreReport{}, c.errorf("delete objects", err, key)
		}
		deleted += int64(len(out.Deleted))
		if len(out.Errors) > 0 {
			// Per-key errors carry the key and a message that may quote it:
			// report the count and the codes only.
			var codes []string
			for _, e := range out.Errors {
				if code := aws.ToString(e.Code); code != "" && !slices.Contains(codes, code) {
					codes = append(codes, code)
				}
			}
			return rights.StoreReport{}, &s3Error{
				msg: fmt.Sprintf("store %s: delete objects: %d of %d objects not deleted (%s); %d deleted so far",
					c.cfg.Name, len(out.Errors), len(ids), strings.Join(codes, ", "), deleted),
			}
		}
	}
	if !found {
		return rights.StoreReport{}, nil
	}
	return rights.StoreReport{Resolved: true, Datasets: []rights.DatasetReport{{
		Name:     c.datasetName(),
		Category: c.s3.Category,
		Rows:     deleted,
	}}}, nil
}

// Close does nothing: the client holds only idle connections, which the
// SDK's transport closes after 90 seconds unused.
func (c *S3) Close() error { return nil }

func (c *S3) datasetName() string {
	if c.s3.Category != "" {
		return c.s3.Category
	}
	return "objects"
}

// prefix returns the subject's key and object prefix, and false when the
// subject has no usable key (see S3).
func (c *S3) prefix(subject rights.Subject) (key, prefix string, ok bool) {
	key = subject.Identities[c.cfg.Key]
	if !safeSegment(key) {
		return "", "", false
	}
	prefix = strings.Replace(c.s3.Prefix, "{"+c.cfg.Key+"}", key, 1)
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return key, prefix, true
}

// safeSegment reports whether key can stand for one path segment of an
// object key without reaching outside it.
func safeSegment(key string) bool {
	if key == "" || key == "." || !utf8.ValidString(key) ||
		strings.ContainsAny(key, `/\`) || strings.Contains(key, "..") {
		return false
	}
	for _, r := range key {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// notFound reports whether err says the object does not exist.
func notFound(err error) bool {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode() {
	case "NoSuchKey", "NotFound":
		return true
	}
	return false
}

// s3Error is an error from the S3 client with every part that may quote an
// object key removed. It unwraps to a cleaned smithy.APIError (code and
// fault only), to the network error underneath a failed request, or to the
// context's error.
type s3Error struct {
	msg string
	err error
}

func (e *s3Error) Error() string { return e.msg }
func (e *s3Error) Unwrap() error { return e.err }

// withheld replaces messages that may quote personal data.
const withheld = "message withheld: it may quote personal data"

// errorf returns err, from operation op on the objects of the person whose
// key is key, cleaned of object keys (see s3Error).
func (c *S3) errorf(op string, err error, key string) error {
	op = "store " + c.cfg.Name + ": " + op
	// The server's message may quote the key; its code and status do not.
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		status := ""
		var respErr *awshttp.ResponseError
		if errors.As(err, &respErr) {
			status = fmt.Sprintf("http %d, ", respErr.HTTPStatusCode())
		}
		clean := &smithy.GenericAPIError{Code: apiErr.ErrorCode(), Message: withheld, Fault: apiErr.ErrorFault()}
		return &s3Error{msg: op + ": " + status + clean.Error(), err: clean}
	}
	// A request that got no answer fails with a *url.Error, which quotes the
	// request's URL: bucket, object key or prefix.
	msg := err.Error()
	var inner error
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		msg = strings.ReplaceAll(msg, urlErr.URL, "[url withheld]")
		inner = urlErr.Err
	}
	if mentions(msg, key) {
		msg = withheld
		var opErr *smithy.OperationError
		if errors.As(err, &opErr) {
			msg = "operation error " + opErr.Service() + ": " + opErr.Operation() + ", " + withheld
		}
	}
	if inner != nil && mentions(inner.Error(), key) {
		inner = nil
	}
	switch {
	case errors.Is(err, context.Canceled):
		inner = context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		inner = context.DeadlineExceeded
	}
	return &s3Error{msg: op + ": " + msg, err: inner}
}

// mentions reports whether msg contains key as it is or escaped as URLs
// escape it, ignoring case (percent-escapes come in either).
func mentions(msg, key string) bool {
	msg = strings.ToLower(msg)
	for _, form := range []string{key, url.PathEscape(key), url.QueryEscape(key), strictEscape(key)} {
		if strings.Contains(msg, strings.ToLower(form)) {
			return true
		}
	}
	return false
}

// strictEscape percent-escapes every byte but RFC 3986's unreserved ones, as
// AWS's signing and URL encoding do.
func strictEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if 'A' <= ch && ch <= 'Z' || 'a' <= ch && ch <= 'z' || '0' <= ch && ch <= '9' || strings.IndexByte("-._~", ch) >= 0 {
			b.WriteByte(ch)
		} else {
			fmt.Fprintf(&b, "%%%02X", ch)
		}
	}
	return b.String()
}
