package proxy

import (
	"time"

	"github.com/slotway/slotway/internal/kick"
)

// The subscriber's output: confirmations wait in order for the backend to
// be in the promised state, then leave with messages and other replies
// through one bounded queue drained by the writer goroutine.

// pubsubLimits: hard, soft and the soft period of the output queue.
func (s *Server) pubsubLimits() (hard, soft int, softFor time.Duration) {
	l := s.settings().pubsubOutput
	return int(l.Hard), int(l.Soft), l.SoftFor
}

// enqueue queues bytes for the client, behind any confirmation still
// waiting for the backend.
func (ps *pubsub) enqueue(b []byte) {
	ps.mu.Lock()
	ps.emitLocked(b)
	ps.mu.Unlock()
}

// emitLocked is enqueue with ps.mu held.
func (ps *pubsub) emitLocked(b []byte) {
	if len(ps.pend) == 0 {
		ps.pushOut(b)
		return
	}
	if len(b) == 0 {
		return
	}
	ps.pend = append(ps.pend, psPending{plain: true, b: append([]byte(nil), b...)})
	ps.pendBytes += len(b)
	ps.pushOut(nil) // the limits count what waits too
}

// expect queues a confirmation that leaves once the backend agrees.
// Called with ps.mu held; flushPending releases what is settled.
func (ps *pubsub) expect(k psKey, sub bool, frame []byte, now time.Time) {
	ps.pend = append(ps.pend, psPending{key: k, sub: sub, b: frame, since: now})
	ps.pendBytes += len(frame)
	ps.pendKeys[k]++
}

// flushPending moves to the output queue the pending entries up to the
// first confirmation the backend has not yet given. Called with ps.mu held.
func (ps *pubsub) flushPending() {
	n := 0
	for n < len(ps.pend) {
		p := &ps.pend[n]
		if !p.plain && !ps.settled(p.key, p.sub) && !ps.superseded(n) {
			break
		}
		n++
	}
	if n == 0 {
		return
	}
	var out []byte
	for i := range ps.pend[:n] {
		p := &ps.pend[i]
		out = append(out, p.b...)
		ps.pendBytes -= len(p.b)
		if !p.plain {
			if ps.pendKeys[p.key]--; ps.pendKeys[p.key] == 0 {
				delete(ps.pendKeys, p.key)
			}
		}
	}
	clear(ps.pend[:n])
	if n == len(ps.pend) {
		ps.pend = ps.pend[:0]
		kick.Send(ps.settledCh)
	} else {
		ps.pend = ps.pend[n:] // a queue: append reallocates what is left
	}
	ps.pushOut(out)
}

// dropPending forgets what is pending (the client is being closed).
// Called with ps.mu held.
func (ps *pubsub) dropPending() {
	ps.pend, ps.pendBytes = nil, 0
	clear(ps.pendKeys)
	kick.Send(ps.settledCh)
}

// settled reports whether the backend's state of k is the one a
// (un)subscribe confirmation promises: subscribed and confirmed, or not
// subscribed with nothing in flight. Called with ps.mu held.
func (ps *pubsub) settled(k psKey, sub bool) bool {
	if k.kind == psShard {
		for _, pc := range ps.conns {
			for _, op := range pc.fifo {
				if op.ch == k.name {
					return false
				}
			}
		}
		return (ps.gotShard[k.name] != nil) == sub
	}
	if g := ps.global; g != nil && g.wait[k] > 0 {
		return false
	}
	got := ps.gotCh
	if k.kind == psPattern {
		got = ps.gotPat
	}
	return got[k.name] == sub // empty without a connection
}

// superseded: a later pending entry reverses pend[i] (SUBSCRIBE a then
// UNSUBSCRIBE a in one pipeline). The backend goes straight to the last
// state, and the client, which sent both, cannot tell: pend[i] leaves as
// soon as it is at the head.
func (ps *pubsub) superseded(i int) bool {
	p := &ps.pend[i]
	if ps.pendKeys[p.key] < 2 {
		return false
	}
	for _, q := range ps.pend[i+1:] {
		if !q.plain && q.key == p.key && q.sub != p.sub {
			return true
		}
	}
	return false
}

// settle waits until no confirmation is pending, at most wait.
func (ps *pubsub) settle(wait time.Duration) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		ps.mu.Lock()
		n := len(ps.pend)
		ps.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-ps.settledCh:
		case <-timer.C:
			return
		}
	}
}

// expire ends a client whose oldest pending confirmation the cluster has
// not given within retry_timeout (its master unreachable and no other
// taking over): it gets an error in place of the confirmation and its
// connection closes, so it reconnects and subscribes again.
func (ps *pubsub) expire(now time.Time) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	timeout := ps.c.s.retryBudget()
	if len(ps.pend) == 0 || now.Sub(ps.pend[0].since) < timeout {
		return
	}
	k := ps.pend[0].key
	ps.log.Warn("pubsub: the cluster did not confirm a subscription in time; closing the client",
		"client_id", ps.c.id, "name", printable([]byte(k.name)), "timeout", timeout)
	ps.dropPending()
	ps.pushOut([]byte("-CLUSTERDOWN slotway: the cluster did not confirm the subscription change within " + timeout.String() + "\r\n"))
	ps.outMu.Lock()
	ps.closing = true
	ps.outMu.Unlock()
	kick.Send(ps.wake)
}

// pushOut adds bytes to the output queue, enforcing the output limits on
// it and what is pending. Called with ps.mu held.
func (ps *pubsub) pushOut(b []byte) {
	hard, soft, softFor := ps.c.s.pubsubLimits()
	ps.outMu.Lock()
	if ps.dead {
		ps.outMu.Unlock()
		return
	}
	ps.out = append(ps.out, b...)
	size := len(ps.out) + ps.writing + ps.pendBytes
	over := false
	switch {
	case hard > 0 && size > hard:
		over = true
	case soft > 0 && size > soft:
		if ps.softSince.IsZero() {
			ps.softSince = time.Now()
		} else if time.Since(ps.softSince) > softFor {
			over = true
		}
	default:
		ps.softSince = time.Time{}
	}
	if over {
		ps.dead = true
		ps.out = nil
	}
	ps.outMu.Unlock()
	if over {
		ps.dropPending()
		ps.c.s.m.outputLimitKills.Inc()
		ps.log.Warn("client disconnected: pubsub output buffer over its limit (it does not read fast enough)",
			"client_id", ps.c.id, "addr", ps.c.raddr.String(), "queued_bytes", size)
		ps.c.conn.Close()
		return
	}
	if len(b) == 0 {
		return
	}
	kick.Send(ps.wake)
}

// writer drains the output queue to the client until the session ends and
// everything queued is written.
func (ps *pubsub) writer() {
	defer close(ps.flushed)
	var spare []byte
	for {
		select {
		case <-ps.wake:
		case <-ps.done:
		}
		ps.outMu.Lock()
		buf := ps.out
		ps.out = spare[:0]
		ps.writing = len(buf)
		dead := ps.dead
		ps.outMu.Unlock()
		if len(buf) > 0 && !dead {
			if _, err := ps.c.conn.Write(buf); err != nil {
				ps.outMu.Lock()
				ps.dead = true
				ps.outMu.Unlock()
				ps.c.conn.Close()
			}
		}
		ps.outMu.Lock()
		ps.writing = 0
		empty := len(ps.out) == 0
		closing := ps.closing && empty
		ps.outMu.Unlock()
		if closing {
			ps.c.conn.Close() // after the error expire queued
		}
		if cap(buf) <= 1<<20 {
			spare = buf[:0]
		} else {
			spare = nil
		}
		select {
		case <-ps.done:
			if empty || dead {
				return
			}
		default:
		}
	}
}
