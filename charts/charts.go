// Package charts draws the dashboard's charts as SVG on the server: no
// script, no inline style (the console's Content-Security-Policy forbids
// style attributes), colours left to the page's stylesheet through CSS
// classes. Every chart is an image with a title and a description for
// screen readers, and shows every value as text, so that it reads without
// colour. The output is deterministic: the same chart gives the same bytes.
package charts

import (
	"fmt"
	"hash/fnv"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// Series is one kind of value a chart shows, e.g. the overdue requests.
type Series struct {
	// Name is what the legend and the value texts call it.
	Name string
	// Class is the CSS class of its bars (e.g. "band-overdue"): letters,
	// digits, '-' and '_' only; anything else is dropped.
	Class string
}

// Row is one labelled set of values, one per series (missing ones are 0;
// negative ones and NaN are drawn as 0).
type Row struct {
	Label  string
	Values []float64
}

// Common chart fields.
type Chart struct {
	// Title names the chart (<title>); Desc says what it shows (<desc>,
	// followed by every value in words).
	Title string
	Desc  string
	// ID prefixes the ids of the title and description, which must be
	// unique on a page; by default it is derived from Title.
	ID     string
	Series []Series
	Rows   []Row
	// Width of the drawing, in user units (the SVG scales to its box); 0
	// means 720.
	Width int
}

// Bars draws c as horizontal bars, one per row, each stacked from its
// series' values left to right, followed by the values as text ("Overdue
// 3 · Due soon 1", zeros left out, then the total).
func Bars(c Chart) template.HTML {
	const (
		labelW = 150.0
		textW  = 290.0
		rowH   = 26.0
		barH   = 16.0
		top    = 30.0 // room for the legend
	)
	width := float64(c.width())
	barW := max(width-labelW-textW, 60)
	height := top + rowH*float64(len(c.Rows)) + 8
	maxTotal := 0.0
	for _, r := range c.Rows {
		maxTotal = max(maxTotal, total(r, len(c.Series)))
	}
	var b builder
	c.open(&b, width, height, "chart chart-bars")
	c.legend(&b, 0)
	for i, r := range c.Rows {
		y := top + rowH*float64(i)
		b.f(`<g class="chart-row">`)
		b.f(`<text class="chart-label" x="%s" y="%s" text-anchor="end" dominant-baseline="middle" font-size="12">%s</text>`,
			num(labelW-8), num(y+rowH/2), esc(r.Label))
		x := labelW
		var parts []string
		for s, series := range c.Series {
			v := value(r, s)
			w := scale(v, maxTotal, barW)
			b.f(`<rect class="%s" x="%s" y="%s" width="%s" height="%s"><title>%s: %s %s</title></rect>`,
				barClass(series), num(x), num(y+(rowH-barH)/2), num(w), num(barH), esc(r.Label), esc(series.Name), num(v))
			x += w
			if v != 0 {
				parts = append(parts, series.Name+" "+num(v))
			}
		}
		text := strings.Join(parts, " · ")
		if len(c.Series) > 1 {
			if text != "" {
				text += " · "
			}
			text += "total " + num(total(r, len(c.Series)))
		} else if text == "" {
			text = "0"
		}
		b.f(`<text class="chart-value" x="%s" y="%s" dominant-baseline="middle" font-size="12">%s</text>`,
			num(labelW+barW+8), num(y+rowH/2), esc(text))
		b.f(`</g>`)
	}
	b.f(`</svg>`)
	return template.HTML(b.String())
}

// Columns draws c as groups of columns, one group per row (e.g. a week)
// and one column per series in the group (e.g. received, completed),
// with each value written above its column and the row's label below.
func Columns(c Chart) template.HTML {
	const (
		top    = 30.0 // legend
		plotH  = 160.0
		valueH = 16.0 // room for the values above the tallest column
		axisH  = 22.0
		left   = 8.0
	)
	width := float64(c.width())
	height := top + valueH + plotH + axisH
	groupW := (width - 2*left) / float64(max(len(c.Rows), 1))
	n := max(len(c.Series), 1)
	colW := min(groupW*0.8/float64(n), 40)
	maxValue := 0.0
	for _, r := range c.Rows {
		for s := range c.Series {
			maxValue = max(maxValue, value(r, s))
		}
	}
	base := top + valueH + plotH
	var b builder
	c.open(&b, width, height, "chart chart-columns")
	c.legend(&b, left)
	b.f(`<line class="chart-axis" x1="%s" y1="%s" x2="%s" y2="%s" stroke="currentColor" stroke-width="1"/>`,
		num(left), num(base), num(width-left), num(base))
	for i, r := range c.Rows {
		gx := left + groupW*float64(i) + (groupW-colW*float64(n))/2
		b.f(`<g class="chart-group">`)
		for s, series := range c.Series {
			v := value(r, s)
			h := scale(v, maxValue, plotH)
			x := gx + colW*float64(s)
			b.f(`<rect class="%s" x="%s" y="%s" width="%s" height="%s"><title>%s: %s %s</title></rect>`,
				barClass(series), num(x), num(base-h), num(colW-2), num(h), esc(r.Label), esc(series.Name), num(v))
			b.f(`<text class="chart-value" x="%s" y="%s" text-anchor="middle" font-size="10">%s</text>`,
				num(x+(colW-2)/2), num(base-h-4), num(v))
		}
		b.f(`<text class="chart-label" x="%s" y="%s" text-anchor="middle" font-size="11">%s</text>`,
			num(left+groupW*(float64(i)+0.5)), num(base+15), esc(r.Label))
		b.f(`</g>`)
	}
	b.f(`</svg>`)
	return template.HTML(b.String())
}

func (c Chart) width() int {
	if c.Width <= 0 {
		return 720
	}
	return c.Width
}

// open writes the <svg> element, its title and its description: the
// caller's, then every value in words.
func (c Chart) open(b *builder, width, height float64, class string) {
	id := c.ID
	if id == "" {
		h := fnv.New32a()
		h.Write([]byte(c.Title))
		id = fmt.Sprintf("chart-%08x", h.Sum32())
	}
	id = cleanClass(id)
	b.f(`<svg xmlns="http://www.w3.org/2000/svg" class="%s" role="img" viewBox="0 0 %s %s" width="%s" height="%s" aria-labelledby="%s-title %s-desc">`,
		class, num(width), num(height), num(width), num(height), id, id)
	b.f(`<title id="%s-title">%s</title>`, id, esc(c.Title))
	var words []string
	for _, r := range c.Rows {
		var parts []string
		for s, series := range c.Series {
			parts = append(parts, series.Name+" "+num(value(r, s)))
		}
		words = append(words, r.Label+": "+strings.Join(parts, ", "))
	}
	desc := strings.TrimSpace(c.Desc)
	if len(words) > 0 {
		if desc != "" {
			desc += " "
		}
		desc += strings.Join(words, "; ") + "."
	}
	b.f(`<desc id="%s-desc">%s</desc>`, id, esc(desc))
}

// legend writes a swatch and the name of each series in one line.
func (c Chart) legend(b *builder, x float64) {
	b.f(`<g class="chart-legend">`)
	for _, series := range c.Series {
		b.f(`<rect class="%s" x="%s" y="8" width="12" height="12"/>`, barClass(series), num(x))
		b.f(`<text x="%s" y="14" dominant-baseline="middle" font-size="12">%s</text>`, num(x+16), esc(series.Name))
		x += 16 + textWidth(series.Name) + 18
	}
	b.f(`</g>`)
}

func value(r Row, s int) float64 {
	if s >= len(r.Values) {
		return 0
	}
	v := r.Values[s]
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0
	}
	return v
}

func total(r Row, n int) float64 {
	t := 0.0
	for s := range n {
		t += value(r, s)
	}
	return t
}

func scale(v, top, length float64) float64 {
	if top <= 0 {
		return 0
	}
	return v / top * length
}

func barClass(s Series) string {
	if c := cleanClass(s.Class); c != "" {
		return "bar " + c
	}
	return "bar"
}

// cleanClass keeps the letters, digits, '-' and '_' of s.
func cleanClass(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return -1
	}, s)
}

// num writes a number with at most two decimals, no trailing zeros.
func num(v float64) string {
	s := strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
	if s == "-0" {
		return "0"
	}
	return s
}

// esc escapes text for an element's content or an attribute, in HTML and
// in XML alike, after replacing what XML cannot hold (invalid UTF-8,
// control characters) with U+FFFD.
func esc(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' && r != '\n' || r == 0xFFFE || r == 0xFFFF {
			return '\uFFFD'
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	return template.HTMLEscapeString(s)
}

type builder struct{ strings.Builder }

func (b *builder) f(format string, args ...any) { fmt.Fprintf(&b.Builder, format, args...) }

// textWidth estimates the width of s at 12px: wide (CJK) characters take
// a full em, others a little over half.
func textWidth(s string) float64 {
	w := 0.0
	for _, r := range s {
		if r >= 0x1100 {
			w += 12
		} else {
			w += 7
		}
	}
	return w
}
