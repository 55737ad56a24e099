package proxy

// A batch's rounds: send what is to be sent, wait for the replies, follow
// redirects, park what the retry budget allows, send again. A client's
// goroutine runs them with rounds; a loop runs them step by step
// (loop.go) and hands what must wait to a goroutine at a roundPhase.

import (
	"errors"
	"slices"
	"time"
)

// execState is one batch's way through its rounds: which requests, and
// the retry budget and backoff once something is parked.
type execState struct {
	sets     [2][]request // the batch's requests and their split parts
	deadline time.Time    // zero until a request is parked
	bo       backoff
	parked   int       // requests the last judge parked
	since    time.Time // when it parked them
}

func (ex *execState) reset(top, subs []request) {
	*ex = execState{sets: [2][]request{top, subs}, bo: backoff{base: 5 * time.Millisecond, cap: 200 * time.Millisecond, cur: 5 * time.Millisecond}}
}

// roundPhase is where rounds resume: a loop hands a batch over to a
// goroutine at the phase it cannot run itself (loop.go).
type roundPhase uint8

const (
	phSend  roundPhase = iota // send every stSend request
	phJudge                   // replies are in: look at them
	phSleep                   // parked: back off, then send again
)

// execute sends every stSend request, waits for the round, follows
// redirects and retries, and leaves a final reply in each request.
func (c *client) execute(top, subs []request) {
	c.ex.reset(top, subs)
	c.rounds(&c.ex, phSend)
}

// rounds runs ex from phase from until every request has its final reply,
// waiting on this goroutine for replies and backoffs.
func (c *client) rounds(ex *execState, from roundPhase) {
	for phase := from; ; {
		switch phase {
		case phSend:
			if c.adminN > 0 {
				c.runAdmin(ex)
			}
			if !c.sendRound(ex) {
				c.endRounds(ex)
				return
			}
			for i, p := range c.dirty {
				p.flush(i == 0)
				c.dirty[i] = nil
			}
			c.dirty = c.dirty[:0]
			if c.batch.pending.Add(-1) != 0 {
				<-c.batch.done
			}
			phase = phJudge
		case phJudge:
			resend, wait := c.judge(ex)
			switch {
			case !resend:
				c.endRounds(ex)
				return
			case wait:
				phase = phSleep
			default:
				phase = phSend
			}
		case phSleep:
			c.park(ex.parked, ex.since)
			time.Sleep(min(ex.bo.next(), max(time.Until(ex.deadline), 0)))
			phase = phSend
		}
	}
}

// runAdmin answers the batch's stAdmin requests, which talk to the nodes
// and so wait on this goroutine, never on a loop.
func (c *client) runAdmin(ex *execState) {
	c.adminN = 0
	for i := range ex.sets[0] {
		if r := &ex.sets[0][i]; r.state == stAdmin {
			r.reply = r.info.local.run(c, r.admin, r.reply[:0])
			r.state, r.admin = stDone, nil
		}
	}
}

// sendRound sends every stSend request of ex and reports whether it sent
// any. It leaves the batch's pending count one above the requests in
// flight: the caller drops that guard once it is ready to be woken.
func (c *client) sendRound(ex *execState) bool {
	c.batch.pending.Store(1)
	sent := 0
	for _, reqs := range ex.sets {
		for i := range reqs {
			if reqs[i].state == stSend {
				c.send(&reqs[i])
				sent++
			}
		}
	}
	return sent > 0
}

func (c *client) endRounds(ex *execState) {
	if !ex.deadline.IsZero() {
		c.unpark()
	}
}

// judge looks at the replies of a round: it follows redirects, parks what
// the retry budget allows (wait), and reports whether anything is to be
// sent again.
func (c *client) judge(ex *execState) (resend, wait bool) {
	parked := 0
	now := time.Time{}
	for _, reqs := range ex.sets {
		for i := range reqs {
			r := &reqs[i]
			if r.state != stSent {
				continue
			}
			r.state = stDone
			if r.err != nil {
				// Never sent, or a read whose connection broke: routed
				// again and parked like a TRYAGAIN.
				if errors.Is(r.err, errBackendDown) || (errors.Is(r.err, errBackendLost) && r.info.resendable()) {
					c.s.topo.requestRefresh()
					if c.retryLater(r, ex, &now) {
						resend, wait = true, true
						parked++
						continue
					}
				}
				c.s.m.backendFailures.Inc()
				r.reply = appendError(r.reply[:0], backendErrorMsg(r))
				r.info.stats.errors.Add(1)
				continue
			}
			if len(r.reply) == 0 || r.reply[0] != '-' {
				continue
			}
			kind, slot, addr := classify(r.reply)
			switch kind {
			case redirNone:
				if r.subTo == r.subFrom && (c.reloadScript(r) || c.repairFunctions(r)) {
					resend = true
					continue
				}
				r.info.stats.errors.Add(1)
				continue
			case redirMoved, redirAsk:
				c.s.m.redirects[kind].Inc()
				c.s.redirCount[kind].Add(1)
				if r.redirects >= c.s.settings().maxRedirects {
					r.info.stats.errors.Add(1)
					continue
				}
				target := c.s.topo.backendForRedirect(addr, r.target)
				if target == nil {
					continue
				}
				if kind == redirMoved {
					c.s.topo.moved(slot, target)
				}
				r.redirects++
				r.target, r.asking, r.state = target, kind == redirAsk, stSend
				resend = true
			case redirTryAgain, redirClusterDown:
				c.s.m.redirects[kind].Inc()
				c.s.redirCount[kind].Add(1)
				if kind == redirClusterDown {
					c.s.topo.requestRefresh()
				}
				if c.retryLater(r, ex, &now) {
					resend, wait = true, true
					parked++
				} else {
					r.info.stats.errors.Add(1)
				}
			}
		}
	}
	if wait {
		ex.parked, ex.since = parked, now
	}
	return resend, wait
}

// retryLater parks r to be routed and sent again, within the retry
// budget that starts with the batch's first parked request (now is read
// once per judge); false once the budget is spent.
func (c *client) retryLater(r *request, ex *execState, now *time.Time) bool {
	if now.IsZero() {
		*now = time.Now()
		if ex.deadline.IsZero() {
			ex.deadline = now.Add(c.s.retryBudget())
		}
	}
	if !now.Before(ex.deadline) {
		return false
	}
	r.state = stSend
	r.unroute()
	return true
}

// send routes req to its backend pipe. A request that cannot be routed gets
// its final reply at once.
func (c *client) send(r *request) {
	b := r.target
	if b == nil {
		t := c.s.topo.load()
		if r.slot >= 0 {
			b = t.slots[r.slot]
			if b != nil && t.replicas != nil && r.info != nil && r.info.flags&flagReadonly != 0 {
				if rb := c.s.pickReplica(t.replicas[b], c.id); rb != nil {
					b = rb
				} else if c.s.settings().readFrom == "replica" {
					// Never the master: that is what prefer-replica is for.
					r.reply = appendError(r.reply[:0], "CLUSTERDOWN slotway: no healthy replica of master "+b.addr+" (proxy.read_from replica)")
					r.state = stDone
					r.info.stats.errors.Add(1)
					return
				}
			}
		} else if len(t.masters) > 0 {
			b = t.masters[c.id%uint64(len(t.masters))]
		}
		if b == nil {
			r.reply = appendError(r.reply[:0], "CLUSTERDOWN Hash slot not served")
			r.state = stDone
			r.info.stats.errors.Add(1)
			return
		}
		r.target = b
	}
	r.err = nil
	r.reply = r.reply[:0]
	r.state = stSent
	if b.retired.Load() {
		r.err = errBackendDown
		return
	}
	if r.info.flags&flagWrite != 0 {
		c.noteWrite(b.addr)
	}
	pipes := b.pipesFor(c.resp3)
	var p *pipe
	if l := c.batch.lp; l != nil {
		p = l.pipeOf(pipes, c.id)
	} else {
		p = pipes[c.id%uint64(len(pipes))]
	}
	c.batch.pending.Add(1)
	if err := p.enqueue(r, r.asking); err != nil {
		c.batch.pending.Add(-1)
		r.err = err
		return
	}
	if l := c.batch.lp; l != nil {
		l.markDirty(p) // the loop flushes each pipe once per pass
	} else if !slices.Contains(c.dirty, p) {
		c.dirty = append(c.dirty, p)
	}
}
