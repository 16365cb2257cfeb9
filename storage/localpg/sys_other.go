//go:build !unix

package localpg

import "os/exec"

// runAs is a no-op where there is no root to step down from.
func (a *account) runAs(cmd *exec.Cmd) {}

// processAlive cannot tell without signals, so it assumes the process may be
// alive and leaves the decision to Postgres.
func processAlive(pid int) bool { return true }
