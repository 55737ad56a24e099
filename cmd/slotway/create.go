package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/slotway/slotway/internal/bootstrap"
)

const createUsage = `Usage: slotway cluster create [-replicas R] [-timeout D]
           [-user U] [-password P] [-config FILE] HOST:PORT...

Forms a new Redis Cluster from empty cluster-enabled nodes, as
redis-cli --cluster create --cluster-replicas R does. With N nodes there
are N/(R+1) masters (at least 3); nodes left over become extra replicas.
Masters are spread over the hosts and replicas kept off their master's
host where the addresses allow. Every node is checked first: if any is
unreachable, holds keys or belongs to a cluster, nothing is changed. If
the nodes already form one healthy cluster, it says so and exits 0.

Flags (before the addresses):
  -replicas R     replicas per master (default 0)
  -timeout D      give up after D (default 2m)
  -user U         ACL user for the nodes
  -password P     password for the nodes
  -config FILE    take user and password from proxy.cluster of FILE
                  (-user and -password win)
`

// cmdCreate runs `slotway cluster create`. configPath may come from the
// flags of `slotway cluster` itself.
func cmdCreate(ctx context.Context, args []string, configPath string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cluster create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, createUsage) }
	replicas := fs.Int("replicas", 0, "replicas per master")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	user := fs.String("user", "", "ACL user for the nodes")
	password := fs.String("password", "", "password for the nodes")
	fs.StringVar(&configPath, "config", configPath, "config file")
	fs.StringVar(&configPath, "c", configPath, "config file (short for -config)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	addrs := fs.Args()
	for _, a := range addrs {
		if strings.HasPrefix(a, "-") {
			fs.Usage()
			return usageError{fmt.Errorf("create: flag %s after the addresses; put flags first", a)}
		}
	}
	if *timeout <= 0 {
		return usageError{fmt.Errorf("create: -timeout must be positive, got %v", *timeout)}
	}
	// Bad arguments are usage errors (exit 2) before any node is dialled.
	if _, err := bootstrap.Place(addrs, *replicas); err != nil {
		if len(addrs) == 0 {
			fs.Usage()
		}
		return usageError{fmt.Errorf("create: %w", err)}
	}
	opts := bootstrap.Options{Addrs: addrs, Replicas: *replicas, Username: *user, Password: *password, Progress: stdout}
	if configPath != "" {
		cfg, err := loadConfig(configPath)
		if err != nil {
			return err
		}
		cl := cfg.Proxy.Cluster
		if cl.TLS.Enabled {
			return errors.New("create: proxy.cluster.tls is enabled, but cluster create speaks plain TCP only")
		}
		if *user == "" && *password == "" {
			opts.Username, opts.Password = cl.Username, cl.Password
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, err := bootstrap.Create(ctx, opts)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	what := "cluster created"
	if !res.Created {
		what = "cluster already created"
	}
	fmt.Fprintf(stdout, "%s: %d masters, %d replicas, cluster_state:ok\n", what, len(res.Masters), res.ReplicaCount())
	for _, m := range res.Masters {
		n := 0
		ranges := make([]string, len(m.Slots))
		for i, r := range m.Slots {
			n += r.Len()
			ranges[i] = fmt.Sprintf("%d-%d", r.Start, r.End)
		}
		fmt.Fprintf(stdout, "  master %s slots %s (%d slots)\n", m.Addr, strings.Join(ranges, ","), n)
		for _, r := range m.Replicas {
			fmt.Fprintf(stdout, "    replica %s\n", r)
		}
	}
	return nil
}
