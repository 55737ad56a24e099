package proxy_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/hashslot"
	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/proxy"
)

// TestFailoverHidden: with default settings (no retry_timeout), a master
// killed under writes is hidden from the clients: the retry budget comes
// from the cluster's cluster-node-timeout and outlasts the promotion of its
// replica. Then the promoted master, which has no replica, is killed too:
// its client gets -CLUSTERDOWN naming it once the budget runs out, and the
// parked request shows in the stats and metrics meanwhile.
func TestFailoverHidden(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3, Replicas: 1, NodeTimeout: 2 * time.Second})
	p := startProxy(t, c)
	ctx := context.Background()
	const tag = "{fo}"
	victim, err := c.MasterOf(ctx, hashslot.Of([]byte(tag)))
	if err != nil {
		t.Fatal(err)
	}
	// Clients that wait longer than any retry budget: a client's own read
	// timeout shorter than the failover would fail it whatever the proxy
	// does (go-redis's default is 3 s).
	newClient := func() *redis.Client {
		return p.client(t, func(o *redis.Options) {
			o.PoolSize, o.ReadTimeout, o.WriteTimeout = 1, time.Minute, time.Minute
		})
	}
	if err := newClient().Set(ctx, tag+"warm", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// Four writers on the victim's slot, each SETting its own sequence.
	const writers = 4
	var (
		stop, killed atomic.Bool
		wg           sync.WaitGroup
		done         [writers]atomic.Int64 // SETs answered (ok or error)
		firstAfter   [writers]atomic.Int64 // first SET sent once the victim was dead
		mu           sync.Mutex
		errs         []string
		failed       = map[string]bool{} // keys whose SET failed
		others       int
	)
	for w := range writers {
		rc := newClient()
		firstAfter[w].Store(-1)
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				if killed.Load() && firstAfter[w].Load() < 0 {
					firstAfter[w].Store(int64(i))
				}
				key := tag + strconv.Itoa(w) + ":" + strconv.Itoa(i)
				if err := rc.Set(ctx, key, key, 0).Err(); err != nil {
					mu.Lock()
					errs = append(errs, err.Error())
					failed[key] = true
					if !strings.Contains(err.Error(), "the command may have run") {
						others++
					}
					mu.Unlock()
				}
				done[w].Store(int64(i + 1))
			}
		})
	}
	t.Cleanup(func() { stop.Store(true); wg.Wait() })
	waitWrites := func(what string, atLeast [writers]int64) {
		redistest.WaitFor(t, 60*time.Second, what, func() bool {
			for w := range writers {
				if done[w].Load() < atLeast[w]+50 {
					return false
				}
			}
			return true
		})
	}
	waitWrites("writes before the kill", [writers]int64{})
	// Replication is asynchronous: writes acknowledged in the last moments
	// before a kill -9 may never reach the replica, whatever the proxy
	// does. A WAIT on the victim after the writes counted here makes them
	// safe; those between it and the kill are not checked.
	var synced [writers]int64
	for w := range writers {
		synced[w] = done[w].Load()
	}
	vc := victim.Client().Conn()
	if err := vc.Set(ctx, tag+"sync", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := vc.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 on the victim: %d, %v", n, err)
	}
	vc.Close()
	if err := c.Kill(victim); err != nil {
		t.Fatal(err)
	}
	killed.Store(true)
	killedAt := time.Now()
	promoted, err := c.WaitForFailover(ctx, victim)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("replica %s promoted %v after the kill", promoted.Addr, time.Since(killedAt).Round(time.Millisecond))
	var now [writers]int64
	for w := range writers {
		now[w] = done[w].Load()
	}
	waitWrites("writes after the failover", now)
	stop.Store(true)
	wg.Wait()

	// A SET in flight on the master at the instant it died may have run
	// or not: the proxy says so and does not retry it (at most one per
	// writer). Any other error is the failover reaching the client.
	t.Logf("errors: %q", errs)
	if others > 0 || len(errs) > writers {
		t.Fatalf("the failover reached the clients: %d errors (%d not 'may have run'): %q", len(errs), others, errs)
	}
	rc := newClient()
	unsynced := 0
	for w := range writers {
		for i := range done[w].Load() {
			key := tag + strconv.Itoa(w) + ":" + strconv.Itoa(int(i))
			if failed[key] {
				continue
			}
			got, err := rc.Get(ctx, key).Result()
			if err == nil && got == key {
				continue
			}
			if i >= synced[w] && i < firstAfter[w].Load() {
				unsynced++ // acknowledged by the victim, not yet replicated
				continue
			}
			t.Errorf("acknowledged write %s: GET = %q, %v", key, got, err)
		}
	}
	t.Logf("%d writes acknowledged by the victim just before the kill were not replicated", unsynced)

	// The promoted master has no replica (its old master is dead). Killed
	// too, its client's SET is parked for the budget, then gets
	// -CLUSTERDOWN naming it.
	if got, want := p.Stats().RetryBudget, 6*time.Second; got != want {
		t.Errorf("retry budget = %v, want %v (2 x cluster-node-timeout 2s + 2s)", got, want)
	}
	if err := c.Kill(promoted); err != nil {
		t.Fatal(err)
	}
	killedAt = time.Now()
	// Sent before the proxy has seen the node die, the SET would be
	// written to a dead socket and get "may have run" (a write is not
	// resent); sent after, it is refused by the pipe and parked.
	redistest.WaitFor(t, 30*time.Second, "the proxy to see the killed master down", func() bool {
		nh, ok := p.Health()[promoted.Addr]
		return ok && !nh.Up
	})
	res := make(chan error, 1)
	go func() { res <- rc.Set(ctx, tag+"last", "x", 0).Err() }()
	redistest.WaitFor(t, 30*time.Second, "the SET to show as parked in the stats and metrics", func() bool {
		st := p.Stats()
		return st.Parked == 1 && st.ParkedLongest > 0 &&
			p.counter(t, "slotway_proxy_parked_requests") == 1 && p.counter(t, "slotway_proxy_parked_longest_seconds") > 0
	})
	select {
	case err := <-res:
		t.Logf("SET to the dead master without a replica answered %v after the kill: %v", time.Since(killedAt).Round(time.Millisecond), err)
		if err == nil || !strings.HasPrefix(err.Error(), "CLUSTERDOWN ") || !strings.Contains(err.Error(), promoted.Addr) {
			t.Fatalf("SET to a dead master without a replica: got %v, want -CLUSTERDOWN naming %s", err, promoted.Addr)
		}
	case <-time.After(time.Minute):
		t.Fatal("no reply a minute after the master died")
	}
	if st := p.Stats(); st.Parked != 0 || st.ParkedLongest != 0 {
		t.Errorf("after the reply: %d parked, longest %v; want none", st.Parked, st.ParkedLongest)
	}
}

// TestFailoverHiddenFromReaders: reads in flight on a master when it is
// killed with kill -9 are sent again (a read may run twice) and answered
// by its promoted replica: four readers GETting in a tight loop across the
// kill and the promotion see no error of any kind, and the right values.
func TestFailoverHiddenFromReaders(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3, Replicas: 1, NodeTimeout: 2 * time.Second})
	p := startProxy(t, c)
	ctx := context.Background()
	const tag = "{rd}"
	victim, err := c.MasterOf(ctx, hashslot.Of([]byte(tag)))
	if err != nil {
		t.Fatal(err)
	}
	// Clients that wait longer than any retry budget and never retry
	// themselves (go-redis retries CLUSTERDOWN and TRYAGAIN): every error
	// the proxy sends is counted.
	newClient := func() *redis.Client {
		return p.client(t, func(o *redis.Options) {
			o.PoolSize, o.ReadTimeout, o.WriteTimeout, o.MaxRetries = 1, time.Minute, time.Minute, -1
		})
	}
	const readers, keys = 4, 32
	key := func(w, i int) string { return tag + strconv.Itoa(w) + ":" + strconv.Itoa(i) }
	wc := newClient()
	for w := range readers {
		for i := range keys {
			if err := wc.Set(ctx, key(w, i), "v"+key(w, i), 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The replica has every key before the master dies.
	vc := victim.Client().Conn()
	if n, err := vc.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 on the victim: %d, %v", n, err)
	}
	vc.Close()
	var (
		stop  atomic.Bool
		wg    sync.WaitGroup
		done  [readers]atomic.Int64 // GETs answered (ok or not)
		mu    sync.Mutex
		errs  = map[string]int{} // by message
		nerrs int
	)
	for w := range readers {
		rc := newClient()
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				k := key(w, i%keys)
				got, err := rc.Get(ctx, k).Result()
				if err != nil || got != "v"+k {
					what := fmt.Sprintf("wrong value %q", got)
					if err != nil {
						what = err.Error()
					}
					mu.Lock()
					errs[what]++
					nerrs++
					mu.Unlock()
				}
				done[w].Store(int64(i + 1))
			}
		})
	}
	t.Cleanup(func() { stop.Store(true); wg.Wait() })
	waitReads := func(what string) {
		var from [readers]int64
		for w := range readers {
			from[w] = done[w].Load()
		}
		redistest.WaitFor(t, 60*time.Second, what, func() bool {
			for w := range readers {
				if done[w].Load() < from[w]+50 {
					return false
				}
			}
			return true
		})
	}
	waitReads("reads before the kill")
	lost := p.counter(t, "slotway_proxy_backend_connection_errors_total")
	if err := c.Kill(victim); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	promoted, err := c.WaitForFailover(ctx, victim)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("replica %s promoted %v after the kill", promoted.Addr, time.Since(killedAt).Round(time.Millisecond))
	waitReads("reads after the failover")
	stop.Store(true)
	wg.Wait()
	var n int64
	for w := range readers {
		n += done[w].Load()
	}
	t.Logf("%d GETs, %d backend connections broken by the kill", n, int(p.counter(t, "slotway_proxy_backend_connection_errors_total")-lost))
	if nerrs > 0 {
		t.Fatalf("the failover reached the readers: %d errors: %v", nerrs, errs)
	}
}

// TestLostConnectionResendsOnlyReads: commands written to a master that
// then dies without answering: the read-only ones (GET, EVAL_RO) are sent
// again and answered by the promoted replica; the others (SET, and EVAL
// even of a script that only reads) get "the command may have run".
func TestLostConnectionResendsOnlyReads(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3, Replicas: 1, NodeTimeout: 2 * time.Second})
	// Health checks would reset the stopped master's connections before
	// the kill; the budget is generous so that a slow promotion on a
	// loaded host is not what the test sees.
	p := startProxy(t, c, func(cfg *proxy.Config) {
		cfg.HealthInterval = time.Hour
		cfg.RetryTimeout = time.Minute
	})
	ctx := context.Background()
	const k = "{lost}k"
	victim, err := c.MasterOf(ctx, hashslot.Of([]byte(k)))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.client(t).Set(ctx, k, "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	vc := victim.Client().Conn()
	if n, err := vc.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 on the victim: %d, %v", n, err)
	}
	vc.Close()
	const getScript = "return redis.call('GET', KEYS[1])"
	tests := []struct {
		name string
		args []any
		want string // the reply, or the start of the error
	}{
		{"GET", []any{"GET", k}, "v"},
		{"EVAL_RO", []any{"EVAL_RO", getScript, 1, k}, "v"},
		{"SET", []any{"SET", k, "w"}, "ERR slotway: connection to " + victim.Addr + " lost before the reply; the command may have run"},
		{"EVAL", []any{"EVAL", getScript, 1, k}, "ERR slotway: connection to " + victim.Addr + " lost before the reply; the command may have run"},
	}
	if err := syscall.Kill(victim.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Each command from its own client, written to the stopped master
	// before the next is sent.
	res := make([]chan string, len(tests))
	for i, tc := range tests {
		rc := p.client(t, func(o *redis.Options) {
			o.PoolSize, o.ReadTimeout, o.WriteTimeout, o.MaxRetries = 1, 2*time.Minute, time.Minute, -1
		})
		if err := rc.Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		writes := p.counter(t, "slotway_proxy_backend_writes_total")
		res[i] = make(chan string, 1)
		go func() {
			v, err := rc.Do(ctx, tc.args...).Text()
			if err != nil {
				v = err.Error()
			}
			res[i] <- v
		}()
		redistest.WaitFor(t, 10*time.Second, tc.name+" to be written to the stopped master", func() bool {
			return p.counter(t, "slotway_proxy_backend_writes_total") > writes
		})
	}
	if err := c.Kill(victim); err != nil {
		t.Fatal(err)
	}
	for i, tc := range tests {
		select {
		case got := <-res[i]:
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("%s in flight when its master died: got %q, want %q", tc.name, got, tc.want)
			}
		case <-time.After(2 * time.Minute):
			t.Fatalf("%s: no reply two minutes after its master died", tc.name)
		}
	}
}
