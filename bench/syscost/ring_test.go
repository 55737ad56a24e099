package syscost

// A minimal io_uring on golang.org/x/sys/unix: setup, the three mmaps,
// and the head/tail atomics, enough for SEND and RECV on sockets. It
// lives in a _test.go file, as everything in this package does, so no
// binary links it. Layouts and numbers are those of
// include/uapi/linux/io_uring.h.

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	setupCoopTaskrun  = 1 << 8  // IORING_SETUP_COOP_TASKRUN: run completion work at the next entry, no IPI
	setupSingleIssuer = 1 << 12 // IORING_SETUP_SINGLE_ISSUER: one task submits (needs a locked OS thread in Go)
	setupDeferTaskrun = 1 << 13 // IORING_SETUP_DEFER_TASKRUN: completion work only inside io_uring_enter(GETEVENTS)

	featSingleMmap = 1 << 0 // IORING_FEAT_SINGLE_MMAP: SQ and CQ rings share one mapping

	offSQRing = 0          // IORING_OFF_SQ_RING
	offCQRing = 0x8000000  // IORING_OFF_CQ_RING
	offSQEs   = 0x10000000 // IORING_OFF_SQES

	enterGetEvents = 1 << 0 // IORING_ENTER_GETEVENTS

	registerFiles = 2 // IORING_REGISTER_FILES

	opNop  = 0  // IORING_OP_NOP
	opSend = 26 // IORING_OP_SEND
	opRecv = 27 // IORING_OP_RECV

	sqeFixedFile = 1 << 0 // IOSQE_FIXED_FILE: fd is an index into the registered files
)

// ringParams is struct io_uring_params (120 bytes).
type ringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqringOffsets
	cqOff                                                                  cqringOffsets
}

type sqringOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type cqringOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

// sqe is struct io_uring_sqe (64 bytes).
type sqe struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64
	addr        uint64
	len         uint32
	opFlags     uint32 // msg_flags for SEND and RECV
	userData    uint64
	bufIndex    uint16
	personality uint16
	spliceFdIn  int32
	addr3       uint64
	_           uint64
}

// cqe is struct io_uring_cqe (16 bytes, no CQE32).
type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

// ring is one io_uring. Not safe for concurrent use; with
// setupSingleIssuer it must be used from the OS thread that created it.
type ring struct {
	fd       int
	flags    uint32
	sqMem    []byte
	cqMem    []byte
	cqShared bool // cqMem is sqMem (featSingleMmap)
	sqeMem   []byte

	sqHead *uint32 // written by the kernel
	sqTail *uint32 // written by us
	sqMask uint32
	sqes   []sqe
	tail   uint32 // our SQ tail, published at enter

	cqHead *uint32 // written by us
	cqTail *uint32 // written by the kernel
	cqMask uint32
	cqes   []cqe

	enters int // io_uring_enter calls made, EINTR retries included
}

// errRingUnavailable wraps io_uring_setup failing because the kernel
// lacks io_uring or forbids it (io_uring_disabled, seccomp).
var errRingUnavailable = errors.New("io_uring unavailable")

// newRing sets up a ring of entries submission slots (a power of two).
func newRing(entries, flags uint32) (*ring, error) {
	var p ringParams
	p.flags = flags
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if e != 0 {
		if e == unix.ENOSYS || e == unix.EPERM || e == unix.EACCES {
			return nil, fmt.Errorf("%w: io_uring_setup: %v", errRingUnavailable, e)
		}
		return nil, fmt.Errorf("io_uring_setup flags %#x: %w", flags, e)
	}
	r := &ring{fd: int(fd), flags: flags}
	if err := r.mmap(&p); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func (r *ring) mmap(p *ringParams) error {
	const prot, mflags = unix.PROT_READ | unix.PROT_WRITE, unix.MAP_SHARED | unix.MAP_POPULATE
	sqSize := int(p.sqOff.array + p.sqEntries*4)
	cqSize := int(p.cqOff.cqes + p.cqEntries*uint32(unsafe.Sizeof(cqe{})))
	single := p.features&featSingleMmap != 0
	if single {
		sqSize = max(sqSize, cqSize)
	}
	var err error
	if r.sqMem, err = unix.Mmap(r.fd, offSQRing, sqSize, prot, mflags); err != nil {
		return fmt.Errorf("mmap SQ ring: %w", err)
	}
	r.cqMem, r.cqShared = r.sqMem, single
	if !single {
		if r.cqMem, err = unix.Mmap(r.fd, offCQRing, cqSize, prot, mflags); err != nil {
			return fmt.Errorf("mmap CQ ring: %w", err)
		}
	}
	if r.sqeMem, err = unix.Mmap(r.fd, offSQEs, int(p.sqEntries)*int(unsafe.Sizeof(sqe{})), prot, mflags); err != nil {
		return fmt.Errorf("mmap SQEs: %w", err)
	}
	u32 := func(mem []byte, off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&mem[off])) }
	r.sqHead, r.sqTail = u32(r.sqMem, p.sqOff.head), u32(r.sqMem, p.sqOff.tail)
	r.sqMask = *u32(r.sqMem, p.sqOff.ringMask)
	r.tail = *r.sqTail
	r.sqes = unsafe.Slice((*sqe)(unsafe.Pointer(&r.sqeMem[0])), p.sqEntries)
	// The SQ array maps ring slots to SQEs; slot i always holds SQE i.
	array := unsafe.Slice(u32(r.sqMem, p.sqOff.array), p.sqEntries)
	for i := range array {
		array[i] = uint32(i)
	}
	r.cqHead, r.cqTail = u32(r.cqMem, p.cqOff.head), u32(r.cqMem, p.cqOff.tail)
	r.cqMask = *u32(r.cqMem, p.cqOff.ringMask)
	r.cqes = unsafe.Slice((*cqe)(unsafe.Pointer(&r.cqMem[p.cqOff.cqes])), p.cqEntries)
	return nil
}

func (r *ring) close() {
	if r.sqeMem != nil {
		_ = unix.Munmap(r.sqeMem)
	}
	if r.cqMem != nil && !r.cqShared {
		_ = unix.Munmap(r.cqMem)
	}
	if r.sqMem != nil {
		_ = unix.Munmap(r.sqMem)
	}
	_ = unix.Close(r.fd)
}

// prep queues one SQE; it is submitted at the next enter. p must stay
// valid and unmoved until the SQE completes (this package uses mmapped
// buffers).
func (r *ring) prep(op uint8, fd int32, p []byte, userData uint64, flags uint8) {
	if r.tail-atomic.LoadUint32(r.sqHead) > r.sqMask {
		panic("io_uring SQ full")
	}
	s := &r.sqes[r.tail&r.sqMask]
	*s = sqe{opcode: op, flags: flags, fd: fd, userData: userData}
	if len(p) > 0 {
		s.addr = uint64(uintptr(unsafe.Pointer(&p[0])))
		s.len = uint32(len(p))
	}
	r.tail++
}

// enter submits every queued SQE and waits until at least wait
// completions are in the CQ (one io_uring_enter; again after EINTR:
// Go's preemption signal interrupts the wait).
func (r *ring) enter(wait uint32) error {
	atomic.StoreUint32(r.sqTail, r.tail)
	for {
		r.enters++
		toSubmit := r.tail - atomic.LoadUint32(r.sqHead)
		// RawSyscall like the proxy's loop calls: the wait is for
		// sockets that already have data or room, and ends in µs.
		_, _, e := unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(toSubmit), uintptr(wait), enterGetEvents, 0, 0)
		switch e {
		case 0:
			if r.tail != atomic.LoadUint32(r.sqHead) {
				continue // not all consumed (cannot happen with a CQ twice the SQ, but be sure)
			}
			return nil
		case unix.EINTR:
			continue
		default:
			return fmt.Errorf("io_uring_enter: %w", e)
		}
	}
}

// reap calls fn for every completion in the CQ and returns how many.
func (r *ring) reap(fn func(userData uint64, res int32)) int {
	head := *r.cqHead
	tail := atomic.LoadUint32(r.cqTail)
	n := 0
	for ; head != tail; head++ {
		c := &r.cqes[head&r.cqMask]
		fn(c.userData, c.res)
		n++
	}
	atomic.StoreUint32(r.cqHead, head)
	return n
}

// registerFiles registers fds; SQEs flagged sqeFixedFile then name a
// file by its index in fds.
func (r *ring) registerFiles(fds []int32) error {
	_, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), registerFiles, uintptr(unsafe.Pointer(&fds[0])), uintptr(len(fds)), 0, 0)
	if e != 0 {
		return fmt.Errorf("io_uring_register files: %w", e)
	}
	return nil
}
