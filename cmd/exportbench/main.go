// Command exportbench measures exporting one person's data when there is a
// lot of it: a subject with about -mb megabytes of rows (as COPY text) in
// three tables of a Postgres database is exported the way datarights does it
// — the Postgres connector streams the rows into staging (JSON and CSV,
// deflated as they are written), then the encrypted archive is built — and,
// side by side, the same rows are read with a raw COPY … TO STDOUT. Each
// measurement runs in a child process of its own, so its peak RSS is its own.
//
//	go run ./cmd/exportbench -mb 1024
//
// The database (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres)
// gets a database datarights_exportbench, seeded once and kept for reruns
// (-reseed to rebuild it).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/exporters"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage/stores"
)

const (
	dbName  = "datarights_exportbench"
	subject = "bench-user-1"
)

// tables the subject has rows in, with how to fill them: (name, DDL, the
// SELECT generating n rows for the subject, bytes per row roughly).
var tables = []struct {
	name, ddl, fill string
	share           float64 // of the total size
}{
	{"transactions", `CREATE TABLE transactions (id bigserial PRIMARY KEY, user_id text NOT NULL, card_id text, amount numeric(12,2),
		currency text, merchant text, memo text, at timestamptz)`,
		`INSERT INTO transactions (user_id, card_id, amount, currency, merchant, memo, at)
		SELECT $1, 'card-' || (g % 7), (g % 100000) / 100.0, 'CNY', '美团外卖 商户 ' || (g % 97),
			md5(g::text) || ' 消费 ' || g, timestamptz '2020-01-01' + (g || ' seconds')::interval
		FROM generate_series(1, $2) g`, 0.6},
	{"logins", `CREATE TABLE logins (id bigserial PRIMARY KEY, user_id text NOT NULL, device text, ip inet, city text, ok boolean, at timestamptz)`,
		`INSERT INTO logins (user_id, device, ip, city, ok, at)
		SELECT $1, 'iPhone ' || (g % 17), ('10.' || (g % 255) || '.' || (g % 251) || '.' || (g % 241))::inet, '深圳',
			g % 13 <> 0, timestamptz '2020-01-01' + (g * 7 || ' seconds')::interval
		FROM generate_series(1, $2) g`, 0.25},
	{"messages", `CREATE TABLE messages (id bigserial PRIMARY KEY, user_id text NOT NULL, channel text, body text, sent_at timestamptz)`,
		`INSERT INTO messages (user_id, channel, body, sent_at)
		SELECT $1, 'sms', '您的验证码是 ' || (g % 1000000) || '，请勿告诉他人。' || repeat('x', g % 40),
			timestamptz '2020-01-01' + (g * 11 || ' seconds')::interval
		FROM generate_series(1, $2) g`, 0.15},
}

// bytesPerRow is each table's COPY text size per row, measured once.
var bytesPerRow = map[string]float64{"transactions": 147, "logins": 71, "messages": 87}

func main() {
	if len(os.Args) > 2 && os.Args[1] == "-child" {
		if err := child(os.Args[2], os.Args[3:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	mb := flag.Int("mb", 1024, "megabytes of the subject's rows, as COPY text")
	reseed := flag.Bool("reseed", false, "drop and seed the database again")
	csv := flag.Bool("csv", true, "stage CSV as well as JSON")
	flag.Parse()
	if err := run(*mb, *reseed, *csv); err != nil {
		fmt.Fprintln(os.Stderr, "exportbench:", err)
		os.Exit(1)
	}
}

func adminURL() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

func benchURL() string {
	u, _ := url.Parse(adminURL())
	u.Path = "/" + dbName
	return u.String()
}

func run(mb int, reseed, csv bool) error {
	ctx := context.Background()
	if err := seed(ctx, mb, reseed); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	measure := func(mode string, args ...string) (map[string]string, error) {
		cmd := exec.Command(self, append([]string{"-child", mode}, args...)...)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", mode, err)
		}
		res := map[string]string{}
		for _, field := range strings.Fields(string(out)) {
			k, v, _ := strings.Cut(field, "=")
			res[k] = v
		}
		var ru syscall.Rusage = *cmd.ProcessState.SysUsage().(*syscall.Rusage)
		res["maxrss_mb"] = strconv.FormatFloat(float64(ru.Maxrss)/1024, 'f', 1, 64)
		return res, nil
	}
	copyRes, err := measure("copy")
	if err != nil {
		return err
	}
	exportRes, err := measure("export", strconv.FormatBool(csv))
	if err != nil {
		return err
	}
	copyBytes, _ := strconv.ParseFloat(copyRes["bytes"], 64)
	copySec, _ := strconv.ParseFloat(copyRes["seconds"], 64)
	exportSec, _ := strconv.ParseFloat(exportRes["seconds"], 64)
	fmt.Printf("subject rows: %s, COPY text %.0f MB\n\n", copyRes["rows"], copyBytes/1e6)
	fmt.Printf("| | seconds | MB/s (of COPY text) | peak RSS MB |\n|---|---|---|---|\n")
	fmt.Printf("| raw `COPY … TO STDOUT` | %.2f | %.0f | %s |\n", copySec, copyBytes/1e6/copySec, copyRes["maxrss_mb"])
	fmt.Printf("| datarights export (stage %s, build encrypted archive) | %.2f | %.0f | %s |\n",
		map[bool]string{true: "JSON+CSV", false: "JSON"}[csv], exportSec, copyBytes/1e6/exportSec, exportRes["maxrss_mb"])
	fmt.Printf("\nstaging %s s, archive %s s; staged JSON %s MB, CSV %s MB; archive %s MB\n",
		exportRes["stage_seconds"], exportRes["archive_seconds"], mbOf(exportRes["json_bytes"]), mbOf(exportRes["csv_bytes"]), mbOf(exportRes["archive_bytes"]))
	fmt.Printf("export throughput / COPY throughput = %.2f\n", copySec/exportSec)
	return nil
}

func mbOf(s string) string {
	n, _ := strconv.ParseFloat(s, 64)
	return strconv.FormatFloat(n/1e6, 'f', 0, 64)
}

// seed creates the database and the subject's rows, unless they are there.
func seed(ctx context.Context, mb int, reseed bool) error {
	admin, err := pgx.Connect(ctx, adminURL())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer admin.Close(ctx)
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", dbName).Scan(&exists); err != nil {
		return err
	}
	if exists && reseed {
		if _, err := admin.Exec(ctx, "DROP DATABASE "+dbName); err != nil {
			return err
		}
		exists = false
	}
	if !exists {
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+dbName); err != nil {
			return err
		}
	}
	db, err := pgx.Connect(ctx, benchURL())
	if err != nil {
		return err
	}
	defer db.Close(ctx)
	var seeded bool
	if err := db.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE tablename = 'seeded')").Scan(&seeded); err != nil {
		return err
	}
	if seeded {
		var want int
		_ = db.QueryRow(ctx, "SELECT mb FROM seeded").Scan(&want)
		if want == mb {
			return nil
		}
		return fmt.Errorf("the database was seeded for -mb %d; run with -reseed", want)
	}
	fmt.Fprintf(os.Stderr, "seeding %d MB for %s (once)…\n", mb, subject)
	for _, t := range tables {
		if _, err := db.Exec(ctx, t.ddl); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		n := int(float64(mb) * 1e6 * t.share / bytesPerRow[t.name])
		if _, err := db.Exec(ctx, t.fill, subject, n); err != nil {
			return fmt.Errorf("fill %s: %w", t.name, err)
		}
		// Other people's rows, which an export must not read.
		if _, err := db.Exec(ctx, t.fill, "bench-user-2", n/100); err != nil {
			return fmt.Errorf("fill %s: %w", t.name, err)
		}
		if _, err := db.Exec(ctx, "CREATE INDEX ON "+t.name+" (user_id)"); err != nil {
			return err
		}
	}
	if _, err := db.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		return err
	}
	_, err = db.Exec(ctx, fmt.Sprintf("CREATE TABLE seeded AS SELECT %d AS mb", mb))
	return err
}

func child(mode string, args []string) error {
	ctx := context.Background()
	if path := os.Getenv("EXPORTBENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path + "." + mode)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	switch mode {
	case "copy":
		conn, err := pgx.Connect(ctx, benchURL())
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		start := time.Now()
		var counter countWriter
		var rows int64
		tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			return err
		}
		for _, t := range tables {
			tag, err := conn.PgConn().CopyTo(ctx, &counter,
				"COPY (SELECT * FROM "+t.name+" WHERE user_id::text = '"+subject+"' ORDER BY id) TO STDOUT")
			if err != nil {
				return err
			}
			rows += tag.RowsAffected()
		}
		_ = tx.Rollback(ctx)
		fmt.Printf("seconds=%.3f bytes=%d rows=%d\n", time.Since(start).Seconds(), counter.n, rows)
	case "export":
		withCSV := len(args) > 0 && args[0] == "true"
		dir, err := os.MkdirTemp("", "exportbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cfg := config.Store{Name: "bench", Kind: "postgres", DSN: benchURL(), Key: "user_id"}
		for _, t := range tables {
			cfg.Tables = append(cfg.Tables, config.Table{Name: t.name, Column: "user_id", OrderBy: "id"})
		}
		pg, err := stores.NewPostgres(ctx, cfg)
		if err != nil {
			return err
		}
		defer pg.Close()
		staging := exporters.NewStagingWith(dir, exporters.StagingOptions{CSV: withCSV, BOM: true})
		sink, err := staging.Sink("bench", "bench")
		if err != nil {
			return err
		}
		start := time.Now()
		report, err := pg.Export(ctx, rights.Subject{Identities: map[string]string{"user_id": subject}}, sink)
		if err != nil {
			return err
		}
		staged := time.Since(start)
		password, err := exporters.NewPassword()
		if err != nil {
			return err
		}
		res, err := exporters.BuildArchive(ctx, exporters.ArchiveInput{RequestID: "bench", Product: "bench", Type: rights.TypeCopy,
			Locale: rights.LocaleEN, StagingDir: staging.Dir("bench"), Stores: []exporters.StorePart{{Store: "bench", Report: report}},
			Password: password}, filepath.Join(dir, "bench.zip"))
		if err != nil {
			return err
		}
		total := time.Since(start)
		var jsonBytes, csvBytes int64
		for _, d := range report.Datasets {
			jsonBytes += d.Bytes
			if d.CSV != nil {
				csvBytes += d.CSV.Bytes
			}
		}
		if report.Rows() == 0 {
			return errors.New("exported no rows")
		}
		fmt.Printf("seconds=%.3f stage_seconds=%.3f archive_seconds=%.3f rows=%d json_bytes=%d csv_bytes=%d archive_bytes=%d\n",
			total.Seconds(), staged.Seconds(), (total - staged).Seconds(), report.Rows(), jsonBytes, csvBytes, res.Bytes)
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	return nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

var _ io.Writer = (*countWriter)(nil)
