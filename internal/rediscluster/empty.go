package rediscluster

import (
	"context"
	"fmt"
)

// StartEmpty starts n cluster-enabled nodes that are not met with each
// other and serve no slot, for tests of cluster formation itself. Every
// node is a spare (Spares lists them, Seeds is empty); opts.Masters,
// Replicas and Spares are ignored. Like Start, it returns the closed
// cluster on failure when it got that far.
func StartEmpty(ctx context.Context, opts Options, n int) (*Cluster, error) {
	if n < 0 {
		return nil, fmt.Errorf("start empty redis nodes: n must be >= 0, got %d", n)
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("start empty redis nodes: %w", err)
	}
	c, err := launch(ctx, opts, 0, n)
	if err != nil {
		return c, fmt.Errorf("start empty redis nodes: %w", err)
	}
	return c, nil
}
