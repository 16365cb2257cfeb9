package demo

import (
	"context"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/storage/storagetest"
)

func TestSeedConcurrentlyLeavesOneCopy(t *testing.T) {
	t.Parallel()
	url := storagetest.NewDatabase(t, "demo")

	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = Seed(t.Context(), url) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := Seed(t.Context(), url); err != nil { // and once more, afterwards
		t.Fatal(err)
	}

	want := map[string]int64{"users": NumSubjects, "consents": int64(NumSubjects * len(purposes))}
	for n := 1; n <= NumSubjects; n++ {
		want["cards"] += int64(cardCount(n))
		want["transactions"] += int64(transactionCount(n))
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	for table, n := range want {
		var got int64
		if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM "+table).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != n {
			t.Errorf("%s has %d rows, want %d", table, got, n)
		}
	}
}

func TestCountsPerSubject(t *testing.T) {
	t.Parallel()
	url := storagetest.NewDatabase(t, "demo")
	if err := Seed(t.Context(), url); err != nil {
		t.Fatal(err)
	}

	seen := map[int64]bool{}
	for n, id := range Subjects() {
		n++
		if id != UserID(n) {
			t.Fatalf("Subjects()[%d] = %s, want %s", n-1, id, UserID(n))
		}
		got, err := Counts(t.Context(), url, id)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int64{
			"users":        1,
			"cards":        int64(cardCount(n)),
			"transactions": int64(transactionCount(n)),
			"consents":     int64(len(purposes)),
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Counts(%s) = %v, want %v", id, got, want)
		}
		if tc := want["transactions"]; tc < 5 || tc > 40 {
			t.Errorf("%s has %d transactions, want 5 to 40", id, tc)
		}
		seen[want["transactions"]] = true
	}
	if len(seen) < 10 {
		t.Errorf("only %d distinct transaction counts; they should vary by subject", len(seen))
	}

	got, err := Counts(t.Context(), url, "demo-user-21")
	if err != nil {
		t.Fatal(err)
	}
	for table, n := range got {
		if n != 0 {
			t.Errorf("demo-user-21 has %d rows in %s", n, table)
		}
	}
}

// TestSeedIsDeterministic seeds two databases and compares every row, so
// tests may rely on the data, not just on the counts.
func TestSeedIsDeterministic(t *testing.T) {
	t.Parallel()
	var digests [2]map[string]string
	for i := range digests {
		url := storagetest.NewDatabase(t, "demo")
		if err := Seed(t.Context(), url); err != nil {
			t.Fatal(err)
		}
		conn, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.WithoutCancel(t.Context()))
		digests[i] = map[string]string{}
		for _, table := range tables {
			var digest string
			query := "SELECT md5(string_agg(t::text, E'\\n' ORDER BY t::text)) FROM " + table + " t"
			if err := conn.QueryRow(t.Context(), query).Scan(&digest); err != nil {
				t.Fatal(err)
			}
			digests[i][table] = digest
		}
	}
	if !reflect.DeepEqual(digests[0], digests[1]) {
		t.Errorf("two seeds differ: %v and %v", digests[0], digests[1])
	}
}

func TestIDNumberHasValidCheckDigit(t *testing.T) {
	t.Parallel()
	// 11010519491231002X is the example in GB 11643.
	body := "11010519491231002"
	weights := []int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i, w := range weights {
		sum += int(body[i]-'0') * w
	}
	if check := "10X98765432"[sum%11]; check != 'X' {
		t.Fatalf("the check digit algorithm in this test is wrong: %c", check)
	}
	seen := map[string]bool{}
	for n := 1; n <= NumSubjects; n++ {
		id := idNumber(n)
		if len(id) != 18 || seen[id] {
			t.Errorf("idNumber(%d) = %s: want 18 characters, unique", n, id)
		}
		seen[id] = true
	}
}

func TestConfigYAMLParses(t *testing.T) {
	t.Parallel()
	// Characters YAML would otherwise read as syntax: a comment, a mapping,
	// quotes.
	databaseURL := "postgres://postgres@127.0.0.1:5432/datarights?sslmode=disable&application_name=a#b"
	bankURL := `postgres://bank:p@ss: "w#rd"@127.0.0.1:5432/demo_bank?sslmode=disable`
	dataDir := "/tmp/data dir: #1 'x'"
	text := ConfigYAML(databaseURL, bankURL, dataDir)

	if _, err := config.Parse("demo.yaml", []byte(text), os.Getenv); err != nil {
		t.Fatalf("%v\n%s", err, text)
	}

	// Without the environment, every value must read back exactly.
	cfg, err := config.Parse("demo.yaml", []byte(text), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DatabaseURL != databaseURL || cfg.DataDir != dataDir || cfg.HTTP.Addr != "127.0.0.1:8080" {
		t.Errorf("read back database_url %q, data_dir %q, http.addr %q", cfg.DatabaseURL, cfg.DataDir, cfg.HTTP.Addr)
	}
	if len(cfg.Stores) != 1 || !reflect.DeepEqual(cfg.Stores[0], StoreConfig(bankURL)) {
		t.Errorf("stores = %+v, want [%+v]", cfg.Stores, StoreConfig(bankURL))
	}
	want := map[string]string{
		"wechat": "15 calendar_days from received",
		"webank": "15 working_days from verified",
	}
	if len(cfg.Products) != len(want) {
		t.Fatalf("%d products, want %d", len(cfg.Products), len(want))
	}
	cals, err := cfg.Calendars()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range cfg.Products {
		policy, err := p.Deadline.DomainPolicy(cals)
		if err != nil {
			t.Fatal(err)
		}
		if policy.String() != want[p.Name] || p.Deadline.TimeZone != "Asia/Shanghai" {
			t.Errorf("product %s: %s in %s, want %s in Asia/Shanghai", p.Name, policy, p.Deadline.TimeZone, want[p.Name])
		}
	}
}

// TestExtrasYAMLParses: the configuration `datarights dev` runs, the bank
// with its extras, is valid.
func TestExtrasYAMLParses(t *testing.T) {
	t.Parallel()
	bankURL := "postgres://127.0.0.1:5432/demo_bank"
	text := ConfigYAML("postgres://127.0.0.1:5432/datarights", bankURL, "data") + ExtrasYAML(bankURL)
	cfg, err := config.Parse("demo.yaml", []byte(text), nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	var names []string
	for _, s := range cfg.Stores {
		names = append(names, s.Name)
	}
	if !reflect.DeepEqual(names, []string{"demo_bank", "demo_loans"}) {
		t.Errorf("stores = %v", names)
	}
	if loans := cfg.Stores[1].Tables[0]; loans.RetentionMonths != 60 || loans.RetentionFrom != "closed_at" {
		t.Errorf("loans table = %+v", loans)
	}
}

func TestSeedFillsTheLoanBook(t *testing.T) {
	t.Parallel()
	url := storagetest.NewDatabase(t, "demo")
	if err := Seed(t.Context(), url); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	for n := 1; n <= NumSubjects; n++ {
		var got int
		if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM loans WHERE user_id = $1", UserID(n)).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != len(Loans(n)) {
			t.Errorf("%s has %d loans, want %d", UserID(n), got, len(Loans(n)))
		}
	}
	if len(Loans(1)) != 0 || len(Loans(5)) != 1 || Loans(5)[0].Status != "open" || len(Loans(12)) != 2 {
		t.Errorf("loans of 1, 5, 12 = %v, %v, %v", Loans(1), Loans(5), Loans(12))
	}
}

// TestNewTypesYAMLParses: the issue 12 configuration `datarights dev` adds
// is valid, and its lookups find the demo people's ages and arrangements.
func TestNewTypesYAMLParses(t *testing.T) {
	t.Parallel()
	bankURL := "postgres://127.0.0.1:5432/demo_bank"
	text := ConfigYAML("postgres://127.0.0.1:5432/datarights", bankURL, "data") + ExtrasYAML(bankURL) + NewTypesYAML("http://127.0.0.1:9/transfers")
	cfg, err := config.Parse("demo.yaml", []byte(text), func(k string) string {
		if k == "DEMO_TRANSFER_SECRET" {
			return "a-secret-of-sixteen-bytes-or-more"
		}
		return ""
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if rc, ok := cfg.Receiver("partner_wealth"); !ok || rc.Webhook == nil || rc.Purpose.EN == "" {
		t.Errorf("receiver = %+v", rc)
	}
	if rule, ok := cfg.AgeRule("webank"); !ok || rule.NotServedBelow != 16 {
		t.Errorf("webank age rule = %+v", rule)
	}
	if got := cfg.Minors.AgeBand(15); got != "under_16" {
		t.Errorf("band of 15 = %s", got)
	}

	url := storagetest.NewDatabase(t, "demo")
	if err := Seed(t.Context(), url); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	var teen, child int
	if err := conn.QueryRow(t.Context(), `SELECT date_part('year', age(birth_date))::int FROM person_facts WHERE user_id = $1`, TeenUnder16).Scan(&teen); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(t.Context(), `SELECT date_part('year', age(birth_date))::int FROM person_facts WHERE user_id = $1`, ChildUnder14).Scan(&child); err != nil {
		t.Fatal(err)
	}
	if teen != 15 || child != 12 {
		t.Errorf("ages: teen %d, child %d", teen, child)
	}
}

// TestPolicyYAMLParses: the configuration `datarights dev` runs follows
// the WeBank policy: accounts and transactions kept 10 years, wealth
// records 20 (in months), loans 5, usage events anonymised, the core
// ConfigYAML unchanged by it.
func TestPolicyYAMLParses(t *testing.T) {
	t.Parallel()
	bankURL := "postgres://127.0.0.1:5432/demo_bank"
	text := PolicyYAML("postgres://127.0.0.1:5432/datarights", bankURL, "data")
	cfg, err := config.Parse("demo.yaml", []byte(text), nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	months := map[string]int{}
	modes := map[string]string{}
	for _, s := range cfg.Stores {
		for _, tb := range s.Tables {
			months[s.Name+"."+tb.Name], modes[s.Name+"."+tb.Name] = tb.RetentionMonths, tb.EraseMode()
		}
	}
	want := map[string]int{"demo_bank.users": 120, "demo_bank.cards": 120, "demo_bank.transactions": 120, "demo_bank.consents": 0,
		"demo_bank.app_events": 0, "demo_wealth.wealth": 240, "demo_loans.loans": 60}
	if !reflect.DeepEqual(months, want) {
		t.Errorf("retention months = %v, want %v", months, want)
	}
	if modes["demo_bank.app_events"] != "anonymize" {
		t.Errorf("app_events erase mode = %s", modes["demo_bank.app_events"])
	}
	for _, name := range []string{"account_records", "wealth_records", "loan_records"} {
		rc, ok := cfg.RetentionClass(name)
		if !ok || !strings.Contains(rc.Basis, "微众银行隐私政策") || !strings.Contains(rc.BasisEN, "WeBank privacy policy") {
			t.Errorf("class %s = %+v: want its basis in zh-CN and en", name, rc)
		}
	}
	if m := cfg.Rules("delete").VerificationMethods; !reflect.DeepEqual(m, []string{"face_check", "id_document"}) {
		t.Errorf("delete verification = %v", m)
	}
	if p, ok := cfg.Purpose("privacy_policy"); !ok || !p.ImpliesAll {
		t.Errorf("privacy_policy purpose = %+v", p)
	}
	// What `datarights dev` writes: the policy, then the new request types.
	dev := text + NewTypesYAML("http://127.0.0.1:9/transfers")
	if _, err := config.Parse("dev.yaml", []byte(dev), func(k string) string {
		if k == "DEMO_TRANSFER_SECRET" {
			return "a-secret-of-sixteen-bytes-or-more"
		}
		return ""
	}); err != nil {
		t.Errorf("the dev configuration: %v", err)
	}
	if strings.Contains(ConfigYAML("postgres://x/y", bankURL, "data"), "retention") {
		t.Error("ConfigYAML has retention: the core bank's tests count deleted rows")
	}
}

func TestSeedFillsWealthAndEvents(t *testing.T) {
	t.Parallel()
	url := storagetest.NewDatabase(t, "demo")
	if err := Seed(t.Context(), url); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	for n := 1; n <= NumSubjects; n++ {
		var holdings, events int
		if err := conn.QueryRow(t.Context(), "SELECT (SELECT count(*) FROM wealth WHERE user_id = $1), (SELECT count(*) FROM app_events WHERE user_id = $1)",
			UserID(n)).Scan(&holdings, &events); err != nil {
			t.Fatal(err)
		}
		if holdings != len(Holdings(n)) || events != AppEvents(n) {
			t.Errorf("%s has %d holdings and %d events, want %d and %d", UserID(n), holdings, events, len(Holdings(n)), AppEvents(n))
		}
	}
}
