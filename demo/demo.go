// Package demo is a small made-up bank for `datarights dev` and end-to-end
// tests: twenty customers with cards, transactions and consents in a Postgres
// database, and the datarights configuration that points at it.
//
// Every value is fake and generated from a fixed seed, so two seeded databases
// hold the same rows and tests may rely on the counts.
package demo

import (
	"context"
	"fmt"
	"math/big"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/datarights/datarights/config"
)

// NumSubjects is how many customers the bank has.
const NumSubjects = 20

// UserID returns the user_id of customer n (1 to NumSubjects). The ids are
// deliberately lookalikes (demo-user-1 is a prefix of demo-user-10 to 19), so
// a connector that matched by prefix would leak other customers' rows.
func UserID(n int) string { return fmt.Sprintf("demo-user-%d", n) }

// Email returns the email address of customer n.
func Email(n int) string { return UserID(n) + "@example.com" }

// Phone returns the mobile number of customer n.
func Phone(n int) string { return fmt.Sprintf("1380000%04d", n) }

// Subjects returns the user_id of every customer.
func Subjects() []string {
	ids := make([]string, NumSubjects)
	for i := range ids {
		ids[i] = UserID(i + 1)
	}
	return ids
}

// Tables are the bank's tables, parents first.
var tables = []string{"users", "cards", "transactions", "consents"}

// Purposes are what a customer may consent to.
var purposes = []string{"personalised_ads", "location", "contacts", "marketing_email"}

const schema = `
CREATE TABLE IF NOT EXISTS users (
    user_id    text PRIMARY KEY,
    name       text,
    email      text UNIQUE,
    phone      text,
    id_number  text,
    city       text,
    created_at timestamptz
);
CREATE TABLE IF NOT EXISTS cards (
    card_id    text PRIMARY KEY,
    user_id    text REFERENCES users,
    pan_masked text,
    kind       text,
    opened_at  timestamptz
);
CREATE TABLE IF NOT EXISTS transactions (
    id       bigserial PRIMARY KEY,
    user_id  text REFERENCES users,
    card_id  text REFERENCES cards,
    amount   numeric(12,2),
    currency text,
    merchant text,
    at       timestamptz
);
-- The loan book: no foreign key to users, because a loan's records must
-- outlive the customer's profile (kept 5 years after the loan is settled).
-- restricted_at marks rows kept only for that obligation: the bank's
-- applications must not process them.
CREATE TABLE IF NOT EXISTS loans (
    loan_id       text PRIMARY KEY,
    user_id       text NOT NULL,
    product       text,
    principal     numeric(12,2),
    status        text,
    opened_at     timestamptz,
    closed_at     timestamptz,
    restricted_at timestamptz
);
-- The wealth-management book: like the loan book, no foreign key, kept 20
-- years after a holding is redeemed.
CREATE TABLE IF NOT EXISTS wealth (
    holding_id    text PRIMARY KEY,
    user_id       text NOT NULL,
    product       text,
    amount        numeric(14,2),
    status        text,
    opened_at     timestamptz,
    closed_at     timestamptz,
    restricted_at timestamptz
);
-- How the app was used: kept for statistics once anonymised (user_id and
-- device overwritten).
CREATE TABLE IF NOT EXISTS app_events (
    id      bigserial PRIMARY KEY,
    user_id text,
    event   text,
    device  text,
    at      timestamptz
);
-- Account records kept after a delete under the policy's retention period
-- are marked restricted (PolicyYAML); the applications must not process
-- them.
ALTER TABLE users ADD COLUMN IF NOT EXISTS restricted_at timestamptz;
ALTER TABLE cards ADD COLUMN IF NOT EXISTS restricted_at timestamptz;
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS restricted_at timestamptz;
CREATE TABLE IF NOT EXISTS consents (
    user_id    text REFERENCES users,
    purpose    text,
    granted    boolean,
    updated_at timestamptz,
    PRIMARY KEY (user_id, purpose)
);
-- The bank's identity register (KYC): dates of birth and, for customers who
-- died, what they arranged for their personal information. Not a table
-- datarights exports: the age lookup and the next-of-kin arrangement check
-- read it (NewTypesYAML).
CREATE TABLE IF NOT EXISTS person_facts (
    user_id             text PRIMARY KEY,
    birth_date          date,
    deceased_on         date,
    no_next_of_kin_access boolean NOT NULL DEFAULT false
);
`

// seedLock is the advisory lock that serialises Seed across processes
// ("demobank" in ASCII). Without it two concurrent CREATE TABLE IF NOT EXISTS
// can still collide, and both could see an empty users table.
const seedLock = 0x64656d6f62616e6b

// Seed creates the bank's tables in the database at databaseURL and fills
// them, unless the users table already has rows. It is safe to run again and
// to run concurrently: exactly one copy of the data is ever inserted.
func Seed(ctx context.Context, databaseURL string) error {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return fmt.Errorf("demo: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(seedLock)); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if _, err := tx.Exec(ctx, schema); err != nil {
			return fmt.Errorf("create tables: %w", err)
		}
		var seeded bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM users)").Scan(&seeded); err != nil {
			return fmt.Errorf("check users: %w", err)
		}
		if !seeded {
			if err := insert(ctx, tx, generate()); err != nil {
				return err
			}
		}
		// The loan book came later: a bank seeded before it gets its loans
		// now.
		var hasLoans bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM loans)").Scan(&hasLoans); err != nil {
			return fmt.Errorf("check loans: %w", err)
		}
		if !hasLoans {
			if err := insertLoans(ctx, tx); err != nil {
				return err
			}
		}
		var hasFacts bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM person_facts)").Scan(&hasFacts); err != nil {
			return fmt.Errorf("check person_facts: %w", err)
		}
		if !hasFacts {
			if err := insertFacts(ctx, tx); err != nil {
				return err
			}
		}
		// So did wealth management and the app's usage events.
		var hasWealth bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM wealth) OR EXISTS (SELECT 1 FROM app_events)").Scan(&hasWealth); err != nil {
			return fmt.Errorf("check wealth: %w", err)
		}
		if hasWealth {
			return nil
		}
		return insertWealthAndEvents(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("demo: seed: %w", err)
	}
	return nil
}

// Counts returns how many rows each of the bank's tables holds for userID.
func Counts(ctx context.Context, databaseURL, userID string) (map[string]int64, error) {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return nil, fmt.Errorf("demo: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	counts := make(map[string]int64, len(tables))
	for _, table := range tables {
		var n int64
		query := "SELECT count(*) FROM " + pgx.Identifier{table}.Sanitize() + " WHERE user_id = $1"
		if err := conn.QueryRow(ctx, query, userID).Scan(&n); err != nil {
			return nil, fmt.Errorf("demo: count %s: %w", table, err)
		}
		counts[table] = n
	}
	return counts, nil
}

// StoreConfig is the datarights store configuration for the bank whose
// database is at dsn.
func StoreConfig(dsn string) config.Store {
	return config.Store{
		Name:     "demo_bank",
		Kind:     "postgres",
		DSN:      dsn,
		Products: []string{"webank"},
		Key:      "user_id",
		// Emails lower-case, phones national: see ConfigYAML.
		IdentityFormat: &config.IdentityFormat{Email: "normalized", Phone: "national", DefaultRegion: "+86"},
		Lookups: []config.Lookup{
			{Identity: "email", Table: "users", Column: "email", KeyColumn: "user_id"},
			{Identity: "phone", Table: "users", Column: "phone", KeyColumn: "user_id"},
		},
		DisplayName: config.LocalText{ZH: "微众银行核心系统", EN: "WeBank core banking"},
		Description: config.LocalText{
			ZH: "核心银行系统：开户资料、银行卡、交易记录和授权同意，来自您开户和使用账户时提供或产生的信息。",
			EN: "The core banking system: your account details, cards, transactions and consents, from what you gave us when you opened the account and from using it.",
		},
		Consent: &config.ConsentTable{Table: "consents", Column: "user_id", PurposeColumn: "purpose",
			GrantedColumn: "granted", UpdatedColumn: "updated_at"},
		Tables: []config.Table{
			{Name: "users", Column: "user_id", Category: "profile", Label: label("个人资料", "profile"), Correctable: []config.FieldRule{
				{Field: "name", Column: "name", Validate: "text", Label: label("姓名", "name")},
				{Field: "email", Column: "email", Validate: "email", Label: label("邮箱地址", "email address")},
				{Field: "city", Column: "city", Validate: "text", Label: label("城市", "city")},
				{Field: "phone", Column: "phone", Validate: "phone", Protected: true, Label: label("手机号码", "phone number")},
				{Field: "id_number", Column: "id_number", Validate: "text", Protected: true, Label: label("证件号码", "ID number")},
			}},
			// card_id makes the order total, so a retried export is identical.
			{Name: "cards", Column: "user_id", Category: "cards", Label: label("银行卡", "cards"), OrderBy: "card_id"},
			{Name: "transactions", Column: "user_id", Category: "transactions", Label: label("交易记录", "transactions"), OrderBy: "at, id"},
			{Name: "consents", Column: "user_id", Category: "consents", Label: label("授权同意", "consents"), OrderBy: "purpose"},
		},
	}
}

func label(zh, en string) config.LocalText { return config.LocalText{ZH: zh, EN: en} }

// The generated rows. Counts per customer depend on n alone, not on the
// random source, so they stay put if the generator changes.
type (
	user struct {
		id, name, email, phone, idNumber, city string
		createdAt                              time.Time
	}
	card struct {
		id, userID, panMasked, kind string
		openedAt                    time.Time
	}
	transaction struct {
		userID, cardID, currency, merchant string
		cents                              int64
		at                                 time.Time
	}
	consent struct {
		userID, purpose string
		granted         bool
		updatedAt       time.Time
	}
	bank struct {
		users        []user
		cards        []card
		transactions []transaction
		consents     []consent
	}
)

func cardCount(n int) int        { return 1 + n%3 }
func transactionCount(n int) int { return 5 + (13*n)%36 } // 5 to 40

var (
	surnames = []struct{ hanzi, pinyin string }{
		{"张", "Zhang"}, {"王", "Wang"}, {"李", "Li"}, {"赵", "Zhao"}, {"陈", "Chen"},
		{"刘", "Liu"}, {"杨", "Yang"}, {"黄", "Huang"}, {"周", "Zhou"}, {"吴", "Wu"},
	}
	givenNames = []struct{ hanzi, pinyin string }{
		{"伟", "Wei"}, {"芳", "Fang"}, {"娜", "Na"}, {"敏", "Min"}, {"静", "Jing"},
		{"磊", "Lei"}, {"洋", "Yang"}, {"艳", "Yan"}, {"勇", "Yong"}, {"军", "Jun"},
		{"杰", "Jie"}, {"娟", "Juan"}, {"涛", "Tao"}, {"明", "Ming"}, {"超", "Chao"},
		{"秀英", "Xiuying"}, {"霞", "Xia"}, {"平", "Ping"}, {"刚", "Gang"}, {"桂英", "Guiying"},
	}
	cities    = []string{"北京", "上海", "深圳", "广州", "杭州", "成都", "武汉", "南京"}
	merchants = []string{
		"美团外卖", "滴滴出行", "京东商城", "星巴克咖啡", "全家便利店", "中国石化加油站",
		"携程旅行", "盒马鲜生", "瑞幸咖啡", "麦当劳", "海底捞火锅", "中国移动话费",
	}
	// beijing is China Standard Time, fixed so seeding needs no tz database.
	beijing = time.FixedZone("CST", 8*60*60)
)

func generate() bank {
	rng := rand.New(rand.NewPCG(20240601, 1))
	base := time.Date(2020, time.March, 1, 9, 0, 0, 0, beijing)
	var b bank
	for n := 1; n <= NumSubjects; n++ {
		surname, given := surnames[(n-1)%len(surnames)], givenNames[(n-1)%len(givenNames)]
		u := user{
			id:        UserID(n),
			name:      fmt.Sprintf("%s%s (%s %s)", surname.hanzi, given.hanzi, surname.pinyin, given.pinyin),
			email:     Email(n),
			phone:     Phone(n),
			idNumber:  idNumber(n),
			city:      cities[(n-1)%len(cities)],
			createdAt: base.AddDate(0, 0, 17*n).Add(time.Duration(rng.IntN(600)) * time.Minute),
		}
		b.users = append(b.users, u)

		var cardIDs []string
		for k := 1; k <= cardCount(n); k++ {
			kind := "debit"
			if k > 1 && rng.IntN(2) == 0 {
				kind = "credit"
			}
			c := card{
				id:        fmt.Sprintf("card-%02d-%d", n, k),
				userID:    u.id,
				panMasked: fmt.Sprintf("6214 83** **** %04d", rng.IntN(10000)),
				kind:      kind,
				openedAt:  u.createdAt.AddDate(0, 0, 30*(k-1)).Add(time.Hour),
			}
			b.cards = append(b.cards, c)
			cardIDs = append(cardIDs, c.id)
		}

		at := u.createdAt.AddDate(0, 0, 2)
		for range transactionCount(n) {
			at = at.Add(time.Duration(1+rng.IntN(72*60)) * time.Minute)
			b.transactions = append(b.transactions, transaction{
				userID:   u.id,
				cardID:   cardIDs[rng.IntN(len(cardIDs))],
				currency: "CNY",
				merchant: merchants[rng.IntN(len(merchants))],
				cents:    100 + rng.Int64N(500000),
				at:       at,
			})
		}

		for i, purpose := range purposes {
			b.consents = append(b.consents, consent{
				userID:    u.id,
				purpose:   purpose,
				granted:   rng.IntN(3) > 0,
				updatedAt: u.createdAt.Add(time.Duration(i+1) * time.Minute),
			})
		}
	}
	return b
}

// Loans returns the loans of customer n: an open one for every fifth
// customer (which blocks cancelling the account), one settled in June 2020
// (its 5 years of retention have run) for every third, and one settled in
// March 2024 (kept until 2029) for every fourth.
func Loans(n int) []Loan {
	var out []Loan
	add := func(status string, opened time.Time, closed *time.Time) {
		out = append(out, Loan{ID: fmt.Sprintf("loan-%02d-%d", n, len(out)+1), UserID: UserID(n), Status: status,
			PrincipalCents: int64(1000000 + 50000*n), OpenedAt: opened, ClosedAt: closed})
	}
	if n%3 == 0 {
		closed := time.Date(2020, time.June, n, 15, 0, 0, 0, beijing)
		add("closed", closed.AddDate(-1, 0, 0), &closed)
	}
	if n%4 == 0 {
		closed := time.Date(2024, time.March, n, 11, 0, 0, 0, beijing)
		add("closed", closed.AddDate(-2, 0, 0), &closed)
	}
	if n%5 == 0 {
		add("open", time.Date(2025, time.September, n, 10, 0, 0, 0, beijing), nil)
	}
	return out
}

// Holdings returns the wealth-management holdings of customer n: one
// still held for every second customer, and one redeemed in 2021 for every
// seventh.
func Holdings(n int) []Holding {
	var out []Holding
	add := func(status string, opened time.Time, closed *time.Time) {
		out = append(out, Holding{ID: fmt.Sprintf("wm-%02d-%d", n, len(out)+1), UserID: UserID(n), Status: status,
			AmountCents: int64(5000000 + 100000*n), OpenedAt: opened, ClosedAt: closed})
	}
	if n%2 == 0 {
		add("held", time.Date(2023, time.May, n, 10, 0, 0, 0, beijing), nil)
	}
	if n%7 == 0 {
		closed := time.Date(2021, time.November, n, 14, 0, 0, 0, beijing)
		add("redeemed", closed.AddDate(-1, 0, 0), &closed)
	}
	return out
}

// Holding is one wealth-management holding.
type Holding struct {
	ID, UserID, Status string
	AmountCents        int64
	OpenedAt           time.Time
	ClosedAt           *time.Time
}

// AppEvents is how many usage events customer n has.
func AppEvents(n int) int { return 2 + n%3 }

func insertWealthAndEvents(ctx context.Context, tx pgx.Tx) error {
	var holdings, events [][]any
	for n := 1; n <= NumSubjects; n++ {
		for _, h := range Holdings(n) {
			amount := pgtype.Numeric{Int: big.NewInt(h.AmountCents), Exp: -2, Valid: true}
			holdings = append(holdings, []any{h.ID, h.UserID, "微众银行理财", amount, h.Status, h.OpenedAt, h.ClosedAt})
		}
		for k := range AppEvents(n) {
			events = append(events, []any{UserID(n), []string{"login", "view_balance", "transfer"}[k%3],
				fmt.Sprintf("phone-%02d", n), time.Date(2025, time.October, 1+k, 9, n, 0, 0, beijing)})
		}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"wealth"}, []string{"holding_id", "user_id", "product", "amount", "status", "opened_at", "closed_at"},
		pgx.CopyFromRows(holdings)); err != nil {
		return fmt.Errorf("fill wealth: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"app_events"}, []string{"user_id", "event", "device", "at"},
		pgx.CopyFromRows(events)); err != nil {
		return fmt.Errorf("fill app_events: %w", err)
	}
	return nil
}

// Loan is one loan of the demo bank's loan book.
type Loan struct {
	ID, UserID, Status string
	PrincipalCents     int64
	OpenedAt           time.Time
	ClosedAt           *time.Time
}

func insertLoans(ctx context.Context, tx pgx.Tx) error {
	var rows [][]any
	for n := 1; n <= NumSubjects; n++ {
		for _, l := range Loans(n) {
			principal := pgtype.Numeric{Int: big.NewInt(l.PrincipalCents), Exp: -2, Valid: true}
			rows = append(rows, []any{l.ID, l.UserID, "微粒贷", principal, l.Status, l.OpenedAt, l.ClosedAt})
		}
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"loans"}, []string{"loan_id", "user_id", "product", "principal", "status", "opened_at", "closed_at"},
		pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("fill loans: %w", err)
	}
	return nil
}

// Demo people the issue 12 walkthrough uses (NewTypesYAML): a child under
// 14, a teenager under 16, a deceased customer who made no arrangement and
// one who said their next of kin may not see their data.
const (
	ChildUnder14     = "demo-user-18" // 12 years old on the day the bank is seeded
	TeenUnder16      = "demo-user-19" // 15 years old on the day the bank is seeded
	DeceasedNoWish   = "demo-user-17" // died 2026-01-10, no arrangement
	DeceasedArranged = "demo-user-16" // died 2025-11-02, no next-of-kin access
)

// insertFacts fills the identity register: adults born 1970 + n, except
// the people above.
func insertFacts(ctx context.Context, tx pgx.Tx) error {
	var rows [][]any
	for n := 1; n <= NumSubjects; n++ {
		id := fmt.Sprintf("demo-user-%d", n)
		birth := time.Date(1970+n, time.Month(1+n%12), 1+n%28, 0, 0, 0, 0, time.UTC)
		var died *time.Time
		arranged := false
		switch id {
		case ChildUnder14:
			birth = time.Now().UTC().AddDate(-12, 0, -1).Truncate(24 * time.Hour)
		case TeenUnder16:
			birth = time.Now().UTC().AddDate(-15, 0, -1).Truncate(24 * time.Hour)
		case DeceasedNoWish:
			d := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
			died = &d
		case DeceasedArranged:
			d := time.Date(2025, 11, 2, 0, 0, 0, 0, time.UTC)
			died, arranged = &d, true
		}
		rows = append(rows, []any{id, birth, died, arranged})
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"person_facts"}, []string{"user_id", "birth_date", "deceased_on", "no_next_of_kin_access"},
		pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("fill person_facts: %w", err)
	}
	return nil
}

// idNumber returns a made-up resident identity card number with a valid check
// digit (GB 11643), so validators downstream accept it.
func idNumber(n int) string {
	body := fmt.Sprintf("110101%04d%02d%02d%03d", 1970+n, 1+n%12, 1+n%28, n)
	weights := []int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i, w := range weights {
		sum += int(body[i]-'0') * w
	}
	return body + string("10X98765432"[sum%11])
}

func insert(ctx context.Context, tx pgx.Tx, b bank) error {
	copies := []struct {
		table   string
		columns []string
		rows    [][]any
	}{
		{"users", []string{"user_id", "name", "email", "phone", "id_number", "city", "created_at"}, nil},
		{"cards", []string{"card_id", "user_id", "pan_masked", "kind", "opened_at"}, nil},
		{"transactions", []string{"user_id", "card_id", "amount", "currency", "merchant", "at"}, nil},
		{"consents", []string{"user_id", "purpose", "granted", "updated_at"}, nil},
	}
	for _, u := range b.users {
		copies[0].rows = append(copies[0].rows, []any{u.id, u.name, u.email, u.phone, u.idNumber, u.city, u.createdAt})
	}
	for _, c := range b.cards {
		copies[1].rows = append(copies[1].rows, []any{c.id, c.userID, c.panMasked, c.kind, c.openedAt})
	}
	for _, t := range b.transactions {
		amount := pgtype.Numeric{Int: big.NewInt(t.cents), Exp: -2, Valid: true} // exact: no float
		copies[2].rows = append(copies[2].rows, []any{t.userID, t.cardID, amount, t.currency, t.merchant, t.at})
	}
	for _, c := range b.consents {
		copies[3].rows = append(copies[3].rows, []any{c.userID, c.purpose, c.granted, c.updatedAt})
	}
	for _, c := range copies {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{c.table}, c.columns, pgx.CopyFromRows(c.rows)); err != nil {
			return fmt.Errorf("fill %s: %w", c.table, err)
		}
	}
	return nil
}
