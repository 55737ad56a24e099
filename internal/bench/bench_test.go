package bench

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/internal/testutil"
)

func dbsize(t *testing.T, s *redistest.Standalone) int64 {
	t.Helper()
	c := s.Client()
	defer c.Close()
	n, err := c.DBSize(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRunClosedLoop runs two sizes with pipelining against a real Redis:
// results in run order, no errors, every GET hits, the key space capped
// while the keys exist, no key left at the end and no goroutine either.
func TestRunClosedLoop(t *testing.T) {
	s := redistest.StartStandalone(t)
	noLeak := testutil.NoNewGoroutines(t, 0)
	var phases []string
	var during []int64
	rep, err := Run(context.Background(), Config{
		Addr: s.Addr, Duration: 200 * time.Millisecond, Clients: 3, Pipeline: 4,
		Sizes: []int{16, 16384}, KeySpace: 64 << 10,
		PhaseDone: func(r Result) {
			phases = append(phases, fmt.Sprintf("%d %s", r.SizeBytes, r.Command))
			during = append(during, dbsize(t, s))
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "16 SET,16 GET,16384 SET,16384 GET"; strings.Join(phases, ",") != want {
		t.Fatalf("phases %v, want %s", phases, want)
	}
	for i, r := range rep.Results {
		if r.Ops == 0 || r.Errors != 0 || r.Misses != 0 || r.OpsPerSec <= 0 || r.MBPerSec <= 0 ||
			r.P50 <= 0 || r.P50 > r.P99 || r.P99 > r.Max || r.Unsent != 0 {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	// 64 KiB of values: 4096 keys of 16 bytes, 4 of 16 KiB.
	if rep.Results[0].Keys != 4096 || rep.Results[2].Keys != 4 || during[2] > during[1]+4 {
		t.Errorf("keys %d and %d, DBSIZE after each phase %v", rep.Results[0].Keys, rep.Results[2].Keys, during)
	}
	if n := dbsize(t, s); n != 0 || rep.Cleanup.Error != "" || rep.Cleanup.Deleted != during[3] {
		t.Errorf("after the run: %d keys left, cleanup %+v, keys before %d", n, rep.Cleanup, during[3])
	}
	if rep.Interrupted || rep.Config.Mode != "closed-loop" || !rep.End.After(rep.Start) {
		t.Errorf("report: interrupted %v, mode %s, %v..%v", rep.Interrupted, rep.Config.Mode, rep.Start, rep.End)
	}
	noLeak()
}

// TestRunOpenLoop: at -rate every command due in a phase is accounted for
// exactly once, sent (answered or failed) or unsent, and no more are sent.
func TestRunOpenLoop(t *testing.T) {
	s := redistest.StartStandalone(t)
	var ticks int
	rep, err := Run(context.Background(), Config{
		Addr: s.Addr, Duration: 250 * time.Millisecond, Clients: 2, Pipeline: 3, Rate: 400,
		Sizes: []int{128}, ProgressInterval: 10 * time.Millisecond,
		Progress: func(p Progress) {
			ticks++
			if p.Phases != 2 || p.NSizes != 1 || p.Size != 128 || p.Duration != 250*time.Millisecond {
				t.Errorf("progress %+v", p)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Config.Mode != "open-loop" || len(rep.Results) != 2 {
		t.Fatalf("report %+v", rep)
	}
	for _, r := range rep.Results {
		if got := r.Ops + r.Errors + r.Unsent; got != 100 || r.Ops == 0 {
			t.Errorf("%s: ops %d + errors %d + unsent %d = %d, want the 100 due in 250ms at 400/s", r.Command, r.Ops, r.Errors, r.Unsent, got)
		}
	}
	t.Logf("%d progress calls; %+v", ticks, rep.Results)
}

// TestRunCountsErrors: a server out of memory refuses every SET; the
// errors, the first error text and the GET misses are all in the result,
// and the run still cleans up.
func TestRunCountsErrors(t *testing.T) {
	s := redistest.StartStandalone(t)
	c := s.Client()
	defer c.Close()
	if err := c.ConfigSet(context.Background(), "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), Config{Addr: s.Addr, Duration: 100 * time.Millisecond, Clients: 2, Sizes: []int{1024}})
	if err != nil {
		t.Fatal(err)
	}
	set, get := rep.Results[0], rep.Results[1]
	if set.Ops != 0 || set.Errors == 0 || !strings.HasPrefix(set.FirstError, "OOM ") {
		t.Errorf("SET: %+v", set)
	}
	if get.Errors != 0 || get.Ops == 0 || get.Misses != get.Ops || get.MBPerSec != 0 {
		t.Errorf("GET: %+v", get)
	}
	if rep.Cleanup.Error != "" {
		t.Errorf("cleanup: %+v", rep.Cleanup)
	}
}

// TestRunInterrupted: cancelling ends the run after the current phase,
// marks the report, and still deletes the keys.
func TestRunInterrupted(t *testing.T) {
	s := redistest.StartStandalone(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rep, err := Run(ctx, Config{Addr: s.Addr, Duration: 100 * time.Millisecond, Clients: 2, Sizes: []int{16, 32},
		PhaseDone: func(Result) { cancel() }})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Interrupted || len(rep.Results) != 1 || rep.Cleanup.Deleted == 0 || dbsize(t, s) != 0 {
		t.Errorf("interrupted %v, %d results, cleanup %+v, %d keys left", rep.Interrupted, len(rep.Results), rep.Cleanup, dbsize(t, s))
	}
}

func TestConfigErrors(t *testing.T) {
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	nobody := fmt.Sprintf("127.0.0.1:%d", port)
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no endpoint", Config{}, "endpoint is required"},
		{"no port", Config{Addr: "localhost"}, `endpoint "localhost": want HOST:PORT`},
		{"zero size", Config{Addr: nobody, Sizes: []int{16, 0}}, "size 0: must be at least 1 byte"},
		{"too big", Config{Addr: nobody, Sizes: []int{MaxSize + 1}}, "size 536870913 bytes: exceeds 512 MB"},
		{"twice", Config{Addr: nobody, Sizes: []int{16, 16}}, "size 16 listed twice"},
		{"clients", Config{Addr: nobody, Clients: -1}, "clients must be 1..10000, got -1"},
		{"pipeline", Config{Addr: nobody, Pipeline: 20000}, "pipeline must be 1..10000, got 20000"},
		{"rate", Config{Addr: nobody, Rate: -5}, "rate must be 0 (as fast as possible) or 1..10000000, got -5"},
		{"duration", Config{Addr: nobody, Duration: -time.Second}, "duration must be positive, got -1s"},
		{"nobody listening", Config{Addr: nobody, Clients: 2}, "bench: " + nobody + ": PING: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Run(context.Background(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) || rep != nil {
				t.Errorf("got %v, %v; want an error containing %q", rep, err, tc.want)
			}
		})
	}
}

func TestSchedule(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		rate int
		want int64
	}{
		{250 * time.Millisecond, 400, 100},
		{300 * time.Millisecond, 200, 60},
		{time.Second, 3, 3},
		{time.Millisecond, 3, 1}, // command 0 is due at once
		{time.Hour, MaxRate, 36_000_000_000},
	} {
		if got := slotsBefore(tc.d, tc.rate); got != tc.want {
			t.Errorf("slotsBefore(%v, %d) = %d, want %d", tc.d, tc.rate, got, tc.want)
		}
	}
	p := &phase{rate: 3, start: time.Unix(100, 0)}
	for n, want := range map[int64]time.Duration{0: 0, 1: 333333333, 3: time.Second, 4: 1333333333} {
		if got := p.due(n).Sub(p.start); got != want {
			t.Errorf("due(%d) = start+%v, want +%v", n, got, want)
		}
	}
	if got := KeysFor(524288, DefaultMaxKeys, DefaultKeySpace); got != 512 {
		t.Errorf("KeysFor(512 KiB) = %d, want 512 (256 MB)", got)
	}
	if got := KeysFor(MaxSize, DefaultMaxKeys, DefaultKeySpace); got != 1 {
		t.Errorf("KeysFor(512 MB) = %d, want 1", got)
	}
}
