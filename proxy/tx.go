package proxy

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Transactions: MULTI queues commands in the proxy (answering +QUEUED after
// the same checks the data path makes); EXEC sends MULTI, the queue and
// EXEC on a dedicated connection to the master of the transaction's slot.
// WATCH opens that connection at once, so the watch and the EXEC share it.
// Every key of a transaction must hash to one slot, as in Redis Cluster.

type txState struct {
	active bool
	dirty  bool     // a command failed to queue: EXEC answers EXECABORT
	slot   int      // -1 until a keyed command (or WATCH) fixes it
	queued [][]byte // each command's RESP bytes
	watch  net.Conn // dedicated connection after WATCH
	wslot  int
}

// isTxCommand: commands handled by the transaction state machine, and
// everything while a MULTI is open.
func (c *client) isTxCommand(args [][]byte) bool {
	if c.tx.active {
		return true
	}
	// Cheap first: only names of 4, 5 or 7 bytes can match (this runs for
	// every command).
	switch len(args[0]) {
	case 4:
		return equalFold(args[0], "EXEC")
	case 5:
		return equalFold(args[0], "MULTI") || equalFold(args[0], "WATCH")
	case 7:
		return equalFold(args[0], "DISCARD") || equalFold(args[0], "UNWATCH")
	}
	return false
}

func (c *client) handleTx(args [][]byte, raw []byte, dst []byte) []byte {
	tx := &c.tx
	switch {
	case equalFold(args[0], "MULTI"):
		if tx.active {
			return appendError(dst, "ERR MULTI calls can not be nested")
		}
		tx.active, tx.dirty, tx.queued = true, false, tx.queued[:0]
		c.inMulti.Store(true)
		c.multiCount.Store(0)
		tx.slot = -1
		if tx.watch != nil {
			tx.slot = tx.wslot
		}
		return append(dst, "+OK\r\n"...)
	case equalFold(args[0], "DISCARD"):
		if !tx.active {
			return appendError(dst, "ERR DISCARD without MULTI")
		}
		c.endTx()
		return append(dst, "+OK\r\n"...)
	case equalFold(args[0], "EXEC"):
		if !tx.active {
			return appendError(dst, "ERR EXEC without MULTI")
		}
		defer c.endTx()
		if tx.dirty {
			return appendError(dst, "EXECABORT Transaction discarded because of previous errors.")
		}
		return c.execTx(dst)
	case equalFold(args[0], "WATCH"):
		if tx.active {
			return appendError(dst, "ERR WATCH inside MULTI is not allowed")
		}
		return c.watch(args, raw, dst)
	case equalFold(args[0], "UNWATCH"):
		if tx.active {
			break // queued like any command
		}
		if tx.watch != nil {
			tx.watch.Close()
			tx.watch = nil
		}
		return append(dst, "+OK\r\n"...)
	}
	// Inside MULTI: RESET and QUIT act at once, as in Redis; the rest is
	// checked and queued.
	switch {
	case equalFold(args[0], "RESET"):
		return cmdReset(c, args, dst)
	case equalFold(args[0], "QUIT"):
		return cmdQuit(c, args, dst)
	}
	t := c.s.table.Load()
	if t == nil {
		tx.dirty = true
		return appendError(dst, "CLUSTERDOWN slotway has not reached the cluster yet")
	}
	ci, unknownSub := t.lookup(args)
	if msg := c.refusal(ci, unknownSub, args); msg != "" {
		tx.dirty = true
		return appendError(dst, msg)
	}
	switch {
	case ci.flags&flagNoMulti != 0:
		// Redis's own refusal (SAVE, SUBSCRIBE, ...): the same through Slotway.
		tx.dirty = true
		return appendError(dst, "ERR Command not allowed inside a transaction")
	case ci.name == "wait":
		tx.dirty = true
		return appendError(dst, "ERR WAIT cannot be used inside a transaction through slotway")
	case ci.kind != kindForward && ci.kind != kindAnyMaster && ci.kind != kindBlocking && ci.name != "ping" && ci.name != "echo":
		tx.dirty = true
		return appendError(dst, "ERR command '"+ci.displayName()+"' cannot run inside a transaction through slotway")
	}
	slot, cross := ci.slotOf(args)
	if k := ci.namesOwnKey(args, slot, cross); k != nil {
		tx.dirty = true
		return appendError(dst, reservedKeyMsg(k))
	}
	if cross || (slot >= 0 && tx.slot >= 0 && slot != tx.slot) {
		tx.dirty = true
		return appendError(dst, "CROSSSLOT Keys in request don't hash to the same slot")
	}
	if slot >= 0 {
		tx.slot = slot
	}
	tx.queued = append(tx.queued, append([]byte(nil), raw...))
	c.multiMem.Add(int64(len(raw)))
	c.multiCount.Add(1)
	return append(dst, "+QUEUED\r\n"...)
}

func (c *client) endTx() {
	c.tx.active, c.tx.dirty, c.tx.queued = false, false, c.tx.queued[:0]
	c.inMulti.Store(false)
	c.multiMem.Store(0)
	if c.tx.watch != nil {
		c.tx.watch.Close()
		c.tx.watch = nil
	}
}

// masterAddr is the master serving slot (any master for -1).
func (c *client) masterAddr(slot int) (string, error) {
	t := c.s.topo.load()
	var b *backend
	if slot >= 0 {
		b = t.slots[slot]
	} else if len(t.masters) > 0 {
		b = t.masters[c.id%uint64(len(t.masters))]
	}
	if b == nil {
		return "", errors.New("CLUSTERDOWN Hash slot not served")
	}
	return b.addr, nil
}

func (c *client) watch(args [][]byte, raw []byte, dst []byte) []byte {
	t := c.s.table.Load()
	if t == nil {
		return appendError(dst, "CLUSTERDOWN slotway has not reached the cluster yet")
	}
	ci, _ := t.lookup(args)
	if ci == nil || !ci.arityOK(len(args)) {
		return appendError(dst, "ERR wrong number of arguments for 'watch' command")
	}
	slot, cross := ci.slotOf(args)
	if k := ci.namesOwnKey(args, slot, cross); k != nil {
		return appendError(dst, reservedKeyMsg(k))
	}
	if cross || (c.tx.watch != nil && slot != c.tx.wslot) {
		return appendError(dst, "CROSSSLOT Keys in request don't hash to the same slot")
	}
	if c.tx.watch == nil {
		addr, err := c.masterAddr(slot)
		if err != nil {
			return appendError(dst, err.Error())
		}
		conn, err := c.dialDedicated(addr)
		if err != nil {
			return appendError(dst, "CLUSTERDOWN slotway: master "+addr+" unreachable")
		}
		c.tx.watch, c.tx.wslot = conn, slot
	}
	replies, err := roundTrip(c.tx.watch, raw, 1)
	if err != nil {
		c.tx.watch.Close()
		c.tx.watch = nil
		return appendError(dst, "ERR slotway: WATCH failed: "+err.Error())
	}
	return append(dst, replies[0]...)
}

func (c *client) execTx(dst []byte) []byte {
	conn := c.tx.watch
	c.tx.watch = nil // endTx must not close it before we are done
	if conn == nil {
		addr, err := c.masterAddr(c.tx.slot)
		if err != nil {
			return appendError(dst, err.Error())
		}
		conn, err = c.dialDedicated(addr)
		if err != nil {
			return appendError(dst, "CLUSTERDOWN slotway: master "+addr+" unreachable")
		}
	}
	defer conn.Close()
	if addr, err := c.masterAddr(c.tx.slot); err == nil {
		c.noteWrite(addr)
	}
	var out []byte
	out = append(out, "*1\r\n$5\r\nMULTI\r\n"...)
	for _, q := range c.tx.queued {
		out = append(out, q...)
	}
	out = append(out, "*1\r\n$4\r\nEXEC\r\n"...)
	replies, err := roundTrip(conn, out, len(c.tx.queued)+2)
	if err != nil {
		return appendError(dst, "ERR slotway: transaction connection failed, the transaction may have run: "+err.Error())
	}
	return append(dst, replies[len(replies)-1]...)
}

// roundTrip writes out and reads n replies from a dedicated connection.
func roundTrip(conn net.Conn, out []byte, n int) ([][]byte, error) {
	return exchange(conn, out, n, time.Now().Add(30*time.Second))
}

// exchange writes out and reads n replies, with an optional deadline.
func exchange(conn net.Conn, out []byte, n int, deadline time.Time) ([][]byte, error) {
	conn.SetDeadline(deadline)
	defer conn.SetDeadline(time.Time{})
	if _, err := conn.Write(out); err != nil {
		return nil, err
	}
	buf := make([]byte, 0, 4096)
	var replies [][]byte
	pos := 0
	for len(replies) < n {
		l, _, err := scanReply(buf[pos:])
		if err != nil {
			return nil, err
		}
		if l > 0 {
			replies = append(replies, buf[pos:pos+l])
			pos += l
			continue
		}
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), 2*cap(buf))
			copy(nb, buf)
			buf = nb
		}
		m, err := conn.Read(buf[len(buf):cap(buf)])
		if m == 0 && err != nil {
			return nil, fmt.Errorf("read: %w", err)
		}
		buf = buf[:len(buf)+m]
	}
	return replies, nil
}
