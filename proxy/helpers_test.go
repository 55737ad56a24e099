package proxy_test

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/internal/testutil"
	"github.com/slotway/slotway/proxy"
)

type testProxy struct {
	*proxy.Server
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

// startProxy runs a proxy in front of c until the test ends, and checks
// that stopping it leaves no goroutine behind.
func startProxy(t *testing.T, c *redistest.Cluster, mod ...func(*proxy.Config)) *testProxy {
	t.Helper()
	cfg := proxy.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Cluster.Seeds = c.Seeds()
	cfg.HealthInterval = 200 * time.Millisecond
	cfg.Cluster.RefreshInterval = 200 * time.Millisecond
	for _, m := range mod {
		m(&cfg)
	}
	running.Add(1)
	reg := prometheus.NewRegistry()
	level := slog.LevelWarn
	if os.Getenv("SLOTWAY_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	log := testutil.Logger(t, level)
	s, err := proxy.New(cfg, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &testProxy{Server: s, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- s.Run(ctx) }()
	t.Cleanup(func() {
		p.stop(t)
		if running.Add(-1) > 0 {
			return // another proxy of this test still runs; the last one checks
		}
		left := ""
		defer func() {
			if left != "" {
				t.Logf("proxy goroutines left:\n%s", left)
			}
		}()
		redistest.WaitFor(t, 10*time.Second, "proxy goroutines to exit after Run returned", func() bool {
			left = proxyGoroutines()
			return left == ""
		})
	})
	redistest.WaitFor(t, 20*time.Second, "proxy ready", s.Ready)
	return p
}

func (p *testProxy) stop(t *testing.T) {
	p.cancel()
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("proxy Run: %v", err)
		}
		p.done <- nil
	case <-time.After(30 * time.Second):
		t.Fatal("proxy did not stop")
	}
}

// client returns a plain (non-cluster) go-redis client for the proxy.
func (p *testProxy) client(t *testing.T, opts ...func(*redis.Options)) *redis.Client {
	t.Helper()
	o := &redis.Options{Addr: p.Addr().String(), MaxRetries: -1, PoolSize: 16}
	for _, f := range opts {
		f(o)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// counter returns the value of a metric (summed over label sets matching
// the given label pairs).
func (p *testProxy) counter(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := p.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// running counts the test proxies not yet stopped (tests in this package
// do not run in parallel).
var running atomic.Int32

// proxyGoroutines returns the stacks of goroutines running proxy code.
func proxyGoroutines() string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "github.com/slotway/slotway/proxy.") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

func shortIf(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
}

// freeze stops the process pid (SIGSTOP) and returns what resumes it;
// that runs at cleanup too, and only once.
func freeze(t *testing.T, pid int) (thaw func()) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	thaw = func() {
		once.Do(func() {
			if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(thaw)
	return thaw
}
