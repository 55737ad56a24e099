package redistest_test

import (
	"errors"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/internal/testutil"
)

// crc16 is CRC-16/XMODEM, the Redis Cluster key hash.
func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// tagForSlot returns a hashtag whose keys ("{tag}...") hash to slot.
func tagForSlot(t *testing.T, slot int) string {
	t.Helper()
	for i := range 1 << 20 {
		tag := "k" + strconv.Itoa(i)
		if int(crc16([]byte(tag))%16384) == slot {
			return tag
		}
	}
	t.Fatalf("no hashtag found for slot %d", slot)
	return ""
}

func slotCount(rs []redistest.SlotRange) int {
	n := 0
	for _, r := range rs {
		n += r.Len()
	}
	return n
}

func TestCluster(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		// New decides between skip and fail; the goroutine baseline below
		// is only meaningful when it runs.
		redistest.New(t, redistest.Options{})
	}
	noLeak := testutil.NoNewGoroutines(t, 0)
	ctx := t.Context()

	c := redistest.New(t, redistest.Options{Masters: 3, Replicas: 1, Spares: 2})

	nodes := c.Nodes()
	if got, want := len(nodes), 8; got != want {
		t.Fatalf("len(Nodes()) = %d, want %d", got, want)
	}
	if got, want := len(c.Seeds()), 6; got != want {
		t.Fatalf("len(Seeds()) = %d, want %d", got, want)
	}
	if got, want := len(c.Spares()), 2; got != want {
		t.Fatalf("len(Spares()) = %d, want %d", got, want)
	}
	for _, n := range nodes {
		if !n.Alive() || n.PID() <= 0 || len(n.ID) != 40 || n.Addr != "127.0.0.1:"+strconv.Itoa(n.Port) {
			t.Errorf("node %+v: alive=%v pid=%d", n, n.Alive(), n.PID())
		}
	}
	for _, s := range c.Spares() {
		out, err := s.Client().ClusterNodes(ctx).Result()
		if err != nil {
			t.Fatalf("CLUSTER NODES on spare %s: %v", s.Addr, err)
		}
		if got := strings.Count(strings.TrimSpace(out), "\n") + 1; got != 1 {
			t.Errorf("spare %s knows %d nodes, want only itself:\n%s", s.Addr, got, out)
		}
	}

	masters, err := c.Masters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(masters) != 3 {
		t.Fatalf("len(Masters()) = %d, want 3", len(masters))
	}
	total := 0
	for i, m := range masters {
		rs, err := c.SlotRanges(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		n := slotCount(rs)
		total += n
		if n < 5461 || n > 5462 {
			t.Errorf("master %d (%s) serves %d slots %v, want 5461 or 5462", i, m.Addr, n, rs)
		}
		if want := i * 16384 / 3; len(rs) != 1 || rs[0].Start != want {
			t.Errorf("master %d (%s) slots %v, want one range from %d", i, m.Addr, rs, want)
		}
		reps, err := c.Replicas(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		if len(reps) != 1 {
			t.Errorf("master %s has %d replicas, want 1", m.Addr, len(reps))
		}
	}
	if total != 16384 {
		t.Errorf("masters serve %d slots in total, want 16384", total)
	}

	t.Run("MoveSlot", func(t *testing.T) {
		const slot, keys = 7000, 50
		tag := tagForSlot(t, slot)
		src, err := c.MasterOf(ctx, slot)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := src.Client().ClusterKeySlot(ctx, "{"+tag+"}").Result(); err != nil || got != slot {
			t.Fatalf("CLUSTER KEYSLOT {%s} = %d, %v; want %d", tag, got, err, slot)
		}
		dst := masters[0]
		if dst == src {
			dst = masters[2]
		}
		for i := range keys {
			if err := src.Client().Set(ctx, fmt.Sprintf("{%s}:%d", tag, i), i, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.MoveSlot(ctx, slot, src, dst); err != nil {
			t.Fatal(err)
		}
		if got, err := c.MasterOf(ctx, slot); err != nil || got != dst {
			t.Fatalf("MasterOf(%d) = %v, %v; want %s", slot, got, err, dst.Addr)
		}
		if n, err := dst.Client().ClusterCountKeysInSlot(ctx, slot).Result(); err != nil || n != keys {
			t.Errorf("dst COUNTKEYSINSLOT = %d, %v; want %d", n, err, keys)
		}
		if n, err := src.Client().ClusterCountKeysInSlot(ctx, slot).Result(); err != nil || n != 0 {
			t.Errorf("src COUNTKEYSINSLOT = %d, %v; want 0", n, err)
		}
		for i := range keys {
			k := fmt.Sprintf("{%s}:%d", tag, i)
			if got, err := dst.Client().Get(ctx, k).Result(); err != nil || got != strconv.Itoa(i) {
				t.Errorf("GET %s on dst = %q, %v; want %d", k, got, err, i)
			}
		}
		if err := c.WaitOK(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("StepwiseMigration", func(t *testing.T) {
		const slot, keys = 100, 30
		tag := tagForSlot(t, slot)
		src, err := c.MasterOf(ctx, slot)
		if err != nil {
			t.Fatal(err)
		}
		dst := masters[1]
		for i := range keys {
			if err := src.Client().Set(ctx, fmt.Sprintf("{%s}:%d", tag, i), i, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.BeginMigration(ctx, slot, src, dst); err != nil {
			t.Fatal(err)
		}
		if moved, err := c.MigrateKeys(ctx, slot, src, dst, 10); err != nil || moved != 10 {
			t.Fatalf("MigrateKeys(max 10) = %d, %v; want 10", moved, err)
		}
		if err := c.FinishMigration(ctx, slot, src, dst); err == nil || !strings.Contains(err.Error(), "still holds 20 keys") {
			t.Fatalf("FinishMigration with keys left: err = %v, want 'still holds 20 keys'", err)
		}
		if moved, err := c.MigrateKeys(ctx, slot, src, dst, 0); err != nil || moved != 20 {
			t.Fatalf("MigrateKeys(all) = %d, %v; want 20", moved, err)
		}
		if err := c.FinishMigration(ctx, slot, src, dst); err != nil {
			t.Fatal(err)
		}
		if got, err := c.MasterOf(ctx, slot); err != nil || got != dst {
			t.Fatalf("MasterOf(%d) = %v, %v; want %s", slot, got, err, dst.Addr)
		}
	})

	t.Run("Failover", func(t *testing.T) {
		victim := masters[2]
		reps, err := c.Replicas(ctx, victim)
		if err != nil || len(reps) != 1 {
			t.Fatalf("Replicas(%s) = %v, %v; want one", victim.Addr, reps, err)
		}
		pid := victim.PID()
		if err := c.Kill(victim); err != nil {
			t.Fatal(err)
		}
		if victim.Alive() {
			t.Fatalf("%s alive after Kill", victim.Addr)
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Fatalf("kill(%d, 0) after Kill = %v, want ESRCH", pid, err)
		}
		promoted, err := c.WaitForFailover(ctx, victim)
		if err != nil {
			t.Fatal(err)
		}
		if promoted != reps[0] {
			t.Fatalf("WaitForFailover = %s, want its replica %s", promoted.Addr, reps[0].Addr)
		}
		if err := c.WaitOK(ctx); err != nil {
			t.Fatal(err)
		}
		now, err := c.Masters(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(now) != 3 || !slices.Contains(now, promoted) || slices.Contains(now, victim) {
			t.Fatalf("Masters after failover = %v, want 3 including %s and not %s", addrs(now), promoted.Addr, victim.Addr)
		}

		// The old master comes back as a replica of the promoted one, and
		// a coordinated failover makes it master again.
		if err := c.Restart(ctx, victim); err != nil {
			t.Fatal(err)
		}
		redistest.WaitFor(t, 15*time.Second, victim.Addr+" to rejoin as replica of "+promoted.Addr, func() bool {
			reps, err := c.Replicas(ctx, promoted)
			return err == nil && slices.Contains(reps, victim)
		})
		if err := c.WaitOK(ctx); err != nil {
			t.Fatal(err)
		}
		redistest.WaitFor(t, 15*time.Second, victim.Addr+" replication link up", func() bool {
			info, err := victim.Client().Info(ctx, "replication").Result()
			return err == nil && strings.Contains(info, "master_link_status:up")
		})
		if err := c.Promote(ctx, victim); err != nil {
			t.Fatal(err)
		}
		if got, err := c.MasterOf(ctx, 16383); err != nil || got != victim {
			t.Fatalf("MasterOf(16383) after Promote = %v, %v; want %s", got, err, victim.Addr)
		}
	})

	pids := make([]int, 0, len(nodes))
	for _, n := range nodes {
		pids = append(pids, n.PID())
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for i, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("node %s pid %d after Close: kill(pid, 0) = %v, want ESRCH", nodes[i].Addr, pid, err)
		}
		if nodes[i].Alive() {
			t.Errorf("node %s Alive() after Close", nodes[i].Addr)
		}
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	noLeak()
}

func addrs(ns []*redistest.Node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Addr
	}
	return out
}

func TestStartClusterRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts redistest.Options
		want string
	}{
		{"no dir", redistest.Options{RedisServer: "/bin/true"}, "rediscluster.Dir: required"},
		{"negative masters", redistest.Options{Masters: -1, Dir: t.TempDir(), RedisServer: "/bin/true"}, "rediscluster.Masters: must be >= 0"},
		{"negative replicas", redistest.Options{Replicas: -1, Dir: t.TempDir(), RedisServer: "/bin/true"}, "rediscluster.Replicas: must be >= 0"},
		{"negative spares", redistest.Options{Spares: -2, Dir: t.TempDir(), RedisServer: "/bin/true"}, "rediscluster.Spares: must be >= 0"},
		{"sub-ms node timeout", redistest.Options{NodeTimeout: 1500 * time.Microsecond, Dir: t.TempDir(), RedisServer: "/bin/true"}, "whole number of milliseconds"},
		{"missing binary", redistest.Options{Masters: 1, Dir: t.TempDir(), RedisServer: "/nonexistent/redis-server"}, "no such file"},
		{"binary that exits", redistest.Options{Masters: 1, Dir: t.TempDir(), RedisServer: "/bin/false"}, "exited before it was ready"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := redistest.StartCluster(t.Context(), tc.opts)
			if err == nil {
				c.Close()
				t.Fatalf("StartCluster succeeded, want error containing %q", tc.want)
			}
			if c != nil {
				t.Errorf("StartCluster returned a cluster with error %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("StartCluster error = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestFreePort(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		p, err := redistest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if p <= 0 || p+10000 > 65535 {
			t.Fatalf("FreePort() = %d, want p > 0 and p+10000 <= 65535", p)
		}
		if seen[p] {
			t.Fatalf("FreePort() returned %d twice", p)
		}
		seen[p] = true
		for _, q := range []int{p, p + 10000} {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(q)))
			if err != nil {
				t.Fatalf("port %d from FreePort() = %d is not free: %v", q, p, err)
			}
			l.Close()
		}
	}
}
