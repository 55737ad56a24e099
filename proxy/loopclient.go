package proxy

// A loop's clients, one batch at a time (loop.go has the loop itself):
// parse a batch out of the window, run its rounds on the loop (or detour
// what must wait to a goroutine), write the replies, give the buffers
// back when idle, and hand a client over to the goroutine-per-client code
// for good when it subscribes, opens a transaction or blocks.

import (
	"errors"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// kill closes c's connection from another goroutine (CLIENT KILL, the
// shutdown timeout); its owner cleans up.
func (c *client) kill() {
	c.killed.Store(true)
	c.hmu.Lock()
	conn, lp := c.conn, c.lp
	c.hmu.Unlock()
	switch {
	case conn != nil:
		conn.Close()
	case lp != nil:
		lp.post(c, evKill)
	}
}

// interrupt ends a goroutine-served client's wait for its next request
// (the drain); loops drain their clients themselves.
func (c *client) interrupt() {
	c.hmu.Lock()
	conn := c.conn
	c.hmu.Unlock()
	if conn != nil {
		conn.SetReadDeadline(time.Now())
	}
}

// serve runs batches from what c's window holds until one waits for
// backends or no complete request is left.
func (l *loop) serve(c *client) {
	for c.ls.state == lsIdle && c.parseBatch() {
		if c.ls.handOver && c.ls.n == 0 && c.ls.perr == nil {
			// The goroutine starts with an empty c.out: replies still
			// queued for the end of the pass go first (afterWrite hands
			// c over once they are written).
			if c.pendingOut() {
				if l.flushOut(c); c.ls.state != lsIdle {
					return
				}
			}
			l.handOver(c)
			return
		}
		if c.ls.paused && c.ls.n == 0 && c.ls.perr == nil {
			l.parkPaused(c)
			return
		}
		c.ex.reset(c.reqs[:c.ls.n], c.subs)
		c.batch.lp = l
		if !l.rounds(c, phSend) {
			return
		}
		l.endBatch(c)
	}
	if c.ls.state == lsIdle {
		l.idle(c)
	}
}

// parseBatch parses the next batch out of c's window into c.reqs, as
// serve does for a goroutine, and reports whether there is one (requests,
// a protocol error or a hand-over). It stops before a request the loop
// does not serve: that one is left in the window for the goroutine.
func (c *client) parseBatch() bool {
	set := c.s.settings()
	c.rd.lim = set.limits
	c.rd.inline = c.rd.inline[:0]
	c.resetSubs()
	n := 0
	c.ls.perr, c.ls.paused = nil, false
	for n < set.limits.MaxBatchLen && !c.quit {
		mark := c.rd.r
		args, raw, err := c.rd.next()
		if errors.Is(err, errIncomplete) {
			break
		}
		if err != nil {
			c.ls.perr = err
			break
		}
		if len(args) == 0 {
			continue
		}
		t := c.s.table.Load()
		ci, unknownSub := c.lookup(t, args)
		if c.needsGoroutine(ci, args) {
			c.rd.r = mark
			c.ls.handOver = true
			break
		}
		if c.s.pauseMode.Load() != pauseNone && c.s.pausedFor(ci) {
			c.rd.r = mark // waits in the window for the pause's end
			c.ls.paused = true
			break
		}
		if n == 0 {
			c.ls.start = time.Now()
		}
		if n == len(c.reqs) {
			c.reqs = append(c.reqs, request{batch: &c.batch})
		}
		c.prepareWith(&c.reqs[n], args, raw, t, ci, unknownSub)
		n++
	}
	c.ls.n = n
	return n > 0 || c.ls.perr != nil || c.ls.handOver || c.ls.paused
}

// needsGoroutine reports the requests that change what the connection is
// (subscriptions, transactions) or wait in Redis (blocking commands): the
// goroutine-per-client code serves those.
func (c *client) needsGoroutine(ci *cmdInfo, args [][]byte) bool {
	if c.pubsubTurn(args) || c.txTurn(args) || isMonitor(args) {
		return true
	}
	return ci != nil && (ci.kind == kindBlocking || (ci.blockArg && findKeyword(args, "BLOCK", 1) > 0))
}

// rounds runs c's batch on the loop from phase from. It reports whether
// the batch is done; otherwise it is in flight (lsBusy) or on a goroutine
// (lsDetour), and its end comes through the queue.
func (l *loop) rounds(c *client, phase roundPhase) bool {
	for {
		switch phase {
		case phSend:
			if c.adminN > 0 {
				l.detour(c, phSend) // it talks to the nodes
				return false
			}
			if !c.sendRound(&c.ex) {
				c.endRounds(&c.ex)
				return true
			}
			if c.batch.pending.Add(-1) != 0 {
				c.ls.state = lsBusy
				return false
			}
			phase = phJudge // every request failed at once
		default:
			if needsRepair(&c.ex) {
				l.detour(c, phJudge)
				return false
			}
			resend, wait := c.judge(&c.ex)
			switch {
			case !resend:
				c.endRounds(&c.ex)
				return true
			case wait:
				l.detour(c, phSleep)
				return false
			}
			phase = phSend
		}
	}
}

// needsRepair reports a reply that judge would answer by copying
// functions to a master: that talks to the cluster, not for a loop.
func needsRepair(ex *execState) bool {
	for _, reqs := range ex.sets {
		for i := range reqs {
			r := &reqs[i]
			if r.state == stSent && len(r.reply) > 0 && r.reply[0] == '-' && r.err == nil && r.info != nil &&
				(r.info.name == "fcall" || r.info.name == "fcall_ro") {
				return true
			}
		}
	}
	return false
}

// detour runs the rest of c's batch on a goroutine, from phase from; the
// goroutine posts evDetour when every request has its final reply.
func (l *loop) detour(c *client, from roundPhase) {
	c.ls.state = lsDetour
	c.batch.lp = nil
	if c.batch.done == nil {
		c.batch.done = make(chan struct{}, 1)
	}
	go func() {
		c.rounds(&c.ex, from)
		l.post(c, evDetour)
	}()
}

// endBatch appends the batch's replies to c.out and writes them.
func (l *loop) endBatch(c *client) {
	c.ls.state = lsIdle
	c.batch.lp = nil
	if c.out == nil {
		c.out = l.getBuf()[:0]
	}
	if n := c.ls.n; n > 0 {
		c.completeBatch(n, c.ls.start)
		c.commands.Add(uint64(n))
		c.ls.n = 0
	}
	if c.ls.perr != nil {
		c.s.m.protocolErrors.Inc()
		c.out = appendError(c.out, "ERR "+c.ls.perr.Error())
		c.quit = true
	}
	c.rd.shrink()
	c.noteBuffers()
	if l.ring != nil && !c.quit && !c.ls.handOver && !c.killed.Load() {
		l.queueOut(c) // written at the end of the pass (loopring.go)
		l.watch(c, unix.EPOLLIN)
		return
	}
	l.flushOut(c)
	if c.ls.state == lsIdle {
		l.afterWrite(c)
	}
}

// flushOut writes c.out; what the socket does not take waits for EPOLLOUT
// (state lsWriting).
func (l *loop) flushOut(c *client) {
	if !l.writeOut(c) && !c.ls.gone {
		c.ls.state = lsWriting
		l.watch(c, unix.EPOLLOUT)
	}
}

// afterWrite follows a batch whose replies are out.
func (l *loop) afterWrite(c *client) {
	switch {
	case c.quit || c.killed.Load():
		l.closeClient(c)
	case c.ls.handOver:
		l.handOver(c)
	default:
		l.watch(c, unix.EPOLLIN)
	}
}

// idle: c waits for its next request. Its buffers go back to the loop
// when they hold nothing, so an idle connection holds none.
func (l *loop) idle(c *client) {
	if l.s.closing.Load() {
		l.closeWritten(c)
		return
	}
	if c.rd.r == c.rd.w && len(c.rd.buf) == windowStart {
		l.putBuf(c.rd.buf)
		c.rd.buf, c.rd.r, c.rd.w, c.rd.need = nil, 0, 0, 0
	}
	if len(c.out) == 0 && cap(c.out) == windowStart {
		l.putBuf(c.out[:windowStart])
		c.out = nil
	}
}

// tick closes clients idle for longer than proxy.client_timeout and trims
// buffers that grew for a client that went quiet.
func (l *loop) tick() {
	if l.stopping.Load() && l.n == 0 {
		return
	}
	timeout := l.s.settings().clientIdleTimeout
	now := time.Now().UnixNano()
	for _, c := range l.conns {
		if c == nil || c.ls.state != lsIdle || c.pendingOut() {
			continue
		}
		quiet := time.Duration(now - c.ls.lastIO)
		switch {
		case timeout > 0 && quiet > timeout:
			l.closeClient(c)
		case quiet > loopTick:
			if c.rd.trim() {
				c.noteBuffers()
			}
			if cap(c.out) > bufKeep && len(c.out) == 0 {
				noteReleased(cap(c.out))
				c.out = nil
			}
			l.idle(c)
		}
	}
	time.AfterFunc(loopTick, func() { l.post(nil, evTick) })
}

// handOver gives c, with what its window holds, to a goroutine for good.
func (l *loop) handOver(c *client) {
	c.ls.handOver = false
	fd := c.ls.fd
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	l.conns[fd] = nil
	c.ls.gone, c.ls.fd = true, -1
	f := os.NewFile(uintptr(fd), "client")
	conn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		l.s.log.Warn("event loop: cannot hand a client over to a goroutine; closing it", "client_id", c.id, "err", err)
		l.finalize(c)
		return
	}
	l.n--
	l.s.loopClients.Add(-1)
	c.ls.state = lsDone
	c.hmu.Lock()
	c.conn, c.lp = conn, nil
	c.hmu.Unlock()
	c.fd.Store(socketFD(conn))
	c.rd.rd = conn
	if c.batch.done == nil {
		c.batch.done = make(chan struct{}, 1)
	}
	if c.rd.buf == nil {
		c.rd.buf = make([]byte, windowStart)
	}
	if c.out == nil {
		c.out = make([]byte, 0, windowStart)
	}
	if c.killed.Load() {
		conn.Close()
	}
	go func() {
		defer c.s.forget(c)
		c.serve()
	}()
}

// closeWritten closes idle c once the replies it has are written (the
// drain: they may still be queued for the end of the pass).
func (l *loop) closeWritten(c *client) {
	if c.pendingOut() && !c.ls.gone {
		if c.quit = true; !l.writeOut(c) && !c.ls.gone {
			c.ls.state = lsWriting // afterWrite closes it
			l.watch(c, unix.EPOLLOUT)
			return
		}
	}
	l.closeClient(c)
}

// closeClient closes c's socket; c is finalized now, or when its round
// ends.
func (l *loop) closeClient(c *client) {
	if !c.ls.gone {
		unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.ls.fd, nil)
		unix.Close(c.ls.fd)
		l.conns[c.ls.fd] = nil
		c.ls.gone, c.ls.fd = true, -1
	}
	if c.ls.state != lsBusy && c.ls.state != lsDetour {
		l.finalize(c)
	}
}

func (l *loop) finalize(c *client) {
	if c.ls.state == lsDone {
		return
	}
	c.ls.state = lsDone
	l.n--
	l.s.loopClients.Add(-1)
	// Its requests are answered: nothing refers to its buffers any more.
	if len(c.rd.buf) == windowStart {
		l.putBuf(c.rd.buf)
	} else {
		noteReleased(len(c.rd.buf))
	}
	if cap(c.out) == windowStart {
		l.putBuf(c.out[:windowStart])
	} else {
		noteReleased(cap(c.out))
	}
	c.rd.buf, c.out = nil, nil
	c.s.forget(c)
}
