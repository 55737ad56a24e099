// Package syscost measures what a system call costs here by itself,
// against the loopback write and read a proxied command pays, to judge
// what batching a loop's calls into one submission (io_uring) could save:
// it saves the entries and exits, not the work inside the calls.
//
// BenchmarkPass measures that saving directly: one pass of an event loop
// over K = 1, 8 and 32 loopback TCP connections writes a 64-byte message
// to each and reads one from each, as read(2) and write(2) calls (the
// epoll loop's way, 2K calls) and as io_uring SENDs and RECVs submitted
// in one io_uring_enter (two with uring-2enter), with the setup flags
// COOP_TASKRUN, SINGLE_ISSUER and DEFER_TASKRUN and registered files as
// variants. It reports ns/msg (one write and its read), the process's
// cpu-ns/msg and calls/msg; the io_uring variants skip, with the reason,
// where the kernel lacks or forbids io_uring. The measurement, on a quiet
// machine (about three minutes):
//
//	go test -run '^$' -bench . -benchtime 2s -count 3 ./bench/syscost
package syscost

import (
	"io"
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkNullSyscall: the entry and exit of a system call that does
// nothing (getppid), what io_uring saves per call at best.
func BenchmarkNullSyscall(b *testing.B) {
	for b.Loop() {
		unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
	}
}

// BenchmarkLoopback64: one write of a 64-byte command to a loopback TCP
// connection and one read of it on the other end (two calls).
func BenchmarkLoopback64(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	w, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	r, ok := <-accepted
	if !ok {
		b.Fatal("accept failed")
	}
	defer r.Close()
	msg := make([]byte, 64)
	in := make([]byte, 64)
	for b.Loop() {
		if _, err := w.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(r, in); err != nil {
			b.Fatal(err)
		}
	}
}
