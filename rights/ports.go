package rights

import (
	"context"
	"io"
)

// Connector acts on the subject's data in one configured data store. Every
// method must be safe to call again after a crash at any point: a repeated
// Export overwrites what it wrote, a repeated Delete finds nothing left.
type Connector interface {
	// Export writes every record the store holds about the subject to sink,
	// one dataset per table (or collection), and reports the counts.
	Export(ctx context.Context, subject Subject, sink Sink) (StoreReport, error)
	// Delete removes every record the store holds about the subject.
	Delete(ctx context.Context, subject Subject) (StoreReport, error)
	// Close releases the connector's connections.
	Close() error
}

// Inventorier is a connector that counts what it holds about a subject in
// the unit its erasure reports in (keys, say, where its export writes a
// row per field). Connectors without it are counted by their export.
type Inventorier interface {
	Inventory(ctx context.Context, subject Subject) (StoreReport, error)
}

// AwaitingConfirmation is returned by a connector whose work is done
// elsewhere — by staff for a manual store, or by a service that answers a
// webhook later. The task then waits until that work is confirmed.
type AwaitingConfirmation struct {
	// Instructions tell staff what to do; never personal data.
	Instructions string
}

func (a *AwaitingConfirmation) Error() string { return "awaiting confirmation" }

// KeyResolver is a connector that can tell which of its store's keys a
// subject named by other identities has (e.g. the user_id behind an email),
// so that stores without lookups of their own can act on the subject too.
type KeyResolver interface {
	// ResolveKeys returns the identity type the store is keyed by and the
	// subject's keys in it; none when the subject is not found.
	ResolveKeys(ctx context.Context, subject Subject) (identity string, keys []string, err error)
}

// KeyProber is a connector that can list every key a subject's identities
// lead to in its store, several when they are ambiguous, so that staff can
// learn before filing whether the identities name one person. It acts on
// nothing; the keys are compared, never shown.
type KeyProber interface {
	ProbeKeys(ctx context.Context, subject Subject) (identity string, keys []string, err error)
}

// Sink receives exported datasets. Rows are streamed: an implementation must
// not need the whole dataset in memory.
type Sink interface {
	// Dataset starts a dataset with the given column names.
	Dataset(name string, columns []string) (RowWriter, error)
}

// RowWriter receives the rows of one dataset, values in column order.
type RowWriter interface {
	WriteRow(values []any) error
	// Close finishes the dataset and returns what was written.
	Close() (DatasetReport, error)
}

// Message is one email to a requester.
type Message struct {
	// ID is the RFC 5322 Message-ID without angle brackets. It is derived from
	// the request and the message kind so that a resend is the same message.
	ID          string
	To          string
	Subject     string
	Text        string
	HTML        string
	Attachments []Attachment
}

// Attachment is a file attached to a Message.
type Attachment struct {
	Filename    string
	ContentType string
	// Open returns the content; it is called once per send.
	Open func() (io.ReadCloser, error)
}

// Mailer sends messages.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// SMS is a text message to a phone number. ID is stable across resends,
// for the gateway to drop duplicates.
type SMS struct {
	ID   string `json:"id"`
	To   string `json:"to"`
	Text string `json:"text"`
}

// SMSSender sends text messages: codes that prove a new phone number.
type SMSSender interface {
	SendSMS(ctx context.Context, m SMS) error
}

// ValueKind says how a value a connector passes as text is written in an
// export: a JSON string, a number, a boolean… Connectors that read values
// off the wire as text (Postgres) hand them over without converting each to
// a Go value, which is most of the cost of a large export.
type ValueKind uint8

const (
	KindString      ValueKind = iota // text, written as a JSON string
	KindNumber                       // an integer or decimal as written; NaN and infinities become strings
	KindBool                         // "t"/"f" (or "true"/"false")
	KindJSON                         // a JSON document, as written
	KindTimestampTZ                  // "2006-01-02 15:04:05.999999+00" (UTC), written as RFC 3339
	KindTimestamp                    // the same without a zone, written as RFC 3339 in UTC
	KindBytes                        // Postgres' hex form "\x…", written as base64
	KindValue                        // not text: the Go value in values[i], written as Sink rows are
)

// TextSink is a Sink that also takes rows as text with a kind per column.
type TextSink interface {
	Sink
	TextDataset(name string, columns []string, kinds []ValueKind) (TextRowWriter, error)
}

// TextRowWriter receives the rows of one dataset as text: texts[i] is
// column i's text (nil for NULL), except for KindValue columns, whose
// values are in values[i]. Neither slice may be kept after the call.
type TextRowWriter interface {
	WriteTextRow(texts [][]byte, values []any) error
	Close() (DatasetReport, error)
}

// ValueLooker is a SQL store that runs an operator's query for one value
// about the subject (the age lookup): nil when there is none.
type ValueLooker interface {
	LookupValue(ctx context.Context, subject Subject, query string) (any, error)
}
