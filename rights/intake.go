package rights

import (
	"net/mail"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// Intake is a new request as submitted, before it is stored.
type Intake struct {
	Product       string
	Type          Type
	Identities    map[string]string
	DeliveryEmail string
	Relation      Relation
	Locale        string
	Verification  *Verification // staff tickets: how staff verified the requester
	Note          string
	// TicketRef is the customer-service system's ticket number (optional).
	TicketRef string
	// Corrections are a correct request's field names and new values.
	Corrections map[string]string
	// Purposes are the consents a withdraw_consent request withdraws.
	Purposes []string
	// Text is a complaint's text or what an explain request asks about.
	Text string
	// Concerns is the request a complaint is about (optional).
	Concerns string
	// Receiver is the receiving handler a transfer goes to.
	Receiver string
}

// MaxDetailText is the longest complaint, question or answer, in bytes.
const MaxDetailText = 8000

// NextOfKinTypes are the rights next of kin may exercise for a deceased
// person (WeBank §7(七): 查阅、复制、更正、删除).
var NextOfKinTypes = []Type{TypeAccess, TypeCopy, TypeCorrect, TypeDelete}

// Catalog is what the deployment knows: its products and the identity types
// its stores can resolve.
type Catalog struct {
	Products      map[string]bool
	IdentityTypes map[string]bool
	// VerificationMethods are the ways staff may say they verified a
	// requester; nil accepts any well-formed name.
	VerificationMethods map[string]bool
}

var (
	phoneRE     = regexp.MustCompile(`^\+?[0-9][0-9 -]{4,19}$`)
	ticketRefRE = regexp.MustCompile(`^[A-Za-z0-9._#:/-]{1,64}$`)
	identityKey = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
)

const (
	maxIdentities    = 10
	maxIdentityValue = 256
	maxNote          = 2000
	maxEmail         = 254
)

// Validate checks an intake for the given channel and returns every problem
// found, by field. It also normalises the locale and relation defaults.
func (in *Intake) Validate(channel Channel, cat Catalog) error {
	var p Problems
	switch {
	case in.Product == "":
		p.Add("product", "is required")
	case !cat.Products[in.Product]:
		p.Add("product", "unknown product %q; known: %s", in.Product, strings.Join(sortedKeys(cat.Products), ", "))
	}
	switch {
	case in.Type == "":
		p.Add("type", "is required")
	case !in.Type.Valid():
		p.Add("type", "unknown right %q; known: %s", in.Type, joinTypes())
	default:
		if _, ok := ActionFor(in.Type); !ok && !in.Type.Answered() {
			p.Add("type", "%s requests are not supported by this deployment yet", in.Type)
		}
	}
	in.validateCorrections(&p)
	in.validatePurposes(&p)
	in.validateDetails(&p)
	if len(in.Identities) == 0 {
		p.Add("subject.identities", "at least one identity is required (%s)", strings.Join(sortedKeys(cat.IdentityTypes), ", "))
	}
	for _, k := range []string{"email", "phone"} {
		if v, ok := in.Identities[k]; ok {
			in.Identities[k] = strings.TrimSpace(v) // stores shape the rest (identity_format); keys stay as given
		}
	}
	checkIdentities(&p, in.Identities, cat.IdentityTypes, "subject.identities")
	switch {
	case in.DeliveryEmail == "":
		p.Add("delivery_email", "is required: where the result is sent")
	case !validEmail(in.DeliveryEmail):
		p.Add("delivery_email", "must be an email address")
	}
	if in.Relation == "" {
		in.Relation = RelationSelf
	}
	if !in.Relation.Valid() {
		p.Add("requester_relation", "must be one of self, guardian, next_of_kin, agent; not %q", in.Relation)
	}
	if channel == ChannelSelfService && in.Relation != RelationSelf {
		p.Add("requester_relation", "self-service requests are for the requester's own data; others go through customer service")
	}
	if in.Relation == RelationNextOfKin && in.Type.Valid() && !slices.Contains(NextOfKinTypes, in.Type) {
		p.Add("type", "next of kin may ask for access, copy, correct or delete only, not %s", in.Type)
	}
	if in.Type == TypeTransfer && in.Relation != RelationSelf && in.Relation.Valid() {
		p.Add("requester_relation", "a transfer moves the person's own data at their own request: it must be made by the person (self)")
	}
	switch in.Locale {
	case "":
		in.Locale = LocaleZH
	case LocaleZH, LocaleEN:
	default:
		p.Add("locale", "must be %q or %q", LocaleZH, LocaleEN)
	}
	if channel == ChannelPartner {
		// The service sets the method; the partner's contract is the evidence.
		if in.Verification == nil || in.Verification.Method != VerificationPartnerAttested {
			p.Add("verification.method", "must be %s for a partner's request", VerificationPartnerAttested)
		}
		if in.Relation != RelationSelf {
			p.Add("requester_relation", "a partner's request is the person's own")
		}
	}
	if channel == ChannelStaff {
		switch {
		case in.Verification == nil || strings.TrimSpace(in.Verification.Method) == "":
			p.Add("verification.method", "is required: how staff verified the requester (e.g. face_check, id_document)")
		case len(in.Verification.Method) > 64 || len(in.Verification.Reference) > 256:
			p.Add("verification", "method at most 64 bytes, reference at most 256")
		case cat.VerificationMethods != nil && !cat.VerificationMethods[in.Verification.Method]:
			p.Add("verification.method", "unknown method %q; configured: %s", in.Verification.Method, strings.Join(sortedKeys(cat.VerificationMethods), ", "))
		case in.Relation != RelationSelf && strings.TrimSpace(in.Verification.Reference) == "":
			p.Add("verification.reference", "is required when acting for someone else: the evidence on file (e.g. guardianship or death certificate id)")
		}
	}
	if len(in.Note) > maxNote {
		p.Add("note", "at most %d bytes", maxNote)
	}
	if in.TicketRef != "" && !ValidTicketRef(in.TicketRef) {
		p.Add("ticket_ref", "at most 64 characters of letters, digits and . _ # : / -")
	}
	return p.Err()
}

// validateDetails checks the fields of complaints, explanations and
// transfers: each is required by its type and refused on the others.
func (in *Intake) validateDetails(p *Problems) {
	switch {
	case in.Type.Answered() && strings.TrimSpace(in.Text) == "":
		what := "what the complaint is about"
		if in.Type == TypeExplain {
			what = "which decision should be explained"
		}
		p.Add("text", "is required: %s", what)
	case !in.Type.Answered() && in.Text != "":
		p.Add("text", "is only for complaint and explain requests")
	case len(in.Text) > MaxDetailText || !utf8.ValidString(in.Text):
		p.Add("text", "must be valid text of at most %d bytes", MaxDetailText)
	}
	switch {
	case in.Concerns != "" && in.Type != TypeComplaint:
		p.Add("concerns", "is only for complaint requests")
	case in.Concerns != "" && !validUUID(in.Concerns):
		p.Add("concerns", "must be a request id")
	}
	switch {
	case in.Type == TypeTransfer && in.Receiver == "":
		p.Add("receiver", "is required: the receiving handler the copy goes to")
	case in.Type != TypeTransfer && in.Receiver != "":
		p.Add("receiver", "is only for transfer requests")
	case in.Receiver != "" && !identityKey.MatchString(in.Receiver):
		p.Add("receiver", "must be a configured receiver's name")
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func validUUID(s string) bool { return uuidRE.MatchString(s) }

// ValidTicketRef reports whether s is a well-formed ticket number: short,
// and of characters that need no escaping in a URL query or a log line.
func ValidTicketRef(s string) bool { return ticketRefRE.MatchString(s) }

// ValidateIdentities checks identities named outside a request (a lookup
// before filing): at least one, each of a type in known, each value well
// formed. Problems are reported under prefix ("identities.email").
func ValidateIdentities(identities map[string]string, known map[string]bool, prefix string) error {
	var p Problems
	if len(identities) == 0 {
		p.Add(prefix, "at least one identity is required (%s)", strings.Join(sortedKeys(known), ", "))
	}
	checkIdentities(&p, identities, known, prefix)
	return p.Err()
}

func checkIdentities(p *Problems, identities map[string]string, known map[string]bool, prefix string) {
	if len(identities) > maxIdentities {
		p.Add(prefix, "at most %d identities", maxIdentities)
	}
	for _, kind := range sortedKeys(identities) {
		value, field := identities[kind], prefix+"."+kind
		switch {
		case !identityKey.MatchString(kind):
			p.Add(prefix, "identity type %q is not a lower-case name", kind)
		case !known[kind]:
			p.Add(field, "no configured store knows identity type %q; known: %s", kind, strings.Join(sortedKeys(known), ", "))
		case strings.TrimSpace(value) == "":
			p.Add(field, "must not be empty")
		case len(value) > maxIdentityValue || !utf8.ValidString(value):
			p.Add(field, "must be valid text of at most %d bytes", maxIdentityValue)
		case kind == "email" && !validEmail(NormalizeEmail(value)):
			p.Add(field, "must be an email address")
		case kind == "phone" && !validPhone(value):
			p.Add(field, "must be a phone number (digits, optional + prefix)")
		}
	}
}

// validPhone accepts a number as people write it: digits with spaces,
// dashes or parentheses, an optional + or 00 prefix, full-width digits.
func validPhone(s string) bool {
	if phoneRE.MatchString(strings.TrimSpace(s)) {
		return true
	}
	_, ok := NormalizePhone(s, "+1")
	return ok
}

func validEmail(s string) bool {
	if len(s) > maxEmail {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && a.Name == ""
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func joinTypes() string {
	names := make([]string, len(Types))
	for i, t := range Types {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}
