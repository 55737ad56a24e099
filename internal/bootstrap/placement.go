package bootstrap

import (
	"fmt"
	"net"
	"strconv"

	"github.com/slotway/slotway/internal/clusternodes"
	"github.com/slotway/slotway/internal/hashslot"
)

// MinMasters is the smallest cluster Place builds: with fewer masters a
// majority for failover cannot survive the loss of one of them, and
// redis-cli refuses the same way.
const MinMasters = 3

// Plan is where every node goes in a new cluster.
type Plan struct {
	// Masters in slot order.
	Masters []Master
	// SameHost lists, as "REPLICA (master MASTER)", the replicas left on
	// their master's host because the addresses allowed nothing better.
	SameHost []string
}

// Master is one master of a Plan.
type Master struct {
	Addr     string
	Slots    clusternodes.SlotRange
	Replicas []string
}

// ReplicaCount is the number of replicas in the plan.
func (p Plan) ReplicaCount() int {
	n := 0
	for _, m := range p.Masters {
		n += len(m.Replicas)
	}
	return n
}

// Place decides the layout of a cluster made of addrs with replicas
// replicas per master, the way redis-cli does: len(addrs)/(replicas+1)
// masters chosen round-robin over the hosts, the slots split into
// contiguous, near-equal ranges, replicas preferably on a host other than
// their master's (and other than their sibling replicas'), and nodes left
// over added as extra replicas, one per master in turn.
//
// Hosts are compared as written: "localhost" and "127.0.0.1" count as two
// hosts, since a pure function cannot resolve names.
//
// The result depends only on the arguments, so a dry run and the real run
// agree.
func Place(addrs []string, replicas int) (Plan, error) {
	if replicas < 0 {
		return Plan{}, fmt.Errorf("replicas: must be >= 0, got %d", replicas)
	}
	hosts := make([]string, len(addrs))
	seen := map[string]bool{}
	for i, a := range addrs {
		h, err := splitAddr(a)
		if err != nil {
			return Plan{}, err
		}
		if seen[a] {
			return Plan{}, fmt.Errorf("node %s: given twice", a)
		}
		seen[a] = true
		hosts[i] = h
	}
	nMasters := len(addrs) / (replicas + 1)
	if nMasters < MinMasters {
		return Plan{}, fmt.Errorf("%d nodes with %d replicas per master make %d masters; a cluster needs at least %d, so give at least %d nodes",
			len(addrs), replicas, nMasters, MinMasters, MinMasters*(replicas+1))
	}
	if nMasters > hashslot.Count {
		return Plan{}, fmt.Errorf("%d masters: a cluster has only %d slots", nMasters, hashslot.Count)
	}

	order := interleave(addrs, hosts)
	hostOf := map[string]string{}
	for i, a := range addrs {
		hostOf[a] = hosts[i]
	}
	p := Plan{Masters: make([]Master, nMasters)}
	for i := range nMasters {
		p.Masters[i] = Master{
			Addr: order[i],
			Slots: clusternodes.SlotRange{
				Start: i * hashslot.Count / nMasters,
				End:   (i+1)*hashslot.Count/nMasters - 1,
			},
		}
	}
	assignReplicas(p.Masters, order[nMasters:], replicas, hostOf)
	improve(p.Masters, hostOf)
	for _, m := range p.Masters {
		for _, r := range m.Replicas {
			if hostOf[r] == hostOf[m.Addr] {
				p.SameHost = append(p.SameHost, r+" (master "+m.Addr+")")
			}
		}
	}
	return p, nil
}

func splitAddr(a string) (string, error) {
	h, port, err := net.SplitHostPort(a)
	if err != nil {
		return "", fmt.Errorf("node %q: want HOST:PORT: %w", a, err)
	}
	if h == "" {
		return "", fmt.Errorf("node %q: empty host", a)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("node %q: port must be 1..65535", a)
	}
	return h, nil
}

// interleave orders the nodes one per host in turn (hosts in order of first
// appearance), so the first masters land on as many hosts as there are.
func interleave(addrs, hosts []string) []string {
	var hostOrder []string
	byHost := map[string][]string{}
	for i, a := range addrs {
		if _, ok := byHost[hosts[i]]; !ok {
			hostOrder = append(hostOrder, hosts[i])
		}
		byHost[hosts[i]] = append(byHost[hosts[i]], a)
	}
	out := make([]string, 0, len(addrs))
	for len(out) < len(addrs) {
		for _, h := range hostOrder {
			if q := byHost[h]; len(q) > 0 {
				out = append(out, q[0])
				byHost[h] = q[1:]
			}
		}
	}
	return out
}

// assignReplicas gives each master replicas nodes from pool, then hands
// out what is left one per master in turn. Each pick is the first node in
// pool that costs the master least, so ties keep the interleaved order.
func assignReplicas(masters []Master, pool []string, replicas int, hostOf map[string]string) {
	pool = append([]string(nil), pool...)
	pick := func(m *Master) {
		best, bestCost := 0, -1
		have := len(m.Replicas)
		for i, n := range pool {
			// The full slice expression makes append copy, leaving
			// m.Replicas alone.
			c := cost(hostOf[m.Addr], append(m.Replicas[:have:have], n), hostOf)
			if bestCost < 0 || c < bestCost {
				best, bestCost = i, c
			}
		}
		m.Replicas = append(m.Replicas, pool[best])
		pool = append(pool[:best], pool[best+1:]...)
	}
	for i := range masters {
		for range replicas {
			pick(&masters[i])
		}
	}
	for i := 0; len(pool) > 0; i = (i + 1) % len(masters) {
		pick(&masters[i])
	}
}

// Costs of a master's group; a replica on the master's host loses the
// data when that host goes, two replicas sharing a host only lose some
// redundancy, so the first outweighs any number of the second.
const (
	costSameHostAsMaster = 1 << 20
	costSharedHost       = 1
)

// cost of a master on host with these replicas.
func cost(host string, replicas []string, hostOf map[string]string) int {
	c := 0
	count := map[string]int{}
	for _, r := range replicas {
		h := hostOf[r]
		if h == host {
			c += costSameHostAsMaster
		}
		c += count[h] * costSharedHost
		count[h]++
	}
	return c
}

// improve swaps replicas between masters while a swap lowers the total
// cost. The greedy pass can paint itself into a corner (an early master
// takes the only node a later master could use); swapping fixes that. The
// cost strictly falls with each swap, so this ends.
func improve(masters []Master, hostOf map[string]string) {
	mc := func(m Master) int { return cost(hostOf[m.Addr], m.Replicas, hostOf) }
	for improved := true; improved; {
		improved = false
		for a := range masters {
			for b := a + 1; b < len(masters); b++ {
				for i := range masters[a].Replicas {
					for j := range masters[b].Replicas {
						before := mc(masters[a]) + mc(masters[b])
						ra, rb := &masters[a].Replicas[i], &masters[b].Replicas[j]
						*ra, *rb = *rb, *ra
						if mc(masters[a])+mc(masters[b]) < before {
							improved = true
							continue
						}
						*ra, *rb = *rb, *ra
					}
				}
			}
		}
	}
}
