package proxy

// A loop's reads and writes with io_uring (docs/architecture.md, "Event
// loops").
//
// Reads: without a ring, a loop reads each readable client as epoll
// reports it. With one, it notes them while going through the pass's
// events and reads them all in one io_uring_enter (a RECV each into the
// room its window made), then serves what came, client by client.
// (Backend replies are still read one read(2) per pipe: a pass has far
// fewer readable pipes than clients.)
//
// Writes: without a ring, a loop writes each client's replies when its batch ends
// and each pipe's commands at the start of the next pass: a write(2) per
// client batch and per pipe. With one, both wait for the end of the pass
// and go to the kernel in one io_uring_enter: the pipes' commands first
// (the nodes start on them sooner), then the clients' replies. A client
// whose replies wait is still served meanwhile: its next batch may be
// parsed and sent in the same pass, and its replies are appended behind
// the waiting ones.
//
// Who owns what: between its queueing and the end of the pass, c.out
// belongs to the loop as before (only the loop appends to it); a pipe's
// taken buffer belongs to the pass (pipe.writing is set, as for any
// writer) until wroteLocked. During the enter the kernel reads both; the
// loop's goroutine is in the call, so nothing moves or changes them.
//
// A client's replies that the socket does not take are written when it
// drains: EPOLLOUT in state lsWriting as without a ring, or, when the
// client is already busy with its next batch (or parked by CLIENT PAUSE),
// EPOLLOUT in that state (handle). A pipe's write that the socket does
// not take whole goes to the pipe's goroutine (pipeRest), which writes the
// rest with the blocking writev and ends the write; the taken buffer and
// the clients' buffers it references stay the pipe's until then, as in any
// write. So a pass sends a pipe's commands whatever their size (without a
// ring, the pass writes each pipe's commands with a writev(2) on the
// non-blocking socket, and hands the rest over the same way).

import (
	"net"

	"golang.org/x/sys/unix"
)

// ringOp is one write of a pass.
type ringOp struct {
	c    *client   // a client's replies (c.out[c.ls.outOff:]), or
	p    *pipe     // a pipe's commands:
	conn *fdConn   // its connection,
	out  []byte    // what takeLocked took,
	refs []pendRef //
	seg  int       // its segments: l.segs[seg : seg+nseg]
	nseg int
	done bool // its completion is in
	res  int32
}

// queueOut writes c.out at the end of the pass.
func (l *loop) queueOut(c *client) {
	if !c.ls.queued && c.ls.outOff < len(c.out) {
		c.ls.queued = true
		l.outq = append(l.outq, c)
	}
}

// pendingOut reports replies not yet written.
func (c *client) pendingOut() bool { return c.ls.outOff < len(c.out) }

// flushPass writes what the pass queued: pipes' commands and clients'
// replies.
func (l *loop) flushPass() {
	if l.ring == nil {
		l.writePipes()
		return
	}
	for i, p := range l.dirty {
		l.dirty[i] = nil
		l.takePipe(p)
	}
	l.dirty = l.dirty[:0]
	for i, c := range l.outq {
		l.outq[i] = nil
		c.ls.queued = false
		if c.ls.gone || c.ls.state == lsDone || c.ls.state == lsWriting || !c.pendingOut() {
			continue // closed, or waiting for EPOLLOUT with everything behind
		}
		l.ops = append(l.ops, ringOp{c: c})
	}
	l.outq = l.outq[:0]
	if len(l.ops) == 0 {
		return
	}
	l.submit()
	for i := range l.ops {
		op := &l.ops[i]
		if op.c != nil {
			l.sentOut(op.c, op)
		} else {
			l.sentPipe(op)
		}
		l.ops[i] = ringOp{}
	}
	l.ops = l.ops[:0]
	clear(l.segs)
	l.segs = l.segs[:0]
}

// writePipes writes the pass's pipe commands without a ring: a writev(2)
// each on the non-blocking socket; what the socket does not take goes to
// the pipe's goroutine as with the ring (sentPipe).
func (l *loop) writePipes() {
	for i, p := range l.dirty {
		l.dirty[i] = nil
		l.takePipe(p)
	}
	l.dirty = l.dirty[:0]
	for i := range l.ops {
		op := &l.ops[i]
		var n int
		var err error
		n, l.iovs, err = writevOnce(op.conn.fd, l.segs[op.seg:op.seg+op.nseg], l.iovs, true)
		op.done, op.res = true, int32(n)
		if errno, ok := err.(unix.Errno); ok {
			op.res = -int32(errno)
		}
		l.sentPipe(op)
		l.ops[i] = ringOp{}
	}
	l.ops = l.ops[:0]
	clear(l.segs)
	l.segs = l.segs[:0]
}

// takePipe takes p's pending commands for the pass's write, or writes
// them the way loopFlush does when the pass cannot: a TLS connection.
func (l *loop) takePipe(p *pipe) {
	p.mu.Lock()
	fc, ok := p.conn.(*fdConn)
	if p.state != pipeUp || !ok {
		p.mu.Unlock()
		p.loopFlush()
		return
	}
	if p.writing || !p.hasPending() {
		p.mu.Unlock()
		return
	}
	// No size limit as in loopFlush: the write does not wait (sentPipe).
	p.writing = true
	out, refs := p.takeLocked()
	p.mu.Unlock()
	seg := len(l.segs)
	l.segs = appendSegments(l.segs, out, refs)
	l.ops = append(l.ops, ringOp{p: p, conn: fc, out: out, refs: refs, seg: seg, nseg: len(l.segs) - seg})
}

// submit hands the ops to the kernel and collects their results. The
// vectors of SENDMSG are laid out first, in arrays that do not grow
// while the kernel holds their addresses.
func (l *loop) submit() {
	niov, nmsg := 0, 0
	for i := range l.ops {
		if n := l.ops[i].nseg; n > 1 {
			niov += n
			nmsg++
		}
	}
	if cap(l.iovs) < niov {
		l.iovs = make([]unix.Iovec, 0, niov)
	}
	if cap(l.msgs) < nmsg {
		l.msgs = make([]unix.Msghdr, 0, nmsg)
	}
	iovs, msgs := l.iovs[:0], l.msgs[:0]
	for i := range l.ops {
		if l.ring.full() {
			l.enterRing()
		}
		op := &l.ops[i]
		switch {
		case op.c != nil:
			l.ring.send(op.c.ls.fd, op.c.out[op.c.ls.outOff:], uint64(i))
		case op.nseg == 1:
			l.ring.send(op.conn.fd, l.segs[op.seg], uint64(i))
		default:
			start := len(iovs)
			for _, b := range l.segs[op.seg : op.seg+op.nseg] {
				var v unix.Iovec
				v.Base = &b[0]
				v.SetLen(len(b))
				iovs = append(iovs, v)
			}
			var m unix.Msghdr
			m.Iov = &iovs[start]
			m.SetIovlen(op.nseg)
			msgs = append(msgs, m)
			l.ring.sendmsg(op.conn.fd, &msgs[len(msgs)-1], uint64(i))
		}
	}
	l.enterRing()
	clear(iovs) // no references to the clients' buffers kept
	clear(msgs)
}

// enterRing submits what is queued and records the completions. An
// enter that fails leaves its ops without one: they are written the way
// a full socket's are.
func (l *loop) enterRing() {
	if err := l.ring.enter(); err != nil && !l.ringErr {
		l.ringErr = true
		l.s.log.Error("event loop: io_uring submission failed; the writes are retried without it", "err", err)
	}
	l.ring.reap(l.onCQE)
}

func (l *loop) reaped(userData uint64, res int32) {
	if userData < uint64(len(l.ops)) {
		op := &l.ops[userData]
		op.done, op.res = true, res
	}
}

// sentOut follows a client's send: done, waiting for EPOLLOUT, or failed.
func (l *loop) sentOut(c *client, op *ringOp) {
	if c.ls.gone || c.ls.state == lsDone {
		return
	}
	res := op.res
	if !op.done {
		res = -int32(unix.EAGAIN)
	}
	if res > 0 {
		c.ls.outOff += int(res)
	}
	switch {
	case !c.pendingOut():
		l.outWritten(c)
		if c.ls.state == lsIdle {
			l.idle(c)
		}
	case res < 0 && res != -int32(unix.EAGAIN) && res != -int32(unix.EINTR):
		l.closeClient(c)
	case c.ls.state == lsIdle:
		c.ls.state = lsWriting
		l.watch(c, unix.EPOLLOUT)
	default:
		l.watch(c, unix.EPOLLOUT) // busy or parked: handle writes the rest
	}
}

// sentPipe follows a pipe's send. What the socket did not take goes to
// the pipe's goroutine, which may wait for the node to read it; the loop
// must not (a 4 MiB SET would hold every client of the loop meanwhile).
func (l *loop) sentPipe(op *ringOp) {
	var err error
	var rest [][]byte
	switch res := op.res; {
	case op.done && res < 0 && res != -int32(unix.EAGAIN) && res != -int32(unix.EINTR):
		err = unix.Errno(-res)
	default:
		n := 0
		if op.done && res > 0 {
			n = int(res)
		}
		if v := skipWritten(l.segs[op.seg:op.seg+op.nseg], n); len(v) > 0 {
			rest = v
		}
	}
	p := op.p
	p.mu.Lock()
	if rest != nil && p.conn == op.conn && p.state == pipeUp {
		// writing stays set: the goroutine ends this write.
		p.rest = pipeRest{conn: op.conn, v: append(p.rest.v[:0], rest...), out: op.out, refs: op.refs}
		p.mu.Unlock()
		p.kick()
		return
	}
	if rest != nil {
		err = net.ErrClosed // serve has stopped: nobody would write it
	}
	if p.wroteLocked(op.conn, op.out, op.refs, err) == nil && p.hasPending() {
		p.flushLocked(maxInlineFlushes) // goroutine clients appended meanwhile
	} else {
		p.writing = false
		p.wrote.Broadcast()
	}
	p.mu.Unlock()
}

// writeOut writes c.out until it is all written (true) or the socket is
// full (false); an error closes c.
func (l *loop) writeOut(c *client) bool {
	for c.pendingOut() {
		n, err := rawWrite(c.ls.fd, c.out[c.ls.outOff:])
		if n > 0 {
			c.ls.outOff += n
			continue
		}
		switch err {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
		default:
			l.closeClient(c)
		}
		return false
	}
	l.outWritten(c)
	return true
}

// outWritten empties c.out once it is all written, giving a buffer that
// grew for a burst back.
func (l *loop) outWritten(c *client) {
	c.ls.outOff = 0
	if c.outSh.shrink(len(c.out), cap(c.out), 1<<20) {
		l.big.put(c.out)
		c.out = nil
	} else {
		c.out = c.out[:0]
	}
}

// readClients reads the clients the pass found readable, in one enter,
// and serves what came. Each window keeps its room unchanged until the
// enter returns: nothing else runs meanwhile.
func (l *loop) readClients() {
	if len(l.rq) == 0 {
		return
	}
	for i, c := range l.rq {
		if l.ring.full() {
			l.enterRing()
		}
		l.ops = append(l.ops, ringOp{c: c})
		l.ring.recv(c.ls.fd, c.rd.room(c.rd.need), uint64(i))
	}
	l.enterRing()
	for i := range l.ops {
		op := &l.ops[i]
		c := op.c
		l.rq[i] = nil
		res := op.res
		if !op.done {
			res = -int32(unix.EAGAIN)
		}
		if res > 0 {
			c.rd.wrote(int(res), c.rd.need)
			l.didRead(c, int(res), nil)
		} else if res == 0 {
			l.didRead(c, 0, nil)
		} else {
			l.didRead(c, 0, unix.Errno(-res))
		}
		l.ops[i] = ringOp{}
	}
	l.ops = l.ops[:0]
	l.rq = l.rq[:0]
}

// pipeRest is the part of a loop's send to a pipe that the socket did not
// take, and what ends that write (wroteLocked's arguments). The pipe's
// goroutine writes it; until then the pipe's writing stays set.
type pipeRest struct {
	conn *fdConn
	v    [][]byte // the unwritten segments; the array is kept for the next one
	out  []byte
	refs []pendRef
}

// finishRestLocked writes the rest a loop handed over, ends that write,
// and writes what was queued meanwhile. Called by the pipe's goroutine
// with mu held; returns with mu held.
func (p *pipe) finishRestLocked() {
	r := p.rest
	p.mu.Unlock()
	err := r.conn.writev(r.v)
	p.mu.Lock()
	p.endRestLocked(err)
	if err == nil && p.hasPending() {
		p.flushLocked(1 << 30)
	}
}

// endRestLocked ends the handed-over write with err (nil: written).
func (p *pipe) endRestLocked(err error) {
	r := p.rest
	clear(r.v) // no references to the clients' buffers kept
	p.rest = pipeRest{v: r.v[:0]}
	p.wroteLocked(r.conn, r.out, r.refs, err)
	p.writing = false
	p.wrote.Broadcast()
}
