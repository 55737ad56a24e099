package scaler

import (
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// TestConfigDefaults: keys left out keep the documented defaults, and the
// policy sees what the YAML says.
func TestConfigDefaults(t *testing.T) {
	var c Config
	if err := yaml.Unmarshal([]byte("enabled: true\nimbalance: 30%\nplans: [256mb, 1gb]\nthresholds: {memory_pct: 60}\n"), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	p := c.policy()
	want := DefaultPolicy()
	switch {
	case !c.Enabled || c.DryRun || c.Interval != 10*time.Second:
		t.Errorf("enabled/dry_run/interval: %v %v %v", c.Enabled, c.DryRun, c.Interval)
	case p.Imbalance != 0.30 || len(p.Plans) != 2 || p.Plans[1] != 1<<30:
		t.Errorf("imbalance %v plans %v", p.Imbalance, p.Plans)
	case p.Thresholds.MemoryPct != 60:
		t.Errorf("memory_pct %v", p.Thresholds.MemoryPct)
	case p.MinMasters != want.MinMasters || p.MaxMasters != want.MaxMasters || p.UpCycles != want.UpCycles ||
		p.DownCycles != want.DownCycles || p.Stabilization != want.Stabilization || p.UpCooldown != want.UpCooldown ||
		p.DownCooldown != want.DownCooldown || p.ScaleInMargin != want.ScaleInMargin || p.RebalanceCycles != want.RebalanceCycles:
		t.Errorf("defaults lost: %+v", p)
	}
	if len(c.Notify.On) != 3 {
		t.Errorf("notify.on default: %v", c.Notify.On)
	}
	// Thresholds given in part keep the others' defaults (0 would turn
	// those signals off without a word).
	if p.Thresholds.OpsPerMaster != want.Thresholds.OpsPerMaster || p.Thresholds.EmergencyMemoryPct != want.Thresholds.EmergencyMemoryPct {
		t.Errorf("thresholds left out lost their defaults: %+v", p.Thresholds)
	}
}
