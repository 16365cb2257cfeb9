package jobs

import (
	"context"
	"errors"

	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

// Effects and their record are one fact. An erasure commits in the store,
// then its report is recorded here; a worker killed between the two would
// rerun the erasure, find nothing, and tell the person nothing was held. So
// before a store erases anything its inventory — the datasets and row
// counts it holds about the subject — is taken (by the connector's own
// export, into a sink that only counts) and committed with the task; the
// erasure's report is then reconciled with it (rights.ReconcileErasure),
// whichever attempt records it. Stores worked elsewhere (webhook, manual)
// report through a callback or a confirmation recorded in one transaction,
// and take no inventory: asking them to export would be a second request.
var inventoryKinds = map[string]bool{"postgres": true, "mysql": true, "redis": true, "s3": true}

// takeInventory records, once per task, what the store holds about the
// subject before the task's erasure. It returns the inventory to reconcile
// with (nil for a store that takes none).
func (p *Pipeline) takeInventory(ctx context.Context, r *rights.Request, t *rights.Task) (*rights.StoreReport, error) {
	if t.Action != rights.ActionDelete && t.Action != rights.ActionWithdrawConsent {
		return nil, nil
	}
	if t.Inventory != nil {
		return t.Inventory, nil // taken before an earlier attempt: the store as it was
	}
	store, ok := p.settings.Store(t.Store)
	if !ok || !inventoryKinds[store.Kind] {
		return nil, nil
	}
	conn, err := p.connector(ctx, t.Store)
	if err != nil {
		return nil, err
	}
	var inv rights.StoreReport
	if counter, ok := conn.(rights.Inventorier); ok {
		inv, err = counter.Inventory(ctx, r.Subject.All())
	} else {
		inv, err = conn.Export(ctx, r.Subject.All(), countingSink{})
	}
	var waiting *rights.AwaitingConfirmation
	if errors.As(err, &waiting) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// Only names and counts are kept.
	kept := rights.StoreReport{Resolved: inv.Resolved}
	for _, d := range inv.Datasets {
		kept.Datasets = append(kept.Datasets, rights.DatasetReport{Name: d.Name, Category: d.Category, Rows: d.Rows})
	}
	if err := storage.SaveInventory(ctx, p.db.Pool, t.ID, kept); err != nil {
		return nil, err
	}
	return &kept, nil
}

// countingSink counts rows and keeps none.
type countingSink struct{}

func (countingSink) Dataset(name string, _ []string) (rights.RowWriter, error) {
	return &countingWriter{name: name}, nil
}

func (countingSink) TextDataset(name string, _ []string, _ []rights.ValueKind) (rights.TextRowWriter, error) {
	return &countingWriter{name: name}, nil
}

type countingWriter struct {
	name string
	rows int64
}

func (w *countingWriter) WriteRow([]any) error               { w.rows++; return nil }
func (w *countingWriter) WriteTextRow([][]byte, []any) error { w.rows++; return nil }
func (w *countingWriter) Close() (rights.DatasetReport, error) {
	return rights.DatasetReport{Name: w.name, Rows: w.rows}, nil
}
