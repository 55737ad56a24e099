package redistest

import (
	"context"
	"testing"

	"github.com/slotway/slotway/internal/rediscluster"
)

// NewEmpty starts n cluster-enabled nodes that are not met with each other
// and serve no slot (rediscluster.StartEmpty). Cleanup, skipping and log
// tails are as for New.
func NewEmpty(t testing.TB, opts Options, n int) *Cluster {
	t.Helper()
	return startForTest(t, opts, func(ctx context.Context, opts Options) (*Cluster, error) {
		return rediscluster.StartEmpty(ctx, opts, n)
	})
}
