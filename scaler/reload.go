package scaler

import (
	"fmt"
	"slices"
)

// ReloadableKeys are the scaler.* keys (relative to scaler) that Reload
// applies to a running scaler: the policy's thresholds, cycles, cooldowns
// and bounds, and the webhook. A key ending in "." covers its sub-keys.
// The others (enabled, dry_run, interval, plans, node_memory, provider,
// rebalance) are read at start and need a restart.
var ReloadableKeys = []string{
	"thresholds.", "up_cycles", "down_cycles", "rebalance_cycles", "up_cooldown", "down_cooldown",
	"stabilization", "min_masters", "max_masters", "max_step", "scale_in_margin", "imbalance", "notify.",
}

// Reload applies cfg's reloadable keys (ReloadableKeys); the next
// evaluation uses them, and the cycle counters and cooldowns already run
// are kept. Safe to call while Run runs, but not concurrently.
func (s *Scaler) Reload(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("scaler config: %w", err)
	}
	s.auto.setPolicy(cfg)
	s.hook.setConfig(cfg.Notify)
	return nil
}

// policy returns the policy and the config keys that go with it, as a
// reload left them.
func (a *autoscaler) policy() (Config, PolicyConfig) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg, a.pol
}

// setPolicy takes the policy keys of cfg. Only those fields of a.cfg are
// written (under mu): the others are read without the lock.
func (a *autoscaler) setPolicy(cfg Config) {
	a.mu.Lock()
	defer a.mu.Unlock()
	pol := cfg.policy()
	pol.Plans, pol.NodeMemory = a.pol.Plans, a.pol.NodeMemory // need a restart
	a.pol = pol
	c := &a.cfg
	c.Thresholds, c.UpCycles, c.DownCycles, c.RebalanceCycles = cfg.Thresholds, cfg.UpCycles, cfg.DownCycles, cfg.RebalanceCycles
	c.UpCooldown, c.DownCooldown, c.Stabilization = cfg.UpCooldown, cfg.DownCooldown, cfg.Stabilization
	c.MinMasters, c.MaxMasters, c.MaxStep, c.ScaleInMargin, c.Imbalance = cfg.MinMasters, cfg.MaxMasters, cfg.MaxStep, cfg.ScaleInMargin, cfg.Imbalance
}

// setConfig changes the webhook and the events sent to it; events
// already queued are still delivered (to the new webhook).
func (n *notifier) setConfig(cfg NotifyConfig) {
	n.mu.Lock()
	n.url, n.on = cfg.Webhook, slices.Clone(cfg.On)
	n.mu.Unlock()
}
