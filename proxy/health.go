package proxy

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slotway/slotway/internal/clusternodes"
	"github.com/slotway/slotway/internal/ownkeys"
	"github.com/slotway/slotway/internal/redisinfo"
)

// NodeHealth is what the active health check last saw of one node.
type NodeHealth struct {
	Addr      string        `json:"addr"`
	Up        bool          `json:"up"`
	Since     time.Time     `json:"since"` // when Up last changed
	LastCheck time.Time     `json:"last_check"`
	LastOK    time.Time     `json:"last_ok"` // the last check that passed; Latency and Info are from it
	Latency   time.Duration `json:"latency_ns"`
	Failures  int           `json:"consecutive_failures"`
	LastError string        `json:"last_error,omitempty"`
	Info      NodeInfo      `json:"info"`
}

// NodeInfo is what INFO said at the last successful check.
type NodeInfo struct {
	UsedMemory int64  `json:"used_memory"`
	MaxMemory  int64  `json:"maxmemory"`
	Clients    int64  `json:"connected_clients"`
	OpsPerSec  int64  `json:"instantaneous_ops_per_sec"`
	Hits       int64  `json:"keyspace_hits"`
	Misses     int64  `json:"keyspace_misses"`
	Keys       int64  `json:"keys"`
	Expires    int64  `json:"expires"`
	AvgTTL     int64  `json:"avg_ttl_ms"`
	Role       string `json:"role"`
	LinkStatus string `json:"master_link_status,omitempty"`
	ReplLag    int64  `json:"repl_lag_bytes,omitempty"`
	// Migrating and Importing are the slots this master is moving out or
	// in (its own CLUSTER NODES line), for the slot map.
	Migrating []int `json:"migrating,omitempty"`
	Importing []int `json:"importing,omitempty"`
	offset    int64 // master_repl_offset or slave_repl_offset
	// ownKeys and ownExpires count Slotway's own keys (and those of them
	// with a TTL) among Keys and Expires: INFO keyspace leaves them out.
	ownKeys, ownExpires int64
	// raw is the whole reply, for the proxy's own INFO (info.go); runID
	// changes when the node restarts.
	raw, runID string
}

// parseMyMigrations returns the slots the "myself" line of CLUSTER NODES
// marks as migrating ("[slot->-id]") and importing ("[slot-<-id]"),
// sorted; none if the reply does not parse.
func parseMyMigrations(nodes string) (migrating, importing []int) {
	view, err := clusternodes.Parse(nodes)
	if err != nil {
		return nil, nil
	}
	for _, n := range view {
		if !n.Has("myself") {
			continue
		}
		for slot := range n.Migrating {
			migrating = append(migrating, slot)
		}
		for slot := range n.Importing {
			importing = append(importing, slot)
		}
	}
	slices.Sort(migrating)
	slices.Sort(importing)
	return migrating, importing
}

// parseInfo reads the fields Slotway shows from an INFO reply.
func parseInfo(info string) NodeInfo {
	var ni NodeInfo
	var masterOffset, slaveOffset int64
	redisinfo.Each(info, func(k, v string) {
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "used_memory":
			ni.UsedMemory = n
		case "maxmemory":
			ni.MaxMemory = n
		case "connected_clients":
			ni.Clients = n
		case "instantaneous_ops_per_sec":
			ni.OpsPerSec = n
		case "keyspace_hits":
			ni.Hits = n
		case "keyspace_misses":
			ni.Misses = n
		case "role":
			ni.Role = v
		case "run_id":
			ni.runID = v
		case "master_link_status":
			ni.LinkStatus = v
		case "master_repl_offset":
			masterOffset = n
		case "slave_repl_offset":
			slaveOffset = n
		default:
			if strings.HasPrefix(k, "db") {
				// db0:keys=12,expires=0,avg_ttl=0
				redisinfo.Pairs(v, func(name, val string) {
					x, _ := strconv.ParseInt(val, 10, 64)
					switch name {
					case "keys":
						ni.Keys += x
					case "expires":
						ni.Expires += x
					case "avg_ttl":
						ni.AvgTTL = x
					}
				})
			}
		}
	})
	ni.offset = masterOffset
	if ni.Role == "slave" {
		ni.offset = slaveOffset
	}
	return ni
}

// healthChecker PINGs every node of the topology. A master that fails
// failAfter checks in a row is reported down: its connections are reset so
// no client waits on a silent peer, and the topology is refreshed.
type healthChecker struct {
	o         *topologyOwner
	interval  time.Duration
	timeout   time.Duration
	failAfter int
	state     atomic.Pointer[map[string]NodeHealth]
	// kept: the run_id of each node that has the parameters set through
	// Slotway (configset.go); only checkAll touches it.
	kept map[string]string
}

func (h *healthChecker) snapshot() map[string]NodeHealth {
	if p := h.state.Load(); p != nil {
		return *p
	}
	return nil
}

func (h *healthChecker) run(ctx context.Context) {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.checkAll(ctx)
		}
	}
}

func (h *healthChecker) checkAll(ctx context.Context) {
	topo := h.o.load()
	prev := h.snapshot()
	next := make(map[string]NodeHealth, len(topo.nodes))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range topo.nodes {
		wg.Go(func() {
			nh := h.check(ctx, n.Addr, prev[n.Addr])
			mu.Lock()
			next[n.Addr] = nh
			mu.Unlock()
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	// A replica's lag is its master's offset minus its own.
	for _, n := range topo.nodes {
		if n.Role != "replica" {
			continue
		}
		for _, m := range topo.nodes {
			if m.ID == n.MasterID {
				r, mh := next[n.Addr], next[m.Addr]
				if r.Up && mh.Up {
					r.Info.ReplLag = max(mh.Info.offset-r.Info.offset, 0)
					next[n.Addr] = r
				}
			}
		}
	}
	h.state.Store(&next)
	h.restoreKept(ctx, topo, next)
	for _, n := range topo.nodes {
		nh := next[n.Addr]
		h.o.m.nodeMemory.WithLabelValues(n.Addr).Set(float64(nh.Info.UsedMemory))
		h.o.m.nodeKeys.WithLabelValues(n.Addr).Set(float64(nh.Info.Keys))
		h.o.m.nodeOps.WithLabelValues(n.Addr).Set(float64(nh.Info.OpsPerSec))
		h.o.m.nodeClients.WithLabelValues(n.Addr).Set(float64(nh.Info.Clients))
	}
	for _, n := range topo.nodes {
		was, had := prev[n.Addr]
		now := next[n.Addr]
		h.o.m.nodeUp.WithLabelValues(n.Addr).Set(b2f(now.Up))
		if had && was.Up == now.Up {
			continue
		}
		if !now.Up {
			h.o.log.Warn("node down", "node", n.Addr, "role", n.Role, "err", now.LastError)
			if n.Role == "master" {
				if b := topo.backendOf(n.Addr); b != nil {
					b.reset(errors.New("health check failed"))
				}
				h.o.requestRefresh()
			}
		} else if had {
			h.o.log.Info("node up", "node", n.Addr, "role", n.Role)
		}
	}
	for addr := range prev {
		if _, ok := next[addr]; !ok {
			for _, g := range []*prometheus.GaugeVec{h.o.m.nodeUp, h.o.m.nodeMemory, h.o.m.nodeKeys, h.o.m.nodeOps, h.o.m.nodeClients} {
				g.DeleteLabelValues(addr)
			}
		}
	}
}

func (h *healthChecker) check(ctx context.Context, addr string, prev NodeHealth) NodeHealth {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	start := time.Now()
	c := h.o.control(addr)
	err := c.Ping(ctx).Err()
	nh := prev
	nh.Addr = addr
	nh.LastCheck = time.Now()
	if err == nil {
		nh.Latency, nh.LastOK = nh.LastCheck.Sub(start), nh.LastCheck
		if info, ierr := c.Info(ctx, "default").Result(); ierr == nil {
			nh.Info = parseInfo(info)
			nh.Info.raw = info
			if nh.Info.Role == "master" {
				if nodes, nerr := c.ClusterNodes(ctx).Result(); nerr == nil {
					nh.Info.Migrating, nh.Info.Importing = parseMyMigrations(nodes)
				}
				if b := h.o.load().slots[ownSlot]; b != nil && b.addr == addr {
					nh.Info.ownKeys, nh.Info.ownExpires = prev.Info.ownKeys, prev.Info.ownExpires
					if v, err := ownCount.Run(ctx, c, ownkeys.All).Int64Slice(); err == nil && len(v) == 2 {
						nh.Info.ownKeys, nh.Info.ownExpires = v[0], v[1]
					}
				}
			}
		}
		nh.Failures, nh.LastError = 0, ""
		if !prev.Up {
			nh.Up, nh.Since = true, nh.LastCheck
		}
		return nh
	}
	nh.Failures++
	nh.LastError = err.Error()
	if prev.Since.IsZero() {
		nh.Since = nh.LastCheck // never seen up
	}
	if nh.Up && nh.Failures >= h.failAfter {
		nh.Up, nh.Since = false, nh.LastCheck
	}
	return nh
}

func (t *topology) backendOf(addr string) *backend {
	for _, b := range t.masters {
		if b.addr == addr {
			return b
		}
	}
	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
