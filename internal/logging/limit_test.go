package logging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// collect is a handler that keeps every record it is given, as text.
type collect struct {
	mu    sync.Mutex
	lines []string
	attrs string
}

func (c *collect) Enabled(context.Context, slog.Level) bool { return true }
func (c *collect) WithAttrs(as []slog.Attr) slog.Handler {
	n := &collect{attrs: c.attrs}
	for _, a := range as {
		n.attrs += " " + a.String()
	}
	return &shared{c, n.attrs}
}
func (c *collect) WithGroup(string) slog.Handler { return c }
func (c *collect) Handle(_ context.Context, r slog.Record) error {
	return (&shared{c, c.attrs}).Handle(context.Background(), r)
}

type shared struct {
	c     *collect
	attrs string
}

func (s *shared) Enabled(context.Context, slog.Level) bool { return true }
func (s *shared) WithAttrs(as []slog.Attr) slog.Handler {
	n := s.attrs
	for _, a := range as {
		n += " " + a.String()
	}
	return &shared{s.c, n}
}
func (s *shared) WithGroup(string) slog.Handler { return s }
func (s *shared) Handle(_ context.Context, r slog.Record) error {
	line := r.Level.String() + s.attrs + " " + r.Message
	r.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
	s.c.mu.Lock()
	s.c.lines = append(s.c.lines, line)
	s.c.mu.Unlock()
	return nil
}

var t0 = time.Date(2026, 12, 2, 6, 3, 14, 0, time.UTC)

func logAt(h slog.Handler, at time.Duration, level slog.Level, msg string, args ...any) {
	r := slog.NewRecord(t0.Add(at), level, msg, 0)
	r.Add(args...)
	_ = h.Handle(context.Background(), r)
}

// TestLimitOutage replays the outage of issue 12: 89 "topology refresh
// failed" warnings in 18 s, each with a different error. Three lines come
// out, and their counts add up to 89.
func TestLimitOutage(t *testing.T) {
	c := &collect{}
	h := NewLimit(c, 10*time.Second).WithAttrs([]slog.Attr{slog.String("component", "proxy")})
	for i := range 89 {
		at := time.Duration(i) * 18 * time.Second / 89
		logAt(h, at, slog.LevelWarn, "topology refresh failed", "err", fmt.Errorf("10.0.0.%d:6379: i/o timeout", i))
	}
	logAt(h, 30*time.Second, slog.LevelInfo, "node up", "node", "10.0.0.1:6379")
	want := []string{
		"WARN component=proxy topology refresh failed err=10.0.0.0:6379: i/o timeout",
		"WARN component=proxy topology refresh failed err=10.0.0.49:6379: i/o timeout repeated=49",
		"WARN component=proxy topology refresh failed err=10.0.0.88:6379: i/o timeout repeated=39",
		"INFO component=proxy node up node=10.0.0.1:6379",
	}
	if got := strings.Join(c.lines, "\n"); got != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
}

// TestLimitNextOccurrence: when the next occurrence after the interval
// comes before any sweep, it is written with the count it stands for.
func TestLimitNextOccurrence(t *testing.T) {
	c := &collect{}
	h := NewLimit(c, 10*time.Second)
	logAt(h, 0, slog.LevelWarn, "a")
	logAt(h, 5*time.Second, slog.LevelWarn, "b")
	logAt(h, 6*time.Second, slog.LevelWarn, "b")
	logAt(h, 7*time.Second, slog.LevelWarn, "b")
	logAt(h, 10*time.Second, slog.LevelInfo, "sweep") // b's interval runs to 15 s
	logAt(h, 16*time.Second, slog.LevelWarn, "b")
	want := "WARN a\nWARN b\nINFO sweep\nWARN b repeated=3"
	if got := strings.Join(c.lines, "\n"); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestLimitKeys(t *testing.T) {
	c := &collect{}
	l := NewLimit(c, 10*time.Second)
	proxy := l.WithAttrs([]slog.Attr{slog.String("component", "proxy")})
	ha := l.WithAttrs([]slog.Attr{slog.String("component", "ha")})
	for i := range 3 {
		at := time.Duration(i) * time.Second
		logAt(proxy, at, slog.LevelWarn, "node down", "node", "a:1", "err", errors.New("x"))
		logAt(proxy, at, slog.LevelWarn, "node down", "node", "b:1", "err", errors.New("y"))
		logAt(ha, at, slog.LevelWarn, "node down", "node", "a:1")
		logAt(proxy, at, slog.LevelError, "node down", "node", "a:1")
		logAt(proxy, at, slog.LevelInfo, "serving", "n", 1) // neither Info nor Error is limited
	}
	want := []string{
		"WARN component=proxy node down node=a:1 err=x",
		"WARN component=proxy node down node=b:1 err=y",
		"WARN component=ha node down node=a:1",
		"ERROR component=proxy node down node=a:1",
		"INFO component=proxy serving n=1",
		"ERROR component=proxy node down node=a:1",
		"INFO component=proxy serving n=1",
		"ERROR component=proxy node down node=a:1",
		"INFO component=proxy serving n=1",
	}
	got := append([]string(nil), c.lines...)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// After the interval, any record writes the counts of the lines that
	// did not come again, each with its last record; b:1, counted then,
	// is counted again until 30 s.
	c.lines = nil
	logAt(proxy, 20*time.Second, slog.LevelInfo, "tick")
	logAt(proxy, 20*time.Second, slog.LevelWarn, "node down", "node", "b:1", "err", errors.New("z"))
	want = []string{
		"WARN component=proxy node down node=a:1 err=x repeated=2",
		"WARN component=proxy node down node=b:1 err=y repeated=2",
		"WARN component=ha node down node=a:1 repeated=2",
		"INFO component=proxy tick",
	}
	// The sweep's order over keys is a map's: compare as sets.
	if len(c.lines) != len(want) {
		t.Fatalf("got\n%s\nwant (in any order)\n%s", strings.Join(c.lines, "\n"), strings.Join(want, "\n"))
	}
	for _, w := range want {
		found := false
		for _, g := range c.lines {
			found = found || g == w
		}
		if !found {
			t.Errorf("missing %q in\n%s", w, strings.Join(c.lines, "\n"))
		}
	}
}

// TestLimitConcurrent: loggers of one Limit used from many goroutines
// lose no count (run with -race).
func TestLimitConcurrent(t *testing.T) {
	c := &collect{}
	l := NewLimit(c, time.Hour)
	var wg sync.WaitGroup
	for g := range 8 {
		h := l.WithAttrs([]slog.Attr{slog.Int("g", g)})
		wg.Go(func() {
			for i := range 100 {
				logAt(h, time.Duration(i)*time.Millisecond, slog.LevelWarn, "same")
			}
		})
	}
	wg.Wait()
	logAt(l, 2*time.Hour, slog.LevelInfo, "later")
	total := 0
	for _, line := range c.lines {
		if strings.Contains(line, " same") {
			n := 0
			if i := strings.Index(line, "repeated="); i >= 0 {
				fmt.Sscan(line[i+len("repeated="):], &n)
			}
			total += max(1, n)
		}
	}
	if total != 800 || len(c.lines) != 17 {
		t.Errorf("%d lines counting %d warnings, want 17 lines counting 800:\n%s", len(c.lines), total, strings.Join(c.lines, "\n"))
	}
}

// TestLimitWritesEveryError: errors (a failed reload, each answering an
// operator) are never held back, only warnings.
func TestLimitWritesEveryError(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(NewLimit(slog.NewTextHandler(&buf, nil), time.Hour))
	for range 3 {
		log.Error("config reload failed; nothing changed", "err", "line 8: unknown key proxy.max_clientz")
		log.Warn("topology refresh failed", "err", "dial tcp: refused")
	}
	if n := strings.Count(buf.String(), "config reload failed"); n != 3 {
		t.Errorf("%d error lines, want 3:\n%s", n, buf.String())
	}
	if n := strings.Count(buf.String(), "topology refresh failed"); n != 1 {
		t.Errorf("%d warning lines, want 1:\n%s", n, buf.String())
	}
}
