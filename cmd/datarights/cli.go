package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// helpRequest is what a command returns when it was asked for -h or
// --help, before it has read a configuration, opened a database or
// listened: run prints the text to stdout and succeeds. Returning it
// (rather than printing where the flags are parsed) is what keeps every
// command from carrying on after its help, as `dev --help` once did.
type helpRequest string

func (helpRequest) Error() string { return "help requested" }

// commandUsageError is a mistake on one command's line: it prints that
// command's usage rather than the list of commands, and still exits 2,
// since it unwraps to a usageError.
type commandUsageError struct {
	msg   usageError
	usage string
}

func (e commandUsageError) Error() string {
	return string(e.msg) + "\n\n" + strings.TrimRight(e.usage, "\n")
}
func (e commandUsageError) Unwrap() error { return e.msg }

// isHelp says whether a word where a verb or a name is expected asks for
// help instead: `token add -h` must not create a token named "-h".
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "--h":
		return true
	}
	return false
}

// command is one command's flags, synopsis and description.
type command struct {
	fs       *flag.FlagSet
	synopsis string // the usage line(s), starting "datarights …"
	about    string // what it does; may be empty
	trailer  string // said after the flags; may be empty
}

func newCommand(name, synopsis, about string) *command {
	fs := flag.NewFlagSet("datarights "+name, flag.ContinueOnError)
	// flag prints its own error and the defaults on a mistake, to stderr
	// even for -h; we say both ourselves: help on stdout, a mistake once,
	// in the error.
	fs.SetOutput(io.Discard)
	return &command{fs: fs, synopsis: synopsis, about: about}
}

// help is the text -h prints.
func (c *command) help() string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s\n", c.synopsis)
	if c.about != "" {
		fmt.Fprintf(&b, "\n%s\n", strings.TrimRight(c.about, "\n"))
	}
	hasFlags := false
	c.fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		b.WriteString("\nflags:\n")
		c.fs.SetOutput(&b)
		c.fs.PrintDefaults()
		c.fs.SetOutput(io.Discard)
	}
	if c.trailer != "" {
		fmt.Fprintf(&b, "\n%s\n", strings.TrimRight(c.trailer, "\n"))
	}
	return b.String()
}

// mistake is a usage error that shows this command's usage.
func (c *command) mistake(msg string) error {
	return commandUsageError{msg: usageError(c.fs.Name() + ": " + msg), usage: c.help()}
}

// parse parses flags that may come before or after the positional
// arguments (`token add NAME --role R` as well as `token add --role R NAME`)
// and returns the positional ones, of which there must be between min and
// max (max < 0: any number). -h anywhere is a helpRequest.
func (c *command) parse(args []string, min, max int) ([]string, error) {
	var pos []string
	for {
		if err := c.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, helpRequest(c.help())
			}
			return nil, c.mistake(err.Error())
		}
		args = c.fs.Args()
		if len(args) == 0 {
			break
		}
		pos, args = append(pos, args[0]), args[1:]
	}
	switch {
	case max >= 0 && len(pos) > max:
		return nil, c.mistake(fmt.Sprintf("unexpected argument %q", pos[max]))
	case len(pos) < min:
		return nil, c.mistake("an argument is missing (see the usage below)")
	}
	return pos, nil
}

// configFlag is -config, for the commands that read the configuration
// file.
func (c *command) configFlag() *string {
	return c.fs.String("config", "datarights.yaml", "configuration file")
}

// group is a command with verbs (token add, audit verify, …): its help is
// the verbs' synopses.
type group struct {
	name  string
	verbs string // one line or more per verb, as in usage
}

// verb returns the verb args name, or a helpRequest for `group -h`, or the
// group's usage error. ok lists the verbs.
func (g group) verb(args []string, ok ...string) (string, error) {
	if len(args) > 0 && (isHelp(args[0]) || args[0] == "help") {
		return "", helpRequest(g.usage())
	}
	if len(args) > 0 {
		for _, v := range ok {
			if args[0] == v {
				return v, nil
			}
		}
		return "", commandUsageError{msg: usageError(fmt.Sprintf("datarights %s: unknown verb %q", g.name, args[0])), usage: g.usage()}
	}
	return "", commandUsageError{msg: usageError(fmt.Sprintf("datarights %s: say which", g.name)), usage: g.usage()}
}

func (g group) usage() string {
	return "usage:\n" + strings.TrimRight(g.verbs, "\n") + "\n\nRun \"datarights " + g.name + " <verb> -h\" for the flags of a verb.\n"
}

// runVersion prints the version, from what the Go toolchain recorded in
// the binary: a release's module version, else the commit it was built
// from.
func runVersion(args []string, stdout io.Writer) error {
	c := newCommand("version", "datarights version   (or datarights --version)", "print the version: the module version of a release, else the commit, its time and\nwhether the tree had uncommitted changes when it was built")
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	info, _ := debug.ReadBuildInfo()
	fmt.Fprintln(stdout, "datarights "+version(info))
	return nil
}

// version describes a build: "v1.2.0", or "devel 3f2a1c9b0d4e
// 2026-12-01T09:12:44Z (modified)", or "devel" when the toolchain
// recorded neither (go run, tests).
func version(info *debug.BuildInfo) string {
	if info == nil {
		return "devel"
	}
	v := info.Main.Version
	if v != "" && v != "(devel)" && !strings.Contains(v, "+dirty") && !isPseudo(v) {
		return v
	}
	var rev, at string
	modified := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	out := "devel " + rev
	if at != "" {
		out += " " + at
	}
	if modified {
		out += " (modified)"
	}
	return out
}

// isPseudo says whether v is a pseudo-version the toolchain made up from
// a commit (v0.0.0-20261201091244-3f2a1c9b0d4e): the commit says more.
func isPseudo(v string) bool {
	parts := strings.Split(strings.SplitN(v, "+", 2)[0], "-")
	if len(parts) < 3 {
		return false
	}
	rev := parts[len(parts)-1]
	ts := parts[len(parts)-2]
	if i := strings.LastIndex(ts, "."); i >= 0 {
		ts = ts[i+1:]
	}
	return len(rev) == 12 && len(ts) == 14 && strings.Trim(ts, "0123456789") == ""
}
