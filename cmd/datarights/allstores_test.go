package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/redis/go-redis/v9"

	"github.com/datarights/datarights/demo"
	"github.com/datarights/datarights/storage/mysqltest"
	"github.com/datarights/datarights/storage/s3test"
)

// allStores is the demo bank (Postgres) plus a loyalty database (MariaDB),
// session cache (Redis) and document bucket (versitygw), every one holding
// data of several demo customers, keyed by user_id.
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
	if _, err := db.ExecContext(ctx, `CREATE TABLE points (id INT AUTO_INCREMENT PRIMARY KEY, user_id VARCHAR(64) NOT NULL,
		points INT NOT NULL, reason VARCHAR(200) NOT NULL)`); err != nil {
		t.Fatal(err)
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
    tables:
      - name: points
        column: user_id
        category: loyalty
        order_by: id
  - name: sessions
    kind: redis
    dsn: redis://127.0.0.1:6379/0
    products: [webank]
    key: user_id
    keys:
      - pattern: "%s:session:{user_id}"
        category: sessions
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
`, a.mysqlDSN, a.namespace, a.bucket, a.s3.Endpoint(), accessEnv, secretEnv)
	return setupE2E(t, true, yaml), a
}

// holdings counts what every store holds for each demo user.
func (a *allStores) holdings(t *testing.T) map[string]map[string]int {
	t.Helper()
	ctx := context.Background()
	db := mysqltest.Open(t, a.mysqlDSN)
	client := a.s3.Client(t)
	out := map[string]map[string]int{}
	for _, n := range allStoreUsers {
		user := demo.UserID(n)
		h := map[string]int{}
		var points int
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM points WHERE user_id = ?", user).Scan(&points); err != nil {
			t.Fatal(err)
		}
		h["loyalty"] = points
		exists, err := a.redis.Exists(ctx, a.namespace+":session:"+user).Result()
		if err != nil {
			t.Fatal(err)
		}
		h["sessions"] = int(exists)
		list, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(a.bucket), Prefix: aws.String("users/" + user + "/")})
		if err != nil {
			t.Fatal(err)
		}
		h["documents"] = len(list.Contents)
		out[user] = h
	}
	return out
}

// TestCopyAcrossAllStores: a copy request named by email gathers the
// customer's data from Postgres, MariaDB, Redis and S3 (the user_id found
// through the bank's lookup), and nothing of anyone else.
func TestCopyAcrossAllStores(t *testing.T) {
	t.Parallel()
	e, a := setupAllStores(t)
	ticket := copyTicket("demo-user-1")
	ticket["subject"] = map[string]any{"identities": map[string]string{"email": demo.Email(1)}}
	code, body := e.call("POST", "/api/v1/requests", testToken, ticket)
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	done := e.waitStatus(body["id"].(string), "completed", 90*time.Second)
	if !hasAction(done, "identity.resolved") {
		t.Errorf("no identity resolution: %v", auditActions(done))
	}
	msg := e.smtp.WaitForMessages(t, 1, 30*time.Second)[0]
	data := msg.Attachments[0].Data
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	rowsOf := func(name string) []map[string]any {
		for _, f := range zr.File {
			if f.Name == name {
				rc, _ := f.Open()
				raw, _ := io.ReadAll(rc)
				rc.Close()
				var rows []map[string]any
				if err := json.Unmarshal(raw, &rows); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				return rows
			}
		}
		var names []string
		for _, f := range zr.File {
			names = append(names, f.Name)
		}
		t.Fatalf("archive has no %s: %v", name, names)
		return nil
	}
	want := a.holdings(t)["demo-user-1"]
	points := rowsOf("data/loyalty/points.json")
	if len(points) != want["loyalty"] {
		t.Errorf("loyalty rows = %d, want %d", len(points), want["loyalty"])
	}
	for _, row := range points {
		if row["user_id"] != "demo-user-1" {
			t.Errorf("loyalty row of %v leaked", row["user_id"])
		}
	}
	for _, row := range rowsOf("data/sessions/" + sessionDataset(a) + ".json") {
		if key := row["key"].(string); key != a.namespace+":session:demo-user-1" {
			t.Errorf("session key %s leaked", key)
		}
	}
	docs := rowsOf("data/documents/documents.json")
	if len(docs) != 1 || docs[0]["key"] != "users/demo-user-1/id-card.txt" {
		t.Errorf("documents = %v", docs)
	}
	e.checkBankOnly(zr, "demo-user-1")
}

// sessionDataset is the Redis connector's dataset name for the pattern.
func sessionDataset(a *allStores) string {
	return a.namespace + "_session_user_id"
}

// checkBankOnly checks the bank's four tables hold only userID's rows.
func (e *e2e) checkBankOnly(zr *zip.Reader, userID string) {
	e.t.Helper()
	for _, f := range zr.File {
		if !strings.HasPrefix(f.Name, "data/demo_bank/") {
			continue
		}
		rc, _ := f.Open()
		raw, _ := io.ReadAll(rc)
		rc.Close()
		var rows []map[string]any
		if err := json.Unmarshal(raw, &rows); err != nil {
			e.t.Fatal(err)
		}
		for _, row := range rows {
			if row["user_id"] != userID {
				e.t.Errorf("%s: row of %v leaked", f.Name, row["user_id"])
			}
		}
	}
}

// TestDeleteAcrossAllStores deletes a customer everywhere and checks, store
// by store and customer by customer, that only that customer's data is gone.
func TestDeleteAcrossAllStores(t *testing.T) {
	t.Parallel()
	e, a := setupAllStores(t)
	before := a.holdings(t)
	bankBefore := map[string]map[string]int64{}
	for _, n := range allStoreUsers {
		counts, err := demo.Counts(context.Background(), e.bankURL, demo.UserID(n))
		if err != nil {
			t.Fatal(err)
		}
		bankBefore[demo.UserID(n)] = counts
	}

	ticket := copyTicket("demo-user-1")
	ticket["type"] = "delete"
	code, body := e.call("POST", "/api/v1/requests", testToken, ticket)
	if code != http.StatusCreated {
		t.Fatalf("submit = %d %v", code, body)
	}
	done := e.waitStatus(body["id"].(string), "completed", 90*time.Second)
	if n := len(done["tasks"].([]any)); n != 4 {
		t.Fatalf("%d store tasks, want 4", n)
	}

	after := a.holdings(t)
	for user, h := range after {
		for store, n := range h {
			want := before[user][store]
			if user == "demo-user-1" {
				want = 0
			}
			if n != want {
				t.Errorf("%s in %s: %d after the delete, want %d", user, store, n, want)
			}
		}
		counts, err := demo.Counts(context.Background(), e.bankURL, user)
		if err != nil {
			t.Fatal(err)
		}
		for table, n := range counts {
			want := bankBefore[user][table]
			if user == "demo-user-1" {
				want = 0
			}
			if n != want {
				t.Errorf("%s in bank %s: %d after the delete, want %d", user, table, n, want)
			}
		}
	}
}
