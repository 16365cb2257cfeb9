package jobs

import (
	"context"
	"testing"
	"time"
)

// TestReplaceDeadlineOutlivesTheLivenessWindow: a job's context outlives
// River's short deadline (the liveness window) but not a cancellation.
func TestReplaceDeadlineOutlivesTheLivenessWindow(t *testing.T) {
	t.Parallel()
	parent, cancelParent := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancelParent()
	ctx, cancel := replaceDeadline(parent, time.Hour)
	defer cancel()
	<-parent.Done()
	if err := ctx.Err(); err != nil {
		t.Fatalf("the job's context ended with River's deadline: %v", err)
	}
	if d, ok := ctx.Deadline(); !ok || time.Until(d) < 59*time.Minute {
		t.Errorf("deadline %v, want an hour from now", d)
	}

	parent2, cancelParent2 := context.WithCancel(context.Background())
	ctx2, cancel2 := replaceDeadline(parent2, time.Hour)
	defer cancel2()
	cancelParent2()
	<-ctx2.Done() // a cancellation (shutdown, a cancelled job) goes through
}
