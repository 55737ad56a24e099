package scaler_test

import (
	"context"
	"fmt"
	"math"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/config"
	"github.com/slotway/slotway/internal/hashslot"
	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/proxy"
	"github.com/slotway/slotway/scaler"
)

func proxySlotOps(p *proxy.Server) scaler.SlotOpsFunc {
	return func(context.Context) (map[string][]uint64, error) {
		v := make([]uint64, hashslot.Count)
		p.SlotOps(v)
		return map[string][]uint64{"p": v}, nil
	}
}

// TestAutoscalerRebalancesHotSlots: thirty hash tags of one master
// hammered through Slotway; the autoscaler moves hot slots until every
// master serves within ±10 % of the average.
func TestAutoscalerRebalancesHotSlots(t *testing.T) {
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxyServer(t, c)
	ctx := context.Background()
	hotOwner, err := c.MasterOf(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for i := 0; len(tags) < 30; i++ {
		tag := fmt.Sprintf("hot%d", i)
		if o, err := c.MasterOf(ctx, scaler.Slot(tag)); err == nil && o.Addr == hotOwner.Addr {
			tags = append(tags, tag)
		}
	}
	reg := prometheus.NewRegistry()
	start := time.Now()
	s := startScaler(t, c, func(cfg *scaler.Config) {
		autoConfig(cfg)
		cfg.Thresholds = scaler.Thresholds{} // traffic balance only
		cfg.RebalanceCycles = 3
	}, nil, func(o *scaler.Options) { o.SlotOps, o.Registerer = proxySlotOps(p), reg })
	// Load: every tag once per pipeline, so each hot slot gets the same
	// count. Bounded in time; stops when the test is done.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			rc := redis.NewClient(&redis.Options{Addr: p.Addr().String(), Protocol: 2})
			defer rc.Close()
			deadline := time.Now().Add(4 * time.Minute)
			for time.Now().Before(deadline) {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = rc.Pipelined(ctx, func(pl redis.Pipeliner) error {
					for _, tag := range tags {
						pl.Incr(ctx, "{"+tag+"}:n")
					}
					return nil
				})
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	redistest.WaitFor(t, 3*time.Minute, "a traffic rebalance to succeed", func() bool {
		for _, ev := range s.Events(ctx, 200) {
			if ev.Kind == "scale_success" && ev.Action == "rebalance" {
				return true
			}
			if ev.Kind == "scale_failure" {
				t.Fatalf("rebalance failed: %s", ev.Reason)
			}
		}
		return false
	})
	logTimeline(t, s, start)
	// Per-master traffic now, from the proxy's per-slot counters.
	owner := map[int]string{}
	for _, tag := range tags {
		o, err := c.MasterOf(ctx, scaler.Slot(tag))
		if err != nil {
			t.Fatal(err)
		}
		owner[scaler.Slot(tag)] = o.Addr
	}
	before := make([]uint64, hashslot.Count)
	p.SlotOps(before)
	after := make([]uint64, hashslot.Count)
	redistest.WaitFor(t, time.Minute, "30,000 more commands", func() bool {
		p.SlotOps(after)
		var d uint64
		for slot := range owner {
			d += after[slot] - before[slot]
		}
		return d >= 30_000
	})
	per := map[string]float64{}
	var total float64
	for slot, addr := range owner {
		d := float64(after[slot] - before[slot])
		per[addr] += d
		total += d
	}
	avg := total / 3
	t.Logf("commands per master after the rebalance: %v (average %.0f)", per, avg)
	if len(per) != 3 {
		t.Fatalf("hot slots on %d masters after the rebalance: %v", len(per), per)
	}
	for addr, v := range per {
		if math.Abs(v-avg) > 0.10*avg {
			t.Errorf("%s serves %.0f commands, average %.0f: outside ±10 %%", addr, v, avg)
		}
	}
	if v := metricValue(t, reg, "slotway_scaler_decisions_total", "rebalance"); v < 1 {
		t.Errorf("slotway_scaler_decisions_total{rebalance} = %v", v)
	}
}

// TestAutoscalerNewLeaderFinishes: the leader is stopped (what SIGTERM
// does: its context ends) while its scale out moves slots; the next leader
// finishes that scale out from the event stream — one master added, not
// two, nothing lost.
func TestAutoscalerNewLeaderFinishes(t *testing.T) {
	c := redistest.New(t, redistest.Options{Masters: 3, Spares: 2, ExtraConfig: []string{"maxmemory 20mb"}})
	addr := startProxy(t, c)
	var who atomic.Int32
	who.Store(1)
	leaderIs := func(n int32, term uint64) func() (bool, uint64) {
		return func() (bool, uint64) { return who.Load() == n, term }
	}
	slow := func(cfg *scaler.Config) {
		autoConfig(cfg)
		cfg.Rebalance.MaxKeysPerSecond = 150 // a scale out that lasts seconds
		cfg.Rebalance.BatchKeys = 10
	}
	start := time.Now()
	a := startScaler(t, c, slow, leaderIs(1, 1), func(o *scaler.Options) { o.Name = "a" })
	b := startScaler(t, c, autoConfig, leaderIs(2, 2), func(o *scaler.Options) { o.Name = "b" })
	rc := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2})
	defer rc.Close()
	checked := during(t, addr, func() {
		fill(t, rc, "fill:", fillKeys, 20_000)
		redistest.WaitFor(t, 2*time.Minute, "a's scale out to move slots", func() bool {
			st := a.Operation()
			return st.State == "running" && st.SlotsDone > 0
		})
		a.cancel() // SIGTERM: the instance cancels its components
		redistest.WaitFor(t, time.Minute, "a to stop", func() bool { return a.Operation().State != "running" })
		who.Store(2)
		redistest.WaitFor(t, 3*time.Minute, "b to finish the scale out", func() bool {
			for _, ev := range b.Events(context.Background(), 1000) {
				if ev.Kind == "scale_success" && ev.Actor == "b" {
					return true
				}
			}
			return false
		})
		// More evaluations: no second scale out.
		after := b.AutoStatus().Evaluated.Add(3 * time.Second)
		redistest.WaitFor(t, time.Minute, "more evaluations", func() bool { return b.AutoStatus().Evaluated.After(after) })
	}).String()
	t.Log(checked)
	if !strings.Contains(checked, " lost 0,") || !strings.Contains(checked, "stale 0") {
		t.Errorf("check: %s", checked)
	}
	evs := logTimeline(t, b, start)
	if n := masterCount(t, c); n != 4 {
		t.Errorf("%d masters serve slots; want 4", n)
	}
	if n := countEvents(evs, "decision", "scale_out"); n != 1 {
		t.Errorf("%d scale_out decisions; want 1 (a's)", n)
	}
	if n := countEvents(evs, "resume", "scale_out"); n != 1 {
		t.Errorf("%d resumes; want 1 (b's)", n)
	}
	counts := slotCounts(t, c)
	for a, n := range counts {
		if n < 4000 || n > 4200 {
			t.Errorf("%s has %d slots: %v", a, n, counts)
		}
	}
}

// TestAutoscalerDryRunPauseAndFailure: dry-run decides without acting;
// pause holds; a scale out with no spare node fails and the webhook says
// so.
func TestAutoscalerDryRunPauseAndFailure(t *testing.T) {
	c := redistest.New(t, redistest.Options{Masters: 3, ExtraConfig: []string{"maxmemory 20mb"}})
	addr := startProxy(t, c)
	hook := &hookReceiver{}
	hs := httptest.NewServer(hook)
	defer hs.Close()
	reg := prometheus.NewRegistry()
	s := startScaler(t, c, func(cfg *scaler.Config) {
		autoConfig(cfg)
		cfg.DryRun = true
		cfg.Notify.Webhook = hs.URL
	}, nil, func(o *scaler.Options) { o.Registerer = reg })
	rc := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2})
	defer rc.Close()
	fill(t, rc, "fill:", fillKeys, 20_000)
	redistest.WaitFor(t, time.Minute, "a dry-run scale out", func() bool {
		return metricValue(t, reg, "slotway_scaler_actions_total", "scale_out", "dry_run") >= 1
	})
	if n := masterCount(t, c); n != 3 {
		t.Fatalf("dry run changed the cluster: %d masters", n)
	}
	if err := s.Control("pause", false); err != nil {
		t.Fatal(err)
	}
	redistest.WaitFor(t, 30*time.Second, "the pause to show", func() bool {
		st := s.AutoStatus()
		return st.Paused && strings.Contains(st.Hold, "paused")
	})
	if err := s.Control("dry_run", false); err != nil {
		t.Fatal(err)
	}
	if err := s.Control("resume", false); err != nil {
		t.Fatal(err)
	}
	redistest.WaitFor(t, time.Minute, "the scale out to fail (no spare node)", func() bool {
		return metricValue(t, reg, "slotway_scaler_actions_total", "scale_out", "failed") >= 1
	})
	redistest.WaitFor(t, 30*time.Second, "the webhook to get the failure", func() bool { return hook.kinds()["scale_failure"] >= 1 })
	if st := s.AutoStatus(); st.Paused || st.DryRun {
		t.Errorf("flags after resume: paused %v dry_run %v", st.Paused, st.DryRun)
	}
}

// TestAutoscalerVerticalPlan: with a plans ladder, memory pressure first
// raises maxmemory on every node to the next plan; no master is added.
func TestAutoscalerVerticalPlan(t *testing.T) {
	c := redistest.New(t, redistest.Options{Masters: 3, Replicas: 1, ExtraConfig: []string{"maxmemory 20mb"}})
	addr := startProxy(t, c)
	s := startScaler(t, c, func(cfg *scaler.Config) {
		autoConfig(cfg)
		cfg.Plans = []config.ByteSize{20 << 20, 40 << 20}
	}, nil)
	rc := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2})
	defer rc.Close()
	fill(t, rc, "fill:", fillKeys, 20_000)
	ctx := context.Background()
	redistest.WaitFor(t, time.Minute, "maxmemory 40mb on every node", func() bool {
		for _, n := range c.Nodes() {
			v, err := n.Client().ConfigGet(ctx, "maxmemory").Result()
			if err != nil || v["maxmemory"] != strconv.Itoa(40<<20) {
				return false
			}
		}
		return true
	})
	redistest.WaitFor(t, time.Minute, "the vertical step to be reported", func() bool {
		for _, ev := range s.Events(ctx, 100) {
			if ev.Kind == "scale_success" && ev.Action == "vertical_up" {
				return true
			}
		}
		return false
	})
	if n := masterCount(t, c); n != 3 {
		t.Errorf("%d masters after a vertical step; want 3", n)
	}
}
