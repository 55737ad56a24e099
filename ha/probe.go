package ha

import (
	"context"
	"errors"
	"net"
	"syscall"
	"time"

	"github.com/slotway/slotway/internal/kick"
)

// A holder that went quiet is probed: a refused TCP connect to its gossip
// port proves its process is gone (a partitioned or frozen member times
// out instead), so peers need not wait out the fence window.

// knownGone reports whether name's gossip port refused us after we last
// heard it.
func (g *Group) knownGone(name string) bool {
	if name == "" {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	p := g.nodes[name]
	return p != nil && p.refused.After(p.lastHeard)
}

// checkLoop probes the gossip port of holders that went quiet.
func (g *Group) checkLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case name := <-g.checkC:
			g.mu.Lock()
			p := g.nodes[name]
			addr := ""
			if p != nil {
				addr = p.addr
			}
			g.mu.Unlock()
			refused := false
			if addr != "" {
				c, err := net.DialTimeout("tcp", addr, 2*heartbeatEvery)
				if err == nil {
					c.Close()
				}
				refused = errors.Is(err, syscall.ECONNREFUSED)
				g.log.Debug("probed a quiet holder", "member", name, "addr", addr, "refused", refused, "err", err)
			}
			g.mu.Lock()
			if p := g.nodes[name]; p != nil {
				p.checking = false
				if refused {
					p.refused = time.Now()
				}
			}
			g.mu.Unlock()
			if refused {
				g.log.Info("holder's process is gone (connection refused); not waiting for fencing", "member", name)
				kick.Send(g.kick)
			}
		}
	}
}
