package scaler_test

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/proxy"
	"github.com/slotway/slotway/scaler"
)

// startSeededProxy runs a proxy with the given seeds until the test ends;
// ready says whether to wait until it is ready.
func startSeededProxy(t *testing.T, seeds []string, ready bool) *proxy.Server {
	t.Helper()
	cfg := proxy.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Cluster.Seeds = seeds
	cfg.HealthInterval = 200 * time.Millisecond
	cfg.Cluster.RefreshInterval = 200 * time.Millisecond
	level := slog.LevelWarn
	if os.Getenv("SLOTWAY_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	p, err := proxy.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("proxy: %v", err)
		}
	})
	if ready {
		redistest.WaitFor(t, 20*time.Second, "proxy with seeds "+seeds[0]+",... ready", p.Ready)
	}
	return p
}

func withMemberSeeds(seeds ...string) func(*scaler.Options) {
	return func(o *scaler.Options) {
		o.MemberSeeds = func(context.Context) []string { return seeds }
	}
}

func servedBy(p *proxy.Server) int {
	n := 0
	for _, nd := range p.Nodes() {
		if nd.Role == "master" {
			for _, r := range nd.Slots {
				n += r[1] - r[0] + 1
			}
		}
	}
	return n
}

// TestResetSeedAfterOutage is issue 12's scenario with real processes:
// seeds [A, B]; scale 4, then A (an original master and the first seed)
// is drained and reset; every master is killed and restarted. Then the
// proxy must serve again (it stayed on A's empty map and answered
// CLUSTERDOWN until stopped), and a fresh proxy with seeds [A, B] must
// become ready (it never did: "no master to read the command table from").
func TestResetSeedAfterOutage(t *testing.T) {
	c := redistest.New(t, redistest.Options{Masters: 3, Spares: 1})
	a, b := c.Seeds()[0], c.Seeds()[1]
	p := startSeededProxy(t, []string{a, b}, true)
	// A and B are seeds: only a drain that names A may drain it.
	s := startScaler(t, c, nil, nil, withMemberSeeds(a, b))
	if st := s.run(t, "scale", 4, ""); st.State != "done" {
		t.Fatalf("scale 4: %+v", st)
	}
	if st := s.run(t, "drain", 0, a); st.State != "done" {
		t.Fatalf("drain %s: %+v", a, st)
	}
	ctx := context.Background()
	masters, err := c.Masters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(masters) != 3 {
		t.Fatalf("%d masters after the drain, want 3", len(masters))
	}
	redistest.WaitFor(t, 30*time.Second, "the proxy to drop the drained seed", func() bool {
		for _, n := range p.Nodes() {
			if n.Addr == a {
				return false
			}
		}
		return servedBy(p) == 16384
	})

	for _, m := range masters {
		if err := c.Kill(m); err != nil {
			t.Fatal(err)
		}
	}
	// Only the reset seed answers now: the proxy takes its empty map
	// (nothing else answers) — the state the instance got stuck in.
	redistest.WaitFor(t, 30*time.Second, "the proxy to see no slot served during the outage", func() bool {
		return servedBy(p) == 0
	})
	for _, m := range masters {
		if err := c.Restart(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	redistest.WaitFor(t, 60*time.Second, "cluster_state:ok on the restarted masters", func() bool {
		for _, m := range masters {
			info, err := m.Client().ClusterInfo(ctx).Result()
			if err != nil || !containsLine(info, "cluster_state:ok") {
				return false
			}
		}
		return true
	})
	pc := redis.NewClient(&redis.Options{Addr: p.Addr().String(), MaxRetries: -1})
	defer pc.Close()
	var lastErr error
	redistest.WaitFor(t, 60*time.Second, "SET through the proxy after the outage", func() bool {
		lastErr = pc.Set(ctx, "outage:k", "v", 0).Err()
		return lastErr == nil
	})
	if servedBy(p) != 16384 {
		t.Errorf("the proxy serves %d slots, want 16384", servedBy(p))
	}
	// A fresh instance with the same seeds becomes ready and serves.
	fresh := startSeededProxy(t, []string{a, b}, true)
	fc := redis.NewClient(&redis.Options{Addr: fresh.Addr().String(), MaxRetries: -1})
	defer fc.Close()
	if v, err := fc.Get(ctx, "outage:k").Result(); err != nil || v != "v" {
		t.Errorf("GET through a fresh proxy = %q, %v", v, err)
	}
	redistest.WaitFor(t, 30*time.Second, "the fresh proxy to name the reset seed", func() bool {
		left := fresh.SeedsLeft()
		return len(left) == 1 && left[0].Addr == a
	})
}

func containsLine(s, line string) bool {
	for l := range strings.SplitSeq(s, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}

// TestScaleInSparesSeeds: 3 masters with seeds [A, B], scale 4 then scale
// 3. The master the provider gave is drained, although it holds the most
// keys; the seeds (and the other original master) stay. Before, the
// master with the fewest keys went, a seed included.
func TestScaleInSparesSeeds(t *testing.T) {
	c := redistest.New(t, redistest.Options{Masters: 3, Spares: 1})
	a, b := c.Seeds()[0], c.Seeds()[1]
	given := c.Spares()[0]
	s := startScaler(t, c, nil, nil, withMemberSeeds(a, b))
	if st := s.run(t, "scale", 4, ""); st.State != "done" {
		t.Fatalf("scale 4: %+v", st)
	}
	ctx := context.Background()
	ranges, err := c.SlotRanges(ctx, given)
	if err != nil || len(ranges) == 0 {
		t.Fatalf("slots of the new master %s: %v, %v", given.Addr, ranges, err)
	}
	owns := func(slot int64) bool {
		for _, r := range ranges {
			if int64(r.Start) <= slot && slot <= int64(r.End) {
				return true
			}
		}
		return false
	}
	gc := given.Client()
	for i, written := 0, 0; written < 300; i++ {
		key := "given:" + strconv.Itoa(i)
		slot, err := gc.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if !owns(slot) {
			continue
		}
		if err := gc.Set(ctx, key, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		written++
	}
	if st := s.run(t, "scale", 3, ""); st.State != "done" {
		t.Fatalf("scale 3: %+v", st)
	}
	masters, err := c.Masters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range masters {
		got = append(got, m.Addr)
	}
	for _, want := range c.Seeds()[:3] {
		if !slices.Contains(got, want) {
			t.Errorf("original master %s was drained (masters now %v; the provider gave %s)", want, got, given.Addr)
		}
	}
	if slices.Contains(got, given.Addr) {
		t.Errorf("the master the provider gave (%s) is still a master: %v", given.Addr, got)
	}
}
