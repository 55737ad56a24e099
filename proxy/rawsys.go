package proxy

// System calls a loop makes on non-blocking descriptors, without telling
// the scheduler (RawSyscall).
//
// A goroutine in a system call (Syscall) leaves its processor in a state
// sysmon takes back when the call outlasts two of its ticks (20 µs) and
// no processor is idle, which is the common case on a busy two-core
// machine: the processor is handed to another thread (a futex wake-up),
// the loop waits for one when the call returns, and sysmon, having taken
// one, keeps polling every 20 µs. A read or write of a loopback socket
// can take that long, yet never blocks; these calls keep the processor.
// (Measured: 0.53 nanosleep and 0.11 futex calls per command with
// Syscall at -P 1, mostly sysmon; see the closing note of issue 13.)
// Calls that can wait (a write to a full socket polls) use Syscall.

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

var rawZero uintptr

func rawRead(fd int, p []byte) (int, error)  { return rawIO(unix.SYS_READ, fd, p) }
func rawWrite(fd int, p []byte) (int, error) { return rawIO(unix.SYS_WRITE, fd, p) }

// rawIO is read(2) or write(2).
func rawIO(trap uintptr, fd int, p []byte) (int, error) {
	ptr := unsafe.Pointer(&rawZero)
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	n, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// rawPoll is epoll_wait with a zero timeout.
func rawPoll(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// writevOnce is one writev(2) of the first IOV_MAX non-empty segments of v
// on a non-blocking socket, with iov's array as the vector; it returns the
// vector for reuse, cleared (no references to the clients' buffers are
// kept). raw: RawSyscall, for a loop; otherwise Syscall, for a goroutine
// whose large write may outlast sysmon's tick. (0, nil): nothing to write.
func writevOnce(fd int, v [][]byte, iov []unix.Iovec, raw bool) (int, []unix.Iovec, error) {
	iov = iov[:0]
	for _, b := range v {
		if len(b) == 0 {
			continue
		}
		var e unix.Iovec
		e.Base = &b[0]
		e.SetLen(len(b))
		iov = append(iov, e)
		if len(iov) == 1024 { // IOV_MAX
			break
		}
	}
	if len(iov) == 0 {
		return 0, iov, nil
	}
	var n uintptr
	var e unix.Errno
	if raw {
		n, _, e = unix.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	} else {
		n, _, e = unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	}
	clear(iov)
	if e != 0 {
		return 0, iov, e
	}
	return int(n), iov, nil
}

// skipWritten drops the first n bytes of v: the segments written whole,
// and the start of the first one that was not.
func skipWritten(v [][]byte, n int) [][]byte {
	for len(v) > 0 && n >= len(v[0]) {
		n -= len(v[0])
		v = v[1:]
	}
	if len(v) > 0 {
		v[0] = v[0][n:]
	}
	return v
}
