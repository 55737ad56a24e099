package proxy

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// NodeHealth is what the active health check last saw of one node.
type NodeHealth struct {
	Addr      string        `json:"addr"`
	Up        bool          `json:"up"`
	Since     time.Time     `json:"since"` // when Up last changed
	LastCheck time.Time     `json:"last_check"`
	Latency   time.Duration `json:"latency_ns"`
	Failures  int           `json:"consecutive_failures"`
	LastError string        `json:"last_error,omitempty"`
}

// healthChecker PINGs every node of the topology. A master that fails
// failAfter checks in a row is reported down: its connections are reset so
// no client waits on a silent peer, and the topology is refreshed.
type healthChecker struct {
	o         *topologyOwner
	interval  time.Duration
	timeout   time.Duration
	failAfter int
	state     atomic.Pointer[map[string]NodeHealth]
}

func (h *healthChecker) snapshot() map[string]NodeHealth {
	if p := h.state.Load(); p != nil {
		return *p
	}
	return nil
}

func (h *healthChecker) run(ctx context.Context) {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.checkAll(ctx)
		}
	}
}

func (h *healthChecker) checkAll(ctx context.Context) {
	topo := h.o.load()
	prev := h.snapshot()
	next := make(map[string]NodeHealth, len(topo.nodes))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range topo.nodes {
		wg.Go(func() {
			nh := h.check(ctx, n.Addr, prev[n.Addr])
			mu.Lock()
			next[n.Addr] = nh
			mu.Unlock()
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	h.state.Store(&next)
	for _, n := range topo.nodes {
		was, had := prev[n.Addr]
		now := next[n.Addr]
		h.o.m.nodeUp.WithLabelValues(n.Addr).Set(b2f(now.Up))
		if had && was.Up == now.Up {
			continue
		}
		if !now.Up {
			h.o.log.Warn("node down", "node", n.Addr, "role", n.Role, "err", now.LastError)
			if n.Role == "master" {
				if b := topo.backendOf(n.Addr); b != nil {
					b.reset(errors.New("health check failed"))
				}
				h.o.requestRefresh()
			}
		} else if had {
			h.o.log.Info("node up", "node", n.Addr, "role", n.Role)
		}
	}
	for addr := range prev {
		if _, ok := next[addr]; !ok {
			h.o.m.nodeUp.DeleteLabelValues(addr)
		}
	}
}

func (h *healthChecker) check(ctx context.Context, addr string, prev NodeHealth) NodeHealth {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	start := time.Now()
	err := h.o.control(addr).Ping(ctx).Err()
	nh := prev
	nh.Addr = addr
	nh.LastCheck = time.Now()
	if err == nil {
		nh.Latency = nh.LastCheck.Sub(start)
		nh.Failures, nh.LastError = 0, ""
		if !prev.Up {
			nh.Up, nh.Since = true, nh.LastCheck
		}
		return nh
	}
	nh.Failures++
	nh.LastError = err.Error()
	if prev.Since.IsZero() {
		nh.Since = nh.LastCheck // never seen up
	}
	if nh.Up && nh.Failures >= h.failAfter {
		nh.Up, nh.Since = false, nh.LastCheck
	}
	return nh
}

func (t *topology) backendOf(addr string) *backend {
	for _, b := range t.masters {
		if b.addr == addr {
			return b
		}
	}
	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
