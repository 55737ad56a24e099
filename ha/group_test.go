package ha

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slotway/slotway/internal/testutil"
)

func freeUDPTCPPort(t *testing.T) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(p))
		l.Close()
		if err == nil {
			u.Close()
			return p
		}
	}
	t.Fatal("no free port")
	return 0
}

type member struct {
	g      *Group
	cancel context.CancelFunc
	done   chan error
}

func (m *member) stop(t *testing.T) {
	t.Helper()
	m.cancel()
	select {
	case err := <-m.done:
		if err != nil {
			t.Errorf("%s Run: %v", m.g.cfg.Name, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not stop", m.g.cfg.Name)
	}
}

// startGroup runs n members on loopback in status mode, priorities as given.
func startGroup(t *testing.T, prios ...int) []*member {
	t.Helper()
	addrs := make([]string, len(prios))
	for i := range addrs {
		addrs[i] = "127.0.0.1:" + strconv.Itoa(freeUDPTCPPort(t))
	}
	level := slog.LevelWarn
	if os.Getenv("SLOTWAY_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	var ms []*member
	for i, prio := range prios {
		cfg := DefaultConfig()
		cfg.Name = fmt.Sprintf("p%d", i+1)
		cfg.Bind = addrs[i]
		for j, a := range addrs {
			if j != i {
				cfg.Peers = append(cfg.Peers, a)
			}
		}
		cfg.Priority = prio
		cfg.VIP = VIPConfig{Mode: "status"}
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("member", cfg.Name)
		g, err := New(cfg, Options{}, log, prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		m := &member{g: g, cancel: cancel, done: make(chan error, 1)}
		go func() { m.done <- g.Run(ctx) }()
		ms = append(ms, m)
	}
	return ms
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, what, cond)
}

// holders returns the names of running members that hold the VIP.
func holders(ms []*member) []string {
	var out []string
	for _, m := range ms {
		if m.g.IsHolder() {
			out = append(out, m.g.cfg.Name)
		}
	}
	return out
}

// agreed reports whether every member names the same single holder.
func agreed(ms []*member, want string) bool {
	h := holders(ms)
	if len(h) != 1 || (want != "" && h[0] != want) {
		return false
	}
	for _, m := range ms {
		if m.g.State().Holder != h[0] {
			return false
		}
	}
	return true
}

func TestGroupElectsAndFailsOver(t *testing.T) {
	noLeak := testutil.NoNewGoroutines(t, 1)
	ms := startGroup(t, 100, 200, 150)
	waitFor(t, "p2 (highest priority) to hold the VIP, agreed by all", func() bool { return agreed(ms, "p2") })
	term := ms[1].g.State().Term
	if ok, lt := ms[1].g.IsLeader(); !ok || lt != term {
		t.Errorf("holder is not the leader: %v term %d", ok, lt)
	}

	// Graceful stop of the holder: it drains and the next best claims.
	start := time.Now()
	ms[1].stop(t)
	rest := []*member{ms[0], ms[2]}
	waitFor(t, "p3 to take over after p2's graceful stop", func() bool { return agreed(rest, "p3") })
	t.Logf("graceful handover p2 -> p3 seen %v after stop began", time.Since(start).Round(time.Millisecond))
	if got := ms[2].g.State().Term; got <= term {
		t.Errorf("new holder's term %d is not above %d", got, term)
	}

	// With one of three left, the last member has no quorum: it must not
	// hold the VIP (it fences itself).
	ms[2].stop(t)
	waitFor(t, "p1 alone to hold nothing", func() bool {
		s := ms[0].g.State()
		return !s.Quorum && !ms[0].g.IsHolder()
	})
	ms[0].stop(t)
	noLeak()
}

func TestHooksRunWithArguments(t *testing.T) {
	out := filepath.Join(t.TempDir(), "hook.out")
	h := newHookRunner(HooksConfig{OnHolder: "echo holder >> " + out}, "10.77.0.100/24", slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.run(ctx); close(done) }()
	h.fire("on_holder", &State{Role: "holder", Term: 7, Reason: "no holder: best ranked claims"})
	h.fire("on_backup", &State{Role: "candidate", Term: 7}) // not configured: only logged
	waitFor(t, "the hook to run", func() bool {
		b, _ := os.ReadFile(out)
		return len(b) > 0
	})
	cancel()
	<-done
	b, _ := os.ReadFile(out)
	if got, want := strings.TrimSpace(string(b)), "holder holder 10.77.0.100/24 7 no holder: best ranked claims"; got != want {
		t.Errorf("hook wrote %q, want %q", got, want)
	}
}

func TestGroupCrashedHolder(t *testing.T) {
	ms := startGroup(t, 200, 100, 100)
	defer func() {
		for _, m := range ms[1:] {
			m.stop(t)
		}
	}()
	waitFor(t, "p1 to hold", func() bool { return agreed(ms, "p1") })
	// A crash: no drain, no leave, as a kill -9 would.
	ms[0].g.abandon.Store(true)
	ms[0].stop(t)
	start := time.Now()
	rest := ms[1:]
	waitFor(t, "p2 to take over from the crashed holder", func() bool { return agreed(rest, "p2") })
	t.Logf("takeover %v after the holder stopped (fence_after %v + margin %v)",
		time.Since(start).Round(time.Millisecond), DefaultConfig().FenceAfter, takeoverMargin)
}
