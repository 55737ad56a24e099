// Command gnetspike is a minimal Redis Cluster proxy on gnet v2, built only
// to compare gnet's event loops with Slotway's own epoll loops (issue 13).
// It serves GET, SET, PING and CONFIG GET; see README.md for what it leaves
// out.
//
// Each gnet event loop owns its share of the client connections and one
// backend connection per master, dialled into the same loop
// (EventLoop.Register), so a round trip never leaves the loop: a client's
// commands are parsed in place in OnTraffic and appended to the backends'
// output; the backends' replies are parsed in their own OnTraffic, matched
// FIFO and appended to the clients' output in request order. Outputs are
// written once per loop pass (-flush pass: a task queued on the loop with
// EventLoop.Execute runs after the pass's I/O callbacks) or at the end of
// each OnTraffic (-flush traffic).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/panjf2000/gnet/v2"

	"github.com/slotway/slotway/internal/hashslot"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:7100", "address to serve clients on")
	seed := flag.String("seed", "127.0.0.1:7000", "a cluster node to read CLUSTER SLOTS from")
	loops := flag.Int("loops", 0, "event loops (0: GOMAXPROCS)")
	flush := flag.String("flush", "pass", "when outputs are written: pass (once per loop pass) or traffic (at the end of each OnTraffic)")
	lockOSThread := flag.Bool("lockosthread", false, "lock each event loop to an OS thread (gnet.WithLockOSThread)")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	if *flush != "pass" && *flush != "traffic" {
		log.Fatalf("-flush: must be pass or traffic, got %q", *flush)
	}
	if *loops < 0 {
		log.Fatalf("-loops: must be >= 0, got %d", *loops)
	}
	n := *loops
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}

	masters, table, err := clusterSlots(*seed)
	if err != nil {
		log.Fatal(err)
	}
	addrs := make([]net.Addr, len(masters))
	for i, m := range masters {
		a, err := net.ResolveTCPAddr("tcp", m)
		if err != nil {
			log.Fatalf("master %s: %v", m, err)
		}
		addrs[i] = a
	}
	p := &proxy{
		listen:      *listen,
		masters:     masters,
		masterAddrs: addrs,
		table:       table,
		perPass:     *flush == "pass",
		loops:       map[gnet.EventLoop]*loop{},
	}
	go p.reportOnSignal()
	err = gnet.Run(p, "tcp://"+*listen,
		gnet.WithNumEventLoop(n),
		gnet.WithMulticore(true),
		gnet.WithLockOSThread(*lockOSThread),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithReuseAddr(true))
	if err != nil {
		log.Fatal(err)
	}
}

// proxy is the gnet event handler shared by every loop. Its methods run on
// the loop that owns the connection.
type proxy struct {
	gnet.BuiltinEventEngine
	listen      string
	masters     []string
	masterAddrs []net.Addr
	table       *[slotCount]uint16
	perPass     bool

	mu    sync.Mutex
	loops map[gnet.EventLoop]*loop // by gnet loop, created on its first client

	commands atomic.Uint64 // requests parsed, added once per OnTraffic
}

// reportOnSignal prints the requests served and the heap allocations made
// since start (runtime.MemStats.Mallocs, start-up included) when the
// process gets SIGINT or SIGTERM, then exits.
func (p *proxy) reportOnSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	<-ch
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	n := p.commands.Load()
	per := 0.0
	if n > 0 {
		per = float64(ms.Mallocs) / float64(n)
	}
	fmt.Fprintf(os.Stderr, "commands %d mallocs %d (%.4f per command, start-up included)\n", n, ms.Mallocs, per)
	os.Exit(0)
}

func (p *proxy) OnBoot(gnet.Engine) gnet.Action {
	fmt.Printf("ready %s masters %v\n", p.listen, p.masters)
	return gnet.None
}

// loopFor returns the state of the loop el, creating it (and dialling its
// backend connections into el) on the loop's first client.
func (p *proxy) loopFor(el gnet.EventLoop) *loop {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l, ok := p.loops[el]; ok {
		return l
	}
	l := &loop{p: p, el: el, backends: make([]*backend, len(p.masters))}
	for i := range p.masters {
		b := &backend{l: l, addr: p.masters[i]}
		l.backends[i] = b
		ch, err := el.Register(gnet.NewContext(context.Background(), b), p.masterAddrs[i])
		if err != nil {
			log.Fatalf("register backend %s: %v", b.addr, err)
		}
		go func() {
			if r := <-ch; r.Err != nil {
				log.Fatalf("dial master %s: %v", b.addr, r.Err)
			}
		}()
	}
	p.loops[el] = l
	return l
}

func (p *proxy) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	if b, ok := c.Context().(*backend); ok {
		// A backend connection dialled by loopFor: send what its loop's
		// clients queued meanwhile.
		b.conn = c
		if len(b.out) > 0 {
			b.l.markBackend(b)
			b.l.schedule()
		}
		return nil, gnet.None
	}
	l := p.loopFor(c.EventLoop())
	c.SetContext(&client{l: l, conn: c, ring: make([]entry, 16)})
	return nil, gnet.None
}

func (p *proxy) OnClose(c gnet.Conn, err error) gnet.Action {
	switch v := c.Context().(type) {
	case *backend:
		// The spike has no reconnects or health checks: a lost backend
		// ends the run loudly rather than leaving clients waiting.
		log.Fatalf("backend connection to %s closed: %v", v.addr, err)
	case *client:
		v.closed = true
	}
	return gnet.None
}

func (p *proxy) OnTraffic(c gnet.Conn) gnet.Action {
	switch v := c.Context().(type) {
	case *client:
		return v.onTraffic()
	case *backend:
		return v.onTraffic()
	}
	return gnet.Close
}

// loop is the state of one gnet event loop; only that loop touches it.
type loop struct {
	p         *proxy
	el        gnet.EventLoop
	backends  []*backend // by master index
	dirtyB    []*backend // backends with output to write this pass
	dirtyC    []*client  // clients with output to write this pass
	scheduled bool       // a flush task is queued on the loop
}

func (l *loop) markBackend(b *backend) {
	if !b.dirty {
		b.dirty = true
		l.dirtyB = append(l.dirtyB, b)
	}
}

func (l *loop) markClient(c *client) {
	if !c.dirty {
		c.dirty = true
		l.dirtyC = append(l.dirtyC, c)
	}
}

// schedule arranges for flush to run: at once with -flush traffic, else
// once at the end of this loop pass. gnet has no end-of-pass hook; a task
// queued with Execute runs after the I/O callbacks of the next epoll_wait
// (which returns at once: the task's eventfd is ready). Queuing costs an
// eventfd write and, inside gnet, one closure allocation per pass.
func (l *loop) schedule() {
	if len(l.dirtyB) == 0 && len(l.dirtyC) == 0 {
		return
	}
	if !l.p.perPass {
		l.flush()
		return
	}
	if l.scheduled {
		return
	}
	l.scheduled = true
	if err := l.el.Execute(context.Background(), l); err != nil {
		l.scheduled = false
		l.flush()
	}
}

// Run is the flush task queued by schedule (gnet.Runnable).
func (l *loop) Run(context.Context) error {
	l.scheduled = false
	l.flush()
	return nil
}

// flush writes every backend, then every client, with output. gnet's
// Conn.Write writes at once (a write(2)) and copies only what the socket
// does not take into the connection's outbound buffer, so the slices are
// free for reuse when it returns.
func (l *loop) flush() {
	for i, b := range l.dirtyB {
		b.dirty = false
		l.dirtyB[i] = nil
		if b.conn != nil && len(b.out) > 0 {
			_, _ = b.conn.Write(b.out)
			b.out = b.out[:0]
		}
	}
	l.dirtyB = l.dirtyB[:0]
	for i, c := range l.dirtyC {
		c.dirty = false
		l.dirtyC[i] = nil
		if !c.closed && len(c.out) > 0 {
			_, _ = c.conn.Write(c.out)
		}
		c.out = c.out[:0]
	}
	l.dirtyC = l.dirtyC[:0]
}

// entry is a client's reply slot, in request order.
type entry struct {
	done bool
	data []byte // the reply, when it came before the replies ahead of it
}

// client is one client connection. Replies go to out in request order:
// ring[head..tail) are the requests not answered yet, by sequence number.
type client struct {
	l          *loop
	conn       gnet.Conn
	ring       []entry // length a power of two
	head, tail uint64
	out        []byte
	dirty      bool
	closed     bool
}

// push reserves the reply slot of the next request and returns its number.
func (c *client) push() uint64 {
	if c.tail-c.head == uint64(len(c.ring)) {
		ring := make([]entry, 2*len(c.ring))
		for s := c.head; s < c.tail; s++ {
			ring[s&uint64(len(ring)-1)] = c.ring[s&uint64(len(c.ring)-1)]
		}
		c.ring = ring
	}
	s := c.tail
	c.tail++
	c.ring[s&uint64(len(c.ring)-1)].done = false
	return s
}

// reply answers the next request locally.
func (c *client) reply(b []byte) {
	if c.head == c.tail {
		c.out = append(c.out, b...)
		c.l.markClient(c)
		return
	}
	c.deliver(c.push(), b)
}

// deliver sets the reply of request seq and moves the answered prefix of
// the queue to out.
func (c *client) deliver(seq uint64, b []byte) {
	if c.closed {
		return
	}
	mask := uint64(len(c.ring) - 1)
	if seq != c.head {
		e := &c.ring[seq&mask]
		e.data = append(e.data[:0], b...)
		e.done = true
		return
	}
	c.out = append(c.out, b...)
	c.head++
	for c.head < c.tail {
		e := &c.ring[c.head&mask]
		if !e.done {
			break
		}
		c.out = append(c.out, e.data...)
		e.done = false
		c.head++
	}
	c.l.markClient(c)
}

var (
	pong        = []byte("+PONG\r\n")
	errUnsup    = []byte("-ERR unsupported in spike\r\n")
	errArgs     = []byte("-ERR wrong number of arguments\r\n")
	errDown     = []byte("-CLUSTERDOWN Hash slot not served\r\n")
	errProto    = []byte("-ERR Protocol error\r\n")
	configEmpty = []byte("*0\r\n")
)

// onTraffic parses every complete request in the client's input in place,
// answers or routes it, and leaves a partial request in gnet's inbound
// buffer.
func (c *client) onTraffic() gnet.Action {
	buf, _ := c.conn.Peek(-1)
	pos := 0
	var cmd command
	n := 0 // requests parsed
	action := gnet.None
	for pos < len(buf) {
		if buf[pos] != '*' {
			// Inline command: only PING (redis-benchmark's PING_INLINE).
			le := crlf(buf, pos)
			if le == -1 {
				break
			}
			if le < 0 {
				c.reply(errProto)
				action = gnet.Close
				break
			}
			if is(buf[pos:le], "PING") {
				c.reply(pong)
			} else {
				c.reply(errUnsup)
			}
			pos = le + 2
			continue
		}
		end, err := parseCommand(buf, pos, &cmd)
		if err != nil {
			c.reply(errProto)
			action = gnet.Close
			break
		}
		if end < 0 {
			break
		}
		c.route(&cmd, buf[pos:end])
		n++
		pos = end
	}
	if pos > 0 {
		_, _ = c.conn.Discard(pos)
	}
	if n > 0 {
		c.l.p.commands.Add(uint64(n))
	}
	if action == gnet.Close {
		c.l.flush()
		return action
	}
	c.l.schedule()
	return gnet.None
}

// route answers cmd locally or appends raw (its bytes) to its master's
// backend output.
func (c *client) route(cmd *command, raw []byte) {
	switch {
	case is(cmd.name, "GET"), is(cmd.name, "SET"):
		if cmd.argc < 2 || (cmd.argc == 2) != is(cmd.name, "GET") {
			c.reply(errArgs)
			return
		}
		m := c.l.p.table[hashslot.Of(cmd.key)]
		if m == noMaster {
			c.reply(errDown)
			return
		}
		b := c.l.backends[m]
		b.out = append(b.out, raw...)
		b.push(c, c.push())
		c.l.markBackend(b)
	case is(cmd.name, "PING"):
		switch cmd.argc {
		case 1:
			c.reply(pong)
		case 2:
			var tmp [64]byte
			c.reply(appendBulk(tmp[:0], cmd.key))
		default:
			c.reply(errArgs)
		}
	case is(cmd.name, "CONFIG"):
		// redis-benchmark asks CONFIG GET save/appendonly before a run.
		c.reply(configEmpty)
	default:
		c.reply(errUnsup)
	}
}

// waiter is a request sent on a backend connection, waiting for its reply.
type waiter struct {
	c   *client
	seq uint64
}

// backend is one connection to a master, owned by one loop. fifo[head..tail)
// are the requests sent or queued on it, in order.
type backend struct {
	l          *loop
	addr       string
	conn       gnet.Conn // nil until gnet opened it
	out        []byte
	fifo       []waiter // length a power of two
	head, tail uint64
	dirty      bool
}

func (b *backend) push(c *client, seq uint64) {
	if b.fifo == nil {
		b.fifo = make([]waiter, 256)
	}
	if b.tail-b.head == uint64(len(b.fifo)) {
		fifo := make([]waiter, 2*len(b.fifo))
		for s := b.head; s < b.tail; s++ {
			fifo[s&uint64(len(fifo)-1)] = b.fifo[s&uint64(len(b.fifo)-1)]
		}
		b.fifo = fifo
	}
	b.fifo[b.tail&uint64(len(b.fifo)-1)] = waiter{c, seq}
	b.tail++
}

// onTraffic parses every complete reply and hands it to the request at the
// head of the FIFO.
func (b *backend) onTraffic() gnet.Action {
	buf, _ := b.conn.Peek(-1)
	pos := 0
	mask := uint64(len(b.fifo) - 1)
	for pos < len(buf) {
		end, err := replyEnd(buf, pos)
		if err != nil {
			log.Fatalf("backend %s: %v", b.addr, err)
		}
		if end < 0 {
			break
		}
		if b.head == b.tail {
			log.Fatalf("backend %s: reply with no request waiting", b.addr)
		}
		w := &b.fifo[b.head&mask]
		b.head++
		w.c.deliver(w.seq, buf[pos:end])
		w.c = nil
		pos = end
	}
	if pos > 0 {
		_, _ = b.conn.Discard(pos)
	}
	b.l.schedule()
	return gnet.None
}
