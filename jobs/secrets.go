package jobs

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/storage"
)

// What the secret key seals or derives, one purpose each, so that a value
// made for one can never be passed off as another.
const (
	purposeDownloadLink   = "download-link"
	purposeAckLink        = "ack-link"
	purposeExportPassword = "export-password"
	purposePresignedURL   = "presigned-url"
)

// Link tokens (download links, acknowledgement links) are bearer
// credentials. The database keeps only their SHA-256, to find the row a
// link names, and a recipe: "d:<key id>:<salt>", from which the token is
// rebuilt as a keyed MAC over the row's identity, so a resent email
// carries the same link. Tokens issued before this scheme are kept sealed,
// "s:<sealed>", until they expire.
func (p *Pipeline) newTokenSecret() (string, error) {
	var salt [16]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return "", err
	}
	return "d:" + p.keys.Primary() + ":" + base64.RawURLEncoding.EncodeToString(salt[:]), nil
}

// token rebuilds the token a recipe stands for. parts bind it to its row.
func (p *Pipeline) token(secret, purpose string, parts ...string) (string, error) {
	kind, rest, _ := strings.Cut(secret, ":")
	switch kind {
	case "d":
		id, salt, ok := strings.Cut(rest, ":")
		raw, err := base64.RawURLEncoding.DecodeString(salt)
		if !ok || err != nil {
			return "", fmt.Errorf("malformed %s recipe", purpose)
		}
		data := make([][]byte, 0, len(parts)+1)
		for _, part := range parts {
			data = append(data, []byte(part))
		}
		mac, err := p.keys.MAC(id, purpose, append(data, raw)...)
		if err != nil {
			return "", fmt.Errorf("%s: %w", purpose, err)
		}
		return base64.RawURLEncoding.EncodeToString(mac), nil
	case "s":
		plain, err := p.keys.Open(purpose, rest, []byte(strings.Join(parts, "\x00")))
		if err != nil {
			return "", fmt.Errorf("%s: %w", purpose, err)
		}
		return string(plain), nil
	}
	return "", fmt.Errorf("no %s recipe", purpose)
}

// newToken makes a fresh token: its recipe and the hash to store.
func (p *Pipeline) newToken(purpose string, parts ...string) (secret string, hash []byte, err error) {
	if secret, err = p.newTokenSecret(); err != nil {
		return "", nil, err
	}
	token, err := p.token(secret, purpose, parts...)
	if err != nil {
		return "", nil, err
	}
	return secret, tokenHash(token), nil
}

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// linkURL is where an export's link points: the presigned URL or the
// service's download page; "" for an attachment (or a deleted presign).
func (p *Pipeline) linkURL(e *storage.Export) (string, error) {
	switch {
	case e.LinkURLSealed != "":
		u, err := p.keys.Open(purposePresignedURL, e.LinkURLSealed, []byte(e.RequestID))
		if err != nil {
			return "", fmt.Errorf("download link of %s: %w", e.RequestID, err)
		}
		return string(u), nil
	case e.LinkSecret != "":
		token, err := p.token(e.LinkSecret, purposeDownloadLink, e.RequestID)
		if err != nil {
			return "", fmt.Errorf("download link of %s: %w", e.RequestID, err)
		}
		return p.DownloadURL(token), nil
	}
	return "", nil
}

// ackToken rebuilds the token of a notice's acknowledgement link.
func (p *Pipeline) ackToken(n *storage.Notice) (string, error) {
	return p.token(n.AckSecret, purposeAckLink, n.RequestID, n.Recipient)
}

// SealLegacySecrets seals what rows written before secrets were sealed
// still hold in plain: archive passwords, presigned URLs and link tokens
// (whose hashes the migration already took). The export sweep calls it;
// it returns how many rows it sealed.
func (p *Pipeline) SealLegacySecrets(ctx context.Context) (int, error) {
	const batch = 500
	sealed := 0
	for {
		exports, err := storage.LegacyExportSecrets(ctx, p.db.Pool, batch)
		if err != nil {
			return sealed, err
		}
		notices, err := storage.LegacyAckTokens(ctx, p.db.Pool, batch)
		if err != nil {
			return sealed, err
		}
		if len(exports)+len(notices) == 0 {
			return sealed, nil
		}
		err = p.db.InTx(ctx, func(tx pgx.Tx) error {
			for _, l := range exports {
				aad := []byte(l.RequestID)
				var password, secret, presigned string
				var err error
				if l.Password != "" {
					if password, err = p.keys.Seal(purposeExportPassword, []byte(l.Password), aad); err != nil {
						return err
					}
				}
				if l.LinkToken != "" {
					if secret, err = p.keys.Seal(purposeDownloadLink, []byte(l.LinkToken), aad); err != nil {
						return err
					}
					secret = "s:" + secret
				} else if l.LinkURL != "" {
					if presigned, err = p.keys.Seal(purposePresignedURL, []byte(l.LinkURL), aad); err != nil {
						return err
					}
				}
				if err := storage.SealExportSecrets(ctx, tx, l.RequestID, password, secret, presigned); err != nil {
					return err
				}
			}
			for _, n := range notices {
				s, err := p.keys.Seal(purposeAckLink, []byte(n[2]), []byte(n[0]+"\x00"+n[1]))
				if err != nil {
					return err
				}
				if err := storage.SealAckToken(ctx, tx, n[0], n[1], "s:"+s); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return sealed, err
		}
		sealed += len(exports) + len(notices)
	}
}
