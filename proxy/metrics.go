package proxy

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// cmdStats counts one command on the data path with plain atomics; the
// Prometheus collector reads them at scrape time, so no label lookup
// happens per command.
type cmdStats struct {
	calls    atomic.Uint64
	errors   atomic.Uint64 // rejected ones included
	rejected atomic.Uint64 // refused before it ran (refusals, NOPERM, arity)
	usec     atomic.Uint64 // parse to reply, as the proxy saw it
	// base: the counters at the last CONFIG RESETSTAT, for INFO
	// commandstats (the metrics and the page count since start).
	base struct{ calls, errors, rejected, usec atomic.Uint64 }
}

type metrics struct {
	accepted          prometheus.Counter
	protocolErrors    prometheus.Counter
	unknownCommands   prometheus.Counter
	crossSlot         prometheus.Counter
	splits            prometheus.Counter
	authFailures      prometheus.Counter
	rejectedClients   prometheus.Counter
	backendFailures   prometheus.Counter
	outputLimitKills  prometheus.Counter
	resubscribes      prometheus.Counter
	backendDialErrors prometheus.Counter
	backendConnErrors prometheus.Counter
	backendWrites     prometheus.Counter
	backendReads      prometheus.Counter
	redirects         map[redirect]prometheus.Counter
	topologyRefreshes *prometheus.CounterVec
	nodeUp            *prometheus.GaugeVec
	nodeMemory        *prometheus.GaugeVec
	nodeKeys          *prometheus.GaugeVec
	nodeOps           *prometheus.GaugeVec
	nodeClients       *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, s *Server) (*metrics, error) {
	m := &metrics{
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slotway_proxy_client_connections_accepted_total",
			Help: "Client connections accepted.",
		}),
		protocolErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slotway_proxy_protocol_errors_total",
			Help: "Client connections closed for malformed RESP or limits exceeded.",
		}),
		unknownCommands: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slotway_proxy_unknown_commands_total",
			Help: "Commands refused because the cluster does not know them.",
		}),
		crossSlot: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slotway_proxy_crossslot_total",
			Help: "Multi-key commands refused because their keys hash to different slots.",
		}),
		outputLimitKills: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slotway_proxy_output_limit_disconnects_total",
			Help: "Clients disconnected because their output queue (pub/sub) passed proxy.limits.pubsub_output.",
		}),
		resubscribes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slotway_proxy_pubsub_resubscribes_total",
			Help: "Channels, patterns and shard channels subscribed again on the cluster after it dropped them (master failover, slot move, home master change); messages published in between were not delivered.",
		}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slotway_proxy_auth_failures_total",
			Help: "AUTH attempts with a wrong user or password.",
		}),
		rejectedClients: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slotway_proxy_rejected_clients_total",
			Help: "Connections refused because max_clients was reached.",
		}),
		splits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slotway_proxy_split_commands_total",
			Help: "Multi-key commands split across slots and merged.",
		}),
		backendFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slotway_proxy_backend_failures_total",
			Help: "Commands answered with an error because their master was unreachable or the connection broke.",
		}),
		backendDialErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slotway_proxy_backend_dial_errors_total",
			Help: "Failed attempts to connect to a cluster node.",
		}),
		backendConnErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slotway_proxy_backend_connection_errors_total",
			Help: "Backend connections that broke while in use.",
		}),
		backendWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slotway_proxy_backend_writes_total",
			Help: "Write syscalls to backends; commands sent per write is the batching factor.",
		}),
		backendReads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slotway_proxy_backend_reads_total",
			Help: "Read syscalls from backends that returned data.",
		}),
		redirects: map[redirect]prometheus.Counter{},
		topologyRefreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slotway_proxy_topology_refreshes_total",
			Help: "Slot-map refreshes by result.",
		}, []string{"result"}),
		nodeUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "slotway_proxy_node_up",
			Help: "1 when the node answered its last health checks.",
		}, []string{"node"}),
		nodeMemory: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "slotway_proxy_node_memory_bytes",
			Help: "used_memory of the node at its last health check.",
		}, []string{"node"}),
		nodeKeys: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "slotway_proxy_node_keys",
			Help: "Keys held by the node at its last health check.",
		}, []string{"node"}),
		nodeOps: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "slotway_proxy_node_ops_per_second",
			Help: "instantaneous_ops_per_sec of the node at its last health check.",
		}, []string{"node"}),
		nodeClients: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "slotway_proxy_node_clients",
			Help: "connected_clients of the node at its last health check.",
		}, []string{"node"}),
	}
	redirects := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "slotway_proxy_redirects_total",
		Help: "MOVED, ASK, TRYAGAIN and CLUSTERDOWN replies followed by the proxy.",
	}, []string{"kind"})
	for _, k := range []redirect{redirMoved, redirAsk, redirTryAgain, redirClusterDown} {
		m.redirects[k] = redirects.WithLabelValues(k.String())
	}
	cs := []prometheus.Collector{
		m.accepted, m.protocolErrors, m.unknownCommands, m.crossSlot, m.splits, m.authFailures, m.rejectedClients, m.backendFailures, m.outputLimitKills, m.resubscribes,
		m.backendDialErrors, m.backendConnErrors, m.backendWrites, m.backendReads, redirects, m.topologyRefreshes, m.nodeUp,
		m.nodeMemory, m.nodeKeys, m.nodeOps, m.nodeClients,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "slotway_proxy_client_connections",
			Help: "Client connections open now.",
		}, func() float64 { return float64(s.clientCount()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "slotway_proxy_loop_client_connections",
			Help: "Client connections served by the event loops; the others (TLS, subscribers, transactions, blocking commands) have a goroutine each.",
		}, func() float64 { return float64(s.loopClients.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "slotway_proxy_paused",
			Help: "CLIENT PAUSE in effect on this instance: 0 none, 1 writes held, 2 every command held.",
		}, func() float64 { return float64(s.pauseMode.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "slotway_proxy_paused_clients",
			Help: "Clients whose next command waits for the pause to end.",
		}, func() float64 { return float64(s.pause.held.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "slotway_proxy_monitor_clients",
			Help: "Clients in MONITOR mode; each command of every client is formatted for them.",
		}, func() float64 { return float64(s.mon.n.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "slotway_proxy_topology_age_seconds",
			Help: "Time since the slot map was last read from the cluster.",
		}, func() float64 {
			t := s.topo.load()
			if t.at.IsZero() {
				return -1
			}
			return time.Since(t.at).Seconds()
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "slotway_proxy_slots_served",
			Help: "Slots that have a known master.",
		}, func() float64 { return float64(servedSlots(s.topo.load())) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "slotway_proxy_backend_connections",
			Help: "Backend data-path connections currently up (backend_conns per master, at least one per event loop).",
		}, func() float64 { return float64(s.topo.connectionsUp()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "slotway_proxy_masters",
			Help: "Masters that serve slots in the current slot map.",
		}, func() float64 { return float64(len(s.topo.load().masters)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "slotway_proxy_parked_requests",
			Help: "Commands parked now: retried while their master is unreachable or the cluster answers TRYAGAIN or CLUSTERDOWN (a failover, a slot move).",
		}, func() float64 { n, _ := s.parked(time.Now()); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "slotway_proxy_parked_longest_seconds",
			Help: "How long the longest-parked command has been waiting; 0 when none is.",
		}, func() float64 { _, d := s.parked(time.Now()); return d.Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "slotway_proxy_retry_budget_seconds",
			Help: "How long a command is parked before its client gets the error: proxy.retry_timeout, or derived from cluster-node-timeout.",
		}, func() float64 { return s.retryBudget().Seconds() }),
		&commandCollector{s: s},
		latencyCollector{s: s},
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

var commandsDesc = prometheus.NewDesc("slotway_proxy_commands_total",
	"Commands by command and result (ok, or error: an error reply from Redis or the proxy).",
	[]string{"command", "result"}, nil)

type commandCollector struct{ s *Server }

func (c *commandCollector) Describe(ch chan<- *prometheus.Desc) { ch <- commandsDesc }

func (c *commandCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.s.table.Load()
	if t == nil {
		return
	}
	emit := func(ci *cmdInfo) {
		calls, errs := ci.stats.calls.Load(), ci.stats.errors.Load()
		if calls == 0 {
			return
		}
		ok := calls - min(errs, calls)
		ch <- prometheus.MustNewConstMetric(commandsDesc, prometheus.CounterValue, float64(ok), ci.name, "ok")
		ch <- prometheus.MustNewConstMetric(commandsDesc, prometheus.CounterValue, float64(errs), ci.name, "error")
	}
	for _, ci := range t.cmds {
		if ci.kind == kindLocal {
			continue // emitted below, also before the table is known
		}
		emit(ci)
		for _, sub := range ci.subs {
			emit(sub)
		}
	}
	for _, ci := range localStats() {
		emit(ci)
	}
}
