// Package calendars holds official holiday calendars as data: one JSON file
// per calendar and year, each citing the notice it comes from. The China
// (mainland) calendar "cn" for 2024–2026 is embedded; more years, or
// corrections, load from a directory at run time without a rebuild.
package calendars

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
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
		return nil, err
	}
	for _, e := range entries {
		raw, err := fs.ReadFile(builtin, "data/"+e.Name())
		if err != nil {
			return nil, err
		}
		if err := s.add("embedded "+e.Name(), raw); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// LoadDir adds every *.json file in dir. A file for a calendar and year the
// set already has replaces it: that is how a correction is made.
func (s *Set) LoadDir(dir string) error {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return err
	}
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("calendars directory: %w", err)
	}
	sort.Strings(paths)
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := s.add(path, raw); err != nil {
			return err
		}
	}
	return nil
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

func (s *Set) add(file string, raw []byte) error {
	var y Year
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&y); err != nil {
		return fmt.Errorf("calendar file %s: %w", file, err)
	}
	days, err := y.validate()
	if err != nil {
		return fmt.Errorf("calendar file %s: %w", file, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.calendars[y.Calendar]
	if !ok {
		c = &Calendar{name: y.Calendar, years: map[int]yearDays{}}
		s.calendars[y.Calendar] = c
	}
	c.years[y.Year] = days
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

// Get returns the calendar named name.
func (s *Set) Get(name string) (*Calendar, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.calendars[name]
	return c, ok
}

// Names lists the calendars in the set.
func (s *Set) Names() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.calendars))
	for n := range s.calendars {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
