package proxy

import "net"

// Large values are not copied between the buffers of the data path. A
// large command goes from the client's read window to the node by
// reference (one vectored write with the small commands around it), and a
// large reply leaves the pipe's read window as the very bytes it was read
// into: the window gives its buffer to the request and takes a fresh one.

const (
	// vecMin: a command of at least this many bytes is written from the
	// client's read window instead of being copied into the pipe's write
	// buffer. A reference costs one iovec per value, nothing next to the
	// copy of 16 KiB it saves, and keeps the write buffers from growing to
	// the size of the values (and the shrinker from churning them). Below
	// a few KiB, gathering many short segments costs the kernel more than
	// the copy. 16 KiB is also the largest TLS record, so on TLS backends,
	// where net.Buffers falls back to one Write per segment, a referenced
	// value fills whole records and costs at most one short record more.
	vecMin = 16 << 10

	// handOverMin: a reply longer than this is handed to its request
	// instead of copied. finishBatch drops a reply buffer above bufKeep,
	// so a reply that large was a fresh allocation and a full copy per
	// batch; handed over, the window's buffer (grown to fit the reply in
	// any case) becomes the reply, and the window takes a base-size one.
	// A shorter reply is copied into the request's kept buffer, which
	// allocates nothing, where a hand-over would cost the window a fresh
	// buffer each time.
	handOverMin = bufKeep
)

// pendRef is a large command in a pipe's pending bytes: raw goes on the
// wire after pend[:at] and before pend[at:]. raw is the request's, valid
// until the request is complete; the pipe completes no request (not even
// failing it) while a write that may hold its raw is in progress.
type pendRef struct {
	at  int
	raw []byte
}

// maxSpareRefs bounds the reference lists a pipe keeps between writes.
const maxSpareRefs = 1024

// hasPending reports whether commands wait to be written. Called with mu
// held.
func (p *pipe) hasPending() bool { return len(p.pend) > 0 || len(p.refs) > 0 }

// writeVec writes out with refs spliced in, in one writev on a TCP
// connection. Called by the writer of the moment, without mu: vec and wv
// belong to whoever has writing set.
func (p *pipe) writeVec(conn net.Conn, out []byte, refs []pendRef) error {
	v := appendSegments(p.vec[:0], out, refs)
	p.vec = v
	if fc, ok := conn.(*fdConn); ok {
		err := fc.writev(v)
		clear(v)
		return err
	}
	// WriteTo consumes wv; a field, not a local, so that it does not
	// escape to the heap on every write.
	p.wv = v
	_, err := p.wv.WriteTo(conn)
	clear(v) // drop the references to the clients' buffers
	p.wv = nil
	return err
}

// appendSegments appends to v the pieces of a write of out with refs
// spliced in, in wire order; none is empty.
func appendSegments(v [][]byte, out []byte, refs []pendRef) [][]byte {
	at := 0
	for _, r := range refs {
		if r.at > at {
			v = append(v, out[at:r.at])
		}
		if len(r.raw) > 0 {
			v = append(v, r.raw)
		}
		at = r.at
	}
	if at < len(out) {
		v = append(v, out[at:])
	}
	return v
}

// leave replaces the window's buffer after replies in it, before r, were
// handed to their requests, which own those bytes from now on: the unread
// bytes buf[r:w] (usually none or few) move to small, a base-size buffer
// the caller kept, or to a fresh one. The window never touches the old
// array again.
func (b *window) leave(small []byte) {
	rest := b.buf[b.r:b.w]
	if len(small) < max(windowStart, len(rest)) {
		small = make([]byte, max(windowStart, len(rest)))
	}
	b.w = copy(small, rest)
	b.r = 0
	b.buf = small
	b.peak = 0
	b.shr.idle = 0
}
