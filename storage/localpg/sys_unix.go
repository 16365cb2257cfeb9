//go:build unix

package localpg

import (
	"errors"
	"os/exec"
	"syscall"
)

// runAs makes cmd run as the account instead of root.
func (a *account) runAs(cmd *exec.Cmd) {
	if a == nil {
		return
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// An empty Groups list drops root's supplementary groups too, so the
	// server gets exactly the account's privileges and nothing of ours.
	cmd.SysProcAttr.Credential = &syscall.Credential{
		Uid:    uint32(a.uid),
		Gid:    uint32(a.gid),
		Groups: []uint32{},
	}
}

// processAlive reports whether pid names a live process. EPERM means it
// exists but belongs to someone else, which still counts as alive.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
