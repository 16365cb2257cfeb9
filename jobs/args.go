// Package jobs is the durable pipeline that moves a request from intake to
// delivery on River: one job kind per step, each step one transaction that
// records the state change, its audit event and the next job, and completes
// its own job, so that a worker killed at any line leaves either all of the
// step or none of it.
package jobs

import (
	"fmt"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/datarights/datarights/config"
)

// Pipeline steps. Args hold ids only: personal data never goes into River's
// tables, where operators and the River UI can see job arguments.

// VerifyArgs records a staff ticket's identity verification.
type VerifyArgs struct {
	RequestID string `json:"request_id"`
	// Resumed counts the request's pauses, so the step enqueued again on
	// resume is not mistaken for a duplicate of the one that ran before.
	Resumed int `json:"resumed,omitempty"`
}

func (VerifyArgs) Kind() string { return "verify" }

// SendCodeArgs emails a self-service requester a one-time code.
type SendCodeArgs struct {
	RequestID string `json:"request_id"`
}

func (SendCodeArgs) Kind() string { return "send_code" }

// PlanArgs creates one task per store for a verified request.
type PlanArgs struct {
	RequestID string `json:"request_id"`
	Resumed   int    `json:"resumed,omitempty"` // see VerifyArgs
}

func (PlanArgs) Kind() string { return "plan" }

// StoreTaskArgs runs one store task.
type StoreTaskArgs struct {
	RequestID string `json:"request_id"`
	TaskID    string `json:"task_id"`
	// Retry counts staff retries of the task: a retry is a new job even
	// while River is still finishing the one that gave up.
	Retry int `json:"retry,omitempty"`
}

func (StoreTaskArgs) Kind() string { return "store_task" }

// InsertOpts puts store tasks on a queue of their own (worker.queues): a
// deployment can run them on hosts near the stores and everything else
// elsewhere.
func (StoreTaskArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: config.QueueStoreTasks}
}

// AssembleArgs builds the export archive from the store tasks' parts.
type AssembleArgs struct {
	RequestID string `json:"request_id"`
}

func (AssembleArgs) Kind() string { return "assemble" }

// DeliverArgs tells the requester the outcome (with the export, if any).
type DeliverArgs struct {
	RequestID string `json:"request_id"`
}

func (DeliverArgs) Kind() string { return "deliver" }

// uniqueByArgs makes a second insert of the same step for the same request a
// no-op while the first is still to run or running. Finished jobs do not
// count: a resumed request must be able to run a step again, and every step
// checks the request's state anyway.
var uniqueByArgs = &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
	rivertype.JobStateRunning, rivertype.JobStateScheduled,
}}}

// SLASweepArgs checks open requests for due reminders and breaches. It runs
// periodically on the leader.
type SLASweepArgs struct{}

func (SLASweepArgs) Kind() string { return "sla_sweep" }

// OpenCountsSweepArgs counts the open requests for the metrics. It runs
// periodically on the leader.
type OpenCountsSweepArgs struct{}

func (OpenCountsSweepArgs) Kind() string { return "open_counts_sweep" }

// NoticeArgs sends the requester a notice that changes no state (e.g. a
// refusal, whose state change is already recorded).
type NoticeArgs struct {
	RequestID string `json:"request_id"`
	Notice    string `json:"notice"` // e.g. "refusal"
	// Seq numbers notices of a kind a request can have several of (its
	// pauses and extensions, from 1); 0 for the others.
	Seq int `json:"seq,omitempty"`
}

// deliveryKind is the notice's key in deliveries and its Message-ID part.
func (a NoticeArgs) deliveryKind() string {
	if a.Seq == 0 {
		return a.Notice
	}
	return fmt.Sprintf("%s.%d", a.Notice, a.Seq)
}

func (NoticeArgs) Kind() string { return "notice" }
