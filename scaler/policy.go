package scaler

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/slotway/slotway/internal/config"
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
	// Provided: the provider gave this node; a scale in drains those
	// first. Seed: a group member lists it in proxy.cluster.seeds; a
	// scale in never drains it (only a drain that names it).
	Provided, Seed bool
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
	// Plans is a maxmemory ladder in bytes, ascending (empty: off). Memory
	// pressure climbs it before masters are added, and scale in steps down
	// it before a master is removed: a CONFIG SET is cheaper and quicker
	// than moving slots.
	Plans []int64
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
	Kind  string // none, scale_out, scale_in, rebalance, vertical
	Count int    // scale_out: masters to add
	Node  string // scale_in: the master to drain
	// MaxMemory is, for vertical, the plan (bytes) to CONFIG SET as
	// maxmemory on every master.
	MaxMemory int64
	Reason    string
	// Signals are this evaluation's measurements in the order memory_pct,
	// clients_pct, ops_per_master, cpu_pct; nil when the policy held
	// without measuring. Breached names those over threshold beyond the
	// tolerance, so the caller can report a breach on its rising edge
	// while the policy stays free of event state.
	Signals  []SignalValue
	Breached []string
}

// SignalValue is one signal at one evaluation.
type SignalValue struct {
	Name      string  // memory_pct, clients_pct, ops_per_master, cpu_pct
	Average   float64 // over the masters measured; compared with Threshold
	Peak      float64 // the highest master
	Threshold float64
	// PerMaster is by address; a master without maxmemory (and no
	// node_memory) or without maxclients is left out of those signals.
	PerMaster map[string]float64
	Off       string // why the signal is not used ("" when it is)
}

// Positions in Decision.Signals.
const (
	sigMemory = iota
	sigClients
	sigOps
	sigCPU
)

// tolerance: values within 10 % of a threshold count as at it (ignored).
const tolerance = 0.10

func memLimit(m MasterSample, cfg PolicyConfig) int64 {
	if m.MaxMemory == 0 {
		return cfg.NodeMemory
	}
	return m.MaxMemory
}

func measure(s Sample, cfg PolicyConfig) []SignalValue {
	t := cfg.Thresholds
	sv := []SignalValue{
		{Name: "memory_pct", Threshold: t.MemoryPct},
		{Name: "clients_pct", Threshold: t.ClientsPct},
		{Name: "ops_per_master", Threshold: t.OpsPerMaster},
		{Name: "cpu_pct", Threshold: t.CPUPct},
	}
	// Sums run in master order, not map order, so that a replayed trace
	// gives the same floats, and so the same decisions, every time.
	var sum [4]float64
	var cnt [4]int
	add := func(i int, addr string, v float64) {
		if sv[i].PerMaster == nil {
			sv[i].PerMaster = make(map[string]float64, len(s.Masters))
		}
		sv[i].PerMaster[addr] = v
		sv[i].Peak = max(sv[i].Peak, v)
		sum[i] += v
		cnt[i]++
	}
	for _, m := range s.Masters {
		if limit := memLimit(m, cfg); limit > 0 {
			add(sigMemory, m.Addr, 100*float64(m.UsedMemory)/float64(limit))
		}
		if m.MaxClients > 0 {
			add(sigClients, m.Addr, 100*float64(m.Clients)/float64(m.MaxClients))
		}
		add(sigOps, m.Addr, m.Ops)
		add(sigCPU, m.Addr, m.CPUPct)
	}
	for i := range sv {
		v := &sv[i]
		if cnt[i] > 0 {
			v.Average = sum[i] / float64(cnt[i])
		}
		switch {
		case cnt[i] == 0 && i == sigMemory:
			v.Off = "maxmemory is 0 and scaler.node_memory is not set"
		case cnt[i] == 0 && i == sigClients:
			v.Off = "no master reports maxclients"
		case v.Threshold <= 0:
			v.Off = "scaler.thresholds." + v.Name + " is 0"
		}
	}
	return sv
}

// breach is the signals over threshold (beyond the tolerance).
type breach struct {
	names []string // for Decision.Breached
	why   []string // "memory% 88 > 75", for reasons
	worst float64  // the largest ratio of value to threshold
}

func over(sv []SignalValue) breach {
	label := [...]string{sigMemory: "memory%", sigClients: "clients%", sigOps: "ops/master", sigCPU: "cpu%"}
	var b breach
	for i, v := range sv {
		if v.Off != "" {
			continue
		}
		if r := v.Average / v.Threshold; r > 1+tolerance {
			b.names = append(b.names, v.Name)
			b.why = append(b.why, fmt.Sprintf("%s %.0f > %.0f", label[i], v.Average, v.Threshold))
			b.worst = max(b.worst, r)
		}
	}
	return b
}

// ladder returns the masters' maxmemory and the plans just above and just
// below it (0: none). The smallest maxmemory set is the one every master
// is known to have. With maxmemory 0 there is no rung to step from, and a
// plan beyond node_memory would promise memory the node does not have.
func ladder(cfg PolicyConfig, s Sample) (cur, up, down int64) {
	for _, m := range s.Masters {
		if m.MaxMemory > 0 && (cur == 0 || m.MaxMemory < cur) {
			cur = m.MaxMemory
		}
	}
	if cur == 0 {
		return 0, 0, 0
	}
	for _, p := range cfg.Plans {
		if p > cur && (up == 0 || p < up) && (cfg.NodeMemory <= 0 || p <= cfg.NodeMemory) {
			up = p
		}
		if p < cur && p > down {
			down = p
		}
	}
	return cur, up, down
}

// fitsPlan reports whether every master would stay strictly under
// memory_pct x scale_in_margin with maxmemory at plan; peak is the highest
// master's % at that plan. Per master, not on average: one full master
// would evict or refuse writes whatever the others hold.
func fitsPlan(cfg PolicyConfig, s Sample, plan int64) (ok bool, peak float64) {
	lim := cfg.Thresholds.MemoryPct * cfg.ScaleInMargin
	if plan <= 0 || lim <= 0 {
		return false, 0
	}
	for _, m := range s.Masters {
		peak = max(peak, 100*float64(m.UsedMemory)/float64(plan))
	}
	return peak < lim, peak
}

// Decide evaluates one sample.
func Decide(cfg PolicyConfig, st PolicyState, s Sample) (Decision, PolicyState) {
	if s.Hold != "" || len(s.Masters) == 0 {
		why := s.Hold
		if why == "" {
			why = "no master measured"
		}
		return Decision{Kind: "none", Reason: "holding: " + why}, st
	}
	sv := measure(s, cfg)
	b := over(sv)
	d, st := decide(cfg, st, s, sv, b)
	d.Signals, d.Breached = sv, b.names
	return d, st
}

// Measure is the signals of a sample and the names of those over their
// threshold, without deciding: for showing a held evaluation.
func Measure(cfg PolicyConfig, s Sample) ([]SignalValue, []string) {
	if len(s.Masters) == 0 {
		return nil, nil
	}
	sv := measure(s, cfg)
	return sv, over(sv).names
}

func decide(cfg PolicyConfig, st PolicyState, s Sample, sv []SignalValue, b breach) (Decision, PolicyState) {
	now, n, t := s.Time, len(s.Masters), cfg.Thresholds
	cur, up, down := ladder(cfg, s)
	raise := func(why string) Decision {
		return Decision{Kind: "vertical", MaxMemory: up,
			Reason: fmt.Sprintf("%s; raising maxmemory %v -> %v", why, config.ByteSize(cur), config.ByteSize(up))}
	}
	// A memory emergency acts at once, whatever the cycles and cooldowns.
	mem := sv[sigMemory]
	if len(mem.PerMaster) > 0 && t.EmergencyMemoryPct > 0 && mem.Peak >= t.EmergencyMemoryPct && (up > 0 || n < cfg.MaxMasters) {
		st.Up, st.Down, st.LastUp, st.WantedMore = 0, 0, now, now
		why := fmt.Sprintf("memory emergency: a master at %.0f%% (>= %.0f%%)", mem.Peak, t.EmergencyMemoryPct)
		if up > 0 {
			return raise(why), st
		}
		return Decision{Kind: "scale_out", Count: 1, Reason: why}, st
	}
	high := strings.Join(b.why, ", ")
	if len(b.names) > 0 {
		st.Up++
		st.WantedMore = now
	} else {
		st.Up = 0
	}
	// Scale in is judged on the projection onto one master fewer.
	fewer := n > 1 && n > cfg.MinMasters
	if fewer {
		f := float64(n) / float64(n-1)
		for _, v := range sv {
			// Strictly under: no tolerance in the safe direction.
			if lim := v.Threshold * cfg.ScaleInMargin; v.Off == "" && lim > 0 && v.Average*f >= lim {
				fewer = false
			}
		}
	}
	lower, lowerPeak := fitsPlan(cfg, s, down)
	if (fewer || lower) && len(b.names) == 0 {
		st.Down++
	} else {
		st.Down = 0
	}
	could := "could scale in"
	if lower {
		could = "could lower maxmemory to " + config.ByteSize(down).String()
	}
	switch {
	case len(b.names) > 0 && st.Up >= cfg.UpCycles:
		// A larger maxmemory relieves memory only; any other signal over
		// needs another master, which relieves memory as well.
		vertical := up > 0 && slices.Equal(b.names, []string{"memory_pct"})
		if !vertical && n >= cfg.MaxMasters {
			return Decision{Kind: "none", Reason: fmt.Sprintf("wants more masters (%s) but is at max_masters %d", high, cfg.MaxMasters)}, st
		}
		want := "wants more masters"
		if vertical {
			want = "wants a larger maxmemory"
		}
		// A needed scale-out may cut a scale-in cooldown short, not the
		// cooldown after the last scale-out.
		if !st.LastUp.IsZero() && now.Sub(st.LastUp) < cfg.UpCooldown {
			return Decision{Kind: "none", Reason: fmt.Sprintf("%s (%s); up_cooldown %v left", want, high,
				(cfg.UpCooldown - now.Sub(st.LastUp)).Round(time.Second))}, st
		}
		st.Up, st.LastUp = 0, now
		why := fmt.Sprintf("%s for %d evaluations", high, cfg.UpCycles)
		if vertical {
			return raise(why), st
		}
		if len(cfg.Plans) > 0 && cur > 0 && slices.Contains(b.names, "memory_pct") {
			why += fmt.Sprintf("; no usable plan above maxmemory %v", config.ByteSize(cur))
		}
		k := int(math.Ceil(float64(n)*b.worst)) - n
		k = max(1, min(k, cfg.MaxStep, cfg.MaxMasters-n))
		return Decision{Kind: "scale_out", Count: k, Reason: why}, st
	case st.Down >= cfg.DownCycles:
		switch {
		case now.Sub(st.WantedMore) < cfg.Stabilization:
			return Decision{Kind: "none", Reason: could + ", but an evaluation in the stabilization window wanted more masters"}, st
		case (!st.LastDown.IsZero() && now.Sub(st.LastDown) < cfg.DownCooldown) || (!st.LastUp.IsZero() && now.Sub(st.LastUp) < cfg.DownCooldown):
			return Decision{Kind: "none", Reason: could + "; down_cooldown not over"}, st
		}
		// A smaller plan first: it gives memory back without moving a slot.
		if lower {
			st.Down, st.LastDown = 0, now
			return Decision{Kind: "vertical", MaxMemory: down, Reason: fmt.Sprintf(
				"every master under memory%% %.0f x %.2f at maxmemory %v (peak %.0f%%) for %d evaluations; lowering maxmemory %v -> %v",
				t.MemoryPct, cfg.ScaleInMargin, config.ByteSize(down), lowerPeak, cfg.DownCycles, config.ByteSize(cur), config.ByteSize(down))}, st
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
	if ops := sv[sigOps].Average; cfg.Imbalance > 0 && ops > 0 && n > 1 {
		lo, hi := math.Inf(1), 0.0
		for _, m := range s.Masters {
			lo, hi = min(lo, m.Ops), max(hi, m.Ops)
		}
		if (hi-lo)/ops > cfg.Imbalance {
			st.Imbalanced++
		} else {
			st.Imbalanced = 0
		}
		if st.Imbalanced >= cfg.RebalanceCycles {
			st.Imbalanced = 0
			return Decision{Kind: "rebalance", Reason: fmt.Sprintf("ops per master range %.0f..%.0f (average %.0f) for %d evaluations",
				lo, hi, ops, cfg.RebalanceCycles)}, st
		}
	}
	reason := "all signals within thresholds"
	if len(b.names) > 0 {
		reason = fmt.Sprintf("%s (%d/%d evaluations)", high, st.Up, cfg.UpCycles)
	} else if st.Down > 0 {
		reason = fmt.Sprintf("%s (%d/%d evaluations)", could, st.Down, cfg.DownCycles)
	}
	return Decision{Kind: "none", Reason: reason}, st
}

// drainCandidate picks the master to drain, if the rest keep at least 1.5x
// its used memory free: never a seed of a group member (a proxy started
// later would read the slot map from a reset node), a master the provider
// gave before an original one, then the least memory used.
func drainCandidate(s Sample, cfg PolicyConfig) (string, string) {
	var ms []MasterSample
	for _, m := range s.Masters {
		if !m.Seed {
			ms = append(ms, m)
		}
	}
	if len(ms) == 0 {
		return "", "every master is a seed of a group member (proxy.cluster.seeds)"
	}
	slices.SortFunc(ms, func(a, b MasterSample) int {
		if a.Provided != b.Provided {
			if a.Provided {
				return -1
			}
			return 1
		}
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
	for _, m := range s.Masters {
		if m.Addr == victim.Addr {
			continue
		}
		limit := memLimit(m, cfg)
		if limit == 0 {
			known = false
			break
		}
		free += max(0, limit-m.UsedMemory)
	}
	if known && float64(free) < 1.5*float64(victim.UsedMemory) {
		return "", fmt.Sprintf("the other masters' free memory (%d) is under 1.5x the drained master's %d", free, victim.UsedMemory)
	}
	why := "least memory used"
	if victim.Provided {
		why = "given by the provider, least memory used"
	}
	return victim.Addr, fmt.Sprintf("draining %s (%s)", victim.Addr, why)
}
