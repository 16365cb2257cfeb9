package rights_test

import (
	"strings"
	"testing"
	"time"

	"github.com/datarights/datarights/rights"
)

func TestLifecycleTransitions(t *testing.T) {
	t.Parallel()
	allowed := map[[2]rights.Status]bool{}
	for _, pair := range [][2]rights.Status{
		{rights.StatusAwaitingVerification, rights.StatusVerified},
		{rights.StatusAwaitingVerification, rights.StatusRefused},
		{rights.StatusAwaitingVerification, rights.StatusCancelled},
		{rights.StatusAwaitingVerification, rights.StatusExpired},
		{rights.StatusReceived, rights.StatusVerified},
		{rights.StatusReceived, rights.StatusRefused},
		{rights.StatusReceived, rights.StatusCancelled},
		{rights.StatusVerified, rights.StatusInProgress},
		{rights.StatusVerified, rights.StatusRefused},
		{rights.StatusVerified, rights.StatusCancelled},
		{rights.StatusInProgress, rights.StatusAssembling},
		{rights.StatusInProgress, rights.StatusDelivering},
		{rights.StatusInProgress, rights.StatusFailed},
		{rights.StatusInProgress, rights.StatusCancelled},
		{rights.StatusInProgress, rights.StatusRefused}, // answered types only (jobs.Refuse)
		{rights.StatusAssembling, rights.StatusDelivering},
		{rights.StatusAssembling, rights.StatusFailed},
		{rights.StatusDelivering, rights.StatusCompleted},
		{rights.StatusDelivering, rights.StatusFailed},
		{rights.StatusFailed, rights.StatusInProgress},
		{rights.StatusFailed, rights.StatusCancelled},
		{rights.StatusReceived, rights.StatusPaused},
		{rights.StatusVerified, rights.StatusPaused},
		{rights.StatusFailed, rights.StatusPaused},
		{rights.StatusPaused, rights.StatusReceived},
		{rights.StatusPaused, rights.StatusVerified},
		{rights.StatusPaused, rights.StatusFailed},
		{rights.StatusPaused, rights.StatusRefused},
		{rights.StatusPaused, rights.StatusCancelled},
		{rights.StatusVerified, rights.StatusAwaitingApproval},
		{rights.StatusAwaitingApproval, rights.StatusVerified},
		{rights.StatusAwaitingApproval, rights.StatusRefused},
		{rights.StatusAwaitingApproval, rights.StatusCancelled},
		{rights.StatusVerified, rights.StatusAwaitingContact},
		{rights.StatusAwaitingContact, rights.StatusVerified},
		{rights.StatusAwaitingContact, rights.StatusRefused},
		{rights.StatusAwaitingContact, rights.StatusCancelled},
		{rights.StatusAwaitingContact, rights.StatusExpired},
		{rights.StatusReceived, rights.StatusFailed},
		{rights.StatusVerified, rights.StatusFailed},
		{rights.StatusAwaitingContact, rights.StatusFailed},
		{rights.StatusFailed, rights.StatusReceived},
		{rights.StatusFailed, rights.StatusVerified},
		{rights.StatusFailed, rights.StatusAwaitingContact},
		{rights.StatusFailed, rights.StatusAssembling},
		{rights.StatusFailed, rights.StatusDelivering},
		// Staff pause where they work: during store tasks, approval and a
		// contact confirmation, and resume to where the pause interrupted.
		{rights.StatusInProgress, rights.StatusPaused},
		{rights.StatusAwaitingApproval, rights.StatusPaused},
		{rights.StatusAwaitingContact, rights.StatusPaused},
		{rights.StatusPaused, rights.StatusInProgress},
		{rights.StatusPaused, rights.StatusAwaitingApproval},
		{rights.StatusPaused, rights.StatusAwaitingContact},
	} {
		allowed[pair] = true
	}
	// Every pair of statuses, checked against the table above: anything not
	// listed must be refused with a conflict.
	for _, from := range rights.Statuses {
		for _, to := range rights.Statuses {
			want := allowed[[2]rights.Status{from, to}]
			if got := rights.CanTransition(from, to); got != want {
				t.Errorf("CanTransition(%s, %s) = %v, want %v", from, to, got, want)
			}
			err := rights.CheckTransition(from, to)
			if want && err != nil {
				t.Errorf("CheckTransition(%s, %s) = %v", from, to, err)
			}
			if !want && rights.ErrorCode(err) != rights.EConflict {
				t.Errorf("CheckTransition(%s, %s) = %v, want a conflict", from, to, err)
			}
		}
	}
	for _, s := range []rights.Status{rights.StatusCompleted, rights.StatusRefused, rights.StatusCancelled, rights.StatusExpired} {
		if !s.Terminal() {
			t.Errorf("%s should be terminal", s)
		}
	}
	if rights.StatusFailed.Terminal() || rights.Status("nope").Terminal() {
		t.Error("failed and unknown statuses are not terminal")
	}
}

func TestDeadlineCountsFromTheNextDayToMidnight(t *testing.T) {
	t.Parallel()
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, shanghai)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		name   string
		policy rights.DeadlinePolicy
		start  string
		due    string // 24:00 of the last day, as 00:00 of the next
	}{
		{"15 calendar days", rights.DeadlinePolicy{Kind: rights.CalendarDays, Days: 15, Location: shanghai}, "2026-11-23 10:00", "2026-12-09 00:00"},
		{"late evening counts as that day", rights.DeadlinePolicy{Kind: rights.CalendarDays, Days: 1, Location: shanghai}, "2026-11-23 23:59", "2026-11-25 00:00"},
		{"working days skip weekends", rights.DeadlinePolicy{Kind: rights.WorkingDays, Days: 15, Location: shanghai}, "2026-11-23 09:00", "2026-12-15 00:00"},
		{"started on a Saturday", rights.DeadlinePolicy{Kind: rights.WorkingDays, Days: 1, Location: shanghai}, "2026-11-28 09:00", "2026-12-01 00:00"},
	}
	for _, tc := range cases {
		got := tc.policy.Due(at(tc.start))
		if want := at(tc.due); !got.Equal(want) {
			t.Errorf("%s: Due(%s) = %s, want %s", tc.name, tc.start, got.In(shanghai), want)
		}
	}
	// The same instant seen from UTC gives the same deadline.
	p := rights.DeadlinePolicy{Kind: rights.CalendarDays, Days: 15, Location: shanghai}
	if !p.Due(at("2026-11-23 01:00").UTC()).Equal(at("2026-12-09 00:00")) {
		t.Error("deadline depends on the zone of the start instant")
	}
}

func TestDueForWaitsForVerificationWhenTheClockStartsThere(t *testing.T) {
	t.Parallel()
	p := rights.DeadlinePolicy{Kind: rights.WorkingDays, Days: 15, ClockStart: rights.ClockVerified, Location: time.UTC}
	r := &rights.Request{ReceivedAt: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	if p.DueFor(r) != nil {
		t.Fatal("a verified-clock deadline exists before verification")
	}
	v := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	r.VerifiedAt = &v
	if got := p.DueFor(r); got == nil || !got.Equal(p.Due(v)) {
		t.Fatalf("DueFor = %v, want %v", got, p.Due(v))
	}
}

func TestIntakeValidation(t *testing.T) {
	t.Parallel()
	cat := rights.Catalog{Products: map[string]bool{"webank": true}, IdentityTypes: map[string]bool{"user_id": true, "email": true, "phone": true},
		VerificationMethods: map[string]bool{"face_check": true, "id_document": true}}
	good := func() rights.Intake {
		return rights.Intake{Product: "webank", Type: rights.TypeCopy, Identities: map[string]string{"user_id": "u-1"},
			DeliveryEmail: "a@example.com", Verification: &rights.Verification{Method: "face_check"}}
	}
	in := good()
	if err := in.Validate(rights.ChannelStaff, cat); err != nil {
		t.Fatalf("good intake: %v", err)
	}
	if in.Locale != rights.LocaleZH || in.Relation != rights.RelationSelf {
		t.Errorf("defaults not applied: locale %q relation %q", in.Locale, in.Relation)
	}
	cases := map[string]struct {
		mutate  func(*rights.Intake)
		channel rights.Channel
		field   string
	}{
		"unknown product":    {func(i *rights.Intake) { i.Product = "x" }, rights.ChannelStaff, "product"},
		"unknown right":      {func(i *rights.Intake) { i.Type = "sell" }, rights.ChannelStaff, "type"},
		"no purposes":        {func(i *rights.Intake) { i.Type = rights.TypeWithdrawConsent }, rights.ChannelStaff, "purposes"},
		"purposes on a copy": {func(i *rights.Intake) { i.Purposes = []string{"location"} }, rights.ChannelStaff, "purposes"},
		"repeated purpose": {func(i *rights.Intake) {
			i.Type, i.Purposes = rights.TypeWithdrawConsent, []string{"location", "location"}
		}, rights.ChannelStaff, "purposes"},
		"no identities":        {func(i *rights.Intake) { i.Identities = nil }, rights.ChannelStaff, "subject.identities"},
		"bad email identity":   {func(i *rights.Intake) { i.Identities = map[string]string{"email": "nope"} }, rights.ChannelStaff, "subject.identities.email"},
		"bad phone":            {func(i *rights.Intake) { i.Identities = map[string]string{"phone": "call me"} }, rights.ChannelStaff, "subject.identities.phone"},
		"display-name email":   {func(i *rights.Intake) { i.DeliveryEmail = "A <a@example.com>" }, rights.ChannelStaff, "delivery_email"},
		"no verification":      {func(i *rights.Intake) { i.Verification = nil }, rights.ChannelStaff, "verification.method"},
		"guardian no ref":      {func(i *rights.Intake) { i.Relation = rights.RelationGuardian }, rights.ChannelStaff, "verification.reference"},
		"self-service agent":   {func(i *rights.Intake) { i.Relation = rights.RelationAgent }, rights.ChannelSelfService, "requester_relation"},
		"long note":            {func(i *rights.Intake) { i.Note = strings.Repeat("x", 2001) }, rights.ChannelStaff, "note"},
		"bad locale":           {func(i *rights.Intake) { i.Locale = "de" }, rights.ChannelStaff, "locale"},
		"unknown identity":     {func(i *rights.Intake) { i.Identities = map[string]string{"openid": "o"} }, rights.ChannelStaff, "subject.identities.openid"},
		"oversized identity":   {func(i *rights.Intake) { i.Identities = map[string]string{"user_id": strings.Repeat("u", 300)} }, rights.ChannelStaff, "subject.identities.user_id"},
		"unknown method":       {func(i *rights.Intake) { i.Verification.Method = "facecheck" }, rights.ChannelStaff, "verification.method"},
		"bad ticket ref":       {func(i *rights.Intake) { i.TicketRef = "CS 42" }, rights.ChannelStaff, "ticket_ref"},
		"long ticket ref":      {func(i *rights.Intake) { i.TicketRef = strings.Repeat("A", 65) }, rights.ChannelStaff, "ticket_ref"},
		"complaint no text":    {func(i *rights.Intake) { i.Type = rights.TypeComplaint }, rights.ChannelStaff, "text"},
		"explain no text":      {func(i *rights.Intake) { i.Type = rights.TypeExplain }, rights.ChannelStaff, "text"},
		"text on a copy":       {func(i *rights.Intake) { i.Text = "why" }, rights.ChannelStaff, "text"},
		"concerns not an id":   {func(i *rights.Intake) { i.Type, i.Text, i.Concerns = rights.TypeComplaint, "late", "x" }, rights.ChannelStaff, "concerns"},
		"concerns on a copy":   {func(i *rights.Intake) { i.Concerns = "0190a0a0-0000-7000-8000-000000000000" }, rights.ChannelStaff, "concerns"},
		"transfer no receiver": {func(i *rights.Intake) { i.Type = rights.TypeTransfer }, rights.ChannelStaff, "receiver"},
		"receiver on a copy":   {func(i *rights.Intake) { i.Receiver = "partner" }, rights.ChannelStaff, "receiver"},
		"transfer by an agent": {func(i *rights.Intake) {
			i.Type, i.Receiver, i.Relation, i.Verification.Reference = rights.TypeTransfer, "partner", rights.RelationAgent, "POA-1"
		}, rights.ChannelStaff, "requester_relation"},
		"next of kin cancels": {func(i *rights.Intake) {
			i.Type, i.Relation, i.Verification.Reference = rights.TypeCancelAccount, rights.RelationNextOfKin, "death-1"
		}, rights.ChannelStaff, "type"},
	}
	for name, tc := range cases {
		in := good()
		tc.mutate(&in)
		err := in.Validate(tc.channel, cat)
		var found bool
		if e, ok := err.(*rights.Error); ok {
			for _, f := range e.Fields {
				found = found || f.Field == tc.field
			}
		}
		if !found {
			t.Errorf("%s: err = %v, want a problem with %s", name, err, tc.field)
		}
	}
}
