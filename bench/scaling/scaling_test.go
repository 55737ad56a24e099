// Package scaling measures slot migration: keys/s moved and the latency a
// client sees through Slotway while it happens, for `redis-cli --cluster
// rebalance` and for Slotway's scaler, on the same data in the same run.
//
//	KEYS=200000 go test -run '^$' -bench Scaling -benchtime 1x -v ./bench/scaling
//
// Each contender scales a fresh 3-master cluster (plus one empty spare) to
// 4 masters while `slotway check` runs through a Slotway proxy; an idle
// check first gives the baseline p99. Environment: KEYS (200000), VALUE
// (bytes, 64), RATE (check writes/s, 1000).
package scaling_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/check"
	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/proxy"
	"github.com/slotway/slotway/scaler"
	"github.com/slotway/slotway/stats"
	"sync"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func BenchmarkScaling(b *testing.B) {
	if _, err := exec.LookPath("redis-cli"); err != nil {
		b.Skip("redis-cli not found (apt-get install -y redis-tools)")
	}
	keys, value, rate := envInt("KEYS", 200000), envInt("VALUE", 64), envInt("RATE", 1000)
	var rows []string
	for range b.N {
		for _, who := range []string{"redis-cli", "slotway"} {
			rows = append(rows, run(b, who, keys, value, rate))
		}
	}
	fmt.Printf("\n%-10s %10s %10s %10s %12s %12s %12s %s\n", "who", "keys", "seconds", "keys/s", "idle p99", "move p99", "move max", "check")
	for _, r := range rows {
		fmt.Println(r)
	}
}

func run(t *testing.B, who string, nkeys, valueSize, rate int) string {
	c := redistest.New(t, redistest.Options{Masters: 3, Spares: 1})
	ctx := context.Background()
	rc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Seeds(), Protocol: 2})
	defer rc.Close()
	val := strings.Repeat("v", valueSize)
	for start := 0; start < nkeys; start += 10000 {
		if _, err := rc.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := start; i < min(nkeys, start+10000); i++ {
				p.Set(ctx, "bench:"+strconv.Itoa(i), val, 0)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	pcfg := proxy.DefaultConfig()
	pcfg.Listen = "127.0.0.1:0"
	pcfg.Cluster.Seeds = c.Seeds()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p, err := proxy.New(pcfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	go p.Run(pctx)
	redistest.WaitFor(t, 20*time.Second, "proxy ready", p.Ready)
	addr := p.Addr().String()
	idle, err := check.Run(ctx, check.Config{Addr: addr, Rate: rate, Duration: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}

	spare := c.Spares()[0].Addr
	var moved int64
	var took time.Duration
	cctx, cstop := context.WithCancel(ctx)
	res := make(chan check.Result, 1)
	started := make(chan struct{})
	var once sync.Once
	go func() {
		r, _ := check.Run(cctx, check.Config{Addr: addr, Rate: rate,
			Progress: func(check.Progress) { once.Do(func() { close(started) }) }})
		once.Do(func() { close(started) })
		res <- r
	}()
	<-started // a second of traffic before the move
	switch who {
	case "redis-cli":
		out, err := exec.Command("redis-cli", "--cluster", "add-node", spare, c.Seeds()[0]).CombinedOutput()
		if err != nil {
			t.Fatalf("add-node: %v\n%s", err, out)
		}
		// Let every node know the new one before rebalancing (redis-cli
		// itself does not wait).
		redistest.WaitFor(t, 30*time.Second, "every node to know the new node", func() bool {
			for _, n := range c.Nodes() {
				if out, err := n.Client().ClusterNodes(ctx).Result(); err != nil || !strings.Contains(out, spare) {
					return false
				}
			}
			return true
		})
		start := time.Now()
		out, err = exec.Command("redis-cli", "--cluster", "rebalance", c.Seeds()[0], "--cluster-use-empty-masters").CombinedOutput()
		if err != nil {
			t.Fatalf("rebalance: %v\n%s", err, out)
		}
		took = time.Since(start)
		moved, _ = c.Spares()[0].Client().DBSize(ctx).Result()
	default:
		cfg := scaler.DefaultConfig()
		cfg.Provider.Pool = []string{spare}
		nodes := &scaler.Nodes{}
		defer nodes.Close()
		s, err := scaler.New(cfg, scaler.Options{Name: "bench", Seeds: c.Seeds, Nodes: nodes, Log: log})
		if err != nil {
			t.Fatal(err)
		}
		sctx, sstop := context.WithCancel(ctx)
		defer sstop()
		go s.Run(sctx)
		redistest.WaitFor(t, time.Minute, "the scaler to accept the operation", func() bool { return s.Start("scale", 4, "") == nil })
		var st stats.Operation
		redistest.WaitFor(t, 10*time.Minute, "the scale-out to end", func() bool {
			st = s.Operation()
			return st.Kind == "scale" && (st.State == "done" || st.State == "failed")
		})
		if st.State == "failed" {
			t.Fatalf("scale: %s", st.Error)
		}
		// Rebalancing time: from the first slot move to the end, as
		// redis-cli's rebalance is timed after add-node.
		took, moved = st.Ended.Sub(st.Moving), st.Keys
	}
	cstop()
	during := <-res
	summary := strings.SplitN(during.String(), "\n", 2)[0]
	return fmt.Sprintf("%-10s %10d %10.1f %10.0f %12v %12v %12v %s", who, moved, took.Seconds(), float64(moved)/took.Seconds(),
		idle.P99, during.P99, during.Max, summary)
}
