package rediscluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/slotway/slotway/internal/hashslot"
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
	// TLS, when set, makes every node serve TLS only (tls-port on the
	// node's port, port 0) and use TLS on the cluster bus and for
	// replication. The harness's own clients then speak TLS too.
	TLS *TLSFiles

	tlsClient *tls.Config // built from TLS by withDefaults
}

// TLSFiles are the PEM files of a TLS-only cluster (see
// internal/testcert to make them).
type TLSFiles struct {
	// CAFile signed CertFile. Nodes verify their peers with it, and the
	// harness verifies the nodes with it.
	CAFile string
	// CertFile and KeyFile are every node's certificate. Nodes also present
	// it when they connect to each other (cluster bus, replication, MIGRATE),
	// so it needs both the serverAuth and clientAuth extended key usages,
	// and a SAN for Options.Host (an IP SAN for 127.0.0.1). The harness
	// presents it as its client certificate too.
	CertFile string
	KeyFile  string
}

// clientConfig loads the files into the harness's client-side TLS config.
// Nodes run with tls-auth-clients optional, so clients that present no
// certificate (e.g. a proxy under test) are accepted; ones that do present
// one must have it signed by CAFile.
func (f *TLSFiles) clientConfig(host string) (*tls.Config, error) {
	switch {
	case f.CAFile == "":
		return nil, errors.New("rediscluster.TLS.CAFile: required")
	case f.CertFile == "" || f.KeyFile == "":
		return nil, errors.New("rediscluster.TLS.CertFile, KeyFile: both required")
	}
	pemCA, err := os.ReadFile(f.CAFile)
	if err != nil {
		return nil, fmt.Errorf("rediscluster.TLS.CAFile: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemCA) {
		return nil, fmt.Errorf("rediscluster.TLS.CAFile: no PEM certificate in %s", f.CAFile)
	}
	pair, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("rediscluster.TLS.CertFile, KeyFile: %w", err)
	}
	// Every node binds and announces Host, so one ServerName fits all.
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		RootCAs:      roots,
		Certificates: []tls.Certificate{pair},
		ServerName:   host,
	}, nil
}

const (
	defaultMasters     = 3
	defaultNodeTimeout = time.Second
	totalSlots         = hashslot.Count
)

// withDefaults validates o and fills in defaults. It rejects bad values
// instead of clamping them.
func (o Options) withDefaults() (Options, error) {
	switch {
	case o.Masters < 0:
		return o, fmt.Errorf("rediscluster.Masters: must be >= 0 (0 means %d), got %d", defaultMasters, o.Masters)
	case o.Masters > totalSlots:
		return o, fmt.Errorf("rediscluster.Masters: must be <= %d, got %d", totalSlots, o.Masters)
	case o.Replicas < 0:
		return o, fmt.Errorf("rediscluster.Replicas: must be >= 0, got %d", o.Replicas)
	case o.Spares < 0:
		return o, fmt.Errorf("rediscluster.Spares: must be >= 0, got %d", o.Spares)
	case o.NodeTimeout < 0:
		return o, fmt.Errorf("rediscluster.NodeTimeout: must be >= 0, got %s", o.NodeTimeout)
	case o.NodeTimeout%time.Millisecond != 0:
		return o, fmt.Errorf("rediscluster.NodeTimeout: must be a whole number of milliseconds, got %s", o.NodeTimeout)
	case o.Dir == "":
		return o, fmt.Errorf("rediscluster.Dir: required")
	}
	if o.Masters == 0 {
		o.Masters = defaultMasters
	}
	if o.NodeTimeout == 0 {
		o.NodeTimeout = defaultNodeTimeout
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return o, fmt.Errorf("rediscluster.Dir: make %q absolute: %w", o.Dir, err)
	}
	o.Dir = dir
	if o.RedisServer == "" {
		p, err := exec.LookPath("redis-server")
		if err != nil {
			return o, fmt.Errorf("rediscluster.RedisServer: look up redis-server: %w", err)
		}
		o.RedisServer = p
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.TLS != nil {
		files := *o.TLS // the caller's copy stays as it was
		o.TLS = &files
		cfg, err := o.TLS.clientConfig(o.Host)
		if err != nil {
			return o, err
		}
		o.tlsClient = cfg
		// Absolute paths, since redis-server runs in the node directory.
		for _, p := range []*string{&o.TLS.CAFile, &o.TLS.CertFile, &o.TLS.KeyFile} {
			if *p, err = filepath.Abs(*p); err != nil {
				return o, fmt.Errorf("rediscluster.TLS: %w", err)
			}
		}
	}
	return o, nil
}
