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

	"github.com/slotway/slotway/stats"
)

// Options wires the scaler to the rest of the instance.
type Options struct {
	Name  string          // this instance, recorded as the actor of events
	Seeds func() []string // cluster node addresses to start reading the cluster from
	Nodes *Nodes
	// Leader reports this instance's leadership and term; nil: a single
	// instance, always the leader, term 1.
	Leader func() (bool, uint64)
	// Terms keeps the lease's highest term in the group as well. Optional
	// (nil: the lease's key in the cluster is the only record).
	Terms TermKeeper
	// RefreshProxies asks the local proxy to re-read the slot map (before
	// a drained node is forgotten). Optional.
	RefreshProxies func()
	// SlotOps pulls every group member's per-slot command counters for
	// the traffic-aware rebalance. Optional.
	SlotOps    SlotOpsFunc
	Log        *slog.Logger
	Registerer prometheus.Registerer

	// MemberSeeds returns every group member's proxy.cluster.seeds: a
	// scale in never drains those nodes (a drain that names one may).
	// Optional.
	MemberSeeds MemberSeedsFunc
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
	auto  *autoscaler
	hook  *notifier
	m     *scalerMetrics

	reqs chan request
	mu   sync.Mutex
	prog *progress
}

type request struct {
	kind   string // scale, drain, rebalance, fix; from the autoscaler also rebalance_load, vertical, resume_drain
	n      int
	target string
	// rebalance_load: per-slot ops/s; vertical: the maxmemory to set.
	slotOps   []float64
	maxmemory int64
	// done, when set, gets the outcome (on Run's goroutine: must not block).
	done func(ctx context.Context, err error)
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
		t, err := opts.Nodes.TLS(copts.Addrs[0])
		if err != nil {
			return nil, fmt.Errorf("scaler: TLS to the cluster: %w", err)
		}
		copts.TLSConfig = t
	}
	m, err := newScalerMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Scaler{cfg: cfg, opts: opts, log: opts.Log, rc: redis.NewClusterClient(copts),
		reqs: make(chan request, 1), prog: &progress{state: "idle"}}
	s.m = m
	s.lease = &Lease{rc: s.rc, holder: opts.Name, ttl: 30 * time.Second, term: opts.Leader, terms: opts.Terms}
	s.hook = newNotifier(cfg.Notify, nil, opts.Log, func(result string) { m.notifications.WithLabelValues(result).Inc() })
	s.ev = &events{rc: s.rc, log: opts.Log, actor: opts.Name, notify: s.hook.notify}
	switch cfg.Provider.Kind {
	case "exec":
		s.prov = &execProvider{acquire: cfg.Provider.Acquire, release: cfg.Provider.Release, timeout: cfg.Provider.Timeout}
	case "swarm":
		s.prov = newSwarmProvider(cfg.Provider, func(ctx context.Context, addrs []string) ([]error, error) {
			return checkFree(ctx, opts.Nodes, opts.Seeds(), addrs)
		})
	default:
		s.prov = &poolProvider{pool: cfg.Provider.Pool, nodes: opts.Nodes, seeds: opts.Seeds}
	}
	s.auto = newAutoscaler(s, opts.SlotOps)
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
	return s.enqueueLocked(request{kind: kind, n: n, target: target})
}

// enqueueLocked queues req for Run; s.mu is held.
func (s *Scaler) enqueueLocked(req request) error {
	// runOp sets the state under prog.mu alone.
	s.prog.mu.Lock()
	state := s.prog.state
	s.prog.mu.Unlock()
	if state == "running" || state == "queued" {
		return ErrBusy
	}
	select {
	case s.reqs <- req:
	default:
		return ErrBusy
	}
	s.resetProgress(req.kind, "queued")
	return nil
}

func (s *Scaler) resetProgress(kind, state string) {
	p := &progress{kind: kind, state: state, started: time.Now()}
	s.prog = p
	s.mover.prog = p
}

// Run resumes and fixes slot moves whenever this instance becomes the
// leader, and runs requested operations, until ctx ends.
// Close releases a scaler that will not run (its cluster client); Run
// releases it itself.
func (s *Scaler) Close() error { return s.rc.Close() }

func (s *Scaler) Run(ctx context.Context) error {
	defer s.rc.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	if s.cfg.Enabled {
		wg.Go(func() { s.auto.run(ctx) })
	}
	wg.Go(func() { s.hook.run(ctx) })
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
	case req.kind == "rebalance_load":
		err = s.rebalanceLoad(ctx, req.slotOps)
	case req.kind == "vertical":
		err = s.setMaxmemory(ctx, req.maxmemory)
	case req.kind == "resume_scale":
		// A previous leader may have joined the nodes but not moved
		// every slot: scale, then balance (a no-op when balanced).
		if err = s.scale(ctx, req.n); err == nil {
			err = s.rebalance(ctx, nil, "resume a scale-out")
		}
	case req.kind == "resume_drain":
		err = s.resumeDrain(ctx, req.target)
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
	if req.done != nil {
		req.done(ctx, err)
	}
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
	v, err := s.healthyView(ctx)
	if err != nil {
		return err
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
	return s.executePlan(ctx, v, moves)
}

// healthyView reads the cluster for planning moves, refusing an unhealthy
// one.
func (s *Scaler) healthyView(ctx context.Context) (*View, error) {
	v, err := ReadView(ctx, s.opts.Nodes, s.opts.Seeds())
	if err != nil {
		return nil, err
	}
	if h := v.Healthy(); h != "" {
		return nil, fmt.Errorf("cluster not healthy: %s", h)
	}
	return v, nil
}

// executePlan runs a plan's moves; the slot of Slotway's own keys (lease,
// intent, events) moves after everything else and alone, since execute
// runs pairs in parallel.
func (s *Scaler) executePlan(ctx context.Context, v *View, moves []Move) error {
	last := Slot(EventsKey)
	var lastMove []Move
	if i := slices.IndexFunc(moves, func(m Move) bool { return m.Slot == last }); i >= 0 {
		lastMove = []Move{moves[i]}
		moves = slices.Delete(slices.Clone(moves), i, i+1)
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

// Operation reports the current or last operation.
func (s *Scaler) Operation() stats.Operation {
	s.mu.Lock()
	p := s.prog
	s.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	st := stats.Operation{Kind: p.kind, State: p.state, Error: p.err, Started: p.started, Moving: p.firstMove, Ended: p.ended,
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
