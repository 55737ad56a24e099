package proxy

// Pipes read by a loop (docs/architecture.md, "Event loops").
//
// A backend's pipe i is read by loop i mod loops, and a loop's clients
// send through the pipes it reads. So a round trip costs the loop no
// wake-up from another goroutine: the replies are read in the loop's own
// pass, the pass after the one that wrote the commands, and the clients
// they answer are written in the same pass. (With a reader goroutine per
// pipe, each round woke that goroutine and then the loop.) Goroutine
// clients share the same pipes; their replies wake them through their
// batch's channel as before.
//
// The loop's epoll set watches the socket, and Go's poller does not: the
// pipe keeps a duplicate of the descriptor (fdConn) and the net.Conn it
// was dialled as is closed. Writes stay with the pipe's writers (the loop
// flushing, a goroutine client, the pipe's own goroutine); a write to a
// full socket waits in poll(2) only off the loop: a loop's write does not
// wait and hands the rest to the pipe's goroutine (sentPipe).

import (
	"errors"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// fdConn is a backend connection a loop reads.
type fdConn struct {
	fd           int
	laddr, raddr net.Addr

	mu   sync.Mutex
	shut bool // Close was called, or the descriptor was released

	iov []unix.Iovec // writev's, kept: one writer at a time (pipe.writing)
}

// newFdConn takes conn's socket out of Go's poller; false if conn is not
// a plain TCP connection (TLS: its goroutine reads it).
func newFdConn(conn net.Conn) (*fdConn, bool) {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return nil, false
	}
	fd, ok := dupSocket(tc)
	if !ok {
		return nil, false
	}
	c := &fdConn{fd: fd, laddr: tc.LocalAddr(), raddr: tc.RemoteAddr()}
	tc.Close()
	return c, true
}

func (c *fdConn) Read(b []byte) (int, error) { return fdReader(c.fd).Read(b) }

func (c *fdConn) Write(b []byte) (int, error) {
	total := 0
	for len(b) > 0 {
		n, err := rawWrite(c.fd, b)
		if n > 0 {
			total += n
			b = b[n:]
			continue
		}
		if err = c.waitWritable(err); err != nil {
			return total, err
		}
	}
	return total, nil
}

// writev writes v with as few system calls as the socket allows.
//
// Not unix.Writev: besides an allocation per call, it tells the race
// detector the buffers were read after the call returned, with nothing
// ordering that before the client reuses its buffer once the reply is
// in. The reply cannot come before the last byte was copied, so that
// order holds; net.Buffers' writev (the goroutine core's) says nothing
// either.
func (c *fdConn) writev(v [][]byte) error {
	for len(v) > 0 {
		var n int
		var err error
		n, c.iov, err = writevOnce(c.fd, v, c.iov, false)
		if n == 0 && err == nil {
			return nil // only empty segments were left
		}
		if n <= 0 {
			if err = c.waitWritable(err); err != nil {
				return err
			}
			continue
		}
		v = skipWritten(v, n)
	}
	return nil
}

// waitWritable handles a write that wrote nothing: EAGAIN waits until the
// socket takes more (or is shut down), EINTR retries, anything else fails.
func (c *fdConn) waitWritable(err error) error {
	switch {
	case err == unix.EINTR:
		return nil
	case err != unix.EAGAIN:
		if err == nil {
			err = errors.New("write returned nothing")
		}
		return &net.OpError{Op: "write", Net: "tcp", Source: c.laddr, Addr: c.raddr, Err: err}
	}
	fds := []unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLOUT}}
	for {
		if _, err := unix.Poll(fds, -1); err != unix.EINTR {
			return nil
		}
	}
}

// Close shuts the connection down: the loop reads its end and detaches
// it, and a write in progress fails. The descriptor itself is released by
// the pipe once neither reads nor writes it (release).
func (c *fdConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.shut {
		c.shut = true
		unix.Shutdown(c.fd, unix.SHUT_RDWR)
	}
	return nil
}

func (c *fdConn) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
	c.shut = true
}

func (c *fdConn) LocalAddr() net.Addr  { return c.laddr }
func (c *fdConn) RemoteAddr() net.Addr { return c.raddr }

// Deadlines do not apply: the loop never blocks in a read, and the pipe's
// watchdog (backend_timeout) ends a write that waits for ever by closing
// the connection.
func (c *fdConn) SetDeadline(time.Time) error      { return nil }
func (c *fdConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fdConn) SetWriteDeadline(time.Time) error { return nil }

// loopPipe is a pipe's connection while a loop reads it.
type loopPipe struct {
	p    *pipe
	fc   *fdConn
	rr   *replyReader
	errc chan<- error // why the loop stopped reading it (once)
}

// attach makes l read fc's replies; the first read error, or the end of
// the connection after Close, is sent to errc.
func (l *loop) attach(p *pipe, fc *fdConn, errc chan<- error) {
	rr := newReplyReader()
	rr.win.grow = l.big.get
	l.postItem(loopItem{ev: evPipe, lp: &loopPipe{p: p, fc: fc, rr: rr, errc: errc}})
}

func (l *loop) addPipe(lp *loopPipe) {
	fd := lp.fc.fd
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
		lp.errc <- err
		return
	}
	if fd >= len(l.pipes) {
		l.pipes = append(l.pipes, make([]*loopPipe, fd+1-len(l.pipes)+len(l.pipes)/2)...)
	}
	l.pipes[fd] = lp
	l.npipes++
}

// readPipe reads replies once; a pipe whose connection ended is detached.
func (l *loop) readPipe(lp *loopPipe) {
	n, err := lp.rr.step(lp.p, lp.fc)
	if err == nil || (n == 0 && (errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR))) {
		return
	}
	fd := lp.fc.fd
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	l.pipes[fd] = nil
	l.npipes--
	lp.errc <- err
}

// trimPipes shrinks the read windows of quiet pipes (the pipe asks:
// trimLocked).
func (l *loop) trimPipes() {
	for _, lp := range l.pipes {
		if lp != nil && lp.p.trimRead.Swap(false) {
			lp.rr.trim(lp.p)
		}
	}
}

// pipeOf returns the pipe of pipes (a backend's) that c's batches use
// when l runs them: one l reads.
func (l *loop) pipeOf(pipes []*pipe, id uint64) *pipe {
	n := uint64(len(l.s.loops))
	own := (uint64(len(pipes)) + n - 1 - uint64(l.idx)) / n // pipes l reads
	if own == 0 {
		return pipes[id%uint64(len(pipes))]
	}
	return pipes[uint64(l.idx)+n*(id/n%own)]
}

// loopOf returns the loop that reads a backend's pipe i (nil: none).
func loopOf(loops []*loop, i int) *loop {
	if len(loops) == 0 {
		return nil
	}
	return loops[i%len(loops)]
}
