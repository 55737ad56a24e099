package scaler

import (
	"context"
	"crypto/tls"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/clusternodes"
	"github.com/slotway/slotway/internal/hashslot"
)

// Nodes gives the scaler control-plane clients for cluster nodes (the
// proxy's credentials and TLS), cached by address.
type Nodes struct {
	Username, Password string
	TLS                func(addr string) (*tls.Config, error) // nil: plain TCP
	DialTimeout        time.Duration

	mu      sync.Mutex
	clients map[string]*redis.Client
}

// Client returns the control client for addr.
func (n *Nodes) Client(addr string) *redis.Client {
	n.mu.Lock()
	defer n.mu.Unlock()
	if c := n.clients[addr]; c != nil {
		return c
	}
	if n.clients == nil {
		n.clients = map[string]*redis.Client{}
	}
	opts := &redis.Options{
		Addr: addr, Username: n.Username, Password: n.Password,
		Protocol: 2, DialTimeout: max(n.DialTimeout, time.Second),
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
		PoolSize: 4, MaxRetries: -1, DisableIdentity: true,
	}
	if n.TLS != nil {
		cfg, err := n.TLS(addr)
		if err == nil {
			opts.TLSConfig = cfg
		}
	}
	c := redis.NewClient(opts)
	n.clients[addr] = c
	return c
}

// Close closes every client.
func (n *Nodes) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for a, c := range n.clients {
		c.Close()
		delete(n.clients, a)
	}
}

// View is the cluster as its nodes describe it: every reachable node's own
// CLUSTER NODES line (its flags, slots and migration markers), plus what
// the others say about the nodes that did not answer.
type View struct {
	Nodes       map[string]*clusternodes.NodeInfo // by ID, each node's own line when it answered
	Reached     map[string]bool                   // IDs that answered
	Unreachable []string                          // addresses that did not answer
	Owner       [hashslot.Count]string            // by each master's own claim
	Disputed    []int                             // slots two nodes claim in their own lines
	known       map[string]map[string]bool        // ID -> IDs it knows
	views       map[string][]clusternodes.NodeInfo
}

// ReadView asks every node reachable from seeds (and every node they
// know) for CLUSTER NODES.
func ReadView(ctx context.Context, n *Nodes, seeds []string) (*View, error) {
	v := &View{Nodes: map[string]*clusternodes.NodeInfo{}, Reached: map[string]bool{},
		known: map[string]map[string]bool{}, views: map[string][]clusternodes.NodeInfo{}}
	// Breadth first, each round's nodes asked in parallel: the first seed
	// that answers names the rest.
	todo := slices.Clone(seeds)
	seen := map[string]bool{}
	others := map[string]clusternodes.NodeInfo{}
	type answer struct {
		addr     string
		lines    []clusternodes.NodeInfo
		err      error
		badReply bool // answered, but not CLUSTER NODES as we know it
	}
	for len(todo) > 0 {
		var round []string
		for _, a := range todo {
			if a != "" && !seen[a] {
				seen[a] = true
				round = append(round, a)
			}
		}
		todo = nil
		if len(v.Nodes) == 0 && len(round) > 1 {
			// Until one node answered, try seeds one at a time.
			todo, round = round[1:], round[:1]
			for _, a := range todo {
				seen[a] = false
			}
		}
		answers := make([]answer, len(round))
		var wg sync.WaitGroup
		for i, addr := range round {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				out, err := n.Client(addr).ClusterNodes(cctx).Result()
				if err != nil {
					answers[i] = answer{addr: addr, err: err}
					return
				}
				lines, err := clusternodes.Parse(out)
				answers[i] = answer{addr: addr, lines: lines, err: err, badReply: err != nil}
			}()
		}
		wg.Wait()
		for _, ans := range answers {
			if ans.badReply {
				return nil, fmt.Errorf("CLUSTER NODES of %s: %w", ans.addr, ans.err)
			}
			if ans.err != nil {
				v.Unreachable = append(v.Unreachable, ans.addr)
				continue
			}
			lines := ans.lines
			for i := range lines {
				l := lines[i]
				if l.Has("myself") {
					v.Nodes[l.ID] = &l
					v.Reached[l.ID] = true
					v.views[l.ID] = lines
					v.known[l.ID] = map[string]bool{}
					for _, o := range lines {
						if !o.Has("handshake") && !o.Has("noaddr") {
							v.known[l.ID][o.ID] = true
						}
					}
				} else if _, ok := others[l.ID]; !ok {
					others[l.ID] = l
				}
				if l.Addr != "" && !l.Has("noaddr") && !l.Has("handshake") && !seen[l.Addr] {
					todo = append(todo, l.Addr)
				}
			}
		}
	}
	if len(v.Nodes) == 0 {
		return nil, fmt.Errorf("no cluster node answered (tried %v)", seeds)
	}
	v.dropStrangers()
	for id, l := range others {
		if _, ok := v.Nodes[id]; !ok {
			l := l
			v.Nodes[id] = &l
		}
	}
	// Each master's own claim; when two claim a slot (a move stopped
	// between the SETSLOT NODE calls), the higher config epoch wins, as in
	// the cluster itself.
	for _, id := range v.sortedIDs() {
		nd := v.Nodes[id]
		if !v.Reached[id] || !nd.IsMaster() {
			continue
		}
		for _, r := range nd.Slots {
			for s := r.Start; s <= r.End; s++ {
				if cur := v.Owner[s]; cur != "" && cur != id {
					v.Disputed = append(v.Disputed, s)
					if v.Nodes[cur].ConfigEpoch > nd.ConfigEpoch {
						continue
					}
				}
				v.Owner[s] = id
			}
		}
	}
	// Slots of masters that did not answer: take the others' word.
	for id, nd := range v.Nodes {
		if v.Reached[id] || !nd.IsMaster() {
			continue
		}
		for _, r := range nd.Slots {
			for s := r.Start; s <= r.End; s++ {
				if v.Owner[s] == "" {
					v.Owner[s] = id
				}
			}
		}
	}
	return v, nil
}

// dropStrangers leaves out reached nodes that are not part of the
// cluster: a seed that was drained and reset, or a spare, knows only
// itself, serves no slot, and no other node knows it. Counted as a master
// it would skew every decision and receive slots in a rebalance.
func (v *View) dropStrangers() {
	var strangers []string
	for id := range v.Reached {
		if len(v.Nodes[id].Slots) > 0 || len(v.known[id]) > 1 {
			continue
		}
		knownByOther := false
		for other := range v.Reached {
			if other != id && v.known[other][id] {
				knownByOther = true
				break
			}
		}
		if !knownByOther {
			strangers = append(strangers, id)
		}
	}
	if len(strangers) == len(v.Reached) {
		return // nothing but strangers: nothing to compare with
	}
	for _, id := range strangers {
		delete(v.Nodes, id)
		delete(v.Reached, id)
		delete(v.known, id)
		delete(v.views, id)
	}
}

func (v *View) sortedIDs() []string {
	ids := make([]string, 0, len(v.Nodes))
	for id := range v.Nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Masters returns the masters (reached or not), sorted by address.
func (v *View) Masters() []*clusternodes.NodeInfo {
	var out []*clusternodes.NodeInfo
	for _, nd := range v.Nodes {
		if nd.IsMaster() && !nd.Has("handshake") && !nd.Has("noaddr") {
			out = append(out, nd)
		}
	}
	slices.SortFunc(out, func(a, b *clusternodes.NodeInfo) int { return compareAddr(a.Addr, b.Addr) })
	return out
}

// ByAddr finds a node by address.
func (v *View) ByAddr(addr string) *clusternodes.NodeInfo {
	for _, nd := range v.Nodes {
		if nd.Addr == addr {
			return nd
		}
	}
	return nil
}

// ReplicasOf returns the replicas of master id.
func (v *View) ReplicasOf(id string) []*clusternodes.NodeInfo {
	var out []*clusternodes.NodeInfo
	for _, nd := range v.Nodes {
		if nd.MasterID == id && !nd.Has("fail") {
			out = append(out, nd)
		}
	}
	slices.SortFunc(out, func(a, b *clusternodes.NodeInfo) int { return compareAddr(a.Addr, b.Addr) })
	return out
}

// Healthy reports why the cluster is not fit for a slot move, or "".
func (v *View) Healthy() string {
	if len(v.Unreachable) > 0 {
		return fmt.Sprintf("nodes unreachable: %v", v.Unreachable)
	}
	for _, nd := range v.Nodes {
		if nd.IsMaster() && (nd.Has("fail") || nd.Has("fail?")) {
			return fmt.Sprintf("master %s is flagged %v", nd.Addr, nd.Flags)
		}
	}
	return ""
}

// KnownByAll reports whether every reached master lists id.
func (v *View) KnownByAll(id string) bool {
	for _, nd := range v.Nodes {
		if v.Reached[nd.ID] && nd.IsMaster() && nd.ID != id && !v.known[nd.ID][id] {
			return false
		}
	}
	return true
}

func compareAddr(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}
