package proxy

import (
	"bytes"
	"errors"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/slotway/slotway/internal/hashslot"
)

// request is one client command on its way through the proxy. Clients keep
// a slice of them and reuse it for every batch, so the steady state does not
// allocate.
//
// Who owns a request, step by step:
//   - prepare (client goroutine): parsed, routed, its reply started for
//     commands answered locally; nothing else sees it yet.
//   - send (client goroutine): appended to a backend pipe's queue with
//     state stSent. From here until complete, the pipe owns reply, err and
//     skip: its reader goroutine fills them in FIFO order (skip under the
//     pipe's mu); the client goroutine does not touch the request.
//   - complete/fail (pipe goroutine): the last request of the batch wakes
//     the client through batch.done, which hands every request back.
//   - execute (client goroutine again): redirects, retries (state stSend,
//     sent again) or the final reply (stDone), written to the client in
//     request order. raw and args point into the reader's buffer, which is
//     not touched until the whole batch is answered.
type request struct {
	raw   []byte // the command's RESP bytes; valid for the whole batch
	reply []byte // the reply's raw RESP bytes
	err   error  // set instead of reply when the backend failed

	batch *batch
	skip  int8 // leading replies to discard (ASKING); guarded by the pipe's mu

	info      *cmdInfo
	slot      int      // -1: keyless, any master
	target    *backend // set by MOVED/ASK for the next attempt
	asking    bool
	redirects uint8
	state     reqState

	// A split multi-key command: its parts are c.subs[subFrom:subTo].
	subFrom, subTo int
	own            []byte // a part's own encoding (raw points here)
	pinned         bool   // a fan-out part: always to its target master
	blocked        bool   // ran as a blocking command: its wait is not latency
	repaired       bool   // scripts or functions were restored for it once
	scanMaster     uint64 // SCAN: index of the master this call reads
	scanMasters    uint64 // SCAN: how many masters the cursor walks

	admin [][]byte // stAdmin: a copy of the arguments
	mute  bool     // CLIENT REPLY OFF or SKIP: the client does not get the reply
}

type reqState uint8

const (
	stDone  reqState = iota // reply is final
	stSend                  // to be sent in the next round
	stSent                  // waiting for its reply
	stBlock                 // a blocking command: runs alone on its own connection
	stAdmin                 // answered by the proxy after talking to the nodes: off the loops (runAdmin)
)

// unroute lets a retried request be routed afresh; a fan-out part stays
// on its master (another master would run it twice, and this one never).
func (r *request) unroute() {
	if !r.pinned {
		r.target, r.asking = nil, false
	}
}

func (r *request) complete() {
	if b := r.batch; b.pending.Add(-1) == 0 {
		if b.lp != nil {
			b.lp.post(b.c, evRound)
		} else {
			b.done <- struct{}{}
		}
	}
}

func (r *request) fail(err error) {
	r.err = err
	r.complete()
}

// batch counts the requests of one round that still wait for a reply; the
// last one to finish wakes the client once: through done when a goroutine
// waits for the round, through its loop's queue when a loop runs it (lp
// is set by the client's owner before the round's first enqueue, which
// the pipe's mutex orders before the completion that reads it).
type batch struct {
	pending atomic.Int32
	done    chan struct{}
	lp      *loop
	c       *client
}

// client serves one client connection. Only its own goroutine touches it,
// except for fields documented otherwise.
type client struct {
	s      *Server
	id     uint64
	conn   net.Conn // while a goroutine serves the client; nil in a loop (guarded by hmu)
	rd     *reader
	out    []byte
	outSh  shrinker // gives out back after a burst of large replies
	reqs   []request
	batch  batch
	quit   bool
	ex     execState  // the batch being executed
	dirty  []*pipe    // pipes this round appended to; flushed once each
	subs   []request  // per-slot parts of split multi-key commands
	split  splitState // scratch for splitting
	tx     txState    // MULTI/EXEC/WATCH
	blk    blockState // dedicated connection of blocking commands
	ps     *pubsub    // subscriptions and the output queue, once subscribed
	wrote  []string   // masters written since the last WAIT
	adminN int        // stAdmin requests in the batch being prepared
	// CLIENT REPLY: replyMode for the requests prepared next; replySet
	// marks the CLIENT REPLY request itself, muted by its new mode.
	replyMode uint8
	replySet  bool
	// monitoring: in MONITOR mode (CLIENT LIST's flag O).
	monitoring atomic.Bool
	// psView is ps for other goroutines (INFO's pub/sub counts).
	psView atomic.Pointer[pubsub]

	// Set at accept, then only read (CLIENT LIST and KILL read them from
	// other goroutines).
	raddr, laddr net.Addr
	// hmu guards conn and lp where other goroutines (CLIENT KILL, the
	// drain) meet a loop handing the client over to a goroutine.
	hmu    sync.Mutex
	lp     *loop // the event loop serving the client; nil when a goroutine does
	killed atomic.Bool
	ls     loopClient // the loop's state of this client (loop.go)

	user     *user  // nil until AUTH when proxy.users is set
	name     []byte // CLIENT SETNAME
	libName  []byte
	libVer   []byte
	created  time.Time
	lastCmd  atomic.Int64 // unix nanos, read by CLIENT LIST
	commands atomic.Uint64

	// Read by CLIENT LIST from other goroutines.
	view       clientView
	lastInfo   atomic.Pointer[cmdInfo]
	inMulti    atomic.Bool
	multiCount atomic.Int32
	subCount   atomic.Int32    // channels + patterns + shard channels
	subCounts  [3]atomic.Int32 // sub, psub, ssub
	proto      atomic.Int32    // RESP version: 2 or 3
	resp3      bool            // proto == 3, for this goroutine
	// Requests parked for the retry budget, and since when (unix nanos,
	// 0: none), for the parked gauges.
	parkedN  atomic.Int32
	parkedAt atomic.Int64
	// bufBytes is the capacity of rd's window and out, updated at the end
	// of a batch when it changed (noteBuffers); outBytes is out's part.
	// CLIENT LIST and INFO read them.
	bufBytes, outBytes atomic.Int64
	// fd is the client socket's descriptor, for CLIENT LIST; multiMem the
	// bytes of the commands queued in MULTI.
	fd       atomic.Int32
	multiMem atomic.Int64
}

// noteBuffers publishes the sizes of c's buffers when they changed.
func (c *client) noteBuffers() {
	if b := int64(len(c.rd.buf) + cap(c.out)); b != c.bufBytes.Load() {
		c.bufBytes.Store(b)
		c.outBytes.Store(int64(cap(c.out)))
	}
}

// socketFD is conn's descriptor, or -1.
func socketFD(conn net.Conn) int32 {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return -1
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	fd := int32(-1)
	raw.Control(func(f uintptr) { fd = int32(f) })
	return fd
}

func (s *Server) newClient(id uint64, conn net.Conn) *client {
	c := &client{
		s: s, id: id, conn: conn, raddr: conn.RemoteAddr(), laddr: conn.LocalAddr(),
		rd:      newReader(conn, s.settings().limits),
		out:     make([]byte, 0, 16<<10),
		created: time.Now(),
	}
	if len(s.settings().users) == 0 {
		c.user = openUser // so a reload that adds users does not log it out
	}
	c.proto.Store(2)
	c.batch.done = make(chan struct{}, 1)
	c.batch.c = c
	c.fd.Store(socketFD(conn))
	return c
}

// serve reads batches of requests, answers them in order and returns when
// the client goes away, sends QUIT or breaks the protocol.
func (c *client) serve() {
	defer func() {
		if v := recover(); v != nil {
			c.s.log.Error("client handler panicked; closing that client",
				"client_id", c.id, "panic", v, "stack", string(debug.Stack()))
		}
		c.endTx()
		c.endBlocking()
		c.resetPubsub()
		c.conn.Close()
		noteReleased(len(c.rd.buf))
		noteReleased(cap(c.out))
	}()
	maxBatch := c.s.settings().limits.MaxBatchLen
	for !c.quit {
		c.rd.lim = c.s.settings().limits // a reload applies from the next batch
		n := 0
		c.rd.inline = c.rd.inline[:0]
		c.resetSubs()
		var perr error
		var start time.Time
		for n < maxBatch && !c.quit {
			args, raw, err := c.rd.next()
			if errors.Is(err, errIncomplete) {
				if n > 0 {
					break
				}
				if d := c.s.settings().clientIdleTimeout; d > 0 {
					if c.s.closing.Load() {
						return // do not undo the drain's deadline
					}
					c.conn.SetReadDeadline(time.Now().Add(d))
				}
				if err := c.rd.fill(); err != nil {
					return
				}
				continue
			}
			if err != nil {
				perr = err
				break
			}
			if len(args) == 0 {
				continue
			}
			if n == 0 {
				start = time.Now()
			}
			if n == len(c.reqs) {
				c.reqs = append(c.reqs, request{batch: &c.batch})
			}
			if c.s.pauseMode.Load() != pauseNone {
				if !c.waitPause(args, &n, start) {
					return
				}
				if n == 0 {
					start = time.Now()
				}
			}
			switch {
			case isMonitor(args) && !c.tx.active:
				c.monitored(args)
				if !c.serveMonitor(&n, start) {
					return
				}
				continue
			case c.pubsubTurn(args):
				c.monitored(args)
				if !c.servePubsub(args, &n, start) {
					return
				}
				continue
			case c.txTurn(args):
				c.serveTx(args, raw, n)
				n++
				continue
			}
			c.prepare(&c.reqs[n], args, raw)
			n++
			if c.reqs[n-1].state == stBlock {
				if !c.serveBlocking(args, &n, start) {
					return
				}
				start = time.Now()
			}
		}
		if n > 0 {
			c.finishBatch(n, start)
		}
		if perr != nil {
			c.s.m.protocolErrors.Inc()
			c.out = appendError(c.out, "ERR "+perr.Error())
			c.quit = true
		}
		if !c.writeOut() {
			return
		}
		c.rd.shrink()
		c.noteBuffers()
		c.commands.Add(uint64(n))
	}
}

// pubsubTurn reports a request the pub/sub session serves: a
// subscription command, or anything from a RESP2 subscriber.
func (c *client) pubsubTurn(args [][]byte) bool {
	return ((c.subscribed() && !c.resp3) || isPubsubCommand(args)) && !c.tx.active &&
		(len(c.s.settings().users) == 0 || c.user != nil)
}

// servePubsub answers the batch's first *n requests, then the pub/sub
// request, since subscriptions change the connection's state. False when
// the client is gone.
func (c *client) servePubsub(args [][]byte, n *int, start time.Time) bool {
	if *n > 0 {
		c.finishBatch(*n, start)
		c.commands.Add(uint64(*n))
		*n = 0
	}
	c.out = c.handlePubsub(args, c.out)
	c.commands.Add(1)
	c.lastCmd.Store(time.Now().UnixNano())
	return c.writeOut()
}

// txTurn reports a request the transaction code serves.
func (c *client) txTurn(args [][]byte) bool {
	return c.isTxCommand(args) && (len(c.s.settings().users) == 0 || c.user != nil)
}

// serveTx runs the batch's first n requests (a barrier: a transaction
// sees the writes pipelined before it), then leaves the transaction
// command's reply in request n.
func (c *client) serveTx(args [][]byte, raw []byte, n int) {
	if n > 0 {
		c.execute(c.reqs[:n], c.subs)
		c.mergeSplits(c.reqs[:n])
	}
	r := &c.reqs[n]
	r.raw, r.err, r.target, r.info, r.subFrom, r.subTo = raw, nil, nil, nil, 0, 0
	c.monitored(args)
	r.reply = c.handleTx(args, raw, r.reply[:0])
	r.state = stDone
	r.mute = c.replyMode != replyOn && c.muted()
	c.replySet = false
}

// serveBlocking runs the blocking request *n-1 alone, after answering
// what was pipelined before it, as Redis would; it then leads the rest of
// the batch. False when the client is gone.
func (c *client) serveBlocking(args [][]byte, n *int, start time.Time) bool {
	if *n > 1 {
		c.finishBatch(*n-1, start)
		if !c.writeOut() {
			return false
		}
		c.commands.Add(uint64(*n - 1))
		c.reqs[0], c.reqs[*n-1] = c.reqs[*n-1], c.reqs[0]
		*n = 1
	}
	c.block(&c.reqs[0], args)
	return true
}

// finishBatch executes reqs[:n] and appends their replies to c.out.
func (c *client) finishBatch(n int, start time.Time) {
	c.execute(c.reqs[:n], c.subs)
	c.completeBatch(n, start)
}

// swapReplyAt: a reply this large that starts a batch's output becomes
// the output buffer instead of being copied into it.
const swapReplyAt = 16 << 10

// completeBatch appends the final replies of reqs[:n] to c.out and
// counts their latency from start.
func (c *client) completeBatch(n int, start time.Time) {
	c.mergeSplits(c.reqs[:n])
	// One clock read per batch: every command of a batch waited for
	// the batch (pipelines are answered together).
	end := time.Now()
	took := end.Sub(start)
	c.lastCmd.Store(end.UnixNano())
	var perFamily [16]uint64
	if ci := c.reqs[n-1].info; ci != nil {
		c.lastInfo.Store(ci)
	}
	// commandstats' usec: one atomic add per run of the same command (a
	// pipeline of GETs adds once), not one per request.
	us := uint64(took.Microseconds())
	var run *cmdInfo
	var runLen uint64
	for i := range c.reqs[:n] {
		r := &c.reqs[i]
		switch {
		case r.blocked:
			r.blocked = false // its wait is the application's, not ours
		case r.info != nil:
			perFamily[r.info.family]++
		default:
			perFamily[familyOther]++ // refused before routing
		}
		if r.info != run {
			if run != nil {
				run.stats.usec.Add(us * runLen)
			}
			run, runLen = r.info, 0
		}
		runLen++
		if len(r.reply) > 0 && r.reply[0] == '-' {
			c.s.errs.note(r.reply)
		}
		if r.mute {
			r.mute = false
		} else if len(c.out) == 0 && len(r.reply) >= swapReplyAt {
			// A large reply first in line is written from its own buffer:
			// the request takes the (small) output buffer in exchange. A
			// large one, an earlier reply written already, goes back to
			// the loop for its pipes to read into (loopbuf.go).
			old := c.out[:0]
			c.out, r.reply = r.reply, nil
			if cap(old) > bufKeep && c.lp != nil {
				c.lp.big.put(old)
			} else {
				r.reply = old
			}
		} else {
			c.out = append(c.out, r.reply...)
		}
		if cap(r.reply) > 64<<10 {
			r.reply = nil
		}
		r.info, r.target, r.raw = nil, nil, nil
	}
	if run != nil {
		run.stats.usec.Add(us * runLen)
	}
	for f, k := range perFamily {
		if k > 0 {
			c.s.latency[f].observe(took, k)
		}
	}
	c.resetSubs()
}

// writeOut sends c.out to the client; false when the client is gone.
func (c *client) writeOut() bool {
	if len(c.out) == 0 {
		return true
	}
	var err error
	if c.ps != nil {
		c.ps.enqueue(c.out) // a failed write closes the connection, which ends reading
	} else {
		_, err = c.conn.Write(c.out)
	}
	if c.outSh.shrink(len(c.out), cap(c.out), 1<<20) {
		noteReleased(cap(c.out))
		c.out = make([]byte, 0, 16<<10)
	} else {
		c.out = c.out[:0]
	}
	return err == nil
}

// prepare decides how req is served. Local commands are answered here; the
// rest get a slot and state stSend.
func (c *client) prepare(req *request, args [][]byte, raw []byte) {
	t := c.s.table.Load()
	ci, unknownSub := c.lookup(t, args)
	c.prepareWith(req, args, raw, t, ci, unknownSub)
}

// lookup finds the command in t; before the table is known, PING and
// friends still work.
func (c *client) lookup(t *commandTable, args [][]byte) (ci *cmdInfo, unknownSub bool) {
	if t != nil {
		return t.lookup(args)
	}
	return localInfo(args[0]), false
}

// Reply modes (CLIENT REPLY).
const (
	replyOn   uint8 = iota
	replyOff        // no replies until CLIENT REPLY ON
	replySkip       // no reply to the next command
)

// muted reports whether the request being prepared gets no reply, and
// ends a SKIP.
func (c *client) muted() bool {
	if c.replyMode == replySkip {
		c.replyMode = replyOn
	}
	return true
}

// prepareWith is prepare with the command already looked up in t.
func (c *client) prepareWith(req *request, args [][]byte, raw []byte, t *commandTable, ci *cmdInfo, unknownSub bool) {
	req.raw, req.err, req.target, req.asking, req.redirects, req.repaired = raw, nil, nil, false, 0, false
	req.subFrom, req.subTo = 0, 0
	req.reply = req.reply[:0]
	req.state = stDone
	req.mute = c.replyMode != replyOn && c.muted()
	c.monitored(args)
	if len(c.s.settings().users) > 0 && c.user == nil && !preAuth(ci) {
		req.reply = appendError(req.reply, "NOAUTH Authentication required.")
		return
	}
	if ci != nil && ci.kind == kindLocal && t != nil && len(args) >= 3 && equalFold(args[0], "CLUSTER") &&
		(equalFold(args[1], "COUNTKEYSINSLOT") || equalFold(args[1], "GETKEYSINSLOT")) {
		// Questions about one slot go to the master that serves it.
		slot, ok := parseLen(args[2])
		if !ok || slot >= hashslot.Count {
			req.reply = appendError(req.reply, "ERR Invalid or out of range slot")
			return
		}
		req.info, req.slot, req.state = ci, int(slot), stSend
		ci.stats.calls.Add(1)
		return
	}
	if ci != nil && ci.kind == kindLocal {
		req.info = ci
		if lc := ci.local; lc.remote != nil && lc.remote(args) {
			req.state, req.admin = stAdmin, cloneArgs(args)
			c.adminN++
			return
		}
		req.reply = ci.local.run(c, args, req.reply)
		if c.replySet {
			c.replySet = false
			req.mute = c.replyMode != replyOn
		}
		return
	}
	if t == nil {
		req.reply = appendError(req.reply, "CLUSTERDOWN slotway has not reached the cluster yet")
		return
	}
	if msg := c.refusal(ci, unknownSub, args); msg != "" {
		req.reply = appendError(req.reply, msg)
		if ci == nil {
			c.s.m.unknownCommands.Inc()
		} else {
			ci.stats.calls.Add(1)
			ci.stats.errors.Add(1)
			ci.stats.rejected.Add(1)
		}
		return
	}
	req.info = ci
	ci.stats.calls.Add(1)
	if ci.family == familyScripting {
		c.noteScript(ci, args)
	}
	switch ci.kind {
	case kindFanout:
		if ci.split == scanOne {
			c.prepareScan(req, ci, args)
			return
		}
		if (ci.name == "flushall" || ci.name == "flushdb") && c.s.settings().disableFlush {
			req.reply = appendError(req.reply, "ERR "+upper([]byte(ci.name))+" is disabled in this proxy (proxy.disable_flush)")
			ci.stats.errors.Add(1)
			return
		}
		c.prepareFanout(req, ci, args, raw)
		return
	case kindUnsupported:
		req.reply = appendError(req.reply, "ERR command '"+ci.displayName()+"' is not supported by slotway: "+ci.reason)
		ci.stats.errors.Add(1)
		return
	case kindAnyMaster:
		req.slot = -1
		if ci.name == "publish" {
			req.slot = pubsubHomeSlot // where the subscribers are
		}
	default:
		slot, cross := ci.slotOf(args)
		if k := ci.namesOwnKey(args, slot, cross); k != nil {
			req.reply = appendError(req.reply, reservedKeyMsg(k))
			ci.stats.errors.Add(1)
			return
		}
		blocking := ci.kind == kindBlocking || (ci.blockArg && findKeyword(args, "BLOCK", 1) > 0)
		if cross && !blocking && ci.split != splitNone && c.s.splitAllowed(ci) {
			c.prepareSplit(req, ci, args)
			return
		}
		if cross {
			req.reply = appendError(req.reply, "CROSSSLOT Keys in request don't hash to the same slot")
			ci.stats.errors.Add(1)
			c.s.m.crossSlot.Inc()
			return
		}
		req.slot = slot
		if slot >= 0 {
			c.s.slotOps[slot].Add(1)
		}
		if blocking {
			req.state = stBlock
			return
		}
	}
	req.state = stSend
}

// refusal is the error a command gets before it is routed (unknown,
// wrong arity, not permitted to this user), or "" when it may run. The
// data path and MULTI's queueing both use it.
func (c *client) refusal(ci *cmdInfo, unknownSub bool, args [][]byte) string {
	switch {
	case ci == nil && unknownSub:
		return "ERR unknown subcommand '" + printable(args[1]) + "'. Try " + upper(args[0]) + " HELP."
	case ci == nil:
		return unknownCommandMsg(args)
	case !ci.arityOK(len(args)):
		return "ERR wrong number of arguments for '" + ci.name + "' command"
	case c.user != nil && !c.user.permits(ci):
		return "NOPERM User " + c.user.name + " has no permissions to run the '" + ci.displayName() + "' command"
	}
	return ""
}

// preAuth: what a client may send before AUTH, as in Redis.
func preAuth(ci *cmdInfo) bool {
	if ci == nil {
		return false
	}
	switch ci.name {
	case "auth", "hello", "quit":
		return true
	}
	return false
}

func backendErrorMsg(r *request) string {
	addr := "?"
	if r.target != nil {
		addr = r.target.addr
	}
	if errors.Is(r.err, errBackendLost) || errors.Is(r.err, errBackendCut) {
		return "ERR slotway: connection to " + addr + " lost before the reply; the command may have run"
	}
	return "CLUSTERDOWN slotway: master " + addr + " unreachable"
}

func unknownCommandMsg(args [][]byte) string {
	var b bytes.Buffer
	b.WriteString("ERR unknown command '")
	b.WriteString(printable(args[0]))
	b.WriteString("', with args beginning with: ")
	for _, a := range args[1:min(len(args), 4)] {
		b.WriteString("'" + printable(a) + "' ")
	}
	return b.String()
}

// printable trims and sanitises client bytes that are echoed in an error.
func printable(b []byte) string {
	if len(b) > 128 {
		b = b[:128]
	}
	out := make([]byte, len(b))
	for i, c := range b {
		if c < 32 || c == 127 {
			c = ' '
		}
		out[i] = c
	}
	return string(out)
}

func upper(b []byte) string {
	out := []byte(printable(b))
	for i, c := range out {
		if 'a' <= c && c <= 'z' {
			out[i] = c - 32
		}
	}
	return string(out)
}

func (ci *cmdInfo) displayName() string {
	n := []byte(ci.name)
	for i, c := range n {
		if c == '|' {
			n[i] = ' '
		}
	}
	return string(n)
}

func appendError(dst []byte, msg string) []byte {
	dst = append(dst, '-')
	dst = append(dst, msg...)
	return append(dst, '\r', '\n')
}
