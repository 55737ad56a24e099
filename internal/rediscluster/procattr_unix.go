//go:build unix && !linux

package rediscluster

import "syscall"

// ProcAttr puts each node in its own process group, so a Ctrl-C delivered to
// the demo's foreground group does not reach the nodes first.
func ProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
