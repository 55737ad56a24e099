package proxy_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/proxy"
)

// servesCluster waits until the proxy's slot map has want masters serving
// all 16384 slots, all of them nodes of c.
func servesCluster(t *testing.T, p *testProxy, c *redistest.Cluster, want int) {
	t.Helper()
	var got []proxy.Node
	redistest.WaitFor(t, 30*time.Second, "the proxy to serve the cluster", func() bool {
		got = p.Nodes()
		masters, slots := 0, 0
		for _, n := range got {
			if n.Role != "master" || len(n.Slots) == 0 {
				continue
			}
			if !slices.Contains(c.Seeds(), n.Addr) {
				return false
			}
			masters++
			for _, r := range n.Slots {
				slots += r[1] - r[0] + 1
			}
		}
		return masters == want && slots == 16384
	})
}

// leftSeed waits until addr is listed as a seed that left, with a reason
// containing why.
func leftSeed(t *testing.T, p *testProxy, addr, why string) {
	t.Helper()
	var got []proxy.SeedLeft
	redistest.WaitFor(t, 30*time.Second, "seed "+addr+" reported as left ("+why+")", func() bool {
		got = p.SeedsLeft()
		return len(got) == 1 && got[0].Addr == addr && strings.Contains(got[0].Reason, why)
	})
}

// TestSeedResetNodeFirst: the first seed is a node that knows only itself
// (a spare, as a node is after CLUSTER RESET HARD). It answers first, with
// a view that serves nothing; the proxy must still become ready on the
// cluster the second seed belongs to, and name the first as a seed that
// left.
func TestSeedResetNodeFirst(t *testing.T) {
	// Two masters: with fewer members than first candidates, the seed
	// that left would be among them at every refresh.
	c := redistest.New(t, redistest.Options{Masters: 2, Spares: 1})
	reset := c.Spares()[0]
	p := startProxy(t, c, func(cfg *proxy.Config) {
		cfg.Cluster.Seeds = []string{reset.Addr, c.Seeds()[0]}
	})
	servesCluster(t, p, c, 2)
	ctx := context.Background()
	if err := p.client(t).Set(ctx, "seed:k", "v", 0).Err(); err != nil {
		t.Fatalf("SET through the proxy: %v", err)
	}
	leftSeed(t, p, reset.Addr, "knows only itself")
	if n, _ := reset.Client().DBSize(ctx).Result(); n != 0 {
		t.Errorf("the reset seed holds %d keys", n)
	}
	// Once known to have left, the seed is asked only by the full
	// refreshes (every 30 s): the others end at the first candidates.
	before := shardsCalls(t, reset)
	m0 := shardsCalls(t, c.Nodes()[0])
	ok0 := p.counter(t, "slotway_proxy_topology_refreshes_total", "result", "ok")
	redistest.WaitFor(t, 60*time.Second, "10 more slot-map refreshes", func() bool {
		return p.counter(t, "slotway_proxy_topology_refreshes_total", "result", "ok") >= ok0+10
	})
	t.Logf("in %.0f refreshes: CLUSTER SHARDS on a master %d, on the seed that left %d",
		p.counter(t, "slotway_proxy_topology_refreshes_total", "result", "ok")-ok0, shardsCalls(t, c.Nodes()[0])-m0, shardsCalls(t, reset)-before)
	if d := shardsCalls(t, reset) - before; d > 1 {
		t.Errorf("the seed that left was asked %d times in 10 refreshes, want at most 1", d)
	}
}

// shardsCalls returns how many CLUSTER SHARDS n has served.
func shardsCalls(t *testing.T, n *redistest.Node) int {
	t.Helper()
	info, err := n.Client().Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_cluster|shards:calls="); ok {
			v, _, _ := strings.Cut(rest, ",")
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// TestSeedFromAnotherCluster: the first seed is the master of another
// (healthy, one-node) cluster. The proxy must serve the cluster of the
// other seed, never write to the foreign one, and name the foreign seed.
func TestSeedFromAnotherCluster(t *testing.T) {
	c := redistest.New(t, redistest.Options{Masters: 3})
	other := redistest.New(t, redistest.Options{Masters: 1})
	foreign := other.Nodes()[0]
	p := startProxy(t, c, func(cfg *proxy.Config) {
		cfg.Cluster.Seeds = []string{foreign.Addr, c.Seeds()[0]}
	})
	servesCluster(t, p, c, 3)
	ctx := context.Background()
	pc := p.client(t)
	for i := range 20 {
		if err := pc.Set(ctx, "seed:k"+string(rune('a'+i)), "v", 0).Err(); err != nil {
			t.Fatalf("SET through the proxy: %v", err)
		}
	}
	if n, _ := foreign.Client().DBSize(ctx).Result(); n != 0 {
		t.Errorf("the other cluster got %d keys", n)
	}
	rc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Seeds(), Protocol: 2})
	defer rc.Close()
	if v, err := rc.Get(ctx, "seed:ka").Result(); err != nil || v != "v" {
		t.Errorf("seed:ka in the cluster = %q, %v; want v", v, err)
	}
	leftSeed(t, p, foreign.Addr, "another cluster")
}
