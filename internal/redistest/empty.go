package redistest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
)

// NewEmpty starts n cluster-enabled nodes that are not met with each other
// and serve no slot, for tests of cluster formation itself. Every node is
// a spare (Spares lists them, Seeds is empty); opts.Masters, Replicas and
// Spares are ignored. Cleanup, skipping and log tails are as for New.
func NewEmpty(t testing.TB, opts Options, n int) *Cluster {
	t.Helper()
	return startForTest(t, opts, func(ctx context.Context, opts Options) (*Cluster, error) { return startEmpty(ctx, opts, n) })
}

// startEmpty is start without forming a cluster. On failure it closes what
// it started and returns the cluster for its logs.
func startEmpty(ctx context.Context, opts Options, n int) (c *Cluster, err error) {
	if n < 0 {
		return nil, fmt.Errorf("start empty redis nodes: n must be >= 0, got %d", n)
	}
	opts.Masters, opts.Replicas, opts.Spares = 0, 0, n
	opts, err = opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("start empty redis nodes: %w", err)
	}
	c = &Cluster{opts: opts, log: opts.Logger, byID: map[string]*Node{}}
	defer func() {
		if err != nil {
			if cerr := c.Close(); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
	}()
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return c, fmt.Errorf("start empty redis nodes: create %s: %w", opts.Dir, err)
	}
	for i := range n {
		node, err := c.startNewNode(ctx)
		if err != nil {
			return c, fmt.Errorf("start empty redis nodes: node %d of %d: %w", i+1, n, err)
		}
		c.nodes = append(c.nodes, node)
		c.byID[node.ID] = node
	}
	c.spares = c.nodes
	return c, nil
}
