package scaler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/stats"
)

var errCrash = errors.New("leader killed (test)")

// TestLeaderKilledAtEachStep: a leader stops dead right after each step of
// a slot move (after IMPORTING, after MIGRATING, after a MIGRATE batch,
// after the target's and after the source's SETSLOT NODE); the next leader,
// with a newer term, finishes what it left and no key is lost.
func TestLeaderKilledAtEachStep(t *testing.T) {
	c := redistest.New(t, redistest.Options{Masters: 3})
	ctx := context.Background()
	rc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Seeds(), Protocol: 2, MaxRedirects: 16})
	defer rc.Close()
	const n = 20000
	for start := 0; start < n; start += 5000 {
		if _, err := rc.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := start; i < start+5000; i++ {
				p.Set(ctx, fmt.Sprintf("kill:%d", i), i, 0)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	term := uint64(0)
	newScaler := func(name string, step func(string) error) (*Scaler, context.CancelFunc, chan error) {
		term++
		mine := term
		nodes := &Nodes{}
		t.Cleanup(nodes.Close)
		s, err := New(DefaultConfig(), Options{Name: name, Seeds: c.Seeds, Nodes: nodes, Log: log,
			Leader: func() (bool, uint64) { return true, mine }})
		if err != nil {
			t.Fatal(err)
		}
		s.mover.step = step
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- s.Run(sctx) }()
		return s, cancel, done
	}
	waitOp := func(s *Scaler, kind string) stats.Operation {
		var st stats.Operation
		redistest.WaitFor(t, 2*time.Minute, kind+" to end", func() bool {
			st = s.Operation()
			return st.Kind == kind && (st.State == "done" || st.State == "failed")
		})
		return st
	}
	fixedBefore := 0
	for round, step := range []string{"importing", "migrating", "batch", "target_node", "source_node"} {
		masters, err := c.Masters(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Each round drains a different master; the dead leader leaves its
		// first group of slots half-done.
		victim := masters[round%len(masters)].Addr
		a, stopA, doneA := newScaler("leader-a", func(name string) error {
			if name == step {
				return errCrash
			}
			return nil
		})
		waitOp(a, "fix")
		redistest.WaitFor(t, 10*time.Second, "the drain to start", func() bool { return a.Start("drain", 0, victim) == nil })
		st := waitOp(a, "drain")
		if st.State != "failed" || !strings.Contains(st.Error, errCrash.Error()) {
			t.Fatalf("%s: the first leader's drain = %+v", step, st)
		}
		stopA()
		<-doneA
		b, stopB, doneB := newScaler("leader-b", nil)
		if st := waitOp(b, "fix"); st.State != "done" {
			t.Fatalf("%s: the next leader's fix = %+v", step, st)
		}
		v, err := ReadView(ctx, b.opts.Nodes, c.Seeds())
		if err != nil {
			t.Fatal(err)
		}
		for _, nd := range v.Nodes {
			if len(nd.Migrating) > 0 || len(nd.Importing) > 0 {
				t.Fatalf("%s: %s still has markers %v %v", step, nd.Addr, nd.Migrating, nd.Importing)
			}
		}
		if len(v.Disputed) > 0 {
			t.Fatalf("%s: disputed slots %v", step, v.Disputed)
		}
		fixes := 0
		for _, ev := range b.Events(ctx, 200) {
			if ev.Kind == "fix" && ev.Actor == "leader-b" {
				fixes++
			}
		}
		t.Logf("killed after %s: the next leader fixed %d slots", step, fixes-fixedBefore)
		fixedBefore = fixes
		// Give slots back evenly for the next round.
		redistest.WaitFor(t, 10*time.Second, "rebalance to start", func() bool { return b.Start("rebalance", 0, "") == nil })
		if st := waitOp(b, "rebalance"); st.State != "done" {
			t.Fatalf("%s: rebalance = %+v", step, st)
		}
		stopB()
		<-doneB
		fresh := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Seeds(), Protocol: 2, MaxRedirects: 16})
		for i := 0; i < n; i += 97 {
			if v, err := fresh.Get(ctx, fmt.Sprintf("kill:%d", i)).Int(); err != nil || v != i {
				fresh.Close()
				t.Fatalf("%s: key kill:%d = %v, %v", step, i, v, err)
			}
		}
		fresh.Close()
	}
}
