package stores

import (
	"context"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/rights"
)

// Manual is a store worked by people: a paper archive, a vendor's portal, a
// system with no API. Its tasks wait for staff to confirm what they did.
type Manual struct {
	instructions string
}

func init() {
	register("manual", func(_ context.Context, cfg config.Store) (rights.Connector, error) {
		return &Manual{instructions: cfg.Instructions}, nil
	})
}

// Export asks staff to find and hand over the subject's data.
func (m *Manual) Export(context.Context, rights.Subject, rights.Sink) (rights.StoreReport, error) {
	return rights.StoreReport{}, &rights.AwaitingConfirmation{Instructions: m.instructions}
}

// Delete asks staff to delete the subject's data.
func (m *Manual) Delete(context.Context, rights.Subject) (rights.StoreReport, error) {
	return rights.StoreReport{}, &rights.AwaitingConfirmation{Instructions: m.instructions}
}

// Close has nothing to release.
func (m *Manual) Close() error { return nil }
