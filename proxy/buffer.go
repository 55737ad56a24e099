package proxy

import "io"

// Per-connection buffers: the read window of client connections and backend
// pipes, the pipes' two write buffers and the clients' reply buffer. They
// grow to fit large values and go back to a small size afterwards, so a
// burst of large values does not leave every connection holding megabytes.

const (
	// windowStart is a read window's initial size and the size it shrinks
	// back to.
	windowStart = 16 << 10
	// bufKeep: a buffer of up to this capacity is kept whatever it holds,
	// so pipelines of small commands never reallocate.
	bufKeep = 64 << 10
	// shrinkAfter is how many batches in a row must fit in bufKeep before
	// a larger buffer shrinks. A steady stream of large values keeps its
	// buffer (a batch of them resets the count) instead of reallocating
	// hundreds of KiB per batch; after a burst, a few batches of small
	// traffic give it back.
	shrinkAfter = 8
)

// shrinker decides, once per batch, whether a buffer that grew past
// bufKeep goes back to its base size.
type shrinker struct {
	idle int // batches in a row that fitted in bufKeep while above it
}

// shrink reports whether a buffer of capacity capacity, which held at most
// used bytes in the batch that just ended, should be replaced by a small
// one. Above huge it is not kept across batches even when in use: a
// connection does not hold that much memory between its batches.
func (s *shrinker) shrink(used, capacity, huge int) bool {
	switch {
	case capacity <= bufKeep:
		// Not counted: a pipe's two write buffers alternate, and a small
		// one must not reset the count of the large one.
		return false
	case capacity > huge:
		// Shrinks now, whatever it held.
	case used > bufKeep:
		s.idle = 0
		return false
	default:
		s.idle++
		if s.idle < shrinkAfter {
			return false
		}
	}
	s.idle = 0
	return true
}

// window is a read buffer: the bytes read and not yet consumed are
// buf[r:w]. It grows to fit the message being read, compacts by moving the
// unread bytes to the front, and shrinks back (release, trim) once its size
// is no longer needed. Only one goroutine at a time uses a window.
type window struct {
	buf  []byte
	r, w int
	peak int // most bytes held or awaited since the last release
	shr  shrinker
	// grow returns a buffer of at least n bytes when the window must grow
	// (nil: make one).
	grow func(n int) []byte
}

func newWindow() window { return window{buf: make([]byte, windowStart)} }

// readFrom reads once from rd after making room for need bytes from r
// (and for at least one more byte than it holds): it compacts the buffer
// or grows it, doubling, only as far as that needs.
func (b *window) readFrom(rd io.Reader, need int) (int, error) {
	n, err := rd.Read(b.room(need))
	b.wrote(n, need)
	return n, err
}

// room makes the room readFrom reads into and returns it.
func (b *window) room(need int) []byte {
	if b.r == b.w {
		b.r, b.w = 0, 0
	}
	want := max(need, b.w-b.r+1)
	if b.r+want > len(b.buf) {
		if want > len(b.buf) {
			var nb []byte
			if b.grow != nil {
				nb = b.grow(max(want, 2*len(b.buf)))
			} else {
				nb = make([]byte, max(want, 2*len(b.buf)))
			}
			copy(nb, b.buf[b.r:b.w])
			b.buf = nb
		} else {
			copy(b.buf, b.buf[b.r:b.w])
		}
		b.w -= b.r
		b.r = 0
	}
	return b.buf[b.w:]
}

// wrote counts n bytes read into room(need).
func (b *window) wrote(n, need int) {
	want := max(need, b.w-b.r+1)
	b.w += n
	b.peak = max(b.peak, want, b.w-b.r)
}

// release ends a batch. A window above bufKeep shrinks back to
// windowStart when shrinkAfter batches in a row needed no more than
// bufKeep (at once above huge), provided what it holds fits. It reports
// whether it shrank.
func (b *window) release(huge int) bool {
	used := max(b.peak, b.w-b.r)
	b.peak = 0
	if !b.shr.shrink(used, len(b.buf), huge) {
		return false
	}
	return b.trim()
}

// trim shrinks a window above bufKeep back to windowStart now, unless it
// holds more than that; for a connection that has gone quiet.
func (b *window) trim() bool {
	if len(b.buf) <= bufKeep || b.w-b.r > windowStart {
		return false
	}
	noteReleased(len(b.buf))
	nb := make([]byte, windowStart)
	b.w = copy(nb, b.buf[b.r:b.w])
	b.r = 0
	b.buf = nb
	b.shr.idle = 0
	return true
}
