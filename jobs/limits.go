package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/netip"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/keyring"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// Client is who is calling the self-service door, as far as the HTTP layer
// can tell.
type Client struct {
	// IP is the client's address (behind trusted proxies, from
	// X-Forwarded-For); the zero value counts as one unknown network.
	IP netip.Addr
}

// CodeDigits is the length of a verification code: with the per-mailbox
// limit on wrong codes, a guesser has about 1 chance in 10 million a day.
const CodeDigits = 8

// tooMany is the one answer of every self-service limit: the same for a
// known and an unknown address, so it tells nothing about who is a customer.
func tooMany(wait time.Duration) error {
	return &rights.Error{Code: rights.ETooMany, RetryAfter: max(wait, time.Second),
		Message: "too many attempts for this address or from this network; try again later (see Retry-After)"}
}

// mailbox is the canonical form of an email address for limits: lower case
// and without a +tag, since every tag reaches the same mailbox.
func mailbox(email string) string {
	local, domain, ok := strings.Cut(strings.ToLower(strings.TrimSpace(email)), "@")
	if !ok {
		return local
	}
	if plus := strings.IndexByte(local, '+'); plus > 0 {
		local = local[:plus]
	}
	return local + "@" + domain
}

// network is the unit an IP limit counts: an IPv4 address, or the /64 an
// IPv6 host gets from its provider (it can use any address in it).
func network(ip netip.Addr) string {
	switch {
	case !ip.IsValid():
		return "unknown"
	case ip.Is4() || ip.Is4In6():
		return ip.Unmap().String()
	}
	p, _ := ip.Prefix(64)
	return p.String()
}

// limitKey is the key a throttle row is kept under: a MAC of the value, so
// the table holds no address and no IP, and a database copy cannot tell
// which addresses were limited. A rotated key starts the counts afresh.
func (p *Pipeline) limitKey(kind, value string) ([]byte, error) {
	return p.keys.MAC("", "throttle/"+kind, []byte(value))
}

// takeNetwork counts one call from client against an hourly limit, in its
// own transaction: a call refused for another reason still counts.
func (p *Pipeline) takeNetwork(ctx context.Context, scope string, client Client, perHour int) error {
	key, err := p.limitKey("network", network(client.IP))
	if err != nil {
		return err
	}
	var wait time.Duration
	err = p.db.InTx(ctx, func(tx pgx.Tx) error {
		wait, err = storage.TakeThrottle(ctx, tx, scope, key, p.now().UTC(), storage.Window{Limit: perHour, Per: time.Hour})
		return err
	})
	if err != nil {
		return err
	}
	if wait > 0 {
		return tooMany(wait)
	}
	return nil
}

// takeCodeEmail counts one code email to each of the mailboxes (the address
// it goes to and, for a new contact address, the subject's own) against the
// hourly and daily limits, in tx. It counts nothing when any is full.
func (p *Pipeline) takeCodeEmail(ctx context.Context, tx pgx.Tx, now time.Time, addresses ...string) error {
	l := p.settings.SelfService.Limits
	windows := []storage.Window{{Limit: l.CodeEmailsPerHour, Per: time.Hour}, {Limit: l.CodeEmailsPerDay, Per: 24 * time.Hour}}
	seen := map[string]bool{}
	var keys [][]byte
	for _, a := range addresses {
		m := mailbox(a)
		if seen[m] {
			continue
		}
		seen[m] = true
		key, err := p.limitKey("mailbox", m)
		if err != nil {
			return err
		}
		wait, err := storage.CheckThrottle(ctx, tx, storage.ThrottleCodeEmail, key, now, windows...)
		if err != nil {
			return err
		}
		if wait > 0 {
			return tooMany(wait)
		}
		keys = append(keys, key)
	}
	for _, key := range keys {
		if err := storage.RecordThrottle(ctx, tx, storage.ThrottleCodeEmail, key, now); err != nil {
			return err
		}
	}
	return nil
}

// wrongCodeWindow is the window wrong codes are counted in per mailbox.
const wrongCodeWindow = 24 * time.Hour

// newCode returns a random code of CodeDigits digits.
func newCode() (string, error) {
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(CodeDigits), nil)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%0*d", CodeDigits, n), nil
}

// codeMAC is what is stored of a code: "<key id>:<hex MAC>" under the
// secret key, bound to its request and purpose, so a database copy gives
// neither the code nor a way to test guesses offline.
func (p *Pipeline) codeMAC(keyID, purpose, requestID, code string) (string, error) {
	mac, err := p.keys.MAC(keyID, "code/"+purpose, []byte(requestID), []byte(code))
	if err != nil {
		return "", err
	}
	if keyID == "" {
		keyID = p.keys.Primary()
	}
	return keyID + ":" + hex.EncodeToString(mac), nil
}

// codeMatches checks code against a stored codeMAC, in constant time.
func (p *Pipeline) codeMatches(stored, purpose, requestID, code string) bool {
	keyID, want, ok := strings.Cut(stored, ":")
	if !ok {
		return false
	}
	got, err := p.codeMAC(keyID, purpose, requestID, code)
	if err != nil {
		return false
	}
	_, gotHex, _ := strings.Cut(got, ":")
	wantRaw, err1 := hex.DecodeString(want)
	gotRaw, err2 := hex.DecodeString(gotHex)
	return err1 == nil && err2 == nil && keyring.Equal(wantRaw, gotRaw)
}

// WellFormedCode reports whether s could be a code.
func WellFormedCode(s string) bool {
	return len(s) == CodeDigits && strings.Trim(s, "0123456789") == ""
}
