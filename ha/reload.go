package ha

import (
	"fmt"

	"github.com/slotway/slotway/internal/kick"
)

// ReloadableKeys are the ha.* keys (relative to ha) that Reload applies
// to a running group; a key ending in "." covers its sub-keys. The others
// (name, bind, peers, the VIP, the secret key, witness) need a restart.
var ReloadableKeys = []string{"priority", "hooks."}

// Reload applies cfg's priority and hooks. A new priority is gossiped at
// once and counts from the next election tick; it never moves the VIP by
// itself unless ha.preempt is on. Hooks apply from the next transition.
// Safe to call while Run runs.
func (g *Group) Reload(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("ha config: %w", err)
	}
	hooks := cfg.Hooks
	g.hooks.cfg.Store(&hooks)
	g.mu.Lock()
	changed := g.meta.Priority != cfg.Priority
	g.meta.Priority = cfg.Priority
	g.mu.Unlock()
	if changed {
		g.log.Info("priority changed by a reload", "priority", cfg.Priority)
		kick.Send(g.gossipC)
		kick.Send(g.kick)
	}
	return nil
}

// configuredPriority is ha.priority (Meta.Priority), before health.
func (g *Group) configuredPriority() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.meta.Priority
}
