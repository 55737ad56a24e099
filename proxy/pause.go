package proxy

// CLIENT PAUSE in the proxy: Slotway stops serving its own clients'
// commands (only those that write, in WRITE mode) until the pause times
// out or is lifted, as Redis does; the nodes are never paused. It is the
// maintenance switch of a connection pooler: the admin API
// (POST /api/v1/proxy/pause and /unpause) drives the same state.
//
// A command that meets a pause waits with everything the client pipelined
// after it; what came before it is answered first. On a loop the client is
// parked (lsPaused, no reads) and served again when the pause ends; a
// goroutine-served client waits for the pause's end channel.

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Pause modes, as the hot path reads them (pauseState.mode).
const (
	pauseNone  uint32 = iota
	pauseWrite        // commands that write or may replicate wait
	pauseAll          // every command waits
)

// pauseState is the proxy's pause. mode is read on every command without
// the lock; the rest is guarded by mu.
type pauseState struct {
	held  atomic.Int64 // clients whose next command waits
	mu    sync.Mutex
	end   time.Time
	done  chan struct{} // closed when the current pause ends
	timer *time.Timer
}

// PauseStatus describes the pause in effect. The admin API sends it as
// stats.PauseStatus (cmd converts; the fields are the same).
type PauseStatus struct {
	Paused bool
	Mode   string // "write" or "all"
	Until  time.Time
	// HeldClients are the clients whose next command waits now.
	HeldClients int64
}

// Pause pauses this instance's clients for d: all of their commands, or
// with writeOnly only those that write. A pause already in effect is
// extended, never shortened, and ALL wins over WRITE, as in Redis.
func (s *Server) Pause(d time.Duration, writeOnly bool) PauseStatus {
	mode := pauseAll
	if writeOnly {
		mode = pauseWrite
	}
	p := &s.pause
	p.mu.Lock()
	end := time.Now().Add(d)
	if s.pauseMode.Load() == pauseNone {
		p.done = make(chan struct{})
		p.end = end
	} else if end.After(p.end) {
		p.end = end
	}
	if mode > s.pauseMode.Load() {
		s.pauseMode.Store(mode)
	}
	if p.timer != nil {
		p.timer.Stop()
	}
	done := p.done
	p.timer = time.AfterFunc(time.Until(p.end), func() { s.endPause(done) })
	p.mu.Unlock()
	s.log.Info("clients paused", "mode", modeName(s.pauseMode.Load()), "until", end)
	return s.PauseStatus()
}

// Unpause ends the pause at once (CLIENT UNPAUSE, the admin API, a drain).
func (s *Server) Unpause() PauseStatus {
	s.pause.mu.Lock()
	done := s.pause.done
	s.pause.mu.Unlock()
	if done != nil {
		s.endPause(done)
	}
	return s.PauseStatus()
}

// endPause ends the pause whose end channel is done (a timer of an older
// pause finds it gone and does nothing) and resumes the parked clients.
func (s *Server) endPause(done chan struct{}) {
	p := &s.pause
	p.mu.Lock()
	if p.done != done || s.pauseMode.Load() == pauseNone {
		p.mu.Unlock()
		return
	}
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	s.pauseMode.Store(pauseNone)
	p.done, p.end = nil, time.Time{}
	close(done)
	p.mu.Unlock()
	for _, l := range s.loops {
		l.post(nil, evUnpause)
	}
	s.log.Info("clients unpaused")
}

// PauseStatus reports the pause in effect.
func (s *Server) PauseStatus() PauseStatus {
	s.pause.mu.Lock()
	defer s.pause.mu.Unlock()
	m := s.pauseMode.Load()
	if m == pauseNone {
		return PauseStatus{HeldClients: s.pause.held.Load()}
	}
	return PauseStatus{Paused: true, Mode: modeName(m), Until: s.pause.end, HeldClients: s.pause.held.Load()}
}

func modeName(m uint32) string {
	if m == pauseWrite {
		return "write"
	}
	return "all"
}

// pausedFor reports whether a command must wait for the pause; ci nil is
// an unknown command, refused without touching data, so it never waits in
// WRITE mode. A transaction's EXEC waits in WRITE mode whatever it holds
// (a conservative reading of Redis, which pauses an EXEC with writes).
func (s *Server) pausedFor(ci *cmdInfo) bool {
	switch s.pauseMode.Load() {
	case pauseNone:
		return false
	case pauseAll:
		return true
	}
	return ci != nil && (ci.flags&(flagWrite|flagMayReplicate) != 0 || ci.name == "exec")
}

// pauseDone returns the channel closed when the current pause ends, or
// nil when there is none.
func (s *Server) pauseDone() chan struct{} {
	s.pause.mu.Lock()
	defer s.pause.mu.Unlock()
	return s.pause.done
}

// waitPause holds a goroutine-served client's command while the pause
// applies to it, after answering the n requests before it. False when the
// client is gone.
func (c *client) waitPause(args [][]byte, n *int, start time.Time) bool {
	ci, _ := c.lookup(c.s.table.Load(), args)
	if !c.s.pausedFor(ci) {
		return true
	}
	if *n > 0 {
		c.finishBatch(*n, start)
		if !c.writeOut() {
			return false
		}
		c.commands.Add(uint64(*n))
		*n = 0
	}
	c.s.pause.held.Add(1)
	defer c.s.pause.held.Add(-1)
	for c.s.pausedFor(ci) && !c.s.closing.Load() {
		if done := c.s.pauseDone(); done != nil {
			<-done
		}
	}
	return true
}

// parkPaused holds a loop client whose next command waits for the pause:
// no reads until it ends (what the client sends meanwhile stays in the
// socket). The pause may have ended since the command was parsed: then it
// is served at once.
func (l *loop) parkPaused(c *client) {
	c.ls.paused = false
	if c.s.pauseMode.Load() == pauseNone || c.s.closing.Load() {
		l.serve(c)
		return
	}
	c.ls.state = lsPaused
	l.watch(c, 0)
	l.paused = append(l.paused, c)
	l.s.pause.held.Add(1)
}

// resumePaused serves the loop's parked clients again (evUnpause); those
// that meet a new pause park again.
func (l *loop) resumePaused() {
	parked := l.paused
	l.paused = nil
	l.s.pause.held.Add(-int64(len(parked)))
	for _, c := range parked {
		if c.ls.state != lsPaused {
			continue // closed meanwhile
		}
		c.ls.state = lsIdle
		l.watch(c, unix.EPOLLIN)
		l.serve(c)
	}
}
