package testutil

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestWaitForPolls(t *testing.T) {
	var n atomic.Int32
	WaitFor(t, 5*time.Second, "the third poll", func() bool { return n.Add(1) == 3 })
	if got := n.Load(); got != 3 {
		t.Fatalf("cond ran %d times, want 3", got)
	}
}

func TestMissingSkipsOutsideCI(t *testing.T) {
	t.Setenv("CI", "")
	var ran bool
	t.Run("missing", func(t *testing.T) {
		Missing(t, "no %s here", "thing")
		ran = true
	})
	if ran {
		t.Fatal("Missing returned instead of ending the test")
	}
}

func TestNoNewGoroutinesWaitsForExit(t *testing.T) {
	check := NoNewGoroutines(t, 0)
	stop := make(chan struct{})
	go func() { <-stop }()
	time.AfterFunc(50*time.Millisecond, func() { close(stop) })
	check() // returns once the goroutine above has exited
}
