package proxy

// The read side of a pipe: replies matched to requests in the order they
// were sent, by a goroutine of the pipe's (readLoop) or by the loop that
// reads the connection (loopread.go), one read at a time (replyReader).

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/slotway/slotway/internal/kick"
)

// readLoop reads replies and completes requests in the order they were
// sent, on a goroutine of its own (a pipe a loop reads: loopread.go).
func (p *pipe) readLoop(conn net.Conn) error {
	rr := newReplyReader()
	for {
		n, err := rr.step(p, conn)
		if err != nil {
			if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) && p.trimRead.Swap(false) {
				// Woken by trimLocked, not a failure.
				conn.SetReadDeadline(time.Time{})
				rr.trim(p)
				continue
			}
			return err
		}
	}
}

// replyReader is the read side of a pipe's connection: a window of
// replies and the requests they complete.
type replyReader struct {
	win  window
	need int // bytes the incomplete reply at win.r needs
	size int // len(win.buf), as last published in readCap
	done []*request
	ends []int
	// small is the base-size buffer the window left when it grew for a
	// reply to be handed over: it takes it back after the hand-over.
	small []byte
}

func newReplyReader() *replyReader {
	rr := &replyReader{win: newWindow()}
	rr.size = len(rr.win.buf)
	return rr
}

// trim shrinks the window of a pipe gone quiet.
func (rr *replyReader) trim(p *pipe) {
	rr.win.trim()
	rr.size = len(rr.win.buf)
	p.readCap.Store(int64(rr.size))
}

// step reads once from rd and completes the requests whose replies are
// in. It returns what the read returned; a read error comes back with
// n == 0, a broken reply stream with n > 0.
func (rr *replyReader) step(p *pipe, rd io.Reader) (int, error) {
	win := &rr.win
	prev := win.buf
	n, err := win.readFrom(rd, rr.need)
	if rr.need > handOverMin && len(prev) == windowStart && len(win.buf) != windowStart {
		rr.small = prev
	}
	if n == 0 {
		if err == nil {
			return 0, nil
		}
		return 0, fmt.Errorf("read: %w", err)
	}
	r, w, buf := win.r, win.w, win.buf
	p.progress.Add(1)
	p.m.backendReads.Inc()
	// Find every complete reply first, then take their requests under
	// one lock.
	ends := rr.ends[:0]
	pos := r
	for pos < w {
		l, nd, err := scanReply(buf[pos:w])
		if err != nil {
			return n, err
		}
		if l == 0 {
			rr.need = pos - r + nd
			break
		}
		pos += l
		ends = append(ends, pos)
	}
	rr.ends = ends
	if len(ends) == 0 {
		return n, nil
	}
	rr.need = 0
	p.mu.Lock()
	done := p.inflight.take(rr.done[:0], len(ends))
	retiring := p.retiring
	p.mu.Unlock()
	rr.done = done
	if len(done) < len(ends) {
		return n, errors.New("reply without a request: connection out of step")
	}
	start, gave := r, false
	for i, end := range ends {
		req := done[i]
		if req != nil {
			if l := end - start; !gave && l > handOverMin && 2*l >= len(buf) {
				// Handed over, not copied (vectored.go). Capped, so
				// appends to it never reach bytes after it. At most half
				// the array is not the reply, so a request keeping its
				// buffer cannot pin much more than it holds. One reply
				// per array: whoever ends up with it owns the array
				// (loopbuf.go reuses it).
				req.reply = buf[start:end:end]
				gave = true
			} else {
				req.reply = append(req.reply[:0], buf[start:end]...)
			}
			req.complete()
		}
		start = end
		done[i] = nil
	}
	win.r = start
	if gave {
		win.leave(rr.small)
		rr.small = nil
	}
	win.release(maxSpareBuffer)
	if len(win.buf) != rr.size {
		rr.size = len(win.buf)
		p.readCap.Store(int64(rr.size))
	}
	if retiring {
		kick.Send(p.wake)
	}
	return n, nil
}

// fifo is a ring of in-flight requests; one request may own two replies
// (ASKING and the command): skip counts the leading ones to discard.
type fifo struct {
	buf        []*request
	head, size int
}

func (f *fifo) len() int { return f.size }

func (f *fifo) push(reqs []*request) {
	if f.size+len(reqs) > len(f.buf) {
		nb := make([]*request, max(64, 2*(f.size+len(reqs))))
		for i := range f.size {
			nb[i] = f.buf[(f.head+i)%len(f.buf)]
		}
		f.buf, f.head = nb, 0
	}
	for _, r := range reqs {
		f.buf[(f.head+f.size)%len(f.buf)] = r
		f.size++
	}
}

// take removes up to n replies' worth of requests. An ASKING reply yields a
// nil entry so the reader discards it.
func (f *fifo) take(dst []*request, n int) []*request {
	for range n {
		if f.size == 0 {
			return dst
		}
		r := f.buf[f.head]
		if r.skip > 0 {
			r.skip--
			dst = append(dst, nil)
			continue
		}
		f.buf[f.head] = nil
		f.head = (f.head + 1) % len(f.buf)
		f.size--
		dst = append(dst, r)
	}
	return dst
}

func (f *fifo) failAll(err error) {
	for f.size > 0 {
		r := f.buf[f.head]
		f.buf[f.head] = nil
		f.head = (f.head + 1) % len(f.buf)
		f.size--
		r.fail(err)
	}
}
