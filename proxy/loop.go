package proxy

// The event-loop I/O core (docs/architecture.md, "Event loops").
//
// Plain TCP clients are served by a few loops (one per core) instead of a
// goroutine each. A loop owns its clients' sockets in an epoll set of its
// own (level-triggered); one pass reads the clients that are readable,
// parses and routes their requests, appends them to the backend pipes,
// flushes each pipe once, and writes each client whose batch is answered.
// No read is made that is expected to fail, no goroutine is woken per
// client, and the commands of every client read in a pass share one write
// per pipe.
//
// The loop parks in Go's netpoller, not in epoll_wait: its epoll set is
// itself a pollable file (an epoll fd is readable while events are
// ready), so the goroutine sleeps like any network read and the runtime
// keeps its processors for the pipes' goroutines. (A loop blocked in
// epoll_wait would hold a processor in a system call until sysmon took it
// back, and on two cores the pipes' replies would wait for that.) The
// pipes' reader goroutines post finished rounds to the loop's queue and
// wake a sleeping loop by expiring its read deadline, which readies the
// goroutine without a system call.
//
// What a loop does not run itself goes to a goroutine: a batch that must
// wait (parked retries, copying functions to a master) runs its remaining
// rounds on a goroutine and comes back; a client that subscribes, starts
// a transaction or sends a blocking command is handed over for good to
// the goroutine-per-client code (client.serve), with its unread bytes, so
// nothing is reordered or lost.

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// loopState is where a loop's client is.
type loopState uint8

const (
	lsIdle    loopState = iota // reading requests
	lsBusy                     // a round is in flight; its end comes through the queue
	lsDetour                   // a goroutine runs the batch's remaining rounds
	lsWriting                  // the reply did not fit the socket: waiting for EPOLLOUT
	lsPaused                   // its next command waits for CLIENT PAUSE to end (pause.go)
	lsDone                     // finalized: no longer the loop's
)

// loopClient is a loop's state of one client; only the loop's goroutine
// touches it.
type loopClient struct {
	fd       int
	state    loopState
	gone     bool      // the socket is closed; finalized once no round is in flight
	events   uint32    // what epoll watches
	n        int       // requests in the batch
	start    time.Time // when the batch's first request was parsed
	perr     error     // protocol error that ends the batch and the client
	handOver bool      // after this batch, a goroutine serves the client
	paused   bool      // the batch stopped before a command the pause holds
	outOff   int       // bytes of out already written
	queued   bool      // in the loop's outq: out is written at the end of the pass
	lastIO   int64     // loop clock of the last read, for timeouts and trims
}

type loopEvent uint8

const (
	evAdd     loopEvent = iota // a new client
	evRound                    // a round's last reply is in
	evDetour                   // a goroutine finished the batch's rounds
	evKill                     // CLIENT KILL, or the shutdown timeout
	evTick                     // housekeeping: idle timeout, buffer trims
	evDrain                    // shutdown: idle clients go, busy ones after their batch
	evUnpause                  // CLIENT PAUSE ended: serve the parked clients
	evPipe                     // a backend connection to read (loopread.go)
)

type loopItem struct {
	c  *client
	ev loopEvent
	lp *loopPipe // evPipe
}

// loop serves its share of the client connections.
type loop struct {
	s      *Server
	idx    int // in s.loops
	epfd   int
	ep     *os.File // epfd, pollable: the loop parks reading it
	rc     syscall.RawConn
	events []unix.EpollEvent
	conns  []*client   // by fd
	paused []*client   // parked by CLIENT PAUSE (lsPaused)
	n      int         // clients it owns
	pipes  []*loopPipe // backend connections it reads, by fd
	npipes int
	dirty  []*pipe  // pipes appended to in this pass
	free   [][]byte // windowStart buffers lent to clients while they are active
	big    bigBuffers
	now    int64 // unix nanos, once per pass

	// With io_uring (loopring.go): the pass's client reads, submitted
	// together after its events, and its writes, at its end. nil ring: a
	// read(2) or write(2) each, when ready.
	ring    *uring
	ringErr bool      // a submission failed (logged once)
	outq    []*client // clients whose replies wait for the end of the pass
	rq      []*client // readable clients, read together after the pass's events
	ops     []ringOp
	segs    [][]byte      // the pipes' write segments, by ops
	iovs    []unix.Iovec  // SENDMSG vectors
	msgs    []unix.Msghdr //
	onCQE   func(uint64, int32)
	wait    func(uintptr) bool
	woken   int // events the last wait found

	mu       sync.Mutex
	queue    []loopItem
	spare    []loopItem
	sleeping atomic.Bool
	stopping atomic.Bool
	done     chan struct{}
}

// loopTick is how often a loop closes idle clients (proxy.client_timeout)
// and trims the buffers of clients gone quiet.
const loopTick = time.Second

func newLoop(s *Server) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	ep := os.NewFile(uintptr(epfd), "slotway-loop")
	// Deadlines work only on files the netpoller took: that is how the
	// loop is woken.
	if err := ep.SetReadDeadline(time.Time{}); err != nil {
		ep.Close()
		return nil, errors.New("the runtime poller does not take an epoll descriptor: " + err.Error())
	}
	rc, err := ep.SyscallConn()
	if err != nil {
		ep.Close()
		return nil, err
	}
	l := &loop{
		s: s, epfd: epfd, ep: ep, rc: rc,
		events: make([]unix.EpollEvent, 256),
		done:   make(chan struct{}),
	}
	l.wait = l.check
	l.onCQE = l.reaped
	return l, nil
}

// startLoops starts proxy.event_loops loops (one per core). Without loops
// (an old kernel, or a runtime that cannot poll them) clients get a
// goroutine each.
func (s *Server) startLoops() {
	n := s.cfg.EventLoops
	switch n {
	case -1:
		return
	case 0:
		n = runtime.GOMAXPROCS(0)
	}
	for i := range n {
		l, err := newLoop(s)
		if err != nil {
			s.log.Warn("event loops unavailable; serving each client on a goroutine", "err", err)
			for _, l := range s.loops {
				l.stopping.Store(true)
				l.wake()
				<-l.done
				l.ep.Close()
				if l.ring != nil {
					l.ring.close()
				}
			}
			s.loops = nil
			return
		}
		l.idx = i
		if s.cfg.IOUring != "off" {
			if l.ring, err = newUring(); err != nil {
				if i == 0 {
					s.log.Info("io_uring unavailable; event loops write with a system call each", "err", err)
				}
				l.ring = nil
			}
		}
		s.loops = append(s.loops, l)
		go l.run()
		time.AfterFunc(loopTick, func() { l.post(nil, evTick) })
	}
}

// stopLoops ends the loops once their clients are gone.
func (s *Server) stopLoops() {
	for _, l := range s.loops {
		l.stopping.Store(true)
		l.wake()
	}
	for _, l := range s.loops {
		<-l.done
		l.ep.Close()
		if l.ring != nil {
			l.ring.close()
		}
	}
}

// adopt gives a plain TCP connection to a loop; false leaves it to the
// caller (it then serves it on a goroutine).
func (s *Server) adopt(conn *net.TCPConn, id uint64) bool {
	if len(s.loops) == 0 {
		return false
	}
	fd, ok := dupSocket(conn)
	if !ok {
		return false
	}
	c := s.newLoopClient(id, fd, conn.RemoteAddr(), conn.LocalAddr())
	conn.Close()
	l := s.loops[id%uint64(len(s.loops))]
	c.lp = l
	s.loopClients.Add(1)
	s.mu.Lock()
	s.clients[c] = struct{}{}
	s.clientWG.Add(1)
	s.mu.Unlock()
	l.post(c, evAdd)
	return true
}

func (s *Server) newLoopClient(id uint64, fd int, raddr, laddr net.Addr) *client {
	c := &client{
		s: s, id: id, raddr: raddr, laddr: laddr,
		rd:      &reader{rd: fdReader(fd), lim: s.settings().limits},
		created: time.Now(),
	}
	c.ls.fd = fd
	if len(s.settings().users) == 0 {
		c.user = openUser
	}
	c.proto.Store(2)
	c.fd.Store(int32(fd))
	c.batch.c = c
	return c
}

// forget ends the server's count of c.
func (s *Server) forget(c *client) {
	s.mu.Lock()
	delete(s.clients, c)
	s.mu.Unlock()
	s.clientWG.Done()
}

// post queues an event for the loop and wakes it if it sleeps.
func (l *loop) post(c *client, ev loopEvent) {
	l.postItem(loopItem{c: c, ev: ev})
}

func (l *loop) postItem(it loopItem) {
	l.mu.Lock()
	l.queue = append(l.queue, it)
	l.mu.Unlock()
	l.wake()
}

var longAgo = time.Unix(1, 0)

func (l *loop) wake() {
	if l.sleeping.Load() && l.sleeping.CompareAndSwap(true, false) {
		// An expired deadline readies the parked goroutine at once.
		l.ep.SetReadDeadline(longAgo)
	}
}

func (l *loop) queued() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queue) > 0
}

func (l *loop) run() {
	defer close(l.done)
	for {
		l.now = time.Now().UnixNano()
		l.runQueue()
		l.flushPass()
		if l.stopping.Load() && l.n == 0 && l.npipes == 0 {
			return
		}
		// One epoll_wait per pass: sleep polls before it parks, and
		// returns at once when there is work.
		n := l.sleep()
		l.now = time.Now().UnixNano()
		for i := range n {
			l.handle(&l.events[i])
		}
		l.readClients()
	}
}

// poll returns the number of ready events, without waiting.
func (l *loop) poll() int {
	for {
		n, err := rawPoll(l.epfd, l.events)
		if err == unix.EINTR {
			continue
		}
		return max(n, 0)
	}
}

// sleep returns the number of ready events, parking the loop first when
// there are none and nothing is queued.
func (l *loop) sleep() int {
	l.woken = 0
	if err := l.rc.Read(l.wait); err != nil {
		// Woken by wake (or a wake that came late): clear the deadline.
		l.sleeping.Store(false)
		l.ep.SetReadDeadline(time.Time{})
		return 0
	}
	return l.woken
}

// check runs before the loop parks and after each netpoller wake-up: it
// reports whether there is work, so an event that came before the park is
// not missed.
func (l *loop) check(uintptr) bool {
	l.sleeping.Store(true)
	if l.queued() || l.stopping.Load() {
		l.sleeping.Store(false)
		return true
	}
	if l.woken = l.poll(); l.woken > 0 {
		l.sleeping.Store(false)
		return true
	}
	return false
}

func (l *loop) runQueue() {
	l.mu.Lock()
	items := l.queue
	l.queue, l.spare = l.spare[:0], items
	l.mu.Unlock()
	for i, it := range items {
		items[i] = loopItem{}
		c := it.c
		switch it.ev {
		case evAdd:
			l.add(c)
		case evRound, evDetour:
			if c.ls.state != lsBusy && c.ls.state != lsDetour {
				continue
			}
			if c.ls.gone {
				l.finalize(c)
				continue
			}
			if it.ev == evDetour || l.rounds(c, phJudge) {
				l.endBatch(c)
				l.serve(c)
			}
		case evUnpause:
			l.resumePaused()
		case evKill:
			if c.lp == l && c.ls.state != lsDone {
				l.closeClient(c)
			}
		case evTick:
			l.tick()
			l.trimPipes()
			l.big.trim()
		case evPipe:
			l.addPipe(it.lp)
		case evDrain:
			for _, c := range l.conns {
				if c != nil && c.ls.state == lsIdle {
					l.closeWritten(c)
				}
			}
		}
	}
}

func (l *loop) add(c *client) {
	fd := c.ls.fd
	if fd >= len(l.conns) {
		l.conns = append(l.conns, make([]*client, fd+1-len(l.conns)+len(l.conns)/2)...)
	}
	l.conns[fd] = c
	l.n++
	c.ls.lastIO = l.now
	c.ls.events = unix.EPOLLIN
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
		l.s.log.Warn("event loop: cannot watch a client connection; closing it", "client_id", c.id, "err", err)
		l.closeClient(c)
		return
	}
	if c.killed.Load() || l.s.closing.Load() {
		l.closeClient(c)
	}
}

func (l *loop) handle(ev *unix.EpollEvent) {
	fd := int(ev.Fd)
	if fd < len(l.pipes) && l.pipes[fd] != nil {
		l.readPipe(l.pipes[fd])
		return
	}
	if fd >= len(l.conns) || l.conns[fd] == nil {
		return
	}
	c := l.conns[fd]
	switch c.ls.state {
	case lsIdle:
		l.readable(c)
	case lsWriting:
		c.ls.state = lsIdle
		l.flushOut(c)
		if c.ls.state == lsIdle {
			l.afterWrite(c)
			l.serve(c)
		}
	default:
		// A round is in flight: what the client sends meanwhile waits in
		// the socket (level-triggered, it would be reported on every
		// pass). A hang-up is reported whatever is watched: close now;
		// the client is finalized when its round ends.
		if ev.Events&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			l.closeClient(c)
			return
		}
		if c.pendingOut() {
			// Replies of its last batch the socket did not take
			// (loopring.go): EPOLLOUT is watched until they are out.
			if ev.Events&unix.EPOLLOUT == 0 || !l.writeOut(c) {
				return
			}
		}
		l.watch(c, 0)
	}
}

// watch sets what epoll reports for c.
func (l *loop) watch(c *client, events uint32) {
	if c.ls.events == events || c.ls.gone {
		return
	}
	c.ls.events = events
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.ls.fd, &unix.EpollEvent{Events: events, Fd: int32(c.ls.fd)})
}

func (l *loop) readable(c *client) {
	if l.s.closing.Load() {
		l.closeClient(c) // draining: no new requests
		return
	}
	if c.rd.buf == nil {
		c.rd.buf = l.getBuf()
		c.rd.r, c.rd.w, c.rd.need = 0, 0, 0
	}
	if l.ring != nil {
		l.rq = append(l.rq, c) // read with the pass's other clients (loopring.go)
		return
	}
	n, err := c.rd.readFrom(c.rd.rd, c.rd.need)
	l.didRead(c, n, err)
}

// didRead follows a read of n bytes (0: err, or the end of the stream).
func (l *loop) didRead(c *client, n int, err error) {
	if n == 0 {
		if err == unix.EAGAIN || err == unix.EINTR {
			l.idle(c)
			return
		}
		l.closeClient(c)
		return
	}
	c.ls.lastIO = l.now
	l.serve(c)
}

func (l *loop) markDirty(p *pipe) {
	for _, q := range l.dirty {
		if q == p {
			return
		}
	}
	l.dirty = append(l.dirty, p)
}

// loopWriteMax: a loop writes a TLS pipe's pending bytes itself up to
// this much; more goes to the pipe's writer goroutine. A write the kernel
// takes in pieces (a 4 MiB SET waits for the node to read it) would hold
// every client of the loop meanwhile. (Plain pipes are written without
// waiting and hand the rest over: writePipes, sentPipe.)
const loopWriteMax = 256 << 10

// loopFlush is flush for a loop where the pass cannot write the pipe
// itself (TLS, or not connected): large batches are written by the
// pipe's own goroutine.
func (p *pipe) loopFlush() {
	p.mu.Lock()
	n := len(p.pend)
	for _, r := range p.refs {
		n += len(r.raw)
	}
	p.mu.Unlock()
	if n > loopWriteMax {
		p.kick()
		return
	}
	p.flush(false)
}

// dupSocket returns a copy of conn's descriptor that Go's poller does not
// know: closing conn then removes its own registration, and the socket
// lives on in the copy, which an epoll set of a loop can watch. The copy
// shares the socket's O_NONBLOCK: a read with nothing to read returns
// EAGAIN.
func dupSocket(conn *net.TCPConn) (int, bool) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return -1, false
	}
	fd := -1
	if cerr := rc.Control(func(sfd uintptr) {
		fd, err = unix.FcntlInt(sfd, unix.F_DUPFD_CLOEXEC, 0)
	}); cerr != nil || err != nil || fd < 0 {
		return -1, false
	}
	return fd, true
}

// fdReader reads a loop client's socket. The socket is non-blocking: a
// read with nothing to read returns EAGAIN.
type fdReader int

func (fd fdReader) Read(p []byte) (int, error) {
	n, err := rawRead(int(fd), p)
	switch {
	case n > 0:
		return n, nil
	case err == nil:
		return 0, io.EOF
	}
	return 0, err
}
