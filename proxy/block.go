package proxy

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/slotway/slotway/internal/hashslot"
)

// Blocking commands (BLPOP, BLMOVE, BZPOPMIN, XREAD BLOCK, WAIT, ...) would
// stall every client sharing a backend pipe, so each runs alone on a
// connection of its own client. The client keeps that connection for its
// next blocking command to the same master (workers call BLPOP in a loop),
// and closes it when it goes away. While the command waits, a watcher reads
// the client's socket: when the client disconnects, the backend connection
// is closed, which makes Redis drop the blocked call at once instead of
// popping an element for nobody.

type blockState struct {
	conn  net.Conn // idle dedicated connection, or nil
	addr  string   // its master
	resp3 bool     // it speaks RESP3
	buf   []byte   // the command's bytes (the reader's buffer moves while blocked)
}

// dialDedicated connects to a node for this client alone, speaking the
// client's protocol, so replies can be forwarded as they come.
func (c *client) dialDedicated(addr string) (net.Conn, error) {
	conn, err := c.s.dialBackend(c.s.ctxBackground(), addr)
	if err != nil || !c.resp3 {
		return conn, err
	}
	if err := switchToRESP3(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("HELLO 3 on %s: %w", addr, err)
	}
	return conn, nil
}

func (c *client) endBlocking() {
	if c.blk.conn != nil {
		c.blk.conn.Close()
		c.blk.conn = nil
	}
}

// noteWrite remembers a master this client wrote to, for WAIT.
func (c *client) noteWrite(addr string) {
	for _, a := range c.wrote {
		if a == addr {
			return
		}
	}
	c.wrote = append(c.wrote, addr)
}

var (
	errClientGone   = errors.New("client disconnected")
	errShuttingDown = errors.New("slotway is shutting down")
)

// block runs the blocking command r and leaves its final reply in r.
func (c *client) block(r *request, args [][]byte) {
	r.state, r.blocked = stDone, true
	r.reply = r.reply[:0]
	if c.s.closing.Load() {
		r.reply = appendError(r.reply, "ERR slotway is shutting down")
		r.info.stats.errors.Add(1)
		return
	}
	c.s.blockedClients.Add(1)
	defer c.s.blockedClients.Add(-1)
	if r.info.name == "wait" {
		r.reply = c.wait(args, r.reply)
		return
	}
	c.blk.buf = append(c.blk.buf[:0], r.raw...)
	if cap(c.blk.buf) > 64<<10 {
		defer func() { c.blk.buf = nil }()
	}
	var addr string
	asking := false
	deadline := time.Now().Add(c.s.retryBudget())
	bo := backoff{base: 5 * time.Millisecond, cap: 200 * time.Millisecond, cur: 5 * time.Millisecond}
	parked := false
	defer func() {
		if parked {
			c.unpark()
		}
	}()
	for redirects := uint8(0); ; {
		if addr == "" {
			a, err := c.masterAddr(r.slot)
			if err != nil {
				r.reply = appendError(r.reply[:0], err.Error())
				r.info.stats.errors.Add(1)
				return
			}
			addr = a
		}
		reply, sent, err := c.blockingCall(addr, c.blk.buf, asking)
		switch {
		case errors.Is(err, errClientGone):
			c.quit = true
			return
		case err != nil && !sent && time.Now().Before(deadline):
			// Nothing reached the master: wait for the topology to
			// name its successor and try there.
			c.s.topo.requestRefresh()
			c.park(1, time.Now())
			parked = true
			time.Sleep(bo.next())
			addr, asking = "", false
			continue
		case errors.Is(err, errShuttingDown):
			r.reply = appendError(r.reply[:0], "ERR slotway is shutting down; the blocking command was cancelled")
		case err != nil && !sent:
			r.reply = appendError(r.reply[:0], "CLUSTERDOWN slotway: master "+addr+" unreachable")
		case err != nil:
			r.reply = appendError(r.reply[:0], "ERR slotway: connection to "+addr+" lost while blocked; the command may have run")
		default:
			r.reply = append(r.reply[:0], reply...)
		}
		if err != nil {
			c.s.m.backendFailures.Inc()
			r.info.stats.errors.Add(1)
			return
		}
		kind, slot, to := classify(r.reply)
		switch kind {
		case redirNone:
			if r.reply[0] == '-' {
				r.info.stats.errors.Add(1)
			}
			return
		case redirMoved, redirAsk:
			c.s.m.redirects[kind].Inc()
			c.s.redirCount[kind].Add(1)
			b := c.s.topo.backendForRedirect(to, nil)
			if b == nil || redirects >= c.s.settings().maxRedirects {
				r.info.stats.errors.Add(1)
				return
			}
			if kind == redirMoved {
				c.s.topo.moved(slot, b)
			}
			redirects++
			addr, asking = b.addr, kind == redirAsk
		case redirTryAgain, redirClusterDown:
			c.s.m.redirects[kind].Inc()
			c.s.redirCount[kind].Add(1)
			if !time.Now().Before(deadline) {
				r.info.stats.errors.Add(1)
				return
			}
			time.Sleep(bo.next())
			addr, asking = "", false
		}
	}
}

// blockingCall sends cmd to addr on the client's dedicated connection and
// waits for its reply while watching the client. sent says whether the
// command may have reached the master.
func (c *client) blockingCall(addr string, cmd []byte, asking bool) (reply []byte, sent bool, err error) {
	conn := c.blk.conn
	if conn != nil && (c.blk.addr != addr || c.blk.resp3 != c.resp3) {
		conn.Close()
		conn = nil
	}
	c.blk.conn = nil
	if conn == nil {
		conn, err = c.dialDedicated(addr)
		if err != nil {
			return nil, false, err
		}
	}
	out := cmd
	n := 1
	if asking {
		out = append([]byte("*1\r\n$6\r\nASKING\r\n"), cmd...)
		n = 2
	}
	var replies [][]byte
	gone := c.whileBlocked(func() { conn.Close() }, func() {
		replies, err = exchange(conn, out, n, time.Time{})
	})
	if gone != nil {
		conn.Close()
		return nil, true, gone
	}
	if err != nil {
		conn.Close()
		return nil, true, err
	}
	c.blk.conn, c.blk.addr, c.blk.resp3 = conn, addr, c.resp3
	return replies[n-1], true, nil
}

// whileBlocked runs fn while a watcher reads ahead from the client. When
// the client disconnects (or the server drains), the watcher calls cancel,
// which must make fn return. The returned error is errClientGone or
// errShuttingDown when that happened.
func (c *client) whileBlocked(cancel func(), fn func()) error {
	c.conn.SetReadDeadline(time.Time{})
	if c.s.closing.Load() {
		return errShuttingDown
	}
	var (
		mu      sync.Mutex
		stopped bool // set by us: a deadline error is ours, not the client's
		why     error
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Read ahead what the client pipelines after the blocking call,
		// but never more than a bounded amount.
		for c.rd.w-c.rd.r < 1<<20 {
			err := c.rd.fill()
			if err == nil {
				continue
			}
			mu.Lock()
			ours := stopped
			mu.Unlock()
			if ours {
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) && c.s.closing.Load() {
				why = errShuttingDown
			} else {
				why = errClientGone
			}
			cancel()
			return
		}
	}()
	fn()
	mu.Lock()
	stopped = true
	mu.Unlock()
	c.conn.SetReadDeadline(time.Now())
	<-done
	c.conn.SetReadDeadline(time.Time{})
	if c.s.closing.Load() {
		// The drain's deadline must stay in force.
		c.conn.SetReadDeadline(time.Now())
	}
	return why
}

// wait answers WAIT numreplicas timeout: the writes this client made
// through any pipe are acknowledged when a marker write issued after them
// on a connection of our own is, because each master replicates in order.
// The marker is a script that sets and deletes a key of the master's slot
// range, so nothing is visible to other clients. With writes on several
// masters, the answer is the smallest count.
func (c *client) wait(args [][]byte, dst []byte) []byte {
	num, err1 := strconv.ParseInt(string(args[1]), 10, 64)
	timeout, err2 := strconv.ParseInt(string(args[2]), 10, 64)
	if err1 != nil || err2 != nil {
		return appendError(dst, "ERR value is not an integer or out of range")
	}
	if timeout < 0 {
		return appendError(dst, "ERR timeout is negative")
	}
	t := c.s.topo.load()
	type target struct {
		addr   string
		marker []byte
	}
	var targets []target
	for _, a := range c.wrote {
		for s, b := range t.slots {
			if b != nil && b.addr == a {
				key := []byte("__slotway_wait__{" + slotTag(s) + "}")
				targets = append(targets, target{a, appendCommand(nil, [][]byte{
					[]byte("EVAL"), []byte("redis.call('set', KEYS[1], '1') redis.call('del', KEYS[1]) return 0"),
					[]byte("1"), key})})
				break
			}
		}
	}
	if len(targets) == 0 {
		// Nothing written (or its masters are gone): ask one master how
		// many replicas are in step, as WAIT on an idle connection does.
		addr, err := c.masterAddr(-1)
		if err != nil {
			return appendError(dst, err.Error())
		}
		targets = append(targets, target{addr: addr})
	}
	waitCmd := appendCommand(nil, [][]byte{[]byte("WAIT"), args[1], args[2]})
	counts := make([]int64, len(targets))
	errs := make([]error, len(targets))
	var (
		mu    sync.Mutex
		conns []net.Conn
		dead  bool
	)
	cancel := func() {
		mu.Lock()
		defer mu.Unlock()
		dead = true
		for _, cn := range conns {
			cn.Close()
		}
	}
	gone := c.whileBlocked(cancel, func() {
		var wg sync.WaitGroup
		for i, tg := range targets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				conn, err := c.s.dialBackend(c.s.ctxBackground(), tg.addr)
				if err != nil {
					errs[i] = err
					return
				}
				defer conn.Close()
				mu.Lock()
				if dead {
					mu.Unlock()
					return
				}
				conns = append(conns, conn)
				mu.Unlock()
				out := append(append([]byte(nil), tg.marker...), waitCmd...)
				n := 1
				if tg.marker != nil {
					n = 2
				}
				replies, err := exchange(conn, out, n, time.Time{})
				if err != nil {
					errs[i] = err
					return
				}
				last := replies[n-1]
				if last[0] != ':' {
					errs[i] = fmt.Errorf("%s", trimCRLF(last[1:]))
					return
				}
				v, _ := parseSigned(last[1 : len(last)-2])
				counts[i] = v
			}()
		}
		wg.Wait()
	})
	switch {
	case errors.Is(gone, errClientGone):
		c.quit = true
		return dst
	case gone != nil:
		return appendError(dst, "ERR slotway is shutting down; WAIT was cancelled")
	}
	low := num + 1<<40
	for i := range targets {
		if errs[i] != nil {
			// An unreachable master acknowledges nothing.
			c.s.log.Debug("WAIT on a master failed", "addr", targets[i].addr, "err", errs[i])
			counts[i] = 0
		}
		low = min(low, counts[i])
	}
	c.wrote = c.wrote[:0]
	return append(appendInt(append(dst, ':'), low), '\r', '\n')
}

func trimCRLF(b []byte) []byte {
	if len(b) >= 2 && b[len(b)-2] == '\r' {
		return b[:len(b)-2]
	}
	return b
}

var (
	slotTagsOnce sync.Once
	slotTags     []string
)

// slotTag returns a short string that hashes to slot, for keys the proxy
// must place on a given master.
func slotTag(slot int) string {
	slotTagsOnce.Do(func() {
		slotTags = make([]string, hashslot.Count)
		left := hashslot.Count
		for i := 0; left > 0; i++ {
			s := strconv.Itoa(i)
			if k := hashslot.Of([]byte(s)); slotTags[k] == "" {
				slotTags[k] = s
				left--
			}
		}
	})
	return slotTags[slot]
}
