package jobs

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/datarights/datarights/exporters"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// Register formats.
const (
	RegisterCSV  = "csv"
	RegisterJSON = "json"
)

// RegisterPeriod is the period and products of a register export.
type RegisterPeriod struct {
	From, To string // YYYY-MM-DD, both included
	TimeZone string // the zone the days are in
	Filter   storage.RegisterFilter
}

// RegisterPeriod checks a register export's period: from and to are days
// (YYYY-MM-DD, both included, from not after to) in the zone of the first
// of products (nil: every configured product, in configuration order),
// and products must be known. Problems are an EInvalid error naming
// "from", "to" or "product".
func (p *Pipeline) RegisterPeriod(from, to string, products []string) (RegisterPeriod, error) {
	var problems rights.Problems
	if products == nil {
		for _, prod := range p.settings.Products {
			products = append(products, prod.Name)
		}
	}
	locations := map[string]*time.Location{}
	for _, name := range products {
		if _, ok := p.policies[name]; !ok {
			problems.Add("product", "unknown product %q", name)
			continue
		}
		locations[name] = p.location(name)
	}
	loc := time.UTC
	if len(products) > 0 && locations[products[0]] != nil {
		loc = locations[products[0]]
	}
	day := func(field, v string) time.Time {
		if v == "" {
			problems.Add(field, "is required: a day, YYYY-MM-DD")
			return time.Time{}
		}
		d, err := time.ParseInLocation(time.DateOnly, v, loc)
		if err != nil {
			problems.Add(field, "must be a day, YYYY-MM-DD, not %q", v)
		}
		return d
	}
	f, t := day("from", from), day("to", to)
	if !f.IsZero() && !t.IsZero() && t.Before(f) {
		problems.Add("to", "must not be before from (%s)", from)
	}
	if err := problems.Err(); err != nil {
		return RegisterPeriod{}, err
	}
	return RegisterPeriod{From: from, To: to, TimeZone: loc.String(), Filter: storage.RegisterFilter{
		From: f, To: t.AddDate(0, 0, 1), Products: products, Locations: locations,
	}}, nil
}

// WriteRegister streams the register of period to w as CSV (a header of
// storage.RegisterColumns, then one defused record per request) or JSON
// ({"from", "to", "time_zone", "requests": [...]}), reading it page by
// page. On an error part of it may have been written: the caller must not
// pass it on as complete.
func (p *Pipeline) WriteRegister(ctx context.Context, w io.Writer, format string, period RegisterPeriod) error {
	if format != RegisterCSV && format != RegisterJSON {
		return &rights.Error{Code: rights.EInvalid, Message: "unknown format",
			Fields: []rights.FieldProblem{{Field: "format", Reason: "must be csv or json"}}}
	}
	bw := bufio.NewWriterSize(w, 32<<10)
	var line []byte
	if format == RegisterCSV {
		line = exporters.AppendCSVRecord(line[:0], storage.RegisterColumns)
	} else {
		head, err := json.Marshal(map[string]string{"from": period.From, "to": period.To, "time_zone": period.TimeZone})
		if err != nil {
			return err
		}
		line = append(append(head[:len(head)-1], `,"requests":[`...), '\n')
	}
	if _, err := bw.Write(line); err != nil {
		return err
	}
	n := 0
	err := storage.RegisterRows(ctx, p.db.Pool, period.Filter, func(r storage.RegisterRow) error {
		if format == RegisterCSV {
			line = exporters.AppendCSVRecord(line[:0], r.Fields())
		} else {
			row, err := json.Marshal(r)
			if err != nil {
				return err
			}
			line = line[:0]
			if n > 0 {
				line = append(line, ",\n"...)
			}
			line = append(line, row...)
		}
		n++
		_, err := bw.Write(line)
		return err
	})
	if err != nil {
		return fmt.Errorf("register export: %w", err)
	}
	if format == RegisterJSON {
		if _, err := bw.WriteString("\n]}\n"); err != nil {
			return err
		}
	}
	return bw.Flush()
}
