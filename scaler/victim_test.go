package scaler

import (
	"strings"
	"testing"
	"time"
)

// TestScaleInDecisionSparesSeeds: the autoscaler's scale in drains a
// master the provider gave before an original one, and never a seed of a
// group member, even when it uses the least memory.
func TestScaleInDecisionSparesSeeds(t *testing.T) {
	cfg := DefaultPolicy()
	cfg.MinMasters, cfg.DownCycles, cfg.Stabilization, cfg.DownCooldown = 1, 1, 0, 0
	cfg.Thresholds.MemoryPct = 1000
	now := time.Unix(1_700_000_000, 0)
	m := func(addr string, used int64, provided, seed bool) MasterSample {
		return MasterSample{Addr: addr, UsedMemory: used, MaxMemory: 1000, Ops: 1, Provided: provided, Seed: seed}
	}
	for _, tc := range []struct {
		name    string
		masters []MasterSample
		want    string // "" : no scale in
		reason  string
	}{
		{"seed with least memory is kept", []MasterSample{m("a", 10, false, true), m("b", 50, false, false), m("c", 60, false, false)}, "b", "least memory"},
		{"provided before least memory", []MasterSample{m("a", 10, false, true), m("b", 20, false, false), m("d", 90, true, false)}, "d", "given by the provider"},
		{"every master a seed", []MasterSample{m("a", 10, false, true), m("b", 20, false, true)}, "", "every master is a seed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := Decide(cfg, PolicyState{}, Sample{Time: now, Masters: tc.masters})
			if tc.want == "" {
				if d.Kind != "none" || !strings.Contains(d.Reason, tc.reason) {
					t.Fatalf("decision %+v, want none (%s)", d, tc.reason)
				}
				return
			}
			if d.Kind != "scale_in" || d.Node != tc.want || !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("decision %+v, want scale_in of %s (%s)", d, tc.want, tc.reason)
			}
		})
	}
}
