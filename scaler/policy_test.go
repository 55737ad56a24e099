package scaler

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// replay feeds a trace to the policy. Each line is "seconds, total memory
// in % of one master, total ops": the load of the whole cluster, spread
// evenly over however many masters the decisions so far have left. It
// returns the actions as "t=<s> <kind>" and the final master count.
func replay(t *testing.T, cfg PolicyConfig, masters int, trace string) ([]string, int) {
	t.Helper()
	var st PolicyState
	var actions []string
	start := time.Unix(1_700_000_000, 0)
	for _, line := range strings.Split(strings.TrimSpace(trace), "\n") {
		f := strings.Split(line, ",")
		if len(f) != 3 {
			t.Fatalf("bad trace line %q", line)
		}
		sec, _ := strconv.Atoi(strings.TrimSpace(f[0]))
		mem, _ := strconv.ParseFloat(strings.TrimSpace(f[1]), 64)
		ops, _ := strconv.ParseFloat(strings.TrimSpace(f[2]), 64)
		s := Sample{Time: start.Add(time.Duration(sec) * time.Second)}
		for i := range masters {
			s.Masters = append(s.Masters, MasterSample{Addr: fmt.Sprintf("10.0.0.%d:6379", i+1),
				UsedMemory: int64(mem / float64(masters) * 1e6), MaxMemory: 100e6, Ops: ops / float64(masters)})
		}
		var d Decision
		d, st = Decide(cfg, st, s)
		switch d.Kind {
		case "scale_out":
			masters += d.Count
		case "scale_in":
			masters--
		}
		if d.Kind != "none" {
			actions = append(actions, fmt.Sprintf("t=%d %s", sec, d.Kind))
			t.Logf("t=%d: %s (%s)", sec, d.Kind, d.Reason)
		}
	}
	return actions, masters
}

// ramp makes a trace from mem0 to mem1 (total %) over n evaluations 10 s
// apart, then holds mem1 for hold evaluations.
func ramp(mem0, mem1 float64, n, hold int, ops float64) string {
	var b strings.Builder
	for i := range n + hold {
		m := mem1
		if i < n {
			m = mem0 + (mem1-mem0)*float64(i)/float64(n-1)
		}
		fmt.Fprintf(&b, "%d, %.1f, %.0f\n", i*10, m, ops)
	}
	return b.String()
}

func TestPolicyTraces(t *testing.T) {
	cfg := DefaultPolicy()
	cfg.RebalanceCycles = 1000 // traffic is even in these traces
	t.Run("rising load scales out once", func(t *testing.T) {
		// 3 masters from 50 % to 110 % each; after one more master 82 %.
		acts, n := replay(t, cfg, 3, ramp(150, 330, 30, 30, 1000))
		if len(acts) != 1 || !strings.HasSuffix(acts[0], "scale_out") || n != 4 {
			t.Fatalf("actions %v, masters %d; want one scale_out to 4", acts, n)
		}
	})
	t.Run("falling load scales in after stabilization and cooldown", func(t *testing.T) {
		// 4 masters from 85 % (wants more: max_masters 4 stops it) down to 10 %.
		c := cfg
		c.MaxMasters = 4
		acts, n := replay(t, c, 4, ramp(340, 40, 40, 200, 1000))
		if len(acts) != 1 || !strings.HasSuffix(acts[0], "scale_in") || n != 3 {
			t.Fatalf("actions %v, masters %d; want one scale_in to 3", acts, n)
		}
		// The last evaluation above threshold (85 % x4 ... ) was early in
		// the ramp; stabilization (5 min) must have passed since.
		var at int
		fmt.Sscanf(acts[0], "t=%d", &at)
		if at < int(cfg.Stabilization.Seconds()) {
			t.Fatalf("scaled in at t=%d, before the stabilization window", at)
		}
	})
	t.Run("noise around the threshold does nothing", func(t *testing.T) {
		var b strings.Builder
		for i := range 200 {
			m := 3 * 70.0 // 70 % each
			if i%2 == 1 {
				m = 3 * 81 // 81 %: within the 10 % tolerance of 75
			}
			fmt.Fprintf(&b, "%d, %.0f, 1000\n", i*10, m)
		}
		acts, _ := replay(t, cfg, 3, b.String())
		if len(acts) != 0 {
			t.Fatalf("actions %v on noise", acts)
		}
	})
	t.Run("noise crossing the band acts at most once per cooldown", func(t *testing.T) {
		var b strings.Builder
		for i := range 200 {
			m := 3 * 60.0
			if i%4 != 3 {
				m = 3 * 90 // three above, one below
			}
			fmt.Fprintf(&b, "%d, %.0f, 1000\n", i*10, m)
		}
		c := cfg
		c.MaxMasters = 20
		acts, _ := replay(t, c, 3, b.String())
		last := -1_000_000
		for _, a := range acts {
			var at int
			fmt.Sscanf(a, "t=%d", &at)
			if at-last < int(c.UpCooldown.Seconds()) {
				t.Fatalf("actions %v closer than up_cooldown", acts)
			}
			last = at
		}
	})
	t.Run("a short spike does nothing", func(t *testing.T) {
		trace := "0, 150, 1000\n10, 150, 1000\n20, 270, 1000\n30, 270, 1000\n40, 150, 1000\n50, 150, 1000\n60, 150, 1000\n"
		if acts, _ := replay(t, cfg, 3, trace); len(acts) != 0 {
			t.Fatalf("actions %v on a spike", acts)
		}
	})
	t.Run("memory emergency acts at once", func(t *testing.T) {
		trace := "0, 150, 1000\n10, 290, 1000\n20, 150, 1000\n"
		acts, n := replay(t, cfg, 3, trace)
		if len(acts) != 1 || acts[0] != "t=10 scale_out" || n != 4 {
			t.Fatalf("actions %v, masters %d; want scale_out at t=10", acts, n)
		}
	})
	t.Run("ops above threshold scale out by several within max_step", func(t *testing.T) {
		c := cfg
		c.MaxStep = 3
		// 3 masters at 2x ops_per_master: wants 3 more, gets them in one step.
		acts, n := replay(t, c, 3, ramp(100, 100, 5, 0, 3*2*cfg.Thresholds.OpsPerMaster))
		if len(acts) != 1 || n != 6 {
			t.Fatalf("actions %v, masters %d; want one scale_out to 6", acts, n)
		}
	})
}

func TestPolicyHoldsAndLimits(t *testing.T) {
	cfg := DefaultPolicy()
	now := time.Unix(1_700_000_000, 0)
	hot := Sample{Time: now, Masters: []MasterSample{{Addr: "a", UsedMemory: 99, MaxMemory: 100}}}
	hot.Hold = "a slot migration is running"
	if d, _ := Decide(cfg, PolicyState{}, hot); d.Kind != "none" || !strings.Contains(d.Reason, "migration") {
		t.Fatalf("held decision = %+v", d)
	}
	hot.Hold = ""
	cfg.MaxMasters = 1
	if d, _ := Decide(cfg, PolicyState{}, hot); d.Kind != "none" {
		t.Fatalf("at max_masters: %+v", d)
	}
	// Scale in refused when the others cannot take the drained data.
	cfg = DefaultPolicy()
	cfg.MinMasters, cfg.DownCycles, cfg.Stabilization, cfg.DownCooldown = 1, 1, 0, 0
	full := Sample{Time: now, Masters: []MasterSample{
		{Addr: "a", UsedMemory: 10, MaxMemory: 100, Ops: 1}, {Addr: "b", UsedMemory: 90, MaxMemory: 100, Ops: 1}}}
	cfg.Thresholds.MemoryPct = 1000 // memory signal never high
	if d, _ := Decide(cfg, PolicyState{}, full); d.Kind != "none" || !strings.Contains(d.Reason, "free memory") {
		t.Fatalf("scale in onto a full master: %+v", d)
	}
	roomy := Sample{Time: now, Masters: []MasterSample{
		{Addr: "a", UsedMemory: 10, MaxMemory: 100, Ops: 1}, {Addr: "b", UsedMemory: 20, MaxMemory: 100, Ops: 1}}}
	if d, _ := Decide(cfg, PolicyState{}, roomy); d.Kind != "scale_in" || d.Node != "a" {
		t.Fatalf("scale in: %+v", d)
	}
	// Traffic imbalance asks for a rebalance after rebalance_cycles.
	cfg = DefaultPolicy()
	cfg.RebalanceCycles = 2
	skew := Sample{Time: now, Masters: []MasterSample{{Addr: "a", Ops: 100}, {Addr: "b", Ops: 10}, {Addr: "c", Ops: 10}}}
	var st PolicyState
	var d Decision
	for range 2 {
		d, st = Decide(cfg, st, skew)
	}
	if d.Kind != "rebalance" {
		t.Fatalf("skewed traffic: %+v", d)
	}
}
