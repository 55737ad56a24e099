package scaler

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// The autoscaler's policy: a pure function from one evaluation's
// measurements, the configuration and the state kept between evaluations
// to a decision with a reason. The collector and the actions live
// elsewhere; this file does no I/O, so traces can be replayed in tests.

// MasterSample is one master at one evaluation.
type MasterSample struct {
	Addr       string
	UsedMemory int64
	MaxMemory  int64 // 0: unlimited (then PolicyConfig.NodeMemory, if set)
	Clients    int64
	MaxClients int64
	Ops        float64 // commands per second
	CPUPct     float64 // of one core, from used_cpu_* deltas
}

// Sample is one evaluation's view of the cluster.
type Sample struct {
	Time    time.Time
	Masters []MasterSample
	// Why the policy must not act now ("" when it may): a migration
	// running, cluster_state not ok, a replica lagging, a master not
	// answering.
	Hold string
}

// Thresholds are the signals' limits.
type Thresholds struct {
	MemoryPct          float64 `yaml:"memory_pct"`
	ClientsPct         float64 `yaml:"clients_pct"`
	OpsPerMaster       float64 `yaml:"ops_per_master"`
	CPUPct             float64 `yaml:"cpu_pct"`
	EmergencyMemoryPct float64 `yaml:"emergency_memory_pct"`
}

// PolicyConfig is the part of the scaler's configuration the policy reads.
type PolicyConfig struct {
	MinMasters, MaxMasters, MaxStep int
	UpCycles, DownCycles            int
	Stabilization                   time.Duration
	UpCooldown, DownCooldown        time.Duration
	ScaleInMargin                   float64
	Imbalance                       float64 // fraction, e.g. 0.20
	RebalanceCycles                 int
	NodeMemory                      int64
	Thresholds                      Thresholds
}

// DefaultPolicy has the documented defaults.
func DefaultPolicy() PolicyConfig {
	return PolicyConfig{MinMasters: 3, MaxMasters: 10, MaxStep: 1, UpCycles: 3, DownCycles: 12,
		Stabilization: 5 * time.Minute, UpCooldown: 2 * time.Minute, DownCooldown: 10 * time.Minute,
		ScaleInMargin: 0.75, Imbalance: 0.20, RebalanceCycles: 6,
		Thresholds: Thresholds{MemoryPct: 75, ClientsPct: 80, OpsPerMaster: 50000, CPUPct: 70, EmergencyMemoryPct: 95}}
}

// PolicyState is what the policy remembers between evaluations; a new
// leader rebuilds it from the event stream.
type PolicyState struct {
	Up, Down, Imbalanced int       // consecutive evaluations
	LastUp, LastDown     time.Time // last scale-out / scale-in action
	WantedMore           time.Time // last evaluation that wanted more masters
}

// Decision is what the policy wants done.
type Decision struct {
	Kind   string // none, scale_out, scale_in, rebalance
	Count  int    // scale_out: masters to add
	Node   string // scale_in: the master to drain
	Reason string
}

// tolerance: values within 10 % of a threshold count as at it (ignored).
const tolerance = 0.10

// signals are one evaluation's averages (and the memory peak).
type signals struct {
	memPct, memPeak, clientsPct, ops, cpu float64
	memKnown                              bool
}

func measure(s Sample, cfg PolicyConfig) signals {
	var sig signals
	var memN, cliN int
	for _, m := range s.Masters {
		limit := m.MaxMemory
		if limit == 0 {
			limit = cfg.NodeMemory
		}
		if limit > 0 {
			p := 100 * float64(m.UsedMemory) / float64(limit)
			sig.memPct += p
			sig.memPeak = max(sig.memPeak, p)
			memN++
		}
		if m.MaxClients > 0 {
			sig.clientsPct += 100 * float64(m.Clients) / float64(m.MaxClients)
			cliN++
		}
		sig.ops += m.Ops
		sig.cpu += m.CPUPct
	}
	if memN > 0 {
		sig.memPct /= float64(memN)
		sig.memKnown = true
	}
	if cliN > 0 {
		sig.clientsPct /= float64(cliN)
	}
	if n := float64(len(s.Masters)); n > 0 {
		sig.ops /= n
		sig.cpu /= n
	}
	return sig
}

// over lists the signals above their threshold (beyond the tolerance),
// with the largest ratio of value to threshold.
func over(sig signals, t Thresholds) ([]string, float64) {
	var names []string
	worst := 0.0
	check := func(name string, v, limit float64, known bool) {
		if !known || limit <= 0 {
			return
		}
		if r := v / limit; r > 1+tolerance {
			names = append(names, fmt.Sprintf("%s %.0f > %.0f", name, v, limit))
			worst = max(worst, r)
		}
	}
	check("memory%", sig.memPct, t.MemoryPct, sig.memKnown)
	check("clients%", sig.clientsPct, t.ClientsPct, true)
	check("ops/master", sig.ops, t.OpsPerMaster, true)
	check("cpu%", sig.cpu, t.CPUPct, true)
	return names, worst
}

// Decide evaluates one sample.
func Decide(cfg PolicyConfig, st PolicyState, s Sample) (Decision, PolicyState) {
	now := s.Time
	n := len(s.Masters)
	if s.Hold != "" || n == 0 {
		why := s.Hold
		if why == "" {
			why = "no master measured"
		}
		return Decision{Kind: "none", Reason: "holding: " + why}, st
	}
	sig := measure(s, cfg)
	t := cfg.Thresholds
	// A memory emergency acts at once, whatever the cycles and cooldowns.
	if sig.memKnown && t.EmergencyMemoryPct > 0 && sig.memPeak >= t.EmergencyMemoryPct && n < cfg.MaxMasters {
		st.Up, st.Down, st.LastUp, st.WantedMore = 0, 0, now, now
		return Decision{Kind: "scale_out", Count: 1,
			Reason: fmt.Sprintf("memory emergency: a master at %.0f%% (>= %.0f%%)", sig.memPeak, t.EmergencyMemoryPct)}, st
	}
	high, worst := over(sig, t)
	if len(high) > 0 {
		st.Up++
		st.WantedMore = now
	} else {
		st.Up = 0
	}
	// Scale in is judged on the projection onto one master fewer.
	low := n > 1 && n > cfg.MinMasters
	if low {
		f := float64(n) / float64(n-1)
		proj := signals{memPct: sig.memPct * f, clientsPct: sig.clientsPct * f, ops: sig.ops * f, cpu: sig.cpu * f, memKnown: sig.memKnown}
		m := cfg.ScaleInMargin
		lim := Thresholds{MemoryPct: t.MemoryPct * m, ClientsPct: t.ClientsPct * m, OpsPerMaster: t.OpsPerMaster * m, CPUPct: t.CPUPct * m}
		// Strictly under: no tolerance in the safe direction.
		low = (!proj.memKnown || lim.MemoryPct <= 0 || proj.memPct < lim.MemoryPct) &&
			(lim.ClientsPct <= 0 || proj.clientsPct < lim.ClientsPct) &&
			(lim.OpsPerMaster <= 0 || proj.ops < lim.OpsPerMaster) &&
			(lim.CPUPct <= 0 || proj.cpu < lim.CPUPct)
	}
	if low && len(high) == 0 {
		st.Down++
	} else {
		st.Down = 0
	}
	switch {
	case len(high) > 0 && st.Up >= cfg.UpCycles:
		if n >= cfg.MaxMasters {
			return Decision{Kind: "none", Reason: fmt.Sprintf("wants more masters (%s) but is at max_masters %d", strings.Join(high, ", "), cfg.MaxMasters)}, st
		}
		// A needed scale-out may cut a scale-in cooldown short, not the
		// cooldown after the last scale-out.
		if !st.LastUp.IsZero() && now.Sub(st.LastUp) < cfg.UpCooldown {
			return Decision{Kind: "none", Reason: fmt.Sprintf("wants more masters (%s); up_cooldown %v left", strings.Join(high, ", "),
				(cfg.UpCooldown - now.Sub(st.LastUp)).Round(time.Second))}, st
		}
		k := int(math.Ceil(float64(n)*worst)) - n
		k = max(1, min(k, cfg.MaxStep, cfg.MaxMasters-n))
		st.Up, st.LastUp = 0, now
		return Decision{Kind: "scale_out", Count: k, Reason: fmt.Sprintf("%s for %d evaluations", strings.Join(high, ", "), cfg.UpCycles)}, st
	case st.Down >= cfg.DownCycles:
		switch {
		case now.Sub(st.WantedMore) < cfg.Stabilization:
			return Decision{Kind: "none", Reason: "could scale in, but an evaluation in the stabilization window wanted more masters"}, st
		case (!st.LastDown.IsZero() && now.Sub(st.LastDown) < cfg.DownCooldown) || (!st.LastUp.IsZero() && now.Sub(st.LastUp) < cfg.DownCooldown):
			return Decision{Kind: "none", Reason: "could scale in; down_cooldown not over"}, st
		}
		victim, why := drainCandidate(s, cfg)
		if victim == "" {
			return Decision{Kind: "none", Reason: "could scale in, but " + why}, st
		}
		st.Down, st.LastDown = 0, now
		return Decision{Kind: "scale_in", Node: victim, Reason: fmt.Sprintf("every signal under threshold x %.2f on %d masters for %d evaluations; %s",
			cfg.ScaleInMargin, n-1, cfg.DownCycles, why)}, st
	}
	// Traffic imbalance (slot counts can be even while load is not).
	if cfg.Imbalance > 0 && sig.ops > 0 && n > 1 {
		lo, hi := math.Inf(1), 0.0
		for _, m := range s.Masters {
			lo, hi = min(lo, m.Ops), max(hi, m.Ops)
		}
		if (hi-lo)/sig.ops > cfg.Imbalance {
			st.Imbalanced++
		} else {
			st.Imbalanced = 0
		}
		if st.Imbalanced >= cfg.RebalanceCycles {
			st.Imbalanced = 0
			return Decision{Kind: "rebalance", Reason: fmt.Sprintf("ops per master range %.0f..%.0f (average %.0f) for %d evaluations",
				lo, hi, sig.ops, cfg.RebalanceCycles)}, st
		}
	}
	reason := "all signals within thresholds"
	if len(high) > 0 {
		reason = fmt.Sprintf("%s (%d/%d evaluations)", strings.Join(high, ", "), st.Up, cfg.UpCycles)
	} else if st.Down > 0 {
		reason = fmt.Sprintf("could scale in (%d/%d evaluations)", st.Down, cfg.DownCycles)
	}
	return Decision{Kind: "none", Reason: reason}, st
}

// drainCandidate picks the master with the least memory used, if the rest
// keep at least 1.5x its used memory free.
func drainCandidate(s Sample, cfg PolicyConfig) (string, string) {
	ms := slices.Clone(s.Masters)
	slices.SortFunc(ms, func(a, b MasterSample) int {
		if a.UsedMemory != b.UsedMemory {
			if a.UsedMemory < b.UsedMemory {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Addr, b.Addr)
	})
	victim := ms[0]
	var free int64
	known := true
	for _, m := range ms[1:] {
		limit := m.MaxMemory
		if limit == 0 {
			limit = cfg.NodeMemory
		}
		if limit == 0 {
			known = false
			break
		}
		free += max(0, limit-m.UsedMemory)
	}
	if known && float64(free) < 1.5*float64(victim.UsedMemory) {
		return "", fmt.Sprintf("the other masters' free memory (%d) is under 1.5x the drained master's %d", free, victim.UsedMemory)
	}
	return victim.Addr, fmt.Sprintf("draining %s (least memory used)", victim.Addr)
}
