package config

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/datarights/datarights/rights"
)

// Error lists every problem found in one configuration file, each with the
// file, the line (when the field is in the file) and the field.
type Error struct {
	Path     string
	Problems rights.Problems
	root     *yaml.Node
	// lines[i], when there and not 0, is the line of Problems[i] as the
	// decoder saw it (a syntax error, a key, a value of the wrong type);
	// the others are looked up by field in root.
	lines []int
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid configuration in %s:", e.Path)
	for i, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(e.Path)
		line := 0
		if i < len(e.lines) {
			line = e.lines[i]
		}
		if line == 0 {
			line = lineOf(e.root, p.Field)
		}
		if line > 0 {
			fmt.Fprintf(&b, ":%d", line)
		}
		if p.Field != "" { // a syntax error has a line but no field
			fmt.Fprintf(&b, ": %s", p.Field)
		}
		fmt.Fprintf(&b, ": %s", p.Reason)
	}
	return b.String()
}

// lineOf finds the line of a field path like "stores[0].tables[1].column",
// or of its nearest ancestor present in the file; 0 if none is.
func lineOf(root *yaml.Node, path string) int {
	if root == nil || len(root.Content) == 0 {
		return 0
	}
	node, line := root.Content[0], 0
	for _, step := range strings.Split(path, ".") {
		key, index := step, -1
		if i := strings.IndexByte(step, '['); i >= 0 && strings.HasSuffix(step, "]") {
			key = step[:i]
			index, _ = strconv.Atoi(step[i+1 : len(step)-1])
		}
		next := mappingValue(node, key)
		if next == nil {
			return line
		}
		node, line = next, next.Line
		if index >= 0 {
			if node.Kind != yaml.SequenceNode || index >= len(node.Content) {
				return line
			}
			node, line = node.Content[index], node.Content[index].Line
		}
	}
	return line
}

func mappingValue(node *yaml.Node, key string) *yaml.Node {
	if node.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		if node.Content[i].Value == key {
			return node.Content[i+1]
		}
	}
	return nil
}
