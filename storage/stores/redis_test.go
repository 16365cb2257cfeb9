package stores_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage/stores"
)

// redisURL is the test server: TEST_REDIS_URL, or a local one.
func redisURL() string {
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// redisNamespace returns a client to the test server and a key prefix of the
// test's own, so tests share the server in parallel. Every key under the
// prefix is deleted when the test ends. The test fails if there is no server.
func redisNamespace(t *testing.T) (*redis.Client, string) {
	t.Helper()
	opts, err := redis.ParseURL(redisURL())
	if err != nil {
		t.Fatalf("TEST_REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		t.Fatalf("Redis is not reachable at %s (%v); start one with\n"+
			"\tredis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no\n"+
			"or set TEST_REDIS_URL", opts.Addr, err)
	}
	ns := "t" + rand.Text()
	t.Cleanup(func() {
		defer rdb.Close()
		ctx := context.WithoutCancel(t.Context())
		if keys := redisKeys(t, rdb, ns); len(keys) > 0 {
			if err := rdb.Unlink(ctx, keys...).Err(); err != nil {
				t.Errorf("clean up %s: %v", ns, err)
			}
		}
	})
	return rdb, ns
}

// redisKeys lists every key under the namespace, sorted.
func redisKeys(t *testing.T, rdb *redis.Client, ns string) []string {
	t.Helper()
	var keys []string
	iter := rdb.Scan(context.WithoutCancel(t.Context()), 0, ns+":*", 1000).Iterator()
	for iter.Next(context.WithoutCancel(t.Context())) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

func newRedisConnector(t *testing.T, cfg config.Store) *stores.Redis {
	t.Helper()
	r, err := stores.NewRedis(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// redisStore is a store with a session string, a profile hash and carts
// (lists, sets and sorted sets) found by matching, all under ns.
func redisStore(ns string) config.Store {
	return config.Store{
		Name: "cache", Kind: "redis", DSN: redisURL(), Key: "user_id",
		Keys: []config.RedisKey{
			{Pattern: ns + ":session:{user_id}", Category: "sessions"},
			{Pattern: ns + ":profile:{user_id}", Category: "profile"},
			{Pattern: ns + ":cart:{user_id}:*", Match: true, Category: "carts"},
		},
	}
}

// redisLookalikes are user ids that "u-1" is a prefix of.
var redisLookalikes = []string{"u-10", "u-11", "u-12", "u-13", "u-14", "u-15", "u-16", "u-17", "u-18", "u-19"}

// seedRedisUser writes the keys redisStore finds for id and returns the rows
// an export of id should hold, per dataset.
func seedRedisUser(t *testing.T, rdb *redis.Client, ns, id string) map[string][]string {
	t.Helper()
	ctx := t.Context()
	session := ns + ":session:" + id
	profile := ns + ":profile:" + id
	items := ns + ":cart:" + id + ":items"
	tags := ns + ":cart:" + id + ":tags"
	scores := ns + ":cart:" + id + ":scores"
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, session, "token-"+id, time.Hour)
		p.HSet(ctx, profile, "name", "name-"+id, "email", id+"@example.com")
		p.RPush(ctx, items, "a-"+id, "b-"+id, "c-"+id)
		p.SAdd(ctx, tags, "x-"+id, "y-"+id)
		p.ZAdd(ctx, scores, redis.Z{Score: 2, Member: "q-" + id}, redis.Z{Score: 1.5, Member: "p-" + id})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]string{
		"session": {redisRowText(session, "string", nil, "token-"+id)},
		"profile": redisSorted(
			redisRowText(profile, "hash", "name", "name-"+id),
			redisRowText(profile, "hash", "email", id+"@example.com"),
		),
		"cart": redisSorted(
			redisRowText(items, "list", "0", "a-"+id),
			redisRowText(items, "list", "1", "b-"+id),
			redisRowText(items, "list", "2", "c-"+id),
			redisRowText(tags, "set", nil, "x-"+id),
			redisRowText(tags, "set", nil, "y-"+id),
			redisRowText(scores, "zset", "1.5", "p-"+id),
			redisRowText(scores, "zset", "2", "q-"+id),
		),
	}
}

// rowText is an exported row without its ttl, for comparing.
func redisRowText(key, typ string, field any, value string) string {
	return fmt.Sprintf("%v|%v|%v|%v", key, typ, field, value)
}

func redisSorted(s ...string) []string {
	slices.Sort(s)
	return s
}

// rowTexts returns the rows of d as rowText, sorted.
func redisRowTexts(d *memDataset) []string {
	var out []string
	for _, row := range d.rows {
		out = append(out, fmt.Sprintf("%v|%v|%v|%v", row[0], row[1], row[2], row[3]))
	}
	slices.Sort(out)
	return out
}

func TestRedisExportReturnsOnlyTheSubjectsData(t *testing.T) {
	t.Parallel()
	rdb, ns := redisNamespace(t)
	want := map[string]map[string][]string{}
	for _, id := range append([]string{"u-1", "u-2"}, redisLookalikes...) {
		want[id] = seedRedisUser(t, rdb, ns, id)
	}
	r := newRedisConnector(t, redisStore(ns))

	for _, id := range []string{"u-1", "u-15"} {
		sink := &memSink{}
		report, err := r.Export(t.Context(), subject("user_id", id, "email", "someone@example.com"), sink)
		if err != nil {
			t.Fatal(err)
		}
		if !report.Resolved {
			t.Fatalf("export %s: not resolved", id)
		}
		wantDatasets := []struct{ part, name, category string }{
			{"session", strings.ToLower(ns) + "_session_user_id", "sessions"},
			{"profile", strings.ToLower(ns) + "_profile_user_id", "profile"},
			{"cart", strings.ToLower(ns) + "_cart_user_id", "carts"},
		}
		if len(report.Datasets) != len(wantDatasets) || len(sink.datasets) != len(wantDatasets) {
			t.Fatalf("export %s: %d reported and %d written datasets, want %d", id, len(report.Datasets), len(sink.datasets), len(wantDatasets))
		}
		for i, wd := range wantDatasets {
			got, written := report.Datasets[i], sink.datasets[i]
			if got.Name != wd.name || got.Category != wd.category || written.name != wd.name || !written.closed {
				t.Errorf("export %s: dataset %d = %s (%s), written %s (closed %v); want %s (%s)",
					id, i, got.Name, got.Category, written.name, written.closed, wd.name, wd.category)
			}
			if want := []string{"key", "type", "field", "value", "ttl_seconds"}; !slices.Equal(written.columns, want) {
				t.Errorf("export %s: %s columns = %v, want %v", id, wd.name, written.columns, want)
			}
			if got, want := redisRowTexts(written), want[id][wd.part]; !slices.Equal(got, want) {
				t.Errorf("export %s: %s rows =\n\t%v\nwant\n\t%v", id, wd.name, got, want)
			}
			if got.Rows != int64(len(written.rows)) {
				t.Errorf("export %s: %s reports %d rows, wrote %d", id, wd.name, got.Rows, len(written.rows))
			}
		}

		// The session expires in an hour; nothing else expires.
		for _, ttl := range sink.datasets[0].column(t, "ttl_seconds") {
			if secs, ok := ttl.(int64); !ok || secs < 3500 || secs > 3600 {
				t.Errorf("export %s: session ttl_seconds = %#v, want about 3600", id, ttl)
			}
		}
		for _, d := range sink.datasets[1:] {
			for _, ttl := range d.column(t, "ttl_seconds") {
				if ttl != nil {
					t.Errorf("export %s: %s ttl_seconds = %#v, want nil", id, d.name, ttl)
				}
			}
		}
		// Keys are exported in order, lists by index, sorted sets by score.
		cart := sink.datasets[2]
		if keys := cart.column(t, "key"); !slices.IsSortedFunc(keys, func(a, b any) int { return strings.Compare(a.(string), b.(string)) }) {
			t.Errorf("export %s: cart keys not sorted: %v", id, keys)
		}
		var items, scores []any
		for _, row := range cart.rows {
			switch row[1] {
			case "list":
				items = append(items, row[3])
			case "zset":
				scores = append(scores, row[3])
			}
		}
		if want := []any{"a-" + id, "b-" + id, "c-" + id}; !slices.Equal(items, want) {
			t.Errorf("export %s: list = %v, want %v", id, items, want)
		}
		if want := []any{"p-" + id, "q-" + id}; !slices.Equal(scores, want) {
			t.Errorf("export %s: sorted set = %v, want %v", id, scores, want)
		}
	}
}

func TestRedisExportStreamsBigKeys(t *testing.T) {
	t.Parallel()
	rdb, ns := redisNamespace(t)
	ctx := t.Context()
	const (
		fields  = 2000 // far more than one HSCAN page of a hash table
		members = 1500
		items   = 2500 // three LRANGE pages
		scored  = 1200
		entries = 1200 // two XRANGE pages
	)
	hash := ns + ":big:u-1:hash"
	hashArgs := make([]any, 0, 2*fields)
	for i := range fields {
		hashArgs = append(hashArgs, "f"+strconv.Itoa(i), "v"+strconv.Itoa(i))
	}
	setArgs := make([]any, members)
	for i := range members {
		setArgs[i] = "m" + strconv.Itoa(i)
	}
	listArgs := make([]any, items)
	for i := range items {
		listArgs[i] = "e" + strconv.Itoa(i)
	}
	zs := make([]redis.Z, scored)
	for i := range scored {
		zs[i] = redis.Z{Score: float64(scored - i), Member: "z" + strconv.Itoa(i)}
	}
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, hash, hashArgs...)
		p.SAdd(ctx, ns+":big:u-1:set", setArgs...)
		p.RPush(ctx, ns+":big:u-1:list", listArgs...)
		p.ZAdd(ctx, ns+":big:u-1:zset", zs...)
		for i := range entries {
			p.XAdd(ctx, &redis.XAddArgs{Stream: ns + ":big:u-1:stream", ID: "1-" + strconv.Itoa(i+1), Values: []any{"n", strconv.Itoa(i)}})
		}
		p.HSet(ctx, ns+":big:u-10:hash", "f0", "not u-1's")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r := newRedisConnector(t, config.Store{
		Name: "cache", Kind: "redis", DSN: redisURL(), Key: "user_id",
		Keys: []config.RedisKey{{Pattern: ns + ":big:{user_id}:*", Match: true}},
	})

	sink := &memSink{}
	report, err := r.Export(ctx, subject("user_id", "u-1"), sink)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(fields + members + items + scored + entries); !report.Resolved || report.Rows() != want {
		t.Fatalf("export: resolved %v, %d rows; want %d", report.Resolved, report.Rows(), want)
	}
	perType := map[string]map[string]string{} // type → field or value → value
	counts := map[string]int{}
	for _, row := range sink.datasets[0].rows {
		typ := row[1].(string)
		counts[typ]++
		if perType[typ] == nil {
			perType[typ] = map[string]string{}
		}
		key := fmt.Sprint(row[2])
		if typ == "set" {
			key = row[3].(string)
		}
		perType[typ][key] = row[3].(string)
	}
	for i := range fields {
		if got := perType["hash"]["f"+strconv.Itoa(i)]; got != "v"+strconv.Itoa(i) {
			t.Fatalf("hash field f%d = %q", i, got)
		}
	}
	for i := range items {
		if got := perType["list"][strconv.Itoa(i)]; got != "e"+strconv.Itoa(i) {
			t.Fatalf("list element %d = %q", i, got)
		}
	}
	for i := range scored {
		if got := perType["zset"][strconv.Itoa(scored-i)]; got != "z"+strconv.Itoa(i) {
			t.Fatalf("zset score %d = %q", scored-i, got)
		}
	}
	for i := range entries {
		var values map[string]string
		if err := json.Unmarshal([]byte(perType["stream"]["1-"+strconv.Itoa(i+1)]), &values); err != nil || values["n"] != strconv.Itoa(i) {
			t.Fatalf("stream entry %d = %v (%v)", i+1, values, err)
		}
	}
	// Every element once: HSCAN and SSCAN pages neither repeat nor skip.
	if counts["hash"] != fields || len(perType["set"]) != members || counts["set"] != members || counts["stream"] != entries {
		t.Errorf("rows per type = %v, want %d hash, %d set and %d stream rows", counts, fields, members, entries)
	}
}

func TestRedisGlobCharactersInTheIdentity(t *testing.T) {
	t.Parallel()
	rdb, ns := redisNamespace(t)
	ctx := t.Context()
	// Each id has one key; some ids are glob patterns that, unescaped, would
	// match others' keys.
	ids := []string{"u-1", "u-1*", "u-[1]", `u-\`, "u-*1", "u-1?"}
	ids = append(ids, redisLookalikes...)
	for _, id := range ids {
		if err := rdb.Set(ctx, ns+":cart:"+id+":items", "of "+id, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	r := newRedisConnector(t, config.Store{
		Name: "cache", Kind: "redis", DSN: redisURL(), Key: "user_id",
		Keys: []config.RedisKey{{Pattern: ns + ":cart:{user_id}:*", Match: true}},
	})

	for _, id := range ids {
		sink := &memSink{}
		report, err := r.Export(ctx, subject("user_id", id), sink)
		if err != nil {
			t.Fatal(err)
		}
		if !report.Resolved || len(sink.datasets) != 1 {
			t.Fatalf("export %q: resolved %v, %d datasets", id, report.Resolved, len(sink.datasets))
		}
		if got := sink.datasets[0].column(t, "value"); !slices.Equal(got, []any{"of " + id}) {
			t.Errorf("export %q = %v, want only its own key", id, got)
		}
	}

	// Patterns that match every id above, and ids nobody has.
	before := redisKeys(t, rdb, ns)
	for _, id := range []string{"*", "u-*", "u-?", "u-1[0-9]", "u-[1-2]*", `u-\*`, "u-1\\", "U-1", "u-"} {
		report, err := r.Export(ctx, subject("user_id", id), &memSink{})
		if err != nil || report.Resolved || len(report.Datasets) != 0 {
			t.Errorf("export %q: resolved %v with %d datasets, error %v; want nothing", id, report.Resolved, len(report.Datasets), err)
		}
		report, err = r.Delete(ctx, subject("user_id", id))
		if err != nil || report.Resolved || len(report.Datasets) != 0 {
			t.Errorf("delete %q: resolved %v with %d datasets, error %v; want nothing", id, report.Resolved, len(report.Datasets), err)
		}
	}
	if after := redisKeys(t, rdb, ns); !slices.Equal(before, after) {
		t.Errorf("deleting unknown ids changed the keys: before %v, after %v", before, after)
	}

	report, err := r.Delete(ctx, subject("user_id", "u-1*"))
	if err != nil || !report.Resolved || report.Rows() != 1 {
		t.Fatalf("delete u-1*: %+v, %v; want one key", report, err)
	}
	want := slices.DeleteFunc(before, func(k string) bool { return k == ns+":cart:u-1*:items" })
	if after := redisKeys(t, rdb, ns); !slices.Equal(after, want) {
		t.Errorf("delete u-1* left %v, want %v", after, want)
	}
}

func TestRedisDeleteRemovesOnlyTheSubjectsKeys(t *testing.T) {
	t.Parallel()
	rdb, ns := redisNamespace(t)
	for _, id := range append([]string{"u-1", "u-2"}, redisLookalikes...) {
		seedRedisUser(t, rdb, ns, id)
	}
	r := newRedisConnector(t, redisStore(ns))

	for _, id := range []string{"u-1", "u-12"} {
		before := redisKeys(t, rdb, ns)
		report, err := r.Delete(t.Context(), subject("user_id", id))
		if err != nil {
			t.Fatal(err)
		}
		lower := strings.ToLower(ns)
		want := []rights.DatasetReport{
			{Name: lower + "_session_user_id", Category: "sessions", Rows: 1, Deleted: 1},
			{Name: lower + "_profile_user_id", Category: "profile", Rows: 1, Deleted: 1},
			{Name: lower + "_cart_user_id", Category: "carts", Rows: 3, Deleted: 3},
		}
		if !report.Resolved || !slices.Equal(report.Datasets, want) {
			t.Errorf("delete %s = %+v, want resolved with %+v", id, report, want)
		}

		wantKeys := slices.DeleteFunc(slices.Clone(before), func(k string) bool {
			return k == ns+":session:"+id || k == ns+":profile:"+id || strings.HasPrefix(k, ns+":cart:"+id+":")
		})
		if len(before)-len(wantKeys) != 5 {
			t.Fatalf("test setup: %s has %d keys, want 5", id, len(before)-len(wantKeys))
		}
		if after := redisKeys(t, rdb, ns); !slices.Equal(after, wantKeys) {
			t.Errorf("delete %s left\n\t%v\nwant\n\t%v", id, after, wantKeys)
		}

		// Again, as a retried task would: nothing is found, nothing changes.
		report, err = r.Delete(t.Context(), subject("user_id", id))
		if err != nil || report.Resolved || report.Rows() != 0 || len(report.Datasets) != 0 {
			t.Errorf("delete %s again = %+v, %v; want not resolved", id, report, err)
		}
		sink := &memSink{}
		report, err = r.Export(t.Context(), subject("user_id", id), sink)
		if err != nil || report.Resolved || len(sink.datasets) != 0 {
			t.Errorf("export %s after delete = %+v, %v; want not resolved", id, report, err)
		}
		if after := redisKeys(t, rdb, ns); !slices.Equal(after, wantKeys) {
			t.Errorf("delete %s again changed the keys", id)
		}
	}
}

func TestRedisSubjectWithoutKeyIsNotResolved(t *testing.T) {
	t.Parallel()
	rdb, ns := redisNamespace(t)
	seedRedisUser(t, rdb, ns, "u-1")
	r := newRedisConnector(t, redisStore(ns))
	before := redisKeys(t, rdb, ns)

	for _, s := range []rights.Subject{
		subject(),
		subject("email", "u-1@example.com"),
		subject("customer_no", "u-1"),
		subject("user_id", ""),
		subject("user_id", "u-3"),
	} {
		sink := &memSink{}
		report, err := r.Export(t.Context(), s, sink)
		if err != nil || report.Resolved || len(report.Datasets) != 0 || len(sink.datasets) != 0 {
			t.Errorf("export %v: resolved %v with %d datasets (%d written), error %v; want nothing",
				s.Identities, report.Resolved, len(report.Datasets), len(sink.datasets), err)
		}
		report, err = r.Delete(t.Context(), s)
		if err != nil || report.Resolved || len(report.Datasets) != 0 {
			t.Errorf("delete %v: resolved %v with %d datasets, error %v; want nothing", s.Identities, report.Resolved, len(report.Datasets), err)
		}
	}
	if after := redisKeys(t, rdb, ns); !slices.Equal(before, after) {
		t.Errorf("unresolved deletes changed the keys: before %v, after %v", before, after)
	}
}

func TestRedisResolvedByAnyPattern(t *testing.T) {
	t.Parallel()
	rdb, ns := redisNamespace(t)
	// Only a cart key: the other datasets are there, empty.
	if err := rdb.SAdd(t.Context(), ns+":cart:u-7:tags", "x").Err(); err != nil {
		t.Fatal(err)
	}
	r := newRedisConnector(t, redisStore(ns))
	sink := &memSink{}
	report, err := r.Export(t.Context(), subject("user_id", "u-7"), sink)
	if err != nil {
		t.Fatal(err)
	}
	if !report.Resolved || len(report.Datasets) != 3 || len(sink.datasets) != 3 {
		t.Fatalf("export = %+v, want resolved with 3 datasets", report)
	}
	for i, want := range []int64{0, 0, 1} {
		if report.Datasets[i].Rows != want || int64(len(sink.datasets[i].rows)) != want || !sink.datasets[i].closed {
			t.Errorf("dataset %s: %d rows, want %d", report.Datasets[i].Name, report.Datasets[i].Rows, want)
		}
	}
}

func TestRedisBinaryValues(t *testing.T) {
	t.Parallel()
	rdb, ns := redisNamespace(t)
	ctx := t.Context()
	id := "u-\xff1" // not UTF-8, like the values below
	key := ns + ":blob:" + id
	if err := rdb.HSet(ctx, key, "photo", "\x89PNG\xff\x00", "\xfe", "text", "note", "base64:looks encoded").Err(); err != nil {
		t.Fatal(err)
	}
	r := newRedisConnector(t, config.Store{
		Name: "cache", Kind: "redis", DSN: redisURL(), Key: "user_id",
		Keys: []config.RedisKey{{Pattern: ns + ":blob:{user_id}"}},
	})
	sink := &memSink{}
	report, err := r.Export(ctx, subject("user_id", id), sink)
	if err != nil || !report.Resolved {
		t.Fatalf("export = %+v, %v", report, err)
	}
	b64 := func(s string) string { return "base64:" + base64.StdEncoding.EncodeToString([]byte(s)) }
	want := redisSorted(
		redisRowText(b64(key), "hash", "photo", b64("\x89PNG\xff\x00")),
		redisRowText(b64(key), "hash", b64("\xfe"), "text"),
		redisRowText(b64(key), "hash", "note", b64("base64:looks encoded")),
	)
	if got := redisRowTexts(sink.datasets[0]); !slices.Equal(got, want) {
		t.Errorf("rows =\n\t%v\nwant\n\t%v", got, want)
	}
}

func TestRedisDatasetNames(t *testing.T) {
	t.Parallel()
	rdb, ns := redisNamespace(t)
	if err := rdb.Set(t.Context(), ns+":Session:u-1", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	r := newRedisConnector(t, config.Store{
		Name: "cache", Kind: "redis", DSN: redisURL(), Key: "user_id",
		Keys: []config.RedisKey{
			{Pattern: ns + ":Session:{user_id}"},
			{Pattern: ns + ":session:{user_id}:*", Match: true},
			{Pattern: "{user_id}"},
			{Pattern: "::{user_id}::"},
		},
	})
	report, err := r.Export(t.Context(), subject("user_id", "u-1"), &memSink{})
	if err != nil {
		t.Fatal(err)
	}
	lower := strings.ToLower(ns)
	want := []string{lower + "_session_user_id", lower + "_session_user_id_2", "user_id", "user_id_2"}
	var got []string
	for _, d := range report.Datasets {
		got = append(got, d.Name)
	}
	if !slices.Equal(got, want) {
		t.Errorf("dataset names = %v, want %v", got, want)
	}
}

func TestRedisRefusesWildcardsNextToTheKey(t *testing.T) {
	t.Parallel()
	cfg := config.Store{Name: "cache", Kind: "redis", DSN: "redis://127.0.0.1:1/0", Key: "user_id"}
	for _, pattern := range []string{
		"cart:{user_id}*", "cart*{user_id}:x", "cart:?{user_id}", "cart:{user_id}?", "cart:[ab]{user_id}",
		"cart:{user_id}[ab]", "cart:[{user_id}]", `cart:\{user_id}:*`, "cart:{user_id}",
	} {
		cfg.Keys = []config.RedisKey{{Pattern: pattern, Match: true}}
		if pattern == "cart:{user_id}" {
			cfg.Keys = append(cfg.Keys, config.RedisKey{Pattern: "a:{user_id}:{user_id}"}) // twice
		}
		if r, err := stores.NewRedis(t.Context(), cfg); err == nil {
			r.Close()
			t.Errorf("pattern %q was accepted", pattern)
		}
	}
	for _, pattern := range []string{
		"cart:{user_id}:*", "*:{user_id}", "{user_id}:*", "cart:*:{user_id}:?", `cart\*{user_id}:*`, `cart:\\:{user_id}:*`, "[ab]:{user_id}",
	} {
		cfg.Keys = []config.RedisKey{{Pattern: pattern, Match: true}}
		r, err := stores.NewRedis(t.Context(), cfg)
		if err != nil {
			t.Errorf("pattern %q: %v", pattern, err)
			continue
		}
		r.Close()
	}
}

func TestRedisOpen(t *testing.T) {
	t.Parallel()
	cfg := redisStore("x")
	cfg.DSN = "redis://127.0.0.1:1/0"
	c, err := stores.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("open is lazy and should not dial: %v", err)
	}
	if _, ok := c.(*stores.Redis); !ok {
		t.Errorf("open redis returned %T", c)
	}
	if err := c.Close(); err != nil {
		t.Error(err)
	}
	if !slices.Contains(stores.Kinds(), "redis") {
		t.Errorf("kinds = %v, want redis among them", stores.Kinds())
	}

	for _, dsn := range []string{"redis://u:s3cret@[::1/x", "memcached://u:s3cret@host/0", "redis://u:s3cret@host/zero", "redis://u:s3cret@host/0?pool=s3cret"} {
		cfg.DSN = dsn
		c, err := stores.Open(t.Context(), cfg)
		if c != nil || err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("open %s = %v, %v; want nil and an error without the password", dsn, c, err)
		}
	}
}

func TestRedisUnreachableStoreFailsTheCall(t *testing.T) {
	t.Parallel()
	const id = "u-secret-42"
	cfg := redisStore("x")
	cfg.DSN = "redis://:s3cret@127.0.0.1:1/0?dial_timeout=2&max_retries=-1"
	r := newRedisConnector(t, cfg)
	_, err := r.Export(t.Context(), subject("user_id", id), &memSink{})
	if err == nil {
		t.Error("export from an unreachable store succeeded")
	} else if msg := err.Error(); strings.Contains(msg, id) || strings.Contains(msg, "s3cret") || !strings.Contains(msg, "cache") {
		t.Errorf("export error %q names the subject or password, or not the store", msg)
	}
	_, err = r.Delete(t.Context(), subject("user_id", id))
	if err == nil {
		t.Error("delete from an unreachable store succeeded")
	} else if msg := err.Error(); strings.Contains(msg, id) || strings.Contains(msg, "s3cret") {
		t.Errorf("delete error %q names the subject or password", msg)
	}
}

func TestRedisErrorsHoldNoPersonalData(t *testing.T) {
	t.Parallel()
	rdb, ns := redisNamespace(t)
	ctx := t.Context()
	const id = "u-secret-43"
	seedRedisUser(t, rdb, ns, id)

	// A user that may read the namespace but not delete from it.
	user := "datarights-" + strings.ToLower(ns)
	password := rand.Text()
	if err := rdb.Do(ctx, "ACL", "SETUSER", user, "on", ">"+password, "~"+ns+":*", "+@all", "-unlink", "-del").Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Do(context.WithoutCancel(ctx), "ACL", "DELUSER", user) })
	u, err := url.Parse(redisURL())
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, password)

	cfg := redisStore(ns)
	cfg.DSN = u.String()
	r := newRedisConnector(t, cfg)
	if report, err := r.Export(ctx, subject("user_id", id), &memSink{}); err != nil || report.Rows() != 10 {
		t.Fatalf("export = %+v, %v; want 10 rows", report, err)
	}
	before := redisKeys(t, rdb, ns)
	_, err = r.Delete(ctx, subject("user_id", id))
	if err == nil {
		t.Fatal("delete without permission succeeded")
	}
	if !redis.IsPermissionError(err) {
		t.Errorf("error %v is not a permission error", err)
	}
	if msg := err.Error(); strings.Contains(msg, id) || strings.Contains(msg, password) || !strings.Contains(msg, ns+":session:{user_id}") {
		t.Errorf("error %q names the subject or password, or not the pattern", msg)
	}
	if after := redisKeys(t, rdb, ns); !slices.Equal(before, after) {
		t.Errorf("a failed delete changed the keys")
	}
}
