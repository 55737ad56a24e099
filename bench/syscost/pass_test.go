package syscost

// One pass of an event loop over K connections, its reads and writes
// made as the proxy's epoll loop makes them (a read(2) or write(2) each)
// against the same reads and writes batched into io_uring submissions.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const msgSize = 64

// pairs is K loopback TCP connections; the pass writes a message to w[i]
// and reads one from r[i], the other end of the same connection. One
// message per connection is always in flight (written at setup), so a
// pass reads the message the previous pass wrote: data is there when
// the read is issued, as for a socket epoll reported readable, and the
// same 64 bytes move through the same sockets in every variant.
type pairs struct {
	k    int
	w, r []int
	mem  []byte // mmapped: out[i] then in[i]; the kernel may write in[i] after prep
	sent []uint64
	got  []uint64
	done []int // bytes moved of op i (sends 0..k-1, receives k..2k-1) this pass
	ops  int   // read/write calls or SQEs made, retries included
}

func newPairs(tb testing.TB, k int) *pairs {
	tb.Helper()
	p := &pairs{k: k, sent: make([]uint64, k), got: make([]uint64, k), done: make([]int, 2*k)}
	tb.Cleanup(p.close)
	var err error
	if p.mem, err = unix.Mmap(-1, 0, 2*k*msgSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS); err != nil {
		tb.Fatal(err)
	}
	for i := range k {
		out := p.out(i)
		for j := range out {
			out[j] = 'x'
		}
		w, r, err := tcpPair()
		if err != nil {
			tb.Fatal(err)
		}
		p.w, p.r = append(p.w, w), append(p.r, r)
		p.fill(i)
		if n, err := rawWrite(w, out); n != msgSize || err != nil {
			tb.Fatalf("prefill write: %d, %v", n, err)
		}
	}
	return p
}

func (p *pairs) close() {
	for _, fd := range append(p.w, p.r...) {
		_ = unix.Close(fd)
	}
	if p.mem != nil {
		_ = unix.Munmap(p.mem)
	}
}

func (p *pairs) out(i int) []byte { return p.mem[i*msgSize : (i+1)*msgSize] }
func (p *pairs) in(i int) []byte  { return p.mem[(p.k+i)*msgSize : (p.k+i+1)*msgSize] }

// fill stamps out[i] with its connection and sequence number.
func (p *pairs) fill(i int) {
	out := p.out(i)
	binary.LittleEndian.PutUint64(out[0:], p.sent[i])
	binary.LittleEndian.PutUint64(out[8:], uint64(i))
	p.sent[i]++
}

// check verifies in[i] is the next message of connection i.
func (p *pairs) check(i int) error {
	in := p.in(i)
	seq, conn := binary.LittleEndian.Uint64(in[0:]), binary.LittleEndian.Uint64(in[8:])
	if seq != p.got[i] || conn != uint64(i) || in[msgSize-1] != 'x' {
		return fmt.Errorf("connection %d: got message %d of connection %d, want message %d", i, seq, conn, p.got[i])
	}
	p.got[i]++
	return nil
}

// tcpPair connects two non-blocking loopback TCP sockets with
// TCP_NODELAY, as the proxy's client and backend sockets are.
func tcpPair() (w, r int, err error) {
	ln, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, -1, err
	}
	defer unix.Close(ln)
	if err := unix.Bind(ln, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return -1, -1, err
	}
	if err := unix.Listen(ln, 1); err != nil {
		return -1, -1, err
	}
	sa, err := unix.Getsockname(ln)
	if err != nil {
		return -1, -1, err
	}
	if w, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
		return -1, -1, err
	}
	if err := unix.Connect(w, sa); err != nil {
		unix.Close(w)
		return -1, -1, err
	}
	if r, _, err = unix.Accept4(ln, unix.SOCK_CLOEXEC); err != nil {
		unix.Close(w)
		return -1, -1, err
	}
	for _, fd := range []int{w, r} {
		if err = unix.SetNonblock(fd, true); err == nil {
			err = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		}
		if err != nil {
			unix.Close(w)
			unix.Close(r)
			return -1, -1, err
		}
	}
	return w, r, nil
}

// rawRead and rawWrite are the proxy's (proxy/rawsys.go).
func rawRead(fd int, b []byte) (int, error)  { return rawIO(unix.SYS_READ, fd, b) }
func rawWrite(fd int, b []byte) (int, error) { return rawIO(unix.SYS_WRITE, fd, b) }

func rawIO(trap uintptr, fd int, b []byte) (int, error) {
	n, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// epollPass writes every connection's message, then reads every
// connection's: 2K calls (more only if a call moved part of a message
// or found no data, which ops counts).
func (p *pairs) epollPass() error {
	for i := range p.k {
		p.fill(i)
		if err := p.full(rawWrite, p.w[i], p.out(i)); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	for i := range p.k {
		if err := p.full(rawRead, p.r[i], p.in(i)); err != nil {
			return fmt.Errorf("read: %w", err)
		}
	}
	for i := range p.k {
		if err := p.check(i); err != nil {
			return err
		}
	}
	return nil
}

func (p *pairs) full(call func(int, []byte) (int, error), fd int, b []byte) error {
	for n := 0; n < len(b); {
		p.ops++
		m, err := call(fd, b[n:])
		switch {
		case err == unix.EAGAIN:
		case err != nil:
			return err
		case m == 0:
			return errors.New("EOF")
		default:
			n += m
		}
	}
	return nil
}

// uringMode is how a pass uses the ring.
type uringMode struct {
	name  string
	flags uint32 // io_uring_setup flags
	split bool   // sends in one enter, receives in a second
	fixed bool   // registered files (IOSQE_FIXED_FILE)
}

var uringModes = []uringMode{
	{name: "uring", flags: 0},
	{name: "uring-2enter", flags: 0, split: true},
	{name: "uring-coop", flags: setupCoopTaskrun},
	{name: "uring-single", flags: setupSingleIssuer | setupCoopTaskrun},
	{name: "uring-defer", flags: setupSingleIssuer | setupDeferTaskrun},
	{name: "uring-defer-fixed", flags: setupSingleIssuer | setupDeferTaskrun, fixed: true},
}

// uringPass queues K sends then K receives and submits them in one
// io_uring_enter that waits for all 2K completions (two enters, one per
// kind, with split). The receives are of sockets that have data, as a
// loop would receive from the sockets epoll reported readable, and the
// sends are the pass's output; a loop could submit a pass's sends with
// the next pass's receives in the same way.
func (p *pairs) uringPass(r *ring, m uringMode) error {
	for i := range p.k {
		p.fill(i)
		p.done[i] = 0
		p.prep(r, m, i)
	}
	if m.split {
		if err := p.complete(r, m, p.k); err != nil {
			return err
		}
	}
	for i := range p.k {
		p.done[p.k+i] = 0
		p.prep(r, m, p.k+i)
	}
	n := p.k
	if !m.split {
		n = 2 * p.k
	}
	if err := p.complete(r, m, n); err != nil {
		return err
	}
	for i := range p.k {
		if err := p.check(i); err != nil {
			return err
		}
	}
	return nil
}

// prep queues op (a send if below K, else a receive) for the rest of
// its message.
func (p *pairs) prep(r *ring, m uringMode, op int) {
	p.ops++
	opcode, fd, buf := uint8(opSend), p.w[op%p.k], p.out(op%p.k)
	if op >= p.k {
		opcode, fd, buf = opRecv, p.r[op-p.k], p.in(op-p.k)
	}
	var flags uint8
	if m.fixed {
		fd, flags = op, sqeFixedFile // registered as w then r: index op
	}
	r.prep(opcode, int32(fd), buf[p.done[op]:], uint64(op), flags)
}

// complete submits what is queued and reaps until n operations have
// moved their whole message, queueing the rest of any that moved part.
func (p *pairs) complete(r *ring, m uringMode, n int) error {
	var err error
	for n > 0 && err == nil {
		if err = r.enter(uint32(n)); err != nil {
			return err
		}
		r.reap(func(ud uint64, res int32) {
			op := int(ud)
			switch {
			case res == -int32(unix.EAGAIN):
				p.prep(r, m, op)
			case res < 0:
				err = fmt.Errorf("op %d: %w", op, unix.Errno(-res))
			case res == 0:
				err = fmt.Errorf("op %d: EOF", op)
			default:
				if p.done[op] += int(res); p.done[op] < msgSize {
					p.prep(r, m, op)
				} else {
					n--
				}
			}
		})
	}
	return err
}

// BenchmarkPass models one loop pass over K connections: write a 64-byte
// message to each and read one from each. ns/msg is per message moved
// (one write and its read); calls/msg counts system calls (read, write
// or io_uring_enter) per message.
func BenchmarkPass(b *testing.B) {
	for _, k := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("K=%d", k), func(b *testing.B) {
			// Each variant runs in a goroutine of its own, locked to its
			// thread: a SINGLE_ISSUER ring may only be entered by the
			// thread that created it. The epoll variant is locked alike.
			p := newPairs(b, k)
			b.Run("epoll", func(b *testing.B) {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				p.ops = 0
				cpu := cpuTime(b)
				for b.Loop() {
					if err := p.epollPass(); err != nil {
						b.Fatal(err)
					}
				}
				report(b, k, p.ops, cpuTime(b)-cpu)
			})
			for _, m := range uringModes {
				b.Run(m.name, func(b *testing.B) {
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					r := newTestRing(b, p, m)
					cpu := cpuTime(b)
					for b.Loop() {
						if err := p.uringPass(r, m); err != nil {
							b.Fatal(err)
						}
					}
					report(b, k, r.enters, cpuTime(b)-cpu)
				})
			}
		})
	}
}

// report adds the per-message figures. cpu-ns/msg is the CPU time of
// the whole process (user and system, all threads, so io_uring's io-wq
// workers too) per message: work moved off the benchmark's thread would
// show as cpu-ns/msg above ns/msg. It is counted in scheduler ticks, so
// it means something only for runs of a second or more.
func report(b *testing.B, k, calls int, cpu time.Duration) {
	msgs := float64(b.N) * float64(k)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/msgs, "ns/msg")
	b.ReportMetric(float64(cpu.Nanoseconds())/msgs, "cpu-ns/msg")
	b.ReportMetric(float64(calls)/msgs, "calls/msg")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// newTestRing sets up a ring for m (with p's sockets registered if m
// says so), or skips: the kernel may lack io_uring, forbid it
// (kernel.io_uring_disabled, a seccomp profile) or not know m's flags.
func newTestRing(tb testing.TB, p *pairs, m uringMode) *ring {
	tb.Helper()
	r, err := newRing(128, m.flags)
	switch {
	case errors.Is(err, errRingUnavailable), errors.Is(err, unix.EINVAL):
		tb.Skipf("%s: %v", m.name, err)
	case err != nil:
		tb.Fatal(err)
	}
	tb.Cleanup(r.close)
	if m.fixed {
		fds := make([]int32, 0, 2*p.k)
		for _, fd := range append(append([]int(nil), p.w...), p.r...) {
			fds = append(fds, int32(fd))
		}
		if err := r.registerFiles(fds); err != nil {
			tb.Fatal(err)
		}
	}
	return r
}

// BenchmarkUringNop is one io_uring_enter that submits a NOP and waits
// for its completion: the fixed cost of an enter, next to
// BenchmarkNullSyscall.
func BenchmarkUringNop(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r := newTestRing(b, nil, uringModes[0])
	for b.Loop() {
		r.prep(opNop, -1, nil, 0, 0)
		if err := r.enter(1); err != nil {
			b.Fatal(err)
		}
		if r.reap(func(uint64, int32) {}) != 1 {
			b.Fatal("want one completion")
		}
	}
}

// TestRing sends one message through the ring and receives it. It skips
// with the reason where io_uring is unavailable, also under CI=true: a CI
// kernel or container may legitimately disable io_uring, and the proxy
// does not depend on it.
func TestRing(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, m := range []uringMode{uringModes[0], uringModes[len(uringModes)-1]} {
		t.Run(m.name, func(t *testing.T) {
			p := newPairs(t, 1)
			r := newTestRing(t, p, m)
			// Take the prefilled message out of the way, then send one
			// and receive it in one enter.
			if err := p.full(rawRead, p.r[0], p.in(0)); err != nil {
				t.Fatal(err)
			}
			if err := p.check(0); err != nil {
				t.Fatal(err)
			}
			p.fill(0)
			p.done[0], p.done[1] = 0, 0
			p.prep(r, m, 0)
			p.prep(r, m, 1)
			if err := p.complete(r, m, 2); err != nil {
				t.Fatal(err)
			}
			if string(p.in(0)) != string(p.out(0)) {
				t.Fatalf("received %q, sent %q", p.in(0), p.out(0))
			}
			if err := p.check(0); err != nil {
				t.Fatal(err)
			}
			if r.enters != 1 {
				t.Errorf("%d io_uring_enter calls for one send and one receive, want 1", r.enters)
			}
		})
	}
}
