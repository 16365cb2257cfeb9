package exporters_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/datarights/datarights/exporters"
	"github.com/datarights/datarights/rights"
)

// stage writes a small export to a fresh staging area: bank_core found the
// subject (users with a hostile value, empty cards), crm did not.
func stage(t *testing.T, typ rights.Type, locale string) exporters.ArchiveInput {
	t.Helper()
	staging := exporters.NewStaging(t.TempDir())
	sink, err := staging.Sink("req-7", "bank_core")
	if err != nil {
		t.Fatal(err)
	}
	users, err := sink.Dataset("public.users", []string{"id", "name", "bio", "deleted_at"})
	if err != nil {
		t.Fatal(err)
	}
	rows := [][]any{
		{int64(1), "张三", "<script>alert(1)</script>", nil},
		{int64(2), "Zhang & \"San\"", strings.Repeat("长", 5000), nil},
	}
	for _, row := range rows {
		if err := users.WriteRow(row); err != nil {
			t.Fatal(err)
		}
	}
	usersReport, err := users.Close()
	if err != nil {
		t.Fatal(err)
	}
	usersReport.Category = "profile"
	cards, err := sink.Dataset("cards", []string{"pan"})
	if err != nil {
		t.Fatal(err)
	}
	cardsReport, err := cards.Close()
	if err != nil {
		t.Fatal(err)
	}
	cardsReport.Category = "cards"

	return exporters.ArchiveInput{
		RequestID:   "req-7",
		Product:     "bank",
		ProductName: "某某银行",
		Type:        typ,
		Locale:      locale,
		ReceivedAt:  time.Date(2024, 5, 1, 1, 2, 3, 0, time.UTC),
		GeneratedAt: time.Date(2024, 5, 3, 4, 5, 6, 0, time.UTC),
		StagingDir:  staging.Dir("req-7"),
		Stores: []exporters.StorePart{
			{Store: "bank_core", Report: rights.StoreReport{Resolved: true, Datasets: []rights.DatasetReport{usersReport, cardsReport}}},
			{Store: "crm", Report: rights.StoreReport{Resolved: false}},
		},
	}
}

type archive struct {
	files    map[string][]byte
	names    []string
	manifest struct {
		RequestID   string                   `json:"request_id"`
		Product     string                   `json:"product"`
		Type        rights.Type              `json:"type"`
		GeneratedAt time.Time                `json:"generated_at"`
		TotalRows   int64                    `json:"total_rows"`
		Files       []exporters.ManifestFile `json:"files"`
	}
}

func openArchive(t *testing.T, path string) archive {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatalf("the archive does not open: %v", err)
	}
	defer zr.Close()
	a := archive{files: map[string][]byte{}}
	for _, f := range zr.File {
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		a.files[f.Name] = data
		a.names = append(a.names, f.Name)
	}
	if err := json.Unmarshal(a.files["manifest.json"], &a.manifest); err != nil {
		t.Fatalf("manifest.json: %v\n%s", err, a.files["manifest.json"])
	}
	return a
}

func TestBuildArchive(t *testing.T) {
	t.Parallel()
	in := stage(t, rights.TypeAccess, rights.LocaleZH)
	out := filepath.Join(t.TempDir(), "exports", "req-7.zip")
	result, err := exporters.BuildArchive(context.Background(), in, out)
	if err != nil {
		t.Fatal(err)
	}

	zipped, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(zipped)
	if result.Path != out || result.Bytes != int64(len(zipped)) || result.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("result %s, %d bytes, sha256 %s; file has %d bytes, sha256 %x", result.Path, result.Bytes, result.SHA256, len(zipped), sum)
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 1 {
		t.Errorf("the output dir holds %d entries, want only the archive", len(entries))
	}

	a := openArchive(t, out)
	wantNames := []string{"summary.html", "data/bank_core/public.users.json", "data/bank_core/cards.json", "manifest.json"}
	if strings.Join(a.names, " ") != strings.Join(wantNames, " ") {
		t.Errorf("archive holds %v, want %v", a.names, wantNames)
	}
	m := a.manifest
	if m.RequestID != "req-7" || m.Product != "bank" || m.Type != rights.TypeAccess || !m.GeneratedAt.Equal(in.GeneratedAt) || m.TotalRows != 2 {
		t.Errorf("manifest = %+v", m)
	}
	if len(m.Files) != 3 {
		t.Fatalf("manifest lists %d files, want 3: %+v", len(m.Files), m.Files)
	}
	for _, f := range m.Files {
		data, ok := a.files[f.Path]
		if !ok {
			t.Errorf("manifest lists %s, which is not in the archive", f.Path)
			continue
		}
		sum := sha256.Sum256(data)
		if f.SHA256 != hex.EncodeToString(sum[:]) || f.Bytes != int64(len(data)) {
			t.Errorf("%s: manifest says %s, %d bytes; content is %x, %d bytes", f.Path, f.SHA256, f.Bytes, sum, len(data))
		}
	}
	users := m.Files[1]
	if users.Store != "bank_core" || users.Dataset != "public.users" || users.Category != "profile" || users.Rows != 2 {
		t.Errorf("users entry = %+v", users)
	}
	if m.Files[0].Path != "summary.html" || m.Files[0].Rows != 0 {
		t.Errorf("first entry = %+v", m.Files[0])
	}
	if len(result.Files) != len(m.Files) {
		t.Errorf("result lists %d files, manifest %d", len(result.Files), len(m.Files))
	}
	staged, err := readStaged(in.StagingDir, "bank_core/public.users.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(staged, a.files["data/bank_core/public.users.json"]) {
		t.Error("the archived dataset differs from the staged one")
	}

	// Building again (a retried job) replaces the archive.
	if _, err := exporters.BuildArchive(context.Background(), in, out); err != nil {
		t.Fatalf("rebuilding: %v", err)
	}
}

func TestAccessReport(t *testing.T) {
	t.Parallel()
	in := stage(t, rights.TypeAccess, rights.LocaleZH)
	out := filepath.Join(t.TempDir(), "req-7.zip")
	if _, err := exporters.BuildArchive(context.Background(), in, out); err != nil {
		t.Fatal(err)
	}
	page := string(openArchive(t, out).files["summary.html"])
	checkHTML(t, page)

	for _, want := range []string{
		`<html lang="zh-CN">`,
		`<h1>您的个人信息 <span class="alt" lang="en">/ Your personal information</span></h1>`,
		`&lt;script&gt;alert(1)&lt;/script&gt;`,
		`<td>张三</td>`,
		`Zhang &amp; &#34;San&#34;`,
		`<td class="null">null</td>`,
		`<th>deleted_at</th>`,
		`<code>req-7</code>`,
		`某某银行 (bank)`,
		`2024-05-01 09:02:03 (UTC+8)`,
		`2024-05-03 12:05:06 (UTC+8)`,
		`<li><code>crm</code></li>`,
		`未能根据您提供的身份信息找到您`,
		`<td class="num">2</td>`,
		`无记录`,
		`部分过长的值在此处被截断`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the report lacks %s", want)
		}
	}
	if strings.Contains(page, "<script") {
		t.Error("the report holds an unescaped <script>")
	}
	if strings.Contains(page, strings.Repeat("长", 2001)) {
		t.Error("a long value was not shortened")
	}
	if strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Error("the report refers to an external resource")
	}
}

func TestReportLanguages(t *testing.T) {
	t.Parallel()
	cases := []struct {
		typ    rights.Type
		locale string
		want   []string
	}{
		{rights.TypeAccess, rights.LocaleEN, []string{`<html lang="en">`, `<h1>Your personal information <span class="alt" lang="zh-CN">/ 您的个人信息</span></h1>`}},
		{rights.TypeCopy, rights.LocaleZH, []string{`<html lang="zh-CN">`, `<h1>您的个人信息副本 <span class="alt" lang="en">/ A copy of your personal information</span></h1>`}},
		{rights.TypeCopy, rights.LocaleEN, []string{`<html lang="en">`, `<h1>A copy of your personal information <span`}},
		{rights.TypeCopy, "", []string{`<html lang="zh-CN">`}},
	}
	for _, c := range cases {
		in := stage(t, c.typ, c.locale)
		var buf bytes.Buffer
		if err := exporters.BuildReport(context.Background(), in, &buf); err != nil {
			t.Fatal(err)
		}
		checkHTML(t, buf.String())
		for _, want := range c.want {
			if !strings.Contains(buf.String(), want) {
				t.Errorf("%s report in %q lacks %s", c.typ, c.locale, want)
			}
		}
	}
}

func TestCopyReport(t *testing.T) {
	t.Parallel()
	in := stage(t, rights.TypeCopy, rights.LocaleEN)
	var buf bytes.Buffer
	if err := exporters.BuildReport(context.Background(), in, &buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	checkHTML(t, page)
	for _, want := range []string{
		`<code>data/bank_core/public.users.json</code>`,
		`<code>data/bank_core/cards.json</code>`,
		`<td>profile</td>`,
		`manifest.json`,
		`JSON array`,
		`<li><code>crm</code></li>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the copy report lacks %s", want)
		}
	}
	if strings.Contains(page, "张三") || strings.Contains(page, "alert(1)") {
		t.Error("the copy report shows row values; it should only describe the files")
	}
}

func TestEmptyExport(t *testing.T) {
	t.Parallel()
	for _, stores := range [][]exporters.StorePart{
		nil,
		{{Store: "crm", Report: rights.StoreReport{Resolved: false}}, {Store: "bank_core", Report: rights.StoreReport{Resolved: true}}},
	} {
		in := exporters.ArchiveInput{
			RequestID:  "req-empty",
			Product:    "bank",
			Type:       rights.TypeAccess,
			Locale:     rights.LocaleEN,
			ReceivedAt: time.Now(),
			StagingDir: filepath.Join(t.TempDir(), "nothing-staged"),
			Stores:     stores,
		}
		out := filepath.Join(t.TempDir(), "empty.zip")
		result, err := exporters.BuildArchive(context.Background(), in, out)
		if err != nil {
			t.Fatal(err)
		}
		a := openArchive(t, out)
		if len(a.names) != 2 || a.manifest.TotalRows != 0 || len(result.Files) != 1 {
			t.Errorf("empty archive holds %v, manifest %+v", a.names, a.manifest)
		}
		page := string(a.files["summary.html"])
		checkHTML(t, page)
		if !strings.Contains(page, "We found no personal information about you.") {
			t.Error("the empty report does not say no personal data was found")
		}
	}
}

func TestArchiveDetectsTamperedStaging(t *testing.T) {
	t.Parallel()
	for _, typ := range []rights.Type{rights.TypeAccess, rights.TypeCopy} {
		in := stage(t, typ, rights.LocaleZH)
		data, err := readStaged(in.StagingDir, "bank_core/public.users.json")
		if err != nil {
			t.Fatal(err)
		}
		// Same length, one name changed, deflated again: only the checksum
		// can tell.
		writeStaged(t, in.StagingDir, "bank_core/public.users.json", bytes.Replace(data, []byte("张三"), []byte("李四"), 1))
		dir := t.TempDir()
		out := filepath.Join(dir, "req-7.zip")
		_, err = exporters.BuildArchive(context.Background(), in, out)
		if err == nil || !strings.Contains(err.Error(), "checksum") {
			t.Fatalf("%s: tampered staging: error = %v, want a checksum mismatch", typ, err)
		}
		if strings.Contains(err.Error(), "李四") {
			t.Errorf("the error quotes personal data: %v", err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%s: a failed build left %d files behind", typ, len(entries))
		}
	}
}

func TestArchiveRefusesBadInput(t *testing.T) {
	t.Parallel()
	in := stage(t, rights.TypeDelete, rights.LocaleZH)
	if _, err := exporters.BuildArchive(context.Background(), in, filepath.Join(t.TempDir(), "x.zip")); rights.ErrorCode(err) != rights.EInvalid {
		t.Errorf("a delete request: error = %v", err)
	}

	in = stage(t, rights.TypeCopy, rights.LocaleZH)
	in.Stores[0].Report.Datasets[0].File = "../../etc/passwd"
	if err := exporters.BuildReport(context.Background(), in, io.Discard); rights.ErrorCode(err) != rights.EInvalid {
		t.Errorf("a file outside the staging dir: error = %v", err)
	}

	in = stage(t, rights.TypeAccess, rights.LocaleZH)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := exporters.BuildArchive(ctx, in, filepath.Join(t.TempDir(), "x.zip")); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled build: error = %v", err)
	}
}

var tagRE = regexp.MustCompile(`<(/?)([a-zA-Z][a-zA-Z0-9]*)[^>]*>`)

// checkHTML checks that the page is a whole document whose elements nest.
func checkHTML(t *testing.T, page string) {
	t.Helper()
	if !strings.HasPrefix(page, "<!DOCTYPE html>\n<html") || !strings.HasSuffix(page, "</html>\n") {
		t.Errorf("not a whole HTML document: %.60q ... %q", page, page[max(0, len(page)-20):])
	}
	void := map[string]bool{"meta": true, "br": true, "hr": true, "img": true, "link": true}
	var open []string
	for _, m := range tagRE.FindAllStringSubmatch(page, -1) {
		name := strings.ToLower(m[2])
		switch {
		case void[name]:
		case m[1] == "":
			open = append(open, name)
		case len(open) == 0 || open[len(open)-1] != name:
			t.Fatalf("</%s> closes %v", name, open)
		default:
			open = open[:len(open)-1]
		}
	}
	if len(open) != 0 {
		t.Errorf("unclosed elements %v", open)
	}
}
