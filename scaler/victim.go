package scaler

// Which master a scale in drains.

import (
	"context"
	"net"
	"slices"
	"time"
)

// MemberSeedsFunc returns the proxy.cluster.seeds of every group member
// it could learn them from.
type MemberSeedsFunc func(ctx context.Context) []string

// drainGuard is what a scale in must know before it picks a master: the
// nodes the provider gave (drained first) and the seeds of every member
// (never drained: a reset seed answers first and serves nothing, and an
// instance that starts later would read its slot map there).
type drainGuard struct {
	provided map[string]bool
	seeds    map[string]bool // host:port, names resolved to addresses too
}

func (g drainGuard) seed(addr string) bool { return g.seeds[addr] }

// guard reads the provider's nodes from the group's events (an acquire not
// followed by a release of the same node) and the pool, and the members'
// seeds.
func (s *Scaler) guard(ctx context.Context) drainGuard {
	g := drainGuard{provided: map[string]bool{}, seeds: map[string]bool{}}
	for _, a := range s.cfg.Provider.Pool {
		g.provided[a] = true
	}
	for _, ev := range s.ev.recent(ctx, maxEvents) {
		switch ev.Kind {
		case "acquire":
			g.provided[ev.Node] = true
		case "release":
			if !slices.Contains(s.cfg.Provider.Pool, ev.Node) {
				delete(g.provided, ev.Node)
			}
		}
	}
	if s.opts.MemberSeeds == nil {
		return g
	}
	for _, seed := range s.opts.MemberSeeds(ctx) {
		g.seeds[seed] = true
		host, port, err := net.SplitHostPort(seed)
		if err != nil || net.ParseIP(host) != nil {
			continue
		}
		// The cluster announces addresses; a seed may be a name.
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		ips, err := net.DefaultResolver.LookupHost(rctx, host)
		cancel()
		if err != nil {
			s.log.Warn("scaler: cannot resolve a member's seed; it is protected by name only", "seed", seed, "err", err)
		}
		for _, ip := range ips {
			g.seeds[net.JoinHostPort(ip, port)] = true
		}
	}
	return g
}

// mark sets Provided and Seed on the sample's masters.
func (g drainGuard) mark(sample *Sample) {
	for i := range sample.Masters {
		m := &sample.Masters[i]
		m.Provided, m.Seed = g.provided[m.Addr], g.seed(m.Addr)
	}
}
