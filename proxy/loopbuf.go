package proxy

// A loop's buffers: the base-size ones its clients borrow while active,
// and the large ones that carry large replies round.
//
// A large reply is read into a window grown for it and handed to its
// request (vectored.go); it becomes the client's output buffer and is
// written from there. Without reuse every such reply cost a fresh,
// zeroed allocation of its size and the garbage collection of it (at
// 64 KiB values, 28 % of the proxy's CPU in a profile). So the output
// buffer a client lets go, once written, goes to its loop's bigBuffers,
// and a pipe the loop reads grows its window from there.

// maxFreeBuffers bounds the base-size buffers a loop keeps (4 MiB).
const maxFreeBuffers = 256

func (l *loop) getBuf() []byte {
	if n := len(l.free); n > 0 {
		b := l.free[n-1]
		l.free[n-1] = nil
		l.free = l.free[:n-1]
		return b
	}
	return make([]byte, windowStart)
}

func (l *loop) putBuf(b []byte) {
	if len(l.free) < maxFreeBuffers {
		l.free = append(l.free, b)
	} else {
		noteReleased(len(b))
	}
}

const (
	// maxBigBuffers bounds the large buffers a loop keeps, bigBufferMax
	// the size of one: at most 64 MiB per loop, and only while large values
	// flow (trim).
	maxBigBuffers = 16
	bigBufferMax  = 4 << 20
)

// bigBuffers are large buffers no one references any more, for windows
// to grow into. Only the loop's goroutine touches them.
type bigBuffers struct {
	free [][]byte
	used bool // taken from since the last trim
}

// get returns a buffer of at least n bytes (its full capacity as length):
// a kept one of at most 2n, so that a reply read into it still fills half
// of it and is handed over, else a new one.
func (bb *bigBuffers) get(n int) []byte {
	best := -1
	for i, b := range bb.free {
		if c := cap(b); c >= n && c <= 2*n && (best < 0 || c < cap(bb.free[best])) {
			best = i
		}
	}
	if best < 0 {
		return make([]byte, n)
	}
	bb.used = true
	b := bb.free[best]
	last := len(bb.free) - 1
	bb.free[best] = bb.free[last]
	bb.free[last] = nil
	bb.free = bb.free[:last]
	return b[:cap(b)]
}

// put keeps b, which no one may use any more, if it is worth keeping.
func (bb *bigBuffers) put(b []byte) {
	if c := cap(b); c <= bufKeep || c > bigBufferMax || len(bb.free) == maxBigBuffers {
		noteReleased(c)
		return
	}
	bb.free = append(bb.free, b[:0])
}

// trim gives the buffers back once large values stopped flowing (none
// was taken since the last trim, a loop tick ago).
func (bb *bigBuffers) trim() {
	if bb.used {
		bb.used = false
		return
	}
	for i, b := range bb.free {
		noteReleased(cap(b))
		bb.free[i] = nil
	}
	bb.free = bb.free[:0]
}
