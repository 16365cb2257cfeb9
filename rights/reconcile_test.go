package rights_test

import (
	"testing"

	"github.com/datarights/datarights/rights"
)

func TestReconcileErasureCountsWhatAnEarlierAttemptErased(t *testing.T) {
	t.Parallel()
	inventory := &rights.StoreReport{Resolved: true, Datasets: []rights.DatasetReport{
		{Name: "users", Rows: 1}, {Name: "loans", Rows: 2}, {Name: "cards", Rows: 3}}}
	for name, tc := range map[string]struct {
		rerun      rights.StoreReport
		resolved   bool
		deleted    map[string]int64
		reconciled bool
	}{
		"the first attempt erased everything": {
			rerun:    rights.StoreReport{},
			resolved: true, deleted: map[string]int64{"users": 1, "loans": 2, "cards": 3}, reconciled: true},
		"the first attempt rolled back": {
			rerun: rights.StoreReport{Resolved: true, Datasets: []rights.DatasetReport{
				{Name: "users", Rows: 1, Deleted: 1}, {Name: "loans", Rows: 2, Deleted: 1, Restricted: 1}, {Name: "cards", Rows: 3, Deleted: 3}}},
			resolved: true, deleted: map[string]int64{"users": 1, "loans": 1, "cards": 3}},
		"restricted rows are still there; the rest went before": {
			rerun:    rights.StoreReport{Datasets: []rights.DatasetReport{{Name: "loans", Rows: 1, Restricted: 1}}},
			resolved: true, deleted: map[string]int64{"users": 1, "loans": 1, "cards": 3}, reconciled: true},
		"new rows since the inventory": {
			rerun: rights.StoreReport{Resolved: true, Datasets: []rights.DatasetReport{
				{Name: "users", Rows: 1, Deleted: 1}, {Name: "loans", Rows: 2, Deleted: 2}, {Name: "cards", Rows: 5, Deleted: 5}}},
			resolved: true, deleted: map[string]int64{"users": 1, "loans": 2, "cards": 5}},
	} {
		got := rights.ReconcileErasure(tc.rerun, inventory)
		if got.Resolved != tc.resolved || got.Reconciled != tc.reconciled {
			t.Errorf("%s: resolved %v reconciled %v", name, got.Resolved, got.Reconciled)
		}
		for _, d := range got.Datasets {
			if d.Deleted != tc.deleted[d.Name] || d.Rows != d.Deleted+d.Anonymized+d.Restricted {
				t.Errorf("%s: %s deleted %d of %d, want %d deleted", name, d.Name, d.Deleted, d.Rows, tc.deleted[d.Name])
			}
		}
	}
	if got := rights.ReconcileErasure(rights.StoreReport{}, nil); got.Resolved || got.Reconciled {
		t.Errorf("without an inventory the report is changed: %+v", got)
	}
}

func TestReconcileWithdrawalLeavesFlippedConsentsAlone(t *testing.T) {
	t.Parallel()
	inventory := &rights.StoreReport{Resolved: true, Datasets: []rights.DatasetReport{
		{Name: "consents", Rows: 4}, {Name: "ad_profiles", Rows: 2}, {Name: "users", Rows: 1}}}
	// The rerun after a committed withdrawal: consents flipped again (1
	// row, the purpose's), the purpose's table already empty.
	rerun := rights.StoreReport{Resolved: true, Datasets: []rights.DatasetReport{
		{Name: "consents", Rows: 1}, {Name: "ad_profiles"}}}
	got := rights.ReconcileWithdrawal(rerun, inventory)
	if len(got.Datasets) != 2 || got.Datasets[0].Rows != 1 || got.Datasets[0].Deleted != 0 ||
		got.Datasets[1].Deleted != 2 || !got.Reconciled {
		t.Errorf("reconciled = %+v", got)
	}
}
