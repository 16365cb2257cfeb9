package jobs_test

import (
	"context"
	"crypto/sha256"
	"path/filepath"
	"strings"
	"testing"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/demo"
	"github.com/datarights/datarights/exporters"
	"github.com/datarights/datarights/exporters/smtptest"
	"github.com/datarights/datarights/jobs"
	"github.com/datarights/datarights/keyring"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage/storagetest"
)

// TestLegacySecretsAreSealedAndKeepWorking: rows written before secrets
// were sealed (a plain archive password, download token and
// acknowledgement token) are sealed by SealLegacySecrets; the plain
// columns are emptied, and the old password, link and acknowledgement
// link still work.
func TestLegacySecretsAreSealedAndKeepWorking(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, serviceURL := storagetest.NewDB(t, "legacy")
	yaml := demo.ConfigYAML(serviceURL, "postgres://unused/bank", filepath.Join(t.TempDir(), "data"))
	cfg, err := config.Parse("legacy.yaml", []byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Keys = keyring.ForTest()
	mailer, err := exporters.NewMailer(smtptest.NewServer(t).URL(), cfg.SMTP.From, "")
	if err != nil {
		t.Fatal(err)
	}
	p, err := jobs.New(jobs.Config{DB: db, Settings: cfg, Mailer: mailer})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.NewClient(false); err != nil {
		t.Fatal(err)
	}
	r, _, err := p.SubmitStaff(ctx, "alice", rights.Intake{Product: "webank", Type: rights.TypeCopy,
		Identities: map[string]string{"user_id": "demo-user-1"}, DeliveryEmail: "demo-user-1@example.com",
		Relation: rights.RelationSelf, Verification: &rights.Verification{Method: "face_check", Reference: "FC-1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const (
		password  = "abcde-fghij-klmno-pqrst-uvwxy"
		linkToken = "legacy-download-token-0123456789abcdef"
		ackToken  = "legacy-ack-token-0123456789abcdef"
	)
	hash := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
	// What 0008 wrote, and 0012 hashed.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO exports (request_id, location, file_name, bytes, sha256, created_at, encryption,
			password, delivery, link_token, link_url, link_token_hash, expires_at)
		VALUES ($1, 'x.zip', 'x.zip', 10, '', now(), 'aes', $2, 'link', $3, 'https://old/downloads/'||$3, $4, now() + interval '1 day')`,
		r.ID, password, linkToken, hash(linkToken)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO recipient_notices (request_id, recipient, channel, status, ack_token, ack_token_hash, created_at)
		VALUES ($1, 'credit_bureau', 'email', 'sent', $2, $3, now())`, r.ID, ackToken, hash(ackToken)); err != nil {
		t.Fatal(err)
	}

	n, err := p.SealLegacySecrets(ctx)
	if err != nil || n != 2 {
		t.Fatalf("sealed %d rows, %v; want 2", n, err)
	}
	if n, err := p.SealLegacySecrets(ctx); err != nil || n != 0 {
		t.Fatalf("second run sealed %d rows, %v", n, err)
	}
	var plain int
	if err := db.Pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM exports WHERE password IS NOT NULL OR link_token IS NOT NULL OR link_url <> '')
			+ (SELECT count(*) FROM recipient_notices WHERE ack_token IS NOT NULL)`).Scan(&plain); err != nil {
		t.Fatal(err)
	}
	if plain != 0 {
		t.Errorf("%d rows still hold plain secrets", plain)
	}

	view, err := p.Export(ctx, r.ID)
	if err != nil || !strings.HasSuffix(view.URL, "/downloads/"+linkToken) {
		t.Errorf("the old link is now %v (%v)", view, err)
	}
	if n, err := p.NoticeForToken(ctx, ackToken); err != nil || n.Recipient != "credit_bureau" {
		t.Errorf("the old acknowledgement link finds %v, %v", n, err)
	}
	shown, err := p.RevealPassword(ctx, r.ID, "staff", rights.ActorStaff("alice"))
	if err != nil || shown.Password != password {
		t.Errorf("the old password is now %v, %v", shown, err)
	}
}
