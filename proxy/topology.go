package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/hashslot"
	"github.com/slotway/slotway/internal/kick"
)

// topology is an immutable snapshot of who serves which slot. Readers load
// it through an atomic pointer and never lock; only the topology owner
// publishes a new one.
type topology struct {
	slots   [hashslot.Count]*backend
	masters []*backend // sorted by address
	// replicas of each master, for read_from (READONLY connections).
	replicas map[*backend][]*backend
	nodes    []Node
	version  uint64
	at       time.Time // when it was read from the cluster
	source   string    // which node answered
}

// Node is one cluster node as the proxy last saw it.
type Node struct {
	ID       string   `json:"id"`
	Addr     string   `json:"addr"`
	Role     string   `json:"role"` // "master" or "replica"
	MasterID string   `json:"master_id,omitempty"`
	Slots    [][2]int `json:"slots,omitempty"` // inclusive ranges
	Health   string   `json:"health"`          // as the cluster reports it: online, failed, loading
}

// topologyOwner builds snapshots from the cluster and publishes them.
type topologyOwner struct {
	cfg  Config
	log  *slog.Logger
	m    *metrics
	cur  atomic.Pointer[topology]
	kick chan struct{}

	mu       sync.Mutex // guards publishing, backends and ctl
	backends map[string]*backend
	replicas map[string]*backend // READONLY data-path backends of replicas
	ctl      map[string]*redis.Client
	ctx      context.Context
	wg       *sync.WaitGroup
	dial     dialer
	loops    []*loop // the server's event loops: they read the pipes
	version  uint64
	// tls is proxy.cluster.tls, built once; nil when off. tlsErr is set
	// instead if the files went bad between Validate and New: every dial
	// then fails with it (and the refresh log says why).
	tls    *tls.Config
	tlsErr error

	// refreshMu makes refreshes one at a time (the run loop and the
	// bootstrap both refresh); it guards seen and lastFull.
	refreshMu sync.Mutex
	// seen is every node address ever in a published view: candidates
	// for later refreshes, so the members are asked again after an
	// outage even if the seeds lead elsewhere.
	seen     []string
	lastFull time.Time
	left     atomic.Pointer[[]SeedLeft] // seeds that left, by address
}

func newTopologyOwner(cfg Config, log *slog.Logger, m *metrics, dial dialer) *topologyOwner {
	o := &topologyOwner{
		cfg: cfg, log: log, m: m, dial: dial,
		kick:     make(chan struct{}, 1),
		backends: make(map[string]*backend),
		replicas: make(map[string]*backend),
		ctl:      make(map[string]*redis.Client),
	}
	o.cur.Store(&topology{})
	o.tls, o.tlsErr = cfg.Cluster.TLS.clientTLS()
	if o.tls != nil && o.tls.InsecureSkipVerify {
		log.Warn("proxy.cluster.tls.insecure_skip_verify is on: the nodes' certificates are not verified (testing only)")
	}
	return o
}

// tlsFor returns the TLS config to dial the node at addr; nil without TLS.
func (o *topologyOwner) tlsFor(addr string) (*tls.Config, error) {
	if o.tlsErr != nil {
		return nil, fmt.Errorf("proxy.cluster.tls: %w", o.tlsErr)
	}
	return nodeTLS(o.tls, addr), nil
}

func (o *topologyOwner) load() *topology { return o.cur.Load() }

// requestRefresh asks for a refresh soon; many requests become one refresh.
func (o *topologyOwner) requestRefresh() {
	kick.Send(o.kick)
}

// backendLocked returns the backend of addr, starting it if needed.
func (o *topologyOwner) backendLocked(addr string) *backend {
	return o.startLocked(o.backends, addr, o.dial)
}

// startLocked returns m[addr], starting a backend with dial if there is
// none (or it was retired).
func (o *topologyOwner) startLocked(m map[string]*backend, addr string, dial dialer) *backend {
	if b := m[addr]; b != nil && !b.retired.Load() {
		return b
	}
	b := newBackend(addr, o.cfg.BackendConns, dial, o.loops, o.cfg.BackendTimeout, o.log, o.m)
	m[addr] = b
	b.run(o.ctx, o.wg)
	return b
}

// replicaLocked returns the READONLY backend of a replica, starting it.
func (o *topologyOwner) replicaLocked(addr string) *backend {
	return o.startLocked(o.replicas, addr, o.dialReadOnly)
}

// dialReadOnly connects to a replica and sends READONLY, so it serves
// reads of its master's slots instead of redirecting them.
func (o *topologyOwner) dialReadOnly(ctx context.Context, addr string) (net.Conn, error) {
	conn, err := o.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(o.cfg.Cluster.DialTimeout))
	if _, err := conn.Write([]byte("*1\r\n$8\r\nREADONLY\r\n")); err != nil {
		conn.Close()
		return nil, fmt.Errorf("READONLY on %s: %w", addr, err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "+OK\r\n" {
		conn.Close()
		return nil, fmt.Errorf("READONLY on %s: %q %v", addr, buf, err)
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

// backendForRedirect resolves the address of a MOVED/ASK reply. An empty
// host (":7001") means the host of the node that answered.
func (o *topologyOwner) backendForRedirect(addr []byte, from *backend) *backend {
	a := string(addr)
	if strings.HasPrefix(a, ":") && from != nil {
		host, _, err := net.SplitHostPort(from.addr)
		if err != nil {
			return nil
		}
		a = net.JoinHostPort(host, a[1:])
	}
	if _, _, err := net.SplitHostPort(a); err != nil {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ctx == nil {
		return nil
	}
	return o.backendLocked(a)
}

// moved records a MOVED answer at once so the next command of that slot
// goes to the right node, and asks for a full refresh in the background.
func (o *topologyOwner) moved(slot int, b *backend) {
	o.requestRefresh()
	if o.load().slots[slot] == b {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	cur := o.load()
	if cur.slots[slot] == b {
		return
	}
	next := *cur
	next.slots[slot] = b
	if !slices.Contains(next.masters, b) {
		next.masters = append(slices.Clone(next.masters), b)
		slices.SortFunc(next.masters, func(x, y *backend) int { return strings.Compare(x.addr, y.addr) })
	}
	o.version++
	next.version = o.version
	o.cur.Store(&next)
}

// control returns the control-plane client for addr.
func (o *topologyOwner) control(addr string) *redis.Client {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.controlLocked(addr)
}

func (o *topologyOwner) controlLocked(addr string) *redis.Client {
	if c := o.ctl[addr]; c != nil {
		return c
	}
	tlsCfg, tlsErr := o.tlsFor(addr)
	opts := &redis.Options{
		Addr:            addr,
		Username:        o.cfg.Cluster.Username,
		Password:        o.cfg.Cluster.Password,
		Protocol:        2,
		DialTimeout:     o.cfg.Cluster.DialTimeout, // go-redis bounds the TLS handshake with it too
		ReadTimeout:     o.cfg.HealthTimeout * 4,
		WriteTimeout:    o.cfg.HealthTimeout * 4,
		PoolSize:        2,
		MaxRetries:      -1,
		DisableIdentity: true,
		TLSConfig:       tlsCfg,
	}
	if tlsErr != nil {
		opts.Dialer = func(context.Context, string, string) (net.Conn, error) { return nil, tlsErr }
	}
	c := redis.NewClient(opts)
	o.ctl[addr] = c
	return c
}

// run refreshes on a ticker and whenever asked, until ctx ends.
func (o *topologyOwner) run(ctx context.Context) {
	t := time.NewTicker(o.cfg.Cluster.RefreshInterval)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-o.kick:
			// Storms of MOVED replies become one refresh per 50 ms at most.
			if wait := 50*time.Millisecond - time.Since(last); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
		last = time.Now()
		if err := o.refresh(ctx); err != nil && ctx.Err() == nil {
			o.log.Warn("topology refresh failed", "err", err)
		}
	}
}

// Topology reads: how many nodes a refresh asks, and how often it asks
// them all.
const (
	// firstCandidates are asked first, in parallel: when they agree (every
	// one a member of the best view, which reports cluster_state:ok) the
	// refresh ends there, so a healthy cluster costs three small reads.
	firstCandidates = 3
	// maxCandidates bounds a refresh that asks everyone.
	maxCandidates = 64
	// maxSeen bounds the nodes remembered as candidates.
	maxSeen = 4 * maxCandidates
	// fullRefreshEvery: even when the first candidates agree, every
	// candidate (seeds included) is asked this often, so a seed that
	// left the cluster is noticed while the cluster is healthy.
	fullRefreshEvery = 30 * time.Second
)

// SeedLeft is a configured seed that answers but is not a member of the
// cluster Slotway serves.
type SeedLeft struct {
	Addr   string    `json:"addr"`
	Reason string    `json:"reason"` // knows only itself, belongs to another cluster, ...
	Since  time.Time `json:"since"`
}

// refresh asks several nodes for their view of the cluster in parallel
// and publishes the best (see bestView): first a few candidates (the
// current masters, then the seeds); everyone else too when they do not
// agree, and every fullRefreshEvery. Candidates are the seeds and every
// node ever seen in a published view, replicas included, so the masters
// coming back after an outage are asked even when a seed that was reset
// answers first.
func (o *topologyOwner) refresh(ctx context.Context) error {
	o.refreshMu.Lock()
	defer o.refreshMu.Unlock()
	cur := o.load()
	curServed := servedSlots(cur)
	order := o.candidates(cur)
	asked := map[string]bool{}
	var views []*view
	var errs []error
	ask := func(addrs []string) {
		res := make([]*view, len(addrs))
		errsOf := make([]error, len(addrs))
		var wg sync.WaitGroup
		for i, addr := range addrs {
			asked[addr] = true
			wg.Go(func() { res[i], errsOf[i] = o.fetch(ctx, addr) })
		}
		wg.Wait()
		for i, addr := range addrs {
			if errsOf[i] != nil {
				errs = append(errs, fmt.Errorf("%s: %w", addr, errsOf[i]))
				continue
			}
			views = append(views, res[i])
		}
	}
	full := o.lastFull.IsZero() || time.Since(o.lastFull) >= fullRefreshEvery
	if full {
		ask(order[:min(len(order), maxCandidates)])
	} else {
		// Seeds known to have left would make every refresh ask everyone:
		// the full refreshes check on them.
		var first []string
		for _, a := range order {
			if len(first) < firstCandidates && !o.hasLeft(a) {
				first = append(first, a)
			}
		}
		ask(first)
	}
	best := bestView(views)
	if full || !settled(best, views, curServed) {
		full = true
		var more []string
		add := func(addr string) {
			if !asked[addr] && !slices.Contains(more, addr) && len(asked)+len(more) < maxCandidates {
				more = append(more, addr)
			}
		}
		for _, addr := range order {
			add(addr)
		}
		// At start the candidates are only the seeds: the members they
		// name are asked too, so a reset seed is outvoted.
		for _, v := range views {
			for _, n := range v.nodes {
				add(n.Addr)
			}
		}
		if len(more) > 0 {
			ask(more)
			best = bestView(views)
		}
	}
	if full {
		o.lastFull = time.Now()
	}
	if best == nil {
		o.m.topologyRefreshes.WithLabelValues("error").Inc()
		return errors.Join(errs...)
	}
	if best.served == 0 && curServed > 0 && len(views) > 1 {
		o.m.topologyRefreshes.WithLabelValues("error").Inc()
		return fmt.Errorf("%d nodes answer and none serves a slot: keeping the slot map read from %s", len(views), cur.source)
	}
	o.m.topologyRefreshes.WithLabelValues("ok").Inc()
	o.publish(best.nodes, best.addr)
	for _, n := range best.nodes {
		if !slices.Contains(o.seen, n.Addr) {
			o.seen = append(o.seen, n.Addr)
		}
	}
	// Nodes replaced over months (new addresses) must not grow it for
	// ever; the current ones come back at the next publish if dropped.
	if len(o.seen) > maxSeen {
		o.seen = slices.Clone(o.seen[len(o.seen)-maxSeen:])
	}
	if best.ok {
		o.checkSeeds(best, views)
	}
	return nil
}

// candidates lists the nodes a refresh may ask, in the order it asks
// them: the current masters, the seeds, then every other node seen.
func (o *topologyOwner) candidates(cur *topology) []string {
	var out []string
	for _, b := range cur.masters {
		out = append(out, b.addr)
	}
	for _, list := range [][]string{o.cfg.Cluster.Seeds, o.seen} {
		for _, a := range list {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

// checkSeeds records which seeds that answered are not members of the
// cluster best describes, and warns once when a seed leaves.
func (o *topologyOwner) checkSeeds(best *view, views []*view) {
	left := map[string]SeedLeft{}
	for _, s := range o.seedsLeft() {
		left[s.Addr] = s
	}
	changed := false
	for _, v := range views {
		if !slices.Contains(o.cfg.Cluster.Seeds, v.addr) {
			continue
		}
		why := whyNotMember(v, best)
		_, was := left[v.addr]
		switch {
		case why != "" && !was:
			o.log.Warn("a seed has left the cluster: it is not used for the slot map; remove it from proxy.cluster.seeds",
				"seed", v.addr, "reason", why, "cluster_source", best.addr)
			left[v.addr] = SeedLeft{Addr: v.addr, Reason: why, Since: time.Now()}
			changed = true
		case why == "" && was:
			o.log.Info("a seed is a member of the cluster again", "seed", v.addr)
			delete(left, v.addr)
			changed = true
		}
	}
	if !changed {
		return
	}
	list := make([]SeedLeft, 0, len(left))
	for _, s := range left {
		list = append(list, s)
	}
	slices.SortFunc(list, func(a, b SeedLeft) int { return strings.Compare(a.Addr, b.Addr) })
	o.left.Store(&list)
}

// seedsLeft returns the seeds that answer but are not members of the
// cluster, by address.
func (o *topologyOwner) seedsLeft() []SeedLeft {
	if l := o.left.Load(); l != nil {
		return *l
	}
	return nil
}

func (o *topologyOwner) hasLeft(addr string) bool {
	return slices.ContainsFunc(o.seedsLeft(), func(s SeedLeft) bool { return s.Addr == addr })
}

// fetch reads one node's view: CLUSTER INFO, MYID and SHARDS in one round
// trip (CLUSTER SLOTS before Redis 7.0).
func (o *topologyOwner) fetch(ctx context.Context, addr string) (*view, error) {
	ctx, cancel := context.WithTimeout(ctx, 4*o.cfg.HealthTimeout)
	defer cancel()
	c := o.control(addr)
	var info, myID *redis.StringCmd
	var shards *redis.ClusterShardsCmd
	_, _ = c.Pipelined(ctx, func(p redis.Pipeliner) error {
		info, myID, shards = p.ClusterInfo(ctx), p.ClusterMyID(ctx), p.ClusterShards(ctx)
		return nil
	})
	if err := info.Err(); err != nil {
		return nil, fmt.Errorf("CLUSTER INFO: %w", err)
	}
	if err := myID.Err(); err != nil {
		return nil, fmt.Errorf("CLUSTER MYID: %w", err)
	}
	err := shards.Err()
	if err == nil {
		return newView(addr, myID.Val(), info.Val(), nodesFromShards(shards.Val(), addr, o.tls != nil)), nil
	}
	if !isUnknownCommand(err) {
		return nil, fmt.Errorf("CLUSTER SHARDS: %w", err)
	}
	//lint:ignore SA1019 CLUSTER SLOTS is the fallback for Redis before 7.0, which lacks CLUSTER SHARDS.
	slots, err := c.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER SLOTS: %w", err)
	}
	return newView(addr, myID.Val(), info.Val(), nodesFromSlots(slots, addr)), nil
}

func isUnknownCommand(err error) bool {
	s := err.Error()
	return strings.Contains(s, "unknown subcommand") || strings.Contains(s, "unknown command")
}

// nodeAddr picks the address clients should use for a node, resolving an
// unknown or empty endpoint to the address we asked.
func nodeAddr(endpoint, ip string, port int64, asked string) string {
	host := endpoint
	if host == "" || host == "?" {
		host = ip
	}
	if host == "" || host == "?" {
		host, _, _ = net.SplitHostPort(asked)
	}
	return net.JoinHostPort(host, strconv.FormatInt(port, 10))
}

// nodesFromShards reads CLUSTER SHARDS. With tls-cluster yes a node lists
// its TLS port as tls-port, and port only if it also has a plaintext one
// (port 0 omits it), so useTLS picks tls-port.
func nodesFromShards(shards []redis.ClusterShard, asked string, useTLS bool) []Node {
	var nodes []Node
	for _, sh := range shards {
		var ranges [][2]int
		for _, r := range sh.Slots {
			ranges = append(ranges, [2]int{int(r.Start), int(r.End)})
		}
		masterID := ""
		for _, n := range sh.Nodes {
			if n.Role == "master" {
				masterID = n.ID
			}
		}
		for _, n := range sh.Nodes {
			port := n.Port
			if useTLS && n.TLSPort != 0 {
				port = n.TLSPort
			}
			node := Node{
				ID:     n.ID,
				Addr:   nodeAddr(n.Endpoint, n.IP, port, asked),
				Role:   n.Role,
				Health: n.Health,
			}
			if n.Role == "master" {
				node.Slots = ranges
			} else {
				node.Role = "replica"
				node.MasterID = masterID
			}
			nodes = append(nodes, node)
		}
	}
	return nodes
}

func nodesFromSlots(slots []redis.ClusterSlot, asked string) []Node {
	byID := map[string]*Node{}
	var order []string
	for _, s := range slots {
		for i, n := range s.Nodes {
			host, port, _ := net.SplitHostPort(n.Addr)
			p, _ := strconv.ParseInt(port, 10, 64)
			addr := nodeAddr("", host, p, asked)
			id := n.ID
			if id == "" {
				id = addr
			}
			nd := byID[id]
			if nd == nil {
				nd = &Node{ID: id, Addr: addr, Role: "replica", Health: "online"}
				byID[id] = nd
				order = append(order, id)
			}
			if i == 0 {
				nd.Role = "master"
				nd.Slots = append(nd.Slots, [2]int{int(s.Start), int(s.End)})
			} else if len(s.Nodes) > 0 {
				nd.MasterID = s.Nodes[0].ID
			}
		}
	}
	nodes := make([]Node, 0, len(order))
	for _, id := range order {
		nodes = append(nodes, *byID[id])
	}
	return nodes
}

// publish turns nodes into a snapshot, starts backends for new masters and
// retires those that serve no slot any more.
func (o *topologyOwner) publish(nodes []Node, source string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ctx == nil {
		return
	}
	next := &topology{nodes: nodes, at: time.Now(), source: source}
	keep := map[string]bool{}
	for _, n := range nodes {
		keep[n.Addr] = true
		if n.Role != "master" || len(n.Slots) == 0 {
			continue
		}
		b := o.backendLocked(n.Addr)
		next.masters = append(next.masters, b)
		for _, r := range n.Slots {
			for s := r[0]; s <= r[1] && s < hashslot.Count; s++ {
				next.slots[s] = b
			}
		}
	}
	slices.SortFunc(next.masters, func(x, y *backend) int { return strings.Compare(x.addr, y.addr) })
	keepReplicas := map[string]bool{}
	if o.cfg.ReadFrom != "" && o.cfg.ReadFrom != "master" {
		next.replicas = map[*backend][]*backend{}
		byID := map[string]string{}
		for _, n := range nodes {
			byID[n.ID] = n.Addr
		}
		for _, n := range nodes {
			if n.Role != "replica" || n.Health == "fail" || n.Health == "failed" {
				continue
			}
			m := o.backends[byID[n.MasterID]]
			if m == nil || !slices.Contains(next.masters, m) {
				continue
			}
			next.replicas[m] = append(next.replicas[m], o.replicaLocked(n.Addr))
			keepReplicas[n.Addr] = true
		}
	}
	cur := o.load()
	changed := cur.slots != next.slots || !slices.Equal(cur.masters, next.masters)
	if changed {
		o.version++
		o.log.Info("topology changed", "version", o.version, "masters", len(next.masters),
			"slots_served", servedSlots(next), "source", source)
	}
	next.version = o.version
	o.cur.Store(next)
	for addr, b := range o.backends {
		if !slices.Contains(next.masters, b) {
			// Let in-flight replies (MOVED included) arrive before closing.
			b.retire(5 * time.Second)
			delete(o.backends, addr)
		}
	}
	for addr, b := range o.replicas {
		if !keepReplicas[addr] {
			b.retire(5 * time.Second)
			delete(o.replicas, addr)
		}
	}
	for addr, c := range o.ctl {
		if !keep[addr] && !slices.Contains(o.cfg.Cluster.Seeds, addr) {
			c.Close()
			delete(o.ctl, addr)
		}
	}
}

// connectionsUp counts backend pipes with a live connection.
func (o *topologyOwner) connectionsUp() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, b := range o.backends {
		for _, p := range b.allPipes() {
			p.mu.Lock()
			if p.state == pipeUp {
				n++
			}
			p.mu.Unlock()
		}
	}
	return n
}

func servedSlots(t *topology) int {
	n := 0
	for _, b := range t.slots {
		if b != nil {
			n++
		}
	}
	return n
}

// start binds the owner to the lifetime of the backends.
func (o *topologyOwner) start(ctx context.Context, wg *sync.WaitGroup) {
	o.mu.Lock()
	o.ctx, o.wg = ctx, wg
	o.mu.Unlock()
}

func (o *topologyOwner) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, c := range o.ctl {
		c.Close()
	}
	o.ctl = map[string]*redis.Client{}
}
