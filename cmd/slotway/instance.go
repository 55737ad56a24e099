package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slotway/slotway/proxy"
	"github.com/slotway/slotway/stats"
)

// instance is one Slotway process's components, wired together.
type instance struct {
	proxy *proxy.Server
	stats *stats.Server
}

func newInstance(cfg fileConfig, log *slog.Logger) (*instance, error) {
	reg := prometheus.NewRegistry()
	p, err := proxy.New(cfg.Proxy, log.With("component", "proxy"), reg)
	if err != nil {
		return nil, err
	}
	st, err := stats.New(cfg.Stats, log.With("component", "stats"), reg, p)
	if err != nil {
		// The proxy holds a bound listener: running it with a cancelled
		// context closes it.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = p.Run(ctx)
		return nil, err
	}
	return &instance{proxy: p, stats: st}, nil
}

// run runs every component until ctx ends or one fails; then it stops the
// others and returns the first error.
func (i *instance) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for n, run := range []func(context.Context) error{i.proxy.Run, i.stats.Run} {
		wg.Go(func() {
			if err := run(ctx); err != nil {
				errs[n] = err
				cancel()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
