package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestShrinker(t *testing.T) {
	const big, huge = 700 << 10, 8 << 20
	type batch struct{ used, capacity int }
	small := batch{100, big}
	tests := []struct {
		name    string
		batches []batch
		want    []bool // shrink after each batch
	}{
		{"small buffer is always kept",
			[]batch{{10, 16 << 10}, {10, bufKeep}, {bufKeep, bufKeep}},
			[]bool{false, false, false}},
		{"steady large values keep it",
			[]batch{{big, big}, {big, big}, {big, big}, {big, big}, {big, big}, {big, big}, {big, big}, {big, big}, {big, big}},
			[]bool{false, false, false, false, false, false, false, false, false}},
		{"shrinks after shrinkAfter small batches in a row",
			[]batch{{big, big}, small, small, small, small, small, small, small, small},
			[]bool{false, false, false, false, false, false, false, false, true}},
		{"a large batch restarts the count",
			[]batch{small, small, small, small, small, small, small, {big, big}, small, small, small, small, small, small, small, small},
			[]bool{false, false, false, false, false, false, false, false, false, false, false, false, false, false, false, true}},
		{"a small buffer in between does not restart it",
			[]batch{small, small, small, small, {10, 16 << 10}, small, small, small, small},
			[]bool{false, false, false, false, false, false, false, false, true}},
		{"huge goes at once, even in use",
			[]batch{{huge + 1, huge + 1}, {10, huge + 1}},
			[]bool{true, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s shrinker
			for i, b := range tc.batches {
				if got := s.shrink(b.used, b.capacity, huge); got != tc.want[i] {
					t.Fatalf("batch %d (used %d of %d): shrink = %v, want %v", i, b.used, b.capacity, got, tc.want[i])
				}
			}
		})
	}
}

// chunkReader returns its data n bytes per Read.
type chunkReader struct {
	data []byte
	n    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	k := copy(p, c.data[:min(c.n, len(c.data))])
	c.data = c.data[k:]
	return k, nil
}

func TestWindowGrowsCompactsAndShrinks(t *testing.T) {
	msg := bytes.Repeat([]byte("0123456789"), 70<<10) // 700 KiB
	src := &chunkReader{data: append(append([]byte("abc"), msg...), "tail"...), n: 64 << 10}
	w := newWindow()
	if _, err := w.readFrom(src, 0); err != nil {
		t.Fatal(err)
	}
	w.r = 3 // "abc" consumed; the message is partial

	// Growing: to what the message needs, unread bytes moved to the front.
	if _, err := w.readFrom(src, len(msg)); err != nil {
		t.Fatal(err)
	}
	if w.r != 0 || !bytes.Equal(w.buf[:w.w], msg[:w.w]) {
		t.Fatalf("after growing: r=%d, unread bytes not moved to the front", w.r)
	}
	if len(w.buf) < len(msg) || len(w.buf) > 2*len(msg) {
		t.Fatalf("grew to %d for a %d-byte message", len(w.buf), len(msg))
	}
	grown := len(w.buf)
	for w.w-w.r < len(msg) {
		if _, err := w.readFrom(src, len(msg)); err != nil {
			t.Fatal(err)
		}
	}
	if len(w.buf) != grown || !bytes.Equal(w.buf[w.r:w.r+len(msg)], msg) {
		t.Fatalf("window %d bytes (grown to %d), message intact: %v", len(w.buf), grown, bytes.Equal(w.buf[w.r:w.r+len(msg)], msg))
	}
	w.r += len(msg) // served
	if _, err := w.readFrom(src, 0); err != nil {
		t.Fatal(err)
	}
	if string(w.buf[w.r:w.w]) != "tail" || len(w.buf) != grown {
		t.Fatalf("after the message: %q unread in %d bytes", w.buf[w.r:w.w], len(w.buf))
	}

	// The batch that carried the message does not shrink it, nor do the
	// next shrinkAfter-1 small batches; the one after does, keeping the
	// unread "tail".
	for i := range shrinkAfter {
		if w.release(8<<20) || len(w.buf) != grown {
			t.Fatalf("release %d: shrank to %d, want it kept", i, len(w.buf))
		}
	}
	if !w.release(8<<20) || len(w.buf) != windowStart {
		t.Fatalf("after %d small batches the window is %d bytes, want %d", shrinkAfter, len(w.buf), windowStart)
	}
	if string(w.buf[w.r:w.w]) != "tail" {
		t.Fatalf("unread bytes after shrinking: %q, want %q", w.buf[w.r:w.w], "tail")
	}

	// Compacting: unread bytes at the end move to the front, no growth.
	w.r, w.w = windowStart-4, windowStart
	copy(w.buf[w.r:], "part")
	if _, err := w.readFrom(&chunkReader{data: []byte("ial"), n: 10}, 0); err != nil {
		t.Fatal(err)
	}
	if len(w.buf) != windowStart || string(w.buf[w.r:w.w]) != "partial" || w.r != 0 {
		t.Fatalf("compacting: %d bytes, r=%d, unread %q", len(w.buf), w.r, w.buf[w.r:w.w])
	}
}

func TestWindowTrim(t *testing.T) {
	w := window{buf: make([]byte, 1<<20)}
	w.r, w.w = 100, 100+windowStart+1
	if w.trim() {
		t.Fatal("trimmed a window holding more than windowStart")
	}
	w.r++
	copy(w.buf[w.r:], "keep")
	if !w.trim() || len(w.buf) != windowStart || string(w.buf[:4]) != "keep" || w.w != windowStart {
		t.Fatalf("trim: len %d, r=%d w=%d", len(w.buf), w.r, w.w)
	}
	small := window{buf: make([]byte, bufKeep)}
	if small.trim() {
		t.Fatal("trimmed a window of bufKeep")
	}
}

// recordConn is a backend connection that keeps what is written; during
// each Write it calls during, as a client appending to the pipe would.
type recordConn struct {
	net.Conn
	got      []byte
	during   func()
	corrupt  bool
	deadline time.Time
}

func (c *recordConn) Write(b []byte) (int, error) {
	before := append([]byte(nil), b...)
	if c.during != nil {
		c.during()
	}
	if !bytes.Equal(before, b) {
		c.corrupt = true // what is being written changed under the write
	}
	c.got = append(c.got, b...)
	return len(b), nil
}

func (c *recordConn) Close() error                      { return nil }
func (c *recordConn) SetReadDeadline(t time.Time) error { c.deadline = t; return nil }

func sameArray(a, b []byte) bool {
	return cap(a) > 0 && cap(b) > 0 && &a[:cap(a)][cap(a)-1] == &b[:cap(b)][cap(b)-1]
}

// TestPipeWriteBuffersShrinkWithoutAliasing: the pipe's two write buffers
// grow for many values just below vecMin (larger ones are not copied into
// them), shrink after small traffic, and never share an array, even when
// requests are appended while a write is in progress.
func TestPipeWriteBuffersShrinkWithoutAliasing(t *testing.T) {
	conn := &recordConn{}
	p := newPipe("node", nil, nil, 0, nil, &metrics{
		backendWrites: prometheus.NewCounter(prometheus.CounterOpts{Name: "w"}),
	})
	p.conn, p.state = conn, pipeUp
	var want []byte
	var b batch
	send := func(raw []byte) {
		if err := p.enqueue(&request{raw: raw, batch: &b}, false); err != nil {
			t.Fatal(err)
		}
		want = append(want, raw...)
	}
	medium := appendCommand(nil, [][]byte{[]byte("SET"), []byte("k"), bytes.Repeat([]byte{'v'}, vecMin-100)})
	huge := appendCommand(nil, [][]byte{[]byte("SET"), []byte("h"), bytes.Repeat([]byte{'h'}, 700<<10)})
	sendLarge := func() {
		for i := range 48 { // 750 KiB copied into pend
			send(medium)
			if i%16 == 0 {
				send(huge) // written in place, between them
			}
		}
	}
	n := 0
	conn.during = func() {
		// A client appends while the write is in progress (mu released).
		n++
		small := appendCommand(nil, [][]byte{[]byte("GET"), fmt.Appendf(nil, "k%d", n)})
		if n <= 4 {
			sendLarge()
		} else if n%2 == 0 {
			send(small)
		}
	}
	check := func(when string) {
		t.Helper()
		p.mu.Lock()
		defer p.mu.Unlock()
		if sameArray(p.pend, p.spare) {
			t.Fatalf("%s: pend and spare share an array", when)
		}
		if conn.corrupt {
			t.Fatalf("%s: bytes being written were overwritten", when)
		}
	}
	sendLarge()
	for round := range 40 {
		p.flush(false)
		check(fmt.Sprintf("round %d", round))
		if len(p.pend) == 0 && round > 4 {
			send(appendCommand(nil, [][]byte{[]byte("PING")}))
		}
	}
	p.flush(false)
	if !bytes.Equal(conn.got, want) {
		t.Fatalf("written bytes differ from the requests: %d bytes written, %d sent", len(conn.got), len(want))
	}
	p.mu.Lock()
	pc, sc := cap(p.pend), cap(p.spare)
	p.mu.Unlock()
	if pc > bufKeep || sc > bufKeep {
		t.Fatalf("after small traffic the write buffers hold %d and %d bytes, want <= %d", pc, sc, bufKeep)
	}

	// A quiet pipe gives everything back at once.
	sendLarge()
	p.flush(false)
	p.mu.Lock()
	if max(cap(p.pend), cap(p.spare)) <= bufKeep {
		t.Fatalf("large write buffer not kept (%d and %d bytes)", cap(p.pend), cap(p.spare))
	}
	p.readCap.Store(1 << 20)
	p.trimLocked(conn)
	pc, sc = cap(p.pend), cap(p.spare)
	p.mu.Unlock()
	if pc > bufKeep || sc > bufKeep {
		t.Fatalf("quiet pipe keeps write buffers of %d and %d bytes", pc, sc)
	}
	if !p.trimRead.Load() || conn.deadline.IsZero() {
		t.Fatal("quiet pipe did not wake its reader to shrink the read window")
	}
}

// TestSteadyLargeValuesDoNotReallocate: a stream of large values reuses
// the grown buffers, batch after batch; so does small traffic in buffers
// of base size.
func TestSteadyLargeValuesDoNotReallocate(t *testing.T) {
	large := appendCommand(nil, [][]byte{[]byte("SET"), []byte("k"), bytes.Repeat([]byte{'v'}, 700<<10)})
	small := appendCommand(nil, [][]byte{[]byte("GET"), []byte("k")})
	for _, tc := range []struct {
		name string
		req  []byte
	}{{"large", large}, {"small", small}} {
		t.Run(tc.name, func(t *testing.T) {
			rd := newReader(nil, testLimits)
			src := &chunkReader{n: 64 << 10}
			rd.rd = src
			serve := func() {
				src.data = tc.req
				for {
					if _, _, err := rd.next(); err == nil {
						break
					}
					if err := rd.fill(); err != nil {
						t.Fatal(err)
					}
				}
				rd.shrink()
			}
			serve()
			if allocs := testing.AllocsPerRun(3*shrinkAfter, serve); allocs != 0 {
				t.Errorf("reader: %v allocations per batch, want 0", allocs)
			}

			p := newPipe("node", nil, nil, 0, nil, &metrics{
				backendWrites: prometheus.NewCounter(prometheus.CounterOpts{Name: "w"}),
			})
			p.conn, p.state = discardConn{}, pipeUp
			var b batch
			req := &request{raw: tc.req, batch: &b}
			write := func() {
				if err := p.enqueue(req, false); err != nil {
					t.Fatal(err)
				}
				p.flush(false)
				clear(p.inflight.buf) // as if answered
				p.inflight.head, p.inflight.size = 0, 0
			}
			write()
			write()
			if allocs := testing.AllocsPerRun(3*shrinkAfter, write); allocs != 0 {
				t.Errorf("pipe writes: %v allocations per batch, want 0", allocs)
			}
		})
	}
}

type discardConn struct{ net.Conn }

func (discardConn) Write(b []byte) (int, error) { return len(b), nil }

// TestReleaseDue: memory goes back to the OS only after much was given
// back, counting only buffers that had grown.
func TestReleaseDue(t *testing.T) {
	released.Store(0)
	t.Cleanup(func() { released.Store(0) })
	for range 1000 {
		noteReleased(bufKeep) // base-size buffers of clients that left
	}
	if releaseDue() {
		t.Fatal("due after base-size buffers only")
	}
	noteReleased(releaseMin - 1)
	if releaseDue() {
		t.Fatal("due below releaseMin")
	}
	noteReleased(700 << 10)
	if !releaseDue() {
		t.Fatal("not due after releaseMin was given back")
	}
	if releaseDue() {
		t.Fatal("due twice for the same bytes")
	}
}
