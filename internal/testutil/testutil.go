// Package testutil holds the helpers every package's tests share: polling
// waits, the rule for missing prerequisites (skip locally, fail under
// CI=true), a goroutine leak check, and a logger that writes to the test's
// log. Only tests import it.
package testutil

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slotway/slotway/internal/poll"
)

// waitTick is WaitFor's polling interval.
const waitTick = 10 * time.Millisecond

// WaitFor polls cond every 10ms until it returns true, and fails the test
// with "timed out waiting for <what>" if that takes longer than timeout.
// cond runs on the test goroutine.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	err := poll.Until(context.Background(), what, poll.Options{Every: waitTick, Timeout: timeout},
		func(context.Context) (bool, string, error) { return cond(), "", nil })
	if err != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// CI reports whether the tests run in CI (CI=true), where a missing
// prerequisite is a failure, never a skip.
func CI() bool { return os.Getenv("CI") == "true" }

// Missing reports a prerequisite the test lacks: it skips the test, or,
// under CI=true, fails it.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if CI() {
		t.Fatalf("%s (required under CI=true)", msg)
	}
	t.Skipf("%s (under CI=true this fails instead)", msg)
}

// RequireTool returns the path of cmd on PATH; without it the test is
// skipped, or fails under CI=true. install says how to get it.
func RequireTool(t testing.TB, cmd, install string) string {
	t.Helper()
	p, err := exec.LookPath(cmd)
	if err != nil {
		Missing(t, "%s not installed (%s)", cmd, install)
	}
	return p
}

// NoNewGoroutines returns a check that waits up to 5s until no more
// goroutines run than now, plus slack, and fails the test otherwise: call
// it once everything the test started should have stopped.
func NoNewGoroutines(t testing.TB, slack int) func() {
	before := runtime.NumGoroutine()
	return func() {
		t.Helper()
		WaitFor(t, 5*time.Second, fmt.Sprintf("goroutines to exit (%d before)", before), func() bool {
			return runtime.NumGoroutine() <= before+slack
		})
	}
}

// Writer returns an io.Writer that logs each write as a line of the
// test's log (safe for concurrent use).
func Writer(t testing.TB) io.Writer { return &writer{t: t} }

type writer struct {
	mu sync.Mutex
	t  testing.TB
}

func (w *writer) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// Logger returns a text logger at level that writes to the test's log
// instead of stderr, so a test's lines appear with it (and only on
// failure or -v).
func Logger(t testing.TB, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(Writer(t), &slog.HandlerOptions{Level: level}))
}

// Buffer collects what a process or logger writes, safe to read while it
// writes.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
