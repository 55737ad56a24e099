package scaler

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slotway/slotway/internal/clusternodes"
	"github.com/slotway/slotway/internal/hashslot"
	"github.com/slotway/slotway/internal/redisinfo"
)

// The collector measures the cluster for the policy: INFO per master
// (memory, clients, commands and CPU as deltas between evaluations,
// replica links) and the per-slot command counts every
// Slotway instance keeps, pulled from each group member and summed.

// SlotOpsFunc returns every group member's cumulative per-slot command
// counters (len hashslot.Count each), by member name. Members that do not
// answer are left out; the error is only for "none answered".
type SlotOpsFunc func(ctx context.Context) (map[string][]uint64, error)

// measurement is one collection: the policy's sample and what the status
// page and the traffic planner need besides.
type measurement struct {
	sample  Sample
	view    *View
	slotOps []float64 // per-slot ops/s summed over the group (nil: unknown)
	// unreachable counts masters that did not answer INFO: a signal of
	// its own (the sample is then on hold), never a silent zero.
	unreachable int
}

type counterAt struct {
	v float64
	t time.Time
}

type collector struct {
	nodes   *Nodes
	seeds   func() []string
	slotOps SlotOpsFunc
	timeout time.Duration

	mu      sync.Mutex
	cmds    map[string]counterAt // addr -> total_commands_processed
	cpu     map[string]counterAt // addr -> used_cpu_sys + used_cpu_user
	slots   map[string][]uint64  // member -> last counters
	slotsAt time.Time
}

// masterInfo is what INFO tells about one master.
type masterInfo struct {
	used, maxmem, clients, maxclients int64
	cmds, cpu                         float64
	// replicas that are not online or whose last ack is old
	lagging []string
}

func parseMasterInfo(s string) masterInfo {
	var mi masterInfo
	num := func(v string) int64 { n, _ := strconv.ParseInt(v, 10, 64); return n }
	flt := func(v string) float64 { f, _ := strconv.ParseFloat(v, 64); return f }
	redisinfo.Each(s, func(k, v string) {
		switch {
		case k == "used_memory":
			mi.used = num(v)
		case k == "maxmemory":
			mi.maxmem = num(v)
		case k == "connected_clients":
			mi.clients = num(v)
		case k == "maxclients":
			mi.maxclients = num(v)
		case k == "total_commands_processed":
			mi.cmds = flt(v)
		case k == "used_cpu_sys" || k == "used_cpu_user":
			mi.cpu += flt(v)
		case strings.HasPrefix(k, "slave") && strings.Contains(v, "ip="):
			// slave0:ip=..,port=..,state=online,offset=..,lag=0 (lag: seconds
			// since the replica's last ack)
			f := map[string]string{}
			redisinfo.Pairs(v, func(a, b string) { f[a] = b })
			if f["state"] != "online" || num(f["lag"]) > maxReplicaLagSeconds {
				mi.lagging = append(mi.lagging, fmt.Sprintf("%s:%s (state %s, lag %ss)", f["ip"], f["port"], f["state"], f["lag"]))
			}
		}
	})
	return mi
}

// maxReplicaLagSeconds: a replica silent for longer is lagging, and the
// policy holds (a failover then would lose writes, and a resharding adds
// to the replication stream).
const maxReplicaLagSeconds = 10

// collect measures the cluster. It never returns a partial sample as if
// it were whole: masters that do not answer put the sample on hold.
func (c *collector) collect(ctx context.Context, now time.Time) (*measurement, error) {
	v, err := ReadView(ctx, c.nodes, c.seeds())
	if err != nil {
		return nil, fmt.Errorf("read the cluster: %w", err)
	}
	masters := v.Masters()
	infos := make([]masterInfo, len(masters))
	errs := make([]error, len(masters))
	var wg sync.WaitGroup
	for i, m := range masters {
		wg.Go(func() {
			ictx, cancel := context.WithTimeout(ctx, c.timeout)
			defer cancel()
			s, err := c.nodes.Client(m.Addr).Info(ictx, "memory", "clients", "stats", "cpu", "replication").Result()
			if err != nil {
				errs[i] = err
				return
			}
			infos[i] = parseMasterInfo(s)
		})
	}
	wg.Wait()
	ms := &measurement{view: v, sample: Sample{Time: now}}
	var holds []string
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmds == nil {
		c.cmds, c.cpu = map[string]counterAt{}, map[string]counterAt{}
	}
	for i, m := range masters {
		if errs[i] != nil {
			holds = append(holds, fmt.Sprintf("master %s not answering: %v", m.Addr, errs[i]))
			ms.unreachable++
			continue
		}
		mi := infos[i]
		ops, okOps := rate(c.cmds, m.Addr, mi.cmds, now)
		cpu, okCPU := rate(c.cpu, m.Addr, mi.cpu, now)
		if !okOps || !okCPU {
			holds = append(holds, "first measurement of "+m.Addr)
		}
		for _, r := range mi.lagging {
			holds = append(holds, fmt.Sprintf("replica %s of %s lags", r, m.Addr))
		}
		ms.sample.Masters = append(ms.sample.Masters, MasterSample{Addr: m.Addr, UsedMemory: mi.used, MaxMemory: mi.maxmem,
			Clients: mi.clients, MaxClients: mi.maxclients, Ops: ops, CPUPct: 100 * cpu})
	}
	forgetGone(c.cmds, masters)
	forgetGone(c.cpu, masters)
	ms.unreachable += len(v.Unreachable)
	if h := v.Healthy(); h != "" {
		holds = append(holds, "cluster_state: "+h)
	}
	for _, m := range masters {
		for slot := range m.Migrating {
			holds = append(holds, fmt.Sprintf("slot %d is migrating from %s", slot, m.Addr))
			break
		}
		for slot := range m.Importing {
			holds = append(holds, fmt.Sprintf("slot %d is importing into %s", slot, m.Addr))
			break
		}
	}
	if len(v.Disputed) > 0 {
		holds = append(holds, fmt.Sprintf("%d slots claimed by two masters", len(v.Disputed)))
	}
	ms.sample.Hold = strings.Join(holds, "; ")
	ms.slotOps = c.slotRates(ctx, now)
	return ms, nil
}

// rate turns a cumulative counter into a per-second rate since the last
// call (false on the first call or after a restart reset the counter).
func rate(prev map[string]counterAt, addr string, v float64, now time.Time) (float64, bool) {
	p, ok := prev[addr]
	prev[addr] = counterAt{v, now}
	dt := now.Sub(p.t).Seconds()
	if !ok || dt <= 0 || v < p.v {
		return 0, false
	}
	return (v - p.v) / dt, true
}

func forgetGone(m map[string]counterAt, masters []*clusternodes.NodeInfo) {
	for addr := range m {
		if !slices.ContainsFunc(masters, func(n *clusternodes.NodeInfo) bool { return n.Addr == addr }) {
			delete(m, addr)
		}
	}
}

// slotRates sums the members' per-slot counter deltas into ops/s. A
// member seen for the first time (or restarted) contributes from the
// next evaluation on. nil when nobody answered yet.
func (c *collector) slotRates(ctx context.Context, now time.Time) []float64 {
	if c.slotOps == nil {
		return nil
	}
	octx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cur, err := c.slotOps(octx)
	if err != nil || len(cur) == 0 {
		return nil
	}
	dt := now.Sub(c.slotsAt).Seconds()
	out := make([]float64, hashslot.Count)
	answered := false
	for member, vals := range cur {
		prev, ok := c.slots[member]
		if !ok || len(prev) != hashslot.Count || len(vals) != hashslot.Count || dt <= 0 {
			continue
		}
		for i, v := range vals {
			if v >= prev[i] {
				out[i] += float64(v-prev[i]) / dt
			}
		}
		answered = true
	}
	c.slots, c.slotsAt = cur, now
	if !answered {
		return nil
	}
	return out
}
