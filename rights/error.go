package rights

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Error codes. The HTTP layer maps each to one status code; the CLI prints
// the message.
const (
	EInvalid        = "invalid"         // the input is wrong; Fields says where
	ENotFound       = "not_found"       // no such thing (or not yours to see)
	EConflict       = "conflict"        // the state does not allow it
	EUnauthorized   = "unauthorized"    // no or bad credentials
	EForbidden      = "forbidden"       // credentials fine, action not allowed
	ETooLarge       = "too_large"       // the body is over the limit
	EExpired        = "expired"         // a code or link is past its time
	ELocked         = "locked"          // too many wrong attempts
	ETooMany        = "too_many"        // over a rate limit; RetryAfter says when to try again
	ENotImplemented = "not_implemented" // valid, but this deployment cannot do it yet
	EUnavailable    = "unavailable"     // a dependency is down; try again
	EInternal       = "internal"        // a bug or an unexpected failure
)

// FieldProblem names one bad input field and why it is bad.
type FieldProblem struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// Error is the service's one error type. Its Message is safe to show to the
// caller; it never contains personal data.
type Error struct {
	Code    string
	Message string
	Fields  []FieldProblem
	// RetryAfter says, for ETooMany, when the limit lets the caller in again.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return e.Message
	}
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Reason
	}
	return e.Message + " (" + strings.Join(parts, "; ") + ")"
}

// Errorf returns an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the *Error in err's chain, EInternal for any
// other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the caller-safe message of err: the *Error's message,
// or a generic one for internal errors whose text may hold anything.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// Problems collects field problems while validating input.
type Problems []FieldProblem

// Add records that field is bad for reason.
func (p *Problems) Add(field, format string, args ...any) {
	*p = append(*p, FieldProblem{Field: field, Reason: fmt.Sprintf(format, args...)})
}

// Err returns an EInvalid *Error listing the problems, or nil if there are none.
func (p Problems) Err() error {
	if len(p) == 0 {
		return nil
	}
	return &Error{Code: EInvalid, Message: "the request has invalid fields", Fields: p}
}
