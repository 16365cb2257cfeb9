package exporters

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"time"
	"unicode/utf8"

	"github.com/datarights/datarights/rights"
)

// BuildReport writes the readable HTML report of an export to w: one
// self-contained page, in both languages, primary language first.
//
// For an access request the page shows every row of every dataset as a
// table, read from the staged files one row at a time (and checked against
// their checksums); for a copy request it gives an overview and explains the
// JSON files that hold the data.
func BuildReport(ctx context.Context, in ArchiveInput, w io.Writer) error {
	in, err := in.normalized()
	if err != nil {
		return err
	}
	page := newReportPage(in)
	bw := bufio.NewWriterSize(w, 32<<10)
	if err := reportTemplates.ExecuteTemplate(bw, "head", page); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if page.Access {
		for _, part := range in.Stores {
			if !part.Report.Resolved && len(part.Report.Datasets) == 0 {
				continue // listed among the stores that did not find the subject
			}
			if err := reportTemplates.ExecuteTemplate(bw, "store", storeView{L: page.L, Store: part.Store, Label: in.storeName(part.Store), Empty: len(part.Report.Datasets) == 0}); err != nil {
				return fmt.Errorf("writing the report: %w", err)
			}
			for _, ds := range part.Report.Datasets {
				if err := renderDataset(ctx, bw, in, page.L, part.Store, ds); err != nil {
					return err
				}
			}
		}
	}
	if err := reportTemplates.ExecuteTemplate(bw, "foot", page); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}

// maxCellRunes is where a cell's value is cut short in the report. The JSON
// file keeps it whole; a page with a megabyte of base64 in one cell helps
// nobody read it.
const maxCellRunes = 2000

type cell struct {
	Text string
	Null bool
	Cut  bool
}

type storeView struct {
	L     *labels
	Store string
	Label string // for people; Store when it has none
	Empty bool
}

type datasetView struct {
	L          *labels
	Store      string
	StoreLabel string
	Dataset    string
	Label      string // for people; Dataset when it has none
	Category   string
	Rows       int64
	File       string
}

// storeName is store's name for people.
func (in ArchiveInput) storeName(store string) string {
	if n := in.StoreNames[store]; n != "" {
		return n
	}
	return store
}

// datasetName is a dataset's name for people.
func (in ArchiveInput) datasetName(store, dataset string) string {
	if n := in.DatasetLabels[store+"/"+dataset]; n != "" {
		return n
	}
	return dataset
}

// location is the zone the report's times are shown in.
func (in ArchiveInput) location() *time.Location {
	if in.Location != nil {
		return in.Location
	}
	return chinaTime
}

// renderDataset streams one staged dataset into the report as a table.
func renderDataset(ctx context.Context, w io.Writer, in ArchiveInput, l *labels, store string, ds rights.DatasetReport) error {
	loc := in.location()
	view := datasetView{L: l, Store: store, StoreLabel: in.storeName(store), Dataset: ds.Name, Label: in.datasetName(store, ds.Name),
		Category: ds.Category, Rows: ds.Rows}
	if ds.File != "" {
		view.File = archiveDataPath(store, ds)
	}
	if err := reportTemplates.ExecuteTemplate(w, "dataset", view); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if ds.File == "" {
		return reportTemplates.ExecuteTemplate(w, "no_rows", view)
	}

	f, err := openStaged(in.opener(), store, ds)
	if err != nil {
		return err
	}
	defer f.Close()
	check := newStagedCheck(store, ds)
	dec := json.NewDecoder(io.TeeReader(ctxReader{ctx, bufio.NewReaderSize(f, 64<<10)}, check))
	bad := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// The decoder's message can quote the data; say only where.
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		} else {
			var syntax *json.SyntaxError
			if errors.As(err, &syntax) {
				err = fmt.Errorf("invalid JSON at byte %d", syntax.Offset)
			} else {
				err = errors.New("not a JSON array of objects")
			}
		}
		return fmt.Errorf("store %s: reading the staged file of dataset %s: %w", store, ds.Name, err)
	}

	if err := expectDelim(dec, '['); err != nil {
		return bad(err)
	}
	var (
		rows  int64
		cells []cell
		keys  []string
		cut   bool
	)
	for dec.More() {
		if err := expectDelim(dec, '{'); err != nil {
			return bad(err)
		}
		cells = cells[:0]
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return bad(err)
			}
			key, ok := tok.(string)
			if !ok {
				return bad(errors.New("object key is not a string"))
			}
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return bad(err)
			}
			c := displayCell(raw, loc)
			cut = cut || c.Cut
			cells = append(cells, c)
			if rows == 0 {
				keys = append(keys, key)
			}
		}
		if err := expectDelim(dec, '}'); err != nil {
			return bad(err)
		}
		if rows == 0 {
			if err := reportTemplates.ExecuteTemplate(w, "table", keys); err != nil {
				return fmt.Errorf("writing the report: %w", err)
			}
		}
		if err := reportTemplates.ExecuteTemplate(w, "row", cells); err != nil {
			return fmt.Errorf("writing the report: %w", err)
		}
		rows++
	}
	if err := expectDelim(dec, ']'); err != nil {
		return bad(err)
	}
	// Reading on to the end puts the whole file through the checksum.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return bad(errors.New("data after the array"))
	}
	if err := check.verify(); err != nil {
		return err
	}
	if rows != ds.Rows {
		return fmt.Errorf("store %s: the staged file of dataset %s holds %d rows, its report says %d", store, ds.Name, rows, ds.Rows)
	}
	name := "table_end"
	if rows == 0 {
		name = "no_rows"
	}
	if err := reportTemplates.ExecuteTemplate(w, name, struct {
		L   *labels
		Cut bool
	}{l, cut}); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != want {
		return fmt.Errorf("expected %v", want)
	}
	return nil
}

// displayCell turns a staged JSON value into what a person reads: strings
// as they are, except timestamps, shown in loc like the report's other
// times; anything else as compact JSON.
func displayCell(raw json.RawMessage, loc *time.Location) cell {
	var text string
	switch {
	case string(raw) == "null":
		return cell{Null: true}
	case len(raw) > 0 && raw[0] == '"':
		if err := json.Unmarshal(raw, &text); err != nil {
			text = string(raw)
		} else if len(text) >= 20 && len(text) <= 40 && text[10] == 'T' {
			if t, err := time.Parse(time.RFC3339Nano, text); err == nil {
				text = t.In(loc).Format("2006-01-02 15:04:05")
			}
		}
	default:
		text = string(raw)
	}
	if utf8.RuneCountInString(text) <= maxCellRunes {
		return cell{Text: text}
	}
	n := 0
	for i := range text {
		if n == maxCellRunes {
			return cell{Text: text[:i], Cut: true}
		}
		n++
	}
	return cell{Text: text}
}

// bi is a text in the page's primary language with its translation.
type bi struct {
	P, S  string
	SLang string // lang attribute of S
}

type labels struct {
	Title, RequestID, Product, RequestType, Type, Received, Generated, TotalRows,
	Overview, Store, Category, Dataset, Rows, File, NotFound, NoData, NoRows,
	Explain, TimeNote, CutNote, Footer bi
	CategoriesTitle, SourcesTitle bi
}

func newLabels(in ArchiveInput) *labels {
	zh := in.Locale != rights.LocaleEN
	pair := func(zhText, enText string) bi {
		if zh {
			return bi{P: zhText, S: enText, SLang: rights.LocaleEN}
		}
		return bi{P: enText, S: zhText, SLang: rights.LocaleZH}
	}
	l := &labels{
		RequestID:   pair("请求编号", "Request ID"),
		Product:     pair("产品", "Product"),
		RequestType: pair("请求类型", "Request type"),
		Received:    pair("收到请求时间", "Request received"),
		Generated:   pair("生成时间", "Generated"),
		TotalRows:   pair("记录总数", "Total records"),
		Overview:    pair("概览", "Overview"),
		Store:       pair("数据系统", "Data store"),
		Category:    pair("类别", "Category"),
		Dataset:     pair("数据集", "Dataset"),
		Rows:        pair("记录数", "Records"),
		File:        pair("文件", "File"),
		NotFound: pair(
			"在以下数据系统中，未能根据您提供的身份信息找到您，因此这些系统中没有找到与这些身份信息相关的数据：",
			"We could not find you in the following data stores under the identities you gave, so they hold no data found under those identities:"),
		NoData:          pair("我们没有找到关于您的个人信息。", "We found no personal information about you."),
		NoRows:          pair("无记录", "No records"),
		CategoriesTitle: pair("各类信息的含义", "What each category holds"),
		SourcesTitle:    pair("数据来源", "Where the data comes from"),
		TimeNote: pair(
			fmt.Sprintf("时间均为%s（%s）。", in.zoneNames()[0], utcOffset(in.location())),
			fmt.Sprintf("Times are %s (%s).", in.zoneNames()[1], utcOffset(in.location()))),
		CutNote: pair(
			"部分过长的值在此处被截断（以“…”标出），完整内容见对应的 JSON 文件。",
			"Some very long values are shortened here (marked “…”); the JSON file holds them in full."),
		Footer: pair(
			"如对本报告有疑问，请通过您提交请求的渠道联系我们。",
			"If you have questions about this report, contact us through the channel you used to make your request."),
	}
	switch in.Type {
	case rights.TypeAccess:
		l.Title = pair("您的个人信息", "Your personal information")
		l.Type = pair("查阅个人信息", "Access to personal information")
		l.Explain = pair(
			"以下是我们在各数据系统中保存的关于您的全部记录。随本报告提供的压缩包中，data 文件夹内的 JSON 文件包含同样的数据。",
			"Below are all the records we hold about you, by data store. The JSON files in the data folder of the archive that comes with this report hold the same data.")
	default:
		l.Title = pair("您的个人信息副本", "A copy of your personal information")
		l.Type = pair("复制个人信息", "Copy of personal information")
		l.Explain = pair(
			"您的个人信息位于压缩包的 data 文件夹中：每个数据系统一个子文件夹，每个数据集一个 JSON 文件（供程序读取）"+
				"以及同名的 CSV 文件（如已提供，可用 Excel 等电子表格打开）。"+
				"每个 JSON 文件是一个数组，每条记录是一个对象，键为字段名。文件采用 UTF-8 编码；时间为 RFC 3339 格式，二进制数据为 Base64 编码。"+
				"manifest.json 列出了每个文件的记录数和 SHA-256 校验值。",
			"Your personal information is in the data folder of the archive: one folder per data store, and per dataset a JSON file (for programs) "+
				"and, where provided, a CSV file of the same name (which Excel and other spreadsheets open). "+
				"Each JSON file is a JSON array with one object per record, keyed by field name. Files are UTF-8; times are in RFC 3339 format and binary values are Base64-encoded. "+
				"manifest.json lists every file with its record count and SHA-256 checksum.")
	}
	return l
}

// zoneNames names the report's zone (zh-CN, en).
func (in ArchiveInput) zoneNames() [2]string {
	if in.ZoneName[0] != "" && in.ZoneName[1] != "" {
		return in.ZoneName
	}
	if in.Location == nil || in.Location.String() == "Asia/Shanghai" {
		return [2]string{"北京时间", "China Standard Time"}
	}
	return [2]string{in.Location.String(), in.Location.String()}
}

// utcOffset is loc's offset now, e.g. "UTC+8", "UTC+5:30".
func utcOffset(loc *time.Location) string {
	_, off := time.Now().In(loc).Zone()
	sign := "+"
	if off < 0 {
		sign, off = "-", -off
	}
	if m := off % 3600 / 60; m != 0 {
		return fmt.Sprintf("UTC%s%d:%02d", sign, off/3600, m)
	}
	return fmt.Sprintf("UTC%s%d", sign, off/3600)
}

type reportPage struct {
	Offset    template.HTML // the report zone's, "UTC+8" (ours, and html/template would escape its +)
	L         *labels
	Lang      string
	Access    bool
	RequestID string
	Product   string
	Received  string
	Generated string
	TotalRows int64
	NotFound  []storeView
	Overview  []datasetView
	// Categories and Sources explain, in both languages, the categories
	// and stores the report names.
	Categories []described
	Sources    []described
}

// described is a name and what it means, in the page's two languages.
type described struct {
	Name string
	Text bi
}

func newReportPage(in ArchiveInput) reportPage {
	page := reportPage{
		L:         newLabels(in),
		Lang:      rights.LocaleZH,
		Access:    in.Type == rights.TypeAccess,
		RequestID: in.RequestID,
		Product:   in.Product,
		Received:  formatReportTime(in.ReceivedAt, in.location()),
		Generated: formatReportTime(in.GeneratedAt, in.location()),
		Offset:    template.HTML(template.HTMLEscapeString(utcOffset(in.location()))),
		TotalRows: in.totalRows(),
	}
	if in.Locale == rights.LocaleEN {
		page.Lang = rights.LocaleEN
	}
	if in.ProductName != "" && in.ProductName != in.Product {
		page.Product = in.ProductName + " (" + in.Product + ")"
	}
	pair := func(t [2]string) bi {
		if page.Lang == rights.LocaleEN {
			return bi{P: t[1], S: t[0], SLang: rights.LocaleZH}
		}
		return bi{P: t[0], S: t[1], SLang: rights.LocaleEN}
	}
	seenCategory := map[string]bool{}
	for _, part := range in.Stores {
		if d, ok := in.StoreDescriptions[part.Store]; ok && (part.Report.Resolved || len(part.Report.Datasets) > 0) {
			page.Sources = append(page.Sources, described{Name: in.storeName(part.Store), Text: pair(d)})
		}
		for _, ds := range part.Report.Datasets {
			if ds.Category == "" || seenCategory[ds.Category] {
				continue
			}
			seenCategory[ds.Category] = true
			d, ok := in.Categories[ds.Category]
			if !ok {
				d, ok = builtinCategories[ds.Category]
			}
			if ok {
				page.Categories = append(page.Categories, described{Name: ds.Category, Text: pair(d)})
			}
		}
	}
	for _, part := range in.Stores {
		if !part.Report.Resolved {
			page.NotFound = append(page.NotFound, storeView{Store: part.Store, Label: in.storeName(part.Store)})
		}
		for _, ds := range part.Report.Datasets {
			view := datasetView{Store: part.Store, StoreLabel: in.storeName(part.Store), Dataset: ds.Name,
				Label: in.datasetName(part.Store, ds.Name), Category: ds.Category, Rows: ds.Rows}
			if ds.File != "" {
				view.File = archiveDataPath(part.Store, ds)
			}
			page.Overview = append(page.Overview, view)
		}
	}
	return page
}

// chinaTime is Asia/Shanghai. China has kept UTC+8 without daylight saving
// since 1991, so the fixed zone is right even where no tz database is
// installed.
var chinaTime = func() *time.Location {
	if loc, err := time.LoadLocation("Asia/Shanghai"); err == nil {
		return loc
	}
	return time.FixedZone("CST", 8*60*60)
}()

func formatReportTime(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	return t.In(loc).Format("2006-01-02 15:04:05")
}

// The report is written in pieces, so that a dataset's rows can be streamed
// between them. Every piece starts and ends in HTML text context, which lets
// html/template escape each one on its own.
var reportTemplates = template.Must(template.New("report").Parse(`
{{- define "bi"}}{{.P}} <span class="alt" lang="{{.SLang}}">/ {{.S}}</span>{{end}}

{{- define "head" -}}
<!DOCTYPE html>
<html lang="{{.Lang}}">
<head>
<meta charset="utf-8">
{{/* The report is opened from disk, where no server sends a policy: this one
     lets it load and run nothing (its data is escaped, but a viewer must not
     depend on that), only show its own inline styles. */ -}}
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.L.Title.P}} / {{.L.Title.S}}</title>
<style>
body{font-family:-apple-system,"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",Helvetica,Arial,sans-serif;color:#1f2328;margin:2rem auto;max-width:72rem;padding:0 1rem;line-height:1.5}
h1{font-size:1.6rem;margin-bottom:.5rem}
h2{font-size:1.25rem;margin-top:2.5rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
h3{font-size:1.05rem;margin-top:1.8rem}
.alt{color:#656d76;font-weight:normal}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}
td{white-space:pre-wrap;word-break:break-word}
table.info th{width:14rem}
td.num{text-align:right}
td.null{color:#8c959f}
.scroll{overflow-x:auto}
.note{background:#fff8c5;border:1px solid #d4a72c;padding:.6rem .9rem;border-radius:6px}
.empty{color:#656d76;font-style:italic}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85rem}
footer{margin-top:3rem;color:#656d76;font-size:.85rem}
</style>
</head>
<body>
<h1>{{template "bi" .L.Title}}</h1>
<table class="info">
<tr><th>{{template "bi" .L.RequestID}}</th><td><code>{{.RequestID}}</code></td></tr>
<tr><th>{{template "bi" .L.Product}}</th><td>{{.Product}}</td></tr>
<tr><th>{{template "bi" .L.RequestType}}</th><td>{{template "bi" .L.Type}}</td></tr>
<tr><th>{{template "bi" .L.Received}}</th><td>{{with .Received}}{{.}} ({{$.Offset}}){{else}}—{{end}}</td></tr>
<tr><th>{{template "bi" .L.Generated}}</th><td>{{.Generated}} ({{.Offset}})</td></tr>
<tr><th>{{template "bi" .L.TotalRows}}</th><td>{{.TotalRows}}</td></tr>
</table>
<p class="alt">{{template "bi" .L.TimeNote}}</p>
{{- if eq .TotalRows 0}}
<p class="note">{{template "bi" .L.NoData}}</p>
{{- end}}
{{- if .NotFound}}
<div class="note">
<p>{{.L.NotFound.P}}</p>
<p class="alt" lang="{{.L.NotFound.SLang}}">{{.L.NotFound.S}}</p>
<ul>{{range .NotFound}}<li>{{if ne .Label .Store}}{{.Label}} {{end}}<code>{{.Store}}</code></li>{{end}}</ul>
</div>
{{- end}}
{{- if .Overview}}
<h2>{{template "bi" .L.Overview}}</h2>
<p>{{.L.Explain.P}}</p>
<p class="alt" lang="{{.L.Explain.SLang}}">{{.L.Explain.S}}</p>
<div class="scroll"><table>
<tr><th>{{template "bi" .L.Store}}</th><th>{{template "bi" .L.Category}}</th><th>{{template "bi" .L.Dataset}}</th><th>{{template "bi" .L.Rows}}</th><th>{{template "bi" .L.File}}</th></tr>
{{- range .Overview}}
<tr><td>{{if ne .StoreLabel .Store}}{{.StoreLabel}} {{end}}<code>{{.Store}}</code></td><td>{{.Category}}</td><td>{{if ne .Label .Dataset}}{{.Label}} {{end}}<code>{{.Dataset}}</code></td><td class="num">{{.Rows}}</td><td>{{if .File}}<code>{{.File}}</code>{{else}}—{{end}}</td></tr>
{{- end}}
</table></div>
{{- end}}
{{- if .Categories}}
<h2>{{template "bi" .L.CategoriesTitle}}</h2>
<dl>{{range .Categories}}<dt>{{.Name}}</dt><dd>{{.Text.P}} <span class="alt" lang="{{.Text.SLang}}">{{.Text.S}}</span></dd>{{end}}</dl>
{{- end}}
{{- if .Sources}}
<h2>{{template "bi" .L.SourcesTitle}}</h2>
<dl>{{range .Sources}}<dt><code>{{.Name}}</code></dt><dd>{{.Text.P}} <span class="alt" lang="{{.Text.SLang}}">{{.Text.S}}</span></dd>{{end}}</dl>
{{- end}}
{{end}}

{{- define "store"}}
<h2>{{template "bi" .L.Store}}: {{if ne .Label .Store}}{{.Label}} {{end}}<code>{{.Store}}</code></h2>
{{- if .Empty}}
<p class="empty">{{template "bi" .L.NoRows}}</p>
{{- end}}
{{end}}

{{- define "dataset"}}
<h3>{{if ne .Label .Dataset}}{{.Label}} {{end}}<code>{{.Dataset}}</code>{{if .Category}} · {{.Category}}{{end}}</h3>
<p>{{template "bi" .L.Rows}}: {{.Rows}}</p>
{{end}}

{{- define "table" -}}
<div class="scroll"><table>
<tr>{{range .}}<th>{{.}}</th>{{end}}</tr>
{{end}}

{{- define "row" -}}
<tr>{{range .}}<td{{if .Null}} class="null"{{end}}>{{if .Null}}null{{else}}{{.Text}}{{if .Cut}}…{{end}}{{end}}</td>{{end}}</tr>
{{end}}

{{- define "table_end" -}}
</table></div>
{{- if .Cut}}
<p class="alt">{{template "bi" .L.CutNote}}</p>
{{- end}}
{{end}}

{{- define "no_rows" -}}
<p class="empty">{{template "bi" .L.NoRows}}</p>
{{end}}

{{- define "foot" -}}
<footer><p>{{.L.Footer.P}}</p><p lang="{{.L.Footer.SLang}}">{{.L.Footer.S}}</p></footer>
</body>
</html>
{{end}}
`))

// builtinCategories explain the categories stores commonly use (zh-CN, en);
// exports.categories adds to and replaces them.
var builtinCategories = map[string][2]string{
	"profile":         {"您的基本资料，如姓名、联系方式、证件信息和所在城市。", "Your basic details, such as name, contact details, identity document and city."},
	"cards":           {"您名下的银行卡及其状态（卡号已部分隐藏）。", "The bank cards in your name and their status (card numbers partly masked)."},
	"transactions":    {"您的交易记录：时间、金额、币种和商户。", "Your transactions: when, how much, in which currency and with which merchant."},
	"consents":        {"您对各项用途的同意或拒绝，以及更新时间。", "What you agreed or declined to let us use your information for, and when."},
	"loans":           {"您的贷款记录：金额、状态、开立和结清时间。", "Your loans: amount, status, when opened and when settled."},
	"sessions":        {"您登录的设备和会话信息。", "The devices and sessions you signed in with."},
	"documents":       {"您上传或我们为您保存的文件（如证件影像）。", "Files you uploaded or we keep for you (such as scans of documents)."},
	"loyalty":         {"您的积分及其来由。", "Your loyalty points and what they were for."},
	"recommendations": {"根据您的使用情况为您生成的推荐。", "Recommendations made for you from how you use our services."},
	"activity":        {"您使用我们服务的记录，如登录。", "Records of your use of our services, such as sign-ins."},
	"identity":        {"核验您身份所用的信息。", "Information used to verify who you are."},
}
