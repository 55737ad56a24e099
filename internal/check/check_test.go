package check

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/redistest"
)

// TestMain silences go-redis's global logger, which reports every failed
// dial (the restart test makes hundreds; the results count them).
func TestMain(m *testing.M) {
	redis.SetLogger(quiet{})
	os.Exit(m.Run())
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// server is one standalone redis-server (internal/redistest).
type server struct{ *redistest.Standalone }

func (s server) addr() string { return s.Addr }

func startServer(t *testing.T) server { return server{redistest.StartStandalone(t)} }

// do sends one command to the server from a client of its own.
func (s server) do(args ...any) error {
	c := s.Client()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Do(ctx, args...).Err()
}

func run(t *testing.T, ctx context.Context, cfg Config) Result {
	t.Helper()
	start := time.Now()
	r, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("in %v:\n%s", time.Since(start).Round(time.Millisecond), r)
	return r
}

var firstLine = regexp.MustCompile(`^written \d+, acked \d+, lost \d+, stale \d+, errors \d+\n`)

func TestClean(t *testing.T) {
	s := startServer(t)
	r := run(t, t.Context(), Config{Addr: s.addr(), Rate: 500, Duration: 2 * time.Second})
	if r.Lost != 0 || r.Stale != 0 || r.Errors != 0 || !r.OK() {
		t.Errorf("lost %d, stale %d, errors %d: want all 0", r.Lost, r.Stale, r.Errors)
	}
	if r.Written <= 500 || r.Written > 1200 || r.Acked != r.Written {
		t.Errorf("written %d, acked %d: want 500 < written <= 1200 (rate 500 for 2s) and all acked", r.Written, r.Acked)
	}
	if r.Reads != r.Written || r.Verified == 0 || r.Verified > r.Written || r.Unverified != 0 {
		t.Errorf("reads %d, verified %d, unverified %d", r.Reads, r.Verified, r.Unverified)
	}
	if r.P50 <= 0 || r.P99 < r.P50 || r.Max < r.P99 || r.ReadP50 <= 0 || r.ReadMax < r.ReadP99 {
		t.Errorf("latencies: %v %v %v / %v %v %v", r.P50, r.P99, r.Max, r.ReadP50, r.ReadP99, r.ReadMax)
	}
	if r.LongestErrorWindow != 0 || len(r.ErrorKinds) != 0 {
		t.Errorf("error window %v, kinds %v", r.LongestErrorWindow, r.ErrorKinds)
	}
	out := r.String()
	if !firstLine.MatchString(out) || !strings.Contains(out, "\nerror kinds: none\n") {
		t.Errorf("String:\n%s", out)
	}
	// The keys hold this run's values: a second run (new run id) starts
	// over them without complaint.
	r = run(t, t.Context(), Config{Addr: s.addr(), Rate: 1000, Keys: 100, Workers: 3, Duration: 500 * time.Millisecond})
	if !r.OK() || r.Errors != 0 || r.Verified != 100 {
		t.Errorf("second run: lost %d, stale %d, errors %d, verified %d", r.Lost, r.Stale, r.Errors, r.Verified)
	}
}

// TestFlushAll loses acknowledged writes with FLUSHALL mid-run; the run is
// ended by cancelling ctx.
func TestFlushAll(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	ticks := progressTicks()
	go func() {
		<-ticks.c // about a second of writes
		if err := s.do("FLUSHALL"); err != nil {
			t.Error(err)
		}
		<-ticks.c // and more after it
		cancel()
	}()
	r := run(t, ctx, Config{Addr: s.addr(), Rate: 500, Progress: ticks.send})
	if r.Lost == 0 || r.OK() {
		t.Errorf("lost %d after FLUSHALL: want > 0", r.Lost)
	}
	if r.Errors != 0 {
		t.Errorf("errors %d", r.Errors)
	}
	if r.Verified == 0 {
		t.Errorf("the run ended before the final pass verified anything")
	}
}

// TestPause: CLIENT PAUSE shorter than OpTimeout shows as latency, longer
// as timeouts and an error window; nothing is lost either way.
func TestPause(t *testing.T) {
	s := startServer(t)
	// Pause once the run has written for a while (its first progress
	// report).
	pauseAtFirstReport := func(ms int) func(Progress) {
		ticks := progressTicks()
		go func() {
			<-ticks.c
			if err := s.do("CLIENT", "PAUSE", ms); err != nil {
				t.Error(err)
			}
		}()
		return ticks.send
	}
	r := run(t, t.Context(), Config{Addr: s.addr(), Rate: 500, Duration: 3 * time.Second, Progress: pauseAtFirstReport(1000)})
	if !r.OK() || r.Errors != 0 {
		t.Errorf("lost %d, stale %d, errors %d: want 0", r.Lost, r.Stale, r.Errors)
	}
	if r.Max < 700*time.Millisecond {
		t.Errorf("max write latency %v: want about 1s (CLIENT PAUSE 1000)", r.Max)
	}

	r = run(t, t.Context(), Config{Addr: s.addr(), Rate: 500, Duration: 3 * time.Second, OpTimeout: 300 * time.Millisecond,
		Progress: pauseAtFirstReport(1000)})
	if !r.OK() {
		t.Errorf("lost %d, stale %d: want 0", r.Lost, r.Stale)
	}
	if r.Errors == 0 || r.ErrorKinds["timeout"] == 0 || r.LongestErrorWindow < 300*time.Millisecond {
		t.Errorf("errors %d, kinds %v, window %v: want timeouts and a window >= 300ms", r.Errors, r.ErrorKinds, r.LongestErrorWindow)
	}
}

// TestRestart stops the server mid-run (saving its data) and starts it
// again: connection errors and an error window, but no lost write.
func TestRestart(t *testing.T) {
	s := startServer(t)
	restarted := make(chan struct{})
	ticks := progressTicks()
	go func() {
		defer close(restarted)
		<-ticks.c                    // a second of writes first
		_ = s.do("SHUTDOWN", "SAVE") // the connection closes instead of a reply
		select {
		case <-s.Exited():
		case <-time.After(5 * time.Second):
			t.Error("redis-server did not exit on SHUTDOWN SAVE")
			return
		}
		// The outage itself: the server stays down this long.
		time.Sleep(300 * time.Millisecond)
	}()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// launch calls t.Fatal, so it runs on the test goroutine: Run goes on
	// in the background meanwhile.
	type ret struct {
		r   Result
		err error
	}
	done := make(chan ret, 1)
	go func() {
		r, err := Run(ctx, Config{Addr: s.addr(), Rate: 500, OpTimeout: 500 * time.Millisecond, Progress: ticks.send})
		done <- ret{r, err}
	}()
	<-restarted
	if t.Failed() {
		cancel()
		<-done
		return
	}
	s.Restart()
	// Writes again after the restart, then end the run.
	for p := <-ticks.c; ; p = <-ticks.c {
		if next := <-ticks.c; next.Acked > p.Acked {
			break
		}
	}
	cancel()
	got := <-done
	if got.err != nil {
		t.Fatal(got.err)
	}
	r := got.r
	t.Logf("\n%s", r)
	if !r.OK() || r.Unverified != 0 {
		t.Errorf("lost %d, stale %d, unverified %d: want 0", r.Lost, r.Stale, r.Unverified)
	}
	if r.Errors == 0 || r.ErrorKinds["conn"] == 0 || r.LongestErrorWindow < 200*time.Millisecond || r.Acked == r.Written {
		t.Errorf("errors %d, kinds %v, window %v: want connection errors over >= 200ms", r.Errors, r.ErrorKinds, r.LongestErrorWindow)
	}
	if !strings.Contains(r.String(), fmt.Sprintf("conn %d", r.ErrorKinds["conn"])) {
		t.Errorf("String lacks the conn kind:\n%s", r)
	}
}

func TestRunErrors(t *testing.T) {
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(t.Context(), Config{Addr: "127.0.0.1:" + strconv.Itoa(port), Duration: time.Second})
	if err == nil || !strings.Contains(err.Error(), "PING") {
		t.Errorf("nobody listening: %v", err)
	}
	for _, cfg := range []Config{
		{},
		{Addr: "nohostport"},
		{Addr: "127.0.0.1:1", Rate: -1},
		{Addr: "127.0.0.1:1", Workers: 5, Keys: 4},
		{Addr: "127.0.0.1:1", Duration: -time.Second},
	} {
		if _, err := Run(t.Context(), cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}

// ticks passes a run's progress reports (about one a second) to the test
// without ever blocking the run.
type ticks struct{ c chan Progress }

func progressTicks() ticks { return ticks{c: make(chan Progress, 1024)} }

func (k ticks) send(p Progress) {
	select {
	case k.c <- p:
	default:
	}
}
