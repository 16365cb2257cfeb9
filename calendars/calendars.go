// Package calendars holds official holiday calendars as data: one JSON file
// per calendar and year, each citing the notice it comes from. The China
// (mainland) calendar "cn" for 2024–2026 is embedded; more years, or
// corrections, load from a directory at run time without a rebuild.
package calendars

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/datarights/datarights/rights"
)

//go:embed data/*.json
var builtin embed.FS

// Year is one published year of a calendar, as in its data file.
type Year struct {
	Calendar string   `json:"calendar"`
	Year     int      `json:"year"`
	Source   string   `json:"source"`   // the notice that published it
	Holidays []string `json:"holidays"` // YYYY-MM-DD days off, weekends included
	Workdays []string `json:"workdays"` // weekend days that are working days (调休)
}

type yearDays struct {
	source   string
	holidays map[string]bool
	workdays map[string]bool
}

// Calendar is one named calendar: working days are Monday to Friday that are
// not holidays, plus make-up working days, in the years it covers.
type Calendar struct {
	name  string
	years map[int]yearDays
}

var _ rights.Calendar = (*Calendar)(nil)

// Name is the calendar's name, e.g. "cn".
func (c *Calendar) Name() string { return c.name }

// Covers reports whether year's holidays are known.
func (c *Calendar) Covers(year int) bool {
	_, ok := c.years[year]
	return ok
}

// IsWorkingDay reports whether the date is a working day. In a year the
// calendar does not cover it answers by weekends only; callers learn of that
// through Covers.
func (c *Calendar) IsWorkingDay(year int, month time.Month, day int) bool {
	date := time.Date(year, month, day, 12, 0, 0, 0, time.UTC)
	key := date.Format(time.DateOnly)
	if y, ok := c.years[year]; ok {
		if y.workdays[key] {
			return true
		}
		if y.holidays[key] {
			return false
		}
	}
	wd := date.Weekday()
	return wd != time.Saturday && wd != time.Sunday
}

// Years lists the covered years in order.
func (c *Calendar) Years() []int {
	out := make([]int, 0, len(c.years))
	for y := range c.years {
		out = append(out, y)
	}
	sort.Ints(out)
	return out
}

// Source returns the notice year was published in, or "".
func (c *Calendar) Source(year int) string { return c.years[year].source }

// Set is the calendars a deployment knows, by name.
type Set struct {
	mu        sync.RWMutex
	calendars map[string]*Calendar
}

// Builtin returns a set holding the embedded calendars.
func Builtin() (*Set, error) {
	s := &Set{calendars: map[string]*Calendar{}}
	entries, err := fs.ReadDir(builtin, "data")
	if err != nil {
		return nil, fmt.Errorf("embedded calendars: %w", err)
	}
	var files []file
	for _, e := range entries {
		raw, err := fs.ReadFile(builtin, "data/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("embedded calendar file %s: %w", e.Name(), err)
		}
		files = append(files, file{name: "embedded " + e.Name(), raw: raw})
	}
	if err := s.add(files); err != nil {
		return nil, err
	}
	return s, nil
}

// LoadDir adds every *.json file in dir. A file for a calendar and year the
// set already has replaces it: that is how a correction is made. Every file
// is checked before any is used, so a directory with one bad file changes
// nothing, and a deadline is never counted on half a correction.
func (s *Set) LoadDir(dir string) error {
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("calendars directory: %w", err)
	}
	if !info.IsDir() {
		// Glob would find nothing in a plain file and the mistake would go
		// unnoticed.
		return fmt.Errorf("calendars directory %s is not a directory", dir)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return fmt.Errorf("calendars directory %s: %w", dir, err)
	}
	sort.Strings(paths)
	files := make([]file, 0, len(paths))
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("calendar file: %w", err)
		}
		files = append(files, file{name: path, raw: raw})
	}
	return s.add(files)
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// file is one calendar year's data file, named as errors should name it.
type file struct {
	name string
	raw  []byte
}

// add checks files, then puts their years into the set all at once. A
// calendar is never changed in place: it is replaced by a copy with the new
// years, so a *Calendar already handed out (and counting deadlines on
// another goroutine) keeps answering as it did.
func (s *Set) add(files []file) error {
	type parsed struct {
		year Year
		days yearDays
	}
	var all []parsed
	seen := map[string]string{} // "cn 2027" → the file that defines it
	for _, f := range files {
		var y Year
		dec := json.NewDecoder(bytes.NewReader(f.raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&y); err != nil {
			return fmt.Errorf("calendar file %s: %w", f.name, err)
		}
		if dec.More() {
			return fmt.Errorf("calendar file %s: more than one JSON value", f.name)
		}
		days, err := y.validate()
		if err != nil {
			return fmt.Errorf("calendar file %s: %w", f.name, err)
		}
		// Two files for one year in one load would make the winner depend
		// on file names: refuse rather than guess.
		key := fmt.Sprintf("%s %d", y.Calendar, y.Year)
		if other, ok := seen[key]; ok {
			return fmt.Errorf("calendar file %s: %s is also defined by %s", f.name, key, other)
		}
		seen[key] = f.name
		all = append(all, parsed{year: y, days: days})
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	changed := map[string]*Calendar{}
	for _, p := range all {
		c, ok := changed[p.year.Calendar]
		if !ok {
			c = &Calendar{name: p.year.Calendar, years: map[int]yearDays{}}
			if old, ok := s.calendars[p.year.Calendar]; ok {
				maps.Copy(c.years, old.years)
			}
			changed[p.year.Calendar] = c
		}
		c.years[p.year.Year] = p.days
	}
	maps.Copy(s.calendars, changed)
	return nil
}

func (y Year) validate() (yearDays, error) {
	days := yearDays{source: y.Source, holidays: map[string]bool{}, workdays: map[string]bool{}}
	if !nameRE.MatchString(y.Calendar) {
		return days, fmt.Errorf("calendar %q is not a lower-case name", y.Calendar)
	}
	if y.Year < 1949 || y.Year > 2200 {
		return days, fmt.Errorf("year %d is out of range", y.Year)
	}
	if strings.TrimSpace(y.Source) == "" {
		return days, fmt.Errorf("source is required: cite the notice the calendar comes from")
	}
	parse := func(kind, s string, into map[string]bool) error {
		d, err := time.Parse(time.DateOnly, s)
		switch {
		case err != nil:
			return fmt.Errorf("%s %q is not a YYYY-MM-DD date", kind, s)
		case d.Year() != y.Year:
			return fmt.Errorf("%s %s is not in %d", kind, s, y.Year)
		case into[s]:
			return fmt.Errorf("%s %s is listed twice", kind, s)
		}
		into[s] = true
		return nil
	}
	for _, s := range y.Holidays {
		if err := parse("holiday", s, days.holidays); err != nil {
			return days, err
		}
	}
	for _, s := range y.Workdays {
		if err := parse("make-up workday", s, days.workdays); err != nil {
			return days, err
		}
		if days.holidays[s] {
			return days, fmt.Errorf("%s is both a holiday and a make-up workday", s)
		}
		d, _ := time.Parse(time.DateOnly, s)
		if wd := d.Weekday(); wd != time.Saturday && wd != time.Sunday {
			return days, fmt.Errorf("make-up workday %s is a %s, not a weekend day", s, wd)
		}
	}
	return days, nil
}

// Get returns the calendar named name. A nil set has no calendars, so that
// a caller without one reports an unknown calendar instead of panicking.
func (s *Set) Get(name string) (*Calendar, bool) {
	if s == nil {
		return nil, false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.calendars[name]
	return c, ok
}

// Names lists the calendars in the set.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.calendars))
	for n := range s.calendars {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
