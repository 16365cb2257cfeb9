// Package exporters turns what the connectors export into what the requester
// receives: datasets staged on disk as JSON, a zip archive with a readable
// report, and the email that delivers it.
package exporters

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/datarights/datarights/blobs"
	"github.com/datarights/datarights/exporters/aeszip"
	"github.com/datarights/datarights/rights"
)

// Staging keeps the datasets exported for each request on disk until the
// archive is built: <root>/staging/<request id>/<store>/<dataset>.json.df
// (and .csv.df), deflated as they are written.
//
// With an object store (objects.backend: s3) the same files are objects
// under staging/<request id>/<store>/, written as they are produced, so
// that the archive can be assembled by any worker on any host.
type Staging struct {
	root    string
	objects blobs.Store // nil: files under root
	opts    StagingOptions
}

// StagingOptions say which formats are staged.
type StagingOptions struct {
	// CSV also stages every dataset as CSV.
	CSV bool
	// BOM starts each CSV file with a UTF-8 byte order mark, which Excel
	// needs to read UTF-8 correctly.
	BOM bool
}

// NewStaging returns the staging area under root (the data directory),
// staging JSON only.
func NewStaging(root string) *Staging {
	return &Staging{root: root}
}

// NewStagingWith returns the staging area under root with options.
func NewStagingWith(root string, opts StagingOptions) *Staging {
	return &Staging{root: root, opts: opts}
}

// NewStagingIn returns the staging area in an object store, under
// staging/.
func NewStagingIn(objects blobs.Store, opts StagingOptions) *Staging {
	return &Staging{objects: objects, opts: opts}
}

// Dir returns the directory holding a request's staged datasets. Dataset
// reports name their files relative to it. It is "" for a staging area in
// an object store: use Opener.
func (s *Staging) Dir(requestID string) string {
	if s.objects != nil {
		return ""
	}
	return filepath.Join(s.root, "staging", requestID)
}

// prefix is a request's prefix in the object store.
func stagingPrefix(requestID string) string { return "staging/" + requestID + "/" }

// Opener returns what opens a request's staged files by the names its
// dataset reports give them.
func (s *Staging) Opener(ctx context.Context, requestID string) StagedOpener {
	if s.objects == nil {
		return DirOpener(s.Dir(requestID))
	}
	return func(name string) (io.ReadCloser, error) {
		// The names a report gives are checked as the local staging's
		// os.OpenInRoot checks them: nothing outside the request's prefix.
		if err := checkPathElem("request id", requestID); err != nil {
			return nil, err
		}
		if !filepath.IsLocal(name) || blobs.CheckKey(name) != nil {
			return nil, rights.Errorf(rights.EInvalid, "staged file %q is not inside the request's staging area", name)
		}
		rc, _, err := s.objects.Open(ctx, stagingPrefix(requestID)+name)
		return rc, err
	}
}

// Sink returns the sink a connector exports one store's datasets to.
func (s *Staging) Sink(requestID, store string) (rights.Sink, error) {
	return s.SinkContext(context.Background(), requestID, store)
}

// SinkContext is Sink whose writes to an object store end with ctx.
func (s *Staging) SinkContext(ctx context.Context, requestID, store string) (rights.Sink, error) {
	if err := checkPathElem("request id", requestID); err != nil {
		return nil, err
	}
	if err := checkPathElem("store name", store); err != nil {
		return nil, err
	}
	if s.objects != nil {
		return &stagingSink{objects: s.objects, ctx: ctx, prefix: stagingPrefix(requestID) + store + "/", store: store,
			opts: s.opts, started: map[string]bool{}}, nil
	}
	dir := filepath.Join(s.Dir(requestID), store)
	// Staged files hold personal data: only the service may read them.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("staging store %s: %w", store, err)
	}
	return &stagingSink{dir: dir, store: store, opts: s.opts, started: map[string]bool{}}, nil
}

// Syncer is what a staging sink also is: Sync makes every file finished
// through it durable. A store task calls it once, after the export and
// before the transaction that records the task, rather than each file
// paying its own fsync and directory sync as it is written.
type Syncer interface {
	Sync() error
}

// SyncSink makes what was staged through sink durable, when it is a
// staging sink (see [Syncer]); other sinks need nothing.
func SyncSink(sink rights.Sink) error {
	if s, ok := sink.(Syncer); ok {
		return s.Sync()
	}
	return nil
}

// Requests lists the requests that have something staged.
func (s *Staging) Requests() ([]string, error) {
	return s.RequestsContext(context.Background())
}

// RequestsContext is Requests with a context for an object store.
func (s *Staging) RequestsContext(ctx context.Context) ([]string, error) {
	if s.objects != nil {
		names, err := s.objects.List(ctx, "staging/")
		if err != nil {
			return nil, fmt.Errorf("list staging: %w", err)
		}
		var ids []string
		for _, n := range names {
			if id, ok := strings.CutSuffix(n, "/"); ok {
				ids = append(ids, id)
			}
		}
		return ids, nil
	}
	entries, err := os.ReadDir(filepath.Join(s.root, "staging"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list staging: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// Remove deletes everything staged for a request. Removing a request that has
// nothing staged is not an error.
func (s *Staging) Remove(requestID string) error {
	return s.RemoveContext(context.Background(), requestID)
}

// RemoveContext is Remove with a context for an object store. There it
// also aborts uploads a killed store task left under way.
func (s *Staging) RemoveContext(ctx context.Context, requestID string) error {
	if err := checkPathElem("request id", requestID); err != nil {
		return err
	}
	if s.objects != nil {
		if err := s.objects.DeletePrefix(ctx, stagingPrefix(requestID)); err != nil {
			return fmt.Errorf("removing staged data of request %s: %w", requestID, err)
		}
		return nil
	}
	if err := os.RemoveAll(s.Dir(requestID)); err != nil {
		return fmt.Errorf("removing staged data of request %s: %w", requestID, err)
	}
	return nil
}

// checkPathElem rejects names that could leave the staging directory.
func checkPathElem(what, name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`+"\x00") {
		return rights.Errorf(rights.EInvalid, "%s %q cannot be used as a directory name", what, name)
	}
	return nil
}

// datasetFileName returns the file name a dataset is staged and archived
// under: the name itself plus ".json". Names like "schema.table" are fine;
// anything that is not a plain file name is refused rather than rewritten, so
// two datasets can never end up in the same file.
func datasetFileName(dataset string) (string, error) {
	if dataset == "" {
		return "", rights.Errorf(rights.EInvalid, "a dataset needs a name")
	}
	if len(dataset) > 200 {
		return "", rights.Errorf(rights.EInvalid, "dataset name %.40q... is longer than 200 bytes", dataset)
	}
	for _, r := range dataset {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-'
		if !ok {
			return "", rights.Errorf(rights.EInvalid, "dataset name %q may only hold letters, digits, '_', '.' and '-'", dataset)
		}
	}
	if strings.HasPrefix(dataset, ".") || strings.Contains(dataset, "..") {
		return "", rights.Errorf(rights.EInvalid, "dataset name %q may not start with '.' or contain '..'", dataset)
	}
	return dataset + ".json", nil
}

type stagingSink struct {
	dir   string
	store string
	opts  StagingOptions

	// In an object store: objects under prefix, written with ctx.
	objects blobs.Store
	ctx     context.Context
	prefix  string

	mu       sync.Mutex
	started  map[string]bool
	finished []string // renamed into place, not yet synced
}

// Sync fsyncs every file finished through the sink, concurrently (the
// file system commits them together), then the store's directory once, so
// the renames are durable too. Until Sync returns, a crash of the machine
// may leave a staged name empty or torn; that is harmless because the task
// is not recorded yet: its rerun writes every file again, and the archive
// checks each file's hash anyway.
func (s *stagingSink) Sync() error {
	s.mu.Lock()
	files := s.finished
	s.finished = nil
	s.mu.Unlock()
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for i, name := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = syncFile(name)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("staging store %s: %w", s.store, err)
	}
	if len(files) == 0 {
		return nil
	}
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("staging store %s: %w", s.store, err)
	}
	return nil
}

func (s *stagingSink) addFinished(names ...string) {
	s.mu.Lock()
	s.finished = append(s.finished, names...)
	s.mu.Unlock()
}

func syncFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func (s *stagingSink) Dataset(name string, columns []string) (rights.RowWriter, error) {
	file, err := datasetFileName(name)
	if err != nil {
		return nil, err
	}
	// Rows are JSON objects keyed by column: a repeated name would silently
	// lose one of the values when the file is read. A set, not a scan of
	// the columns before each: a webhook's result may name many.
	seen := make(map[string]struct{}, len(columns))
	for _, col := range columns {
		if _, dup := seen[col]; dup {
			return nil, rights.Errorf(rights.EInvalid, "dataset %s has two columns named %q", name, col)
		}
		seen[col] = struct{}{}
	}
	s.mu.Lock()
	dup := s.started[name]
	s.started[name] = true
	s.mu.Unlock()
	if dup {
		return nil, rights.Errorf(rights.EConflict, "dataset %s was already started in store %s", name, s.store)
	}

	w := &datasetWriter{name: name, sink: s}
	if w.json, err = s.newOut(file); err != nil {
		return nil, fmt.Errorf("staging %s: %w", name, err)
	}
	if s.opts.CSV {
		if w.csv, err = s.newOut(strings.TrimSuffix(file, ".json") + ".csv"); err != nil {
			w.abort()
			return nil, fmt.Errorf("staging %s: %w", name, err)
		}
		if s.opts.BOM {
			if _, err := w.csv.buf.WriteString("\uFEFF"); err != nil {
				w.abort()
				return nil, fmt.Errorf("staging %s: %w", name, err)
			}
		}
		// CRLF line ends: what Excel and Notepad expect.
		var header []byte
		for i, col := range columns {
			if i > 0 {
				header = append(header, ',')
			}
			header = appendCSVField(header, []byte(col), false)
		}
		if _, err := w.csv.buf.Write(append(header, '\r', '\n')); err != nil {
			w.abort()
			return nil, fmt.Errorf("staging %s: %w", name, err)
		}
	}
	w.spans = make([][2]int, len(columns))
	// Keys are encoded once: every row repeats them.
	w.keys = make([][]byte, len(columns))
	for i, col := range columns {
		key, err := json.Marshal(col)
		if err != nil {
			w.abort()
			return nil, fmt.Errorf("staging %s: column %d: %w", name, i, err)
		}
		w.keys[i] = key
	}
	w.enc = json.NewEncoder(&w.scratch)
	// The files are read by people too: keep <, > and & as they are.
	w.enc.SetEscapeHTML(false)
	if _, err := w.json.buf.WriteString("["); err != nil {
		w.abort()
		return nil, fmt.Errorf("staging %s: %w", name, err)
	}
	return w, nil
}

// stagedOut is one staged file being written: content goes through a
// buffer, is hashed and deflated, and the deflated bytes are hashed and
// written to a temporary file that finish renames into place. Until then a
// reader (or a crashed run) never sees a half-written file.
//
// In an object store the deflated bytes go to the object's writer
// instead, which uploads them as they come (a part at a time) and makes
// them the object at finish.
type stagedOut struct {
	tmp     *os.File
	obj     blobs.Writer // instead of tmp, in an object store
	final   string       // where finish renames tmp to
	file    string       // the content's name, relative to the request's staging dir
	staged  string       // the deflated file's, likewise
	buf     *chunkPipe
	content hash.Hash // of the content
	counter byteCounter
	deflate *aeszip.Deflater
	fileBuf *bufio.Writer
	disk    hash.Hash  // of the deflated bytes
	done    chan error // the compressing goroutine's result
	closed  bool
}

func (s *stagingSink) newOut(file string) (*stagedOut, error) {
	if s.objects == nil {
		return newStagedOut(s.dir, s.store, file)
	}
	obj, err := s.objects.Create(s.ctx, s.prefix+file+".df")
	if err != nil {
		return nil, err
	}
	o := &stagedOut{obj: obj, file: path.Join(s.store, file), staged: path.Join(s.store, file+".df"),
		content: sha256.New(), disk: sha256.New(), done: make(chan error, 1)}
	o.fileBuf = bufio.NewWriterSize(io.MultiWriter(obj, o.disk), 64<<10)
	o.deflate = aeszip.NewDeflater(o.fileBuf)
	o.buf = newChunkPipe(io.MultiWriter(o.content, &o.counter, o.deflate), o.done)
	return o, nil
}

func newStagedOut(dir, store, file string) (*stagedOut, error) {
	tmp, err := os.CreateTemp(dir, "."+file+".*.tmp")
	if err != nil {
		return nil, err
	}
	o := &stagedOut{tmp: tmp, final: filepath.Join(dir, file+".df"), file: path.Join(store, file), staged: path.Join(store, file+".df"),
		content: sha256.New(), disk: sha256.New(), done: make(chan error, 1)}
	o.fileBuf = bufio.NewWriterSize(io.MultiWriter(tmp, o.disk), 64<<10)
	o.deflate = aeszip.NewDeflater(o.fileBuf)
	// Hashing and deflating run in a goroutine of their own, fed whole
	// buffers through a channel: the rows of a large export are formatted
	// on one core while they are compressed on another (and the JSON and
	// CSV files on a third), each row copied once, into the buffer.
	o.buf = newChunkPipe(io.MultiWriter(o.content, &o.counter, o.deflate), o.done)
	return o, nil
}

// chunkPipe is a buffered writer whose full buffers go to a goroutine that
// writes them to dst while the next fills: two buffers in flight, three in
// all.
type chunkPipe struct {
	full  chan []byte
	empty chan []byte
	fail  chan struct{} // closed when writing to dst failed
	cur   []byte
}

const chunkSize = 256 << 10

var errCompress = errors.New("staging: writing the staged file failed")

// chunkPool keeps chunkPipe buffers between staged files: a request stages
// two files per dataset, and allocating (and so zeroing) three fresh 256 KiB
// buffers for each was a seventh of a small copy request's CPU. Buffers are
// only ever appended to from length 0, so no byte of an earlier file is
// read again.
var chunkPool = sync.Pool{New: func() any { b := make([]byte, 0, chunkSize); return &b }}

func getChunk() []byte { return (*chunkPool.Get().(*[]byte))[:0] }

func putChunk(b []byte) {
	if cap(b) != chunkSize {
		return // grown by a huge row: let it go
	}
	b = b[:0]
	chunkPool.Put(&b)
}

func newChunkPipe(dst io.Writer, done chan error) *chunkPipe {
	c := &chunkPipe{full: make(chan []byte, 2), empty: make(chan []byte, 3), fail: make(chan struct{})}
	for range 3 {
		c.empty <- getChunk()
	}
	go func() {
		var err error
		for b := range c.full {
			if err == nil {
				if _, err = dst.Write(b); err != nil {
					close(c.fail)
				}
			}
			c.empty <- b[:0]
		}
		done <- err
	}()
	return c
}

// release returns the pipe's buffers to the pool. It is called once the
// consumer goroutine has ended (its result was received from done); any
// buffer the writer still holds is returned too.
func (c *chunkPipe) release() {
	if c.cur != nil {
		putChunk(c.cur)
		c.cur = nil
	}
	for {
		select {
		case b := <-c.empty:
			putChunk(b)
		default:
			return
		}
	}
}

func (c *chunkPipe) take() error {
	select {
	case c.cur = <-c.empty:
		return nil
	case <-c.fail:
		return errCompress
	}
}

// Write appends p to the buffer, handing the buffer on when p does not fit.
func (c *chunkPipe) Write(p []byte) (int, error) {
	if c.cur == nil {
		if err := c.take(); err != nil {
			return 0, err
		}
	}
	if len(c.cur) > 0 && len(c.cur)+len(p) > cap(c.cur) {
		if err := c.Flush(); err != nil {
			return 0, err
		}
		if err := c.take(); err != nil {
			return 0, err
		}
	}
	c.cur = append(c.cur, p...) // a row larger than a buffer grows it, once
	return len(p), nil
}

// WriteString is Write for a string.
func (c *chunkPipe) WriteString(s string) (int, error) { return c.Write([]byte(s)) }

// Flush hands on what is buffered.
func (c *chunkPipe) Flush() error {
	select {
	case <-c.fail:
		return errCompress
	default:
	}
	if len(c.cur) > 0 {
		c.full <- c.cur
		c.cur = nil
	}
	return nil
}

// Close ends the stream; the consumer's result arrives on done.
func (c *chunkPipe) Close() { close(c.full) }

// finish completes the file and renames it into place.
func (o *stagedOut) finish() error {
	if err := o.buf.Flush(); err != nil {
		return err
	}
	o.buf.Close()
	o.closed = true
	err := <-o.done
	o.buf.release()
	if err != nil {
		return err
	}
	if err := o.deflate.Close(); err != nil {
		return err
	}
	if err := o.fileBuf.Flush(); err != nil {
		return err
	}
	if o.obj != nil {
		// Durable once committed: the object store's own guarantee.
		return o.obj.Commit()
	}
	// Not synced here: the sink's Sync makes all of a store's files
	// durable at once, before the task is recorded.
	if err := o.tmp.Close(); err != nil {
		return err
	}
	return os.Rename(o.tmp.Name(), o.final)
}

func (o *stagedOut) stagedFile() rights.StagedFile {
	return rights.StagedFile{File: o.file, SHA256: hex.EncodeToString(o.content.Sum(nil)), Bytes: o.counter.n,
		Deflated: o.staged, DeflatedSHA256: hex.EncodeToString(o.disk.Sum(nil)), CRC32: o.deflate.CRC32()}
}

func (o *stagedOut) abort() {
	if !o.closed {
		o.closed = true
		o.buf.Close()
		<-o.done
		o.buf.release()
	}
	if o.obj != nil {
		o.obj.Abort()
		return
	}
	_ = o.tmp.Close()
	_ = os.Remove(o.tmp.Name())
}

// datasetWriter streams one dataset as a JSON array of objects, one row per
// line, to a temporary file that Close renames into place. Until then a
// reader (or a crashed run) never sees a half-written dataset.
type datasetWriter struct {
	name string
	sink *stagingSink
	json *stagedOut
	csv  *stagedOut // nil unless CSV is staged too

	keys    [][]byte
	enc     *json.Encoder
	scratch bytes.Buffer       // one value's JSON at a time
	line    []byte             // one row's JSON at a time
	record  []byte             // one row's CSV at a time
	spans   [][2]int           // where each value is in line, to write it as CSV
	kinds   []rights.ValueKind // of the columns, for rows written as text

	rows int64
	err  error // sticky: a writer that failed once stays failed
	done bool
}

// startRow checks a row can be written and starts its JSON line.
func (w *datasetWriter) startRow(n int) ([]byte, error) {
	if w.err != nil {
		return nil, w.err
	}
	if w.done {
		return nil, fmt.Errorf("staging %s: write after close", w.name)
	}
	if n != len(w.keys) {
		// Not sticky: the file is still consistent.
		return nil, fmt.Errorf("staging %s: row has %d values for %d columns", w.name, n, len(w.keys))
	}
	line := w.line[:0]
	if w.rows > 0 {
		line = append(line, ',')
	}
	return append(line, "\n{"...), nil
}

// endRow writes a row's JSON line and CSV record, and lets go of buffers a
// huge row (a large bytea, say) grew, so they are not pinned for the rest
// of the dataset.
func (w *datasetWriter) endRow(line, rec []byte) error {
	w.line = line
	if _, err := w.json.buf.Write(line); err != nil {
		w.err = fmt.Errorf("staging %s: %w", w.name, err)
		return w.err
	}
	if w.csv != nil {
		w.record = rec
		if _, err := w.csv.buf.Write(rec); err != nil {
			w.err = fmt.Errorf("staging %s: %w", w.name, err)
			return w.err
		}
	}
	if cap(w.line) > 1<<20 {
		w.line = nil
	}
	if cap(w.record) > 1<<20 {
		w.record = nil
	}
	if w.scratch.Cap() > 1<<20 {
		w.scratch = bytes.Buffer{}
	}
	w.rows++
	return nil
}

func (w *datasetWriter) WriteRow(values []any) error {
	line, err := w.startRow(len(values))
	if err != nil {
		return err
	}
	for i, v := range values {
		if i > 0 {
			line = append(line, ',')
		}
		line = append(line, w.keys[i]...)
		line = append(line, ':')
		start := len(line)
		line, err = w.appendValue(line, v)
		if err != nil {
			// The error names the column and Go type, never the value.
			return fmt.Errorf("staging %s: column %s: %w", w.name, w.keys[i], err)
		}
		w.spans[i] = [2]int{start, len(line)}
	}
	line = append(line, '}')
	var rec []byte
	if w.csv != nil {
		rec = w.record[:0]
		for i := range values {
			if i > 0 {
				rec = append(rec, ',')
			}
			rec = appendJSONAsCSV(rec, line[w.spans[i][0]:w.spans[i][1]])
		}
		rec = append(rec, '\r', '\n')
	}
	return w.endRow(line, rec)
}

func (w *datasetWriter) Close() (rights.DatasetReport, error) {
	if w.done {
		return rights.DatasetReport{}, fmt.Errorf("staging %s: already closed", w.name)
	}
	w.done = true
	if w.err != nil {
		w.abort()
		return rights.DatasetReport{}, w.err
	}
	if err := w.finish(); err != nil {
		w.abort()
		return rights.DatasetReport{}, fmt.Errorf("staging %s: %w", w.name, err)
	}
	if w.sink.objects == nil {
		w.sink.addFinished(w.json.final)
		if w.csv != nil {
			w.sink.addFinished(w.csv.final)
		}
	}
	js := w.json.stagedFile()
	report := rights.DatasetReport{Name: w.name, Rows: w.rows, File: js.File, SHA256: js.SHA256, Bytes: js.Bytes,
		Deflated: js.Deflated, DeflatedSHA256: js.DeflatedSHA256, CRC32: js.CRC32}
	if w.csv != nil {
		cs := w.csv.stagedFile()
		report.CSV = &cs
	}
	return report, nil
}

func (w *datasetWriter) finish() error {
	end := "\n]\n"
	if w.rows == 0 {
		end = "]\n"
	}
	if _, err := w.json.buf.WriteString(end); err != nil {
		return err
	}
	if err := w.json.finish(); err != nil {
		return err
	}
	if w.csv == nil {
		return nil
	}
	return w.csv.finish()
}

// abort throws the temporary files away.
func (w *datasetWriter) abort() {
	w.json.abort()
	if w.csv != nil {
		w.csv.abort()
	}
}

// appendValue appends v, as pgx's rows.Values returns it, as JSON.
func (w *datasetWriter) appendValue(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return w.appendJSON(dst, v)
	case bool:
		return strconv.AppendBool(dst, v), nil
	case int:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case int8:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case int16:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case int32:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(dst, v, 10), nil
	case uint:
		return strconv.AppendUint(dst, uint64(v), 10), nil
	case uint8:
		return strconv.AppendUint(dst, uint64(v), 10), nil
	case uint16:
		return strconv.AppendUint(dst, uint64(v), 10), nil
	case uint32:
		return strconv.AppendUint(dst, uint64(v), 10), nil
	case uint64:
		return strconv.AppendUint(dst, v, 10), nil
	case float32:
		return appendFloat(dst, float64(v), 32), nil
	case float64:
		return appendFloat(dst, v, 64), nil
	case time.Time:
		// Not time.Time's MarshalJSON: it fails outside years 0–9999, which
		// Postgres allows.
		return w.appendJSON(dst, v.Format(time.RFC3339Nano))
	case []byte:
		return w.appendJSON(dst, v) // base64
	case [16]byte:
		return w.appendJSON(dst, formatUUID(v))
	case net.HardwareAddr, net.IP, *net.IPNet, netip.Addr, netip.Prefix, netip.AddrPort:
		return w.appendJSON(dst, fmt.Sprint(v))
	case []any:
		// Elements of Postgres arrays come back as the same Go types as
		// columns do (a uuid[] holds [16]byte), so they get the same treatment.
		dst = append(dst, '[')
		for i, elem := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = w.appendValue(dst, elem); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys) // as encoding/json does: the same data, the same bytes
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = w.appendJSON(dst, k); err != nil {
				return dst, err
			}
			dst = append(dst, ':')
			if dst, err = w.appendValue(dst, v[k]); err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	case json.Marshaler:
		// pgtype.Numeric and friends: exact digits, and null when not Valid.
		return w.appendJSON(dst, v)
	case driver.Valuer:
		dv, err := v.Value()
		if err != nil {
			return dst, fmt.Errorf("%T: %w", v, err)
		}
		if _, again := dv.(driver.Valuer); again {
			return w.appendJSON(dst, fmt.Sprint(dv))
		}
		return w.appendValue(dst, dv)
	}
	if out, err := w.appendJSON(dst, v); err == nil {
		return out, nil
	}
	return w.appendJSON(dst, fmt.Sprint(v))
}

// appendJSON appends the JSON encoding of v, without escaping HTML
// characters and without the encoder's trailing newline.
func (w *datasetWriter) appendJSON(dst []byte, v any) ([]byte, error) {
	w.scratch.Reset()
	if err := w.enc.Encode(v); err != nil {
		// The encoder's message can quote the value; keep only the type.
		return dst, fmt.Errorf("cannot encode a %T as JSON", v)
	}
	return append(dst, bytes.TrimSuffix(w.scratch.Bytes(), []byte("\n"))...), nil
}

// appendFloat writes finite floats as JSON numbers and NaN and the
// infinities, which JSON has no numbers for, as the strings Postgres uses.
func appendFloat(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Infinity"`...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, bits)
}

func formatUUID(u [16]byte) string {
	var buf [36]byte
	hex.Encode(buf[0:8], u[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], u[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], u[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], u[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], u[10:])
	return string(buf[:])
}

type byteCounter struct{ n int64 }

func (c *byteCounter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}
