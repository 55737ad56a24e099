package scaler

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slotway/slotway/internal/config"
)

// trace is one file under testdata/traces. After `#` comments and
// directives comes the header `t_seconds,memory_pct_total,ops_total`, then
// one evaluation a line: the load of the whole cluster (memory in % of one
// master's starting maxmemory, ops per second), spread evenly over however
// many masters the decisions so far have left. Directives, before the
// header:
//
//	# config: max_masters=4 max_step=3 plans=100mb,200mb  (knobs over DefaultPolicy)
//	# masters: 3          (at the start; default 3)
//	# maxmemory: 100mb    (each master's at the start; default 100mb)
//	# want: t=120 scale_out   (one per expected action, in order; or "none")
//	# want_masters: 4     (the master count at the end; optional)
type trace struct {
	cfg         PolicyConfig
	masters     int
	maxMemory   int64
	rows        [][3]float64
	want        []string
	wantMasters int
}

func loadTrace(t *testing.T, path string) trace {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tr := trace{cfg: DefaultPolicy(), masters: 3, maxMemory: 100 << 20}
	var header, wantSeen bool
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		fail := func(err error) {
			if err != nil {
				t.Fatalf("%s:%d: %v", path, i+1, err)
			}
		}
		key, val, directive := strings.Cut(strings.TrimPrefix(line, "#"), ":")
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch {
		case line == "":
		case strings.HasPrefix(line, "#") && directive && !header && !strings.Contains(key, " "):
			switch key {
			case "config":
				for _, kv := range strings.Fields(val) {
					fail(setKnob(&tr.cfg, kv))
				}
			case "masters":
				tr.masters, err = strconv.Atoi(val)
				fail(err)
			case "maxmemory":
				b, err := config.ParseByteSize(val)
				fail(err)
				tr.maxMemory = int64(b)
			case "want":
				if wantSeen = true; val != "none" {
					tr.want = append(tr.want, val)
				}
			case "want_masters":
				tr.wantMasters, err = strconv.Atoi(val)
				fail(err)
			default:
				fail(fmt.Errorf("unknown directive %q", key))
			}
		case strings.HasPrefix(line, "#"):
		case !header:
			if line != "t_seconds,memory_pct_total,ops_total" {
				fail(fmt.Errorf("header is %q", line))
			}
			header = true
		default:
			f := strings.Split(line, ",")
			if len(f) != 3 {
				fail(fmt.Errorf("want 3 fields, got %q", line))
			}
			var row [3]float64
			for j := range row {
				row[j], err = strconv.ParseFloat(strings.TrimSpace(f[j]), 64)
				fail(err)
			}
			tr.rows = append(tr.rows, row)
		}
	}
	if !header || len(tr.rows) == 0 || !wantSeen {
		t.Fatalf("%s: needs a header, rows and a `# want:` line (header %v, %d rows)", path, header, len(tr.rows))
	}
	return tr
}

// setKnob sets one name=value from a `# config:` line, by the YAML name.
func setKnob(cfg *PolicyConfig, kv string) error {
	k, v, _ := strings.Cut(kv, "=")
	ints := map[string]*int{"min_masters": &cfg.MinMasters, "max_masters": &cfg.MaxMasters, "max_step": &cfg.MaxStep,
		"up_cycles": &cfg.UpCycles, "down_cycles": &cfg.DownCycles, "rebalance_cycles": &cfg.RebalanceCycles}
	durs := map[string]*time.Duration{"stabilization": &cfg.Stabilization, "up_cooldown": &cfg.UpCooldown, "down_cooldown": &cfg.DownCooldown}
	var err error
	switch {
	case ints[k] != nil:
		*ints[k], err = strconv.Atoi(v)
	case durs[k] != nil:
		*durs[k], err = time.ParseDuration(v)
	case k == "plans":
		for _, p := range strings.Split(v, ",") {
			b, err := config.ParseByteSize(p)
			if err != nil {
				return err
			}
			cfg.Plans = append(cfg.Plans, int64(b))
		}
	default:
		return fmt.Errorf("unknown config knob %q", kv)
	}
	return err
}

// replay feeds a trace to the policy, applying its decisions to the
// simulated cluster. It returns the actions as "t=<s> <kind>" and the
// final master count.
func replay(t *testing.T, tr trace) ([]string, int) {
	t.Helper()
	var st PolicyState
	var actions []string
	masters, maxmem := tr.masters, tr.maxMemory
	start := time.Unix(1_700_000_000, 0)
	for _, r := range tr.rows {
		sec, mem, ops := int(r[0]), r[1], r[2]
		s := Sample{Time: start.Add(time.Duration(sec) * time.Second)}
		for i := range masters {
			s.Masters = append(s.Masters, MasterSample{Addr: fmt.Sprintf("10.0.0.%d:6379", i+1),
				UsedMemory: int64(mem / float64(masters) / 100 * float64(tr.maxMemory)), MaxMemory: maxmem, Ops: ops / float64(masters)})
		}
		var d Decision
		d, st = Decide(tr.cfg, st, s)
		switch d.Kind {
		case "scale_out":
			masters += d.Count
		case "scale_in":
			masters--
		case "vertical":
			maxmem = d.MaxMemory
		}
		if d.Kind != "none" {
			actions = append(actions, fmt.Sprintf("t=%d %s", sec, d.Kind))
			t.Logf("t=%d: %s (%s)", sec, d.Kind, d.Reason)
		}
	}
	return actions, masters
}

func actionAt(t *testing.T, action string) time.Duration {
	var sec int
	if _, err := fmt.Sscanf(action, "t=%d", &sec); err != nil {
		t.Fatalf("action %q: %v", action, err)
	}
	return time.Duration(sec) * time.Second
}

func TestPolicyTraceFiles(t *testing.T) {
	// Assertions beyond the timeline, which a retuned trace must still meet.
	extra := map[string]func(t *testing.T, tr trace, acts []string){
		"noise_band.csv": func(t *testing.T, tr trace, acts []string) {
			for i := 1; i < len(acts); i++ {
				if actionAt(t, acts[i])-actionAt(t, acts[i-1]) < tr.cfg.UpCooldown {
					t.Errorf("actions %v closer than up_cooldown", acts)
				}
			}
		},
		"falling.csv": func(t *testing.T, tr trace, acts []string) {
			// The trace starts above threshold; stabilization must pass first.
			for _, a := range acts {
				if strings.HasSuffix(a, "scale_in") && actionAt(t, a) < tr.cfg.Stabilization {
					t.Errorf("%s: before the stabilization window (%v)", a, tr.cfg.Stabilization)
				}
			}
		},
	}
	files, err := filepath.Glob(filepath.Join("testdata", "traces", "*.csv"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no traces: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			tr := loadTrace(t, f)
			acts, n := replay(t, tr)
			if !slices.Equal(acts, tr.want) {
				t.Errorf("actions (-want +got):\n-%q\n+%q", tr.want, acts)
			}
			if tr.wantMasters != 0 && n != tr.wantMasters {
				t.Errorf("masters at the end: got %d, want %d", n, tr.wantMasters)
			}
			if check := extra[filepath.Base(f)]; check != nil {
				check(t, tr, acts)
			}
		})
	}
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

func TestDecideVertical(t *testing.T) {
	const mb = 1 << 20
	now := time.Unix(1_700_000_000, 0)
	// at makes one master per used size (MB), all at maxmemory maxmem.
	at := func(maxmem int64, used ...int64) []MasterSample {
		var ms []MasterSample
		for i, u := range used {
			ms = append(ms, MasterSample{Addr: fmt.Sprintf("m%d", i), UsedMemory: u * mb, MaxMemory: maxmem, Ops: 1})
		}
		return ms
	}
	busy := at(100*mb, 88, 88, 88)
	for i := range busy {
		busy[i].Ops = 80000
	}
	for _, tc := range []struct {
		name      string
		masters   []MasterSample
		edit      func(*PolicyConfig)
		st        PolicyState
		kind      string
		maxMemory int64
		reason    string
	}{
		{name: "memory over climbs to the next plan", masters: at(100*mb, 88, 88, 88), kind: "vertical", maxMemory: 200 * mb,
			reason: "memory% 88 > 75 for 1 evaluations; raising maxmemory 100mb -> 200mb"},
		{name: "between plans climbs to the one above", masters: at(150*mb, 132, 132, 132), kind: "vertical", maxMemory: 200 * mb,
			reason: "150mb -> 200mb"},
		{name: "at max_masters still climbs", masters: at(100*mb, 88, 88, 88), edit: func(c *PolicyConfig) { c.MaxMasters = 3 },
			kind: "vertical", maxMemory: 200 * mb},
		{name: "emergency climbs at once", masters: at(100*mb, 97, 50, 50), edit: func(c *PolicyConfig) { c.UpCycles = 3 },
			kind: "vertical", maxMemory: 200 * mb, reason: "memory emergency: a master at 97% (>= 95%); raising"},
		{name: "up_cooldown holds a climb", masters: at(100*mb, 88, 88, 88), st: PolicyState{LastUp: now.Add(-time.Minute)},
			kind: "none", reason: "wants a larger maxmemory"},
		{name: "top plan reached scales out", masters: at(400*mb, 352, 352, 352), kind: "scale_out",
			reason: "no usable plan above maxmemory 400mb"},
		{name: "a plan beyond node_memory is not used", masters: at(200*mb, 176, 176, 176),
			edit: func(c *PolicyConfig) { c.NodeMemory = 300 * mb }, kind: "scale_out"},
		{name: "ops over as well scales out", masters: busy, kind: "scale_out"},
		{name: "maxmemory 0 has no rung to climb from", masters: at(0, 88, 88, 88),
			edit: func(c *PolicyConfig) { c.NodeMemory = 100 * mb }, kind: "scale_out"},
		{name: "scale in tries the lower plan first", masters: at(200*mb, 40, 40, 40, 40), kind: "vertical", maxMemory: 100 * mb,
			reason: "(peak 40%) for 1 evaluations; lowering maxmemory 200mb -> 100mb"},
		{name: "at min_masters the lower plan alone steps down", masters: at(200*mb, 40, 40, 40), kind: "vertical", maxMemory: 100 * mb},
		{name: "lower plan refused when it would breach the margin", masters: at(200*mb, 60, 60, 60, 60), kind: "scale_in"},
		{name: "lower plan judged per master, not on average", masters: at(200*mb, 60, 10, 10), kind: "none",
			reason: "all signals within thresholds"},
		{name: "without plans scale in removes a master", masters: at(200*mb, 40, 40, 40, 40),
			edit: func(c *PolicyConfig) { c.Plans = nil }, kind: "scale_in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultPolicy()
			cfg.UpCycles, cfg.DownCycles, cfg.Stabilization, cfg.DownCooldown = 1, 1, 0, 0
			cfg.Plans = []int64{100 * mb, 200 * mb, 400 * mb}
			if tc.edit != nil {
				tc.edit(&cfg)
			}
			d, st := Decide(cfg, tc.st, Sample{Time: now, Masters: tc.masters})
			if d.Kind != tc.kind || d.MaxMemory != tc.maxMemory || !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("got %s maxmemory %d (%s); want %s maxmemory %d with %q", d.Kind, d.MaxMemory, d.Reason, tc.kind, tc.maxMemory, tc.reason)
			}
			// A climb counts as a scale-out for the cooldowns, a step down as a scale-in.
			if d.Kind == "vertical" {
				up := d.MaxMemory > tc.masters[0].MaxMemory
				if st.LastUp.Equal(now) != up || st.LastDown.Equal(now) == up {
					t.Fatalf("after %s: LastUp %v, LastDown %v", d.Reason, st.LastUp, st.LastDown)
				}
			}
		})
	}
}

func TestDecideSignals(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	cfg := DefaultPolicy()
	d, _ := Decide(cfg, PolicyState{}, Sample{Time: now, Masters: []MasterSample{
		{Addr: "a", UsedMemory: 80, MaxMemory: 100, Clients: 10, MaxClients: 100, Ops: 120000, CPUPct: 10},
		{Addr: "b", UsedMemory: 90, MaxMemory: 100, Clients: 30, MaxClients: 100, Ops: 80000, CPUPct: 30}}})
	want := []SignalValue{
		{Name: "memory_pct", Average: 85, Peak: 90, Threshold: 75, PerMaster: map[string]float64{"a": 80, "b": 90}},
		{Name: "clients_pct", Average: 20, Peak: 30, Threshold: 80, PerMaster: map[string]float64{"a": 10, "b": 30}},
		{Name: "ops_per_master", Average: 100000, Peak: 120000, Threshold: 50000, PerMaster: map[string]float64{"a": 120000, "b": 80000}},
		{Name: "cpu_pct", Average: 20, Peak: 30, Threshold: 70, PerMaster: map[string]float64{"a": 10, "b": 30}},
	}
	if !reflect.DeepEqual(d.Signals, want) {
		t.Errorf("signals (-want +got):\n-%+v\n+%+v", want, d.Signals)
	}
	if w := []string{"memory_pct", "ops_per_master"}; !slices.Equal(d.Breached, w) {
		t.Errorf("breached = %q, want %q", d.Breached, w)
	}

	// Signals off say why; 80 % memory is within the tolerance of 75.
	cfg.Thresholds.CPUPct = 0
	bare := Sample{Time: now, Masters: []MasterSample{{Addr: "a", UsedMemory: 80}}}
	d, _ = Decide(cfg, PolicyState{}, bare)
	off := []string{"maxmemory is 0 and scaler.node_memory is not set", "no master reports maxclients", "", "scaler.thresholds.cpu_pct is 0"}
	for i, v := range d.Signals {
		if v.Off != off[i] {
			t.Errorf("%s off = %q, want %q", v.Name, v.Off, off[i])
		}
	}
	cfg.NodeMemory = 100
	if d, _ = Decide(cfg, PolicyState{}, bare); d.Signals[sigMemory].Off != "" || d.Signals[sigMemory].Average != 80 || d.Breached != nil {
		t.Errorf("memory from node_memory: %+v, breached %q", d.Signals[sigMemory], d.Breached)
	}

	// Measured on the emergency path too; not when holding.
	hot := Sample{Time: now, Masters: []MasterSample{{Addr: "a", UsedMemory: 97, MaxMemory: 100}}}
	if d, _ = Decide(cfg, PolicyState{}, hot); d.Kind != "scale_out" || len(d.Signals) != 4 || !slices.Equal(d.Breached, []string{"memory_pct"}) {
		t.Errorf("emergency: %s, %d signals, breached %q", d.Kind, len(d.Signals), d.Breached)
	}
	hot.Hold = "cluster_state is fail"
	if d, _ = Decide(cfg, PolicyState{}, hot); d.Signals != nil || d.Breached != nil {
		t.Errorf("holding reported signals %+v", d.Signals)
	}
}
