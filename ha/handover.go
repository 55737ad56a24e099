package ha

import (
	"context"
	"fmt"
	"time"

	"github.com/slotway/slotway/internal/kick"
)

// Handover moves the VIP to the next member without stopping: this member
// drains (priority 0) until another claims, then becomes a candidate
// again. It returns the successor's name.
func (g *Group) Handover(ctx context.Context) (string, error) {
	self := g.selfMeta()
	if self.Role != RoleHolder {
		return "", ErrNotHolder
	}
	g.setRole(RoleDraining, "handover", self.Term)
	g.kickLoop()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if h := g.State().Holder; h != "" && h != g.cfg.Name {
			// Back to candidate; updateHealth restores our priority.
			g.setRole(RoleCandidate, "handover", self.Term)
			g.kickLoop()
			g.log.Info("handed the VIP over", "to", h)
			return h, nil
		}
		select {
		case <-ctx.Done():
			// Nobody took over: keep serving.
			g.setRole(RoleHolder, "handover_failed", self.Term)
			g.kickLoop()
			return "", fmt.Errorf("no member took the VIP over: %w", ctx.Err())
		case <-t.C:
		}
	}
}

func (g *Group) kickLoop() {
	kick.Send(g.kick)
}

// drain hands the VIP over: role draining with priority 0, then wait until
// another member claims it (or drainWait passes).
func (g *Group) drain() {
	if g.selfMeta().Role != RoleHolder {
		return
	}
	g.setRole(RoleDraining, "shutdown", g.selfMeta().Term)
	deadline := time.Now().Add(drainWait)
	for time.Now().Before(deadline) {
		g.heartbeat()
		view := g.view(time.Now())
		for _, ms := range view {
			if ms.Name != g.cfg.Name && ms.Role == RoleHolder && ms.Alive {
				g.log.Info("handed the VIP over", "to", ms.Name, "term", ms.Term)
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	g.log.Warn("no member claimed the VIP during drain", "waited", drainWait)
}
