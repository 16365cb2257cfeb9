package stores

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/rights"
)

func init() {
	register("redis", func(ctx context.Context, cfg config.Store) (rights.Connector, error) {
		r, err := NewRedis(ctx, cfg)
		if err != nil {
			return nil, err // not r: a nil *Redis in an interface is not nil
		}
		return r, nil
	})
}

// Redis is the connector for a store kept in a Redis database (one server,
// one logical database: the DSN is redis://[user:password@]host:port/db).
//
// # Finding the subject's keys
//
// Keys are found from the store's key identity alone: the subject must carry
// it (Identities[cfg.Key]), and its value is put in place of "{<key>}" in
// every configured pattern. Redis has no tables to look other identities up
// in, so lookups are not supported; a subject without the key identity is
// simply not resolved, and nothing is read or deleted. Resolving an email or
// phone to the key is done before connectors run, from the stores that can.
//
// A pattern without match names exactly one key. A pattern with match is a
// SCAN MATCH glob, and the identity value is escaped in it (\ before each of
// * ? [ ] \), so the value only ever matches itself: "u-1" in "cart:{user_id}:*"
// finds cart:u-1:a but not cart:u-10:a, and a value of "*" finds nothing but
// keys holding a literal "*". For the same reason NewRedis refuses a match
// pattern with a wildcard right next to the placeholder ("cart:{user_id}*"
// would find u-10's keys for u-1); put a literal separator between them.
// Identity values must not themselves contain that separator: with
// "cart:{user_id}:*", the key cart:u-1:x:y belongs to u-1 and to "u-1:x" alike.
//
// Every match pattern is a full SCAN of the database (COUNT 1000 a call, never
// KEYS), on every export and every delete; Redis has no index to narrow it.
// The names of the subject's keys are held in memory (sorted, so a retried
// export lists keys in the same order); their contents are streamed.
//
// # Export
//
// Each configured pattern is one dataset, named after the pattern with the
// placeholder kept literally and everything but letters and digits turned to
// "_", in lower case: "session:{user_id}" is session_user_id and
// "cart:{user_id}:*" is cart_user_id. Names that come out the same get _2, _3,
// ... in configuration order. Every dataset has the columns
//
//	key, type, field, value, ttl_seconds
//
// and one row per element: a string is one row (field null); a hash a row per
// field (field = the field name); a list a row per element (field = its index,
// from 0); a set a row per member (field null); a sorted set a row per member
// in score order (field = the score, as text); a stream a row per entry (field
// = the entry id, value = the entry's fields as a JSON object). ttl_seconds is
// the key's remaining time to live in whole seconds, null if it has none.
// Hashes and sets are read with HSCAN and SSCAN, lists, sorted sets and
// streams by ranges of 1000, so a key is never read whole; a key of another
// type (a module's) fails the export rather than being left out of it.
//
// Keys, fields and values are exported as text when they are valid UTF-8, and
// otherwise as "base64:" followed by their standard base64 encoding. Text that
// happens to begin with "base64:" is encoded too, so the marker is never
// ambiguous.
//
// Redis has no snapshot to read from: a key written during an export is read
// as it is at that moment, and HSCAN and SSCAN may return an element twice if
// the key grows or shrinks while it is read.
//
// # Delete
//
// Delete UNLINKs every key the patterns find and reports, per pattern, the
// number of keys it deleted. As with the Postgres connector, a subject counts
// as found only when at least one key exists: a repeated delete finds nothing
// and reports Resolved false, with no datasets.
//
// Redis Cluster is not supported.
type Redis struct {
	cfg    config.Store
	client *redis.Client
	keys   []redisPattern
}

var _ rights.Connector = (*Redis)(nil)

// redisPattern is one configured key pattern, split around its placeholder.
type redisPattern struct {
	config.RedisKey
	dataset        string
	prefix, suffix string
}

// redisColumns are the columns of every dataset a Redis store exports.
var redisColumns = []string{"key", "type", "field", "value", "ttl_seconds"}

const (
	redisScanCount = 1000 // COUNT for SCAN, HSCAN and SSCAN
	redisPageSize  = 1000 // elements per LRANGE, ZRANGE and XRANGE
	redisBatchSize = 500  // keys per UNLINK
	binaryMarker   = "base64:"
)

// NewRedis returns the connector for cfg. It does not connect: the client
// dials on first use, so one unreachable store does not stop the service from
// starting. The client holds at most 4 connections; pool_size in the DSN
// changes that.
func NewRedis(ctx context.Context, cfg config.Store) (*Redis, error) {
	opts, err := redis.ParseURL(cfg.DSN)
	if err != nil {
		// The parse error may quote the DSN, password and all; say only where.
		return nil, fmt.Errorf("store %s: the dsn is not a valid redis:// URL", cfg.Name)
	}
	// A store is someone else's production server: take few connections and
	// give them back soon, unless the DSN says otherwise.
	if opts.PoolSize == 0 {
		opts.PoolSize = 4
	}
	if opts.PipelinePoolSize == 0 {
		opts.PipelinePoolSize = -1 // pipelines share the pool above
	}
	if opts.ConnMaxIdleTime == 0 {
		opts.ConnMaxIdleTime = 5 * time.Minute
	}
	if opts.ClientName == "" {
		opts.ClientName = "datarights"
	}

	placeholder := "{" + cfg.Key + "}"
	r := &Redis{cfg: cfg}
	used := map[string]bool{}
	for i, k := range cfg.Keys {
		prefix, suffix, ok := strings.Cut(k.Pattern, placeholder)
		if !ok || strings.Contains(suffix, placeholder) {
			return nil, fmt.Errorf("store %s: keys[%d]: pattern %q must contain %s exactly once", cfg.Name, i, k.Pattern, placeholder)
		}
		if k.Match && (globEndsOpen(prefix) || globStartsOpen(suffix)) {
			return nil, fmt.Errorf("store %s: keys[%d]: pattern %q has a wildcard next to %s, so it would also match other people's keys; "+
				"put a literal separator between them, as in \"cart:%s:*\"", cfg.Name, i, k.Pattern, placeholder, placeholder)
		}
		name := datasetName(k.Pattern)
		for n := 2; used[name]; n++ {
			name = datasetName(k.Pattern) + "_" + strconv.Itoa(n)
		}
		used[name] = true
		r.keys = append(r.keys, redisPattern{RedisKey: k, dataset: name, prefix: prefix, suffix: suffix})
	}
	r.client = redis.NewClient(opts)
	return r, nil
}

// Export writes the contents of the subject's keys to sink, one dataset per
// configured pattern.
func (r *Redis) Export(ctx context.Context, subject rights.Subject, sink rights.Sink) (rights.StoreReport, error) {
	found, err := r.find(ctx, subject)
	if err != nil || found == nil {
		return rights.StoreReport{}, err
	}
	report := rights.StoreReport{Resolved: true}
	for i, p := range r.keys {
		dataset, err := r.exportPattern(ctx, p, found[i], sink)
		if err != nil {
			return rights.StoreReport{}, err
		}
		report.Datasets = append(report.Datasets, dataset)
	}
	return report, nil
}

func (r *Redis) exportPattern(ctx context.Context, p redisPattern, keys []string, sink rights.Sink) (rights.DatasetReport, error) {
	// An unfinished dataset is left unclosed on error: Close means "complete",
	// and the retried Export writes the dataset again from the start.
	w, err := sink.Dataset(p.dataset, redisColumns)
	if err != nil {
		return rights.DatasetReport{}, fmt.Errorf("store %s: start dataset %s: %w", r.cfg.Name, p.dataset, err)
	}
	for _, key := range keys {
		if err := r.exportKey(ctx, p, key, w); err != nil {
			return rights.DatasetReport{}, err
		}
	}
	dataset, err := w.Close()
	if err != nil {
		return rights.DatasetReport{}, fmt.Errorf("store %s: finish dataset %s: %w", r.cfg.Name, p.dataset, err)
	}
	if dataset.Name == "" {
		dataset.Name = p.dataset
	}
	dataset.Category = p.Category
	return dataset, nil
}

// exportKey writes the rows of one key. Errors name the pattern, never the
// key: the key holds the identity value.
func (r *Redis) exportKey(ctx context.Context, p redisPattern, key string, w rights.RowWriter) error {
	var typeCmd *redis.StatusCmd
	var ttlCmd *redis.Cmd
	_, err := r.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		typeCmd = pipe.Type(ctx, key)
		ttlCmd = pipe.Do(ctx, "TTL", key)
		return nil
	})
	if err != nil {
		return r.errorf("export "+p.Pattern, err)
	}
	typ := typeCmd.Val()
	var ttl any // null: the key does not expire
	if secs, _ := ttlCmd.Int64(); secs >= 0 {
		ttl = secs
	}
	exportedKey := textOrBase64(key)
	write := func(field any, value string) error {
		if err := w.WriteRow([]any{exportedKey, typ, field, value, ttl}); err != nil {
			return fmt.Errorf("store %s: write dataset %s: %w", r.cfg.Name, p.dataset, err)
		}
		return nil
	}
	fail := func(err error) error {
		if errors.Is(err, redis.Nil) {
			return nil // the key expired or was deleted while it was read
		}
		return r.errorf("export "+p.Pattern, err)
	}

	switch typ {
	case "none":
		return nil // gone since it was found
	case "string":
		v, err := r.client.Get(ctx, key).Result()
		if err != nil {
			return fail(err)
		}
		return write(nil, textOrBase64(v))
	case "hash", "set":
		scan := r.client.HScan
		if typ == "set" {
			scan = r.client.SScan
		}
		var cursor uint64
		for {
			page, next, err := scan(ctx, key, cursor, "", redisScanCount).Result()
			if err != nil {
				return fail(err)
			}
			if typ == "hash" {
				for i := 0; i+1 < len(page); i += 2 {
					if err := write(textOrBase64(page[i]), textOrBase64(page[i+1])); err != nil {
						return err
					}
				}
			} else {
				for _, member := range page {
					if err := write(nil, textOrBase64(member)); err != nil {
						return err
					}
				}
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	case "list":
		for start := int64(0); ; start += redisPageSize {
			page, err := r.client.LRange(ctx, key, start, start+redisPageSize-1).Result()
			if err != nil {
				return fail(err)
			}
			for i, v := range page {
				if err := write(strconv.FormatInt(start+int64(i), 10), textOrBase64(v)); err != nil {
					return err
				}
			}
			if len(page) < redisPageSize {
				return nil
			}
		}
	case "zset":
		for start := int64(0); ; start += redisPageSize {
			page, err := r.client.ZRangeWithScores(ctx, key, start, start+redisPageSize-1).Result()
			if err != nil {
				return fail(err)
			}
			for _, z := range page {
				member, _ := z.Member.(string)
				if err := write(formatScore(z.Score), textOrBase64(member)); err != nil {
					return err
				}
			}
			if len(page) < redisPageSize {
				return nil
			}
		}
	case "stream":
		start := "-"
		for {
			page, err := r.client.XRangeN(ctx, key, start, "+", redisPageSize).Result()
			if err != nil {
				return fail(err)
			}
			for _, entry := range page {
				fields := make(map[string]string, len(entry.Values))
				for k, v := range entry.Values {
					s, _ := v.(string)
					fields[textOrBase64(k)] = textOrBase64(s)
				}
				value, err := json.Marshal(fields)
				if err != nil {
					return fmt.Errorf("store %s: export %s: encode a stream entry: %w", r.cfg.Name, p.Pattern, err)
				}
				if err := write(entry.ID, string(value)); err != nil {
					return err
				}
			}
			if len(page) < redisPageSize {
				return nil
			}
			start = "(" + page[len(page)-1].ID
		}
	default:
		return fmt.Errorf("store %s: export %s: a key holds a value of type %q, which this connector cannot export", r.cfg.Name, p.Pattern, typ)
	}
}

// Inventory reports, per pattern, how many keys the subject has: the unit
// Delete reports in (Export writes a row per field or member).
func (r *Redis) Inventory(ctx context.Context, subject rights.Subject) (rights.StoreReport, error) {
	found, err := r.find(ctx, subject)
	if err != nil || found == nil {
		return rights.StoreReport{}, err
	}
	var datasets []rights.DatasetReport
	for i, p := range r.keys {
		datasets = append(datasets, rights.DatasetReport{Name: p.dataset, Category: p.Category, Rows: int64(len(found[i]))})
	}
	return rights.StoreReport{Resolved: true, Datasets: datasets}, nil
}

// Delete unlinks every key of the subject and reports, per pattern in
// configuration order, how many keys it deleted.
func (r *Redis) Delete(ctx context.Context, subject rights.Subject) (rights.StoreReport, error) {
	return r.unlink(ctx, subject, func(redisPattern) bool { return true })
}

// unlink unlinks the subject's keys of the patterns keep selects and
// reports those patterns, in configuration order, with the keys deleted.
func (r *Redis) unlink(ctx context.Context, subject rights.Subject, keep func(redisPattern) bool) (rights.StoreReport, error) {
	found, err := r.find(ctx, subject)
	if err != nil || found == nil {
		return rights.StoreReport{}, err
	}
	var datasets []rights.DatasetReport
	for i, p := range r.keys {
		if !keep(p) {
			continue
		}
		var deleted int64
		for batch := range slices.Chunk(found[i], redisBatchSize) {
			n, err := r.client.Unlink(ctx, batch...).Result()
			if err != nil {
				return rights.StoreReport{}, r.errorf("delete "+p.Pattern, err)
			}
			deleted += n
		}
		datasets = append(datasets, rights.DatasetReport{Name: p.dataset, Category: p.Category, Rows: deleted, Deleted: deleted})
	}
	return rights.StoreReport{Resolved: true, Datasets: datasets}, nil
}

// Close closes the client and its connections.
func (r *Redis) Close() error {
	return r.client.Close()
}

// find returns the subject's keys for each pattern, sorted, or nil when the
// subject has no key identity or no key at all in the store.
func (r *Redis) find(ctx context.Context, subject rights.Subject) ([][]string, error) {
	value := subject.Identities[r.cfg.Key]
	if value == "" {
		return nil, nil
	}
	found := make([][]string, len(r.keys))
	resolved := false
	for i, p := range r.keys {
		keys, err := r.findKeys(ctx, p, value)
		if err != nil {
			return nil, err
		}
		found[i] = keys
		resolved = resolved || len(keys) > 0
	}
	if !resolved {
		return nil, nil
	}
	return found, nil
}

func (r *Redis) findKeys(ctx context.Context, p redisPattern, value string) ([]string, error) {
	if !p.Match {
		key := p.prefix + value + p.suffix
		n, err := r.client.Exists(ctx, key).Result()
		if err != nil {
			return nil, r.errorf("look for "+p.Pattern, err)
		}
		if n == 0 {
			return nil, nil
		}
		return []string{key}, nil
	}

	match := p.prefix + escapeGlob(value) + p.suffix
	seen := map[string]bool{} // SCAN may return a key twice
	var keys []string
	var cursor uint64
	for {
		page, next, err := r.client.Scan(ctx, cursor, match, redisScanCount).Result()
		if err != nil {
			return nil, r.errorf("scan for "+p.Pattern, err)
		}
		for _, key := range page {
			if !seen[key] {
				seen[key] = true
				keys = append(keys, key)
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// escapeGlob returns s with Redis glob's special characters escaped, so that
// in a pattern it matches exactly s.
func escapeGlob(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// globEndsOpen reports whether glob, the part of a pattern before the
// placeholder, ends in a wildcard (*, ? or a [class]), an unclosed class or a
// dangling backslash: with any of those the identity value after it would not
// match only itself.
func globEndsOpen(glob string) bool {
	open := false
	for i := 0; i < len(glob); i++ {
		switch glob[i] {
		case '\\':
			i++
			open = i >= len(glob)
		case '*', '?':
			open = true
		case '[':
			// A class runs to the next unescaped ']', or to the end.
			for i++; i < len(glob) && glob[i] != ']'; i++ {
				if glob[i] == '\\' {
					i++
				}
			}
			open = true
		default:
			open = false
		}
	}
	return open
}

// globStartsOpen reports whether glob, the part of a pattern after the
// placeholder, starts with a wildcard.
func globStartsOpen(glob string) bool {
	return glob != "" && strings.IndexByte("*?[", glob[0]) >= 0
}

// datasetName returns a file-safe name for a key pattern: its letters and
// digits in lower case, every other run of bytes turned into one "_".
func datasetName(pattern string) string {
	var b strings.Builder
	gap := false
	for i := 0; i < len(pattern) && b.Len() < 100; i++ {
		c := pattern[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'a' <= c && c <= 'z' || '0' <= c && c <= '9' {
			if gap && b.Len() > 0 {
				b.WriteByte('_')
			}
			gap = false
			b.WriteByte(c)
		} else {
			gap = true
		}
	}
	if b.Len() == 0 {
		return "keys"
	}
	return b.String()
}

// textOrBase64 returns s as it is if it is UTF-8 text, and otherwise (or if it
// could be mistaken for an encoded value) base64-encoded behind a marker.
func textOrBase64(s string) string {
	if utf8.ValidString(s) && !strings.HasPrefix(s, binaryMarker) {
		return s
	}
	return binaryMarker + base64.StdEncoding.EncodeToString([]byte(s))
}

// formatScore writes a sorted set score as Redis does: the shortest decimal
// that reads back as the same float, and inf or -inf.
func formatScore(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func (r *Redis) errorf(op string, err error) error {
	return fmt.Errorf("store %s: %s: %w", r.cfg.Name, op, safeRedisError(err))
}

// redisReplyError is an error reply from Redis with its message withheld. It
// is still a redis.Error.
type redisReplyError string

func (e redisReplyError) Error() string { return string(e) }
func (redisReplyError) RedisError()     {}

// safeRedisError returns err without the parts of a Redis error reply that may
// quote keys or values: some replies do ("unknown command 'UNLINK', with args
// beginning with: 'cart:u-42:a'" on a server that renamed the command). The
// message is kept only for replies whose messages name no key or value; the
// others keep their error code alone. Errors that are not replies (network,
// context, pool) never quote keys and are returned as they are.
func safeRedisError(err error) error {
	var reply redis.Error
	if !errors.As(err, &reply) {
		return err
	}
	msg := reply.Error()
	code, _, _ := strings.Cut(msg, " ")
	switch code {
	case "WRONGTYPE", "NOAUTH", "WRONGPASS", "NOPERM", "LOADING", "READONLY",
		"MASTERDOWN", "BUSY", "OOM", "MISCONF", "CLUSTERDOWN", "TRYAGAIN",
		"MOVED", "ASK", "NOREPLICAS", "EXECABORT":
		return err // as it is, so redis.IsPermissionError and the like still work
	}
	return redisReplyError(code + " (message withheld: it may quote personal data)")
}
