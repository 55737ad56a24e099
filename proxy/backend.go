package proxy

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slotway/slotway/internal/kick"
)

// Errors a request can end with instead of a reply.
var (
	// errBackendDown: the request was never written, so it is safe to retry.
	errBackendDown = errors.New("backend unavailable")
	// errBackendLost: the request was written but no reply came because
	// the connection broke (the node closed it, died, or failed its health
	// checks). It may or may not have run, so only a read-only command is
	// retried (cmdInfo.resendable).
	errBackendLost = errors.New("backend connection lost")
	// errBackendCut: written, no reply, and the proxy itself gave up on the
	// connection: shutting down, or the node silent for backend_timeout,
	// maybe busy with this very command. Not retried, even a read.
	errBackendCut = errors.New("backend connection cut")
	// errNodeSilent: the watchdog dropped the connection (backend_timeout).
	errNodeSilent = errors.New("no byte from the node")
)

const askingCmd = "*1\r\n$6\r\nASKING\r\n"

// backend is one cluster node seen from the data path: a few long-lived
// pipes shared by every client. A client always uses the same pipe of a
// backend, so its commands to one node stay in order.
type backend struct {
	addr  string
	pipes []*pipe
	// resp3 are the pipes of RESP3 clients (HELLO 3 on connect, so the
	// replies they forward are RESP3); started on first use.
	resp3     atomic.Pointer[[]*pipe]
	resp3Once sync.Once
	// retired is set when the node leaves the topology: new requests are
	// refused (and retried elsewhere by the client).
	retired atomic.Bool

	dial    dialer
	loops   []*loop       // pipe i is read by loop i mod len(loops)
	timeout time.Duration // proxy.backend_timeout
	log     *slog.Logger
	m       *metrics
	ctx     context.Context
	wg      *sync.WaitGroup
}

func newBackend(addr string, n int, d dialer, loops []*loop, timeout time.Duration, log *slog.Logger, m *metrics) *backend {
	// A pipe per loop at least: a loop whose clients use pipes another
	// loop reads is woken by it for every round.
	n = max(n, len(loops))
	b := &backend{addr: addr, pipes: make([]*pipe, n), dial: d, loops: loops, timeout: timeout, log: log, m: m}
	for i := range b.pipes {
		b.pipes[i] = newPipe(addr, d, loopOf(loops, i), timeout, log, m)
	}
	return b
}

func newPipe(addr string, d dialer, lp *loop, timeout time.Duration, log *slog.Logger, m *metrics) *pipe {
	p := &pipe{
		addr: addr, dial: d, lp: lp, timeout: timeout, log: log, m: m,
		wake:  make(chan struct{}, 1),
		state: pipeConnecting,
	}
	p.wrote.L = &p.mu
	return p
}

// run keeps every pipe connected until ctx ends or the backend is retired.
func (b *backend) run(ctx context.Context, wg *sync.WaitGroup) {
	b.ctx, b.wg = ctx, wg
	b.start(b.pipes)
}

func (b *backend) start(pipes []*pipe) {
	for _, p := range pipes {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			p.run(b.ctx)
		}()
	}
}

// pipesFor returns the pipes for a client speaking RESP2 or RESP3.
func (b *backend) pipesFor(resp3 bool) []*pipe {
	if !resp3 {
		return b.pipes
	}
	if ps := b.resp3.Load(); ps != nil {
		return *ps
	}
	b.resp3Once.Do(func() {
		ps := make([]*pipe, len(b.pipes))
		for i := range ps {
			ps[i] = newPipe(b.addr, hello3(b.dial), loopOf(b.loops, i), b.timeout, b.log, b.m)
		}
		b.resp3.Store(&ps)
		b.start(ps)
		if b.retired.Load() {
			for _, p := range ps {
				p.retire(0)
			}
		}
	})
	return *b.resp3.Load()
}

// allPipes returns the RESP2 pipes and the RESP3 ones if started.
func (b *backend) allPipes() []*pipe {
	if ps := b.resp3.Load(); ps != nil {
		return append(append([]*pipe(nil), b.pipes...), (*ps)...)
	}
	return b.pipes
}

// hello3 wraps a dialer so that the connection speaks RESP3.
func hello3(d dialer) dialer {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		conn, err := d(ctx, addr)
		if err != nil {
			return nil, err
		}
		if err := switchToRESP3(conn); err != nil {
			conn.Close()
			return nil, fmt.Errorf("HELLO 3 on %s: %w", addr, err)
		}
		return conn, nil
	}
}

func switchToRESP3(conn net.Conn) error {
	replies, err := exchange(conn, []byte("*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n"), 1, time.Now().Add(5*time.Second))
	if err != nil {
		return err
	}
	if replies[0][0] != '%' {
		return fmt.Errorf("node does not speak RESP3: %s", trimCRLF(replies[0]))
	}
	return nil
}

// retire stops the backend once its in-flight requests are answered or the
// grace period ends.
func (b *backend) retire(grace time.Duration) {
	if b.retired.Swap(true) {
		return
	}
	for _, p := range b.allPipes() {
		p.retire(grace)
	}
}

// reset drops the connections (failing what is in flight) so they are
// dialled again; used when health checks say the node is gone.
func (b *backend) reset(reason error) {
	for _, p := range b.allPipes() {
		p.reset(reason)
	}
}

type dialer func(ctx context.Context, addr string) (net.Conn, error)

type pipeState uint8

const (
	pipeConnecting pipeState = iota // requests wait for the dial
	pipeUp
	pipeDown // last dial failed: refuse fast until the next attempt
	pipeClosed
)

// pipe is one backend connection shared by many clients. Clients append
// their requests' bytes to pend under mu; a writer goroutine sends
// everything pending in one write, so commands of many clients share a
// syscall. A reader goroutine matches replies to requests in FIFO order.
type pipe struct {
	addr string
	dial dialer
	lp   *loop // reads the connection (nil: a goroutine of the pipe's)
	log  *slog.Logger
	m    *metrics
	// timeout: with requests in flight and no byte read or written for
	// this long, the connection is dropped (0: never).
	timeout  time.Duration
	progress atomic.Uint64 // reads and writes done, for the watchdog
	// trimRead asks the reader to shrink its window: the pipe has gone
	// quiet, and the serve loop interrupted the reader's blocked read.
	trimRead atomic.Bool
	readCap  atomic.Int64 // the reader's window size, for tests

	wake chan struct{}

	mu       sync.Mutex
	state    pipeState
	pend     []byte     // bytes not yet written
	refs     []pendRef  // large commands between them, written in place
	pendReqs []*request // requests whose bytes are in pend or refs
	inflight fifo       // written, waiting for a reply
	conn     net.Conn
	writing  bool      // a goroutine is in conn.Write; others only append
	wrote    sync.Cond // signalled when writing goes false
	spare    []byte    // the other write buffer
	spareRef []pendRef // the other reference list
	vec      [][]byte  // the writer's scratch for a vectored write
	wv       net.Buffers
	rest     pipeRest // a loop's send the socket did not take whole
	wshrink  shrinker
	retiring bool
	deadline time.Time // retiring: close by then even if replies are missing
	resetBy  error     // why reset closed the connection, until it ends
}

// enqueue appends req to the pipe's pending bytes. It returns an error
// (and the request is not queued) when the pipe cannot take it. The caller
// must call flush once it has enqueued its whole batch.
func (p *pipe) enqueue(req *request, asking bool) error {
	p.mu.Lock()
	if p.state == pipeDown || p.state == pipeClosed || p.retiring {
		p.mu.Unlock()
		return errBackendDown
	}
	if asking {
		p.pend = append(p.pend, askingCmd...)
		req.skip = 1
	} else {
		req.skip = 0
	}
	if len(req.raw) >= vecMin {
		p.refs = append(p.refs, pendRef{at: len(p.pend), raw: req.raw})
	} else {
		p.pend = append(p.pend, req.raw...)
	}
	p.pendReqs = append(p.pendReqs, req)
	p.mu.Unlock()
	return nil
}

// flush sends what is pending. The calling client writes to the socket
// itself when no write is in progress (flat combining): a hand-off to a
// writer goroutine costs a thread wake-up per batch, which dominates
// latency on small machines. While one client writes, others only append,
// and the writer of the moment sends their bytes in its next write.
//
// yield lets clients the netpoller has just woken run first and append
// their commands, so they share this write; the caller yields once per
// batch, not once per pipe.
func (p *pipe) flush(yield bool) {
	p.mu.Lock()
	if p.state != pipeUp {
		p.mu.Unlock()
		p.kick() // the run loop sends it once connected
		return
	}
	if p.writing || !p.hasPending() {
		p.mu.Unlock()
		return
	}
	if yield {
		// With nothing else runnable, Gosched returns at once.
		p.writing = true
		p.mu.Unlock()
		runtime.Gosched()
		p.mu.Lock()
	}
	p.flushLocked(maxInlineFlushes)
	p.mu.Unlock()
}

// maxSpareBuffer bounds the write buffer a pipe keeps between writes
// (two per pipe; backend_conns pipes per master), and its read window.
const maxSpareBuffer = 8 << 20

// maxInlineFlushes bounds how many writes one client does for others
// before handing the rest to the writer goroutine.
const maxInlineFlushes = 8

// flushLocked writes pend (and the large commands referenced between its
// bytes) to the connection, releasing mu during the write. It is called
// with mu held and returns with mu held.
func (p *pipe) flushLocked(rounds int) {
	p.writing = true
	defer p.wrote.Broadcast()
	conn := p.conn
	for i := 0; p.hasPending(); i++ {
		if p.conn != conn || p.state != pipeUp {
			break // the connection died meanwhile; the run loop takes over
		}
		if i == rounds {
			p.writing = false
			p.kick()
			return
		}
		out, refs := p.takeLocked()
		p.mu.Unlock()
		var err error
		if len(refs) == 0 {
			_, err = conn.Write(out)
		} else {
			err = p.writeVec(conn, out, refs)
		}
		p.mu.Lock()
		if p.wroteLocked(conn, out, refs, err) != nil {
			break
		}
	}
	p.writing = false
}

// takeLocked takes the pending bytes and references for a write, and
// moves their requests in flight: the next commands go to the other
// buffer meanwhile. The caller has set writing.
func (p *pipe) takeLocked() (out []byte, refs []pendRef) {
	out, refs = p.pend, p.refs
	p.pend, p.refs = p.spare[:0], p.spareRef[:0]
	p.inflight.push(p.pendReqs)
	clear(p.pendReqs)
	p.pendReqs = p.pendReqs[:0]
	return out, refs
}

// wroteLocked ends a write of what takeLocked took, keeping its buffers
// for the next one. A failed write closes the connection: the reader sees
// it and fails what is in flight, and the run loop reconnects.
func (p *pipe) wroteLocked(conn net.Conn, out []byte, refs []pendRef, err error) error {
	p.progress.Add(1)
	p.m.backendWrites.Inc()
	clear(refs)
	if cap(refs) <= maxSpareRefs {
		p.spareRef = refs[:0]
	} else {
		p.spareRef = nil
	}
	// Keep the buffer for the next swap while it is in use: with large
	// values (hundreds of KiB) a fresh buffer per write cost more in
	// growslice and memmove than the proxying itself. After a burst,
	// or when it is huge, it goes (shrinker).
	// (Not keeping it must drop the old spare too: that array is pend
	// now, and the next swap would write it while clients append to it.)
	if !p.wshrink.shrink(len(out), cap(out), maxSpareBuffer) {
		p.spare = out[:0]
	} else {
		noteReleased(cap(out))
		p.spare = nil
		if !p.hasPending() && cap(p.pend) > bufKeep {
			noteReleased(cap(p.pend))
			p.pend = nil // the other one is large too, and unused
		}
	}
	if err != nil {
		conn.Close()
	}
	return err
}

func (p *pipe) kick() {
	kick.Send(p.wake)
}

// isDown reports whether the last dial failed (requests would be refused).
func (p *pipe) isDown() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state == pipeDown
}

func (p *pipe) retire(grace time.Duration) {
	p.mu.Lock()
	p.retiring = true
	p.deadline = time.Now().Add(grace)
	p.mu.Unlock()
	kick.Send(p.wake)
}

func (p *pipe) reset(reason error) {
	p.mu.Lock()
	c := p.conn
	if c != nil {
		p.resetBy = reason
	}
	p.mu.Unlock()
	if c != nil {
		p.log.Debug("backend connection reset", "node", p.addr, "reason", reason)
		c.Close()
	}
}

func (p *pipe) run(ctx context.Context) {
	backoff := newBackoff(10*time.Millisecond, 500*time.Millisecond)
	for {
		p.mu.Lock()
		if p.retiring && p.inflight.len() == 0 {
			p.closeLocked(errBackendDown)
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		conn, err := p.dial(ctx, p.addr)
		if err != nil {
			if ctx.Err() != nil {
				p.shutdown()
				return
			}
			p.m.backendDialErrors.Inc()
			p.mu.Lock()
			p.state = pipeDown
			p.failPendingLocked(errBackendDown)
			p.mu.Unlock()
			p.log.Debug("backend dial failed", "node", p.addr, "err", err)
			select {
			case <-ctx.Done():
				p.shutdown()
				return
			case <-time.After(backoff.next()):
			}
			p.mu.Lock()
			if p.state == pipeDown {
				p.state = pipeConnecting
			}
			p.mu.Unlock()
			continue
		}
		backoff.reset()
		if p.lp != nil {
			if fc, ok := newFdConn(conn); ok {
				conn = fc
			}
		}
		p.mu.Lock()
		p.conn, p.state = conn, pipeUp
		p.mu.Unlock()
		p.kick() // send what was queued while connecting
		err = p.serve(ctx, conn)
		conn.Close()
		p.mu.Lock()
		p.conn = nil
		p.state = pipeConnecting
		if p.rest.conn != nil {
			// Handed over after serve had stopped: the connection is
			// gone, so is the rest.
			p.endRestLocked(net.ErrClosed)
		}
		// A writer may still be in a write that holds clients' buffers
		// (pendRef): their requests are failed, which hands the buffers
		// back, only once it has returned. The connection is closed, so
		// that is soon.
		for p.writing {
			p.wrote.Wait()
		}
		if fc, ok := conn.(*fdConn); ok {
			fc.release() // the loop has stopped reading it: serve waited
		}
		p.inflight.failAll(p.lostErr(ctx, err))
		p.resetBy = nil
		p.mu.Unlock()
		if ctx.Err() != nil {
			p.shutdown()
			return
		}
		if !errors.Is(err, errRetired) {
			p.m.backendConnErrors.Inc()
			p.log.Warn("backend connection closed", "node", p.addr, "err", err)
		}
	}
}

var errRetired = errors.New("backend retired")

func (p *pipe) shutdown() {
	p.mu.Lock()
	p.closeLocked(errBackendDown)
	p.mu.Unlock()
}

func (p *pipe) closeLocked(err error) {
	p.state = pipeClosed
	p.failPendingLocked(err)
	p.inflight.failAll(errBackendCut)
}

// lostErr is what the requests in flight on a connection that ended with
// err fail with: errBackendCut when the proxy gave up on them (shutting
// down, or backend_timeout), errBackendLost when the connection broke.
// Called with mu held.
func (p *pipe) lostErr(ctx context.Context, err error) error {
	if ctx.Err() != nil || errors.Is(err, errNodeSilent) || errors.Is(p.resetBy, errShuttingDown) {
		return errBackendCut
	}
	return errBackendLost
}

func (p *pipe) failPendingLocked(err error) {
	for i, r := range p.pendReqs {
		r.fail(err)
		p.pendReqs[i] = nil
	}
	p.pendReqs = p.pendReqs[:0]
	p.pend = p.pend[:0]
	clear(p.refs)
	p.refs = p.refs[:0]
}

// serve runs the writer in this goroutine and the reader in another until
// the connection fails, ctx ends, or a retired pipe has drained.
func (p *pipe) serve(ctx context.Context, conn net.Conn) error {
	p.trimRead.Store(false)
	readErr := make(chan error, 1)
	if fc, ok := conn.(*fdConn); ok {
		p.lp.attach(p, fc, readErr)
	} else {
		go func() { readErr <- p.readLoop(conn) }()
	}
	var retireT <-chan time.Time
	// The watchdog runs on a goroutine of its own: this one may be the
	// pipe's writer, stuck in a write to a node that stopped reading.
	silent := make(chan error, 1)
	stop := make(chan struct{})
	defer close(stop)
	go p.watchdog(conn, silent, stop)
	for {
		select {
		case <-ctx.Done():
			conn.Close()
			<-readErr
			return ctx.Err()
		case err := <-readErr:
			select {
			case serr := <-silent: // the watchdog closed the connection
				return serr
			default:
			}
			return err
		case <-retireT:
			conn.Close()
			<-readErr
			return errRetired
		case <-p.wake:
		}
		p.mu.Lock()
		if p.rest.conn != nil {
			p.finishRestLocked()
		} else if !p.writing {
			p.flushLocked(1 << 30)
		}
		retiring, drained := p.retiring, p.inflight.len() == 0 && !p.hasPending()
		if retiring && retireT == nil {
			retireT = time.After(time.Until(p.deadline))
		}
		p.mu.Unlock()
		if retiring && drained {
			conn.Close()
			<-readErr
			return errRetired
		}
	}
}

// watchdog closes conn when commands are in flight and no byte was read
// or written for p.timeout (proxy.backend_timeout): a node that stopped
// answering, or waits for the rest of a command that will never come,
// would hold its clients forever. It says why on silent first. It also
// gives a quiet pipe's buffers back.
func (p *pipe) watchdog(conn net.Conn, silent chan<- error, stop <-chan struct{}) {
	every := time.Second
	if p.timeout > 0 {
		every = min(p.timeout/4, time.Second)
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	// It notes when the I/O count last moved (or the pipe last had nothing
	// in flight), so the data path pays an atomic add per syscall, not a
	// clock read.
	seen, since := p.progress.Load(), time.Now()
	for {
		var now time.Time
		select {
		case <-stop:
			return
		case now = <-tick.C:
		}
		p.mu.Lock()
		busy := p.inflight.len() > 0
		n := p.progress.Load()
		if n == seen && !busy {
			// No read or write since the last tick and nothing in
			// flight: a burst of large values is over.
			p.trimLocked(conn)
		}
		p.mu.Unlock()
		if n != seen || !busy {
			seen, since = n, now
		} else if p.timeout > 0 && now.Sub(since) > p.timeout {
			silent <- fmt.Errorf("%w for %v with commands in flight (proxy.backend_timeout)", errNodeSilent, p.timeout)
			conn.Close()
			return
		}
	}
}

// trimLocked gives the write buffers of a quiet pipe back, and asks the
// reader to shrink its window: the read it is blocked in is interrupted
// (a deadline in the past), so it can swap the buffer it reads into.
// Called with mu held.
func (p *pipe) trimLocked(conn net.Conn) {
	if !p.writing && !p.hasPending() {
		// Not writing: no write holds either array, and they are distinct.
		if cap(p.pend) > bufKeep {
			noteReleased(cap(p.pend))
			p.pend = nil
		}
		if cap(p.spare) > bufKeep {
			noteReleased(cap(p.spare))
			p.spare = nil
		}
	}
	if p.readCap.Load() > bufKeep {
		p.trimRead.Store(true)
		conn.SetReadDeadline(time.Now())
	}
}

// backoff is exponential with equal jitter, capped: each wait is half the
// current step plus a random share of the other half, so retries spread
// out without ever coming back at once.
type backoff struct {
	base, cap, cur time.Duration
}

func newBackoff(base, cap time.Duration) *backoff { return &backoff{base: base, cap: cap, cur: base} }

func (b *backoff) reset() { b.cur = b.base }

func (b *backoff) next() time.Duration {
	d := b.cur
	b.cur = min(2*b.cur, b.cap)
	n, err := rand.Int(rand.Reader, big.NewInt(int64(d)))
	if err != nil {
		return d
	}
	return d/2 + time.Duration(n.Int64())/2
}
