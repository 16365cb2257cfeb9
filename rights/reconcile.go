package rights

// ReconcileErasure is the report of an erasure that may be a rerun: report
// is what this run did, inventory what the store held before the first
// attempt changed anything. Rows the inventory counted that this run found
// neither deleted, anonymized nor restricted are gone, and only an earlier
// attempt of this erasure removed them (its store committed, its worker
// died before the report was recorded): they count as deleted, and the
// subject as found. Without that, the rerun would find nothing and the
// person would be told nothing was held, the regulator's record would miss
// the rows erased, and third parties would not be told.
func ReconcileErasure(report StoreReport, inventory *StoreReport) StoreReport {
	if inventory == nil {
		return report
	}
	out := report
	out.Datasets = append([]DatasetReport(nil), report.Datasets...)
	index := map[string]int{}
	for i, d := range out.Datasets {
		index[d.Name] = i
	}
	for _, before := range inventory.Datasets {
		i, ok := index[before.Name]
		if !ok {
			out.Datasets = append(out.Datasets, DatasetReport{Name: before.Name, Category: before.Category})
			i = len(out.Datasets) - 1
			index[before.Name] = i
		}
		d := &out.Datasets[i]
		accounted := d.Deleted + d.Anonymized + d.Restricted
		if missing := before.Rows - accounted; missing > 0 {
			d.Deleted += missing
			d.Rows = d.Deleted + d.Anonymized + d.Restricted
			out.Reconciled = true
		}
	}
	// Found before the first attempt is found: the rerun may not find the
	// subject because the first attempt deleted the rows it is found by.
	out.Resolved = report.Resolved || inventory.Resolved
	return out
}

// ReconcileWithdrawal is ReconcileErasure for a withdrawal of consent,
// which erases only the datasets kept for the purposes withdrawn: only the
// datasets its report erases from are reconciled (a consent table whose
// rows it flipped, not erased, is left as reported), and the inventory's
// other datasets are none of its business.
func ReconcileWithdrawal(report StoreReport, inventory *StoreReport) StoreReport {
	if inventory == nil {
		return report
	}
	erased := StoreReport{Resolved: inventory.Resolved}
	for _, d := range report.Datasets {
		if d.Rows != d.Deleted+d.Anonymized+d.Restricted {
			continue // rows changed in place (consents flipped)
		}
		for _, before := range inventory.Datasets {
			if before.Name == d.Name {
				erased.Datasets = append(erased.Datasets, before)
			}
		}
	}
	return ReconcileErasure(report, &erased)
}
