package jobs

import (
	"context"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// Staff work on requests that changes no status: assignment, internal
// notes, and the identity lookup before a ticket is filed. The staff
// member's role and products are checked here as well as by the API,
// so that the console, which calls these directly, cannot skip them.

// checkStaff returns the error for a staff member who lacks perm or does
// not work on product; outside their products a request is not found, as
// in the API.
func checkStaff(by rights.Staff, perm rights.Permission, r *rights.Request) error {
	if !by.Can(perm) {
		return by.Forbid(perm)
	}
	if !by.InScope(r.Product) {
		return rights.Errorf(rights.ENotFound, "request %s not found", r.ID)
	}
	return nil
}

// Assign gives a request to a staff member, or to nobody with assignee "".
// The assignee must hold an active token whose role reads requests and
// whose products include the request's. The status does not change.
func (p *Pipeline) Assign(ctx context.Context, by rights.Staff, requestID, assignee string) (*rights.Request, error) {
	var r *rights.Request
	err := p.db.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if r, err = storage.LockRequest(ctx, tx, requestID); err != nil {
			return err
		}
		if err := checkStaff(by, rights.PermOperate, r); err != nil {
			return err
		}
		if assignee != "" {
			if err := checkAssignee(ctx, tx, assignee, r.Product); err != nil {
				return err
			}
		}
		if r.Assignee == assignee {
			return nil // nothing changes, nothing to audit
		}
		now := p.now().UTC()
		previous := r.Assignee
		if err := storage.SetAssignee(ctx, tx, r.ID, assignee, now); err != nil {
			return err
		}
		r.Assignee, r.UpdatedAt = assignee, now
		return storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: now, Actor: by.Actor(),
			Action: "request.assigned", Detail: map[string]any{"assignee": assignee, "previous": previous}})
	})
	return r, err
}

func checkAssignee(ctx context.Context, q storage.Querier, name, product string) error {
	invalid := func(format string, args ...any) error {
		var p rights.Problems
		p.Add("assignee", format, args...)
		return p.Err()
	}
	st, err := storage.ActiveStaff(ctx, q, name)
	switch {
	case err != nil:
		return err
	case st == nil:
		return invalid("no staff member named %q has an active token", name)
	case !st.Can(rights.PermRead):
		return invalid("%s is %s %s, a role that does not work on requests", name, article(string(st.Role)), st.Role)
	case !st.InScope(product):
		return invalid("%s works on %s, not %s", name, strings.Join(st.Products, ", "), product)
	}
	return nil
}

func article(word string) string {
	if strings.ContainsRune("aeiou", rune(word[0])) {
		return "an"
	}
	return "a"
}

// MaxNoteChars is the longest internal note, in characters.
const MaxNoteChars = 4000

// AddNote adds an internal note to a request. Notes are for staff: they
// are shown on the request and never emailed. The audit records that a
// note was added and its length, not its text, which may well hold what
// the requester said on the phone.
func (p *Pipeline) AddNote(ctx context.Context, by rights.Staff, requestID, body string) (*storage.Note, error) {
	if reason := noteProblem(body); reason != "" {
		var problems rights.Problems
		problems.Add("body", "%s", reason)
		return nil, problems.Err()
	}
	var note *storage.Note
	err := p.db.InTx(ctx, func(tx pgx.Tx) error {
		r, err := storage.GetRequest(ctx, tx, requestID)
		if err != nil {
			return err
		}
		if err := checkStaff(by, rights.PermOperate, r); err != nil {
			return err
		}
		now := p.now().UTC()
		note = &storage.Note{RequestID: r.ID, Author: by.Name, Body: body, CreatedAt: now}
		if err := storage.AddNote(ctx, tx, note); err != nil {
			return err
		}
		return storage.AppendAudit(ctx, tx, rights.AuditEvent{RequestID: r.ID, At: now, Actor: by.Actor(),
			Action: "note.added", Detail: map[string]any{"note_id": note.ID, "length": utf8.RuneCountInString(body)}})
	})
	if err != nil {
		return nil, err
	}
	return note, nil
}

// noteProblem says what is wrong with a note's text, "" when nothing.
func noteProblem(body string) string {
	switch n := utf8.RuneCountInString(body); {
	case !utf8.ValidString(body):
		return "must be valid UTF-8 text"
	case strings.TrimSpace(body) == "":
		return "is required"
	case n > MaxNoteChars:
		return "at most 4000 characters"
	}
	for _, c := range body {
		if unicode.IsControl(c) && c != '\n' && c != '\t' && c != '\r' {
			return "must not contain control characters"
		}
	}
	return ""
}

// Lookup outcomes.
const (
	LookupOnePerson     = "one_person"     // the identities lead to one subject in the stores that answered
	LookupNoOne         = "no_one"         // nobody was found
	LookupSeveralPeople = "several_people" // they lead to different subjects: a request would resolve nothing for them
)

// What a lookup found in one store.
const (
	FoundNone       = "0"
	FoundOne        = "1"
	FoundMany       = "many"
	FoundNotChecked = "not_checked" // the store cannot be asked (Redis, S3, webhook, manual), or was not asked
	FoundError      = "error"       // the store did not answer
)

// LookupResult is what a lookup tells staff: whether the identities name
// one person, store by store, and never who.
type LookupResult struct {
	Product string `json:"product"`
	Outcome string `json:"outcome"`
	// Complete is false when a store that can be asked did not answer: the
	// outcome may change once it does.
	Complete bool          `json:"complete"`
	Stores   []LookupStore `json:"stores"`
	// IdentityTypes are the identity types the product's stores accept.
	IdentityTypes []string `json:"identity_types"`
}

// LookupStore is one store's part of a lookup.
type LookupStore struct {
	Store string `json:"store"`
	Key   string `json:"key"`   // the identity type the store is keyed by
	Found string `json:"found"` // FoundNone, FoundOne, FoundMany, FoundNotChecked or FoundError
}

// IdentityTypes returns, sorted, the identity types the product's stores
// accept (their keys and lookups), for the ticket form.
func (p *Pipeline) IdentityTypes(product string) []string {
	set := map[string]bool{}
	for _, s := range p.settings.StoresFor(product) {
		set[s.Key] = true
		for _, l := range s.Lookups {
			set[l.Identity] = true
		}
	}
	types := make([]string, 0, len(set))
	for t := range set {
		types = append(types, t)
	}
	sort.Strings(types)
	return types
}

// Lookup resolves identities against the product's stores as a request's
// plan would, and says whether they lead to one person, nobody or several
// people, without any of their data. It is a probe of personal data, so it
// is recorded (staff_events: identity.lookup, with the identity types, not
// the values).
func (p *Pipeline) Lookup(ctx context.Context, by rights.Staff, product string, identities map[string]string) (*LookupResult, error) {
	if !by.Can(rights.PermFile) {
		return nil, by.Forbid(rights.PermFile)
	}
	if _, ok := p.settings.Product(product); !ok {
		var problems rights.Problems
		if product == "" {
			problems.Add("product", "is required")
		} else {
			problems.Add("product", "unknown product %q; known: %s", product, strings.Join(p.productNames(), ", "))
		}
		return nil, problems.Err()
	}
	if err := by.CheckProduct(product); err != nil {
		return nil, err
	}
	types := p.IdentityTypes(product)
	known := map[string]bool{}
	for _, t := range types {
		known[t] = true
	}
	if err := rights.ValidateIdentities(identities, known, "identities"); err != nil {
		return nil, err
	}

	res := &LookupResult{Product: product, Complete: true, IdentityTypes: types}
	keys := map[string]map[string]bool{} // key identity type → keys found
	for _, s := range p.settings.StoresFor(product) {
		store := LookupStore{Store: s.Name, Key: s.Key, Found: FoundNotChecked}
		found, err := p.probeStore(ctx, s.Name, identities)
		switch {
		case err != nil:
			store.Found, res.Complete = FoundError, false
			p.logger.WarnContext(ctx, "identity lookup: store did not answer", "store", s.Name, "err", err)
		case found == nil:
		default:
			switch len(found) {
			case 0:
				store.Found = FoundNone
			case 1:
				store.Found = FoundOne
			default:
				store.Found = FoundMany
			}
			if keys[s.Key] == nil {
				keys[s.Key] = map[string]bool{}
			}
			for _, k := range found {
				keys[s.Key][k] = true
			}
		}
		res.Stores = append(res.Stores, store)
	}
	res.Outcome = LookupNoOne
	for _, set := range keys {
		switch {
		case len(set) > 1:
			res.Outcome = LookupSeveralPeople
		case len(set) == 1 && res.Outcome == LookupNoOne:
			res.Outcome = LookupOnePerson
		}
	}

	given := make([]string, 0, len(identities))
	for t := range identities {
		given = append(given, t)
	}
	sort.Strings(given)
	err := storage.AppendStaffEvent(ctx, p.db.Pool, storage.StaffEvent{At: p.now().UTC(), Actor: by.Actor(),
		Action: "identity.lookup", Product: product,
		Detail: map[string]any{"identity_types": given, "outcome": res.Outcome}})
	if err != nil {
		return nil, err // unrecorded, unanswered
	}
	return res, nil
}

// probeStore returns the keys the identities lead to in one store, nil
// when the store cannot be asked. A given key is checked for rows, and the
// other identities are asked too, so that a key and an email of two
// different customers show as several people (a request would act on the
// key alone).
func (p *Pipeline) probeStore(ctx context.Context, name string, identities map[string]string) ([]string, error) {
	conn, err := p.connector(ctx, name)
	if err != nil {
		return nil, err
	}
	probe := func(subject rights.Subject) ([]string, error) {
		if prober, ok := conn.(rights.KeyProber); ok {
			_, keys, err := prober.ProbeKeys(ctx, subject)
			return keys, err
		}
		if resolver, ok := conn.(rights.KeyResolver); ok {
			_, keys, err := resolver.ResolveKeys(ctx, subject)
			return keys, err
		}
		return nil, nil
	}
	_, canProbe := conn.(rights.KeyProber)
	_, canResolve := conn.(rights.KeyResolver)
	if !canProbe && !canResolve || !p.storeKnowsAny(name, identities) {
		return nil, nil // not asked: it could not tell
	}
	keys, err := probe(rights.Subject{Identities: identities})
	if err != nil {
		return nil, err
	}
	store, _ := p.settings.Store(name)
	if identities[store.Key] != "" && len(identities) > 1 {
		others := make(map[string]string, len(identities))
		for k, v := range identities {
			if k != store.Key {
				others[k] = v
			}
		}
		more, err := probe(rights.Subject{Identities: others})
		if err != nil {
			return nil, err
		}
		keys = append(keys, more...)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	if keys == nil {
		keys = []string{}
	}
	return keys, nil
}

// storeKnowsAny reports whether one of the identities is the store's key
// or one of its lookups': otherwise asking it says nothing.
func (p *Pipeline) storeKnowsAny(name string, identities map[string]string) bool {
	s, _ := p.settings.Store(name)
	if identities[s.Key] != "" {
		return true
	}
	for _, l := range s.Lookups {
		if identities[l.Identity] != "" {
			return true
		}
	}
	return false
}

func (p *Pipeline) productNames() []string {
	names := make([]string, 0, len(p.settings.Products))
	for _, prod := range p.settings.Products {
		names = append(names, prod.Name)
	}
	sort.Strings(names)
	return names
}
