package scaler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/clusternodes"
)

// Options wires the scaler to the rest of the instance.
type Options struct {
	Name  string          // this instance, recorded as the actor of events
	Seeds func() []string // cluster node addresses to start reading the cluster from
	Nodes *Nodes
	// Leader reports this instance's leadership and term; nil: a single
	// instance, always the leader, term 1.
	Leader func() (bool, uint64)
	// RefreshProxies asks the local proxy to re-read the slot map (before
	// a drained node is forgotten). Optional.
	RefreshProxies func()
	Log            *slog.Logger
	Registerer     prometheus.Registerer
}

// Errors of Start.
var (
	ErrNotLeader = errors.New("this instance is not the group's leader")
	ErrBusy      = errors.New("an operation is already running")
)

// Scaler is the hands of the autoscaler: it runs scaling operations on the
// group's leader, fenced by a lease in the cluster, and resumes or fixes
// half-done slot moves whenever this instance becomes the leader.
type Scaler struct {
	cfg   Config
	opts  Options
	log   *slog.Logger
	rc    *redis.ClusterClient
	lease *Lease
	ev    *events
	prov  Provider
	mover *classicMover
	m     *scalerMetrics

	reqs chan request
	mu   sync.Mutex
	prog *progress
}

type request struct {
	kind   string // scale, drain, rebalance, fix
	n      int
	target string
}

// New builds a scaler; it starts nothing.
func New(cfg Config, opts Options) (*Scaler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("scaler config: %w", err)
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Leader == nil {
		opts.Leader = func() (bool, uint64) { return true, 1 }
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	copts := &redis.ClusterOptions{Addrs: opts.Seeds(), Username: opts.Nodes.Username, Password: opts.Nodes.Password,
		DialTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, MaxRedirects: 16,
		Protocol: 2, DisableIdentity: true}
	if opts.Nodes.TLS != nil && len(copts.Addrs) > 0 {
		if t, err := opts.Nodes.TLS(copts.Addrs[0]); err == nil {
			copts.TLSConfig = t
		}
	}
	s := &Scaler{cfg: cfg, opts: opts, log: opts.Log, rc: redis.NewClusterClient(copts),
		reqs: make(chan request, 1), prog: &progress{state: "idle"}}
	m, err := newScalerMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	s.m = m
	s.lease = &Lease{rc: s.rc, holder: opts.Name, ttl: 30 * time.Second, term: opts.Leader}
	s.ev = &events{rc: s.rc, log: opts.Log, actor: opts.Name}
	switch cfg.Provider.Kind {
	case "exec":
		s.prov = &execProvider{acquire: cfg.Provider.Acquire, release: cfg.Provider.Release, timeout: cfg.Provider.Timeout}
	default:
		s.prov = &poolProvider{pool: cfg.Provider.Pool, nodes: opts.Nodes, seeds: opts.Seeds}
	}
	s.mover = &classicMover{nodes: opts.Nodes, seeds: opts.Seeds, cfg: cfg.migrate(), fence: s.fence, prog: s.prog}
	return s, nil
}

// fence renews the lease before a step and records the intent; a deposed
// leader stops here.
func (s *Scaler) fence(ctx context.Context, in Intent) error {
	if _, err := s.lease.renew(ctx, &in); err != nil {
		s.m.leaseFailures.Inc()
		return err
	}
	s.m.leaseRenewals.Inc()
	return nil
}

// Start asks for an operation: kind "scale" (n masters), "drain" (target
// host:port), "rebalance" or "fix". It returns at once; Operation reports
// progress.
func (s *Scaler) Start(kind string, n int, target string) error {
	if leader, _ := s.opts.Leader(); !leader {
		return ErrNotLeader
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.prog.state == "running" || s.prog.state == "queued" {
		return ErrBusy
	}
	switch kind {
	case "scale":
		if n < 1 {
			return errors.New("masters must be at least 1")
		}
	case "drain":
		if _, _, err := splitHostPort(target); err != nil {
			return err
		}
	case "rebalance", "fix":
	default:
		return fmt.Errorf("unknown operation %q", kind)
	}
	select {
	case s.reqs <- request{kind: kind, n: n, target: target}:
	default:
		return ErrBusy
	}
	s.resetProgress(kind, "queued")
	return nil
}

func (s *Scaler) resetProgress(kind, state string) {
	p := &progress{kind: kind, state: state, started: time.Now()}
	s.prog = p
	s.mover.prog = p
}

// Run resumes and fixes slot moves whenever this instance becomes the
// leader, and runs requested operations, until ctx ends.
func (s *Scaler) Run(ctx context.Context) error {
	defer s.rc.Close()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	wasLeader := false
	check := func() {
		leader, term := s.opts.Leader()
		if leader && !wasLeader {
			s.log.Info("scaler: leadership gained; checking for unfinished slot moves", "term", term)
			s.runOp(ctx, request{kind: "fix"})
		}
		wasLeader = leader
	}
	check()
	for {
		select {
		case <-ctx.Done():
			return nil
		case req := <-s.reqs:
			s.runOp(ctx, req)
		case <-tick.C:
			check()
		}
	}
}

func (s *Scaler) runOp(ctx context.Context, req request) {
	s.mu.Lock()
	if s.prog.state != "queued" || s.prog.kind != req.kind {
		s.resetProgress(req.kind, "running")
	}
	p := s.prog
	p.mu.Lock()
	p.state = "running"
	p.mu.Unlock()
	s.mu.Unlock()
	// A deposed leader must not even acquire or introduce a node.
	_, err := s.lease.Renew(ctx)
	switch {
	case err != nil:
		s.m.leaseFailures.Inc()
	case req.kind == "scale":
		err = s.scale(ctx, req.n)
	case req.kind == "drain":
		err = s.drain(ctx, req.target)
	case req.kind == "rebalance":
		err = s.rebalance(ctx, nil, "")
	case req.kind == "fix":
		_, err = s.fix(ctx)
	}
	p.mu.Lock()
	p.ended = time.Now()
	if err != nil {
		p.state, p.err = "failed", err.Error()
	} else {
		p.state = "done"
	}
	p.mu.Unlock()
	if err != nil {
		_, term := s.opts.Leader()
		s.ev.add(ctx, Event{Term: term, Kind: "failure", Slot: -1, Reason: req.kind + ": " + err.Error()})
	}
	s.clearIntent(ctx)
}

func (s *Scaler) clearIntent(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	s.lease.clearIntent(cctx)
}

func (s *Scaler) event(ctx context.Context, ev Event) {
	_, ev.Term = s.opts.Leader()
	s.ev.add(ctx, ev)
}

// rebalance plans with every live master at weight 1 (weights overrides:
// 0 drains) and runs the moves.
func (s *Scaler) rebalance(ctx context.Context, weights map[string]float64, why string) error {
	v, err := ReadView(ctx, s.opts.Nodes, s.opts.Seeds())
	if err != nil {
		return err
	}
	if h := v.Healthy(); h != "" {
		return fmt.Errorf("cluster not healthy: %s", h)
	}
	in := PlanInput{Masters: map[string]float64{}, Owner: v.Owner, Threshold: float64(s.cfg.Rebalance.Threshold)}
	for _, m := range v.Masters() {
		in.Masters[m.ID] = 1
	}
	for id, w := range weights {
		in.Masters[id] = w
	}
	last := Slot(EventsKey)
	in.LastSlot = &last
	moves, err := Plan(in)
	if err != nil {
		return err
	}
	s.log.Info("scaler: rebalance planned", "moves", len(moves), "why", why)
	// The slot of Slotway's own keys (lease, intent, events) moves after
	// everything else: execute runs pairs in parallel, so it goes alone.
	var lastMove []Move
	if i := slices.IndexFunc(moves, func(m Move) bool { return m.Slot == last }); i >= 0 {
		lastMove = []Move{moves[i]}
		moves = slices.Delete(moves, i, i+1)
	}
	if err := s.execute(ctx, v, moves); err != nil {
		return err
	}
	return s.execute(ctx, v, lastMove)
}

// slotsPerStep is how many slots of one pair move together: the per-step
// checks (topology, lease, epochs) are paid once for them.
const slotsPerStep = 32

// execute runs moves: different sources in parallel, one group of slots
// at a time per source.
func (s *Scaler) execute(ctx context.Context, v *View, moves []Move) error {
	s.mover.reset()
	p := s.mover.prog
	p.mu.Lock()
	if p.firstMove.IsZero() && len(moves) > 0 {
		p.firstMove = time.Now()
	}
	p.mu.Unlock()
	p.slotsAll.Add(int64(len(moves)))
	type pair struct{ from, to string }
	queues := map[pair][]Move{}
	var order []pair
	for _, mv := range moves {
		k := pair{mv.From, mv.To}
		if _, ok := queues[k]; !ok {
			order = append(order, k)
		}
		queues[k] = append(queues[k], mv)
	}
	type summary struct {
		slots []int
		keys  int64
	}
	done := map[pair]summary{}
	s.m.inProgress.Set(1)
	defer s.m.inProgress.Set(0)
	for len(order) > 0 {
		// One group of a pair's slots at a time per source; sources run
		// in parallel (a target takes slots from several at once).
		used := map[string]bool{}
		var groups [][]Move
		for _, k := range order {
			if used[k.from] {
				continue
			}
			used[k.from] = true
			groups = append(groups, queues[k][:min(slotsPerStep, len(queues[k]))])
		}
		errs := make([]error, len(groups))
		keys := make([][]int64, len(groups))
		var wg sync.WaitGroup
		for i, g := range groups {
			wg.Add(1)
			go func() {
				defer wg.Done()
				slots := make([]int, len(g))
				for j, mv := range g {
					slots[j] = mv.Slot
				}
				keys[i], errs[i] = s.mover.moveSlots(ctx, slots, g[0].From, g[0].To, 0)
			}()
		}
		wg.Wait()
		for i, g := range groups {
			if errs[i] != nil {
				s.m.errors.WithLabelValues(errorReason(errs[i])).Inc()
				return fmt.Errorf("move %s -> %s: %w", addrOf(v, g[0].From), addrOf(v, g[0].To), errs[i])
			}
			k := pair{g[0].From, g[0].To}
			sum := done[k]
			for j, mv := range g {
				s.m.slotsMoved.Inc()
				s.m.keysMoved.Add(float64(keys[i][j]))
				p.slotsDone.Add(1)
				s.event(ctx, Event{Kind: "slot_moved", Slot: mv.Slot, Node: addrOf(v, mv.To), Keys: keys[i][j],
					Reason: "from " + addrOf(v, mv.From)})
				sum.slots = append(sum.slots, mv.Slot)
				sum.keys += keys[i][j]
			}
			done[k] = sum
			queues[k] = queues[k][len(g):]
			if len(queues[k]) == 0 {
				delete(queues, k)
				order = slices.DeleteFunc(order, func(x pair) bool { return x == k })
				s.event(ctx, Event{Kind: "slots_moved", Slot: -1, Node: addrOf(v, k.to), Keys: sum.keys,
					Reason: fmt.Sprintf("%d slots (%s) from %s", len(sum.slots), slotRanges(sum.slots), addrOf(v, k.from))})
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// slotRanges writes slots as "0-99,200".
func slotRanges(slots []int) string {
	slots = slices.Clone(slots)
	slices.Sort(slots)
	var b strings.Builder
	for i := 0; i < len(slots); {
		j := i
		for j+1 < len(slots) && slots[j+1] == slots[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if b.Len() > 200 {
			b.WriteString("...")
			break
		}
		if i == j {
			fmt.Fprintf(&b, "%d", slots[i])
		} else {
			fmt.Fprintf(&b, "%d-%d", slots[i], slots[j])
		}
		i = j + 1
	}
	return b.String()
}

func addrOf(v *View, id string) string {
	if n := v.Nodes[id]; n != nil && n.Addr != "" {
		return n.Addr
	}
	return id
}

func errorReason(err error) string {
	switch {
	case errors.Is(err, ErrFenced):
		return "fenced"
	case errors.Is(err, errNotReady):
		return "target_not_ready"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "cancelled"
	case strings.Contains(err.Error(), "MIGRATE"):
		return "migrate"
	case strings.Contains(err.Error(), "still holds"):
		return "keys_left"
	}
	return "other"
}

// scale brings the cluster to n masters.
func (s *Scaler) scale(ctx context.Context, n int) error {
	v, err := ReadView(ctx, s.opts.Nodes, s.opts.Seeds())
	if err != nil {
		return err
	}
	masters := v.Masters()
	switch {
	case n > len(masters):
		return s.scaleOut(ctx, v, n-len(masters))
	case n < len(masters):
		for range len(masters) - n {
			victim, err := s.leastLoaded(ctx)
			if err != nil {
				return err
			}
			if err := s.drain(ctx, victim); err != nil {
				return err
			}
		}
	}
	return nil
}

// leastLoaded picks the master with the fewest keys (ties: by address).
func (s *Scaler) leastLoaded(ctx context.Context) (string, error) {
	v, err := ReadView(ctx, s.opts.Nodes, s.opts.Seeds())
	if err != nil {
		return "", err
	}
	best, bestKeys := "", int64(-1)
	for _, m := range v.Masters() {
		k, err := s.opts.Nodes.Client(m.Addr).DBSize(ctx).Result()
		if err != nil {
			return "", fmt.Errorf("DBSIZE on %s: %w", m.Addr, err)
		}
		if bestKeys < 0 || k < bestKeys {
			best, bestKeys = m.Addr, k
		}
	}
	return best, nil
}

func (s *Scaler) scaleOut(ctx context.Context, v *View, add int) error {
	withReplicas := false
	for _, m := range v.Masters() {
		if len(v.ReplicasOf(m.ID)) > 0 {
			withReplicas = true
		}
	}
	var newIDs []string
	for range add {
		id, err := s.join(ctx, v, "")
		if err != nil {
			return err
		}
		newIDs = append(newIDs, id)
		if withReplicas {
			if _, err := s.join(ctx, v, id); err != nil {
				return err
			}
		}
	}
	return s.rebalance(ctx, nil, fmt.Sprintf("scale out: %d new masters", len(newIDs)))
}

// join acquires a node, introduces it with CLUSTER MEET and waits until
// every node knows it. With master set, it becomes that master's replica.
func (s *Scaler) join(ctx context.Context, v *View, master string) (string, error) {
	addr, err := s.prov.Acquire(ctx)
	if err != nil {
		return "", fmt.Errorf("acquire a node: %w", err)
	}
	s.event(ctx, Event{Kind: "acquire", Slot: -1, Node: addr})
	if err := checkEmptyNode(ctx, s.opts.Nodes, addr); err != nil {
		return "", fmt.Errorf("acquired node is not usable: %w", err)
	}
	id, err := s.opts.Nodes.Client(addr).ClusterMyID(ctx).Result()
	if err != nil {
		return "", fmt.Errorf("CLUSTER MYID on %s: %w", addr, err)
	}
	host, port, _ := splitHostPort(addr)
	var via *clusternodes.NodeInfo
	for _, m := range v.Masters() {
		if v.Reached[m.ID] {
			via = m
			break
		}
	}
	if via == nil {
		return "", errors.New("no reachable master to introduce the new node")
	}
	if err := s.opts.Nodes.Client(via.Addr).ClusterMeet(ctx, host, fmt.Sprint(port)).Err(); err != nil {
		return "", fmt.Errorf("CLUSTER MEET %s via %s: %w", addr, via.Addr, err)
	}
	s.event(ctx, Event{Kind: "meet", Slot: -1, Node: addr})
	deadline := time.Now().Add(60 * time.Second)
	for {
		nv, err := ReadView(ctx, s.opts.Nodes, s.opts.Seeds())
		if err == nil && nv.Reached[id] && nv.KnownByAll(id) && len(nv.known[id]) >= len(nv.Reached) {
			break
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("node %s not known by every node after 60s", addr)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	if master != "" {
		if err := s.opts.Nodes.Client(addr).Do(ctx, "CLUSTER", "REPLICATE", master).Err(); err != nil {
			return "", fmt.Errorf("CLUSTER REPLICATE on %s: %w", addr, err)
		}
		s.event(ctx, Event{Kind: "replica", Slot: -1, Node: addr, Reason: "replica of " + master})
	}
	return id, nil
}

// drain moves every slot off the master at addr straight to their final
// owners, then removes it from the cluster and gives it back.
func (s *Scaler) drain(ctx context.Context, addr string) error {
	v, err := ReadView(ctx, s.opts.Nodes, s.opts.Seeds())
	if err != nil {
		return err
	}
	nd := v.ByAddr(addr)
	if nd == nil || !nd.IsMaster() {
		return fmt.Errorf("%s is not a master of the cluster", addr)
	}
	if len(v.Masters()) < 2 {
		return errors.New("cannot drain the only master")
	}
	s.event(ctx, Event{Kind: "drain", Slot: -1, Node: addr})
	if err := s.rebalance(ctx, map[string]float64{nd.ID: 0}, "drain "+addr); err != nil {
		return err
	}
	v, err = ReadView(ctx, s.opts.Nodes, s.opts.Seeds())
	if err != nil {
		return err
	}
	// A master that lost its last slot may already have turned into a
	// replica of the new owner (Redis does that by itself) and copy its
	// data; only a node still a master must be empty.
	if me := v.Nodes[nd.ID]; me != nil && me.IsMaster() {
		if n, err := s.opts.Nodes.Client(addr).DBSize(ctx).Result(); err != nil || n != 0 {
			return fmt.Errorf("drained %s still holds %d keys (%v); not removing it", addr, n, err)
		}
	}
	for slot, owner := range v.Owner {
		if owner == nd.ID {
			return fmt.Errorf("drained %s still owns slot %d; not removing it", addr, slot)
		}
	}
	// Re-home its replicas on the master with the fewest.
	for _, r := range v.ReplicasOf(nd.ID) {
		to := s.fewestReplicas(v, nd.ID)
		if to == nil {
			break
		}
		if err := s.opts.Nodes.Client(r.Addr).Do(ctx, "CLUSTER", "REPLICATE", to.ID).Err(); err != nil {
			return fmt.Errorf("re-home replica %s: %w", r.Addr, err)
		}
		s.event(ctx, Event{Kind: "replica", Slot: -1, Node: r.Addr, Reason: "re-homed to " + to.Addr})
	}
	// Every proxy must stop routing to it before it disappears.
	if s.opts.RefreshProxies != nil {
		s.opts.RefreshProxies()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(2 * time.Second):
	}
	return s.forget(ctx, nd.ID, addr)
}

func (s *Scaler) fewestReplicas(v *View, except string) *clusternodes.NodeInfo {
	var best *clusternodes.NodeInfo
	bestN := -1
	for _, m := range v.Masters() {
		if m.ID == except || !v.Reached[m.ID] {
			continue
		}
		if n := len(v.ReplicasOf(m.ID)); bestN < 0 || n < bestN {
			best, bestN = m, n
		}
	}
	return best
}

// forget removes a slot-less node: CLUSTER FORGET on every other node in
// parallel (within the 60 s ban window), CLUSTER RESET HARD on it, then
// back to the provider, and a check after the window.
func (s *Scaler) forget(ctx context.Context, id, addr string) error {
	v, err := ReadView(ctx, s.opts.Nodes, s.opts.Seeds())
	if err != nil {
		return err
	}
	if _, err := s.lease.Renew(ctx); err != nil {
		return err
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for oid, o := range v.Nodes {
		if oid == id || !v.Reached[oid] {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.opts.Nodes.Client(o.Addr).ClusterForget(ctx, id).Err(); err != nil && !strings.Contains(err.Error(), "Unknown node") {
				mu.Lock()
				errs = append(errs, fmt.Errorf("CLUSTER FORGET on %s: %w", o.Addr, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.event(ctx, Event{Kind: "forget", Slot: -1, Node: addr})
	if _, err := s.lease.Renew(ctx); err != nil {
		return err
	}
	if err := s.opts.Nodes.Client(addr).ClusterResetHard(ctx).Err(); err != nil {
		return fmt.Errorf("CLUSTER RESET HARD on %s: %w", addr, err)
	}
	s.event(ctx, Event{Kind: "reset", Slot: -1, Node: addr})
	if err := s.prov.Release(ctx, addr); err != nil {
		return err
	}
	s.event(ctx, Event{Kind: "release", Slot: -1, Node: addr})
	go func() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(65 * time.Second):
		}
		v, err := ReadView(ctx, s.opts.Nodes, s.opts.Seeds())
		if err != nil {
			return
		}
		if n := v.Nodes[id]; n != nil {
			s.event(ctx, Event{Kind: "failure", Slot: -1, Node: addr, Reason: "a node still lists the removed node after the ban window"})
		}
	}()
	return nil
}

// fix rolls forward every half-done slot move it finds (see README): it
// runs on every new leadership and on request. It returns the slots fixed.
func (s *Scaler) fix(ctx context.Context) (int, error) {
	s.mover.reset()
	v, err := ReadView(ctx, s.opts.Nodes, s.opts.Seeds())
	if err != nil {
		return 0, err
	}
	if h := v.Healthy(); h != "" {
		return 0, fmt.Errorf("not fixing while the cluster is unhealthy: %s", h)
	}
	type job struct {
		slot     int
		src, dst string
		force    bool
		why      string
	}
	var jobs []job
	seen := map[int]bool{}
	// Migrating markers first: a slot both migrating and importing is one
	// move to finish, whatever order the nodes come in.
	for _, id := range v.sortedIDs() {
		nd := v.Nodes[id]
		if !v.Reached[id] {
			continue
		}
		for slot, dst := range nd.Migrating {
			if seen[slot] {
				continue
			}
			seen[slot] = true
			if t := v.Nodes[dst]; t == nil || !t.IsMaster() {
				// The target is gone: the source keeps the slot.
				if err := s.opts.Nodes.Client(nd.Addr).Do(ctx, "CLUSTER", "SETSLOT", slot, "STABLE").Err(); err != nil {
					return 0, fmt.Errorf("slot %d: SETSLOT STABLE on %s: %w", slot, nd.Addr, err)
				}
				s.event(ctx, Event{Kind: "fix", Slot: slot, Node: nd.Addr, Reason: "migrating to a node that is gone: stable"})
				continue
			}
			jobs = append(jobs, job{slot, id, dst, false, "migrating"})
		}
	}
	for _, id := range v.sortedIDs() {
		nd := v.Nodes[id]
		if !v.Reached[id] {
			continue
		}
		for slot, src := range nd.Importing {
			if seen[slot] {
				continue
			}
			seen[slot] = true
			n, err := s.opts.Nodes.Client(nd.Addr).ClusterCountKeysInSlot(ctx, slot).Result()
			if err != nil {
				return 0, fmt.Errorf("slot %d: COUNTKEYSINSLOT on %s: %w", slot, nd.Addr, err)
			}
			owner := v.Owner[slot]
			if n == 0 {
				if err := s.opts.Nodes.Client(nd.Addr).Do(ctx, "CLUSTER", "SETSLOT", slot, "STABLE").Err(); err != nil {
					return 0, fmt.Errorf("slot %d: SETSLOT STABLE on %s: %w", slot, nd.Addr, err)
				}
				s.event(ctx, Event{Kind: "fix", Slot: slot, Node: nd.Addr, Reason: "importing with no keys: stable"})
				continue
			}
			if owner == "" {
				owner = src
			}
			jobs = append(jobs, job{slot, owner, id, false, "importing with keys"})
		}
	}
	for _, slot := range v.Disputed {
		if seen[slot] {
			continue
		}
		seen[slot] = true
		// Two masters claim it: the one without keys yields.
		var claim []string
		for _, id := range v.sortedIDs() {
			if v.Reached[id] && v.Nodes[id].IsMaster() && ownsSlot(v.Nodes[id], slot) {
				claim = append(claim, id)
			}
		}
		if len(claim) < 2 {
			continue
		}
		counts := map[string]int64{}
		for _, id := range claim {
			counts[id], _ = s.opts.Nodes.Client(v.Nodes[id].Addr).ClusterCountKeysInSlot(ctx, slot).Result()
		}
		slices.SortFunc(claim, func(a, b string) int { return int(counts[b] - counts[a]) })
		for _, loser := range claim[1:] {
			jobs = append(jobs, job{slot, loser, claim[0], true, "owners disagree"})
		}
	}
	// Keys on a master that does not own their slot (left by an
	// interrupted tool or a hand-made move): one pipelined count per
	// master over the slots it does not own.
	for _, m := range v.Masters() {
		if !v.Reached[m.ID] {
			continue
		}
		var slots []int
		for slot, owner := range v.Owner {
			if owner != m.ID && owner != "" && !seen[slot] {
				slots = append(slots, slot)
			}
		}
		cmds, err := s.opts.Nodes.Client(m.Addr).Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, slot := range slots {
				p.ClusterCountKeysInSlot(ctx, slot)
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("count keys on %s: %w", m.Addr, err)
		}
		for i, cmd := range cmds {
			if n, _ := cmd.(*redis.IntCmd).Result(); n > 0 {
				slot := slots[i]
				seen[slot] = true
				jobs = append(jobs, job{slot, m.ID, v.Owner[slot], true, fmt.Sprintf("%d keys on a non-owner", n)})
			}
		}
	}
	fixed := 0
	for _, j := range jobs {
		mode := modeFix
		if j.force {
			mode |= modeForce
		}
		keys, err := s.mover.moveSlot(ctx, j.slot, j.src, j.dst, mode)
		if err != nil {
			return fixed, fmt.Errorf("fix slot %d (%s): %w", j.slot, j.why, err)
		}
		if j.force {
			// Make every node agree on the owner once the loser is empty.
			for _, m := range v.Masters() {
				if v.Reached[m.ID] {
					s.opts.Nodes.Client(m.Addr).Do(ctx, "CLUSTER", "SETSLOT", j.slot, "NODE", j.dst)
				}
			}
		}
		fixed++
		s.event(ctx, Event{Kind: "fix", Slot: j.slot, Node: addrOf(v, j.dst), Keys: keys, Reason: j.why + ": finished from " + addrOf(v, j.src)})
	}
	return fixed, nil
}

func ownsSlot(n *clusternodes.NodeInfo, slot int) bool {
	for _, r := range n.Slots {
		if slot >= r.Start && slot <= r.End {
			return true
		}
	}
	return false
}

// OperationStatus is the progress of the last operation.
type OperationStatus struct {
	Kind      string        `json:"kind"`
	State     string        `json:"state"` // idle, queued, running, done, failed
	Error     string        `json:"error,omitempty"`
	Started   time.Time     `json:"started"`
	Moving    time.Time     `json:"moving"` // when the first slot move began
	Ended     time.Time     `json:"ended"`
	SlotsDone int64         `json:"slots_done"`
	SlotsAll  int64         `json:"slots_total"`
	Keys      int64         `json:"keys"`
	Bytes     int64         `json:"bytes"`
	Backoffs  int64         `json:"backoffs"` // pauses because the nodes slowed down
	ETA       time.Duration `json:"eta_ns"`
}

// Operation reports the current or last operation.
func (s *Scaler) Operation() OperationStatus {
	s.mu.Lock()
	p := s.prog
	s.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	st := OperationStatus{Kind: p.kind, State: p.state, Error: p.err, Started: p.started, Moving: p.firstMove, Ended: p.ended,
		SlotsDone: p.slotsDone.Load(), SlotsAll: p.slotsAll.Load(), Keys: p.keys.Load(), Bytes: p.bytes.Load(),
		Backoffs: p.backoffs.Load()}
	if st.State == "running" && st.SlotsDone > 0 && st.SlotsAll > st.SlotsDone {
		per := time.Since(p.started) / time.Duration(st.SlotsDone)
		st.ETA = per * time.Duration(st.SlotsAll-st.SlotsDone)
	}
	return st
}

// Events returns the last n scaling events of the group.
func (s *Scaler) Events(ctx context.Context, n int) []Event { return s.ev.recent(ctx, n) }

type scalerMetrics struct {
	inProgress                   prometheus.Gauge
	slotsMoved, keysMoved        prometheus.Counter
	errors                       *prometheus.CounterVec
	leaseRenewals, leaseFailures prometheus.Counter
}

func newScalerMetrics(reg prometheus.Registerer) (*scalerMetrics, error) {
	m := &scalerMetrics{
		inProgress: prometheus.NewGauge(prometheus.GaugeOpts{Name: "slotway_scaler_migrations_in_progress",
			Help: "1 while this instance moves slots."}),
		slotsMoved: prometheus.NewCounter(prometheus.CounterOpts{Name: "slotway_scaler_slots_moved_total",
			Help: "Slots moved by this instance."}),
		keysMoved: prometheus.NewCounter(prometheus.CounterOpts{Name: "slotway_scaler_keys_moved_total",
			Help: "Keys moved by this instance's slot migrations."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "slotway_scaler_migration_errors_total",
			Help: "Slot migrations stopped, by reason."}, []string{"reason"}),
		leaseRenewals: prometheus.NewCounter(prometheus.CounterOpts{Name: "slotway_scaler_lease_renewals_total",
			Help: "Scaling lease renewals."}),
		leaseFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "slotway_scaler_lease_failures_total",
			Help: "Scaling steps refused because the lease belongs to another leader (or could not be renewed)."}),
	}
	for _, r := range []string{"fenced", "target_not_ready", "cancelled", "migrate", "keys_left", "other"} {
		m.errors.WithLabelValues(r)
	}
	for _, c := range []prometheus.Collector{m.inProgress, m.slotsMoved, m.keysMoved, m.errors, m.leaseRenewals, m.leaseFailures} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register scaler metrics: %w", err)
		}
	}
	return m, nil
}
