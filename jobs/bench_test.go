package jobs_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/datarights/datarights/jobs"
	"github.com/datarights/datarights/rights"
	"github.com/datarights/datarights/storage"
)

type benchBundle struct {
	db       *storage.DB
	pipeline *jobs.Pipeline
}

func setupBench(b *testing.B) benchBundle {
	b.Helper()
	db, _, p := newDemoPipeline(b, "bench")
	return benchBundle{db: db, pipeline: p}
}

// BenchmarkIntake measures a staff submit: validation, the request row, its
// audit event and the first job, in one transaction, from 8 callers.
func BenchmarkIntake(b *testing.B) {
	bb := setupBench(b)
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(callersPerCPU)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			in := rights.Intake{Product: "webank", Type: rights.TypeCopy,
				Identities:    map[string]string{"user_id": fmt.Sprintf("demo-user-%d", i%20+1)},
				DeliveryEmail: "someone@example.com", Verification: &rights.Verification{Method: "face_check"}}
			if _, _, err := bb.pipeline.SubmitStaff(ctx, "bench", in, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRawRiverInsert is the baseline: River's own single insert, from
// the same number of callers, against the same server.
func BenchmarkRawRiverInsert(b *testing.B) {
	bb := setupBench(b)
	ctx := context.Background()
	client, err := river.NewClient(riverpgxv5.New(bb.db.Pool), &river.Config{})
	if err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	b.SetParallelism(callersPerCPU)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := client.Insert(ctx, noopArgs{N: n.Add(1)}, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// callersPerCPU gives 8 concurrent callers on the 2-core reference machine,
// the setting of the brief's raw River numbers.
const callersPerCPU = 4

type noopArgs struct {
	N int64 `json:"n"`
}

func (noopArgs) Kind() string { return "noop" }
