package redistest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"path/filepath"
	"time"
)

// Options for StartCluster. Zero values get defaults.
type Options struct {
	// Masters is the number of masters the 16384 slots are spread over.
	// Default 3. Negative values are rejected.
	Masters int
	// Replicas is the number of replicas per master. Default 0.
	Replicas int
	// Spares is the number of extra cluster-enabled nodes that are started
	// but NOT met into the cluster, for later scale-out. Default 0.
	Spares int
	// NodeTimeout is cluster-node-timeout. Default 1s so failover in tests
	// takes a couple of seconds instead of the Redis default of 15s. Redis
	// counts it in milliseconds; sub-millisecond parts are rejected.
	NodeTimeout time.Duration
	// Dir is where node directories (node-PORT/) are created. Required. The
	// caller owns its removal.
	Dir string
	// RedisServer is the redis-server binary. Default: exec.LookPath("redis-server").
	RedisServer string
	// ExtraConfig holds extra redis.conf lines appended for every node, e.g.
	// "maxmemory 64mb". Later lines override earlier ones in Redis.
	ExtraConfig []string
	// Host is the address nodes bind to and announce. Default 127.0.0.1.
	Host string
	// Wrap prefixes the redis-server command line, e.g. ["ip", "netns",
	// "exec", "ns1"] to run the nodes in a network namespace.
	Wrap []string
	// Dial, when set, makes every connection of the harness (probes and
	// go-redis clients), e.g. from inside that namespace.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Logger receives state changes (node started, cluster ready, ...).
	// Default: discard.
	Logger *slog.Logger
}

const (
	defaultMasters     = 3
	defaultNodeTimeout = time.Second
	totalSlots         = 16384
)

// withDefaults validates o and fills in defaults. It rejects bad values
// instead of clamping them.
func (o Options) withDefaults() (Options, error) {
	switch {
	case o.Masters < 0:
		return o, fmt.Errorf("redistest.Masters: must be >= 0 (0 means %d), got %d", defaultMasters, o.Masters)
	case o.Masters > totalSlots:
		return o, fmt.Errorf("redistest.Masters: must be <= %d, got %d", totalSlots, o.Masters)
	case o.Replicas < 0:
		return o, fmt.Errorf("redistest.Replicas: must be >= 0, got %d", o.Replicas)
	case o.Spares < 0:
		return o, fmt.Errorf("redistest.Spares: must be >= 0, got %d", o.Spares)
	case o.NodeTimeout < 0:
		return o, fmt.Errorf("redistest.NodeTimeout: must be >= 0, got %s", o.NodeTimeout)
	case o.NodeTimeout%time.Millisecond != 0:
		return o, fmt.Errorf("redistest.NodeTimeout: must be a whole number of milliseconds, got %s", o.NodeTimeout)
	case o.Dir == "":
		return o, fmt.Errorf("redistest.Dir: required")
	}
	if o.Masters == 0 {
		o.Masters = defaultMasters
	}
	if o.NodeTimeout == 0 {
		o.NodeTimeout = defaultNodeTimeout
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return o, fmt.Errorf("redistest.Dir: make %q absolute: %w", o.Dir, err)
	}
	o.Dir = dir
	if o.RedisServer == "" {
		p, err := exec.LookPath("redis-server")
		if err != nil {
			return o, fmt.Errorf("redistest.RedisServer: look up redis-server: %w", err)
		}
		o.RedisServer = p
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}
