package exporters

import (
	"crypto/rand"
	"math/big"
	"strings"
)

// passwordAlphabet leaves out characters read out or copied wrongly: 0/O,
// 1/l/I. 32 symbols × 25 = 125 bits.
const passwordAlphabet = "abcdefghijkmnpqrstuvwxyz23456789"

// NewPassword returns a random archive password: five groups of five
// lower-case letters and digits, e.g. "k7wq3-mz9rt-…", long enough that the
// weak key derivation the zip format fixes (PBKDF2, 1000 rounds) does not
// matter, and easy to read out on the phone.
func NewPassword() (string, error) {
	var b strings.Builder
	max := big.NewInt(int64(len(passwordAlphabet)))
	for i := range 25 {
		if i > 0 && i%5 == 0 {
			b.WriteByte('-')
		}
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", err
		}
		b.WriteByte(passwordAlphabet[n.Int64()])
	}
	return b.String(), nil
}
