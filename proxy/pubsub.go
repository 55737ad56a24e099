package proxy

import (
	"bufio"
	"bytes"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/redcon"

	"github.com/slotway/slotway/internal/hashslot"
	"github.com/slotway/slotway/internal/kick"
)

// Pub/Sub. A subscribing client gets a session: the channels, patterns and
// shard channels it wants (changed only by its own goroutine), and the
// backend connections that carry them (changed only by the session's
// manager goroutine, which reconciles the two):
//   - channels and patterns live on one connection to any master, because
//     a Redis Cluster broadcasts PUBLISH to every node;
//   - shard channels live on a connection to the master of their slot.
//     When that slot moves or its master fails over, Redis drops the
//     subscription (an unsolicited "sunsubscribe") or the connection dies;
//     the manager then subscribes again where the topology now points.
//
// Channels and patterns of every client of every Slotway instance live on
// one "home" master, the one serving slot 0, and PUBLISH goes there too:
// Redis Cluster broadcasts messages to all nodes, but PUBLISH answers only
// the number of receivers on the node it ran on, and with every
// subscription on that node the answer is the one a single Redis gives.
//
// A (P|S)SUBSCRIBE or (P|S)UNSUBSCRIBE confirmation is what Redis
// promises: once a client reads "subscribe ch", every later PUBLISH to ch
// counts it and reaches it; once it reads "unsubscribe ch", none does. So
// a confirmation waits in the session's pending list until the backend has
// confirmed the same state (settled), and everything the client is sent
// after it (replies, messages) waits behind it, in order. A confirmation
// the cluster does not give within retry_timeout ends the client's
// connection with an error instead of a promise Slotway cannot keep.
//
// Every byte for the client goes through one output queue drained by a
// writer goroutine, so replies and messages keep their order and a
// subscriber that stops reading cannot block anyone. The queue is bounded
// like Redis's client-output-buffer-limit for pubsub: past the hard limit,
// or above the soft limit for longer than its period, the client is
// disconnected.

const pubsubHomeSlot = 0

type pubsub struct {
	c   *client
	log *slog.Logger

	mu       sync.Mutex
	channels map[string]bool // wanted by the client
	patterns map[string]bool
	shard    map[string]bool
	global   *psConn            // carries channels and patterns
	gotCh    map[string]bool    // subscribed on global
	gotPat   map[string]bool    // psubscribed on global
	conns    map[string]*psConn // shard connections by master address
	gotShard map[string]*psConn // shard channel → connection it is on
	lostSubs map[psKey]bool     // dropped by the cluster, to count when made again

	// pend: confirmations waiting for the backend, and what the client is
	// sent after them, in order. Its head, when any, is a confirmation.
	pend      []psPending
	pendBytes int
	pendKeys  map[psKey]int // confirmations in pend, by name
	settledCh chan struct{} // poked when pend empties

	outMu     sync.Mutex
	out       []byte
	writing   int
	softSince time.Time
	dead      bool
	closing   bool // close the client once out is written

	poke    chan struct{}
	wake    chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup
	flushed chan struct{} // closed when the writer has exited
}

// psConn is one backend connection in subscribe mode.
type psConn struct {
	addr  string
	conn  net.Conn
	shard bool
	fifo  []psOp // shard: SSUBSCRIBE/SUNSUBSCRIBE awaiting their answer; guarded by pubsub.mu
	// Channels and patterns: (P)(UN)SUBSCRIBE answers still awaited, by
	// name, and in all. Guarded by pubsub.mu.
	wait     map[psKey]int
	inflight int
}

// psKey names a channel (kind psChannel), pattern or shard channel.
type psKey struct {
	kind int8
	name string
}

const (
	psChannel int8 = iota
	psPattern
	psShard
)

// psPending is a confirmation owed to the client (key, sub), or bytes
// queued behind one (plain).
type psPending struct {
	key   psKey
	sub   bool
	plain bool
	b     []byte
	since time.Time
}

type psOp struct {
	sub bool
	ch  string
}

func (c *client) pubsubSession() *pubsub {
	if c.ps != nil {
		return c.ps
	}
	ps := &pubsub{
		c: c, log: c.s.log,
		channels: map[string]bool{}, patterns: map[string]bool{}, shard: map[string]bool{},
		gotCh: map[string]bool{}, gotPat: map[string]bool{},
		conns: map[string]*psConn{}, gotShard: map[string]*psConn{}, lostSubs: map[psKey]bool{},
		pendKeys: map[psKey]int{}, settledCh: make(chan struct{}, 1),
		poke: make(chan struct{}, 1), wake: make(chan struct{}, 1),
		done: make(chan struct{}), flushed: make(chan struct{}),
	}
	c.ps = ps
	c.psView.Store(ps)
	ps.wg.Add(1)
	go ps.manage()
	go ps.writer()
	return ps
}

// resetPubsub leaves every subscription and returns the client to direct
// writes once what is queued has been written.
func (c *client) resetPubsub() {
	ps := c.ps
	if ps == nil {
		return
	}
	// What is owed before a RESET's or QUIT's reply: the confirmations
	// still waiting for the backend (the manager ends the wait at
	// retry_timeout).
	ps.settle(c.s.retryBudget() + time.Second)
	c.ps = nil
	c.psView.Store(nil)
	close(ps.done)
	ps.wg.Wait() // the manager closes the backend connections
	// A client that does not read must not hold us: what is queued gets a
	// bounded time to go out.
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	<-ps.flushed
	c.conn.SetWriteDeadline(time.Time{})
	for i := range c.subCounts {
		c.subCounts[i].Store(0)
	}
	c.subCount.Store(0)
}

// subscribed reports whether the client is in RESP2 subscribe mode.
func (c *client) subscribed() bool { return c.subCount.Load() > 0 }

func isPubsubCommand(args [][]byte) bool {
	switch len(args[0]) {
	case 9:
		return equalFold(args[0], "SUBSCRIBE")
	case 10:
		return equalFold(args[0], "PSUBSCRIBE") || equalFold(args[0], "SSUBSCRIBE")
	case 11:
		return equalFold(args[0], "UNSUBSCRIBE")
	case 12:
		return equalFold(args[0], "PUNSUBSCRIBE") || equalFold(args[0], "SUNSUBSCRIBE")
	}
	return false
}

// handlePubsub answers a subscribe-family command, or any command while
// the client is in RESP2 subscribe mode, appending the reply to dst.
func (c *client) handlePubsub(args [][]byte, dst []byte) []byte {
	if !isPubsubCommand(args) {
		// RESP2 subscribe mode allows only these, as in Redis.
		switch {
		case equalFold(args[0], "PING"):
			if len(args) > 2 {
				return appendError(dst, "ERR wrong number of arguments for 'ping' command")
			}
			dst = redcon.AppendArray(dst, 2)
			dst = redcon.AppendBulkString(dst, "pong")
			if len(args) == 2 {
				return redcon.AppendBulk(dst, args[1])
			}
			return redcon.AppendBulkString(dst, "")
		case equalFold(args[0], "QUIT"):
			c.quit = true
			return redcon.AppendOK(dst)
		case equalFold(args[0], "RESET"):
			return cmdReset(c, args, dst)
		}
		return appendError(dst, "ERR Can't execute '"+lowerString(args[0])+"': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
	}
	t := c.s.table.Load()
	if t == nil {
		return appendError(dst, "CLUSTERDOWN slotway has not reached the cluster yet")
	}
	ci, unknownSub := t.lookup(args)
	if msg := c.refusal(ci, unknownSub, args); msg != "" {
		return appendError(dst, msg)
	}
	ci.stats.calls.Add(1)
	ps := c.pubsubSession()
	name := lowerString(args[0])
	ps.mu.Lock()
	// What the batch answered before this command goes first.
	ps.emitLocked(dst)
	dst = dst[:0]
	var set map[string]bool
	kind := psChannel
	switch name {
	case "subscribe", "unsubscribe":
		set = ps.channels
	case "psubscribe", "punsubscribe":
		set, kind = ps.patterns, psPattern
	default:
		set, kind = ps.shard, psShard
	}
	count := func() int {
		if kind == psShard {
			return len(ps.shard)
		}
		return len(ps.channels) + len(ps.patterns)
	}
	now := time.Now()
	targets := args[1:]
	if !strings.Contains(name, "unsub") {
		for _, a := range targets {
			set[string(a)] = true
			ps.expect(psKey{kind, string(a)}, true, c.appendPush(nil, name, a, count()), now)
		}
	} else {
		if len(targets) == 0 {
			for k := range set {
				targets = append(targets, []byte(k))
			}
			slices.SortFunc(targets, bytes.Compare)
		}
		if len(targets) == 0 {
			b := c.appendPushLen(nil, 3)
			b = redcon.AppendBulkString(b, name)
			b = c.appendNull(b)
			ps.emitLocked(redcon.AppendInt(b, int64(count())))
		}
		for _, a := range targets {
			delete(set, string(a))
			ps.expect(psKey{kind, string(a)}, false, c.appendPush(nil, name, a, count()), now)
		}
	}
	ps.flushPending()
	c.subCounts[0].Store(int32(len(ps.channels)))
	c.subCounts[1].Store(int32(len(ps.patterns)))
	c.subCounts[2].Store(int32(len(ps.shard)))
	c.subCount.Store(int32(len(ps.channels) + len(ps.patterns) + len(ps.shard)))
	ps.mu.Unlock()
	ps.kick()
	return dst
}

// appendPushLen starts a pub/sub frame: a RESP3 push, or a RESP2 array.
func (c *client) appendPushLen(dst []byte, n int) []byte {
	if c.resp3 {
		return appendHeader(dst, '>', int64(n))
	}
	return appendHeader(dst, '*', int64(n))
}

func (c *client) appendPush(dst []byte, kind string, name []byte, count int) []byte {
	dst = c.appendPushLen(dst, 3)
	dst = redcon.AppendBulkString(dst, kind)
	dst = redcon.AppendBulk(dst, name)
	return redcon.AppendInt(dst, int64(count))
}

func lowerString(b []byte) string {
	out := []byte(printable(b))
	for i, ch := range out {
		if 'A' <= ch && ch <= 'Z' {
			out[i] = ch + 32
		}
	}
	return string(out)
}

func (ps *pubsub) kick() {
	kick.Send(ps.poke)
}

// manage reconciles the backend subscriptions with what the client wants,
// on every change and every 200ms while something is not in place.
func (ps *pubsub) manage() {
	defer ps.wg.Done()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ps.done:
			ps.mu.Lock()
			if ps.global != nil {
				ps.global.conn.Close()
			}
			for _, pc := range ps.conns {
				pc.conn.Close()
			}
			ps.mu.Unlock()
			return
		case <-ps.poke:
		case now := <-tick.C:
			ps.expire(now)
		}
		ps.reconcile()
	}
}

func (ps *pubsub) reconcile() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	c := ps.c
	// Channels and patterns, on the home master.
	t := c.s.topo.load()
	want := len(ps.channels)+len(ps.patterns) > 0
	home := t.slots[pubsubHomeSlot]
	if g := ps.global; g != nil && (home == nil || g.addr != home.addr) {
		ps.dropGlobal() // the home master changed
	}
	if ps.global == nil && want && home != nil {
		ps.global = ps.dial(home.addr, false)
	}
	if g := ps.global; g != nil {
		var cmds []byte
		cmds = ps.diffCommand(cmds, g, "SUBSCRIBE", psChannel, ps.channels, ps.gotCh, true)
		cmds = ps.diffCommand(cmds, g, "UNSUBSCRIBE", psChannel, ps.gotCh, ps.channels, false)
		cmds = ps.diffCommand(cmds, g, "PSUBSCRIBE", psPattern, ps.patterns, ps.gotPat, true)
		cmds = ps.diffCommand(cmds, g, "PUNSUBSCRIBE", psPattern, ps.gotPat, ps.patterns, false)
		if len(cmds) > 0 {
			g.conn.Write(cmds) // a failure shows in the reader, which resets the state
		} else if !want && g.inflight == 0 {
			// Nothing left on it, and the UNSUBSCRIBEs are confirmed.
			g.conn.Close()
			ps.global = nil
		}
	}
	for k := range ps.lostSubs {
		if !ps.wants(k) {
			delete(ps.lostSubs, k)
		}
	}
	// Shard channels: each on the master of its slot.
	pending := map[*psConn][]byte{}
	for ch, pc := range ps.gotShard {
		b := t.slots[hashslot.Of([]byte(ch))]
		if !ps.shard[ch] || b == nil || b.addr != pc.addr {
			if ps.shard[ch] {
				ps.lostSubs[psKey{psShard, ch}] = true // the slot moved
			}
			delete(ps.gotShard, ch)
			pc.fifo = append(pc.fifo, psOp{sub: false, ch: ch})
			pending[pc] = appendCommand(pending[pc], [][]byte{[]byte("SUNSUBSCRIBE"), []byte(ch)})
		}
	}
	for ch := range ps.shard {
		if ps.gotShard[ch] != nil {
			continue
		}
		b := t.slots[hashslot.Of([]byte(ch))]
		if b == nil {
			continue
		}
		pc := ps.conns[b.addr]
		if pc == nil {
			if pc = ps.dial(b.addr, true); pc == nil {
				continue
			}
			ps.conns[b.addr] = pc
		}
		ps.gotShard[ch] = pc
		ps.noteSubscribe(psKey{psShard, ch})
		pc.fifo = append(pc.fifo, psOp{sub: true, ch: ch})
		pending[pc] = appendCommand(pending[pc], [][]byte{[]byte("SSUBSCRIBE"), []byte(ch)})
	}
	for pc, cmds := range pending {
		pc.conn.Write(cmds)
	}
	for addr, pc := range ps.conns {
		if len(pc.fifo) > 0 {
			continue
		}
		used := false
		for _, on := range ps.gotShard {
			if on == pc {
				used = true
				break
			}
		}
		if !used {
			pc.conn.Close()
			delete(ps.conns, addr)
		}
	}
	ps.flushPending() // what the changes above settled
}

// diffCommand appends CMD with the names in want but not in got (and
// records them in got when add, removes them otherwise), and counts the
// answers g now owes.
func (ps *pubsub) diffCommand(dst []byte, g *psConn, cmd string, kind int8, want, got map[string]bool, add bool) []byte {
	var names [][]byte
	for k := range want {
		if !got[k] {
			names = append(names, []byte(k))
		}
	}
	if len(names) == 0 {
		return dst
	}
	for _, n := range names {
		k := psKey{kind, string(n)}
		if add {
			got[k.name] = true
			ps.noteSubscribe(k)
		} else {
			delete(want, k.name)
		}
		g.wait[k]++
		g.inflight++
	}
	return appendCommand(dst, append([][]byte{[]byte(cmd)}, names...))
}

// noteSubscribe counts a subscription made again after the cluster dropped
// it. Called with ps.mu held.
func (ps *pubsub) noteSubscribe(k psKey) {
	if ps.lostSubs[k] {
		delete(ps.lostSubs, k)
		ps.c.s.m.resubscribes.Inc()
	}
}

func (ps *pubsub) wants(k psKey) bool {
	switch k.kind {
	case psChannel:
		return ps.channels[k.name]
	case psPattern:
		return ps.patterns[k.name]
	}
	return ps.shard[k.name]
}

// dropGlobal closes the channels-and-patterns connection; the manager
// subscribes again on the home master. Called with ps.mu held.
func (ps *pubsub) dropGlobal() {
	ps.global.conn.Close()
	ps.global = nil
	for ch := range ps.gotCh {
		if ps.channels[ch] {
			ps.lostSubs[psKey{psChannel, ch}] = true
		}
	}
	for pat := range ps.gotPat {
		if ps.patterns[pat] {
			ps.lostSubs[psKey{psPattern, pat}] = true
		}
	}
	clear(ps.gotCh)
	clear(ps.gotPat)
}

// dial opens a subscribe connection and starts its reader; nil on failure
// (the next reconcile tries again). Called with ps.mu held.
func (ps *pubsub) dial(addr string, shard bool) *psConn {
	select {
	case <-ps.done:
		return nil
	default:
	}
	conn, err := ps.c.s.dialBackend(ps.c.s.ctxBackground(), addr)
	if err != nil {
		ps.c.s.topo.requestRefresh()
		ps.log.Debug("pubsub: dial failed", "addr", addr, "err", err)
		return nil
	}
	pc := &psConn{addr: addr, conn: conn, shard: shard, wait: map[psKey]int{}}
	ps.wg.Add(1)
	go ps.read(pc)
	return pc
}

// read forwards messages from one backend connection and notices when
// subscriptions are lost.
func (ps *pubsub) read(pc *psConn) {
	defer ps.wg.Done()
	br := bufio.NewReaderSize(pc.conn, 64<<10)
	var buf []byte
	for {
		frame, err := readFrame(br, buf[:0])
		if err != nil {
			ps.lost(pc)
			return
		}
		buf = frame
		kind, ch := frameHead(frame)
		ps.mu.Lock()
		forward := false
		switch kind {
		case "message":
			forward = ps.channels[string(ch)]
		case "pmessage":
			forward = ps.patterns[string(ch)]
		case "smessage":
			forward = ps.shard[string(ch)] && ps.gotShard[string(ch)] == pc
		case "subscribe", "unsubscribe":
			ps.answered(pc, psKey{psChannel, string(ch)})
		case "psubscribe", "punsubscribe":
			ps.answered(pc, psKey{psPattern, string(ch)})
		case "ssubscribe":
			if len(pc.fifo) > 0 {
				pc.fifo = pc.fifo[1:]
			}
		case "sunsubscribe":
			if len(pc.fifo) > 0 && !pc.fifo[0].sub && pc.fifo[0].ch == string(ch) {
				pc.fifo = pc.fifo[1:]
			} else if ps.gotShard[string(ch)] == pc {
				// Redis dropped it: the slot moved or this node is no
				// longer its master.
				delete(ps.gotShard, string(ch))
				if ps.shard[string(ch)] {
					ps.lostSubs[psKey{psShard, string(ch)}] = true
				}
				ps.c.s.topo.requestRefresh()
			}
		case "-":
			if !pc.shard {
				// Nothing tells which name failed: start this
				// connection over (the client's wait ends at
				// retry_timeout if it keeps failing).
				ps.log.Warn("pubsub: backend refused a subscription", "addr", pc.addr, "reply", string(trimCRLF(frame)))
				if ps.global == pc {
					ps.dropGlobal()
				}
			} else if len(pc.fifo) > 0 {
				op := pc.fifo[0]
				pc.fifo = pc.fifo[1:]
				if op.sub && ps.gotShard[op.ch] == pc {
					delete(ps.gotShard, op.ch) // MOVED or CLUSTERDOWN: retried on the next tick
					ps.c.s.topo.requestRefresh()
				}
			}
			ps.log.Debug("pubsub: backend error", "addr", pc.addr, "reply", string(trimCRLF(frame)))
		}
		if forward {
			if frame[0] == '*' && ps.c.proto.Load() == 3 {
				frame[0] = '>' // the same frame as a RESP3 push
			}
			ps.emitLocked(frame)
		} else if kind != "message" && kind != "pmessage" && kind != "smessage" {
			ps.flushPending() // a subscription may have settled
		}
		ps.mu.Unlock()
	}
}

// answered notes the backend's answer to a (P)(UN)SUBSCRIBE on the
// channels-and-patterns connection. Called with ps.mu held.
func (ps *pubsub) answered(pc *psConn, k psKey) {
	if pc != ps.global || pc.wait[k] == 0 {
		return
	}
	if pc.wait[k]--; pc.wait[k] == 0 {
		delete(pc.wait, k)
	}
	pc.inflight--
}

// lost forgets what a dead connection carried; the manager subscribes
// again elsewhere.
func (ps *pubsub) lost(pc *psConn) {
	pc.conn.Close()
	ps.mu.Lock()
	if ps.global == pc {
		ps.dropGlobal()
	}
	if ps.conns[pc.addr] == pc {
		delete(ps.conns, pc.addr)
	}
	for ch, on := range ps.gotShard {
		if on == pc {
			delete(ps.gotShard, ch)
			if ps.shard[ch] {
				ps.lostSubs[psKey{psShard, ch}] = true
			}
		}
	}
	ps.flushPending() // unsubscribes it carried are settled
	ps.mu.Unlock()
	select {
	case <-ps.done:
	default:
		ps.c.s.topo.requestRefresh()
	}
}

// readFrame reads one RESP reply into dst.
func readFrame(br *bufio.Reader, dst []byte) ([]byte, error) {
	for {
		n, _, err := scanReply(dst)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			return dst, nil
		}
		line, err := br.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			return nil, err
		}
		dst = append(dst, line...)
	}
}

// frameHead returns a subscribe-mode frame's kind ("message", "pmessage",
// "ssubscribe", ..., or "-" for an error) and its channel or pattern.
func frameHead(f []byte) (kind string, ch []byte) {
	if len(f) == 0 {
		return "", nil
	}
	if f[0] == '-' {
		return "-", nil
	}
	if f[0] != '*' && f[0] != '>' {
		return "", nil
	}
	_, next, ok := readLine(f, 1)
	if !ok {
		return "", nil
	}
	k, next, ok := bulkAt(f, next)
	if !ok {
		return "", nil
	}
	ch, _, _ = bulkAt(f, next)
	return string(k), ch
}

func bulkAt(f []byte, pos int) ([]byte, int, bool) {
	if pos >= len(f) || f[pos] != '$' {
		return nil, pos, false
	}
	line, next, ok := readLine(f, pos+1)
	if !ok {
		return nil, pos, false
	}
	n, err := strconv.Atoi(string(line))
	if err != nil || n < 0 || next+n+2 > len(f) {
		return nil, pos, false
	}
	return f[next : next+n], next + n + 2, true
}
