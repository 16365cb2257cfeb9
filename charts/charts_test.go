package charts_test

import (
	"encoding/xml"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/datarights/datarights/charts"
)

// node is an SVG element, parsed back with encoding/xml.
type node struct {
	Name     string
	Attrs    map[string]string
	Text     string
	Children []*node
}

func parse(t *testing.T, svg string) *node {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(svg))
	var stack []*node
	var root *node
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not XML: %v\n%s", err, svg)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			n := &node{Name: tok.Name.Local, Attrs: map[string]string{}}
			for _, a := range tok.Attr {
				n.Attrs[a.Name.Local] = a.Value
			}
			if len(stack) > 0 {
				parent := stack[len(stack)-1]
				parent.Children = append(parent.Children, n)
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].Text += string(tok)
			}
		}
	}
	if root == nil || root.Name != "svg" {
		t.Fatalf("no <svg> root:\n%s", svg)
	}
	return root
}

func (n *node) all(match func(*node) bool) []*node {
	var out []*node
	var walk func(*node)
	walk = func(n *node) {
		if match(n) {
			out = append(out, n)
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(n)
	return out
}

func (n *node) child(name string) *node {
	for _, c := range n.Children {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func hasClass(n *node, class string) bool {
	for _, c := range strings.Fields(n.Attrs["class"]) {
		if c == class {
			return true
		}
	}
	return false
}

func attr(t *testing.T, n *node, name string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(n.Attrs[name], 64)
	if err != nil {
		t.Fatalf("<%s %s=%q>: %v", n.Name, name, n.Attrs[name], err)
	}
	return v
}

// checkAccessible checks what every chart must be: an image with a title
// and a description, its labels pointing at them, and no style attribute
// anywhere (the console's CSP forbids them).
func checkAccessible(t *testing.T, root *node, title string) {
	t.Helper()
	if root.Attrs["role"] != "img" {
		t.Errorf("role = %q", root.Attrs["role"])
	}
	ti, desc := root.child("title"), root.child("desc")
	if ti == nil || ti.Text != title || desc == nil {
		t.Fatalf("title %+v, desc %+v", ti, desc)
	}
	if want := ti.Attrs["id"] + " " + desc.Attrs["id"]; root.Attrs["aria-labelledby"] != want {
		t.Errorf("aria-labelledby = %q, want %q", root.Attrs["aria-labelledby"], want)
	}
	for _, n := range root.all(func(*node) bool { return true }) {
		for name := range n.Attrs {
			if name == "style" || strings.HasPrefix(name, "on") {
				t.Errorf("<%s> has %s=%q", n.Name, name, n.Attrs[name])
			}
		}
		if n.Name == "style" || n.Name == "script" || n.Name == "foreignObject" {
			t.Errorf("a <%s> element", n.Name)
		}
	}
}

var bands = []charts.Series{{Name: "overdue", Class: "band-overdue"}, {Name: "due soon", Class: "band-due_soon"},
	{Name: "on track", Class: "band-on_track"}}

func TestBarsStackSeriesAndWriteEveryValue(t *testing.T) {
	t.Parallel()
	chart := charts.Chart{
		Title: "Open requests by band", Desc: "Open requests of each product.", Series: bands,
		Rows: []charts.Row{{Label: "wechat", Values: []float64{0, 1, 1}}, {Label: "webank", Values: []float64{1, 1, 2}}},
	}
	svg := string(charts.Bars(chart))
	if again := string(charts.Bars(chart)); again != svg {
		t.Error("two renderings of one chart differ")
	}
	root := parse(t, svg)
	checkAccessible(t, root, "Open requests by band")
	if desc := root.child("desc").Text; desc != "Open requests of each product. wechat: overdue 0, due soon 1, on track 1; webank: overdue 1, due soon 1, on track 2." {
		t.Errorf("desc = %q", desc)
	}
	rows := root.all(func(n *node) bool { return hasClass(n, "chart-row") })
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	// webank's total (4) is the longest bar; wechat's (2) is half as long,
	// and each segment is its share.
	widths := map[string][]float64{}
	for i, row := range rows {
		label := []string{"wechat", "webank"}[i]
		bars := row.all(func(n *node) bool { return n.Name == "rect" && hasClass(n, "bar") })
		if len(bars) != 3 {
			t.Fatalf("%s: %d bars", label, len(bars))
		}
		x := attr(t, bars[0], "x")
		for s, bar := range bars {
			if !hasClass(bar, bands[s].Class) {
				t.Errorf("%s bar %d class %q", label, s, bar.Attrs["class"])
			}
			if got := attr(t, bar, "x"); got != x {
				t.Errorf("%s bar %d starts at %v, want %v (stacked)", label, s, got, x)
			}
			x += attr(t, bar, "width")
			widths[label] = append(widths[label], attr(t, bar, "width"))
		}
		texts := row.all(func(n *node) bool { return n.Name == "text" })
		if len(texts) != 2 || texts[0].Text != label {
			t.Fatalf("%s texts: %+v", label, texts)
		}
		want := map[string]string{"wechat": "due soon 1 · on track 1 · total 2", "webank": "overdue 1 · due soon 1 · on track 2 · total 4"}[label]
		if texts[1].Text != want {
			t.Errorf("%s value text %q, want %q", label, texts[1].Text, want)
		}
	}
	unit := widths["webank"][0]
	if unit <= 0 || widths["webank"][2] != 2*unit || widths["wechat"][0] != 0 || widths["wechat"][1] != unit || widths["wechat"][2] != unit {
		t.Errorf("widths %v", widths)
	}
	// The legend names every series with its class.
	legend := root.all(func(n *node) bool { return hasClass(n, "chart-legend") })[0]
	if sw := legend.all(func(n *node) bool { return n.Name == "rect" }); len(sw) != 3 || !hasClass(sw[2], "band-on_track") {
		t.Errorf("legend swatches %+v", sw)
	}
}

func TestColumnsGroupSeriesByRow(t *testing.T) {
	t.Parallel()
	chart := charts.Chart{
		Title:  "Received and completed per week",
		Series: []charts.Series{{Name: "received", Class: "flow-received"}, {Name: "completed", Class: "flow-completed"}},
		Rows: []charts.Row{{Label: "W09", Values: []float64{4, 0}}, {Label: "W10", Values: []float64{5, 2}},
			{Label: "W11", Values: []float64{1, 2.5}}},
	}
	svg := string(charts.Columns(chart))
	root := parse(t, svg)
	checkAccessible(t, root, "Received and completed per week")
	groups := root.all(func(n *node) bool { return hasClass(n, "chart-group") })
	if len(groups) != 3 {
		t.Fatalf("%d groups", len(groups))
	}
	var unit, base float64
	for i, g := range groups {
		cols := g.all(func(n *node) bool { return n.Name == "rect" && hasClass(n, "bar") })
		texts := g.all(func(n *node) bool { return n.Name == "text" })
		if len(cols) != 2 || len(texts) != 3 {
			t.Fatalf("group %d: %d columns, %d texts", i, len(cols), len(texts))
		}
		if texts[2].Text != chart.Rows[i].Label {
			t.Errorf("group %d label %q", i, texts[2].Text)
		}
		for s, col := range cols {
			v := chart.Rows[i].Values[s]
			if texts[s].Text != strconv.FormatFloat(v, 'f', -1, 64) {
				t.Errorf("group %d value text %q, want %v", i, texts[s].Text, v)
			}
			if !hasClass(col, chart.Series[s].Class) {
				t.Errorf("group %d column %d class %q", i, s, col.Attrs["class"])
			}
			h, y := attr(t, col, "height"), attr(t, col, "y")
			if i == 1 && s == 0 { // the tallest, 5
				unit, base = h/5, y+h
			}
			if base != 0 && (y+h != base) {
				t.Errorf("group %d column %d stands at %v, not on the axis %v", i, s, y+h, base)
			}
			_ = h
		}
	}
	for i, g := range groups {
		cols := g.all(func(n *node) bool { return n.Name == "rect" })
		for s, col := range cols {
			if got, want := attr(t, col, "height"), chart.Rows[i].Values[s]*unit; got < want-0.01 || got > want+0.01 {
				t.Errorf("group %d column %d height %v, want %v", i, s, got, want)
			}
		}
	}
}

func TestChartsEscapeHostileText(t *testing.T) {
	t.Parallel()
	hostile := `</text><script>alert(1)</script>" onload="x" & ]]> ` + "\x00\x01\xff"
	chart := charts.Chart{
		Title: hostile, Desc: hostile, ID: `x" onload="y`,
		Series: []charts.Series{{Name: hostile, Class: `a" style="fill:red`}},
		Rows:   []charts.Row{{Label: hostile, Values: []float64{1}}},
	}
	for name, svg := range map[string]string{"bars": string(charts.Bars(chart)), "columns": string(charts.Columns(chart))} {
		root := parse(t, svg)
		checkAccessible(t, root, strings.ToValidUTF8(strings.NewReplacer("\x00", "\uFFFD", "\x01", "\uFFFD").Replace(hostile), "\uFFFD"))
		if strings.Contains(svg, "<script") || strings.Contains(svg, `" onload`) {
			t.Errorf("%s: hostile text got through:\n%s", name, svg)
		}
		labels := root.all(func(n *node) bool { return hasClass(n, "chart-label") })
		if len(labels) != 1 || !strings.HasPrefix(labels[0].Text, "</text><script>") {
			t.Errorf("%s: the label does not read as its text: %+v", name, labels)
		}
		bars := root.all(func(n *node) bool { return n.Name == "rect" && hasClass(n, "bar") })
		for _, b := range bars {
			if b.Attrs["class"] != "bar astylefillred" {
				t.Errorf("%s: class %q", name, b.Attrs["class"])
			}
		}
	}
}

func TestChartsWithoutData(t *testing.T) {
	t.Parallel()
	chart := charts.Chart{Title: "Nothing", Series: bands, Rows: []charts.Row{{Label: "wechat"}}}
	for _, svg := range []string{string(charts.Bars(chart)), string(charts.Columns(chart)), string(charts.Bars(charts.Chart{Title: "empty"}))} {
		root := parse(t, svg)
		for _, r := range root.all(func(n *node) bool { return n.Name == "rect" }) {
			if w, ok := r.Attrs["width"]; ok && strings.Contains(w, "NaN") {
				t.Errorf("NaN in %s", svg)
			}
			if h, ok := r.Attrs["height"]; ok && strings.Contains(h, "NaN") {
				t.Errorf("NaN in %s", svg)
			}
		}
	}
}
