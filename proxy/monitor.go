package proxy

// MONITOR in the proxy: a monitoring client gets every command of every
// client of this instance, in Redis's format, as the proxy parses it. The
// nodes' own MONITOR would show one node's share, mixed with Slotway's
// pipelines and health checks.
//
// With no monitor attached a command pays one atomic load. A monitor that
// does not keep up is cut off once proxy.limits.pubsub_output's hard limit
// of lines waits for it, so a slow reader cannot grow the proxy.

import (
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slotway/slotway/internal/kick"
)

// monitors are the attached monitoring clients.
type monitors struct {
	n   atomic.Int32 // len(set), read on every command
	mu  sync.RWMutex
	set map[*monitorSink]struct{}
}

// monitorSink is one monitoring client's queue of lines.
type monitorSink struct {
	mu   sync.Mutex
	buf  []byte
	hard int
	cut  bool          // over the limit: the client is disconnected
	wake chan struct{} // cap 1: lines or a cut-off wait
	// hangUp closes the client's connection: a writer blocked on a client
	// that reads nothing only learns of the cut-off that way.
	hangUp func()
}

func (s *Server) attachMonitor(m *monitorSink) {
	s.mon.mu.Lock()
	if s.mon.set == nil {
		s.mon.set = map[*monitorSink]struct{}{}
	}
	s.mon.set[m] = struct{}{}
	s.mon.n.Store(int32(len(s.mon.set)))
	s.mon.mu.Unlock()
}

func (s *Server) detachMonitor(m *monitorSink) {
	s.mon.mu.Lock()
	delete(s.mon.set, m)
	s.mon.n.Store(int32(len(s.mon.set)))
	s.mon.mu.Unlock()
}

// monitored gives a command of c to the monitors, if any: one atomic
// load when none is attached (small enough to be inlined).
func (c *client) monitored(args [][]byte) {
	if c.s.mon.n.Load() > 0 {
		c.s.feedMonitors(c, args)
	}
}

// feedMonitors gives a command of c to every monitor.
func (s *Server) feedMonitors(c *client, args [][]byte) {
	line := appendMonitorLine(nil, time.Now(), c.raddr, args)
	s.mon.mu.RLock()
	for m := range s.mon.set {
		m.push(line)
	}
	s.mon.mu.RUnlock()
}

func (m *monitorSink) push(line []byte) {
	m.mu.Lock()
	cutNow := false
	if !m.cut {
		if len(m.buf)+len(line) > m.hard {
			m.cut, m.buf, cutNow = true, nil, true
		} else {
			m.buf = append(m.buf, line...)
		}
	}
	m.mu.Unlock()
	if cutNow {
		m.hangUp()
	}
	kick.Send(m.wake)
}

// take returns what waits (nil when nothing) and whether the monitor was
// cut off.
func (m *monitorSink) take(spare []byte) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.buf
	m.buf = spare[:0]
	return out, m.cut
}

// appendMonitorLine formats a command as Redis's MONITOR does:
// +<unix seconds>.<microseconds> [0 <client address>] "arg" "arg"...
// The secrets of AUTH and HELLO ... AUTH are redacted, as Redis 7 does.
func appendMonitorLine(dst []byte, now time.Time, addr net.Addr, args [][]byte) []byte {
	dst = append(dst, '+')
	dst = strconv.AppendInt(dst, now.Unix(), 10)
	dst = append(dst, '.')
	us := now.Nanosecond() / 1000
	for d := 100000; d > 1 && us < d; d /= 10 {
		dst = append(dst, '0')
	}
	dst = strconv.AppendInt(dst, int64(us), 10)
	dst = append(dst, " [0 "...)
	if addr != nil {
		dst = append(dst, addr.String()...)
	}
	dst = append(dst, ']')
	redact := 0 // arguments from here on are secrets
	switch {
	case equalFold(args[0], "AUTH"):
		redact = 1
	case equalFold(args[0], "HELLO"):
		for i := 1; i < len(args); i++ {
			if equalFold(args[i], "AUTH") {
				redact = i + 1
				break
			}
		}
	}
	for i, a := range args {
		dst = append(dst, ' ')
		if redact > 0 && i >= redact && (!equalFold(args[0], "HELLO") || i < redact+2) {
			dst = append(dst, `"(redacted)"`...)
			continue
		}
		dst = appendRepr(dst, a)
	}
	return append(dst, '\r', '\n')
}

// appendRepr quotes b as Redis's sdscatrepr does.
func appendRepr(dst, b []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for _, ch := range b {
		switch ch {
		case '\\', '"':
			dst = append(dst, '\\', ch)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\a':
			dst = append(dst, '\\', 'a')
		case '\b':
			dst = append(dst, '\\', 'b')
		default:
			if ch >= ' ' && ch <= '~' {
				dst = append(dst, ch)
			} else {
				dst = append(dst, '\\', 'x', hex[ch>>4], hex[ch&15])
			}
		}
	}
	return append(dst, '"')
}

// isMonitor reports the MONITOR command.
func isMonitor(args [][]byte) bool {
	return len(args) == 1 && equalFold(args[0], "MONITOR")
}

// serveMonitor turns a goroutine-served client into a monitor, after
// answering the n requests before MONITOR. It returns when the client
// sends RESET (true: serve it normally again) or is gone (false).
func (c *client) serveMonitor(n *int, start time.Time) bool {
	if *n > 0 {
		c.finishBatch(*n, start)
		c.commands.Add(uint64(*n))
		*n = 0
	}
	if msg := c.adminDenied("monitor"); msg != "" {
		c.out = appendError(c.out, msg)
		return c.writeOut()
	}
	c.commands.Add(1)
	c.out = append(c.out, "+OK\r\n"...)
	if !c.writeOut() {
		return false
	}
	hard, _, _ := c.s.pubsubLimits()
	if hard <= 0 {
		hard = 32 << 20
	}
	m := &monitorSink{hard: hard, wake: make(chan struct{}, 1), hangUp: func() { c.conn.Close() }}
	c.monitoring.Store(true)
	c.s.attachMonitor(m)
	defer func() {
		c.s.detachMonitor(m)
		c.monitoring.Store(false)
	}()
	// The client may only QUIT or RESET; a reader goroutine owns the
	// window meanwhile and reports what it reads.
	cmds := make(chan string, 16)
	go func() {
		defer close(cmds)
		for {
			args, _, err := c.rd.next()
			if errors.Is(err, errIncomplete) {
				if c.rd.fill() != nil {
					return
				}
				continue
			}
			if err != nil || len(args) == 0 {
				if err != nil {
					return
				}
				continue
			}
			switch {
			case equalFold(args[0], "QUIT"):
				cmds <- "quit"
				return
			case equalFold(args[0], "RESET"):
				cmds <- "reset"
				return
			default:
				cmds <- "other"
			}
		}
	}()
	var spare []byte
	for {
		select {
		case cmd, ok := <-cmds:
			switch {
			case !ok:
				return false
			case cmd == "quit":
				c.out = append(c.out, "+OK\r\n"...)
				c.writeOut()
				return false
			case cmd == "reset":
				c.s.detachMonitor(m)
				c.out = c.flushMonitor(m, c.out)
				c.out = cmdReset(c, nil, c.out)
				return c.writeOut()
			default:
				c.out = appendError(c.out, "ERR only QUIT and RESET are allowed in MONITOR mode")
				if !c.writeOut() {
					return false
				}
			}
		case <-m.wake:
			lines, cut := m.take(spare)
			if !cut && len(lines) > 0 {
				_, err := c.conn.Write(lines)
				_, cut = m.take(nil)
				if err != nil && !cut {
					return false
				}
			}
			if cut {
				c.s.log.Warn("MONITOR client cut off: it read too slowly (proxy.limits.pubsub_output hard limit)",
					"client_id", c.id, "addr", c.raddr.String(), "limit", hard)
				return false
			}
			spare = lines
		}
	}
}

// flushMonitor appends the lines still waiting in m (before a RESET's
// reply).
func (c *client) flushMonitor(m *monitorSink, dst []byte) []byte {
	lines, _ := m.take(nil)
	return append(dst, lines...)
}
