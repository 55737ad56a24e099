package scaler_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/ownkeys"
	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/scaler"
)

// groupTerms stands in for the HA group's metadata (ha.Group's LeaseTerm
// and NoteLeaseTerm): every instance of the test sees the same maximum, as
// the members do once their heartbeats have crossed.
type groupTerms struct {
	mu  sync.Mutex
	max uint64
}

func (g *groupTerms) LeaseTerm() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.max
}

func (g *groupTerms) NoteLeaseTerm(term uint64) {
	g.mu.Lock()
	g.max = max(g.max, term)
	g.mu.Unlock()
}

// TestLeaseFencingSurvivesFlush: someone flushes the node holding the
// lease directly (not through the proxy), so the lease's key and its term
// are gone; a deposed leader (term 5, while the group has seen 6) still
// cannot take the lease, and the current leader keeps it.
func TestLeaseFencingSurvivesFlush(t *testing.T) {
	c := redistest.New(t, redistest.Options{Masters: 3})
	rc := clusterClient(t, c)
	ctx := context.Background()
	group := &groupTerms{}
	instance := func(name string) func(*scaler.Options) {
		return func(o *scaler.Options) { o.Name, o.Terms = name, group }
	}
	leader := startScaler(t, c, nil, func() (bool, uint64) { return true, 6 }, instance("p2"))
	redistest.WaitFor(t, 30*time.Second, "the leader to take the lease at term 6", func() bool {
		return rc.HGet(ctx, ownkeys.Lease, "term").Val() == "6"
	})
	// The deposed leader still believes it leads, with its old term.
	deposed := startScaler(t, c, nil, func() (bool, uint64) { return true, 5 }, instance("p1"))
	if st := deposed.run(t, "fix", 0, ""); st.State != "failed" || !strings.Contains(st.Error, "fenced") {
		t.Fatalf("deposed leader's operation before the flush = %+v, want failed: fenced", st)
	}

	m, err := rc.MasterForKey(ctx, ownkeys.Lease)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if n := rc.Exists(ctx, ownkeys.Lease).Val(); n != 0 {
		t.Fatalf("the lease survived a direct FLUSHALL (%d)", n)
	}

	if st := deposed.run(t, "fix", 0, ""); st.State != "failed" || !strings.Contains(st.Error, "fenced") {
		t.Errorf("deposed leader's operation after the flush = %+v, want failed: fenced", st)
	}
	if term, err := rc.HGet(ctx, ownkeys.Lease, "term").Result(); err != redis.Nil {
		t.Errorf("after the flush the deposed leader wrote the lease: term %q, %v", term, err)
	}
	if st := leader.run(t, "fix", 0, ""); st.State == "failed" {
		t.Errorf("leader's operation after the flush = %+v, want it to run", st)
	}
	if term := rc.HGet(ctx, ownkeys.Lease, "term").Val(); term != "6" {
		t.Errorf("lease term after the leader renewed = %q, want 6", term)
	}
}
