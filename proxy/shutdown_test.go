package proxy_test

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/proxy"
)

// TestShutdownWithASilentBackend: a master that stops answering (SIGSTOP)
// while a client waits for its reply must not hold shutdown past
// shutdown_timeout: the client's command fails and Run returns.
func TestShutdownWithASilentBackend(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c, func(cfg *proxy.Config) {
		cfg.ShutdownTimeout = 200 * time.Millisecond
		cfg.HealthInterval = time.Hour // the health checker would reset it too
	})
	ctx := context.Background()
	owner, err := c.MasterOf(ctx, proxy.Slot([]byte("silent")))
	if err != nil {
		t.Fatal(err)
	}
	rc := p.client(t)
	if err := rc.Set(ctx, "silent", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(owner.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(owner.PID(), syscall.SIGCONT) })
	writes := p.counter(t, "slotway_proxy_backend_writes_total")
	got := make(chan error, 1)
	go func() { got <- rc.Get(ctx, "silent").Err() }()
	redistest.WaitFor(t, 10*time.Second, "the GET to be written to the stopped master", func() bool {
		return p.counter(t, "slotway_proxy_backend_writes_total") > writes
	})
	p.stop(t) // fails the test if Run does not return
	if err := <-got; err == nil {
		t.Error("GET answered by a stopped master")
	}
}

// TestSilentBackendTimesOut: with a master stopped (SIGSTOP) and the
// health checker out of the way, a command in flight fails after
// backend_timeout instead of waiting forever, and the proxy serves the
// key again once the master is back.
func TestSilentBackendTimesOut(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c, func(cfg *proxy.Config) {
		cfg.BackendTimeout = 500 * time.Millisecond
		cfg.HealthInterval = time.Hour
	})
	ctx := context.Background()
	owner, err := c.MasterOf(ctx, proxy.Slot([]byte("silent")))
	if err != nil {
		t.Fatal(err)
	}
	rc := p.client(t)
	if err := rc.Set(ctx, "silent", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(owner.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			_ = syscall.Kill(owner.PID(), syscall.SIGCONT)
		}
	})
	got := make(chan error, 1)
	go func() { got <- rc.Get(ctx, "silent").Err() }()
	select {
	case err := <-got:
		if err == nil || !strings.Contains(err.Error(), "lost before the reply") {
			t.Fatalf("GET from a stopped master: %v; want the connection-lost error", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("GET still waiting on a stopped master")
	}
	resumed = true
	if err := syscall.Kill(owner.PID(), syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	redistest.WaitFor(t, 30*time.Second, "the key to be served again", func() bool {
		return rc.Get(ctx, "silent").Val() == "1"
	})
}
