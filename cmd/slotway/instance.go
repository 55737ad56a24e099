package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slotway/slotway/ha"
	"github.com/slotway/slotway/proxy"
	"github.com/slotway/slotway/scaler"
	"github.com/slotway/slotway/stats"
)

// instance is one Slotway process's components, wired together.
type instance struct {
	proxy  *proxy.Server
	stats  *stats.Server
	group  *ha.Group      // nil without an ha: section
	scaler *scaler.Scaler // nil without a scaler: section
}

// reload, if not nil, serves POST /api/v1/reload.
func newInstance(cfg fileConfig, log *slog.Logger, reload stats.Reloader) (inst *instance, err error) {
	// Built in order; if a part fails, the parts built before it are
	// closed in reverse order, so no listener or client is left open.
	var closers []func() error
	defer func() {
		if err == nil {
			return
		}
		for i := len(closers) - 1; i >= 0; i-- {
			if cerr := closers[i](); cerr != nil {
				log.Warn("close a part of an instance that failed to start", "err", cerr)
			}
		}
	}()
	reg := prometheus.NewRegistry()
	var p *proxy.Server
	healthy := func() bool { return true }
	proxyAddr := ""
	if !cfg.WitnessOnly() {
		p, err = proxy.New(cfg.Proxy, log.With("component", "proxy"), reg)
		if err != nil {
			return nil, err
		}
		closers = append(closers, p.Close)
		healthy, proxyAddr = p.Ready, p.Addr().String()
	}
	// The stats address is bound before the group: members advertise the
	// real port (stats.listen may say :0).
	ln, err := stats.Listen(cfg.Stats)
	if err != nil {
		return nil, err
	}
	closers = append(closers, ln.Close)
	var group *ha.Group
	parts := stats.Parts{Listener: ln, Reloader: reload}
	if cfg.HA != nil {
		// ha.New holds nothing until Run (memberlist starts there).
		group, err = ha.New(*cfg.HA, ha.Options{
			ProxyAddr: proxyAddr, StatsAddr: ln.Addr().String(), Version: proxy.Version, Healthy: healthy,
		}, log.With("component", "ha"), reg)
		if err != nil {
			return nil, err
		}
		parts.Holder = holderAPI{group}
	}
	name := proxyAddr
	if cfg.HA != nil {
		name = cfg.HA.Name
	}
	src := &statusSource{name: name, proxy: p}
	inst = &instance{proxy: p, group: group}
	if p != nil {
		parts.Pauser = pauser{p}
	}
	if cfg.Scaler != nil && p != nil {
		sc, err := newScaler(cfg, name, p, group, reg, log.With("component", "scaler"))
		if err != nil {
			return nil, err
		}
		closers = append(closers, sc.Close)
		inst.scaler = sc
		src.scaler = sc
		parts.Scaler = &scalerAPI{Scaler: sc, group: group}
	}
	inst.stats, err = stats.New(cfg.Stats, log.With("component", "stats"), reg, src, parts)
	if err != nil {
		return nil, err
	}
	return inst, nil
}

// newScaler wires the scaler to the proxy (its view of the nodes, its
// credentials and TLS) and to the group (leadership and term).
func newScaler(cfg fileConfig, name string, p *proxy.Server, group *ha.Group, reg prometheus.Registerer, log *slog.Logger) (*scaler.Scaler, error) {
	seeds := func() []string {
		var out []string
		for _, n := range p.Nodes() {
			out = append(out, n.Addr)
		}
		return append(out, cfg.Proxy.Cluster.Seeds...)
	}
	opts := scaler.Options{
		Name: name, Seeds: seeds, Log: log, Registerer: reg, RefreshProxies: p.RefreshTopology,
		Nodes: &scaler.Nodes{Username: cfg.Proxy.Cluster.Username, Password: cfg.Proxy.Cluster.Password,
			DialTimeout: cfg.Proxy.Cluster.DialTimeout},
	}
	if cfg.Proxy.Cluster.TLS.Enabled {
		opts.Nodes.TLS = p.BackendTLS
	}
	if group != nil {
		opts.Leader, opts.Terms = group.IsLeader, group
	}
	opts.SlotOps = groupSlotOps(name, p, group, &http.Client{Timeout: 3 * time.Second})
	opts.MemberSeeds = groupSeeds(cfg.Proxy.Cluster.Seeds, name, group, &http.Client{Timeout: 3 * time.Second}, log)
	return scaler.New(*cfg.Scaler, opts)
}

// scalerAPI is the scaler as the stats server uses it (stats.Scaler): the
// scaler's own Start, Operation and Control, and the group's leader.
type scalerAPI struct {
	*scaler.Scaler
	group *ha.Group
}

// Leader is the group's leader and its stats address.
func (a *scalerAPI) Leader() (string, string) {
	if a.group == nil {
		return "", ""
	}
	st := a.group.State()
	for _, m := range st.Members {
		if m.Name == st.Leader {
			return m.Name, m.StatsAddr
		}
	}
	return st.Leader, ""
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
	if i.scaler != nil {
		runs = append(runs, i.scaler.Run)
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

// pauser gives the stats server's admin API the proxy's CLIENT PAUSE.
type pauser struct{ p *proxy.Server }

func (a pauser) Pause(d time.Duration, writeOnly bool) stats.PauseStatus {
	return stats.PauseStatus(a.p.Pause(d, writeOnly))
}
func (a pauser) Unpause() stats.PauseStatus { return stats.PauseStatus(a.p.Unpause()) }
