package storage_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

func TestQueueFiltersAssignmentAndNotes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	now := time.Now().UTC()

	ticketed, assigned, selfService, done := newRequest(), newRequest(), newRequest(), newRequest()
	ticketed.TicketRef = "CS-1/7"
	selfService.Channel = rights.ChannelSelfService
	done.Status = rights.StatusCompleted
	for _, r := range []*rights.Request{ticketed, assigned, selfService, done} {
		if err := b.db.InTx(ctx, func(tx pgx.Tx) error { return storage.InsertRequest(ctx, tx, r, nil) }); err != nil {
			t.Fatal(err)
		}
	}
	var note storage.Note
	err := b.db.InTx(ctx, func(tx pgx.Tx) error {
		if err := storage.SetAssignee(ctx, tx, assigned.ID, "alice", now); err != nil {
			return err
		}
		note = storage.Note{RequestID: assigned.ID, Author: "alice", Body: "called back", CreatedAt: now}
		return storage.AddNote(ctx, tx, &note)
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := func(f storage.RequestFilter) []string {
		list, _, err := storage.ListRequests(ctx, b.db.Pool, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range list {
			out = append(out, r.ID)
		}
		slices.Sort(out)
		return out
	}
	sorted := func(s ...string) []string { slices.Sort(s); return s }
	for name, c := range map[string]struct {
		f    storage.RequestFilter
		want []string
	}{
		"ticket ref":  {storage.RequestFilter{Search: "CS-1/7"}, sorted(ticketed.ID)},
		"id":          {storage.RequestFilter{Search: assigned.ID}, sorted(assigned.ID)},
		"partial ref": {storage.RequestFilter{Search: "CS-1"}, nil},
		"assignee":    {storage.RequestFilter{Assignee: "alice"}, sorted(assigned.ID)},
		"unassigned":  {storage.RequestFilter{Unassigned: true, Open: true}, sorted(ticketed.ID, selfService.ID)},
		"channel":     {storage.RequestFilter{Channel: rights.ChannelSelfService}, sorted(selfService.ID)},
		"open":        {storage.RequestFilter{Open: true}, sorted(ticketed.ID, assigned.ID, selfService.ID)},
		"open, staff": {storage.RequestFilter{Open: true, Channel: rights.ChannelStaff}, sorted(ticketed.ID, assigned.ID)},
	} {
		if got := ids(c.f); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", name, got, c.want)
		}
	}
	got, err := storage.GetRequest(ctx, b.db.Pool, assigned.ID)
	if err != nil || got.Assignee != "alice" || got.TicketRef != "" {
		t.Errorf("assigned request = %+v, %v", got, err)
	}
	notes, err := storage.ListNotes(ctx, b.db.Pool, assigned.ID)
	if err != nil || len(notes) != 1 || notes[0].ID != note.ID || notes[0].Body != "called back" {
		t.Errorf("notes = %v, %v", notes, err)
	}
}

func TestAssignableStaff(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	now := time.Now()
	for i, s := range []rights.Staff{
		{Name: "zoe", Role: rights.RoleAgent},
		{Name: "bob", Role: rights.RoleApprover, Products: []string{"webank"}},
		{Name: "carl", Role: rights.RoleAgent, Products: []string{"wechat"}},
		{Name: "dana", Role: rights.RoleAdmin},
		{Name: "erin", Role: rights.RoleAuditor},
		{Name: "gone", Role: rights.RoleAgent},
	} {
		if err := storage.PutStaffToken(ctx, b.db.Pool, s, string(rune('a'+i))+"0", now, "test"); err != nil {
			t.Fatal(err)
		}
	}
	if err := storage.RevokeStaffToken(ctx, b.db.Pool, "gone", now); err != nil {
		t.Fatal(err)
	}
	names, err := storage.AssignableStaff(ctx, b.db.Pool, "webank")
	if want := []string{"bob", "erin", "zoe"}; err != nil || !slices.Equal(names, want) {
		t.Errorf("AssignableStaff(webank) = %v, %v; want %v", names, err, want)
	}
}
