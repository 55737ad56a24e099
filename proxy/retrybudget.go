package proxy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"
)

// The retry budget is how long a command is parked (retried with backoff)
// while its master is unreachable or the cluster answers TRYAGAIN or
// CLUSTERDOWN, before the client gets the error. proxy.retry_timeout sets
// it; by default it is derived from the cluster's own cluster-node-timeout,
// read in the background, so that a replica promotion fits in it.

const (
	// maxRetryBudget caps the derived budget. A master with no replica
	// never comes back by itself, and its clients wait this long for their
	// error; 30 s still covers a promotion under Redis's default node
	// timeout (15 s: detected after at most 1.5x, promoted about a second
	// later), and client libraries that time out at all mostly allow 30 s
	// or less, past which parking is pointless.
	maxRetryBudget = 30 * time.Second
	// redisDefaultNodeTimeout is assumed until the cluster's is known, or
	// if CONFIG GET is refused (renamed, or not in the ACL user's rights).
	redisDefaultNodeTimeout = 15 * time.Second
	// nodeTimeoutEvery is how often cluster-node-timeout is read again
	// once known (it is a CONFIG SET away from changing).
	nodeTimeoutEvery = 30 * time.Second
)

// retryBudgetFor is the budget for a cluster-node-timeout of nt. A master
// is flagged failing after nt to 1.5 nt (pings go out every nt/2), and
// failed once a majority agree through gossip; its replica then waits 0.5
// to 1 s before asking for votes. So 2 nt covers the detection, 1 s the
// election delay, and 1 s the vote, the gossip and the proxy reading the
// new slot map on a loaded host.
func retryBudgetFor(nt time.Duration) time.Duration {
	return min(2*nt+2*time.Second, maxRetryBudget)
}

// retryBudget is the budget the data path reads: one atomic load when a
// command first fails, never per command.
type retryBudget struct {
	cur         atomic.Int64 // the budget, in nanoseconds
	nodeTimeout atomic.Int64 // cluster-node-timeout last read; 0: unknown
}

func (s *Server) retryBudget() time.Duration { return time.Duration(s.budget.cur.Load()) }

// initRetryBudget sets the budget before any command runs.
// It is called again by Reload: an explicit proxy.retry_timeout applies at
// once; back to 0, the budget is derived from the node timeout last read.
func (s *Server) initRetryBudget() {
	if rt := s.settings().retryTimeout; rt > 0 {
		s.budget.cur.Store(int64(rt))
		return
	}
	nt := time.Duration(s.budget.nodeTimeout.Load())
	if nt == 0 {
		nt = redisDefaultNodeTimeout
	}
	s.budget.cur.Store(int64(retryBudgetFor(nt)))
}

// watchNodeTimeout derives the budget from cluster-node-timeout until ctx
// ends: as soon as the slot map is known, then every nodeTimeoutEvery.
// While proxy.retry_timeout is set (it can be reloaded) it reads nothing.
func (s *Server) watchNodeTimeout(ctx context.Context) {
	t := time.NewTicker(s.cfg.Cluster.RefreshInterval)
	defer t.Stop()
	var next time.Time
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if now.Before(next) || s.settings().retryTimeout > 0 {
				continue
			}
		}
		nt, err := s.readNodeTimeout(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errNoMaster):
			continue // not bootstrapped yet: try on the next tick
		case err != nil:
			if !failing {
				s.log.Warn("cannot read cluster-node-timeout; the retry budget stays as it is",
					"retry_budget", s.retryBudget(), "err", err)
			}
			failing = true
		default:
			failing = false
			if old := time.Duration(s.budget.nodeTimeout.Swap(int64(nt))); old != nt {
				s.initRetryBudget()
				s.log.Info("retry budget derived from cluster-node-timeout", "node_timeout", nt, "retry_budget", s.retryBudget())
			}
		}
		next = time.Now().Add(nodeTimeoutEvery)
	}
}

var errNoMaster = errors.New("no master known yet")

// readNodeTimeout asks every master for cluster-node-timeout and returns
// the largest: a failover waits for the slowest voter.
func (s *Server) readNodeTimeout(ctx context.Context) (time.Duration, error) {
	t := s.topo.load()
	if len(t.masters) == 0 {
		return 0, errNoMaster
	}
	var nt time.Duration
	var errs []error
	for _, b := range t.masters {
		cctx, cancel := context.WithTimeout(ctx, 4*s.cfg.HealthTimeout)
		kv, err := s.topo.control(b.addr).ConfigGet(cctx, "cluster-node-timeout").Result()
		cancel()
		var ms int64
		if err == nil {
			v, ok := kv["cluster-node-timeout"]
			ms, err = strconv.ParseInt(v, 10, 64)
			if !ok || err != nil || ms <= 0 {
				err = fmt.Errorf("unexpected reply %q", v)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("CONFIG GET cluster-node-timeout on %s: %w", b.addr, err))
			continue
		}
		nt = max(nt, time.Duration(ms)*time.Millisecond)
	}
	if nt == 0 {
		return 0, errors.Join(errs...)
	}
	return nt, nil
}

// park records that n requests of c are parked, since the first of them
// was; only c's goroutine calls it.
func (c *client) park(n int, since time.Time) {
	if c.parkedAt.Load() == 0 {
		c.parkedAt.Store(since.UnixNano())
	}
	c.parkedN.Store(int32(n))
}

// unpark records that c has nothing parked any more.
func (c *client) unpark() {
	c.parkedN.Store(0)
	c.parkedAt.Store(0)
}

// parked counts the requests parked now and how long the oldest has been.
func (s *Server) parked(now time.Time) (n int, longest time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.clients {
		at := c.parkedAt.Load()
		if at == 0 {
			continue
		}
		n += int(c.parkedN.Load())
		longest = max(longest, now.Sub(time.Unix(0, at)))
	}
	return n, longest
}
