package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/redistest"
)

// overlaps reports whether a and b share any byte of memory.
func overlaps(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	a0, b0 := uintptr(unsafe.Pointer(&a[0])), uintptr(unsafe.Pointer(&b[0]))
	return a0 < b0+uintptr(len(b)) && b0 < a0+uintptr(len(a))
}

// segmentConn is a backend connection that keeps the slices it is asked
// to write (not copies), to see where the bytes came from.
type segmentConn struct {
	net.Conn
	segs [][]byte
}

func (c *segmentConn) Write(b []byte) (int, error) {
	c.segs = append(c.segs, b)
	return len(b), nil
}

func testPipeMetrics() *metrics {
	return &metrics{
		backendWrites: prometheus.NewCounter(prometheus.CounterOpts{Name: "w"}),
		backendReads:  prometheus.NewCounter(prometheus.CounterOpts{Name: "r"}),
	}
}

// TestLargeCommandsWrittenInPlace: a command of vecMin bytes or more goes
// to the connection from the client's buffer, not through a copy in the
// pipe's write buffer; the bytes on the wire keep the requests' order
// and their ASKING prefixes.
func TestLargeCommandsWrittenInPlace(t *testing.T) {
	set := func(key string, size int) []byte {
		return appendCommand(nil, [][]byte{[]byte("SET"), []byte(key), bytes.Repeat([]byte(key[:1]), size)})
	}
	type cmd struct {
		raw    []byte
		asking bool
	}
	cmds := []cmd{
		{set("a", 64<<10), false}, // first in the write
		{set("b", 10), false},
		{set("c", vecMin), true}, // ASKING is copied, the command is not
		{set("d", 4<<20), false},
		{set("e", vecMin-40), true}, // just below: copied
		{set("f", 512<<10), false},  // two in a row
		{set("g", 100<<10), false},
		{set("h", 10), true},
		{set("i", 700<<10), true}, // last in the write
	}
	conn := &segmentConn{}
	p := newPipe("node", nil, nil, 0, nil, testPipeMetrics())
	p.conn, p.state = conn, pipeUp
	var want []byte
	var b batch
	for _, c := range cmds {
		if err := p.enqueue(&request{raw: c.raw, batch: &b}, c.asking); err != nil {
			t.Fatal(err)
		}
		if c.asking {
			want = append(want, askingCmd...)
		}
		want = append(want, c.raw...)
	}
	p.flush(false)
	var got []byte
	for _, s := range conn.segs {
		got = append(got, s...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("wrote %d bytes that differ from the %d bytes of the requests", len(got), len(want))
	}
	for _, c := range cmds {
		inPlace := false
		for _, s := range conn.segs {
			if overlaps(s, c.raw) {
				inPlace = len(s) == len(c.raw) && &s[0] == &c.raw[0]
			}
		}
		if large := len(c.raw) >= vecMin; inPlace != large {
			t.Errorf("command of %d bytes written in place: %v, want %v", len(c.raw), inPlace, large)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if max(cap(p.pend), cap(p.spare)) > bufKeep {
		t.Errorf("write buffers grew to %d and %d bytes", cap(p.pend), cap(p.spare))
	}
	for _, v := range p.vec {
		if v != nil {
			t.Fatal("the write's scratch still references a client's buffer")
		}
	}
}

// TestLargeCommandsWritevOverTCP: the vectored write on a real TCP
// connection puts the same bytes on the wire, in order.
func TestLargeCommandsWritevOverTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	received := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			received <- nil
			return
		}
		defer c.Close()
		all, _ := io.ReadAll(c)
		received <- all
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p := newPipe("node", nil, nil, 0, nil, testPipeMetrics())
	p.conn, p.state = conn, pipeUp
	var want []byte
	var b batch
	for i := range 2000 { // more segments than one writev takes (1024)
		size := 20
		if i%3 == 0 {
			size = vecMin + i
		}
		raw := appendCommand(nil, [][]byte{[]byte("SET"), fmt.Appendf(nil, "k%d", i), bytes.Repeat([]byte{byte('a' + i%26)}, size)})
		if err := p.enqueue(&request{raw: raw, batch: &b}, i%7 == 0); err != nil {
			t.Fatal(err)
		}
		if i%7 == 0 {
			want = append(want, askingCmd...)
		}
		want = append(want, raw...)
	}
	p.flush(false)
	conn.Close()
	select {
	case got := <-received:
		if !bytes.Equal(got, want) {
			t.Fatalf("received %d bytes that differ from the %d bytes sent", len(got), len(want))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("nothing received")
	}
}

// replyConn serves a stream of replies in chunks and notes, for every
// Read, the buffer the pipe read into and the stream offset it started at.
type replyConn struct {
	net.Conn
	data  []byte
	off   int
	chunk int
	reads []readNote
}

type readNote struct {
	buf []byte // what Read filled (kept: the array cannot be reused meanwhile)
	off int
}

func (c *replyConn) Read(b []byte) (int, error) {
	if c.off == len(c.data) {
		return 0, io.EOF
	}
	n := copy(b, c.data[c.off:min(len(c.data), c.off+c.chunk)])
	c.reads = append(c.reads, readNote{b[:n], c.off})
	c.off += n
	return n, nil
}

// TestLargeRepliesHandedOver: a reply longer than handOverMin reaches its
// request in the very bytes the pipe read it into (no copy), and the pipe
// never reads into them again; shorter ones are copied out of the window.
func TestLargeRepliesHandedOver(t *testing.T) {
	bulk := func(n int, c byte) []byte {
		return fmt.Appendf(nil, "$%d\r\n%s\r\n", n, bytes.Repeat([]byte{c}, n))
	}
	array := func(n, each int) []byte {
		out := fmt.Appendf(nil, "*%d\r\n", n)
		for i := range n {
			out = append(out, bulk(each, byte('A'+i%26))...)
		}
		return out
	}
	replies := [][]byte{
		[]byte("+OK\r\n"),
		bulk(15<<10, 'a'),
		bulk(16<<10, 'b'),
		bulk(handOverMin-10, 'c'), // the reply is exactly handOverMin bytes: copied
		bulk(handOverMin-9, 'd'),  // one more: handed over
		[]byte(":1\r\n"),
		bulk(512<<10, 'e'),
		bulk(512<<10, 'f'), // right after another
		array(300, 1000),   // an array: the window grows by doubling
		bulk(4<<20, 'g'),
		[]byte("$-1\r\n"),
		bulk(100, 'h'),
		bulk(700<<10, 'i'),
	}
	for _, chunk := range []int{1 << 20, 64 << 10, 7000} {
		t.Run(fmt.Sprint("chunk ", chunk), func(t *testing.T) {
			conn := &replyConn{chunk: chunk}
			p := newPipe("node", nil, nil, 0, nil, testPipeMetrics())
			var b batch
			b.done = make(chan struct{}, 1)
			b.pending.Store(int32(len(replies)))
			reqs := make([]*request, len(replies))
			ends := make([]int, len(replies))
			for i, r := range replies {
				conn.data = append(conn.data, r...)
				ends[i] = len(conn.data)
				reqs[i] = &request{batch: &b, reply: make([]byte, 0, 16)}
			}
			p.inflight.push(reqs)
			if err := p.readLoop(conn); !errors.Is(err, io.EOF) {
				t.Fatalf("readLoop: %v, want the end of the stream", err)
			}
			select {
			case <-b.done:
			default:
				t.Fatal("batch not complete")
			}
			for i, req := range reqs {
				if !bytes.Equal(req.reply, replies[i]) {
					t.Fatalf("reply %d: %d bytes that differ from the %d sent", i, len(req.reply), len(replies[i]))
				}
				readInto, after := false, false
				for _, rd := range conn.reads {
					if overlaps(rd.buf, req.reply) {
						readInto = true
						after = after || rd.off >= ends[i]
					}
				}
				if want := len(replies[i]) > handOverMin; readInto != want {
					t.Errorf("reply %d (%d bytes) is the buffer it was read into: %v, want %v", i, len(replies[i]), readInto, want)
				}
				if after {
					t.Errorf("reply %d (%d bytes): the pipe read into it after handing it over", i, len(replies[i]))
				}
				if readInto && cap(req.reply) != len(req.reply) {
					t.Errorf("reply %d: capacity %d for %d bytes; appending to it would overwrite what follows", i, cap(req.reply), len(req.reply))
				}
			}
			if got := p.readCap.Load(); got > bufKeep {
				t.Errorf("read window of %d bytes after the replies, want <= %d", got, bufKeep)
			}
		})
	}
}

// startVecProxy runs a proxy with one backend connection per master in
// front of a new cluster, until the test ends.
func startVecProxy(tb testing.TB, masters int) *Server {
	c := redistest.New(tb, redistest.Options{Masters: masters})
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Cluster.Seeds = c.Seeds()
	cfg.BackendConns = 1
	cfg.EventLoops = 1 // else a connection per loop
	s, err := New(cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Run: %v", err)
		}
	})
	redistest.WaitFor(tb, 20*time.Second, "proxy ready", s.Ready)
	return s
}

// pipeBuffers returns, over every pipe, the largest read window and write
// buffer.
func pipeBuffers(s *Server) (read, write int) {
	s.topo.mu.Lock()
	var ps []*pipe
	for _, b := range s.topo.backends {
		ps = append(ps, b.allPipes()...)
	}
	s.topo.mu.Unlock()
	for _, p := range ps {
		p.mu.Lock()
		read = max(read, int(p.readCap.Load()))
		write = max(write, cap(p.pend), cap(p.spare))
		p.mu.Unlock()
	}
	return read, write
}

// vecValue is a value of size bytes that spells its key over and over.
func vecValue(key string, size int) []byte {
	return bytes.Repeat([]byte(key+"|"), size/(len(key)+1)+1)[:size]
}

var vecSizes = []int{15 << 10, vecMin - 1, vecMin, vecMin + 1, 64 << 10, handOverMin + 1, 512 << 10, 4 << 20}

// TestLargeValuesRoundTrip: values around and far above vecMin and
// handOverMin come back byte for byte, over RESP2 and RESP3, and none of
// them was copied into a pipe's buffers: the write buffers and the read
// window keep their base size.
func TestLargeValuesRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	s := startVecProxy(t, 3)
	ctx := context.Background()
	for _, proto := range []int{2, 3} {
		rc := redis.NewClient(&redis.Options{Addr: s.Addr().String(), Protocol: proto, PoolSize: 1, MaxRetries: -1, ReadTimeout: time.Minute})
		defer rc.Close()
		for _, size := range vecSizes {
			k := fmt.Sprintf("rt:%d:%d", proto, size)
			if err := rc.Set(ctx, k, vecValue(k, size), 0).Err(); err != nil {
				t.Fatalf("SET %s: %v", k, err)
			}
			got, err := rc.Get(ctx, k).Bytes()
			if err != nil || !bytes.Equal(got, vecValue(k, size)) {
				t.Fatalf("GET %s: %d bytes, %v; want its %d bytes", k, len(got), err, size)
			}
		}
	}
	if read, write := pipeBuffers(s); read > bufKeep || write > bufKeep {
		t.Errorf("pipe buffers grew: read window %d bytes, write buffers %d; large values must not be copied through them", read, write)
	}
}

// TestLargeValuesPipelinedMix: clients on both protocols pipeline small
// and large commands at once through one connection per master; every
// reply is the right one, byte for byte.
func TestLargeValuesPipelinedMix(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	s := startVecProxy(t, 3)
	ctx := context.Background()
	const clients, rounds = 8, 4
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for w := range clients {
		wg.Go(func() {
			// No retries and a long read timeout: go-redis resends a whole
			// pipeline after a read timeout (3 s by default, reached with
			// tens of MiB per pipeline under -race), which runs its INCRs
			// twice.
			rc := redis.NewClient(&redis.Options{Addr: s.Addr().String(), Protocol: 2 + w%2, PoolSize: 1, MaxRetries: -1, ReadTimeout: time.Minute, WriteTimeout: time.Minute})
			defer rc.Close()
			for r := range rounds {
				key := func(i int) string { return fmt.Sprintf("mix:%d:%d:%d", w, r, i) }
				size := func(i int) int { return vecSizes[(w+r+i)%len(vecSizes)] }
				var sets []*redis.StatusCmd
				var incrs []*redis.IntCmd
				_, err := rc.Pipelined(ctx, func(pl redis.Pipeliner) error {
					for i := range 6 {
						sets = append(sets, pl.Set(ctx, key(i), vecValue(key(i), size(i)), 0))
						incrs = append(incrs, pl.Incr(ctx, key(i)+":n"))
						pl.Set(ctx, key(i)+":s", key(i), 0)
					}
					return nil
				})
				if err != nil {
					errs <- fmt.Errorf("client %d round %d: SET: %w", w, r, err)
					return
				}
				for i, c := range incrs {
					if c.Val() != 1 || sets[i].Val() != "OK" {
						errs <- fmt.Errorf("client %d round %d: %d: SET %q INCR %d", w, r, i, sets[i].Val(), c.Val())
						return
					}
				}
				var gets, smalls []*redis.StringCmd
				_, err = rc.Pipelined(ctx, func(pl redis.Pipeliner) error {
					for i := range 6 {
						smalls = append(smalls, pl.Get(ctx, key(i)+":s"))
						gets = append(gets, pl.Get(ctx, key(i)))
					}
					return nil
				})
				if err != nil {
					errs <- fmt.Errorf("client %d round %d: GET: %w", w, r, err)
					return
				}
				for i := range 6 {
					if got := gets[i].Val(); got != string(vecValue(key(i), size(i))) {
						errs <- fmt.Errorf("client %d round %d: GET %s: %d bytes that differ from its %d", w, r, key(i), len(got), size(i))
						return
					}
					if smalls[i].Val() != key(i) {
						errs <- fmt.Errorf("client %d round %d: GET %s:s = %q", w, r, key(i), smalls[i].Val())
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// stuckConn is a backend connection whose one Write stays in progress
// after Close until release is closed, as a write of a large value to a
// node can.
type stuckConn struct {
	net.Conn
	closeOnce sync.Once
	closed    chan struct{}
	writing   chan struct{}
	release   chan struct{}
}

func (c *stuckConn) Read([]byte) (int, error) {
	<-c.closed
	return 0, net.ErrClosed
}

func (c *stuckConn) Write([]byte) (int, error) {
	close(c.writing)
	<-c.closed
	<-c.release
	return 0, net.ErrClosed
}

func (c *stuckConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

func (c *stuckConn) SetReadDeadline(time.Time) error { return nil }

// TestBrokenPipeFailsAfterTheWrite: when a connection breaks during a
// write that holds a client's large command in place, its request fails
// (handing the client its buffer back) only once the write has returned.
func TestBrokenPipeFailsAfterTheWrite(t *testing.T) {
	conn := &stuckConn{closed: make(chan struct{}), writing: make(chan struct{}), release: make(chan struct{})}
	dialed := false
	dial := func(context.Context, string) (net.Conn, error) {
		if dialed {
			return nil, errors.New("node gone")
		}
		dialed = true
		return conn, nil
	}
	m := testPipeMetrics()
	m.backendConnErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "c"})
	m.backendDialErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "d"})
	p := newPipe("node", dial, nil, 0, slog.New(slog.DiscardHandler), m)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		p.run(ctx)
	}()
	defer func() {
		cancel()
		<-ran
	}()
	redistest.WaitFor(t, 10*time.Second, "pipe up", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.state == pipeUp
	})

	var b batch
	b.done = make(chan struct{}, 1)
	b.pending.Store(1)
	req := &request{raw: appendCommand(nil, [][]byte{[]byte("SET"), []byte("k"), make([]byte, 1<<20)}), batch: &b}
	if err := p.enqueue(req, false); err != nil {
		t.Fatal(err)
	}
	go p.flush(false)
	<-conn.writing
	p.reset(errors.New("health check failed"))
	redistest.WaitFor(t, 10*time.Second, "the run loop to see the connection end", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.conn == nil
	})
	if b.pending.Load() == 0 {
		t.Fatal("request failed while the write holding its bytes was in progress")
	}
	close(conn.release)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		t.Fatal("request not failed after the write returned")
	}
	if !errors.Is(req.err, errBackendLost) {
		t.Fatalf("request failed with %v, want %v", req.err, errBackendLost)
	}
}

// BenchmarkLargeValues: SET and GET of large values through the proxy, 4
// commands per pipeline, from a raw connection that allocates nothing (so
// B/op and allocs/op are the proxy's).
func BenchmarkLargeValues(b *testing.B) {
	s := startVecProxy(b, 1)
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	for _, size := range []int{32 << 10, 512 << 10, 4 << 20} {
		value := vecValue("bench", size)
		var sets, gets []byte
		for i := range 4 {
			k := fmt.Appendf(nil, "bench:%d:%d", size, i)
			sets = appendCommand(sets, [][]byte{[]byte("SET"), k, value})
			gets = appendCommand(gets, [][]byte{[]byte("GET"), k})
		}
		setReplies := []byte("+OK\r\n+OK\r\n+OK\r\n+OK\r\n")
		var getReplies []byte
		for range 4 {
			getReplies = append(fmt.Appendf(getReplies, "$%d\r\n", size), value...)
			getReplies = append(getReplies, "\r\n"...)
		}
		got := make([]byte, len(getReplies))
		round := func(cmds, want []byte) {
			if _, err := conn.Write(cmds); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(conn, got[:len(want)]); err != nil {
				b.Fatal(err)
			}
		}
		round(sets, setReplies)
		round(gets, getReplies)
		if !bytes.Equal(got, getReplies) {
			b.Fatal("GET replies differ from the values set")
		}
		for _, op := range []struct {
			name       string
			cmds, want []byte
		}{{"SET", sets, setReplies}, {"GET", gets, getReplies}} {
			b.Run(fmt.Sprintf("%s/%dKiB", op.name, size>>10), func(b *testing.B) {
				b.SetBytes(int64(4 * size))
				b.ReportAllocs()
				cpu := processCPU(b)
				for b.Loop() {
					round(op.cmds, op.want)
				}
				// CPU time of this process (proxy and client, not the
				// nodes): steadier than wall time on a shared machine.
				b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// processCPU is the CPU time this process has used.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPipeLargeWrites: a pipe writing batches of four 512 KiB SETs
// and four small commands to a TCP connection whose other end discards
// them: the pipe's own cost, without the nodes.
func BenchmarkPipeLargeWrites(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(io.Discard, c)
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	p := newPipe("node", nil, nil, 0, nil, testPipeMetrics())
	p.conn, p.state = conn, pipeUp
	var reqs []*request
	var bt batch
	for i := range 4 {
		reqs = append(reqs,
			&request{raw: appendCommand(nil, [][]byte{[]byte("SET"), fmt.Appendf(nil, "k%d", i), vecValue("v", 512<<10)}), batch: &bt},
			&request{raw: appendCommand(nil, [][]byte{[]byte("GET"), fmt.Appendf(nil, "k%d", i)}), batch: &bt})
	}
	b.SetBytes(4 * 512 << 10)
	b.ReportAllocs()
	cpu := processCPU(b)
	for b.Loop() {
		for _, r := range reqs {
			if err := p.enqueue(r, false); err != nil {
				b.Fatal(err)
			}
		}
		p.flush(false)
		clear(p.inflight.buf) // as if answered
		p.inflight.head, p.inflight.size = 0, 0
	}
	b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
}

// BenchmarkPipeLargeReplies: the pipe's reader taking four 512 KiB replies
// and four small ones from memory; the request drops a reply buffer over
// 64 KiB after each batch, as finishBatch does.
func BenchmarkPipeLargeReplies(b *testing.B) {
	var stream []byte
	for range 4 {
		stream = fmt.Appendf(stream, "$%d\r\n%s\r\n", 512<<10, vecValue("v", 512<<10))
		stream = append(stream, "+OK\r\n"...)
	}
	p := newPipe("node", nil, nil, 0, nil, testPipeMetrics())
	reqs := make([]*request, 8)
	var bt batch
	bt.done = make(chan struct{}, 1)
	for i := range reqs {
		reqs[i] = &request{batch: &bt}
	}
	conn := &replyConn{chunk: 256 << 10}
	b.SetBytes(4 * 512 << 10)
	b.ReportAllocs()
	for b.Loop() {
		conn.data, conn.off, conn.reads = stream, 0, conn.reads[:0]
		bt.pending.Store(int32(len(reqs)))
		p.inflight.push(reqs)
		if err := p.readLoop(conn); !errors.Is(err, io.EOF) {
			b.Fatal(err)
		}
		<-bt.done
		for _, r := range reqs {
			if cap(r.reply) > 64<<10 {
				r.reply = nil
			}
		}
	}
}
