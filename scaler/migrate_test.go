package scaler

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slotway/slotway/internal/redistest"
)

func testMover(t *testing.T, c *redistest.Cluster, cfg MigrateConfig) *classicMover {
	nodes := &Nodes{}
	t.Cleanup(nodes.Close)
	return &classicMover{nodes: nodes, seeds: c.Seeds, cfg: cfg, prog: &progress{},
		fence: func(context.Context, Intent) error { return nil }}
}

// OwnerAndOther returns the master of slot and another master (exported
// for the package's external tests too).
func OwnerAndOther(t *testing.T, c *redistest.Cluster, slot int) (src, dst *redistest.Node) {
	t.Helper()
	ctx := context.Background()
	src, err := c.MasterOf(ctx, slot)
	if err != nil {
		t.Fatal(err)
	}
	masters, err := c.Masters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range masters {
		if m != src {
			return src, m
		}
	}
	t.Fatal("one master only")
	return nil, nil
}

// TestBigKeyMovesAlone: a 50 MB key moves by itself with a timeout scaled
// to its size, next to small keys of its slot, and arrives intact.
func TestBigKeyMovesAlone(t *testing.T) {
	c := redistest.New(t, redistest.Options{Masters: 3})
	ctx := context.Background()
	slot := Slot("{big}")
	src, dst := OwnerAndOther(t, c, slot)
	big := strings.Repeat("0123456789", 5<<20) // 50 MB
	if err := src.Client().Set(ctx, "{big}huge", big, 0).Err(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"{big}a", "{big}b", "{big}c"} {
		src.Client().Set(ctx, k, k, 0)
	}
	m := testMover(t, c, MigrateConfig{BatchKeys: 100, BatchBytes: 1 << 20, BigKeyBytes: 8 << 20,
		MigrateTimeout: 2 * time.Second, ReadyWait: 10 * time.Second})
	keys, err := m.moveSlot(ctx, slot, src.ID, dst.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if keys != 4 {
		t.Errorf("moved %d keys, want 4", keys)
	}
	got, err := dst.Client().Get(ctx, "{big}huge").Result()
	if err != nil || len(got) != len(big) || got != big {
		t.Fatalf("the big key on the target: %d bytes, %v", len(got), err)
	}
	if n, _ := src.Client().ClusterCountKeysInSlot(ctx, slot).Result(); n != 0 {
		t.Fatalf("%d keys left on the source", n)
	}
}

// TestMigrateTimeoutStopsTheSlot: a target that does not answer in time
// (its writes paused) makes MIGRATE time out; the slot stops half-open
// with every key on one side or the other, and the fix finishes it.
func TestMigrateTimeoutStopsTheSlot(t *testing.T) {
	c := redistest.New(t, redistest.Options{Masters: 3})
	ctx := context.Background()
	slot := Slot("{slow}")
	src, dst := OwnerAndOther(t, c, slot)
	for i := range 300 {
		src.Client().Set(ctx, "{slow}"+strings.Repeat("k", 1+i%7)+string(rune('a'+i%26))+time.Duration(i).String(), i, 0)
	}
	total, _ := src.Client().ClusterCountKeysInSlot(ctx, slot).Result()
	m := testMover(t, c, MigrateConfig{BatchKeys: 50, MigrateTimeout: 200 * time.Millisecond, ReadyWait: 10 * time.Second})
	if err := dst.Client().Do(ctx, "CLIENT", "PAUSE", 3000, "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	_, err := m.moveSlot(ctx, slot, src.ID, dst.ID, 0)
	if err == nil || !strings.Contains(err.Error(), "MIGRATE") {
		t.Fatalf("moveSlot with a paused target = %v, want a MIGRATE error", err)
	}
	t.Logf("stopped: %v", err)
	if err := dst.Client().Do(ctx, "CLIENT", "UNPAUSE").Err(); err != nil {
		t.Fatal(err)
	}
	a, _ := src.Client().ClusterCountKeysInSlot(ctx, slot).Result()
	b, _ := dst.Client().ClusterCountKeysInSlot(ctx, slot).Result()
	if a+b < total {
		t.Fatalf("keys lost: %d on the source + %d on the target < %d", a, b, total)
	}
	// Finishing from the half-open state (what the fix does).
	if _, err := m.moveSlot(ctx, slot, src.ID, dst.ID, 0); err != nil {
		t.Fatal(err)
	}
	if n, _ := dst.Client().ClusterCountKeysInSlot(ctx, slot).Result(); n != total {
		t.Fatalf("the target holds %d keys, want %d", n, total)
	}
}

// TestMoveWaitsForANewNode: a slot move towards a node that has just been
// introduced waits until every master knows it and it reports ok, instead
// of opening the slot towards a node that still reports fail.
func TestMoveWaitsForANewNode(t *testing.T) {
	c := redistest.New(t, redistest.Options{Masters: 3, Spares: 1})
	ctx := context.Background()
	spare := c.Spares()[0]
	slot := Slot("{join}")
	src, err := c.MasterOf(ctx, slot)
	if err != nil {
		t.Fatal(err)
	}
	src.Client().Set(ctx, "{join}k", "v", 0)
	host, port, _ := splitHostPort(spare.Addr)
	if err := src.Client().ClusterMeet(ctx, host, strconv.Itoa(port)).Err(); err != nil {
		t.Fatal(err)
	}
	// At once, before gossip has spread it.
	m := testMover(t, c, MigrateConfig{BatchKeys: 100, MigrateTimeout: time.Second, ReadyWait: 30 * time.Second})
	if _, err := m.moveSlot(ctx, slot, src.ID, spare.ID, 0); err != nil {
		t.Fatal(err)
	}
	if v, err := spare.Client().Get(ctx, "{join}k").Result(); err != nil || v != "v" {
		t.Fatalf("key on the new node: %q %v", v, err)
	}
}
