//go:build unix && !linux

package redistest

import "syscall"

// procAttr puts each node in its own process group, so a Ctrl-C delivered to
// the demo's foreground group does not reach the nodes first.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
