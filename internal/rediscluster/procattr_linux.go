package rediscluster

import "syscall"

// ProcAttr puts each node in its own process group, so a Ctrl-C delivered to
// the demo's foreground group does not reach the nodes before the demo has
// shut down in order. Pdeathsig kills the node if the process that started
// it dies without calling Close (a crashed test binary must not leave nodes
// behind). Pdeathsig is tied to the starting OS thread; Go only retires
// threads whose goroutine exits while locked, which never happens here.
func ProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
