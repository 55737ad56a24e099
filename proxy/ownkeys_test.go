package proxy_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/hashslot"
	"github.com/slotway/slotway/internal/ownkeys"
	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/proxy"
)

// writeOwnKeys stores Slotway's own keys in the cluster directly, as the
// scaler does: the lease with term 7, the pause switch, an event.
// ownKeysCluster starts 3 masters with Slotway's own keys written, and a
// proxy in front: a client of the proxy and a cluster client of the nodes.
func ownKeysCluster(t *testing.T) (*redistest.Cluster, *redis.Client, *redis.ClusterClient) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Seeds()})
	t.Cleanup(func() { cc.Close() })
	writeOwnKeys(t, context.Background(), cc)
	return c, p.client(t), cc
}

func writeOwnKeys(t *testing.T, ctx context.Context, cc *redis.ClusterClient) {
	t.Helper()
	if err := cc.XAdd(ctx, &redis.XAddArgs{Stream: ownkeys.Events, Values: []string{"kind", "test"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := cc.HSet(ctx, ownkeys.Lease, "term", 7, "holder", "p1", "expires", 1).Err(); err != nil {
		t.Fatal(err)
	}
	if err := cc.HSet(ctx, ownkeys.Autoscaler, "paused", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := cc.HSet(ctx, ownkeys.Intent, "slot", "1").Err(); err != nil {
		t.Fatal(err)
	}
}

// checkOwnKeys fails unless the own keys are as writeOwnKeys left them.
func checkOwnKeys(t *testing.T, ctx context.Context, cc *redis.ClusterClient, after string) {
	t.Helper()
	if term, err := cc.HGet(ctx, ownkeys.Lease, "term").Result(); err != nil || term != "7" {
		t.Errorf("after %s: lease term = %q, %v; want 7", after, term, err)
	}
	if p, err := cc.HGet(ctx, ownkeys.Autoscaler, "paused").Result(); err != nil || p != "1" {
		t.Errorf("after %s: autoscaler paused = %q, %v; want 1", after, p, err)
	}
	if n, err := cc.XLen(ctx, ownkeys.Events).Result(); err != nil || n != 1 {
		t.Errorf("after %s: event stream length = %d, %v; want 1", after, n, err)
	}
	if n, err := cc.Exists(ctx, ownkeys.Intent).Result(); err != nil || n != 1 {
		t.Errorf("after %s: intent exists = %d, %v; want 1", after, n, err)
	}
}

func TestOwnSlot(t *testing.T) {
	for _, k := range ownkeys.All {
		if got := hashslot.Of([]byte(k)); got != ownkeys.Slot {
			t.Errorf("slot of %s = %d, ownkeys.Slot is %d", k, got, ownkeys.Slot)
		}
	}
}

// keyInOwnSlot is a client key in the slot of Slotway's own keys.
func keyInOwnSlot(t *testing.T) string {
	own := hashslot.Of([]byte(ownkeys.Events))
	for i := range 1 << 20 {
		k := "user:" + strconv.Itoa(i)
		if hashslot.Of([]byte(k)) == own {
			return k
		}
	}
	t.Fatal("no key found in the own slot")
	return ""
}

// infoKeys is the key count INFO keyspace shows through the proxy.
func infoKeys(ctx context.Context, rc *redis.Client) int {
	info := rc.Info(ctx, "keyspace").Val()
	m := regexp.MustCompile(`db0:keys=(\d+)`).FindStringSubmatch(info)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestOwnKeysHidden: through the proxy, Slotway's own keys are not in KEYS,
// SCAN, DBSIZE, RANDOMKEY or INFO keyspace.
func TestOwnKeysHidden(t *testing.T) {
	_, rc, cc := ownKeysCluster(t)
	ctx := context.Background()

	// Only Slotway's keys: the keyspace looks empty.
	if n, err := rc.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Errorf("DBSIZE with only own keys = %d, %v; want 0", n, err)
	}
	if keys, err := rc.Keys(ctx, "*").Result(); err != nil || len(keys) != 0 {
		t.Errorf("KEYS * with only own keys = %q, %v", keys, err)
	}
	if k, err := rc.RandomKey(ctx).Result(); err != redis.Nil {
		t.Errorf("RANDOMKEY with only own keys = %q, %v; want nil", k, err)
	}
	redistest.WaitFor(t, 20*time.Second, "INFO keyspace to be read by a health check", func() bool {
		return strings.Contains(rc.Info(ctx, "keyspace").Val(), "# Keyspace")
	})
	redistest.WaitFor(t, 20*time.Second, "INFO keyspace without own keys", func() bool {
		return infoKeys(ctx, rc) == 0 && !strings.Contains(rc.Info(ctx, "keyspace").Val(), "db0:")
	})

	// One client key, in the own keys' slot: RANDOMKEY always finds it.
	near := keyInOwnSlot(t)
	if err := rc.Set(ctx, near, "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for range 30 {
		if k, err := rc.RandomKey(ctx).Result(); err != nil || k != near {
			t.Fatalf("RANDOMKEY with one client key = %q, %v; want %q", k, err, near)
		}
	}

	// Many client keys on every master.
	const n = 300
	want := []string{near}
	for i := range n {
		k := "hide:" + strconv.Itoa(i)
		want = append(want, k)
		if err := rc.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(want)
	if got, err := rc.DBSize(ctx).Result(); err != nil || got != n+1 {
		t.Errorf("DBSIZE = %d, %v; want %d", got, err, n+1)
	}
	keys, err := rc.Keys(ctx, "*").Result()
	slices.Sort(keys)
	if err != nil || !slices.Equal(keys, want) {
		t.Errorf("KEYS * = %d keys (%v), want the %d client keys; own keys among them: %v", len(keys), err, len(want), ownAmong(keys))
	}
	for _, count := range []int64{1, 10, 1000} {
		var seen []string
		var cursor uint64
		for {
			ks, next, err := rc.Scan(ctx, cursor, "", count).Result()
			if err != nil {
				t.Fatal(err)
			}
			seen = append(seen, ks...)
			if cursor = next; cursor == 0 {
				break
			}
		}
		slices.Sort(seen)
		seen = slices.Compact(seen)
		if !slices.Equal(seen, want) {
			t.Errorf("SCAN COUNT %d saw %d keys, want %d; own keys among them: %v", count, len(seen), len(want), ownAmong(seen))
		}
	}
	// A pattern that matches only own keys.
	if ks, _, err := rc.Scan(ctx, 0, "*slotway*", 100000).Result(); err != nil || len(ownAmong(ks)) > 0 {
		t.Errorf("SCAN MATCH *slotway* = %q, %v", ks, err)
	}
	for range 50 {
		if k, err := rc.RandomKey(ctx).Result(); err != nil || ownkeys.IsString(k) {
			t.Fatalf("RANDOMKEY = %q, %v", k, err)
		}
	}
	redistest.WaitFor(t, 20*time.Second, "INFO keyspace to count the client keys only", func() bool {
		return infoKeys(ctx, rc) == n+1
	})
	checkOwnKeys(t, ctx, cc, "reading")
}

func ownAmong(keys []string) []string {
	var out []string
	for _, k := range keys {
		if ownkeys.IsString(k) {
			out = append(out, k)
		}
	}
	return out
}

// TestOwnKeysDurable: commands sent through the proxy cannot delete or
// change Slotway's own keys: the ones naming them are refused, and a flush
// keeps them.
func TestOwnKeysDurable(t *testing.T) {
	c, rc, cc := ownKeysCluster(t)
	ctx := context.Background()

	refused := []struct {
		name string
		args []any
	}{
		{"DEL", []any{"DEL", ownkeys.Lease}},
		{"DEL across slots", []any{"DEL", "a", "b", "c", ownkeys.Autoscaler}},
		{"UNLINK", []any{"UNLINK", ownkeys.Events}},
		{"RENAME from", []any{"RENAME", ownkeys.Lease, "{slotway:events}x"}},
		{"RENAME to", []any{"RENAME", "somekey", ownkeys.Events}},
		{"EXPIRE", []any{"EXPIRE", ownkeys.Lease, 1}},
		{"PEXPIRE", []any{"PEXPIRE", ownkeys.Autoscaler, 1}},
		{"HSET", []any{"HSET", ownkeys.Lease, "term", 1}},
		{"HDEL", []any{"HDEL", ownkeys.Autoscaler, "paused"}},
		{"XTRIM", []any{"XTRIM", ownkeys.Events, "MAXLEN", 0}},
		{"HGETALL", []any{"HGETALL", ownkeys.Lease}},
		{"EXISTS", []any{"EXISTS", ownkeys.Intent}},
		{"EVAL", []any{"EVAL", "return redis.call('DEL', KEYS[1])", 1, ownkeys.Lease}},
		{"COPY", []any{"COPY", ownkeys.Lease, "{slotway:events}:copy"}},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			err := rc.Do(ctx, tc.args...).Err()
			if err == nil || !strings.Contains(err.Error(), "is reserved for Slotway") {
				t.Errorf("%v: %v, want a reserved-key error", tc.args, err)
			}
		})
	}
	// Inside a transaction the command is refused while queueing.
	_, err := rc.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.Del(ctx, ownkeys.Lease)
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "EXECABORT") {
		t.Errorf("MULTI DEL own key EXEC: %v, want EXECABORT", err)
	}
	if err := rc.Watch(ctx, func(*redis.Tx) error { return nil }, ownkeys.Lease); err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Errorf("WATCH own key: %v", err)
	}
	checkOwnKeys(t, ctx, cc, "refused commands")

	near := keyInOwnSlot(t)
	for _, flush := range [][]any{{"FLUSHALL"}, {"FLUSHALL", "ASYNC"}, {"FLUSHALL", "SYNC"}, {"FLUSHDB"}, {"FLUSHDB", "ASYNC"}} {
		for i := range 50 {
			rc.Set(ctx, "flush:"+strconv.Itoa(i), "v", 0)
		}
		rc.Set(ctx, near, "v", 0)
		if err := rc.Do(ctx, flush...).Err(); err != nil {
			t.Fatalf("%v: %v", flush, err)
		}
		name := fmtArgs(flush)
		checkOwnKeys(t, ctx, cc, name)
		masters, _ := c.Masters(ctx)
		total := int64(0)
		for _, m := range masters {
			total += m.Client().DBSize(ctx).Val()
		}
		if total != 4 {
			t.Errorf("after %s: the masters hold %d keys, want only the 4 own keys", name, total)
		}
		if n := rc.DBSize(ctx).Val(); n != 0 {
			t.Errorf("after %s: DBSIZE through the proxy = %d, want 0", name, n)
		}
	}
	// A flush with a bad argument fails as Redis says and deletes nothing.
	rc.Set(ctx, "kept", "v", 0)
	if err := rc.Do(ctx, "FLUSHALL", "BOGUS").Err(); err == nil {
		t.Error("FLUSHALL BOGUS succeeded")
	}
	if rc.Exists(ctx, "kept").Val() != 1 {
		t.Error("FLUSHALL BOGUS deleted a key")
	}
	checkOwnKeys(t, ctx, cc, "FLUSHALL BOGUS")
}

func fmtArgs(a []any) string {
	var s []string
	for _, x := range a {
		s = append(s, x.(string))
	}
	return strings.Join(s, " ")
}

// TestFlushKeepsOwnKeysMidMigration: while the own keys' slot migrates,
// some of them on each side, FLUSHALL through the proxy flushes the other
// masters and the importing one (keeping its own keys), and waits on the
// master the slot leaves (TRYAGAIN, retried) until the move ends; then all
// four own keys are there and nothing else.
func TestFlushKeepsOwnKeysMidMigration(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c, func(cfg *proxy.Config) { cfg.RetryTimeout = 2 * time.Minute })
	rc := p.client(t, func(o *redis.Options) { o.ReadTimeout = 3 * time.Minute })
	ctx := context.Background()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Seeds(), MaxRedirects: 16})
	t.Cleanup(func() { cc.Close() })
	writeOwnKeys(t, ctx, cc)
	for i := range 50 {
		if err := rc.Set(ctx, "mid:"+strconv.Itoa(i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	src, err := c.MasterOf(ctx, ownkeys.Slot)
	if err != nil {
		t.Fatal(err)
	}
	masters, _ := c.Masters(ctx)
	dst := masters[0]
	if dst == src {
		dst = masters[1]
	}
	if err := c.BeginMigration(ctx, ownkeys.Slot, src, dst); err != nil {
		t.Fatal(err)
	}
	if n, err := c.MigrateKeys(ctx, ownkeys.Slot, src, dst, 2); err != nil || n != 2 {
		t.Fatalf("moved %d keys, %v", n, err)
	}
	flushed := make(chan error, 1)
	go func() { flushed <- rc.FlushAll(ctx).Err() }()
	redistest.WaitFor(t, 30*time.Second, "the master the slot leaves to answer TRYAGAIN", func() bool {
		return p.counter(t, "slotway_proxy_redirects_total", "kind", "tryagain") > 0
	})
	if n := src.Client().ClusterCountKeysInSlot(ctx, ownkeys.Slot).Val(); n != 2 {
		t.Errorf("the source holds %d own keys while the flush waits, want 2", n)
	}
	if _, err := c.MigrateKeys(ctx, ownkeys.Slot, src, dst, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.FinishMigration(ctx, ownkeys.Slot, src, dst); err != nil {
		t.Fatal(err)
	}
	if err := <-flushed; err != nil {
		t.Fatalf("FLUSHALL mid-migration: %v", err)
	}
	total := int64(0)
	for _, m := range masters {
		total += m.Client().DBSize(ctx).Val()
	}
	if onDst := dst.Client().DBSize(ctx).Val(); onDst != 4 || total != 4 {
		t.Errorf("after FLUSHALL mid-migration: %d keys on the new owner, %d in all; want the 4 own keys", onDst, total)
	}
	checkOwnKeys(t, ctx, cc, "FLUSHALL mid-migration")
}

// TestFlushKeepsConcurrentLeaseWrites: writes to the lease while flushes
// run through the proxy are never undone (the save and the restore are
// one atomic step on the master).
func TestFlushKeepsConcurrentLeaseWrites(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c)
	rc := p.client(t)
	ctx := context.Background()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Seeds()})
	t.Cleanup(func() { cc.Close() })
	done := make(chan error, 1)
	stop := make(chan struct{})
	go func() {
		var last int64
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			n, err := cc.HIncrBy(ctx, ownkeys.Lease, "term", 1).Result()
			if err != nil {
				done <- err
				return
			}
			if n != last+1 {
				done <- fmt.Errorf("lease term went from %d to %d: a write was undone", last, n)
				return
			}
			last = n
		}
	}()
	for i := range 30 {
		rc.Set(ctx, "w:"+strconv.Itoa(i), "v", 0)
		if err := rc.FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
