package main

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/datarights/datarights/jobs"
	"github.com/datarights/datarights/rights"
)

// TestErasureReportSurvivesACrashAfterTheStoreCommitted: every store's
// delete (Postgres, MySQL, Redis, S3) commits, and then its worker "dies"
// before the result is recorded (the injected fault), once per store. The
// rerun finds nothing left, yet the request's report, its audit and the
// email state the rows actually erased — equal to what the stores lost —
// and the subject as found.
func TestErasureReportSurvivesACrashAfterTheStoreCommitted(t *testing.T) {
	t.Parallel()
	e, a := prepareAllStores(t)
	var (
		mu      sync.Mutex
		crashed = map[string]bool{}
	)
	e.pipelineHook = func(c *jobs.Config) {
		c.AfterStoreEffect = func(store string, action rights.TaskAction) error {
			mu.Lock()
			defer mu.Unlock()
			key := store + "/" + string(action)
			if crashed[key] || (action != rights.ActionDelete && action != rights.ActionWithdrawConsent) {
				return nil
			}
			crashed[key] = true
			return errors.New("injected: the worker died after the store committed")
		}
	}
	e.start()
	before := a.snapshot(t, e)
	user := "demo-user-2"
	ticket := byEmail(copyTicket(user), 2)
	ticket["type"] = "delete"
	done, id := e.submitAndComplete(t, ticket)
	after := a.snapshot(t, e)

	mu.Lock()
	if len(crashed) < 4 {
		t.Errorf("crashed after %v, want every store", crashed)
	}
	mu.Unlock()
	// What each store lost, by the snapshot's dataset prefix.
	lost := map[string]int64{}
	for dataset, users := range before {
		store := dataset
		if prefix, _, ok := strings.Cut(dataset, "."); ok {
			store = map[string]string{"bank": "demo_bank", "loyalty": "loyalty"}[prefix]
		}
		lost[store] += int64(len(users[user]) - len(after[dataset][user]))
	}
	for _, task := range asSlice(done["tasks"]) {
		task := task.(map[string]any)
		store := task["store"].(string)
		report := task["report"].(map[string]any)
		var deleted int64
		for _, d := range asSlice(report["datasets"]) {
			if n, ok := d.(map[string]any)["deleted"].(float64); ok {
				deleted += int64(n)
			}
		}
		if report["resolved"] != true || deleted != lost[store] || lost[store] == 0 {
			t.Errorf("store %s: report resolved %v, %d deleted; the store lost %d rows", store, report["resolved"], deleted, lost[store])
		}
	}
	var reconciled int
	for _, ev := range asSlice(done["audit"]) {
		ev := ev.(map[string]any)
		if ev["action"] == "task.succeeded" && ev["detail"].(map[string]any)["reconciled"] == true {
			reconciled++
		}
	}
	if reconciled < 4 {
		t.Errorf("%d task.succeeded events say reconciled, want 4: %v", reconciled, auditActions(done))
	}
	msg := e.smtp.WaitForMessage(t, id+".completion@datarights", 0)
	if strings.Contains(msg.Text, "no data") || strings.Contains(msg.Text, "not found") {
		t.Errorf("the email says nothing was found:\n%s", msg.Text)
	}

	// A withdrawal of consent erases the cache's keys kept for the purpose;
	// it too crashes after the cache committed. The report still counts
	// the keys erased; the consents it flipped are reported as flipped.
	before = a.snapshot(t, e)
	withdrawer := "demo-user-1"
	withdrawal := byEmail(copyTicket(withdrawer), 1)
	withdrawal["type"], withdrawal["purposes"] = "withdraw_consent", []string{"personalised_ads"}
	done, _ = e.submitAndComplete(t, withdrawal)
	after = a.snapshot(t, e)
	lostKeys := int64(len(before["sessions"][withdrawer]) - len(after["sessions"][withdrawer]))
	for _, task := range asSlice(done["tasks"]) {
		task := task.(map[string]any)
		if task["store"] != "sessions" {
			continue
		}
		var deleted int64
		for _, d := range asSlice(task["report"].(map[string]any)["datasets"]) {
			if n, ok := d.(map[string]any)["deleted"].(float64); ok {
				deleted += int64(n)
			}
		}
		if deleted != lostKeys || lostKeys == 0 {
			t.Errorf("withdrawal: the cache's report says %d keys deleted, it lost %d", deleted, lostKeys)
		}
	}
}
