package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/redis/go-redis/v9"

	"github.com/datarights/datarights/demo"
	"github.com/datarights/datarights/storage/mysqltest"
	"github.com/datarights/datarights/storage/s3test"
)

// allStores is the demo bank (Postgres) plus a loyalty database (MariaDB),
// session and recommendation cache (Redis) and document bucket (versitygw),
// every one holding data of several demo customers, keyed by user_id. The
// loyalty database keeps members (correctable email), points (anonymized on
// delete: the points ledger must still add up) and marketing preferences (a
// consent table); the cache keeps recommendations for personalised ads
// only, so withdrawing that consent deletes them.
type allStores struct {
	mysqlDSN  string
	redis     *redis.Client
	namespace string
	s3        *s3test.Server
	bucket    string
}

var allStoreUsers = []int{1, 2, 3, 10, 13}

func setupAllStores(t *testing.T) (*e2e, *allStores) {
	t.Helper()
	e, a := prepareAllStores(t)
	e.start()
	return e, a
}

// prepareAllStores is setupAllStores without starting the service, so a
// test can add to the configuration first.
func prepareAllStores(t *testing.T) (*e2e, *allStores) {
	t.Helper()
	ctx := context.Background()
	var nonce [4]byte
	_, _ = rand.Read(nonce[:])
	a := &allStores{
		mysqlDSN:  mysqltest.NewDatabase(t, "loyalty"),
		namespace: "t" + hex.EncodeToString(nonce[:]),
		s3:        s3test.NewServer(t),
		bucket:    "documents",
	}

	db := mysqltest.Open(t, a.mysqlDSN)
	for _, ddl := range []string{
		`CREATE TABLE members (user_id VARCHAR(64) PRIMARY KEY, nickname VARCHAR(100), email VARCHAR(200))`,
		`CREATE TABLE points (id INT AUTO_INCREMENT PRIMARY KEY, user_id VARCHAR(64) NOT NULL,
			points INT NOT NULL, reason VARCHAR(200) NOT NULL)`,
		`CREATE TABLE marketing_prefs (user_id VARCHAR(64) NOT NULL, purpose VARCHAR(64) NOT NULL, opted_in BOOLEAN NOT NULL,
			PRIMARY KEY (user_id, purpose))`,
	} {
		if _, err := db.ExecContext(ctx, ddl); err != nil {
			t.Fatal(err)
		}
	}
	a.redis = redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() {
		keys, _ := a.redis.Keys(context.Background(), a.namespace+":*").Result()
		if len(keys) > 0 {
			a.redis.Del(context.Background(), keys...)
		}
		a.redis.Close()
	})
	a.s3.CreateBucket(t, a.bucket)
	client := a.s3.Client(t)
	for _, n := range allStoreUsers {
		user := demo.UserID(n)
		if _, err := db.ExecContext(ctx, "INSERT INTO members VALUES (?, ?, ?)", user, "会员"+user, demo.Email(n)); err != nil {
			t.Fatal(err)
		}
		for _, purpose := range []string{"personalised_ads", "marketing_email"} {
			if _, err := db.ExecContext(ctx, "INSERT INTO marketing_prefs VALUES (?, ?, TRUE)", user, purpose); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.redis.Set(ctx, a.namespace+":reco:"+user, "基金,理财,信用卡", 0).Err(); err != nil {
			t.Fatal(err)
		}
		for i := range n%3 + 1 {
			if _, err := db.ExecContext(ctx, "INSERT INTO points (user_id, points, reason) VALUES (?, ?, ?)", user, 10*(i+1), "消费积分"); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.redis.HSet(ctx, a.namespace+":session:"+user, "device", "iPhone", "city", "深圳").Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(a.bucket), Key: aws.String("users/" + user + "/id-card.txt"),
			Body: strings.NewReader("scan of " + user)}); err != nil {
			t.Fatal(err)
		}
	}

	accessEnv, secretEnv := "DR_TEST_S3_ACCESS_"+a.namespace, "DR_TEST_S3_SECRET_"+a.namespace
	os.Setenv(accessEnv, a.s3.AccessKey()) //nolint:errcheck // unique names: parallel tests do not collide
	os.Setenv(secretEnv, a.s3.SecretKey()) //nolint:errcheck
	yaml := fmt.Sprintf(`  - name: loyalty
    kind: mysql
    dsn: %q
    products: [webank]
    key: user_id
    consent:
      table: marketing_prefs
      column: user_id
      purpose_column: purpose
      granted_column: opted_in
    tables:
      - name: members
        column: user_id
        category: profile
        correctable:
          - {field: email, column: email, validate: email}
      - name: points
        column: user_id
        category: loyalty
        order_by: id
        on_delete: anonymize
        anonymize:
          - {column: user_id, strategy: random}
      - name: marketing_prefs
        column: user_id
        category: consents
        order_by: purpose
  - name: sessions
    kind: redis
    dsn: redis://127.0.0.1:6379/0
    products: [webank]
    key: user_id
    keys:
      - pattern: "%s:session:{user_id}"
        category: sessions
      - pattern: "%s:reco:{user_id}"
        category: recommendations
        purposes: [personalised_ads]
  - name: documents
    kind: s3
    products: [webank]
    key: user_id
    s3:
      bucket: %s
      prefix: "users/{user_id}/"
      endpoint: %s
      region: us-east-1
      path_style: true
      access_key_env: %s
      secret_key_env: %s
      category: documents
`, a.mysqlDSN, a.namespace, a.namespace, a.bucket, a.s3.Endpoint(), accessEnv, secretEnv)
	e := setupE2E(t, false, yaml)
	// Withdrawals of these consents reach the loyalty database and the
	// cache too.
	e.editConfig(t, "      products: [webank]\n      stores: [demo_bank]\n    - name: location",
		"      products: [webank]\n      stores: [demo_bank, loyalty, sessions]\n    - name: location")
	e.editConfig(t, "      stores: [demo_bank]\n\n", "      stores: [demo_bank, loyalty]\n\n")
	return e, a
}

// checkBankOnly checks the bank's four tables hold only userID's rows.
func (e *e2e) checkBankOnly(files map[string][]byte, userID string) {
	e.t.Helper()
	for name, raw := range files {
		if !strings.HasPrefix(name, "data/demo_bank/") || !strings.HasSuffix(name, ".json") {
			continue
		}
		var rows []map[string]any
		if err := json.Unmarshal(raw, &rows); err != nil {
			e.t.Fatal(err)
		}
		for _, row := range rows {
			if row["user_id"] != userID {
				e.t.Errorf("%s: row of %v leaked", name, row["user_id"])
			}
		}
	}
}
