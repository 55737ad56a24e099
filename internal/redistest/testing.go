package redistest

import (
	"context"
	"testing"

	"github.com/slotway/slotway/internal/rediscluster"
)

// logTailLines is how much of each node's log New prints on failure.
const logTailLines = 20

// New starts a cluster for a test and closes it in t.Cleanup. Dir defaults
// to t.TempDir(). If redis-server is not on PATH (and Options.RedisServer is
// empty) the test is skipped, or fails under CI=true. If the start fails, or
// the test has failed by cleanup time, the tail of each node's log is
// printed.
func New(t testing.TB, opts Options) *Cluster {
	t.Helper()
	return startForTest(t, opts, rediscluster.Start)
}

// startForTest runs startFn with the test's defaults and cleanup.
func startForTest(t testing.TB, opts Options, startFn func(context.Context, Options) (*Cluster, error)) *Cluster {
	t.Helper()
	if opts.RedisServer == "" {
		opts.RedisServer = RequireServer(t)
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(t.Context(), rediscluster.StartTimeout)
	defer cancel()
	c, err := startFn(ctx, opts)
	if err != nil {
		if c != nil {
			t.Logf("redistest: node logs:\n%s", c.LogTails(logTailLines))
		}
		t.Fatalf("redistest: %v", err)
	}
	// Registered after t.TempDir, so it runs before the directory is removed.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("redistest: node logs:\n%s", c.LogTails(logTailLines))
		}
		if err := c.Close(); err != nil {
			t.Errorf("redistest: %v", err)
		}
	})
	return c
}
