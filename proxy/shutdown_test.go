package proxy_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/hashslot"
	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/proxy"
)

// silentMaster starts a proxy (health checks out of the way: they would
// reset the connections too), writes the key "silent", stops its master
// with SIGSTOP and sends a GET of it. It returns the proxy, the client,
// the GET's outcome and a function that resumes the master (also run at
// cleanup).
func silentMaster(t *testing.T, mod func(*proxy.Config)) (*testProxy, *redis.Client, <-chan error, func()) {
	t.Helper()
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c, func(cfg *proxy.Config) {
		cfg.HealthInterval = time.Hour
		mod(cfg)
	})
	ctx := context.Background()
	owner, err := c.MasterOf(ctx, hashslot.Of([]byte("silent")))
	if err != nil {
		t.Fatal(err)
	}
	rc := p.client(t)
	if err := rc.Set(ctx, "silent", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	resume := freeze(t, owner.PID())
	writes := p.counter(t, "slotway_proxy_backend_writes_total")
	got := make(chan error, 1)
	go func() { got <- rc.Get(ctx, "silent").Err() }()
	redistest.WaitFor(t, 10*time.Second, "the GET to be written to the stopped master", func() bool {
		return p.counter(t, "slotway_proxy_backend_writes_total") > writes
	})
	return p, rc, got, resume
}

// TestShutdownWithASilentBackend: a master that stops answering while a
// client waits for its reply must not hold shutdown past shutdown_timeout:
// the client's command fails and Run returns.
func TestShutdownWithASilentBackend(t *testing.T) {
	shortIf(t)
	p, _, got, _ := silentMaster(t, func(cfg *proxy.Config) { cfg.ShutdownTimeout = 200 * time.Millisecond })
	p.stop(t) // fails the test if Run does not return
	if err := <-got; err == nil {
		t.Error("GET answered by a stopped master")
	}
}

// TestSilentBackendTimesOut: a command in flight to a stopped master fails
// after backend_timeout instead of waiting forever, and the proxy serves
// the key again once the master is back.
func TestSilentBackendTimesOut(t *testing.T) {
	shortIf(t)
	_, rc, got, resume := silentMaster(t, func(cfg *proxy.Config) { cfg.BackendTimeout = 500 * time.Millisecond })
	select {
	case err := <-got:
		if err == nil || !strings.Contains(err.Error(), "lost before the reply") {
			t.Fatalf("GET from a stopped master: %v; want the connection-lost error", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("GET still waiting on a stopped master")
	}
	resume()
	ctx := context.Background()
	redistest.WaitFor(t, 30*time.Second, "the key to be served again", func() bool {
		return rc.Get(ctx, "silent").Val() == "1"
	})
}

// TestSilentBackendMidWrite: a large write to a stopped master fills the
// socket and waits (on a loop's connection, in poll(2)); backend_timeout
// still ends it — closing the connection wakes the waiting write — every
// command gets an error instead of hanging, and the proxy serves the
// master again once it is back.
func TestSilentBackendMidWrite(t *testing.T) {
	shortIf(t)
	p, rc, got, resume := silentMaster(t, func(cfg *proxy.Config) {
		cfg.BackendTimeout = 500 * time.Millisecond
		cfg.RetryTimeout = time.Second
	})
	const sets, size = 8, 4 << 20 // 32 MiB: more than the sockets hold
	value := strings.Repeat("w", size)
	r := dialRaw(t, p.Addr().String())
	r.c.SetDeadline(time.Now().Add(2 * time.Minute))
	var b strings.Builder
	for i := range sets {
		key := fmt.Sprintf("{silent}:%d", i)
		fmt.Fprintf(&b, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(key), key, size, value)
	}
	go r.c.Write([]byte(b.String())) // blocks while the proxy cannot pass it on
	for i := range sets {
		if reply := r.reply(); !strings.HasPrefix(reply, "-") {
			t.Fatalf("SET %d to a stopped master = %q, want an error", i, reply)
		}
	}
	if err := <-got; err == nil {
		t.Error("GET answered by a stopped master")
	}
	resume()
	ctx := context.Background()
	redistest.WaitFor(t, 30*time.Second, "the master to be served again", func() bool {
		return rc.Set(ctx, "{silent}:0", value, 0).Err() == nil
	})
	if v, err := rc.Get(ctx, "{silent}:0").Result(); err != nil || v != value {
		t.Fatalf("GET {silent}:0 after the resume: %d bytes, %v", len(v), err)
	}
}
