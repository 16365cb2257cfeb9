package jobs

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// The correct right in the pipeline. A correct request names fields by their
// public names; the product's stores say which fields exist, how their new
// values are checked and which are protected (staff approve before they
// change). Values never leave the request and the stores: audit events,
// errors and emails carry field names only.

// validateIntake checks an intake for the channel: the domain's checks, and
// for a correct request each named field against the fields the product's
// stores let be corrected, its value with the field's validator. Every
// problem is reported at once.
func (p *Pipeline) validateIntake(in *rights.Intake, ch rights.Channel) error {
	err := in.Validate(ch, p.settings.Catalog())
	var problems rights.Problems
	if err != nil {
		var re *rights.Error
		if !errors.As(err, &re) {
			return err
		}
		problems = append(problems, re.Fields...)
	}
	p.checkVerificationMethod(in, ch, &problems)
	p.checkPurposes(in, &problems)
	p.checkNewTypes(in, &problems)
	if in.Type == rights.TypeCorrect && len(in.Corrections) > 0 {
		p.checkCorrections(in, &problems)
	}
	return problems.Err()
}

// checkCorrections checks each field a correct request names against the
// fields the product's stores let be corrected, and its value with the
// field's validator.
func (p *Pipeline) checkCorrections(in *rights.Intake, problems *rights.Problems) {
	if _, ok := p.settings.Product(in.Product); !ok {
		return // the product is already reported
	}
	allowed := p.settings.CorrectableFields(in.Product)
	names := slices.Sorted(maps.Keys(allowed))
	for _, field := range slices.Sorted(maps.Keys(in.Corrections)) {
		path := "corrections." + field
		if !rights.ValidFieldName(field) || hasProblem(*problems, path) {
			continue // already reported
		}
		rule, ok := allowed[field]
		switch {
		case !ok && len(names) == 0:
			problems.Add(path, "no field can be corrected in %s", in.Product)
		case !ok:
			problems.Add(path, "%q cannot be corrected in %s; correctable fields: %s", field, in.Product, strings.Join(names, ", "))
		default:
			if reason := rights.CheckCorrection(rule.Validate, in.Corrections[field]); reason != "" {
				problems.Add(path, "%s", reason)
			}
		}
	}
}

func hasProblem(problems rights.Problems, field string) bool {
	for _, f := range problems {
		if f.Field == field {
			return true
		}
	}
	return false
}

// correctionFields returns the names of the fields a request corrects,
// sorted; none for other requests.
func correctionFields(r *rights.Request) []string {
	return slices.Sorted(maps.Keys(r.Corrections))
}

// protectedCorrections returns the protected fields a correct request
// names, sorted.
func (p *Pipeline) protectedCorrections(r *rights.Request) []string {
	if r.Type != rights.TypeCorrect || len(r.Corrections) == 0 {
		return nil
	}
	rules := p.settings.CorrectableFields(r.Product)
	var fields []string
	for _, field := range correctionFields(r) {
		if rules[field].Protected {
			fields = append(fields, field)
		}
	}
	return fields
}

// holdProtectedCorrection stops a verified correct request that touches
// protected fields at awaiting_approval, audited as correction.needs_approval
// with the field names; staff approve it (or refuse it). It reports whether
// it did. A request already waiting for approval (a repeat) gets the audit
// event only: one approval covers both.
func (p *Pipeline) holdProtectedCorrection(ctx context.Context, tx pgx.Tx, r *rights.Request, now time.Time) (bool, error) {
	fields := p.protectedCorrections(r)
	if len(fields) == 0 {
		return false, nil
	}
	detail := map[string]any{"fields": fields}
	if r.Status == rights.StatusAwaitingApproval {
		return true, storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: now, Actor: rights.ActorSystem,
			Action: "correction.needs_approval", Detail: detail})
	}
	return true, p.transition(ctx, tx, r, rights.StatusAwaitingApproval, now, storage.Change{
		Actor: rights.ActorSystem, Action: "correction.needs_approval", Detail: detail,
	})
}

// runCorrect asks a store to correct the subject's data. The plan gives a
// correct task only to stores that hold one of the fields, and only SQL
// stores declare fields, so a connector that cannot correct is a
// configuration the plan should not have produced.
func runCorrect(ctx context.Context, conn rights.Connector, r *rights.Request, t *rights.Task, corrections map[string]string) (rights.StoreReport, error) {
	corrector, ok := conn.(rights.Corrector)
	if !ok {
		return rights.StoreReport{}, rights.Errorf(rights.ENotImplemented, "store %s cannot correct data", t.Store)
	}
	return corrector.Correct(ctx, r.Subject.All(), corrections)
}

// storeFormatted writes corrected emails and phones the way the store
// holds them (stores[].identity_format), so that a new phone typed
// "+86 139 0000 0001" is stored as 13900000001 and later found by it.
func (p *Pipeline) storeFormatted(store, product string, corrections map[string]string) map[string]string {
	s, ok := p.settings.Store(store)
	if !ok {
		return corrections
	}
	rules := p.settings.CorrectableFields(product)
	out := make(map[string]string, len(corrections))
	for field, value := range corrections {
		if kind := rules[field].Validate; kind == "email" || kind == "phone" {
			value = s.Format().Apply(map[string]string{kind: value})[kind]
		}
		out[field] = value
	}
	return out
}

// correctedFields returns the fields the tasks' stores corrected (changed in
// at least one row), sorted.
func correctedFields(tasks []*rights.Task) []string {
	var fields []string
	for _, t := range tasks {
		if t.Report != nil && t.Report.Resolved {
			fields = append(fields, t.Report.CorrectedFields()...)
		}
	}
	slices.Sort(fields)
	return slices.Compact(fields)
}
