package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slotway/slotway/ha"
	"github.com/slotway/slotway/proxy"
	"github.com/slotway/slotway/stats"
)

// instance is one Slotway process's components, wired together.
type instance struct {
	proxy *proxy.Server
	stats *stats.Server
	group *ha.Group // nil without an ha: section
}

func newInstance(cfg fileConfig, log *slog.Logger) (*instance, error) {
	reg := prometheus.NewRegistry()
	var p *proxy.Server
	healthy := func() bool { return true }
	proxyAddr := ""
	if !cfg.witnessOnly() {
		var err error
		p, err = proxy.New(cfg.Proxy, log.With("component", "proxy"), reg)
		if err != nil {
			return nil, err
		}
		healthy, proxyAddr = p.Ready, p.Addr().String()
	}
	var group *ha.Group
	var holder stats.Holder
	if cfg.HA != nil {
		var err error
		group, err = ha.New(*cfg.HA, ha.Options{
			ProxyAddr: proxyAddr, StatsAddr: cfg.Stats.Listen, Version: proxy.Version, Healthy: healthy,
		}, log.With("component", "ha"), reg)
		if err != nil {
			closeProxy(p)
			return nil, err
		}
		holder = group
	}
	name := proxyAddr
	if cfg.HA != nil {
		name = cfg.HA.Name
	}
	src := &statusSource{name: name, proxy: p, group: group}
	st, err := stats.New(cfg.Stats, log.With("component", "stats"), reg, src, holder)
	if err != nil {
		closeProxy(p)
		return nil, err
	}
	if group != nil {
		group.SetStatsAddr(st.Addr().String())
	}
	return &instance{proxy: p, stats: st, group: group}, nil
}

// closeProxy releases a proxy that never ran: running it with a cancelled
// context closes its listener.
func closeProxy(p *proxy.Server) {
	if p == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = p.Run(ctx)
}

// run runs every component until ctx ends or one fails; then it stops the
// others and returns the first error. The HA group stops first: a holder
// hands the VIP over while its proxy still serves, so clients of the VIP
// see no gap; then the proxy drains and the stats server stops.
func (i *instance) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	serveCtx, stopServing := context.WithCancel(context.Background())
	defer stopServing()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	fail := func(err error) {
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			cancel()
		}
	}
	runs := []func(context.Context) error{i.stats.Run}
	if i.proxy != nil {
		runs = append(runs, i.proxy.Run)
	}
	for _, run := range runs {
		wg.Go(func() { fail(run(serveCtx)) })
	}
	if i.group != nil {
		fail(i.group.Run(ctx))
	} else {
		<-ctx.Done()
	}
	stopServing()
	wg.Wait()
	return errors.Join(errs...)
}
