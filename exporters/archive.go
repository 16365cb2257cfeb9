package exporters

import (
	"bufio"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/datarights/datarights/exporters/aeszip"
	"github.com/datarights/datarights/rights"
)

// ArchiveInput is everything an export archive (and its report) is built
// from.
type ArchiveInput struct {
	RequestID   string
	Product     string
	ProductName string
	Type        rights.Type // access or copy
	// Locale chooses the primary language of the report (rights.LocaleZH or
	// rights.LocaleEN); the other language is shown next to it.
	Locale      string
	ReceivedAt  time.Time
	GeneratedAt time.Time // zero means now
	StagingDir  string    // Staging.Dir(RequestID), when Staged is nil
	// Staged opens the staged files (Staging.Opener); nil opens them in
	// StagingDir.
	Staged StagedOpener
	Stores []StorePart
	// Password encrypts every entry of the archive (WinZip AES-256); empty
	// builds a plain zip.
	Password string
	// Categories (over the built-in ones) and StoreDescriptions explain,
	// in zh-CN and en, what a category holds and where a store's data comes
	// from, in the report.
	Categories        map[string][2]string
	StoreDescriptions map[string][2]string
	// StoreNames and DatasetLabels (by "<store>/<dataset>") name stores
	// and datasets for people, in the report's language; the names show
	// where none is given.
	StoreNames    map[string]string
	DatasetLabels map[string]string
	// Location is the product's time zone: the report's times, and the
	// timestamps in its tables, are shown in it (the data files keep RFC
	// 3339). Nil is China Standard Time. ZoneName names it (zh-CN, en).
	Location *time.Location
	ZoneName [2]string
}

// StorePart is one store's export. Report.Datasets[i].File is relative to
// ArchiveInput.StagingDir.
type StorePart struct {
	Store  string
	Report rights.StoreReport
}

// ArchiveResult describes a built archive.
type ArchiveResult struct {
	Path   string
	Bytes  int64
	SHA256 string
	Files  []ManifestFile // as listed in the archive's manifest.json
}

// ManifestFile is one file inside the archive.
type ManifestFile struct {
	Path     string `json:"path"`
	Store    string `json:"store,omitempty"`
	Dataset  string `json:"dataset,omitempty"`
	Category string `json:"category,omitempty"`
	Format   string `json:"format,omitempty"` // json or csv
	Rows     int64  `json:"rows"`
	Bytes    int64  `json:"bytes"`
	SHA256   string `json:"sha256"`
}

type manifest struct {
	RequestID   string         `json:"request_id"`
	Product     string         `json:"product"`
	Type        rights.Type    `json:"type"`
	ReceivedAt  time.Time      `json:"received_at"`
	GeneratedAt time.Time      `json:"generated_at"`
	TotalRows   int64          `json:"total_rows"`
	Files       []ManifestFile `json:"files"`
}

const (
	reportName   = "summary.html"
	manifestName = "manifest.json"
)

// BuildArchive writes the zip the requester receives to outPath:
// summary.html (the report), data/<store>/<dataset>.json for every staged
// dataset, and manifest.json listing them all with row counts and SHA-256.
//
// Every staged file is checked against the checksum its dataset report
// recorded, so a file that changed after it was staged fails the build rather
// than reaching the requester. The archive appears at outPath only when
// complete; building it again replaces it. It is not fsynced: a
// [Destination]'s Put makes it durable.
func BuildArchive(ctx context.Context, in ArchiveInput, outPath string) (result ArchiveResult, err error) {
	in, err = in.normalized()
	if err != nil {
		return ArchiveResult{}, err
	}
	dir := filepath.Dir(outPath)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return ArchiveResult{}, fmt.Errorf("archive of request %s: %w", in.RequestID, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(outPath)+".*.tmp")
	if err != nil {
		return ArchiveResult{}, fmt.Errorf("archive of request %s: %w", in.RequestID, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()

	// Written to the file directly (aeszip patches each local header in
	// place, which every unzip tool accepts); the archive's hash is taken
	// once it is complete.
	zw := aeszip.NewWriter(tmp, in.Password)
	files, err := writeArchive(ctx, zw, in)
	if err != nil {
		return ArchiveResult{}, fmt.Errorf("archive of request %s: %w", in.RequestID, err)
	}
	if err := zw.Close(); err != nil {
		return ArchiveResult{}, fmt.Errorf("archive of request %s: %w", in.RequestID, err)
	}
	sum := sha256.New()
	var size byteCounter
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return ArchiveResult{}, fmt.Errorf("archive of request %s: %w", in.RequestID, err)
	}
	if _, err := io.Copy(io.MultiWriter(sum, &size), ctxReader{ctx, tmp}); err != nil {
		return ArchiveResult{}, fmt.Errorf("archive of request %s: %w", in.RequestID, err)
	}
	// Neither the file nor its name is synced: until a destination takes
	// it (LocalDestination.Put syncs both; S3 has its own copy once the
	// upload returns) nothing records it, and a rerun builds it again.
	if err := tmp.Close(); err != nil {
		return ArchiveResult{}, fmt.Errorf("archive of request %s: %w", in.RequestID, err)
	}
	if err := os.Rename(tmp.Name(), outPath); err != nil {
		return ArchiveResult{}, fmt.Errorf("archive of request %s: %w", in.RequestID, err)
	}
	return ArchiveResult{
		Path:   outPath,
		Bytes:  size.n,
		SHA256: hex.EncodeToString(sum.Sum(nil)),
		Files:  files,
	}, nil
}

func writeArchive(ctx context.Context, zw *aeszip.Writer, in ArchiveInput) ([]ManifestFile, error) {
	var files []ManifestFile
	create := func(name string) (io.Writer, error) {
		w, err := zw.Create(name, in.GeneratedAt)
		if err != nil {
			return nil, fmt.Errorf("adding %s: %w", name, err)
		}
		return w, nil
	}

	// The report comes first: it is what a person opening the archive
	// should read first.
	w, err := create(reportName)
	if err != nil {
		return nil, err
	}
	sum := sha256.New()
	var size byteCounter
	if err := BuildReport(ctx, in, io.MultiWriter(w, sum, &size)); err != nil {
		return nil, err
	}
	files = append(files, ManifestFile{Path: reportName, Bytes: size.n, SHA256: hex.EncodeToString(sum.Sum(nil))})

	seen := map[string]bool{}
	for _, part := range in.Stores {
		for _, ds := range part.Report.Datasets {
			if ds.File == "" {
				continue // nothing was staged; normalized checked it has no rows
			}
			staged := []rights.StagedFile{{File: ds.File, SHA256: ds.SHA256, Bytes: ds.Bytes, Deflated: ds.Deflated,
				DeflatedSHA256: ds.DeflatedSHA256, CRC32: ds.CRC32}}
			if ds.CSV != nil {
				staged = append(staged, *ds.CSV)
			}
			for _, sf := range staged {
				name := path.Join("data", part.Store, path.Base(sf.File))
				if seen[name] {
					return nil, fmt.Errorf("store %s: two datasets are staged as %s", part.Store, name)
				}
				seen[name] = true
				n, err := addStaged(ctx, zw, name, in.GeneratedAt, in.opener(), part.Store, ds.Name, sf)
				if err != nil {
					return nil, err
				}
				files = append(files, ManifestFile{
					Path:     name,
					Store:    part.Store,
					Dataset:  ds.Name,
					Category: ds.Category,
					Format:   strings.TrimPrefix(path.Ext(name), "."),
					Rows:     ds.Rows,
					Bytes:    n,
					SHA256:   sf.SHA256,
				})
			}
		}
	}

	w, err = create(manifestName)
	if err != nil {
		return nil, err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	err = enc.Encode(manifest{
		RequestID:   in.RequestID,
		Product:     in.Product,
		Type:        in.Type,
		ReceivedAt:  in.ReceivedAt,
		GeneratedAt: in.GeneratedAt,
		TotalRows:   in.totalRows(),
		Files:       files,
	})
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", manifestName, err)
	}
	return files, nil
}

// addStaged adds one staged file to the archive as name and returns its
// content's size. A deflated staging file is copied as it is (encrypted,
// not compressed again), checked against the hash recorded when it was
// written; a plain one is compressed and checked against its content hash.
// A file that changed after it was staged fails the build rather than
// reaching the requester.
func addStaged(ctx context.Context, zw *aeszip.Writer, name string, modified time.Time, open StagedOpener, store, dataset string, sf rights.StagedFile) (int64, error) {
	if sf.Deflated == "" {
		f, err := open(sf.File)
		if err != nil {
			return 0, fmt.Errorf("store %s: opening the staged file of dataset %s: %w", store, dataset, err)
		}
		defer f.Close()
		w, err := zw.Create(name, modified)
		if err != nil {
			return 0, fmt.Errorf("adding %s: %w", name, err)
		}
		check := &stagedCheck{store: store, dataset: dataset, want: sf.SHA256, size: sf.Bytes, hash: sha256.New()}
		if _, err := io.Copy(w, io.TeeReader(ctxReader{ctx, f}, check)); err != nil {
			return 0, fmt.Errorf("store %s: copying dataset %s: %w", store, dataset, err)
		}
		return check.n, check.verify()
	}
	f, err := open(sf.Deflated)
	if err != nil {
		return 0, fmt.Errorf("store %s: opening the staged file of dataset %s: %w", store, dataset, err)
	}
	defer f.Close()
	check := &stagedCheck{store: store, dataset: dataset, want: sf.DeflatedSHA256, hash: sha256.New()}
	if err := zw.AddDeflated(name, modified, io.TeeReader(ctxReader{ctx, f}, check), sf.CRC32, sf.Bytes); err != nil {
		return 0, fmt.Errorf("store %s: copying dataset %s: %w", store, dataset, err)
	}
	return sf.Bytes, check.verify()
}

// StagedOpener opens a request's staged file by the name its dataset
// report gives it ("<store>/<file>"), refusing names outside the
// request's staging area.
type StagedOpener func(name string) (io.ReadCloser, error)

// DirOpener opens staged files in a local staging directory.
// os.OpenInRoot keeps a report naming "../x" or a symbolic link from
// reading outside it.
func DirOpener(stagingDir string) StagedOpener {
	return func(name string) (io.ReadCloser, error) {
		return os.OpenInRoot(stagingDir, filepath.FromSlash(name))
	}
}

func (in ArchiveInput) opener() StagedOpener {
	if in.Staged != nil {
		return in.Staged
	}
	return DirOpener(in.StagingDir)
}

// OpenStaged opens a dataset's staged JSON, inflating it when it was staged
// deflated.
func OpenStaged(stagingDir, store string, ds rights.DatasetReport) (io.ReadCloser, error) {
	return openStaged(DirOpener(stagingDir), store, ds)
}

func openStaged(open StagedOpener, store string, ds rights.DatasetReport) (io.ReadCloser, error) {
	name := ds.File
	if ds.Deflated != "" {
		name = ds.Deflated
	}
	f, err := open(name)
	if err != nil {
		return nil, fmt.Errorf("store %s: opening the staged file of dataset %s: %w", store, ds.Name, err)
	}
	if ds.Deflated == "" {
		return f, nil
	}
	return inflated{flate.NewReader(bufio.NewReaderSize(f, 64<<10)), f}, nil
}

type inflated struct {
	io.ReadCloser
	file io.Closer
}

func (i inflated) Close() error {
	i.ReadCloser.Close()
	return i.file.Close()
}

// stagedCheck hashes a staged file as it is read.
type stagedCheck struct {
	store, dataset string
	want           string // hex SHA-256
	size           int64  // expected bytes, 0 for unknown
	hash           hash.Hash
	n              int64
}

func newStagedCheck(store string, ds rights.DatasetReport) *stagedCheck {
	return &stagedCheck{store: store, dataset: ds.Name, want: ds.SHA256, size: ds.Bytes, hash: sha256.New()}
}

func (c *stagedCheck) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.hash.Write(p)
}

// verify reports whether what was read is what was staged.
func (c *stagedCheck) verify() error {
	if hex.EncodeToString(c.hash.Sum(nil)) != c.want || (c.size != 0 && c.n != c.size) {
		return fmt.Errorf("store %s: the staged file of dataset %s does not match the checksum recorded when it was written", c.store, c.dataset)
	}
	return nil
}

// archiveDataPath is where a dataset's file goes inside the archive.
func archiveDataPath(store string, ds rights.DatasetReport) string {
	return path.Join("data", store, path.Base(ds.File))
}

// normalized checks the input and fills in defaults.
func (in ArchiveInput) normalized() (ArchiveInput, error) {
	var problems rights.Problems
	if in.RequestID == "" {
		problems.Add("request_id", "is required")
	}
	if !in.Type.Exports() {
		problems.Add("type", "must be %q or %q, not %q", rights.TypeAccess, rights.TypeCopy, in.Type)
	}
	for i, part := range in.Stores {
		if err := checkPathElem("store name", part.Store); err != nil {
			problems.Add(fmt.Sprintf("stores[%d].store", i), "%q cannot be used as a folder name", part.Store)
			continue
		}
		for j, ds := range part.Report.Datasets {
			field := fmt.Sprintf("stores[%d].datasets[%d]", i, j)
			switch {
			case ds.File == "" && ds.Rows != 0:
				problems.Add(field, "dataset %s has %d rows but no staged file", ds.Name, ds.Rows)
			case ds.File != "" && !filepath.IsLocal(filepath.FromSlash(ds.File)):
				problems.Add(field, "dataset %s names a file outside the staging dir", ds.Name)
			case ds.File != "" && ds.SHA256 == "":
				problems.Add(field, "dataset %s has no checksum", ds.Name)
			}
		}
	}
	if err := problems.Err(); err != nil {
		return in, err
	}
	if in.GeneratedAt.IsZero() {
		in.GeneratedAt = time.Now()
	}
	return in, nil
}

func (in ArchiveInput) totalRows() int64 {
	var n int64
	for _, part := range in.Stores {
		n += part.Report.Rows()
	}
	return n
}

// ctxReader stops a long copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
