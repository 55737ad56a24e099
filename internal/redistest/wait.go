package redistest

import (
	"testing"
	"time"
)

// WaitFor polls cond every 10ms until it returns true, and fails the test
// with "timed out waiting for <what>" if that takes longer than timeout.
// cond runs on the test goroutine.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(waitTick)
	defer tick.Stop()
	for {
		if cond() {
			return
		}
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// waitTick is WaitFor's polling interval.
const waitTick = 10 * time.Millisecond
